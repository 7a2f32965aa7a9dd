"""The on-disk CG cache of benchmark families."""

from __future__ import annotations

import json

import numpy as np
import pytest

import gennape.cg.families.cache as cache_mod
from gennape.cg.families.cache import CGCache, cache_dir, labelled_cgs
from gennape.cg.families.nb101 import FAMILY, NB101Spec

C3, C1, MP = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"


def _specs():
    chain = [[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]]
    fork = [[0, 1, 1, 1], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]]
    specs = [NB101Spec.from_lists(m, ["input", a, b, "output"])
             for m in (chain, fork) for a in (C3, C1, MP) for b in (C3, MP)]
    return list({s.hash: s for s in specs}.items())  # isomorphic forks share a hash


class CountingFamily:
    """NB-101 with a count of to_cg calls."""

    name = "nb101"
    cg_version = FAMILY.cg_version

    def __init__(self):
        self.built = 0

    def to_cg(self, spec):
        self.built += 1
        return FAMILY.to_cg(spec)


def test_default_location(monkeypatch, tmp_path):
    monkeypatch.setenv("GENNAPE_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path
    monkeypatch.delenv("GENNAPE_CACHE")
    assert cache_dir().parts[-2:] == (".cache", "gennape")


def test_build_then_reuse(tmp_path):
    items = _specs()
    fam = CountingFamily()
    cache = CGCache(tmp_path)
    first = cache.get_or_build(fam, items, "test")
    assert fam.built == len(items)
    assert first == [FAMILY.to_cg(s) for _, s in items]
    again = cache.get_or_build(fam, items, "test")
    assert fam.built == len(items)  # nothing rebuilt
    assert again == first
    assert [g.fingerprint() for g in again] == [g.fingerprint() for g in first]
    # A new key builds only that one graph and keeps the others.
    extra = NB101Spec.from_lists([[0, 1], [0, 0]], ["input", "output"])
    cache.get_or_build(fam, items + [(extra.hash, extra)], "test")
    assert fam.built == len(items) + 1
    assert len(cache.load(fam, "test")) == len(items) + 1
    # No temporary files are left behind.
    assert [p.name for p in tmp_path.iterdir()] == ["nb101-test.cgcache.npz"]


def test_file_holds_no_pickles(tmp_path):
    cache = CGCache(tmp_path)
    cache.get_or_build(CountingFamily(), _specs(), "test")
    with np.load(cache.path("nb101", "test"), allow_pickle=False) as arrays:
        assert all(arrays[k].dtype != object for k in arrays.files)


def test_rebuilt_when_format_version_changes(tmp_path, monkeypatch):
    items = _specs()
    fam = CountingFamily()
    cache = CGCache(tmp_path)
    cache.get_or_build(fam, items, "test")
    monkeypatch.setattr(cache_mod, "FORMAT_VERSION", cache_mod.FORMAT_VERSION + 1)
    assert cache.load(fam, "test") == {}
    cache.get_or_build(fam, items, "test")
    assert fam.built == 2 * len(items)
    with np.load(cache.path("nb101", "test"), allow_pickle=False) as arrays:
        meta = json.loads(arrays["meta"].tobytes().decode())
    assert meta["format_version"] == cache_mod.FORMAT_VERSION


def test_damaged_file_is_rebuilt(tmp_path):
    items = _specs()
    fam = CountingFamily()
    cache = CGCache(tmp_path)
    cache.path("nb101", "test").write_bytes(b"not a zip file")
    assert cache.get_or_build(fam, items, "test") == [FAMILY.to_cg(s) for _, s in items]
    assert fam.built == len(items)
    assert len(cache.load(fam, "test")) == len(items)


def test_labelled_cgs_through_cache(tmp_path, data_dir, monkeypatch):
    # Only a slice of the 30k file, to stay fast: the full load is in benchmarks/families.py.
    recs = FAMILY.load_labelled(data_dir)[:300]
    monkeypatch.setattr(FAMILY, "load_labelled", lambda d=None: recs)
    cache = CGCache(tmp_path)
    got_recs, cgs = labelled_cgs(FAMILY, data_dir, cache)
    assert got_recs == recs
    assert [g.params for g in cgs] == [r.extra["params"] for r in recs]
    _, again = labelled_cgs(FAMILY, data_dir, cache)
    assert again == cgs
