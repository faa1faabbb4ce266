"""A saved run's format: its records, statuses and errors, the JSON codec (non-finite
floats as strings), and the checks an imported run must pass. No SQLite here: the store
(store.py) keeps runs, this module says what a run is."""

from __future__ import annotations

import json
import math
import numbers
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from regdemo.records import FIELDS, FLOAT_FIELDS, EpochRecord, Event

FORMAT = "regdemo-run"  # the "format" of an exported JSON run
FORMAT_VERSION = 1
MAX_NAME = 120  # characters of a run name
MAX_IMPORT_BYTES = 32 * 1024 * 1024  # a 100,000-epoch export is about 25 MB
MAX_IMPORT_EPOCHS = 100_000  # config.MAX_EPOCHS (not imported: the store loads without torch)
MAX_IMPORT_EVENTS = 10_000
MAX_JSON_TEXT = 1000  # characters of one string inside an imported config, summary or event

RUNNING, FINISHED, STOPPED, DIVERGED, INTERRUPTED, FAILED = (
    "running", "finished", "stopped", "diverged", "interrupted", "failed")
STATUSES = (RUNNING, FINISHED, STOPPED, DIVERGED, INTERRUPTED, FAILED)


RUN_ID = re.compile(r"[0-9a-f]{12}")
# An imported event names a setting and holds numbers, true/false or short plain words (an
# augmentation's name): nothing a chart label could render as markup.
EVENT_KNOB = re.compile(r"[a-z][a-z0-9_]{0,39}")
EVENT_WORD = re.compile(r"[A-Za-z0-9_.+-]{0,40}")
MAX_INT = 2**63 - 1  # SQLite's INTEGER
ORIGIN = re.compile(r"[a-z][a-z_]{0,19}")  # who made a run: page, cli, sweep, import, ...
TOKENS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class StoreError(ValueError):
    """A request the store refuses (bad id, unknown run, bad name or status); one line."""


class BadRunId(StoreError):
    """Text that is not a run id (12 lowercase hex digits)."""


class UnknownRun(StoreError, LookupError):
    """A well-formed id with no saved run (never created, or deleted)."""


class ImportRejected(StoreError):
    """A JSON run that is too big or does not fit the export format."""


@dataclass(frozen=True)
class RunInfo:
    """One row of the runs list: everything but the per-epoch history."""

    id: str
    name: str
    created: float  # unix seconds
    updated: float
    status: str
    origin: str
    parent: str | None
    epochs: int  # highest epoch written
    config: dict[str, str]  # Config.to_query(); rebuild with Config.from_query
    summary: dict[str, Any] | None  # Trainer.summary() once finished
    last_val_loss: float | None  # val loss of the last written epoch (None before any)

    @property
    def val_loss(self) -> float | None:
        """The final val loss: the summary's (restored weights) or else the last epoch's."""
        if self.summary and self.summary.get("val_loss") is not None:
            return self.summary["val_loss"]
        return self.last_val_loss

    def to_config(self):
        """(Config, problems) rebuilt from the stored query (imports the engine side)."""
        from regdemo.config import Config

        return Config.from_query(self.config)


@dataclass(frozen=True)
class SavedRun:
    """A run as stored: its info, every epoch written, and its live changes."""

    info: RunInfo
    history: list[EpochRecord]
    events: list[Event]

    @property
    def id(self) -> str:
        return self.info.id

    def columns(self) -> dict[str, list]:
        """The history column by column (a pandas DataFrame takes this as it is)."""
        columns = list(zip(*self.history)) or [()] * len(FIELDS)
        return {f: list(c) for f, c in zip(FIELDS, columns)}


def is_run_id(text: Any) -> bool:
    """True for a well-formed run id (12 lowercase hex digits)."""
    return isinstance(text, str) and RUN_ID.fullmatch(text) is not None


