"""TFRecord framing and CRC32C, and the official NAS-Bench-101 file reader."""

from __future__ import annotations

import base64
import json
import random
import struct

import pytest

from gennape.cg.errors import GennapeError
from gennape.cg.families.nb101 import FAMILY
from gennape.cg.families.nb101_official import (
    EvaluationData, ModelMetrics, ProtobufError, decode_model_metrics, iter_official, load_official, parse_record,
)
from gennape.cg.families import tfrecord
from gennape.cg.families.tfrecord import (
    TFRecordError, TFRecordReader, crc32c, crc32c_many, encode_record, mask, read_tfrecord,
    write_tfrecord,
)


# Both implementations: google-crc32c's C extension when installed, else the
# table-driven fallback (pure Python for one buffer, numpy batches for many).
CRC32C_ONE = [pytest.param(crc32c, id="default"), pytest.param(tfrecord._crc32c_python, id="fallback")]
CRC32C_MANY = [pytest.param(crc32c_many, id="default"), pytest.param(tfrecord._crc32c_many_numpy, id="fallback")]


@pytest.mark.parametrize("crc", CRC32C_ONE)
def test_crc32c_known_values(crc):
    # RFC 3720 B.4 and the common check value.
    assert crc(b"123456789") == 0xE3069283
    assert crc(bytes(32)) == 0x8A9136AA
    assert crc(b"\xff" * 32) == 0x62A8AB43
    assert crc(bytes(range(32))) == 0x46DD794E


@pytest.mark.parametrize("many", CRC32C_MANY)
def test_crc32c_many_matches_scalar(many):
    rng = random.Random(0)
    bufs = [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 70))) for _ in range(300)]
    assert many(bufs).tolist() == [tfrecord._crc32c_python(b) for b in bufs]
    assert many([]).tolist() == []


def test_fallback_reader_finds_the_damaged_record(tmp_path, monkeypatch):
    monkeypatch.setattr(tfrecord, "_CRC32C_C", None)  # as without google-crc32c's C extension
    path = tmp_path / "x.tfrecord"
    write_tfrecord(path, [b"first", b"second", b"third"])
    assert list(read_tfrecord(path)) == [b"first", b"second", b"third"]
    _corrupt(path, 16 + 5 + 12 + 2)
    with pytest.raises(TFRecordError, match=r"record 1 at byte 21: data CRC mismatch"):
        list(read_tfrecord(path))


def test_record_framing():
    rec = encode_record(b"abc")
    length, length_crc = struct.unpack("<QI", rec[:12])
    assert length == 3 and length_crc == mask(crc32c(rec[:8]))
    assert rec[12:15] == b"abc"
    assert struct.unpack("<I", rec[15:])[0] == mask(crc32c(b"abc"))


def test_round_trip_in_small_batches(tmp_path):
    rng = random.Random(1)
    recs = [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 200))) for _ in range(50)]
    path = tmp_path / "x.tfrecord"
    assert write_tfrecord(path, recs) == 50
    assert list(TFRecordReader(path, batch_records=7)) == recs
    assert list(read_tfrecord(path)) == recs


