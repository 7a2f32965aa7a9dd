"""Shared by the transfer tests: a tiny estimator pretrained in seconds on real
NB-101 data, and labels made on the fly from the shared data (never bundled)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "onnx"


@functools.lru_cache(maxsize=None)
def tiny_estimator(data_dir: Path):
    """GennapeEstimator pretrained on 400 NB-101 networks (a few seconds on CPU)."""
    from gennape.cg.families import get_family
    from gennape.pretrain.estimator import GennapeEstimator

    nb101 = get_family("nb101")
    recs = nb101.load_labelled(data_dir)
    idx = np.random.default_rng(0).choice(len(recs), 400, replace=False)
    est = GennapeEstimator(hidden_channels=32, embed_dim=32, num_layers=2, epochs=3, head_epochs=60,
                           num_clusters=3, seed=0)
    return est.fit([nb101.to_cg(recs[i].spec) for i in idx], [recs[i].accuracy for i in idx])


@functools.lru_cache(maxsize=None)
def nb201_records(data_dir: Path):
    from gennape.cg.families import get_family

    return get_family("nb201").load_labelled(data_dir)


def nb201_example_labels(data_dir: Path, out_csv: Path, percent: bool = True) -> list[tuple[Path, float]]:
    """LABELS.csv for the bundled NB-201 example files, accuracies looked up in
    the shared data; returns ``[(file, accuracy fraction)]``."""
    import sys

    from gennape.cg.families import get_family
    from gennape.transfer.labels import write_labels

    sys.path.insert(0, str(EXAMPLES.parent))
    try:
        from make_examples import EXAMPLES as SPECS
    finally:
        sys.path.remove(str(EXAMPLES.parent))
    nb201 = get_family("nb201")
    acc = {r.spec: r.accuracy for r in nb201_records(data_dir)}
    rows = [(EXAMPLES / f"{stem}.onnx", acc[nb201.parse(arch)])
            for stem, (fam, arch) in SPECS.items() if fam == "nb201"]
    write_labels(out_csv, [r[0] for r in rows], [100 * r[1] if percent else r[1] for r in rows])
    return rows


_CHECKPOINTS: dict[Path, Path] = {}


def tiny_checkpoint(data_dir: Path, tmp_path_factory) -> Path:
    """:func:`tiny_estimator` saved once per session as a checkpoint folder."""
    if data_dir not in _CHECKPOINTS:
        _CHECKPOINTS[data_dir] = tiny_estimator(data_dir).save(tmp_path_factory.mktemp("ckpt") / "tiny")
    return _CHECKPOINTS[data_dir]
