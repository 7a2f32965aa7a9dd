"""On-disk cache of a family's CGs, so pretraining never rebuilds them.

One compressed ``.npz`` file per family and dataset under
``$GENNAPE_CACHE`` (default ``~/.cache/gennape``), named
``<family>-<dataset>.cgcache.npz``. Graphs are stored as tables of the
distinct nodes (JSON) and edges plus, per graph, int32 indices into them, so 30,000 NB-101 CGs (5 million nodes, a few hundred distinct ones)
load in seconds and every graph shares the same :class:`~gennape.cg.graph.Node`
objects. No pickles: arrays are read with ``allow_pickle=False``.

A file records :data:`gennape.cg.graph.FORMAT_VERSION` and the family's
``cg_version``; a mismatch (or a damaged file) means it is rebuilt. Writes go
to a temporary file that is then renamed, so readers see the old file or the
new one.

Example::

    cache = CGCache()
    cgs = cache.get_or_build(get_family("nb101"), [(r.key, r.spec) for r in recs], "labelled")
"""

from __future__ import annotations

import json
import os
from array import array
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from gennape.cg.atomic import atomic_write
from gennape.cg.graph import CG, FORMAT_VERSION, Node


def cache_dir() -> Path:
    """``$GENNAPE_CACHE`` or ``~/.cache/gennape``."""
    env = os.environ.get("GENNAPE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "gennape"


def _text(a: np.ndarray) -> str:
    return a.tobytes().decode("utf-8")


def _array(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def pack(keys: Sequence[str], cgs: Sequence[CG], meta: dict[str, Any]) -> dict[str, np.ndarray]:
    """The arrays of a cache file holding ``cgs`` under ``keys``."""
    table: dict[Node, int] = {}
    # array('i'), not lists: 4 bytes an entry for the 60M nodes of the NB-101 space.
    node_index = array("i")
    node_offsets = array("q", [0])
    edge_table: dict[tuple[int, int], int] = {}
    edge_index = array("i")
    edge_offsets = array("q", [0])
    for cg in cgs:
        for n in cg.nodes:
            i = table.get(n)
            if i is None:
                # Node equality ignores names, so nodes keep the first name seen; names are not cached.
                i = table[n] = len(table)
            node_index.append(i)
        node_offsets.append(len(node_index))
        for e in cg.edges:
            j = edge_table.get(e)
            if j is None:
                j = edge_table[e] = len(edge_table)
            edge_index.append(j)
        edge_offsets.append(len(edge_index))
    node_dicts = []
    for n in table:
        d = n.to_dict()
        d.pop("name", None)
        node_dicts.append(d)
    return {
        "meta": _array(json.dumps(meta)),
        "keys": _array(json.dumps(list(keys))),
        "names": _array(json.dumps([cg.name for cg in cgs])),
        "nodes": _array(json.dumps(node_dicts)),
        "node_index": np.frombuffer(node_index, dtype=np.int32),
        "node_offsets": np.frombuffer(node_offsets, dtype=np.int64),
        "edge_table": np.asarray(list(edge_table), dtype=np.int32).reshape(-1, 2),
        "edge_index": np.frombuffer(edge_index, dtype=np.int32),
        "edge_offsets": np.frombuffer(edge_offsets, dtype=np.int64),
    }


def unpack(arrays) -> tuple[dict[str, Any], dict[str, CG]]:
    """``(meta, key -> CG)`` from the arrays of a cache file."""
    meta = json.loads(_text(arrays["meta"]))
    keys = json.loads(_text(arrays["keys"]))
    names = json.loads(_text(arrays["names"]))
    table = [Node.from_dict(d) for d in json.loads(_text(arrays["nodes"]))]
    node_offsets = arrays["node_offsets"].tolist()
    edge_offsets = arrays["edge_offsets"].tolist()
    # Every graph shares the node objects of the table, and equal edges share
    # one tuple: 30k NB-101 graphs hold ~6M edges.
    all_nodes = [table[i] for i in arrays["node_index"].tolist()]
    edge_table = [(s, d) for s, d in arrays["edge_table"].tolist()]
    all_edges = [edge_table[i] for i in arrays["edge_index"].tolist()]
    out: dict[str, CG] = {}
    for g, key in enumerate(keys):
        out[key] = CG(
            nodes=tuple(all_nodes[node_offsets[g]:node_offsets[g + 1]]),
            edges=tuple(all_edges[edge_offsets[g]:edge_offsets[g + 1]]),
            name=names[g],
        )
    return meta, out


class CGCache:
    """Cached CGs per (family, dataset), keyed by spec key.

    Args:
        root: folder of the cache files; default :func:`cache_dir`.
    """

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else cache_dir()

    def path(self, family: str, dataset: str) -> Path:
        return self.root / f"{family}-{dataset}.cgcache.npz"

    @staticmethod
    def expected_meta(family) -> dict[str, Any]:
        return {"family": family.name, "format_version": FORMAT_VERSION,
                "cg_version": getattr(family, "cg_version", 0)}

    def load(self, family, dataset: str) -> dict[str, CG]:
        """The cached CGs (empty when there is no file, or it is stale or damaged)."""
        path = self.path(family.name, dataset)
        if not path.is_file():
            return {}
        try:
            with np.load(path, allow_pickle=False) as arrays:
                meta, cgs = unpack(arrays)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError):
            return {}  # damaged: rebuilt by the caller
        expected = self.expected_meta(family)
        if any(meta.get(k) != v for k, v in expected.items()):
            return {}
        return cgs

    def save(self, family, dataset: str, cgs: dict[str, CG]) -> Path:
        """Write ``key -> CG`` atomically; returns the file."""
        path = self.path(family.name, dataset)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {**self.expected_meta(family), "dataset": dataset, "count": len(cgs)}
        arrays = pack(list(cgs), list(cgs.values()), meta)
        with atomic_write(path, "wb") as f:
            np.savez_compressed(f, **arrays)
        return path

    def get_or_build(self, family, items: Iterable[tuple[str, Any]], dataset: str,
                     progress: Callable[[int, int], None] | None = None) -> list[CG]:
        """The CGs of ``items`` (``(key, spec)`` pairs), in order.

        Cached graphs are reused; missing ones are built with
        ``family.to_cg`` and the file is rewritten with all of them.

        Args:
            family: a :class:`gennape.cg.families.base.Family`.
            items: ``(key, spec)`` pairs.
            dataset: names the cache file (e.g. ``"labelled"``, ``"all"``).
            progress: called as ``progress(done, total)`` while building.
        """
        items = list(items)
        cached = self.load(family, dataset)
        missing = [(k, s) for k, s in items if k not in cached]
        if missing:
            for i, (k, s) in enumerate(missing):
                cached[k] = family.to_cg(s)
                if progress is not None and (i + 1) % 1000 == 0:
                    progress(i + 1, len(missing))
            self.save(family, dataset, cached)
        return [cached[k] for k, _ in items]


def labelled_cgs(family, data_dir: Path | None = None, cache: CGCache | None = None):
    """``(labelled archs, their CGs)`` of a family's shared file, through the cache."""
    recs = family.load_labelled(data_dir)
    cgs = (cache or CGCache()).get_or_build(family, [(r.key, r.spec) for r in recs], "labelled")
    return recs, cgs


__all__ = ["CGCache", "cache_dir", "labelled_cgs", "pack", "unpack"]
