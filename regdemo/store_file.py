"""The SQLite file under the run store: its schema, opening it with checks, setting a
damaged file aside, and the owner tokens that tell a dead writer's runs (store.py keeps
the runs; this module keeps the file)."""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import time
from pathlib import Path

from regdemo.records import FIELDS, FLOAT_FIELDS

SCHEMA_VERSION = 1
ENV_DATA_DIR = "REGDEMO_DATA_DIR"
DEFAULT_DATA_DIR = "runs"
FILE_NAME = "runs.sqlite3"

BUSY_TIMEOUT = 10.0  # seconds a writer waits for another process's transaction

# Which browser made a run (its owner token, a cookie of the page's): the Saved runs tab
# lists a browser's own runs only. Its own table, so files from before it keep working.
BROWSERS_TABLE = """CREATE TABLE IF NOT EXISTS browsers (
        run_id TEXT PRIMARY KEY,
        browser TEXT NOT NULL
    ) WITHOUT ROWID"""
# Uploaded data (regdemo/uploads.py), by content hash: a run's config names it as
# upload:<hash>, and every process of the server reads it from here. Also its own table.
DATASETS_TABLE = """CREATE TABLE IF NOT EXISTS datasets (
        hash TEXT PRIMARY KEY,  -- 16 hex digits of the content's sha256
        created REAL NOT NULL,
        task TEXT NOT NULL,  -- classification or regression
        target TEXT NOT NULL,
        rows INTEGER NOT NULL,
        dropped INTEGER NOT NULL,  -- rows left out for a missing value
        meta TEXT NOT NULL,  -- JSON: input names, classes, ... (uploads.Table.meta)
        arrays BLOB NOT NULL  -- npz, compressed, of x and y (no pickles)
    )"""
SCHEMA = (
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
    BROWSERS_TABLE,
    DATASETS_TABLE,
)
COLUMNS = {
    "runs": ["id", "name", "created", "updated", "status", "origin", "parent", "owner",
             "epochs", "config", "summary"],
    "epochs": ["run_id", *FIELDS],
    "events": ["seq", "run_id", "epoch", "knob", "old", "new"],
    "browsers": ["run_id", "browser"],
    "datasets": ["hash", "created", "task", "target", "rows", "dropped", "meta", "arrays"],
}


def default_path() -> Path:
    """The database file: $REGDEMO_DATA_DIR/runs.sqlite3, or ./runs/runs.sqlite3."""
    return Path(os.environ.get(ENV_DATA_DIR) or DEFAULT_DATA_DIR) / FILE_NAME


class Unusable(Exception):
    """The file is a readable SQLite database but not one of ours (wrong tables)."""


class TooNew(Exception):
    """The file was written by a newer schema: left alone, not set aside."""




def open_checked(file) -> sqlite3.Connection:
    """A connection with WAL, our schema, and a passed quick integrity check."""
    conn = sqlite3.connect(file, timeout=BUSY_TIMEOUT, isolation_level=None,
                           check_same_thread=False)  # our own lock serializes threads
    try:
        result = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
        if result != "ok":
            raise Unusable(f"integrity check: {result}")
        ensure_schema(conn)  # before WAL: a file that is not ours is left byte for byte
        conn.execute("PRAGMA journal_mode=WAL").fetchone()
        conn.execute("PRAGMA synchronous=NORMAL")  # durable across a killed process in WAL
    except BaseException:
        conn.close()
        raise
    return conn


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create our tables in an empty file, or check that a file's tables are ours."""
    conn.execute("BEGIN IMMEDIATE")  # two processes starting at once: one creates, one checks
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
        if version == 0 and not tables:
            for statement in SCHEMA:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif version > SCHEMA_VERSION:
            raise TooNew(f"it was written by a newer regdemo (schema {version})")
        else:
            if "runs" in tables:  # a file from before these tables: add them
                conn.execute(BROWSERS_TABLE)
                conn.execute(DATASETS_TABLE)
            for table, columns in COLUMNS.items():
                found = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
                if found != columns:
                    raise Unusable(f"table {table!r} is not a saved-runs table")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def is_corrupt(exc: BaseException) -> bool:
    """True when `exc` says the file is damaged or not a saved-runs database."""
    if isinstance(exc, Unusable):
        return True
    if getattr(exc, "sqlite_errorname", None) in ("SQLITE_CORRUPT", "SQLITE_NOTADB"):
        return True
    text = str(exc)
    return "not a database" in text or "malformed" in text


def set_aside(path: Path) -> Path:
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
def file_lock(path: Path):
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


def process_start(pid: int) -> str:
    """The process's start time in clock ticks (Linux), so a reused pid is not mistaken."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "?"


def owner_token() -> str:
    """This process as host:pid:start, the owner of the runs it creates."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{process_start(pid)}"


def owner_gone(owner: str) -> bool:
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
    return start != "?" and process_start(int(pid)) not in (start, "?")
