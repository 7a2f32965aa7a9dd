"""LABELS.csv: labelled ONNX models for ``gennape finetune`` and ``gennape evaluate``.

Format: a CSV file with a header row holding at least the columns ``onnx`` and
``accuracy`` (other columns are ignored, column order is free)::

    onnx,accuracy,comment
    nets/a.onnx,93.1,resnet-ish
    nets/b.onnx,88.4,

* ``onnx`` paths are relative to the folder holding the CSV file (absolute
  paths are used as they are); ``..`` parts are normalised away.
* ``accuracy`` is in percent or as a fraction, detected over the whole file:
  when **every** value is greater than 1.0 the file is in percent and values
  are divided by 100; otherwise it is in fractions and every value must lie
  in [0, 1]. Internally accuracies are always fractions.
* Blank lines are skipped. A path listed twice is an error (it would count
  twice in training and evaluation).

Errors are :class:`gennape.cg.errors.GennapeError` naming the file and line.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path

from gennape.cg.errors import GennapeError

REQUIRED_COLUMNS = ("onnx", "accuracy")


@dataclass(frozen=True)
class LabelRow:
    """One labelled model.

    Args:
        path: the ONNX file, resolved against the CSV's folder.
        accuracy: the label as a fraction in [0, 1].
        line: the line of the CSV file it came from (1-based, header = 1).
    """

    path: Path
    accuracy: float
    line: int


@dataclass(frozen=True)
class Labels:
    """The rows of a LABELS.csv file and the scale it was written in."""

    source: Path
    rows: tuple[LabelRow, ...]
    #: ``"percent"`` or ``"fraction"``, as detected.
    scale: str

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def paths(self) -> list[Path]:
        return [r.path for r in self.rows]

    @property
    def accuracies(self) -> list[float]:
        return [r.accuracy for r in self.rows]

    def exclude(self, other: "Labels") -> "Labels":
        """These rows minus the files listed in ``other`` (compared by resolved path)."""
        used = {_key(p) for p in other.paths}
        rows = tuple(r for r in self.rows if _key(r.path) not in used)
        return Labels(self.source, rows, self.scale)


def _key(path: Path) -> str:
    return str(Path(path).resolve())


def read_labels(path: str | Path) -> Labels:
    """Read and check a LABELS.csv file (see the module docstring)."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            raw = _read_rows(path, csv.reader(f))
    except FileNotFoundError:
        raise GennapeError(f"{path}: labels file not found") from None
    except IsADirectoryError:
        raise GennapeError(f"{path}: is a folder, expected a LABELS.csv file") from None
    except UnicodeDecodeError as err:
        raise GennapeError(f"{path}: not a UTF-8 text file ({err.reason})") from None
    except csv.Error as err:
        raise GennapeError(f"{path}: malformed CSV ({err})") from None
    if not raw:
        raise GennapeError(f"{path}: no labelled rows")
    percent = all(value > 1.0 for _, value, _ in raw)
    rows = []
    seen: dict[str, int] = {}
    for file, value, line in raw:
        if percent:
            if value > 100.0:
                raise GennapeError(f"{path}:{line}: accuracy {value} is above 100 percent")
            value /= 100.0
        elif value > 1.0:
            raise GennapeError(
                f"{path}:{line}: accuracy {value} is above 1 while other rows are fractions "
                "(a file is in percent only when every value is above 1)"
            )
        resolved = Path(os.path.normpath(file if file.is_absolute() else path.parent / file))
        key = _key(resolved)
        if key in seen:
            raise GennapeError(f"{path}:{line}: {file} is listed twice (first on line {seen[key]})")
        seen[key] = line
        rows.append(LabelRow(resolved, value, line))
    return Labels(path, tuple(rows), "percent" if percent else "fraction")


def _read_rows(path: Path, reader) -> list[tuple[Path, float, int]]:
    header = next(reader, None)
    if header is None:
        raise GennapeError(f"{path}: empty file, expected a header with columns onnx,accuracy")
    names = [h.strip().lower() for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise GennapeError(
            f"{path}:1: header lacks column(s) {', '.join(missing)} "
            f"(found: {', '.join(h.strip() for h in header) or 'nothing'})"
        )
    col_file, col_acc = names.index("onnx"), names.index("accuracy")
    raw = []
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(col_file, col_acc):
            raise GennapeError(f"{path}:{line}: expected at least {max(col_file, col_acc) + 1} columns, got {len(row)}")
        file, text = row[col_file].strip(), row[col_acc].strip()
        if not file:
            raise GennapeError(f"{path}:{line}: empty onnx path")
        try:
            value = float(text)
        except ValueError:
            raise GennapeError(f"{path}:{line}: accuracy {text!r} is not a number") from None
        if not math.isfinite(value) or value < 0.0:
            raise GennapeError(f"{path}:{line}: accuracy {text!r} must be a finite number >= 0")
        raw.append((Path(file), value, line))
    return raw


def write_labels(path: str | Path, files: list[str | Path], accuracies: list[float]) -> None:
    """Write a LABELS.csv atomically; files inside the CSV's folder are written
    relative to it, others as absolute paths."""
    import io

    from gennape.cg.atomic import write_text_atomic

    path = Path(path)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(REQUIRED_COLUMNS)
    for file, acc in zip(files, accuracies, strict=True):
        full, folder = Path(file).resolve(), path.parent.resolve()
        rel = full.relative_to(folder) if full.is_relative_to(folder) else full
        w.writerow([rel.as_posix(), repr(float(acc))])
    write_text_atomic(path, buf.getvalue())


__all__ = ["LabelRow", "Labels", "read_labels", "write_labels", "REQUIRED_COLUMNS"]