def check_run_id(text: Any) -> str:
    """The id itself, or BadRunId: use on anything that came from a URL or a command line."""
    if not is_run_id(text):
        shown = repr(text) if len(repr(text)) <= 40 else repr(text)[:40] + "..."
        raise BadRunId(f"{shown} is not a run id (12 lowercase hex digits)")
    return text


def check_name(name: Any) -> str:
    """The name as given, or StoreError if it is empty, too long or holds control characters."""
    if not isinstance(name, str) or not name.strip():
        raise StoreError("a run name must be non-empty text")
    if len(name) > MAX_NAME:
        raise StoreError(f"a run name has at most {MAX_NAME} characters; got {len(name)}")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise StoreError("a run name cannot contain control characters (newlines, tabs, ...)")
    if not utf8(name):  # a lone surrogate: from a bad JSON escape or undecodable argv bytes
        raise StoreError("a run name must be valid Unicode text (it holds a lone surrogate)")
    return name


def plain(value):
    """JSON-ready: non-finite floats become "NaN"/"Infinity"/"-Infinity"; no other types."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float) or (isinstance(value, numbers.Real)
                                    and not isinstance(value, numbers.Integral)):
        value = float(value)
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    raise StoreError(f"cannot store a {type(value).__name__} as JSON")


def plain_column(values: list) -> list:
    """plain for a list of numbers, fast when all are finite (the usual case)."""
    return values if all(map(math.isfinite, values)) else plain(values)


def nan_row(row: tuple) -> EpochRecord:
    """A stored epoch row; SQLite's NULL (a NaN written) back to NaN."""
    return EpochRecord._make(math.nan if v is None else v for v in row)


def revive(value):
    """The inverse of plain: the three non-finite tokens back to floats."""
    if isinstance(value, str):
        return TOKENS.get(value, value)
    if isinstance(value, dict):
        return {k: revive(v) for k, v in value.items()}
    if isinstance(value, list):
        return [revive(v) for v in value]
    return value


def dumps(value) -> str:
    return json.dumps(plain(value), allow_nan=False, separators=(",", ":"), ensure_ascii=False)


def loads(text: str):
    return revive(json.loads(text))


# --- import checks


def parse_import(text: str | bytes) -> dict:
    """The checked content of an exported run, or ImportRejected with the first problem."""
    size = len(text.encode() if isinstance(text, str) else text)
    if size > MAX_IMPORT_BYTES:
        raise ImportRejected(f"cannot import run: {size:,} bytes is over the limit of "
                             f"{MAX_IMPORT_BYTES:,}")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ImportRejected(f"cannot import run: not JSON ({one_line(exc)})") from None

    def reject(message: str):
        raise ImportRejected(f"cannot import run: {message}")

    if not isinstance(data, dict):
        reject("expected a JSON object")
    if data.get("format", FORMAT) != FORMAT:
        reject(f"'format' is {short(data.get('format'))}, not {FORMAT!r}")
    version = data.get("version", FORMAT_VERSION)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        reject(f"format version {short(version)} is newer than this regdemo reads")
    name = data.get("name", "imported run")
    try:
        check_name(name)
    except StoreError as exc:
        reject(str(exc))
    status = data.get("status", FINISHED)
    if status not in STATUSES:
        reject(f"'status' must be one of {', '.join(STATUSES)}; got {short(status)}")
    if status == RUNNING:
        status = INTERRUPTED  # nothing here is writing it any more

    config = data.get("config")
    if not isinstance(config, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and len(v) <= MAX_JSON_TEXT
            and utf8(k) and utf8(v) for k, v in config.items()):
        reject("'config' must be an object of setting names to text values")
    try:
        query = config_query(config)
    except StoreError as exc:
        reject(str(exc))

    summary = data.get("summary")
    if summary is not None and not (isinstance(summary, dict) and len(summary) <= 100
                                    and all(scalar(k) and len(k) <= 100 and scalar(v)
                                            for k, v in summary.items())):
        reject("'summary' must be an object of numbers, text, true/false or null")

    events = data.get("events", [])
    if not isinstance(events, list) or len(events) > MAX_IMPORT_EVENTS:
        reject(f"'events' must be a list of at most {MAX_IMPORT_EVENTS:,} changes")
    for i, e in enumerate(events):
        if not (isinstance(e, dict) and {"epoch", "knob", "old", "new"} <= e.keys()
                and whole(e["epoch"]) and 0 <= e["epoch"] <= MAX_IMPORT_EPOCHS
                and isinstance(e["knob"], str) and EVENT_KNOB.fullmatch(e["knob"])
                and event_value(e["old"]) and event_value(e["new"])):
            reject(f"events[{i}] must be an object with epoch, knob (a setting's name), "
                   "old and new (numbers, true/false or short plain words)")

    return {"name": name, "status": status, "config": query,
            "summary": None if summary is None else revive(summary),
            "events": [revive(e) for e in events], "history": import_history(data, reject)}


