"""Your own data: a CSV file read into a numeric `Table` (checked, capped, one-hot encoded),
its content hash, and the compressed bytes the run store keeps it as. No streamlit here."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
import struct
import unicodedata
import zlib
from dataclasses import dataclass

import numpy as np

PREFIX = "upload:"  # a Config's dataset name for an uploaded table: upload:<hash>
HASH_CHARS = 16  # hex digits of sha256 kept: 64 bits, plenty for one server's uploads
HASH = re.compile(r"[0-9a-f]{16}")
CLASSIFICATION, REGRESSION = "classification", "regression"
TASKS = (CLASSIFICATION, REGRESSION)

# Caps (the README states them). Bytes: run_format.MAX_IMPORT_BYTES; rows: the train + val
# bounds of config.MAX_SAMPLES (5,000 each); both stated here, not imported, so this module
# loads with numpy alone (a test checks they agree).
MAX_BYTES = 32 * 1024 * 1024
MAX_ROWS = 10_000
MAX_COLUMNS = 1_000  # in the file
MAX_FEATURES = 1_000  # model inputs once text columns are one-hot encoded
MAX_CELLS = 2_000_000  # rows x inputs: 16 MB of float64, the most one table may hold
MAX_LEVELS = 20  # distinct values of a text column that is one-hot encoded
MAX_CLASSES = 20
MIN_ROWS = 10
MIN_PER_CLASS = 2
MAX_ABS = 1e30  # larger numbers would overflow float32 training or the standardising sums
MAX_NAME = 60  # characters of a column name as shown
TEST_SHARE = 0.2  # datasets.TEST_SHARE: rows held out as the test set
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "?", "-", "#n/a"})


class UploadError(ValueError):
    """A file that cannot be used as data; the message is one line saying why."""


@dataclass(frozen=True, eq=False)
class Table:
    """A parsed CSV: numeric inputs, the target, and what the columns were."""

    x: np.ndarray  # float64 (rows, n_features), all finite
    y: np.ndarray  # int64 class indices (classification) or float64 targets
    features: tuple[str, ...]  # model input names (one-hot columns as "colour=red")
    target: str
    task: str  # CLASSIFICATION or REGRESSION
    classes: tuple[str, ...] = ()  # class labels, by index; () for regression
    numeric: bool = True  # every input is a number column of the file (none one-hot)
    dropped: int = 0  # rows left out for a missing value
    notes: tuple[str, ...] = ()  # what else was changed (empty columns left out)

    @property
    def rows(self) -> int:
        return len(self.y)

    @property
    def n_features(self) -> int:
        return self.x.shape[1]

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def digest(self) -> str:
        """The content hash: the same data (and target and task) gives the same hash."""
        h = hashlib.sha256(json.dumps(self.meta(content_only=True), sort_keys=True).encode())
        h.update(np.ascontiguousarray(self.x, dtype="<f8").tobytes())
        h.update(np.ascontiguousarray(self.y, dtype="<f8").tobytes())
        return h.hexdigest()[:HASH_CHARS]

    @property
    def dataset(self) -> str:
        """The name a Config uses for this table."""
        return PREFIX + self.digest

    def meta(self, content_only: bool = False) -> dict:
        """Everything but the arrays, as JSON-ready values."""
        out = {"features": list(self.features), "target": self.target, "task": self.task,
               "classes": list(self.classes), "numeric": self.numeric}
        if not content_only:
            out.update(rows=self.rows, dropped=self.dropped, notes=list(self.notes))
        return out

    def describe(self) -> str:
        """One line for people: rows, inputs, task."""
        what = (f"{self.n_classes} classes" if self.task == CLASSIFICATION
                else "regression")
        dropped = f", {self.dropped:,} with missing values left out" if self.dropped else ""
        return (f"{self.rows:,} rows{dropped}; {self.n_features} inputs; target "
                f"{self.target!r} ({what})")


def hash_of(dataset: str) -> str | None:
    """The hash in a well-formed `upload:<hash>` name, else None."""
    if isinstance(dataset, str) and dataset.startswith(PREFIX):
        digest = dataset[len(PREFIX):]
        if HASH.fullmatch(digest):
            return digest
    return None


def pack(table: Table) -> bytes:
    """The arrays as zlib-compressed raw little-endian bytes: rows and columns, y's kind,
    then x (float64) and y (int64 or float64). Plain numbers only: nothing is unpickled."""
    x = np.ascontiguousarray(table.x, "<f8")
    kind = b"i" if table.y.dtype.kind in "iu" else b"f"
    y = np.ascontiguousarray(table.y, "<i8" if kind == b"i" else "<f8")
    head = struct.pack("<QQ", *x.shape) + kind
    return zlib.compress(head + x.tobytes() + y.tobytes())


def unpack(meta: dict, blob: bytes, digest: str | None = None) -> Table | None:
    """The Table `pack` stored, or None if the bytes or metadata do not fit (or, given
    `digest`, if they are not the data that hash names)."""
    try:
        raw = zlib.decompress(blob)
        rows, cols = struct.unpack_from("<QQ", raw)
        kind = raw[16:17]
        if kind not in (b"i", b"f") or len(raw) != 17 + 8 * rows * cols + 8 * rows:
            return None
        x = np.frombuffer(raw, "<f8", rows * cols, 17).reshape(rows, cols).copy()
        y = np.frombuffer(raw, "<i8" if kind == b"i" else "<f8", rows,
                          17 + 8 * rows * cols).copy()
        table = Table(x=x, y=y, features=tuple(meta["features"]), target=str(meta["target"]),
                      task=meta["task"], classes=tuple(meta["classes"]),
                      numeric=bool(meta["numeric"]), dropped=int(meta.get("dropped", 0)),
                      notes=tuple(meta.get("notes", ())))
    except (zlib.error, struct.error, ValueError, KeyError, TypeError):
        return None
    if digest is not None and table.digest != digest:
        return None
    return table


def min_rows(n_classes: int) -> int:
    """Fewest rows that leave a test share and train/val parts of 4 and one per class."""
    need = 2 * max(4, n_classes)
    rows = need
    while rows - round(rows * TEST_SHARE) < need:
        rows += 1
    return max(rows, MIN_ROWS)


# --- parsing

def parse_csv(data: bytes, target: str | None = None, task: str | None = None) -> Table:
    """Read a CSV file (a header line, then rows) into a Table; UploadError if unusable.

    `target` names the column to predict (default: the last); `task` forces
    "classification" or "regression" (default: detected from the target's values).
    """
    if task not in (None, "", "auto", *TASKS):
        raise UploadError(f"task must be classification or regression; got {_show(task)}")
    text = _text(data)
    names, columns, n_rows = _read(text)
    names, columns, notes = _without_empty_columns(names, columns)
    if not names:
        raise UploadError("every column is empty")
    if len(names) < 2:
        raise UploadError("the file has one column only: it needs inputs and a target")
    t = _target_index(names, target)
    y_text = columns[t]
    inputs = [(n, c) for i, (n, c) in enumerate(zip(names, columns)) if i != t]
    encoded, numeric = [], True
    for name, column in inputs:
        parts = _encode(name, column)
        numeric = numeric and len(parts) == 1 and parts[0][0] == name
        encoded.extend(parts)
    if len(encoded) > MAX_FEATURES:
        raise UploadError(f"the text columns make {len(encoded):,} inputs once encoded; at "
                          f"most {MAX_FEATURES:,} can be used")
    if n_rows * len(encoded) > MAX_CELLS:
        raise UploadError(f"{n_rows:,} rows x {len(encoded):,} inputs is more than "
                          f"{MAX_CELLS:,} values; use fewer rows or columns")
    y_num = _numbers(y_text)
    chosen = _task(names[t], y_text, y_num, task)
    x = np.column_stack([v for _, v in encoded]) if encoded else np.zeros((n_rows, 0))
    keep = ~np.isnan(x).any(axis=1) & ~_missing_mask(y_text)
    if y_num is not None:
        keep &= ~np.isnan(y_num)  # "inf" and 1e400 count as missing, as in the inputs
    kept = int(keep.sum())
    if kept < MIN_ROWS:
        raise UploadError(_too_few(kept, n_rows, names, columns))
    x = x[keep]
    if chosen == REGRESSION:
        y = y_num[keep]
        if float(y.max()) == float(y.min()):
            raise UploadError(f"the target {names[t]!r} has one value only: nothing to predict")
        classes = ()
    else:
        y, classes = _classes(names[t], [v for v, k in zip(y_text, keep) if k], y_num, keep)
    table = Table(x=x, y=y, features=tuple(_unique([n for n, _ in encoded])), target=names[t],
                  task=chosen, classes=classes, numeric=numeric, dropped=n_rows - kept,
                  notes=tuple(notes))
    need = min_rows(table.n_classes)
    if table.rows < need:
        raise UploadError(f"{table.rows} complete rows are too few: at least {need} are "
                          f"needed (a test share, then train and validation parts)")
    return table


def _show(value, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _text(data: bytes) -> str:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise UploadError("expected the file's bytes")
    data = bytes(data)
    if len(data) > MAX_BYTES:
        raise UploadError(f"the file is {len(data):,} bytes; at most {MAX_BYTES:,} are read")
    if not data.strip():
        raise UploadError("the file is empty")
    if b"\x00" in data[:MAX_BYTES]:
        raise UploadError("the file holds NUL bytes: it is binary, not a CSV text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UploadError(f"the file is not UTF-8 text (byte {exc.start:,}); save it as "
                          "UTF-8 CSV") from None


def _delimiter(first_line: str) -> str:
    """The separator of the header line: comma, semicolon or tab, whichever is most used."""
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def columns(data: bytes) -> list[str]:
    """The column names of a CSV file (as the Table names them); UploadError if unusable."""
    text = _text(data)
    try:
        return _names(_header(text)[1])
    except csv.Error as exc:
        raise UploadError(f"not a readable CSV file ({str(exc)[:80]})") from None


def _header(text: str):
    """(csv reader positioned after the header, the header's cells)."""
    end = text.find("\n")
    first = text if end == -1 else text[:end]
    delimiter = _delimiter(first)
    # Counted on the raw line, before csv builds a list of a million names.
    if first.count(delimiter) >= MAX_COLUMNS:
        raise UploadError(f"the header has {first.count(delimiter) + 1:,} columns; at most "
                          f"{MAX_COLUMNS:,} can be read")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, None)
    while header is not None and not any(c.strip() for c in header):
        header = next(reader, None)  # blank lines before the header
    if header is None:
        raise UploadError("the file is empty")
    if len(header) > MAX_COLUMNS:
        raise UploadError(f"the header has {len(header):,} columns; at most "
                          f"{MAX_COLUMNS:,} can be read")
    return reader, header


def _read(text: str) -> tuple[list[str], list[list[str]], int]:
    """(column names, columns of raw cells, data rows), checking the caps as it reads."""
    rows: list[list[str]] = []
    reader = None
    try:
        reader, header = _header(text)
        width = len(header)
        for row in reader:
            if not any(c.strip() for c in row):
                continue  # blank lines
            if len(row) != width:
                raise UploadError(f"line {reader.line_num} has {len(row)} fields; the header "
                                  f"has {width}")
            rows.append(row)
            if len(rows) > MAX_ROWS:
                raise UploadError(f"the file has more than {MAX_ROWS:,} rows; at most "
                                  f"{MAX_ROWS:,} can be used")
            if len(rows) * width > MAX_CELLS:
                raise UploadError(f"the file has more than {MAX_CELLS:,} values; use "
                                  "fewer rows or columns")
    except csv.Error as exc:
        line = f"line {reader.line_num}: " if reader is not None else ""
        raise UploadError(f"not a readable CSV file ({line}{str(exc)[:80]})") from None
    names = _names(header)
    if names and all(_is_number(c) for c in header):
        raise UploadError("the first line must name the columns; it holds numbers")
    if not rows:
        raise UploadError("the file has a header but no rows")
    return names, [list(col) for col in zip(*rows)], len(rows)


def _clean(text: str) -> str:
    """Text fit to show as a name: control and format characters gone, spaces collapsed."""
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in text)
    return " ".join(text.split())[:MAX_NAME]


