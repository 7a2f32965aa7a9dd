"""NB-101 training data: records, the 80/10/10 split by hash, packed graphs."""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gennape.cg.errors import GennapeError

#: What the NB-101 label is (``val_acc_108``, or the mean over runs of an
#: official file's 108-epoch validation accuracy): the scale a checkpoint
#: pretrained on it predicts on, recorded as its ``metadata["label"]``.
NB101_LABEL = "NAS-Bench-101 CIFAR-10 validation accuracy (108 epochs)"
#: split name -> hash buckets (of 10) it takes.
SPLITS = {"train": range(0, 8), "val": (8,), "test": (9,)}


@dataclass(frozen=True)
class NB101Data:
    """Labelled NB-101 architectures: ``keys`` (module hashes), ``specs``, ``accuracy``."""

    keys: list[str]
    specs: list
    accuracy: np.ndarray

    def __len__(self) -> int:
        return len(self.keys)


def hash_bucket(key: str) -> int:
    """0-9 from the SHA-256 of ``key``: stable, independent of file order."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 10


def split_indices(keys: list[str]) -> dict[str, np.ndarray]:
    """Indices of the train (80%), val (10%) and test (10%) splits by hash."""
    buckets = np.array([hash_bucket(k) for k in keys], dtype=np.int64)
    return {name: np.flatnonzero(np.isin(buckets, list(b))) for name, b in SPLITS.items()}


def load_nb101(path: str | Path, limit: int | None = None) -> NB101Data:
    """Read the shared NB-101 JSON (``.json`` / ``.json.gz`` list of records with
    ``hash``, ``matrix``, ``ops``, ``val_acc_108``) or an official
    ``nasbench_*.tfrecord``.

    Args:
        path: the file.
        limit: keep only the ``limit`` architectures with the smallest SHA-256
            of their hash (a reproducible, unbiased subset).
    """
    from gennape.cg.families.nb101 import FAMILY

    path = Path(path)
    if not path.is_file():
        raise GennapeError(f"{path}: NB-101 data file not found")
    if ".tfrecord" in path.name:
        keys, specs, acc = _read_tfrecord(path)
    else:
        try:
            opener = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rt", encoding="utf-8") as f:
                records = json.load(f)
        except (OSError, EOFError, zlib.error, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise GennapeError(f"{path}: not an NB-101 JSON file ({type(err).__name__}: {err})") from None
        if not isinstance(records, list):
            raise GennapeError(f"{path}: expected a JSON list of NB-101 records")
        if limit is not None and limit < len(records):
            # Choose the subset before parsing specs: a limited run stays fast.
            try:
                records = [records[i] for i in _smallest_hashes([str(r["hash"]) for r in records], limit)]
            except (KeyError, TypeError) as err:
                raise GennapeError(f"{path}: a record lacks its hash ({type(err).__name__}: {err})") from None
        keys, specs, acc = [], [], []
        for i, rec in enumerate(records):
            try:
                specs.append(FAMILY.spec_from_record(rec))
                keys.append(str(rec["hash"]))
                acc.append(float(rec["val_acc_108"]))
            except (KeyError, TypeError, ValueError) as err:
                raise GennapeError(f"{path}: record {i}: {type(err).__name__}: {err}") from None
    if not keys:
        raise GennapeError(f"{path}: no NB-101 architectures")
    if limit is not None and limit < len(keys):
        order = _smallest_hashes(keys, limit)
        keys, specs, acc = [keys[i] for i in order], [specs[i] for i in order], [acc[i] for i in order]
    return NB101Data(keys, specs, np.asarray(acc, dtype=np.float64))


def _smallest_hashes(keys: list[str], limit: int) -> list[int]:
    """Indices (in file order) of the ``limit`` keys with the smallest SHA-256."""
    order = sorted(range(len(keys)), key=lambda i: hashlib.sha256(keys[i].encode()).hexdigest())[:limit]
    return sorted(order)


def _read_tfrecord(path: Path):
    try:
        from gennape.cg.families import nb101_official
    except ModuleNotFoundError:
        raise GennapeError(f"{path}: reading official NB-101 tfrecords needs gennape.cg.families.nb101_official, "
                           "which this installation lacks") from None
    # Label: the mean final validation accuracy over the runs at 108 epochs.
    keys, specs, acc = [], [], []
    for rec in nb101_official.load_official(path).to_labelled(epochs=108):
        keys.append(rec.key)
        specs.append(rec.spec)
        acc.append(rec.accuracy)
    return keys, specs, acc


def pack_specs(specs, progress=None):
    """A :class:`gennape.pretrain.packed.GraphPack` of the NB-101 networks of ``specs``
    (CGs built and featurised one at a time)."""
    from gennape.cg.families.nb101 import FAMILY
    from gennape.pretrain.packed import GraphPack

    return GraphPack.from_items((FAMILY.to_cg(s) for s in specs), progress=progress)


__all__ = ["NB101_LABEL", "NB101Data", "load_nb101", "split_indices", "hash_bucket", "pack_specs", "SPLITS"]
