"""Saved runs on disk: one SQLite file of runs, their epochs and live changes; CSV/JSON export.

Layout: `<data dir>/runs.sqlite3`, the folder from `REGDEMO_DATA_DIR` (default `./runs`).
- WAL mode with `synchronous=NORMAL`: every committed `append` survives the writer being
  killed (SIGKILL); only a power cut may lose the last few commits. Several processes may
  read and write at once; a writer waits up to BUSY_TIMEOUT for another's transaction.
- Only JSON text and numbers are stored: nothing is pickled or evaluated. Non-finite floats
  in JSON are the strings "NaN", "Infinity", "-Infinity" (strict JSON, browsers parse it);
  in the epochs table inf is a REAL and NaN is NULL (SQLite cannot hold NaN) read back as NaN.
- Run ids are 12 lowercase hex digits, checked before any query; they never name a file.
- A corrupt file is renamed to `runs.sqlite3.corrupt-<time>` and a fresh one started;
  `RunStore.problem` says so, for the page to show. If the file cannot be opened at all,
  the store keeps runs in memory for this process and says that instead.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import math
import numbers
import os
import re
import secrets
import socket
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

ENV_DATA_DIR = "REGDEMO_DATA_DIR"
DEFAULT_DATA_DIR = "runs"
FILE_NAME = "runs.sqlite3"
SCHEMA_VERSION = 1
FORMAT = "regdemo-run"  # the "format" of an exported JSON run
FORMAT_VERSION = 1

BUSY_TIMEOUT = 10.0  # seconds a writer waits for another process's transaction
MAX_NAME = 120  # characters of a run name
MAX_IMPORT_BYTES = 32 * 1024 * 1024  # a 100,000-epoch export is about 25 MB
MAX_IMPORT_EPOCHS = 100_000  # config.MAX_EPOCHS (not imported: the store loads without torch)
MAX_IMPORT_EVENTS = 10_000
MAX_JSON_TEXT = 1000  # characters of one string inside an imported config, summary or event

RUNNING, FINISHED, STOPPED, DIVERGED, INTERRUPTED, FAILED = (
    "running", "finished", "stopped", "diverged", "interrupted", "failed")
STATUSES = (RUNNING, FINISHED, STOPPED, DIVERGED, INTERRUPTED, FAILED)

# engine.EpochRecord's fields, in order (a test keeps them equal; importing the engine here
# would load torch just to list runs).
FIELDS = ("epoch", "train_loss", "val_loss", "train_score", "val_score", "objective",
          "penalty", "weight_norm", "sparsity", "lr", "wall_time")
FLOAT_FIELDS = FIELDS[1:]

_RUN_ID = re.compile(r"[0-9a-f]{12}")
# An imported event names a setting and holds numbers, true/false or short plain words (an
# augmentation's name): nothing a chart label could render as markup.
_EVENT_KNOB = re.compile(r"[a-z][a-z0-9_]{0,39}")
_EVENT_WORD = re.compile(r"[A-Za-z0-9_.+-]{0,40}")
_MAX_INT = 2**63 - 1  # SQLite's INTEGER
_ORIGIN = re.compile(r"[a-z][a-z_]{0,19}")  # who made a run: page, cli, sweep, import, ...
_TOKENS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
# Connections inherited through fork(): closing one in the child could checkpoint and delete
# the WAL the parent still uses, so they are kept referenced and never touched.
_INHERITED: list[sqlite3.Connection] = []

# Which browser made a run (its owner token, a cookie of the page's): the Saved runs tab
# lists a browser's own runs only. Its own table, so files from before it keep working.
_BROWSERS = """CREATE TABLE IF NOT EXISTS browsers (
        run_id TEXT PRIMARY KEY,
        browser TEXT NOT NULL
    ) WITHOUT ROWID"""
_SCHEMA = (
    """CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        created REAL NOT NULL,  -- unix seconds
        updated REAL NOT NULL,
        status TEXT NOT NULL,
        origin TEXT NOT NULL,
        parent TEXT,  -- the run this one was forked from; not a foreign key: may be deleted
        owner TEXT NOT NULL,  -- host:pid:start of the creating process, to spot orphans
        epochs INTEGER NOT NULL DEFAULT 0,  -- highest epoch written
        config TEXT NOT NULL,  -- JSON object: Config.to_query()
        summary TEXT  -- JSON object: Trainer.summary(), NULL until finished
    )""",
    "CREATE INDEX runs_by_created ON runs (created)",
    "CREATE INDEX runs_by_status ON runs (status)",
    "CREATE TABLE epochs (run_id TEXT NOT NULL, epoch INTEGER NOT NULL, "
    + ", ".join(f"{f} REAL" for f in FLOAT_FIELDS)
    + ", PRIMARY KEY (run_id, epoch)) WITHOUT ROWID",
    """CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        knob TEXT NOT NULL,
        old TEXT NOT NULL,  -- JSON value
        new TEXT NOT NULL
    )""",
    "CREATE INDEX events_by_run ON events (run_id, seq)",
    _BROWSERS,
)
_COLUMNS = {
    "runs": ["id", "name", "created", "updated", "status", "origin", "parent", "owner",
             "epochs", "config", "summary"],
    "epochs": ["run_id", *FIELDS],
    "events": ["seq", "run_id", "epoch", "knob", "old", "new"],
    "browsers": ["run_id", "browser"],
}
_INSERT_EPOCH = (f"INSERT OR REPLACE INTO epochs (run_id, {', '.join(FIELDS)}) "
                 f"VALUES (?, {', '.join('?' * len(FIELDS))})")
_INFO_SQL = (
    "SELECT id, name, created, updated, status, origin, parent, epochs, config, summary, "
    "(SELECT val_loss FROM epochs e WHERE e.run_id = runs.id ORDER BY epoch DESC LIMIT 1) "
    "FROM runs"
)


class StoreError(ValueError):
    """A request the store refuses (bad id, unknown run, bad name or status); one line."""


class BadRunId(StoreError):
    """Text that is not a run id (12 lowercase hex digits)."""


class UnknownRun(StoreError, LookupError):
    """A well-formed id with no saved run (never created, or deleted)."""


class ImportRejected(StoreError):
    """A JSON run that is too big or does not fit the export format."""


class _Unusable(Exception):
    """The file is a readable SQLite database but not one of ours (wrong tables)."""


class _TooNew(Exception):
    """The file was written by a newer schema: left alone, not set aside."""


class Epoch(NamedTuple):
    """One stored epoch: engine.EpochRecord's fields and `gap`, without needing torch."""

    epoch: int
    train_loss: float
    val_loss: float
    train_score: float
    val_score: float
    objective: float
    penalty: float
    weight_norm: float
    sparsity: float
    lr: float
    wall_time: float

    @property
    def gap(self) -> float:
        return self.val_loss - self.train_loss

    def as_dict(self) -> dict[str, float]:
        return self._asdict()