def import_history(data: dict, reject) -> list[tuple]:
    history = data.get("history")
    if isinstance(history, list):  # rows, as `python -m regdemo train --out x.json` writes
        if not all(isinstance(row, dict) for row in history):
            reject("'history' rows must be objects")
        history = {f: [row.get(f) for row in history] for f in FIELDS}
    if not isinstance(history, dict):
        reject("'history' must be an object of columns (or a list of rows)")
    columns = []
    for f in FIELDS:
        column = history.get(f)
        if not isinstance(column, list):
            reject(f"history column {f!r} is missing")
        columns.append(column)
    n = len(columns[0])
    if n > MAX_IMPORT_EPOCHS:
        reject(f"{n:,} epochs is over the limit of {MAX_IMPORT_EPOCHS:,}")
    if any(len(c) != n for c in columns):
        reject("history columns have different lengths")
    epochs = columns[0]
    if not all(whole(e) and 0 <= e <= MAX_IMPORT_EPOCHS for e in epochs) or any(
            a >= b for a, b in zip(epochs, epochs[1:])):
        reject(f"history 'epoch' must be whole numbers in increasing order, at most "
               f"{MAX_IMPORT_EPOCHS:,}")
    floats = []
    for f, column in zip(FLOAT_FIELDS, columns[1:]):
        values = []
        for i, v in enumerate(column):
            if v is None:  # how other tools write NaN in JSON
                v = math.nan
            elif isinstance(v, str) and v in TOKENS:
                v = TOKENS[v]
            elif isinstance(v, bool) or not isinstance(v, (int, float)):
                reject(f"history {f!r}[{i}] must be a number; got {short(v)}")
            try:
                values.append(float(v))
            except OverflowError:  # an int past a float's range, like 10**400
                reject(f"history {f!r}[{i}] must be a number in a float's range")
        floats.append(values)
    return list(zip(epochs, *floats))


def whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def scalar(value) -> bool:
    if isinstance(value, str):
        return len(value) <= MAX_JSON_TEXT and utf8(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return -MAX_INT <= value <= MAX_INT
    return value is None or isinstance(value, (bool, float))


def event_value(value) -> bool:
    if isinstance(value, str):
        return EVENT_WORD.fullmatch(value) is not None
    return scalar(value)


def utf8(text: str) -> bool:
    """False for text SQLite cannot store (lone surrogates, e.g. from a "\\udcff" escape)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."


def one_line(exc: BaseException) -> str:
    """An exception as one short line."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."


def config_query(config) -> dict[str, str]:
    """A Config's query dict; a dict is checked by Config.from_query first."""
    if hasattr(config, "to_query"):
        return config.to_query()
    if not isinstance(config, Mapping):
        raise StoreError(f"config must be a Config or its query dict; got {type(config).__name__}")
    from regdemo.config import Config  # lazily: listing runs should not load torch

    parsed, problems = Config.from_query({str(k): str(v) for k, v in config.items()})
    if problems:
        raise StoreError(f"config: {problems[0]}")
    return parsed.to_query()