def _unique(names: list[str]) -> list[str]:
    out, seen = [], set()
    for name in names:
        base, n = name, 1
        while name in seen:
            n += 1
            name = f"{base} ({n})"
        seen.add(name)
        out.append(name)
    return out


def _names(header: list[str]) -> list[str]:
    """Column names fit to show: printable, short, unique."""
    return _unique([_clean(raw) or f"column {i + 1}" for i, raw in enumerate(header)])


def _is_missing(cell: str) -> bool:
    return cell.strip().lower() in MISSING


def _missing_mask(cells: list[str]) -> np.ndarray:
    return np.fromiter((_is_missing(c) for c in cells), dtype=bool, count=len(cells))


def _number(cell: str) -> float:
    """The cell as a float, NaN if missing; ValueError if it is text."""
    if _is_missing(cell):
        return math.nan
    text = cell.strip()
    try:
        value = float(text)
    except ValueError:
        if "," in text and "." not in text:  # a decimal comma (semicolon files)
            value = float(text.replace(",", "."))
        else:
            raise
    if math.isnan(value) or math.isinf(value):
        return math.nan  # "inf" in a file is as good as missing
    return value


def _is_number(cell: str) -> bool:
    try:
        return not math.isnan(_number(cell))
    except ValueError:
        return False


