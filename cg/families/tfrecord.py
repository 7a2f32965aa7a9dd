"""TFRecord files without TensorFlow: framing, masked CRC32C checks, writing.

Each record is::

    uint64 length (little endian)
    uint32 masked_crc32c(length bytes)
    bytes  data[length]
    uint32 masked_crc32c(data)

CRC32C (Castagnoli) comes from ``google-crc32c`` (Google's C library, a
declared dependency) when its C extension is there. Without it a
table-driven fallback is used: a pure Python byte loop would read a 500 MB
benchmark file in minutes, so there records are checked in batches, numpy
advancing the CRCs of all records of a batch one byte position per step.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

import numpy as np

from gennape.cg.atomic import atomic_write
from gennape.cg.errors import GennapeError

_POLY = 0x82F63B78
_MASK_DELTA = 0xA282EAD8
_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")


def _make_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _make_table()
_TABLE_NP = np.array(_TABLE, dtype=np.uint32)


def _crc32c_python(data: bytes) -> int:
    """CRC32C of ``data`` (pure Python; for short inputs)."""
    crc = 0xFFFFFFFF
    table = _TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _crc32c_many_numpy(buffers: list[bytes]) -> np.ndarray:
    """CRC32C of every buffer (uint32 array), vectorised across buffers.

    Buffers are sorted by length so that the ones still running at byte
    position ``i`` are a prefix of the batch.
    """
    n = len(buffers)
    out = np.zeros(n, dtype=np.uint32)
    if n == 0:
        return out
    lengths = np.fromiter((len(b) for b in buffers), dtype=np.int64, count=n)
    order = np.argsort(-lengths, kind="stable")
    lens = lengths[order]
    longest = int(lens[0]) if n else 0
    data = np.zeros((n, max(longest, 1)), dtype=np.uint8)
    for row, k in enumerate(order):
        b = buffers[k]
        if b:
            data[row, :len(b)] = np.frombuffer(b, dtype=np.uint8)
    crc = np.full(n, 0xFFFFFFFF, dtype=np.uint32)
    # active[i] = number of buffers longer than i (a prefix, as lens is descending).
    active = n - np.searchsorted(lens[::-1], np.arange(longest), side="right")
    table = _TABLE_NP
    for i in range(longest):
        k = int(active[i])
        c = crc[:k]
        crc[:k] = table[(c ^ data[:k, i]) & 0xFF] ^ (c >> 8)
    out[order] = crc ^ np.uint32(0xFFFFFFFF)
    return out


def _c_library():
    try:
        import google_crc32c
    except ImportError:
        return None
    # Without a wheel for the platform the package falls back to its own pure
    # Python loop, slower than the numpy batches.
    return google_crc32c.value if google_crc32c.implementation == "c" else None


_CRC32C_C = _c_library()


def crc32c(data: bytes) -> int:
    """CRC32C of ``data``."""
    return _CRC32C_C(data) if _CRC32C_C is not None else _crc32c_python(data)


def crc32c_many(buffers: list[bytes]) -> np.ndarray:
    """CRC32C of every buffer (uint32 array)."""
    if _CRC32C_C is not None:
        return np.fromiter(map(_CRC32C_C, buffers), dtype=np.uint32, count=len(buffers))
    return _crc32c_many_numpy(buffers)


def mask(crc: int) -> int:
    """TFRecord's masked CRC: rotate right by 15 and add a constant."""
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def _mask_np(crc: np.ndarray) -> np.ndarray:
    crc = crc.astype(np.uint64)
    return ((((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF).astype(np.uint32)


class TFRecordError(GennapeError):
    """A corrupted or truncated TFRecord file; names the file, record index and byte offset."""


class TFRecordReader:
    """Iterates over the records of a TFRecord file, checking both CRCs.

    Args:
        path: the file.
        check_crc: verify the masked CRC32C of every length and payload.
        skip_corrupt: instead of raising, skip a record whose payload CRC is
            wrong (counted in :attr:`skipped`), and stop at a damaged length
            field or a truncated record (counted too: after that the framing
            cannot be trusted).
        batch_records: records whose CRCs are checked together.

    Example::

        reader = TFRecordReader("nasbench_only108.tfrecord")
        for payload in reader:
            ...
    """

    def __init__(self, path: str | Path, check_crc: bool = True, skip_corrupt: bool = False,
                 batch_records: int = 4096):
        self.path = Path(path)
        self.check_crc = check_crc
        self.skip_corrupt = skip_corrupt
        self.batch_records = batch_records
        #: records skipped so far (``skip_corrupt`` only).
        self.skipped = 0
        #: (record index, cause) of every skipped record.
        self.problems: list[tuple[int, str]] = []

    def __iter__(self) -> Iterator[bytes]:
        for _, data in self.indexed():
            yield data

    def indexed(self) -> Iterator[tuple[int, bytes]]:
        """``(record index in the file, payload)`` of every good record."""
        try:
            f = open(self.path, "rb")
        except OSError as err:
            raise TFRecordError(f"{self.path}: cannot open ({err.strerror})") from None
        with f:
            index = 0
            while True:
                batch, stop = self._read_batch(f, index)
                yield from self._checked(batch)
                index += len(batch)
                if stop or not batch:
                    return

    # The framing is parsed in Python (cheap: a few struct calls per record);
    # the CRCs, the expensive part, are checked per batch.
    def _read_batch(self, f: BinaryIO, first: int) -> tuple[list, bool]:
        """Up to ``batch_records`` ``(index, offset, data, footer)`` tuples (None for a
        skipped damaged record) and whether the file ended."""
        batch = []
        index = first
        while len(batch) < self.batch_records:
            offset = f.tell()
            header = f.read(12)
            if not header:
                return batch, True
            if len(header) < 12:
                return batch + [self._fail_framing(index, offset, "truncated record header")], True
            length, length_crc = _HEADER.unpack(header)
            if self.check_crc and mask(crc32c(header[:8])) != length_crc:
                return batch + [self._fail_framing(index, offset, "length CRC mismatch (corrupted length field)")], True
            data = f.read(length)
            footer = f.read(4)
            if len(data) < length or len(footer) < 4:
                return batch + [self._fail_framing(
                    index, offset, f"truncated record (needs {length + 16} bytes, file ends first)")], True
            batch.append((index, offset, data, footer))
            index += 1
        return batch, False

    def _fail_framing(self, index: int, offset: int, cause: str):
        if not self.skip_corrupt:
            raise TFRecordError(f"{self.path}: record {index} at byte {offset}: {cause}")
        self.skipped += 1
        self.problems.append((index, cause))
        return None

    def _checked(self, batch) -> Iterator[tuple[int, bytes]]:
        records = [r for r in batch if r is not None]
        if self.check_crc and records:
            crcs = _mask_np(crc32c_many([r[2] for r in records]))
            stored = np.fromiter((_FOOTER.unpack(r[3])[0] for r in records), dtype=np.uint32, count=len(records))
            bad = crcs != stored
        else:
            bad = np.zeros(len(records), dtype=bool)
        for (index, offset, data, _), is_bad in zip(records, bad):
            if is_bad:
                cause = "data CRC mismatch (corrupted record)"
                if not self.skip_corrupt:
                    raise TFRecordError(f"{self.path}: record {index} at byte {offset}: {cause}")
                self.skipped += 1
                self.problems.append((index, cause))
                continue
            yield index, data


def read_tfrecord(path: str | Path, check_crc: bool = True) -> Iterator[bytes]:
    """The payloads of a TFRecord file; :class:`TFRecordError` at the first damaged record."""
    return iter(TFRecordReader(path, check_crc=check_crc))


def encode_record(data: bytes) -> bytes:
    """One framed record."""
    header = struct.pack("<Q", len(data))
    return header + _FOOTER.pack(mask(crc32c(header))) + data + _FOOTER.pack(mask(crc32c(data)))


def write_tfrecord(path: str | Path, records: Iterable[bytes]) -> int:
    """Write ``records`` as a TFRecord file atomically; returns how many were written."""
    count = 0
    with atomic_write(path, "wb") as f:
        for data in records:
            f.write(encode_record(bytes(data)))
            count += 1
    return count


__all__ = [
    "crc32c", "crc32c_many", "mask", "TFRecordReader", "TFRecordError", "read_tfrecord",
    "encode_record", "write_tfrecord",
]
