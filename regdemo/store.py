"""Saved runs on disk: one SQLite file of runs, their epochs and live changes; CSV/JSON export.

Layout: `<data dir>/runs.sqlite3`, the folder from `REGDEMO_DATA_DIR` (default `./runs`).
- WAL mode with `synchronous=NORMAL`: every committed `append` survives the writer being
  killed (SIGKILL); only a power cut may lose the last few commits. Several processes may
  read and write at once; a writer waits up to store_file.BUSY_TIMEOUT for another's transaction.
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
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from regdemo import dataset_shelf, store_file
from regdemo.records import EpochRecord, Event
from regdemo.run_format import (
    DIVERGED,
    FAILED,
    FIELDS,
    FINISHED,
    FLOAT_FIELDS,
    FORMAT,
    FORMAT_VERSION,
    INTERRUPTED,
    MAX_IMPORT_BYTES,
    MAX_INT,
    ORIGIN,
    RUNNING,
    STATUSES,
    STOPPED,
    BadRunId,
    ImportRejected,
    RunInfo,
    SavedRun,
    StoreError,
    UnknownRun,
    check_name,
    check_run_id,
    config_query,
    dumps,
    is_run_id,
    loads,
    nan_row,
    one_line,
    parse_import,
    plain,
    plain_column,
    short,
)

# Where the file is (stated in store_file, which the dataset lookup reads without this module).
from regdemo.store_file import DEFAULT_DATA_DIR, ENV_DATA_DIR, FILE_NAME, default_path
from regdemo.uploads import HASH

# What callers take from here (the format's names are re-exported for them).
__all__ = ["DEFAULT_DATA_DIR", "DIVERGED", "ENV_DATA_DIR", "FAILED", "FILE_NAME", "FINISHED",
           "FLOAT_FIELDS", "INTERRUPTED", "MAX_IMPORT_BYTES", "RUNNING", "STATUSES", "STOPPED",
           "BadRunId", "ImportRejected", "RunInfo", "RunStore", "SavedRun", "StoreError",
           "UnknownRun", "check_run_id", "default_path", "is_run_id"]

# Connections inherited through fork(): closing one in the child could checkpoint and delete
# the WAL the parent still uses, so they are kept referenced and never touched.
_INHERITED: list[sqlite3.Connection] = []
_INSERT_EPOCH = (f"INSERT OR REPLACE INTO epochs (run_id, {', '.join(FIELDS)}) "
                 f"VALUES (?, {', '.join('?' * len(FIELDS))})")
_INFO_SQL = (
    "SELECT id, name, created, updated, status, origin, parent, epochs, config, summary, "
    "(SELECT val_loss FROM epochs e WHERE e.run_id = runs.id ORDER BY epoch DESC LIMIT 1) "
    "FROM runs"
)


def _recovering(method):
    """A store method that survives the file going bad while in use (a disk fault, another
    program writing over it): the damaged file is set aside as at opening, `problem` says so,
    and the method runs once more on the fresh file (where an old run is then unknown)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as exc:
            if not (self.persistent and store_file.is_corrupt(exc)):
                raise
            self._recover(exc)
        return method(self, *args, **kwargs)

    return wrapper


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
        query = config_query(config)
        name = check_name(name if name is not None else _default_name(query))
        if parent is not None:
            check_run_id(parent)
        if not isinstance(origin, str) or not ORIGIN.fullmatch(origin):
            raise StoreError(f"origin must be a short lowercase word (page, cli, ...); "
                             f"got {short(origin)}")
        run_id = check_run_id(run_id) if run_id is not None else secrets.token_hex(6)
        now = time.time()
        with self._write() as conn:
            try:
                conn.execute(
                    "INSERT INTO runs (id, name, created, updated, status, origin, parent, "
                    "owner, config) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (run_id, name, now, now, RUNNING, origin, parent,
                     store_file.owner_token(), dumps(query)),
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
        text = None if summary is None else dumps(dict(summary))
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
    def save_dataset(self, table) -> str:
        """Keep an uploaded table (uploads.Table) by its content hash; returns the hash."""
        with self._write() as conn:
            digest = dataset_shelf.save(conn, table)
        dataset_shelf.remember(table)
        return digest

    @_recovering
    def load_dataset(self, digest: str):
        """The uploaded table saved under `digest` (16 hex digits), or None."""
        if not isinstance(digest, str) or not HASH.fullmatch(digest):
            raise StoreError(f"a dataset hash is 16 lowercase hex digits; got {short(digest)}")
        with self._read() as conn:
            return dataset_shelf.load(conn, digest)

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
            # Uploaded tables stay: other runs and shared links may name the same data.

    @_recovering
    def mark_interrupted(self, alive: Iterable[str] = ()) -> list[str]:
        """Mark "running" runs whose writer is gone as "interrupted"; returns their ids.

        A writer is gone when the process that created the run no longer exists (same host),
        or when it is this process and the id is not in `alive` (the runner's live ids).
        """
        alive, me = set(alive), store_file.owner_token()
        with self._write() as conn:
            rows = conn.execute("SELECT id, owner FROM runs WHERE status = ?", (RUNNING,))
            gone = [run_id for run_id, owner in rows.fetchall()
                    if (owner == me and run_id not in alive) or store_file.owner_gone(owner)]
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
        limit = max(0, min(int(limit), MAX_INT))  # SQLite's LIMIT takes a 64-bit int
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
        history = [EpochRecord._make(r) if None not in r else nan_row(r) for r in epochs]
        saved = [Event(e, k, loads(o), loads(n)) for e, k, o, n in events]
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
            "summary": plain(info.summary),
            "events": [plain(e._asdict()) for e in run.events],
        }
        body = json.dumps(head, indent=1, allow_nan=False, ensure_ascii=False)
        columns = run.columns()
        # One line per column, not one per number: a long run stays a readable file.
        lines = ",\n".join(
            f"  {json.dumps(f)}: "
            + json.dumps(plain_column(columns[f]), allow_nan=False, separators=(",", ":"))
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
        run = parse_import(text)
        run_id = secrets.token_hex(6)
        now = time.time()
        with self._write() as conn:
            conn.execute(
                "INSERT INTO runs (id, name, created, updated, status, origin, parent, owner, "
                "epochs, config, summary) VALUES (?, ?, ?, ?, ?, 'import', NULL, ?, ?, ?, ?)",
                (run_id, run["name"], now, now, run["status"], store_file.owner_token(),
                 max((r[0] for r in run["history"]), default=0), dumps(run["config"]),
                 None if run["summary"] is None else dumps(run["summary"])),
            )
            conn.executemany(_INSERT_EPOCH, [(run_id, *r) for r in run["history"]])
            conn.executemany(
                "INSERT INTO events (run_id, epoch, knob, old, new) VALUES (?, ?, ?, ?, ?)",
                [(run_id, e["epoch"], e["knob"], dumps(e["old"]), dumps(e["new"]))
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
    def _transaction(self, begin: str):
        """One transaction on the shared connection, rolled back if the block fails."""
        if self._pid != os.getpid():
            self._connection()
        with self._lock:
            conn = self._connection()
            conn.execute(begin)
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:  # never leave the shared connection mid-transaction
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _write(self):
        """A write transaction; BEGIN IMMEDIATE takes the write lock up front, so a busy
        database waits (busy_timeout) instead of failing halfway through."""
        return self._transaction("BEGIN IMMEDIATE")

    def _read(self):
        """A read transaction: every query inside sees the same snapshot."""
        return self._transaction("BEGIN")

    def _open(self) -> sqlite3.Connection:
        """Open the file; set a corrupt one aside, or fall back to memory if it can't open."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return store_file.open_checked(self.path)
        except (sqlite3.DatabaseError, store_file.Unusable) as exc:
            if not store_file.is_corrupt(exc):
                return self._in_memory(exc)
            first = exc
        except (sqlite3.Error, OSError, store_file.TooNew) as exc:
            return self._in_memory(exc)
        try:
            with store_file.file_lock(self.path.with_name(self.path.name + ".lock")):
                try:  # another process may have set it aside and started a new one already
                    return store_file.open_checked(self.path)
                except (sqlite3.DatabaseError, store_file.Unusable) as exc:
                    if not store_file.is_corrupt(exc):
                        raise
                aside = store_file.set_aside(self.path)
                conn = store_file.open_checked(self.path)
        except (sqlite3.Error, OSError, store_file.Unusable, store_file.TooNew) as exc:
            return self._in_memory(exc)
        self.problem = (f"The saved-runs file {self.path} could not be read ({one_line(first)});"
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
                                f"use ({one_line(exc)}); it was opened again.")

    def _in_memory(self, exc: BaseException) -> sqlite3.Connection:
        self.persistent = False
        self.problem = (f"Runs are not being saved: the saved-runs file {self.path} could not "
                        f"be used ({one_line(exc)}).")
        return store_file.open_checked(":memory:")


# --- rows

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
        raise StoreError(f"not an epoch record ({one_line(exc)})") from None


def _event_row(run_id: str, event) -> tuple:
    get = event.get if isinstance(event, Mapping) else event.__getattribute__
    try:
        return (run_id, int(get("epoch")), str(get("knob")), dumps(get("old")),
                dumps(get("new")))
    except (AttributeError, KeyError, TypeError) as exc:
        raise StoreError(f"not an event ({one_line(exc)})") from None


def _info(row) -> RunInfo:
    (run_id, name, created, updated, status, origin, parent, epochs, config, summary,
     last) = row
    return RunInfo(
        id=run_id, name=name, created=created, updated=updated, status=status, origin=origin,
        parent=parent, epochs=epochs, config=json.loads(config),
        summary=None if summary is None else loads(summary),
        last_val_loss=None if epochs == 0 else (math.nan if last is None else last),
    )