def _numbers(cells: list[str]) -> np.ndarray | None:
    """The cells as float64 (NaN where missing), or None if any is text."""
    try:
        return np.array([_number(c) for c in cells], dtype=np.float64)
    except ValueError:
        return None


def _without_empty_columns(names, columns):
    keep = [i for i, col in enumerate(columns) if not all(_is_missing(c) for c in col)]
    notes = [f"column {names[i]!r} is empty: left out"
             for i in range(len(names)) if i not in set(keep)]
    return [names[i] for i in keep], [columns[i] for i in keep], notes


def _target_index(names: list[str], target: str | None) -> int:
    if target is None or target == "":
        return len(names) - 1
    wanted = " ".join(str(target).split())
    for match in (lambda n: n == wanted, lambda n: n.lower() == wanted.lower()):
        found = [i for i, n in enumerate(names) if match(n)]
        if found:
            return found[0]
    shown = ", ".join(repr(n) for n in names[:8]) + (", ..." if len(names) > 8 else "")
    raise UploadError(f"no column is named {_show(target)}; the columns are {shown}")


def _encode(name: str, cells: list[str]) -> list[tuple[str, np.ndarray]]:
    """An input column as (name, float64 values with NaN where missing): itself if it
    holds numbers, else one 0/1 column per value (few values only)."""
    values = _numbers(cells)
    if values is not None:
        present = values[~np.isnan(values)]
        if present.size and np.abs(present).max() > MAX_ABS:
            raise UploadError(f"column {name!r} holds numbers beyond 1e30; rescale it")
        return [(name, values)]
    missing = _missing_mask(cells)
    stripped = [c.strip() for c in cells]
    levels = sorted({c for c, m in zip(stripped, missing) if not m})
    if len(levels) > MAX_LEVELS:
        raise UploadError(f"column {name!r} holds text with {len(levels):,} different values; "
                          f"only text with at most {MAX_LEVELS} values can be used (leave the "
                          "column out, or code it as numbers)")
    codes = np.array(stripped, dtype=object)
    out = []
    for level in levels:
        column = (codes == level).astype(np.float64)
        column[missing] = np.nan
        out.append((f"{name}={_clean(level) or '(blank)'}", column))
    return out


