"""Hostile data files: corrupted TFRecords (bad CRC, truncated records),
truncated JSON / gzip, missing fields. Every reader gives a one-line
GennapeError naming the file and the record; with skipping switched on,
every skipped record is counted and reported and no corrupted payload is ever
returned."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from _hostile import hypothesis_profile
from hypothesis import given, settings
from hypothesis import strategies as st

from gennape.cg.errors import GennapeError
from gennape.cg.families import get_family
from gennape.cg.families.tfrecord import TFRecordError, TFRecordReader, encode_record, write_tfrecord

PROFILE = hypothesis_profile()

NB101_RECORD = {"hash": "0" * 32, "matrix": [[0, 1, 0], [0, 0, 1], [0, 0, 0]],
                "ops": ["input", "conv1x1-bn-relu", "output"], "val_acc_108": 0.9}
NB201_ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def one_line_error(fn, *names: str) -> str:
    """Run ``fn``; it must raise a one-line GennapeError mentioning every name."""
    with pytest.raises(GennapeError) as err:
        fn()
    text = str(err.value)
    assert "\n" not in text, text
    for name in names:
        assert name in text, (name, text)
    return text


# ---------------------------------------------------------------- TFRecord
payloads_strategy = st.lists(st.binary(min_size=0, max_size=40), min_size=1, max_size=12)


@st.composite
def damaged_tfrecords(draw):
    payloads = draw(payloads_strategy)
    data = bytearray(b"".join(encode_record(p) for p in payloads))
    kind = draw(st.sampled_from(["flip", "truncate", "flip-and-truncate"]))
    if kind in ("flip", "flip-and-truncate"):
        at = draw(st.integers(0, len(data) - 1))
        data[at] ^= 1 << draw(st.integers(0, 7))
    if kind in ("truncate", "flip-and-truncate"):
        data = data[: draw(st.integers(0, len(data) - 1))]
    return payloads, bytes(data)


@settings(PROFILE, max_examples=60)
@given(damaged_tfrecords(), st.integers(1, 5))
def test_damaged_tfrecord(tmp_path_factory, case, batch_records):
    payloads, data = case
    path = tmp_path_factory.mktemp("tf") / "damaged.tfrecord"
    path.write_bytes(data)
    # Strict: what is returned is intact; the damage raises an error naming the record.
    got = []
    try:
        for payload in TFRecordReader(path, batch_records=batch_records):
            got.append(payload)
    except TFRecordError as err:
        text = str(err)
        assert "\n" not in text and text.startswith(f"{path}: record ")
        named = int(text[len(f"{path}: record "):].split()[0])
        assert len(got) <= named <= len(payloads)
    else:
        # Only a cut exactly between two records is invisible to the framing.
        assert len(data) < len(b"".join(encode_record(p) for p in payloads))
        assert data == b"".join(encode_record(p) for p in payloads[: len(got)])
    assert got == payloads[: len(got)]
    # Skipping: no corrupted payload is returned, every skip is counted and named.
    reader = TFRecordReader(path, skip_corrupt=True, batch_records=batch_records)
    indexed = list(reader.indexed())
    assert all(payloads[i] == p for i, p in indexed)
    assert reader.skipped == len(reader.problems)
    seen = sorted([i for i, _ in indexed] + [i for i, _ in reader.problems])
    assert seen == list(range(len(seen))), "a record vanished without being counted"
    if len(seen) < len(payloads) and reader.problems:  # reading stopped: the last problem says why
        assert any(word in reader.problems[-1][1] for word in ("truncated", "length"))


def test_intact_tfrecord_reads_everything(tmp_path):
    payloads = [bytes([i]) * i for i in range(20)]
    write_tfrecord(tmp_path / "ok.tfrecord", payloads)
    reader = TFRecordReader(tmp_path / "ok.tfrecord", skip_corrupt=True, batch_records=3)
    assert list(reader) == payloads and reader.skipped == 0


def test_official_reader_counts_bad_content(tmp_path):
    from gennape.cg.families.nb101_official import load_official

    path = tmp_path / "nasbench.tfrecord"
    write_tfrecord(path, [b"not json", b'["h", 108, "01", "input", "x"]'])
    one_line_error(lambda: load_official(path), str(path), "record 0")
    data = load_official(path, skip_corrupt=True)
    assert data.results == {} and data.skipped == 2 and [i for i, _ in data.problems] == [0, 1]


# -------------------------------------------------------- JSON(.gz) files
def _gz(obj) -> bytes:
    return gzip.compress(json.dumps(obj).encode(), mtime=0)


def _nb101_file(root: Path, content: bytes) -> Path:
    path = root / "nb101" / "nb101_30k_labelled.json.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


GOOD_NB101 = _gz([NB101_RECORD, {**NB101_RECORD, "hash": "1" * 32}])


@settings(PROFILE, max_examples=30)
@given(st.integers(0, len(GOOD_NB101) - 1))
def test_truncated_nb101_gz(tmp_path_factory, cut):
    """Both NB-101 JSON readers (the family's and ``gennape pretrain``'s)."""
    from gennape.pretrain.data import load_nb101

    root = tmp_path_factory.mktemp("data")
    path = _nb101_file(root, GOOD_NB101[:cut])
    one_line_error(lambda: get_family("nb101").load_labelled(root), str(path))
    one_line_error(lambda: load_nb101(path), str(path))


@pytest.mark.parametrize("content", [
    pytest.param(gzip.compress(json.dumps([NB101_RECORD]).encode()[:-9]), id="truncated-json"),
    pytest.param(b"\x1f\x8b\x08\x00" + b"\x00" * 20, id="bad-deflate"),
    pytest.param(_gz({"not": "a list"}), id="not-a-list"),
    pytest.param(b"", id="empty"),
])
def test_malformed_nb101_json(tmp_path, content):
    from gennape.pretrain.data import load_nb101

    path = _nb101_file(tmp_path, content)
    one_line_error(lambda: get_family("nb101").load_labelled(tmp_path), str(path))
    one_line_error(lambda: load_nb101(path), str(path))


@pytest.mark.parametrize("missing", ["hash", "matrix", "ops", "val_acc_108"])
def test_nb101_missing_field_names_the_record(tmp_path, missing):
    from gennape.pretrain.data import load_nb101

    bad = {k: v for k, v in NB101_RECORD.items() if k != missing}
    path = _nb101_file(tmp_path, _gz([NB101_RECORD, NB101_RECORD, bad]))
    one_line_error(lambda: get_family("nb101").load_labelled(tmp_path), str(path), "record 2", missing)
    one_line_error(lambda: load_nb101(path), str(path), "record 2", missing)


def test_nb101_all_specs_truncated(tmp_path):
    path = tmp_path / "nb101" / "nb101_all_423624_specs.jsonl.gz"
    path.parent.mkdir()
    lines = "".join(json.dumps(NB101_RECORD) + "\n" for _ in range(5)).encode()
    path.write_bytes(gzip.compress(lines[:-20], mtime=0))
    one_line_error(lambda: list(get_family("nb101").iter_specs(tmp_path)), str(path), "line 5")
    path.write_bytes(gzip.compress(lines, mtime=0)[:-6])
    one_line_error(lambda: list(get_family("nb101").iter_specs(tmp_path)), str(path))


@pytest.mark.parametrize("content", [
    pytest.param(_gz([{"arch": NB201_ARCH, "test_acc_200ep": 93.6}])[:-5], id="truncated-gz"),
    pytest.param(gzip.compress(json.dumps([{"arch": NB201_ARCH, "test_acc_200ep": 1}]).encode()[:-9]),
                 id="truncated-json"),
    pytest.param(_gz([{"arch": NB201_ARCH}]), id="missing-accuracy"),
    pytest.param(_gz([{"test_acc_200ep": 93.6}]), id="missing-arch"),
    pytest.param(_gz([{"arch": "|bad|", "test_acc_200ep": 93.6}]), id="bad-arch"),
])
def test_malformed_nb201(tmp_path, content):
    path = tmp_path / "nb201" / "nb201_cifar10_15625.json.gz"
    path.parent.mkdir()
    path.write_bytes(content)
    one_line_error(lambda: get_family("nb201").load_labelled(tmp_path), str(path))


@pytest.mark.parametrize("text, named", [
    ('{"cifar10": {"a": {"arch": [[[0, 1]]]', None),
    ('{"cifar10": {"a": {"val_accuracy": 90.1}}}', "a"),
    ('{"c10": {}}', "cifar10"),
    ('[1, 2]', None),
])
def test_malformed_nb301(tmp_path, text, named):
    path = tmp_path / "nb301" / "naslib_zc_nasbench301_725.json"
    path.parent.mkdir()
    path.write_text(text)
    one_line_error(lambda: get_family("nb301").load_labelled(tmp_path), str(path), *([named] if named else []))


def test_ofa_csv_missing_column_names_the_line(tmp_path):
    path = tmp_path / "ofa_mbv3" / "ofa_mbv3_w10_imagenet.csv"
    path.parent.mkdir()
    path.write_text('ks,e,d,r,top1,macs\n"[3]",1\n')
    one_line_error(lambda: get_family("ofa_mbv3").load_labelled(tmp_path), str(path), "line 2")


# ----------------------------------------------------------- LABELS.csv
@pytest.mark.parametrize("text, named", [
    ("onnx\na.onnx\n", None),
    ("onnx,accuracy\na.onnx,93.1\nb.onnx,\n", ":3"),
    ("onnx,accuracy\na.onnx,93.1\nb.onnx,nan\n", ":3"),
    ("onnx,accuracy\na.onnx,93.1\na.onnx,90\n", ":3"),
    ("onnx,accuracy\na.onnx,93.1\nb.onnx\n", ":3"),
    ("onnx,accuracy\n\"a.onnx,93.1\n", None),
    ("", None),
])
def test_labels_csv(tmp_path, text, named):
    from gennape.transfer.labels import read_labels

    path = tmp_path / "LABELS.csv"
    path.write_text(text)
    one_line_error(lambda: read_labels(path), str(path), *([named] if named else []))
