"""Read the official NAS-Bench-101 files (``nasbench_only108.tfrecord``,
``nasbench_full.tfrecord``) without TensorFlow or generated protobuf code.

Each TFRecord payload is the JSON list
``[module_hash, epochs, raw_adjacency, raw_operations, raw_metrics]``:
``raw_adjacency`` is the n x n matrix as a string of 0/1, ``raw_operations``
the comma-separated ops and ``raw_metrics`` a base64 ``ModelMetrics``
protobuf (``nasbench/lib/model_metrics.proto``), decoded by the protobuf
runtime (installed with onnx) through message classes built from this schema::

    message ModelMetrics {
      repeated EvaluationData evaluation_data = 1;
      optional int32 trainable_parameters = 2;
      optional double total_time = 3;
    }
    message EvaluationData {
      optional double current_epoch = 1;  optional double training_time = 2;
      optional double train_accuracy = 3; optional double validation_accuracy = 4;
      optional double test_accuracy = 5;  optional string checkpoint_path = 6;
    }

Every (hash, epochs) pair appears once per training run (3 runs); each run's
``evaluation_data`` holds the evaluations at step 0, halfway and at the end.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from gennape.cg.errors import GennapeError
from gennape.cg.families.base import LabelledArch
from gennape.cg.families.nb101 import NB101Spec
from gennape.cg.families.tfrecord import TFRecordReader

class ProtobufError(ValueError):
    """Malformed protobuf wire data."""


# ----------------------------------------------------------- ModelMetrics
def _model_metrics_proto() -> descriptor_pb2.FileDescriptorProto:
    """``nasbench/lib/model_metrics.proto`` (the official schema), field for field."""
    field_type = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(
        name="nasbench/lib/model_metrics.proto", package="nasbench", syntax="proto2")
    evaluation = proto.message_type.add(name="EvaluationData")
    for number, name in enumerate(("current_epoch", "training_time", "train_accuracy",
                                   "validation_accuracy", "test_accuracy"), 1):
        evaluation.field.add(name=name, number=number, type=field_type.TYPE_DOUBLE,
                             label=field_type.LABEL_OPTIONAL)
    evaluation.field.add(name="checkpoint_path", number=6, type=field_type.TYPE_STRING,
                         label=field_type.LABEL_OPTIONAL)
    metrics = proto.message_type.add(name="ModelMetrics")
    metrics.field.add(name="evaluation_data", number=1, type=field_type.TYPE_MESSAGE,
                      type_name=".nasbench.EvaluationData", label=field_type.LABEL_REPEATED)
    metrics.field.add(name="trainable_parameters", number=2, type=field_type.TYPE_INT32,
                      label=field_type.LABEL_OPTIONAL)
    metrics.field.add(name="total_time", number=3, type=field_type.TYPE_DOUBLE, label=field_type.LABEL_OPTIONAL)
    return proto


# A pool of our own: the default pool may already hold nasbench's generated
# model_metrics_pb2 (same names), and the two must not clash.
_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_model_metrics_proto())
#: The ``ModelMetrics`` message class (protobuf runtime, built from the schema above).
ModelMetrics = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("nasbench.ModelMetrics"))
#: The ``EvaluationData`` message class.
EvaluationData = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("nasbench.EvaluationData"))


def decode_model_metrics(buf: bytes) -> ModelMetrics:
    """Decode ``ModelMetrics`` wire bytes; :class:`ProtobufError` when malformed.

    Unknown fields, and fields of the wrong wire type, are skipped as the
    protobuf runtime does for any message.
    """
    try:
        return ModelMetrics.FromString(buf)
    except DecodeError as err:
        raise ProtobufError(f"malformed ModelMetrics protobuf ({err})") from None


# ------------------------------------------------------------------ records
@dataclass(frozen=True)
class OfficialRecord:
    """One record of the official file: one training run of one cell for ``epochs`` epochs."""

    module_hash: str
    epochs: int
    spec: NB101Spec
    metrics: ModelMetrics

    @property
    def final(self) -> EvaluationData:
        """The evaluation at the end of training."""
        return self.metrics.evaluation_data[-1]

    @property
    def halfway(self) -> EvaluationData:
        return self.metrics.evaluation_data[1] if len(self.metrics.evaluation_data) > 2 else self.final


def parse_record(payload: bytes, spec_cache: dict | None = None) -> OfficialRecord:
    """Decode one payload; ``ValueError`` says what is wrong.

    ``spec_cache`` maps ``(adjacency, operations)`` strings to parsed specs:
    each cell appears once per run and epoch budget, so a reader passes one
    dict to validate each cell once.
    """
    try:
        row = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"payload is not a JSON list ({err})") from None
    if not isinstance(row, list) or len(row) != 5:
        raise ValueError("payload must be the JSON list [module_hash, epochs, adjacency, operations, metrics]")
    module_hash, epochs, raw_adjacency, raw_operations, raw_metrics = row
    if not isinstance(raw_adjacency, str) or not isinstance(raw_operations, str) or not isinstance(raw_metrics, str):
        raise ValueError("adjacency, operations and metrics must be strings")
    spec = spec_cache.get((raw_adjacency, raw_operations)) if spec_cache is not None else None
    if spec is None:
        spec = _parse_spec(raw_adjacency, raw_operations)
        if spec_cache is not None:
            spec_cache[(raw_adjacency, raw_operations)] = spec
    try:
        metrics = decode_model_metrics(base64.b64decode(raw_metrics, validate=True))
    except (binascii.Error, ProtobufError) as err:
        raise ValueError(f"raw_metrics: {err}") from None
    if not metrics.evaluation_data:
        raise ValueError("ModelMetrics has no evaluation_data")
    return OfficialRecord(str(module_hash), int(epochs), spec, metrics)


def _parse_spec(raw_adjacency: str, raw_operations: str) -> NB101Spec:
    dim = int(round(len(raw_adjacency) ** 0.5))
    if dim * dim != len(raw_adjacency) or set(raw_adjacency) - {"0", "1"}:
        raise ValueError(f"adjacency {raw_adjacency[:60]!r} is not a square 0/1 matrix string")
    matrix = [[int(raw_adjacency[i * dim + j]) for j in range(dim)] for i in range(dim)]
    # The file holds the benchmark's own vertex order: keep it.
    return NB101Spec.from_lists(matrix, raw_operations.split(","), canonical=False)


def iter_official(path: str | Path, skip_corrupt: bool = False,
                  reader: TFRecordReader | None = None) -> Iterator[OfficialRecord]:
    """The records of an official NAS-Bench-101 TFRecord file, in file order.

    Errors (:class:`gennape.cg.errors.GennapeError`) name the file and the record
    index. With ``skip_corrupt``, records with a bad CRC or bad content are
    skipped and counted in ``reader.skipped`` / ``reader.problems`` (pass your
    own ``reader`` to see them; :func:`load_official` reports them).
    """
    reader = reader or TFRecordReader(path, skip_corrupt=skip_corrupt)
    specs: dict = {}
    for index, payload in reader.indexed():
        try:
            rec = parse_record(payload, specs)
        except ValueError as err:
            if not reader.skip_corrupt:
                raise GennapeError(f"{path}: record {index}: {err}") from None
            reader.skipped += 1
            reader.problems.append((index, str(err)))
            continue
        yield rec


@dataclass
class NB101Result:
    """Everything the official file says about one cell.

    Args:
        module_hash: the cell's hash.
        spec: the cell as the benchmark built it.
        trainable_parameters: the network's parameter count.
        runs: epochs budget -> one :class:`ModelMetrics` per training run.
    """

    module_hash: str
    spec: NB101Spec
    trainable_parameters: int
    runs: dict[int, list[ModelMetrics]] = field(default_factory=dict)

    def validation_accuracies(self, epochs: int = 108) -> list[float]:
        """Final validation accuracy of each run at the ``epochs`` budget."""
        return [m.evaluation_data[-1].validation_accuracy for m in self.runs.get(epochs, [])]

    def test_accuracies(self, epochs: int = 108) -> list[float]:
        return [m.evaluation_data[-1].test_accuracy for m in self.runs.get(epochs, [])]


@dataclass
class OfficialData:
    """The whole official file, grouped by module hash."""

    results: dict[str, NB101Result]
    skipped: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)

    @property
    def epochs(self) -> list[int]:
        return sorted({e for r in self.results.values() for e in r.runs})

    def to_labelled(self, epochs: int = 108) -> list[LabelledArch]:
        """One :class:`LabelledArch` per cell: label the mean final validation
        accuracy over runs; ``extra`` has params and per-run accuracies."""
        out = []
        for h, r in self.results.items():
            val = r.validation_accuracies(epochs)
            if not val:
                continue
            out.append(LabelledArch(
                key=h, spec=r.spec, accuracy=sum(val) / len(val),
                extra={"params": r.trainable_parameters, "val_acc_runs": val,
                       "test_acc_runs": r.test_accuracies(epochs), "epochs": epochs},
            ))
        return out


def load_official(path: str | Path, skip_corrupt: bool = False) -> OfficialData:
    """Read a whole official file (``nasbench_only108`` or ``nasbench_full``)."""
    reader = TFRecordReader(path, skip_corrupt=skip_corrupt)
    results: dict[str, NB101Result] = {}
    for rec in iter_official(path, reader=reader):
        res = results.get(rec.module_hash)
        if res is None:
            res = results[rec.module_hash] = NB101Result(rec.module_hash, rec.spec, rec.metrics.trainable_parameters)
        res.runs.setdefault(rec.epochs, []).append(rec.metrics)
    return OfficialData(results, reader.skipped, reader.problems)


__all__ = [
    "EvaluationData", "ModelMetrics", "OfficialRecord", "NB101Result", "OfficialData",
    "decode_model_metrics", "parse_record", "iter_official", "load_official", "ProtobufError",
]
