"""Uploaded tables in the runs file's `datasets` table, and the lookup by hash that
datasets.py uses. SQLite through store_file only: importing the run store (and through it
the config) from datasets.py would be an import cycle."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections import OrderedDict

from regdemo import store_file
from regdemo.uploads import Table, pack, unpack

# Tables by hash, newest use last. Content-addressed, so never stale; a handful, since each
# may hold up to uploads.MAX_CELLS values (16 MB).
CACHE_SIZE = 4
_cache: OrderedDict[str, Table] = OrderedDict()
_lock = threading.Lock()


def save(conn: sqlite3.Connection, table: Table) -> str:
    """Insert the table (once: the first save of a hash wins); returns its hash."""
    digest = table.digest
    conn.execute(
        "INSERT OR IGNORE INTO datasets (hash, created, task, target, rows, dropped, meta, "
        "arrays) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (digest, time.time(), table.task, table.target, table.rows, table.dropped,
         json.dumps(table.meta(), ensure_ascii=False), pack(table)),
    )
    return digest


def load(conn: sqlite3.Connection, digest: str) -> Table | None:
    """The table saved under `digest`, or None (unknown, or its bytes do not check out)."""
    row = conn.execute("SELECT meta, arrays FROM datasets WHERE hash = ?",
                       (digest,)).fetchone()
    if row is None:
        return None
    try:
        meta = json.loads(row[0])
    except (TypeError, ValueError):
        return None
    return unpack(meta, row[1], digest) if isinstance(meta, dict) else None


def remember(table: Table) -> None:
    """Keep a table this process saved or read, for the next lookup of its hash."""
    with _lock:
        _cache[table.digest] = table
        _cache.move_to_end(table.digest)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)


def lookup(digest: str) -> Table | None:
    """The table of a hash: from this process's cache, else from the runs file at
    store_file.default_path() (the folder every process of the server shares)."""
    with _lock:
        if digest in _cache:
            _cache.move_to_end(digest)
            return _cache[digest]
    path = store_file.default_path()
    if not path.is_file():  # nothing saved yet: do not create the file just to look
        return None
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=store_file.BUSY_TIMEOUT)) as c:
            table = load(c, digest)
    except sqlite3.Error:  # an older file without the table, or a damaged one: not here
        return None
    if table is not None:
        remember(table)
    return table