def _corrupt(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_corrupted_payload(tmp_path):
    path = tmp_path / "x.tfrecord"
    write_tfrecord(path, [b"first", b"second", b"third"])
    _corrupt(path, 16 + 5 + 12 + 2)  # inside record 1's payload
    with pytest.raises(TFRecordError, match=r"record 1 at byte 21: data CRC mismatch"):
        list(read_tfrecord(path))
    reader = TFRecordReader(path, skip_corrupt=True)
    assert list(reader) == [b"first", b"third"]
    assert reader.skipped == 1 and reader.problems[0][0] == 1
    # Without CRC checks the damaged payload comes through.
    assert len(list(read_tfrecord(path, check_crc=False))) == 3


def test_corrupted_length_and_truncation(tmp_path):
    path = tmp_path / "x.tfrecord"
    write_tfrecord(path, [b"first", b"second"])
    _corrupt(path, 21)  # record 1's length field
    with pytest.raises(TFRecordError, match="record 1 .*length CRC mismatch"):
        list(read_tfrecord(path))
    reader = TFRecordReader(path, skip_corrupt=True)
    assert list(reader) == [b"first"] and reader.skipped == 1

    write_tfrecord(path, [b"first", b"second"])
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(TFRecordError, match="record 1 .*truncated record"):
        list(read_tfrecord(path))
    path.write_bytes(path.read_bytes()[:30])
    with pytest.raises(TFRecordError, match="record 1 .*truncated record header"):
        list(read_tfrecord(path))


def test_missing_file(tmp_path):
    with pytest.raises(GennapeError, match="cannot open"):
        list(read_tfrecord(tmp_path / "absent.tfrecord"))


# ----------------------------------------------------- official NB-101 files
def _varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _double(field: int, x: float) -> bytes:
    return _varint(field << 3 | 1) + struct.pack("<d", x)


def _bytes(field: int, b: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(b)) + b


def _metrics(params: int, evals: list[tuple[float, float, float, float, float]]) -> bytes:
    """A ModelMetrics message, hand-encoded in the protobuf wire format."""
    msg = b""
    for e in evals:
        body = b"".join(_double(i + 1, x) for i, x in enumerate(e)) + _bytes(6, b"/tmp/model.ckpt-1")
        msg += _bytes(1, body)
    return msg + _varint(2 << 3 | 0) + _varint(params) + _double(3, 1234.5)


def _official_payload(spec, epochs, run, params) -> bytes:
    adjacency = "".join(str(x) for row in spec.matrix for x in row)
    evals = [(0.0, 0.0, 0.1, 0.1, 0.1), (epochs / 2, 10.0, 0.5, 0.5 + run / 100, 0.49),
             (float(epochs), 20.0, 0.9, 0.9 + run / 100, 0.89 + run / 100)]
    metrics = base64.b64encode(_metrics(params, evals)).decode()
    return json.dumps([spec.hash, epochs, adjacency, ",".join(spec.ops), metrics]).encode()


SPECS = [
    '{"matrix": [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]],'
    ' "ops": ["input", "conv3x3-bn-relu", "maxpool3x3", "output"]}',
    '{"matrix": [[0, 1, 0], [0, 0, 1], [0, 0, 0]], "ops": ["input", "conv1x1-bn-relu", "output"]}',
]


def _write_official(path):
    specs = [FAMILY.parse(a) for a in SPECS]
    payloads = [
        _official_payload(s, epochs, run, FAMILY.to_cg(s).params)
        for s in specs for epochs in (4, 108) for run in range(3)
    ]
    write_tfrecord(path, payloads)
    return specs


def test_model_metrics_schema_is_the_official_proto():
    # nasbench/lib/model_metrics.proto, field for field (name, number, type, repeated).
    from google.protobuf.descriptor import FieldDescriptor as F

    def fields(cls):
        return [(f.name, f.number, f.type, f.is_repeated) for f in cls.DESCRIPTOR.fields]

    assert ModelMetrics.DESCRIPTOR.full_name == "nasbench.ModelMetrics"
    assert fields(ModelMetrics) == [("evaluation_data", 1, F.TYPE_MESSAGE, True),
                                    ("trainable_parameters", 2, F.TYPE_INT32, False),
                                    ("total_time", 3, F.TYPE_DOUBLE, False)]
    assert fields(EvaluationData) == [
        *[(name, i, F.TYPE_DOUBLE, False) for i, name in enumerate(
            ["current_epoch", "training_time", "train_accuracy", "validation_accuracy", "test_accuracy"], 1)],
        ("checkpoint_path", 6, F.TYPE_STRING, False)]
    # proto2 ``optional``: every single field knows whether it was set.
    assert all(f.has_presence for cls in (ModelMetrics, EvaluationData) for f in cls.DESCRIPTOR.fields
               if not f.is_repeated)


def test_decode_model_metrics_reads_hand_encoded_wire_bytes():
    # The test's own wire encoder (above), independent of the protobuf runtime.
    evals = [(0.0, 0.0, 0.1, 0.2, 0.3), (54.0, 10.0, 0.5, 0.6, 0.7), (108.0, 20.0, 0.9, 0.91, 0.92)]
    decoded = decode_model_metrics(_metrics(8555530, evals))
    assert decoded.trainable_parameters == 8555530 and decoded.total_time == 1234.5
    assert [(e.current_epoch, e.training_time, e.train_accuracy, e.validation_accuracy, e.test_accuracy)
            for e in decoded.evaluation_data] == evals
    assert decoded.evaluation_data[-1].checkpoint_path == "/tmp/model.ckpt-1"
    # Unknown fields are skipped; a field running past the end is malformed.
    assert decode_model_metrics(_metrics(7, evals[:1]) + _double(9, 1.0)).trainable_parameters == 7
    with pytest.raises(ProtobufError, match="malformed ModelMetrics"):
        decode_model_metrics(_bytes(1, b"\x09" + bytes(3)))


def test_official_file(tmp_path):
    path = tmp_path / "nasbench_small.tfrecord"
    specs = _write_official(path)
    data = load_official(path)
    assert data.skipped == 0 and data.epochs == [4, 108]
    assert set(data.results) == {s.hash for s in specs}
    for s in specs:
        res = data.results[s.hash]
        assert res.spec == s
        assert res.trainable_parameters == FAMILY.to_cg(s).params
        assert len(res.runs[108]) == 3 and len(res.runs[4]) == 3
        assert res.validation_accuracies(108) == pytest.approx([0.90, 0.91, 0.92])
        assert res.test_accuracies(108) == pytest.approx([0.89, 0.90, 0.91])
        assert res.runs[108][1].evaluation_data[1].validation_accuracy == pytest.approx(0.51)
    labelled = data.to_labelled(108)
    assert len(labelled) == 2 and labelled[0].accuracy == pytest.approx(0.91)
    assert labelled[0].extra["params"] == FAMILY.to_cg(labelled[0].spec).params
    recs = list(iter_official(path))
    assert len(recs) == 12 and recs[0].epochs == 4 and recs[0].final.current_epoch == 4.0


def test_official_file_errors(tmp_path):
    path = tmp_path / "bad.tfrecord"
    specs = _write_official(path)
    good = path.read_bytes()
    # Damage the payload CRC of the third record.
    first = len(encode_record(_official_payload(specs[0], 4, 0, 1)))
    data = bytearray(good)
    data[2 * first + 40] ^= 0x04
    path.write_bytes(bytes(data))
    with pytest.raises(GennapeError, match=r"bad.tfrecord: record 2 at byte \d+: data CRC mismatch"):
        load_official(path)
    loaded = load_official(path, skip_corrupt=True)
    assert loaded.skipped == 1 and sum(len(v) for r in loaded.results.values() for v in r.runs.values()) == 11
    # Good framing, bad content: named by record index.
    write_tfrecord(path, [b'["abc", 108, "0100", "input,output", "!!!"]'])
    with pytest.raises(GennapeError, match="record 0: .*raw_metrics"):
        load_official(path)
    write_tfrecord(path, [b"not json"])
    with pytest.raises(GennapeError, match="record 0: payload is not a JSON list"):
        load_official(path)
    truncated = base64.b64encode(_metrics(5, [(1.0, 2.0, 3.0, 4.0, 5.0)])[:-3]).decode()
    write_tfrecord(path, [json.dumps(["h", 108, "0100", "input,output", truncated]).encode()])
    with pytest.raises(GennapeError, match=r"bad.tfrecord: record 0: raw_metrics: malformed ModelMetrics protobuf"):
        load_official(path)


def test_parse_record_bad_adjacency():
    with pytest.raises(ValueError, match="square 0/1"):
        parse_record(b'["h", 108, "011", "input,output", ""]')