def _task(name: str, cells: list[str], numbers: np.ndarray | None, forced: str | None) -> str:
    """The task the target fits: few whole numbers or text -> classification."""
    present = numbers[~np.isnan(numbers)] if numbers is not None else None
    if present is not None and len(present) and np.abs(present).max() > MAX_ABS:
        raise UploadError(f"the target {name!r} holds numbers beyond 1e30; rescale it")
    if forced in TASKS:
        if forced == REGRESSION and numbers is None:
            raise UploadError(f"the target {name!r} holds text: it cannot be a regression "
                              "target")
        return forced
    if numbers is None:
        return CLASSIFICATION
    if present.size == 0:
        return REGRESSION  # all missing: refused below as too few rows
    whole = bool(np.all(present == np.round(present)))
    return CLASSIFICATION if whole and len(np.unique(present)) <= MAX_CLASSES else REGRESSION


def _classes(name, cells, numbers, keep) -> tuple[np.ndarray, tuple[str, ...]]:
    """Class indices and labels (numbers in numeric order, text alphabetically)."""
    if numbers is not None:
        values = numbers[keep]
        levels = np.unique(values)
        labels = tuple(str(int(v)) if v == int(v) else repr(float(v)) for v in levels)
        index = np.searchsorted(levels, values)
    else:
        stripped = [c.strip() for c in cells]
        ordered = sorted(set(stripped))
        labels = tuple(_unique([_clean(v) or "(blank)" for v in ordered]))
        position = {v: i for i, v in enumerate(ordered)}
        index = np.array([position[v] for v in stripped], dtype=np.int64)
    if len(labels) > MAX_CLASSES:
        raise UploadError(f"the target {name!r} has {len(labels):,} different values: too "
                          f"many classes (at most {MAX_CLASSES}); try regression")
    if len(labels) < 2:
        raise UploadError(f"the target {name!r} has one value only ({_show(labels[0])}): "
                          "nothing to classify")
    counts = np.bincount(index, minlength=len(labels))
    if counts.min() < MIN_PER_CLASS:
        rare = labels[int(counts.argmin())]
        raise UploadError(f"class {_show(rare)} of {name!r} has {int(counts.min())} row; "
                          f"every class needs at least {MIN_PER_CLASS}")
    return index.astype(np.int64), labels


def _too_few(kept: int, n_rows: int, names, columns) -> str:
    worst = max(range(len(names)), key=lambda i: int(_missing_mask(columns[i]).sum()))
    gaps = int(_missing_mask(columns[worst]).sum())
    hint = f" (column {names[worst]!r} is missing in {gaps:,})" if gaps else ""
    return (f"only {kept} of {n_rows:,} rows have no missing values{hint}; at least "
            f"{MIN_ROWS} are needed")