class SavedEvent(NamedTuple):
    """A stored live change, shaped like engine.Event (so charts draw its marker)."""

    epoch: int
    knob: str
    old: Any
    new: Any

    @property
    def label(self) -> str:
        fmt = lambda v: f"{v:g}" if isinstance(v, float) else str(v)  # as engine.Event.label
        return f"{self.knob} {fmt(self.old)} -> {fmt(self.new)} @ epoch {self.epoch}"


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
    history: list[Epoch]
    events: list[SavedEvent]

    @property
    def id(self) -> str:
        return self.info.id

    def columns(self) -> dict[str, list]:
        """The history column by column (a pandas DataFrame takes this as it is)."""
        columns = list(zip(*self.history)) or [()] * len(FIELDS)
        return {f: list(c) for f, c in zip(FIELDS, columns)}


def is_run_id(text: Any) -> bool:
    """True for a well-formed run id (12 lowercase hex digits)."""
    return isinstance(text, str) and _RUN_ID.fullmatch(text) is not None


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
    if not _utf8(name):  # a lone surrogate: from a bad JSON escape or undecodable argv bytes
        raise StoreError("a run name must be valid Unicode text (it holds a lone surrogate)")
    return name


def _recovering(method):
    """A store method that survives the file going bad while in use (a disk fault, another
    program writing over it): the damaged file is set aside as at opening, `problem` says so,
    and the method runs once more on the fresh file (where an old run is then unknown)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as exc:
            if not (self.persistent and _is_corrupt(exc)):
                raise
            self._recover(exc)
        return method(self, *args, **kwargs)

    return wrapper


def default_path() -> Path:
    """The database file: $REGDEMO_DATA_DIR/runs.sqlite3, or ./runs/runs.sqlite3."""
    return Path(os.environ.get(ENV_DATA_DIR) or DEFAULT_DATA_DIR) / FILE_NAME


class RunStore:
    """Saved runs in one SQLite file; safe from many threads and many processes at once."""

    def __init__(self, path: str | os.PathLike | None = None):
        if path is None:
            file = default_path()
        else:
            file = Path(path).expanduser()
            if file.suffix not in (".sqlite3", ".sqlite", ".db"):
                file = file / FILE_NAME  # a folder
        self.path = file
        self.problem: str | None = None  # what went wrong opening the file, for the page
        self.persistent = True  # False when runs only live in memory (the file was unusable)
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._conn: sqlite3.Connection | None = self._open()

    def __repr__(self) -> str:
        where = self.path if self.persistent else "memory"
        return f"RunStore({str(where)!r})"

    def __reduce__(self):  # a worker process gets its own connection to the same file
        return (RunStore, (self.path,))

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection; later calls raise StoreError."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    # --- writing

    @_recovering
    def create(self, config, name: str | None = None, *, parent: str | None = None,
               origin: str = "page", run_id: str | None = None) -> str:
        """Save a new run with status "running"; returns its id.

        `config` is a Config or its `to_query()` dict (checked by `Config.from_query`).
        """
        query = _config_query(config)
        name = check_name(name if name is not None else _default_name(query))
        if parent is not None:
            check_run_id(parent)
        if not isinstance(origin, str) or not _ORIGIN.fullmatch(origin):
            raise StoreError(f"origin must be a short lowercase word (page, cli, ...); "
                             f"got {_short(origin)}")
        run_id = check_run_id(run_id) if run_id is not None else secrets.token_hex(6)
        now = time.time()
        with self._write() as conn:
            try:
                conn.execute(
                    "INSERT INTO runs (id, name, created, updated, status, origin, parent, "
                    "owner, config) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (run_id, name, now, now, RUNNING, origin, parent, _owner(), _dumps(query)),
                )
            except sqlite3.IntegrityError:
                raise StoreError(f"a run with id {run_id!r} exists already") from None
        return run_id

    @_recovering
    def append(self, run_id: str, records: Iterable, events: Iterable = ()) -> None:
        """Write epoch records (EpochRecords or dicts), and events, in one transaction.

        Writing an epoch again replaces it. UnknownRun if the run was deleted meanwhile.
        """
        check_run_id(run_id)
        rows = [_epoch_row(run_id, r) for r in records]
        event_rows = [_event_row(run_id, e) for e in events]
        if not rows and not event_rows:
            return
        top = max((row[1] for row in rows), default=0)
        with self._write() as conn:
            self._touch(conn, run_id, "epochs = max(epochs, ?)", top)
            conn.executemany(_INSERT_EPOCH, rows)
            conn.executemany(
                "INSERT INTO events (run_id, epoch, knob, old, new) VALUES (?, ?, ?, ?, ?)",
                event_rows,
            )

    @_recovering
    def finish(self, run_id: str, status: str, summary: Mapping | None = None) -> None:
        """Record how the run ended (a status other than "running") and its summary."""
        check_run_id(run_id)
        if status not in STATUSES or status == RUNNING:
            ended = ", ".join(s for s in STATUSES if s != RUNNING)
            raise StoreError(f"a run ends as one of {ended}; got {status!r}")
        text = None if summary is None else _dumps(dict(summary))
        with self._write() as conn:
            self._touch(conn, run_id, "status = ?, summary = ?", status, text)

    @_recovering
    def set_browser(self, run_id: str, browser: str) -> None:
        """Note which browser made the run (its first owner stays)."""
        check_run_id(run_id)
        if not isinstance(browser, str) or not 16 <= len(browser) <= 64:
            raise StoreError("a browser token is 16 to 64 characters")
        with self._write() as conn:
            conn.execute("INSERT OR IGNORE INTO browsers (run_id, browser) VALUES (?, ?)",
                         (run_id, browser))

    @_recovering
    def rename(self, run_id: str, name: str) -> None:
        """Give a run a new name (stored as given; the page escapes it when drawing)."""
        check_run_id(run_id)
        name = check_name(name)
        with self._write() as conn:
            self._touch(conn, run_id, "name = ?", name)

    @_recovering
    def delete(self, run_id: str) -> None:
        """Delete a run with its epochs and events; UnknownRun if there is none."""
        check_run_id(run_id)
        with self._write() as conn:
            if conn.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount == 0:
                raise UnknownRun(f"no saved run with id {run_id!r}")
            conn.execute("DELETE FROM epochs WHERE run_id = ?", (run_id,))
            conn.execute("DELETE FROM events WHERE run_id = ?", (run_id,))
            conn.execute("DELETE FROM browsers WHERE run_id = ?", (run_id,))

    @_recovering
    def mark_interrupted(self, alive: Iterable[str] = ()) -> list[str]:
        """Mark "running" runs whose writer is gone as "interrupted"; returns their ids.

        A writer is gone when the process that created the run no longer exists (same host),
        or when it is this process and the id is not in `alive` (the runner's live ids).
        """
        alive, me = set(alive), _owner()
        with self._write() as conn:
            rows = conn.execute("SELECT id, owner FROM runs WHERE status = ?", (RUNNING,))
            gone = [run_id for run_id, owner in rows.fetchall()
                    if (owner == me and run_id not in alive) or _owner_gone(owner)]
            conn.executemany("UPDATE runs SET status = ?, updated = ? WHERE id = ?",
                             [(INTERRUPTED, time.time(), run_id) for run_id in gone])
        return gone

    # --- reading

    @_recovering
    def runs(self, limit: int = 200, status: str | None = None,
             browser: str | None = None, unowned_from: str | None = None) -> list[RunInfo]:
        """Saved runs, newest first (at most `limit`; optionally only one status, only one
        browser's runs, and with those the runs of origin `unowned_from` no browser made)."""
        clauses, args = [], []
        if status:
            clauses.append("status = ?")
            args.append(status)
        if browser is not None:
            mine = "id IN (SELECT run_id FROM browsers WHERE browser = ?)"
            args.append(browser)
            if unowned_from is not None:
                mine = (f"({mine} OR (origin = ? AND id NOT IN "
                        "(SELECT run_id FROM browsers)))")
                args.append(unowned_from)
            clauses.append(mine)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        limit = max(0, min(int(limit), _MAX_INT))  # SQLite's LIMIT takes a 64-bit int
        with self._read() as conn:
            rows = conn.execute(
                f"{_INFO_SQL} {where} ORDER BY created DESC, id LIMIT ?", (*args, limit)
            ).fetchall()
        return [_info(row) for row in rows]

    @_recovering
    def info(self, run_id: str) -> RunInfo | None:
        """One run's info without its history, or None."""
        check_run_id(run_id)
        with self._read() as conn:
            row = conn.execute(f"{_INFO_SQL} WHERE id = ?", (run_id,)).fetchone()
        return _info(row) if row else None

    @_recovering
    def get(self, run_id: str) -> SavedRun | None:
        """A run with its history and events (one consistent read), or None if unknown."""
        check_run_id(run_id)
        with self._read() as conn:
            row = conn.execute(f"{_INFO_SQL} WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                return None
            epochs = conn.execute(
                f"SELECT {', '.join(FIELDS)} FROM epochs WHERE run_id = ? ORDER BY epoch",
                (run_id,),
            ).fetchall()
            events = conn.execute(
                "SELECT epoch, knob, old, new FROM events WHERE run_id = ? ORDER BY seq",
                (run_id,),
            ).fetchall()
        history = [Epoch._make(r) if None not in r else _nan_row(r) for r in epochs]
        saved = [SavedEvent(e, k, _loads(o), _loads(n)) for e, k, o, n in events]
        return SavedRun(_info(row), history, saved)

    def require(self, run_id: str) -> SavedRun:
        """Like get, but UnknownRun instead of None."""
        run = self.get(run_id)
        if run is None:
            raise UnknownRun(f"no saved run with id {run_id!r}")
        return run

    # --- export and import

    def export_json(self, run_id: str) -> str:
        """The run as strict JSON: info, config, summary, events, history by columns."""
        run = self.require(run_id)
        info = run.info
        head = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "id": info.id,
            "name": info.name,
            "created": datetime.fromtimestamp(info.created, UTC).isoformat(),
            "status": info.status,
            "origin": info.origin,
            "parent": info.parent,
            "config": info.config,
            "summary": _plain(info.summary),
            "events": [_plain(e._asdict()) for e in run.events],
        }
        body = json.dumps(head, indent=1, allow_nan=False, ensure_ascii=False)
        columns = run.columns()
        # One line per column, not one per number: a long run stays a readable file.
        lines = ",\n".join(
            f"  {json.dumps(f)}: "
            + json.dumps(_plain_column(columns[f]), allow_nan=False, separators=(",", ":"))
            for f in FIELDS
        )
        return body[:-2] + ',\n "history": {\n' + lines + "\n }\n}\n"

    def export_csv(self, run_id: str) -> str:
        """The history as CSV, one row per epoch (floats in full; nan and inf as Python writes
        them, which float() reads back)."""
        run = self.require(run_id)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(FIELDS)
        writer.writerows(run.history)
        return out.getvalue()

    @_recovering
    def import_json(self, text: str | bytes) -> str:
        """Save a run exported by `export_json` as a new run (new id); returns the id.

        ImportRejected, with the reason, if the text is too big or does not fit the format.
        """
        run = _parse_import(text)
        run_id = secrets.token_hex(6)
        now = time.time()
        with self._write() as conn:
            conn.execute(
                "INSERT INTO runs (id, name, created, updated, status, origin, parent, owner, "
                "epochs, config, summary) VALUES (?, ?, ?, ?, ?, 'import', NULL, ?, ?, ?, ?)",
                (run_id, run["name"], now, now, run["status"], _owner(),
                 max((r[0] for r in run["history"]), default=0), _dumps(run["config"]),
                 None if run["summary"] is None else _dumps(run["summary"])),
            )
            conn.executemany(_INSERT_EPOCH, [(run_id, *r) for r in run["history"]])
            conn.executemany(
                "INSERT INTO events (run_id, epoch, knob, old, new) VALUES (?, ?, ?, ?, ?)",
                [(run_id, e["epoch"], e["knob"], _dumps(e["old"]), _dumps(e["new"]))
                 for e in run["events"]],
            )
        return run_id

    # --- connection

    def _touch(self, conn, run_id: str, assignments: str, *values) -> None:
        """UPDATE one run's row (and its `updated` time); UnknownRun if it does not exist."""
        cursor = conn.execute(f"UPDATE runs SET {assignments}, updated = ? WHERE id = ?",
                              (*values, time.time(), run_id))
        if cursor.rowcount == 0:
            raise UnknownRun(f"no saved run with id {run_id!r}")

    def _connection(self) -> sqlite3.Connection:
        if self._pid != os.getpid():  # forked: a fresh lock and connection of our own
            if self._conn is not None:
                _INHERITED.append(self._conn)
            self._lock, self._pid = threading.RLock(), os.getpid()
            self._conn = self._open()
        if self._conn is None:
            raise StoreError("the run store is closed")
        return self._conn

    @contextlib.contextmanager
    def _write(self):
        """One write transaction; BEGIN IMMEDIATE takes the write lock up front, so a busy
        database waits (busy_timeout) instead of failing halfway through."""
        if self._pid != os.getpid():
            self._connection()
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # never leave the shared connection mid-transaction
                    conn.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def _read(self):
        """One read transaction: every query inside sees the same snapshot."""
        if self._pid != os.getpid():
            self._connection()
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    def _open(self) -> sqlite3.Connection:
        """Open the file; set a corrupt one aside, or fall back to memory if it can't open."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return _open_checked(self.path)
        except (sqlite3.DatabaseError, _Unusable) as exc:
            if not _is_corrupt(exc):
                return self._in_memory(exc)
            first = exc
        except (sqlite3.Error, OSError, _TooNew) as exc:
            return self._in_memory(exc)
        try:
            with _file_lock(self.path.with_name(self.path.name + ".lock")):
                try:  # another process may have set it aside and started a new one already
                    return _open_checked(self.path)
                except (sqlite3.DatabaseError, _Unusable) as exc:
                    if not _is_corrupt(exc):
                        raise
                aside = _set_aside(self.path)
                conn = _open_checked(self.path)
        except (sqlite3.Error, OSError, _Unusable, _TooNew) as exc:
            return self._in_memory(exc)
        self.problem = (f"The saved-runs file {self.path} could not be read ({_one_line(first)});"
                        f" it was moved to {aside.name} and a new, empty file was started.")
        return conn

    def _recover(self, exc: BaseException) -> None:
        """Reopen after `exc` showed the file damaged in use; set it aside if it still is."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
            self.problem = None
            self._conn = self._open()
            if self.problem is None:  # healthy now (another process set it aside first)
                self.problem = (f"The saved-runs file {self.path} was found damaged while in "
                                f"use ({_one_line(exc)}); it was opened again.")

    def _in_memory(self, exc: BaseException) -> sqlite3.Connection:
        self.persistent = False
        self.problem = (f"Runs are not being saved: the saved-runs file {self.path} could not "
                        f"be used ({_one_line(exc)}).")
        return _open_checked(":memory:")


# --- helpers


def _open_checked(file) -> sqlite3.Connection:
    """A connection with WAL, our schema, and a passed quick integrity check."""
    conn = sqlite3.connect(file, timeout=BUSY_TIMEOUT, isolation_level=None,
                           check_same_thread=False)  # our own lock serializes threads
    try:
        result = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
        if result != "ok":
            raise _Unusable(f"integrity check: {result}")
        _ensure_schema(conn)  # before WAL: a file that is not ours is left byte for byte
        conn.execute("PRAGMA journal_mode=WAL").fetchone()
        conn.execute("PRAGMA synchronous=NORMAL")  # durable across a killed process in WAL
    except BaseException:
        conn.close()
        raise
    return conn


def _ensure_schema(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")  # two processes starting at once: one creates, one checks
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
        if version == 0 and not tables:
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif version > SCHEMA_VERSION:
            raise _TooNew(f"it was written by a newer regdemo (schema {version})")
        else:
            if "runs" in tables:  # a file from before the browsers table: add it
                conn.execute(_BROWSERS)
            for table, columns in _COLUMNS.items():
                found = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
                if found != columns:
                    raise _Unusable(f"table {table!r} is not a saved-runs table")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _is_corrupt(exc: BaseException) -> bool:
    if isinstance(exc, _Unusable):
        return True
    if getattr(exc, "sqlite_errorname", None) in ("SQLITE_CORRUPT", "SQLITE_NOTADB"):
        return True
    text = str(exc)
    return "not a database" in text or "malformed" in text


def _set_aside(path: Path) -> Path:
    """Rename the file (with its -wal and -shm, which belong to it) to .corrupt-<time>."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while aside.exists():
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        n += 1
    os.replace(path, aside)
    for suffix in ("-wal", "-shm"):  # a stale WAL would be replayed into the new file
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.replace(side, aside.with_name(aside.name + suffix))
    return aside


@contextlib.contextmanager
def _file_lock(path: Path):
    """An exclusive lock between processes (only taken on the rare set-aside path)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: the set-aside is still correct for one process
        yield
        return
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."


def _process_start(pid: int) -> str:
    """The process's start time in clock ticks (Linux), so a reused pid is not mistaken."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "?"


def _owner() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_process_start(pid)}"


def _owner_gone(owner: str) -> bool:
    """True if `owner` (host:pid:start) names a process on this host that no longer exists."""
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname():
        return False  # another machine's process: we cannot tell
    _, pid, start = parts
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError):
        return False
    return start != "?" and _process_start(int(pid)) not in (start, "?")


def _config_query(config) -> dict[str, str]:
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


def _default_name(query: Mapping[str, str]) -> str:
    hidden = query.get("hidden") or "linear"
    return f"{query.get('dataset', 'run')} {hidden} seed {query.get('seed', '?')}"


def _epoch_row(run_id: str, record) -> tuple:
    get = record.get if isinstance(record, Mapping) else record.__getattribute__
    try:
        epoch = get("epoch")
        if isinstance(epoch, bool) or int(epoch) != epoch or epoch < 0:
            raise StoreError(f"an epoch must be a whole number >= 0; got {epoch!r}")
        # float(): numpy/torch scalars become plain floats (sqlite3 binds nothing else)
        return (run_id, int(epoch), *(float(get(f)) for f in FLOAT_FIELDS))
    except (AttributeError, KeyError, TypeError) as exc:
        raise StoreError(f"not an epoch record ({_one_line(exc)})") from None


def _event_row(run_id: str, event) -> tuple:
    get = event.get if isinstance(event, Mapping) else event.__getattribute__
    try:
        return (run_id, int(get("epoch")), str(get("knob")), _dumps(get("old")),
                _dumps(get("new")))
    except (AttributeError, KeyError, TypeError) as exc:
        raise StoreError(f"not an event ({_one_line(exc)})") from None


def _info(row) -> RunInfo:
    (run_id, name, created, updated, status, origin, parent, epochs, config, summary,
     last) = row
    return RunInfo(
        id=run_id, name=name, created=created, updated=updated, status=status, origin=origin,
        parent=parent, epochs=epochs, config=json.loads(config),
        summary=None if summary is None else _loads(summary),
        last_val_loss=None if epochs == 0 else (math.nan if last is None else last),
    )


def _plain(value):
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
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    raise StoreError(f"cannot store a {type(value).__name__} as JSON")


def _plain_column(values: list) -> list:
    """_plain for a list of numbers, fast when all are finite (the usual case)."""
    return values if all(map(math.isfinite, values)) else _plain(values)


def _nan_row(row: tuple) -> Epoch:
    return Epoch._make(math.nan if v is None else v for v in row)


def _revive(value):
    """The inverse of _plain: the three non-finite tokens back to floats."""
    if isinstance(value, str):
        return _TOKENS.get(value, value)
    if isinstance(value, dict):
        return {k: _revive(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_revive(v) for v in value]
    return value


def _dumps(value) -> str:
    return json.dumps(_plain(value), allow_nan=False, separators=(",", ":"), ensure_ascii=False)


def _loads(text: str):
    return _revive(json.loads(text))


# --- import checks


def _parse_import(text: str | bytes) -> dict:
    """The checked content of an exported run, or ImportRejected with the first problem."""
    size = len(text.encode() if isinstance(text, str) else text)
    if size > MAX_IMPORT_BYTES:
        raise ImportRejected(f"cannot import run: {size:,} bytes is over the limit of "
                             f"{MAX_IMPORT_BYTES:,}")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ImportRejected(f"cannot import run: not JSON ({_one_line(exc)})") from None

    def reject(message: str):
        raise ImportRejected(f"cannot import run: {message}")

    if not isinstance(data, dict):
        reject("expected a JSON object")
    if data.get("format", FORMAT) != FORMAT:
        reject(f"'format' is {_short(data.get('format'))}, not {FORMAT!r}")
    version = data.get("version", FORMAT_VERSION)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        reject(f"format version {_short(version)} is newer than this regdemo reads")
    name = data.get("name", "imported run")
    try:
        check_name(name)
    except StoreError as exc:
        reject(str(exc))
    status = data.get("status", FINISHED)
    if status not in STATUSES:
        reject(f"'status' must be one of {', '.join(STATUSES)}; got {_short(status)}")
    if status == RUNNING:
        status = INTERRUPTED  # nothing here is writing it any more

    config = data.get("config")
    if not isinstance(config, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and len(v) <= MAX_JSON_TEXT
            and _utf8(k) and _utf8(v) for k, v in config.items()):
        reject("'config' must be an object of setting names to text values")
    try:
        query = _config_query(config)
    except StoreError as exc:
        reject(str(exc))

    summary = data.get("summary")
    if summary is not None and not (isinstance(summary, dict) and len(summary) <= 100
                                    and all(_scalar(k) and len(k) <= 100 and _scalar(v)
                                            for k, v in summary.items())):
        reject("'summary' must be an object of numbers, text, true/false or null")

    events = data.get("events", [])
    if not isinstance(events, list) or len(events) > MAX_IMPORT_EVENTS:
        reject(f"'events' must be a list of at most {MAX_IMPORT_EVENTS:,} changes")
    for i, e in enumerate(events):
        if not (isinstance(e, dict) and {"epoch", "knob", "old", "new"} <= e.keys()
                and _whole(e["epoch"]) and 0 <= e["epoch"] <= MAX_IMPORT_EPOCHS
                and isinstance(e["knob"], str) and _EVENT_KNOB.fullmatch(e["knob"])
                and _event_value(e["old"]) and _event_value(e["new"])):
            reject(f"events[{i}] must be an object with epoch, knob (a setting's name), "
                   "old and new (numbers, true/false or short plain words)")

    return {"name": name, "status": status, "config": query,
            "summary": None if summary is None else _revive(summary),
            "events": [_revive(e) for e in events], "history": _import_history(data, reject)}


def _import_history(data: dict, reject) -> list[tuple]:
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
    if not all(_whole(e) and 0 <= e <= MAX_IMPORT_EPOCHS for e in epochs) or any(
            a >= b for a, b in zip(epochs, epochs[1:])):
        reject(f"history 'epoch' must be whole numbers in increasing order, at most "
               f"{MAX_IMPORT_EPOCHS:,}")
    floats = []
    for f, column in zip(FLOAT_FIELDS, columns[1:]):
        values = []
        for i, v in enumerate(column):
            if v is None:  # how other tools write NaN in JSON
                v = math.nan
            elif isinstance(v, str) and v in _TOKENS:
                v = _TOKENS[v]
            elif isinstance(v, bool) or not isinstance(v, (int, float)):
                reject(f"history {f!r}[{i}] must be a number; got {_short(v)}")
            try:
                values.append(float(v))
            except OverflowError:  # an int past a float's range, like 10**400
                reject(f"history {f!r}[{i}] must be a number in a float's range")
        floats.append(values)
    return list(zip(epochs, *floats))


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _scalar(value) -> bool:
    if isinstance(value, str):
        return len(value) <= MAX_JSON_TEXT and _utf8(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return -_MAX_INT <= value <= _MAX_INT
    return value is None or isinstance(value, (bool, float))


def _event_value(value) -> bool:
    if isinstance(value, str):
        return _EVENT_WORD.fullmatch(value) is not None
    return _scalar(value)


def _utf8(text: str) -> bool:
    """False for text SQLite cannot store (lone surrogates, e.g. from a "\\udcff" escape)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."
