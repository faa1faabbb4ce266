"""Saved runs: round trips (NaN included), export/import, bad ids, corrupt files, crashes."""

import csv
import io
import json
import math
import os
import pickle
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from regdemo import run_format as store_  # the saved-run format: its limits and codec
from regdemo.engine import Trainer
from regdemo.presets import PRESETS
from regdemo.records import EpochRecord
from regdemo.store import (
    BadRunId,
    ImportRejected,
    RunStore,
    StoreError,
    UnknownRun,
)

ROOT = Path(__file__).resolve().parent.parent
SMALL = PRESETS["overfit"].config.replace(hidden=(8, 8), epochs=8, n_val=60)


def _record(epoch: int, **changes) -> EpochRecord:
    """A synthetic record whose numbers differ per epoch and field."""
    values = {f: epoch + i / 7 for i, f in enumerate(store_.FLOAT_FIELDS)}
    return EpochRecord(epoch=epoch, **{**values, **changes})


def _same(a, b) -> bool:
    """Equality that counts NaN as equal to NaN, through dicts, lists and tuples."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


@pytest.fixture
def store(tmp_path):
    with RunStore(tmp_path) as s:
        yield s


@pytest.fixture(scope="module")
def trained():
    """A real 8-epoch run with a live change; the last two epochs diverge to inf and NaN."""
    trainer = Trainer(SMALL)
    trainer.fit(4)
    trainer.set_live(lr=0.02, dropout=0.25, early_stopping=True)
    trainer.fit(2)
    records = list(trainer.history)
    records += [records[-1]._replace(epoch=7, train_loss=math.inf, val_loss=-math.inf),
                records[-1]._replace(epoch=8, val_loss=math.nan, objective=math.nan)]
    summary = {**trainer.summary(), "val_loss": math.nan, "gap": math.inf}
    return trainer, records, summary


def test_round_trip_config_history_events_summary_with_nan_and_inf(store, trained):
    """Everything written comes back equal: NaN stays NaN, inf stays inf, bools stay bools."""
    trainer, records, summary = trained
    run_id = store.create(trainer.config, "first", origin="cli")
    store.append(run_id, records[:5])
    store.append(run_id, records[5:], events=trainer.events)
    store.finish(run_id, "diverged", summary)

    run = store.get(run_id)
    assert run.info.name == "first" and run.info.status == "diverged"
    assert run.info.origin == "cli" and run.info.epochs == 8
    config, problems = run.info.to_config()
    assert problems == [] and config == trainer.config
    assert len(run.history) == 8
    assert _same([r.as_dict() for r in run.history], [r.as_dict() for r in records])
    assert run.history[6].train_loss == math.inf and run.history[6].val_loss == -math.inf
    assert math.isnan(run.history[7].val_loss)
    assert run.history[0].gap == records[0].gap
    events = [(e.epoch, e.knob, e.old, e.new) for e in run.events]
    assert _same(events, [(e.epoch, e.knob, e.old, e.new) for e in trainer.events])
    assert {e.knob for e in run.events} == {"lr", "dropout", "early_stopping"}
    assert [e.label for e in run.events] == [e.label for e in trainer.events]
    assert _same(run.info.summary, summary)
    assert math.isnan(run.info.val_loss)  # the summary's, not the last epoch's


def test_append_rewrites_an_epoch_and_reading_sees_the_highest(store):
    """Appending an epoch again replaces it (a retried batch does not duplicate rows)."""
    run_id = store.create(SMALL)
    store.append(run_id, [_record(1), _record(2)])
    store.append(run_id, [_record(2, val_loss=9.5)])
    run = store.get(run_id)
    assert [r.epoch for r in run.history] == [1, 2]
    assert run.history[1].val_loss == 9.5 and run.info.last_val_loss == 9.5


def test_list_newest_first_rename_delete(store):
    """runs() lists newest first with a limit; rename and delete change only their run."""
    ids = [store.create(SMALL, f"run {i}") for i in range(3)]
    store.append(ids[0], [_record(1)])
    assert [r.id for r in store.runs()] == ids[::-1]
    assert [r.id for r in store.runs(limit=2)] == ids[:0:-1]
    store.rename(ids[1], "<b>bold</b> & 'quoted' ünïcode")
    assert store.info(ids[1]).name == "<b>bold</b> & 'quoted' ünïcode"  # stored as given
    store.delete(ids[0])
    assert store.get(ids[0]) is None
    assert [r.id for r in store.runs()] == [ids[2], ids[1]]
    with sqlite3.connect(store.path) as conn:  # the epochs went with it
        assert conn.execute("SELECT count(*) FROM epochs").fetchone()[0] == 0


@pytest.mark.parametrize("name, message", [
    ("x" * (store_.MAX_NAME + 1), "at most"),
    ("", "non-empty"),
    ("   ", "non-empty"),
    ("two\nlines", "control characters"),
    (42, "non-empty text"),
])
def test_bad_names_are_refused(store, name, message):
    """Names are length-limited, non-empty, and one line."""
    run_id = store.create(SMALL, "ok")
    with pytest.raises(StoreError, match=message):
        store.rename(run_id, name)
    with pytest.raises(StoreError, match=message):
        store.create(SMALL, name)
    assert store.info(run_id).name == "ok" and len(store.runs()) == 1


def test_a_name_at_the_limit_is_kept(store):
    """The limit itself is allowed."""
    run_id = store.create(SMALL, "y" * store_.MAX_NAME)
    assert store.info(run_id).name == "y" * store_.MAX_NAME


@pytest.mark.parametrize("bad", [
    "../runs.sqlite3", "0123456789AB", "0123456789a", "0123456789abc", "0123456789ab\n",
    "/etc/passwd", "", None, 123456789012, "0123456789ag",
])
def test_a_bad_run_id_is_refused_everywhere(store, tmp_path, bad):
    """Every entry point refuses a malformed id before touching the database."""
    before = sorted(os.listdir(tmp_path))
    for call in (store.get, store.info, store.delete, store.export_csv, store.export_json,
                 lambda i: store.rename(i, "n"), lambda i: store.append(i, [_record(1)]),
                 lambda i: store.finish(i, "finished", {}),
                 lambda i: store.create(SMALL, run_id=i if i is not None else "x"),
                 lambda i: store.create(SMALL, parent=i if i is not None else "x")):
        with pytest.raises(BadRunId, match="is not a run id"):
            call(bad)
    assert sorted(os.listdir(tmp_path)) == before and store.runs() == []


def test_an_unknown_run_id_is_reported(store):
    """A well-formed id of no run: get is None, the rest raise UnknownRun."""
    ghost = "0123456789ab"
    assert store.get(ghost) is None and store.info(ghost) is None
    for call in (store.delete, store.export_csv, store.export_json,
                 lambda i: store.rename(i, "n"), lambda i: store.append(i, [_record(1)]),
                 lambda i: store.append(i, (), [{"epoch": 1, "knob": "lr", "old": 1, "new": 2}]),
                 lambda i: store.finish(i, "finished", {})):
        with pytest.raises(UnknownRun, match="no saved run with id '0123456789ab'"):
            call(ghost)
    with sqlite3.connect(store.path) as conn:  # nothing half-written
        assert conn.execute("SELECT count(*) FROM epochs").fetchone()[0] == 0


def test_finish_takes_an_end_status_only(store):
    """finish() refuses "running" and unknown words, and keeps the row unchanged."""
    run_id = store.create(SMALL)
    for status in ("running", "done", "Finished"):
        with pytest.raises(StoreError, match="a run ends as one of"):
            store.finish(run_id, status, {})
    assert store.info(run_id).status == "running"


def test_unstorable_values_are_refused_not_pickled(store):
    """A summary holding an arbitrary object is refused (only JSON values are stored)."""
    run_id = store.create(SMALL)
    with pytest.raises(StoreError, match="cannot store a object"):
        store.finish(run_id, "finished", {"thing": object()})


def test_export_csv_parses_back_to_the_same_numbers(store, trained):
    """CSV rows read back with float() equal the stored records, NaN and inf included."""
    _, records, _ = trained
    run_id = store.create(SMALL)
    store.append(run_id, records)
    rows = list(csv.DictReader(io.StringIO(store.export_csv(run_id))))
    assert list(rows[0]) == list(store_.FIELDS)
    parsed = [{k: int(v) if k == "epoch" else float(v) for k, v in row.items()} for row in rows]
    assert _same(parsed, [r.as_dict() for r in records])


def test_export_json_is_strict_and_parses_back_to_the_same_run(store, trained):
    """The JSON has no bare NaN/Infinity tokens and carries config, events, summary, history."""
    trainer, records, summary = trained
    run_id = store.create(trainer.config, "exported")
    store.append(run_id, records, events=trainer.events)
    store.finish(run_id, "diverged", summary)
    text = store.export_json(run_id)

    def refuse(token):
        raise AssertionError(f"non-standard JSON token {token}")

    data = json.loads(text, parse_constant=refuse)
    assert data["format"] == "regdemo-run" and data["name"] == "exported"
    assert data["config"] == trainer.config.to_query()
    assert data["history"]["val_loss"][7] == "NaN"
    assert data["history"]["train_loss"][6] == "Infinity"
    revived = store_.revive(data["history"])
    assert _same([dict(zip(revived, row)) for row in zip(*revived.values())],
                 [r.as_dict() for r in records])
    assert _same(store_.revive(data["summary"]), summary)
    assert len(data["events"]) == len(trainer.events)


def test_import_json_round_trips_as_a_new_run(store, trained):
    """An export imported again is an equal run with a new id and origin "import"."""
    trainer, records, summary = trained
    run_id = store.create(trainer.config, "original", parent="aaaaaaaaaaaa")
    store.append(run_id, records, events=trainer.events)
    store.finish(run_id, "diverged", summary)
    copy_id = store.import_json(store.export_json(run_id).encode())
    original, copy = store.get(run_id), store.get(copy_id)
    assert copy_id != run_id and copy.info.origin == "import" and copy.info.parent is None
    assert copy.info.name == "original" and copy.info.status == "diverged"
    assert copy.info.config == original.info.config and copy.info.epochs == 8
    assert _same(copy.history, original.history)
    assert _same(copy.events, original.events)
    assert _same(copy.info.summary, original.info.summary)


def test_import_accepts_the_train_command_rows_and_null_as_nan(store):
    """History as a list of rows (as `train --out x.json` writes) and null values import."""
    rows = [_record(1).as_dict(), {**_record(2).as_dict(), "val_loss": None}]
    run_id = store.import_json(json.dumps({"config": {"epochs": "2"}, "history": rows}))
    run = store.get(run_id)
    assert run.info.status == "finished" and run.info.config["epochs"] == "2"
    assert run.history[0] == tuple(rows[0].values()) and math.isnan(run.history[1].val_loss)


def test_an_imported_running_run_becomes_interrupted(store):
    """Nothing writes an imported run, so "running" is not believed."""
    empty = {f: [] for f in store_.FIELDS}
    text = json.dumps({"config": {}, "status": "running", "history": empty})
    assert store.info(store.import_json(text)).status == "interrupted"


def _good_export() -> dict:
    return {"format": "regdemo-run", "version": 1, "name": "n", "config": {"epochs": "2"},
            "summary": None, "events": [], "history": {f: [1, 2] for f in store_.FIELDS}}


@pytest.mark.parametrize("change, message", [
    (lambda d: "not json {", "not JSON"),
    (lambda d: [d], "expected a JSON object"),
    (lambda d: {**d, "format": "other"}, "'format' is 'other'"),
    (lambda d: {**d, "version": 2}, "newer than this regdemo reads"),
    (lambda d: {**d, "name": "x" * 500}, "at most 120 characters"),
    (lambda d: {**d, "status": "weird"}, "'status' must be one of"),
    (lambda d: {k: v for k, v in d.items() if k != "config"}, "'config' must be an object"),
    (lambda d: {**d, "config": {"dropout": 0.5}}, "'config' must be an object"),
    (lambda d: {**d, "config": {"dropout": "1.5"}}, "'dropout' must be a float in [0, 0.95]"),
    (lambda d: {**d, "summary": {"a": [1, 2]}}, "'summary' must be an object"),
    (lambda d: {**d, "events": [{"epoch": 1, "knob": "lr"}]}, "events[0] must be an object"),
    (lambda d: {**d, "events": "lr 0.1 -> 0.2"}, "'events' must be a list"),
    (lambda d: {**d, "history": "1,2"}, "'history' must be an object"),
    (lambda d: {**d, "history": {"epoch": [1]}}, "history column 'train_loss' is missing"),
    (lambda d: {**d, "history": {**d["history"], "lr": [1]}}, "different lengths"),
    (lambda d: {**d, "history": {**d["history"], "epoch": [2, 1]}}, "increasing order"),
    (lambda d: {**d, "history": {**d["history"], "epoch": [1, 1.5]}}, "whole numbers"),
    (lambda d: {**d, "history": {**d["history"], "lr": [1, "fast"]}}, "'lr'[1] must be a number"),
    (lambda d: {**d, "history": {**d["history"], "lr": [1, True]}}, "'lr'[1] must be a number"),
])
def test_import_json_rejects_a_bad_schema_clearly(store, change, message):
    """Each kind of malformed export is refused with a message naming the problem."""
    data = change(_good_export())
    text = data if isinstance(data, str) else json.dumps(data)
    with pytest.raises(ImportRejected, match="^cannot import run: .*" + _re(message)):
        store.import_json(text)
    assert store.runs() == []


def _re(text: str) -> str:
    import re

    return re.escape(text)


def test_the_good_export_of_the_schema_test_is_accepted(store):
    """The base of the parametrized rejections imports (so each rejection is its change's)."""
    run_id = store.import_json(json.dumps(_good_export()))
    assert [r.epoch for r in store.get(run_id).history] == [1, 2]


def test_import_json_rejects_oversize_before_parsing(store, monkeypatch):
    """Text over MAX_IMPORT_BYTES is refused by its size (even if it is valid JSON)."""
    text = json.dumps(_good_export())
    monkeypatch.setattr(store_, "MAX_IMPORT_BYTES", len(text) - 1)
    with pytest.raises(ImportRejected, match="over the limit"):
        store.import_json(text)
    monkeypatch.setattr(store_, "MAX_IMPORT_BYTES", len(text))
    store.import_json(text)  # exactly at the limit is fine
    monkeypatch.undo()
    with pytest.raises(ImportRejected, match="over the limit of 33,554,432"):
        store.import_json(b" " * (store_.MAX_IMPORT_BYTES + 1))


def test_import_refuses_too_many_epochs(store, monkeypatch):
    """The epoch limit holds even under the byte limit."""
    monkeypatch.setattr(store_, "MAX_IMPORT_EPOCHS", 1)
    with pytest.raises(ImportRejected, match="2 epochs is over the limit of 1"):
        store.import_json(json.dumps(_good_export()))


def _garbage(path: Path) -> None:
    path.write_bytes(random.Random(0).randbytes(8192))


def _foreign_db(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
    conn.close()


def _truncated_store(path: Path) -> None:
    with RunStore(path) as s:
        run_id = s.create(SMALL)
        s.append(run_id, [_record(e) for e in range(1, 3001)])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("spoil", [_garbage, _foreign_db, _truncated_store])
def test_a_corrupt_file_is_set_aside_and_reported(tmp_path, spoil):
    """A bad file is renamed (bytes kept), `problem` says so, and a fresh store works."""
    path = tmp_path / "runs.sqlite3"
    spoil(path)
    bad_bytes = path.read_bytes()
    with RunStore(tmp_path) as s:
        assert s.persistent
        assert s.problem and "could not be read" in s.problem and "moved to" in s.problem
        aside = [p for p in tmp_path.iterdir() if ".corrupt-" in p.name and "-wal" not in p.name]
        assert len(aside) == 1 and aside[0].name in s.problem
        assert aside[0].read_bytes() == bad_bytes
        run_id = s.create(SMALL)
        s.append(run_id, [_record(1)])
        assert [r.epoch for r in s.get(run_id).history] == [1]
    with RunStore(tmp_path) as again:  # the new file is healthy: nothing more set aside
        assert again.problem is None and len(again.runs()) == 1


def test_a_healthy_store_reports_no_problem(tmp_path):
    """Opening twice (also a second process's view) reports nothing and sets nothing aside."""
    with RunStore(tmp_path) as s:
        s.create(SMALL)
    with RunStore(tmp_path / "runs.sqlite3") as s:
        assert s.problem is None and len(s.runs()) == 1
    assert not [p for p in tmp_path.iterdir() if "corrupt" in p.name]


def test_an_unusable_folder_falls_back_to_memory(tmp_path):
    """If the folder cannot be made, runs live in memory and `problem` says they are not saved."""
    blocker = tmp_path / "afile"
    blocker.write_text("in the way")
    with RunStore(blocker / "runs") as s:
        assert not s.persistent and "not being saved" in s.problem
        run_id = s.create(SMALL)
        assert s.get(run_id).info.status == "running"
    assert blocker.read_text() == "in the way"


def test_data_dir_comes_from_the_environment(tmp_path, monkeypatch):
    """No path: $REGDEMO_DATA_DIR is the folder, created if missing."""
    monkeypatch.setenv("REGDEMO_DATA_DIR", str(tmp_path / "data"))
    with RunStore() as s:
        assert s.path == tmp_path / "data" / "runs.sqlite3" and s.path.exists()


def test_busy_database_waits_for_another_writer(store):
    """An append waits (busy_timeout) while another connection holds the write lock."""
    run_id = store.create(SMALL)
    other = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    threading.Timer(0.3, lambda: other.execute("COMMIT")).start()
    start = time.perf_counter()
    store.append(run_id, [_record(1)])
    assert time.perf_counter() - start >= 0.25
    other.close()
    assert store.info(run_id).epochs == 1


def test_many_threads_share_one_store(store):
    """Eight threads appending to their own runs lose nothing."""
    ids = [store.create(SMALL) for _ in range(8)]
    errors = []

    def write(run_id):
        try:
            for start in range(1, 201, 10):
                store.append(run_id, [_record(e) for e in range(start, start + 10)])
                store.runs()
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [store.info(i).epochs for i in ids] == [200] * 8
    assert all(len(store.get(i).history) == 200 for i in ids)


# The store module alone, without the package (whose __init__ imports torch): a child that
# only appends starts in a fraction of a second.
_LOAD_STORE = textwrap.dedent(f"""
    import importlib.util, sys
    spec = importlib.util.spec_from_file_location("store", {str(ROOT / "regdemo/store.py")!r})
    store = importlib.util.module_from_spec(spec)
    sys.modules["store"] = store
    spec.loader.exec_module(store)
""")


def test_several_processes_write_at_once(store):
    """Three processes append batches to their own runs and a shared one; nothing is lost."""
    own = [store.create(SMALL) for _ in range(3)]
    shared = store.create(SMALL)
    child = _LOAD_STORE + textwrap.dedent("""
        s = store.RunStore(sys.argv[1])
        k, own, shared = int(sys.argv[2]), sys.argv[3], sys.argv[4]
        fields = store.FLOAT_FIELDS
        row = lambda e: {"epoch": e, **{f: e + 0.5 for f in fields}}
        for b in range(40):
            s.append(own, [row(e) for e in range(b * 25 + 1, b * 25 + 26)])
            s.append(shared, [row(k * 10000 + b)])
    """)
    procs = [subprocess.Popen([sys.executable, "-c", child, str(store.path), str(k), own[k],
                               shared], stderr=subprocess.PIPE, text=True) for k in range(3)]
    for p in procs:
        assert p.wait(timeout=60) == 0, p.stderr.read()
        p.stderr.close()
    for run_id in own:
        history = store.get(run_id).history
        assert [r.epoch for r in history] == list(range(1, 1001))
        assert all(r.val_loss == r.epoch + 0.5 for r in history)
    assert len(store.get(shared).history) == 120


def test_a_forked_store_is_rebuilt_from_its_path(store):
    """Pickling (how a worker process would receive it) reopens the same file."""
    run_id = store.create(SMALL, "shared")
    with pickle.loads(pickle.dumps(store)) as clone:
        assert clone.path == store.path and clone.info(run_id).name == "shared"


def test_mark_interrupted_spares_live_runs_of_this_process(store):
    """Runs this process still trains stay "running"; the others it owns become interrupted."""
    live, dead = store.create(SMALL), store.create(SMALL)
    done = store.create(SMALL)
    store.finish(done, "finished", {})
    assert store.mark_interrupted(alive={live}) == [dead]
    assert [store.info(i).status for i in (live, dead, done)] == [
        "running", "interrupted", "finished"]
    assert store.mark_interrupted(alive={live}) == []


def test_sigkill_mid_run_leaves_the_written_epochs(tmp_path):
    """A process appending batches is SIGKILLed; the run keeps exactly the committed batches."""
    batch = 5
    child = _LOAD_STORE + textwrap.dedent(f"""
        import json, time, types
        s = store.RunStore(sys.argv[1])
        query = json.loads(sys.argv[2])
        run_id = s.create(types.SimpleNamespace(to_query=lambda: query), "doomed")
        print(run_id, flush=True)
        epoch = 0
        while True:
            records = []
            for _ in range({batch}):
                epoch += 1
                values = {{f: 1 / epoch + i for i, f in enumerate(store.FLOAT_FIELDS)}}
                records.append({{"epoch": epoch, **values}})
            time.sleep(0.002)  # an epoch's worth of training
            s.append(run_id, records)
            print(epoch, repr(records[-1]["val_loss"]), flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", child, str(tmp_path),
                             json.dumps(SMALL.to_query())],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        run_id = proc.stdout.readline().strip()
        assert store_.is_run_id(run_id), proc.stderr.read()
        with RunStore(tmp_path) as reader:
            seen = [proc.stdout.readline().split() for _ in range(20)]
            # While the child writes: another process reads, and the run is not an orphan.
            assert reader.info(run_id).epochs >= int(seen[-1][0])
            assert reader.mark_interrupted() == []
            os.kill(proc.pid, signal.SIGKILL)
            rest, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    reported = seen + [line.split() for line in rest.splitlines()]
    last = int(reported[-1][0])

    with RunStore(tmp_path) as s:
        assert s.problem is None
        run = s.get(run_id)
        epochs = [r.epoch for r in run.history]
        # Every reported batch is there; at most one more (committed, not yet printed).
        assert epochs == list(range(1, len(epochs) + 1))
        assert len(epochs) in (last, last + batch) and len(epochs) % batch == 0
        for epoch, val_loss in reported:
            assert repr(run.history[int(epoch) - 1].val_loss) == val_loss
        assert run.info.status == "running" and run.info.epochs == len(epochs)
        assert s.mark_interrupted() == [run_id]  # its process is gone
        assert s.info(run_id).status == "interrupted"


@pytest.mark.parametrize("origin", ["", "Page", "a b", "x" * 21, "../x", None])
def test_origin_is_a_short_lowercase_word(store, origin):
    """The origin is display text for the page: a short word, nothing else."""
    with pytest.raises(StoreError, match="origin must be a short lowercase word"):
        store.create(SMALL, origin=origin)
    assert store.runs() == []


def test_each_browser_lists_its_own_runs(tmp_path):
    """runs(browser=...) lists one browser's runs; a run's first browser stays; deleting a
    run forgets its browser too."""
    with RunStore(tmp_path) as store:
        mine, theirs, nobodys = (store.create(SMALL) for _ in range(3))
        store.set_browser(mine, "browser-a-0123456789")
        store.set_browser(theirs, "browser-b-0123456789")
        store.set_browser(theirs, "browser-a-0123456789")  # ignored: B made it
        assert [r.id for r in store.runs(browser="browser-a-0123456789")] == [mine]
        assert [r.id for r in store.runs(browser="browser-b-0123456789")] == [theirs]
        assert {r.id for r in store.runs()} == {mine, theirs, nobodys}  # the CLI sees all
        with pytest.raises(StoreError):
            store.set_browser(mine, "short")
        store.delete(mine)
        assert store.runs(browser="browser-a-0123456789") == []


def test_a_file_from_before_browsers_gets_the_table(tmp_path):
    """A runs file written before the browsers table opens, keeps its runs, and takes
    owners from then on."""
    with RunStore(tmp_path) as store:
        old = store.create(SMALL)
    with sqlite3.connect(tmp_path / "runs.sqlite3") as conn:
        conn.execute("DROP TABLE browsers")
    with RunStore(tmp_path) as store:
        assert [r.id for r in store.runs()] == [old] and not store.problem
        store.set_browser(old, "browser-a-0123456789")
        assert [r.id for r in store.runs(browser="browser-a-0123456789")] == [old]
