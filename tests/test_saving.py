"""Runs save themselves: the runner's saver writes epochs, events and endings to the store."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from regdemo.config import Config
from regdemo.runner import ProcessRunner, ThreadRunner
from regdemo.store import RunStore

SMALL = Config(dataset="moons", n_train=40, n_val=60, hidden=(16, 16), epochs=30)
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def store(tmp_path):
    with RunStore(tmp_path) as s:
        yield s


@pytest.fixture
def runner(store):
    r = ThreadRunner(store=store, save_interval=0.05)
    yield r
    r.stop_all()


def _saved(store, handle):
    return store.get(handle.saved_id)


def test_a_finished_run_is_saved_with_every_epoch_event_and_summary(runner, store):
    handle = runner.create(SMALL)
    handle.step(10)
    assert handle.wait()
    handle.set_live(dropout=0.25)
    handle.start()
    assert handle.wait()
    runner.save_now()
    saved = _saved(store, handle)
    snap = handle.snapshot()
    assert [e.epoch for e in saved.history] == list(range(1, 31))
    assert [e.val_loss for e in saved.history] == [r.val_loss for r in snap.history]
    assert [e.label for e in saved.events] == ["dropout 0 -> 0.25 @ epoch 10"]
    assert saved.info.status == "finished"
    assert saved.info.summary["val_loss"] == snap.history[-1].val_loss
    assert saved.info.summary["best_epoch"] == snap.best_epoch
    # The config it started with: with the events, that replays the run.
    assert saved.info.to_config()[0] == SMALL


def test_an_untrained_run_leaves_nothing_and_a_reset_run_is_stopped(runner, store):
    idle = runner.create(SMALL)
    runner.forget(idle.id)
    assert store.runs() == []
    handle = runner.create(SMALL.replace(epochs=1000))
    handle.step(5)
    assert handle.wait()
    runner.forget(handle.id)  # Reset in the page
    info = store.info(handle.saved_id)
    assert (info.status, info.epochs) == ("stopped", 5)


def test_a_fork_is_saved_with_its_parent_and_the_shared_history(runner, store):
    parent = runner.create(SMALL)
    parent.step(8)
    assert parent.wait()
    child = parent.fork()
    child.set_live(l2=0.01)
    child.step(4)
    assert child.wait()
    runner.save_now()
    saved = _saved(store, child)
    assert saved.info.parent == parent.saved_id and saved.info.origin == "fork"
    assert [e.epoch for e in saved.history] == list(range(1, 13))
    assert [e.label for e in saved.events] == ["l2 0 -> 0.01 @ epoch 8"]


def test_a_diverged_run_is_saved_as_diverged(runner, store):
    handle = runner.create(Config(dataset="sine", optimizer="sgd", lr=10.0, epochs=200))
    handle.start()
    assert handle.wait()
    runner.save_now()
    info = store.info(handle.saved_id)
    assert info.status == "diverged" and "diverged" in info.summary["stop_reason"]


def test_the_process_backend_saves_too(store):
    runner = ProcessRunner(workers=1, store=store, save_interval=0.05)
    try:
        assert runner.wait_ready(90)
        handle = runner.create(SMALL)
        handle.start()
        assert handle.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (
                handle.saved_id is None or store.info(handle.saved_id).status != "finished"):
            time.sleep(0.05)
        saved = _saved(store, handle)
        assert [e.epoch for e in saved.history] == list(range(1, 31))
        assert saved.info.status == "finished"
    finally:
        runner.shutdown()


_SERVER = """
import sys, time
from regdemo.config import Config
from regdemo.runner import ThreadRunner
from regdemo.store import RunStore
runner = ThreadRunner(store=RunStore(sys.argv[1]), save_interval=0.05)
handle = runner.create(Config(dataset="moons", n_train=40, n_val=60, hidden=(16, 16),
                              epochs=100000))
handle.set_speed(200)
handle.start()
while True:
    time.sleep(0.05)
    if handle.saved_id:
        print(handle.saved_id, flush=True)
"""


def test_a_killed_server_keeps_the_epochs_it_had_saved(tmp_path):
    """SIGKILL mid-run: the run is readable up to its last batch, then marked interrupted."""
    proc = subprocess.Popen([sys.executable, "-c", _SERVER, str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    try:
        run_id = proc.stdout.readline().strip()
        with RunStore(tmp_path) as reader:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and reader.info(run_id).epochs < 50:
                time.sleep(0.05)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            saved = reader.get(run_id)
            epochs = [e.epoch for e in saved.history]
            assert len(epochs) >= 50 and epochs == list(range(1, len(epochs) + 1))
            assert saved.info.status == "running"  # nobody told it otherwise
            assert reader.mark_interrupted() == [run_id]
            assert reader.info(run_id).status == "interrupted"
    finally:
        proc.kill()


@pytest.mark.parametrize("backend", ["thread", "process"])
def test_a_restored_runs_saved_summary_is_the_trainers_own(backend, store):
    """The page path saves what Trainer.summary() says: the restored epoch's figures and
    the best val loss, even when the server's history was thinned past the best epoch."""
    from regdemo.engine import Trainer
    from regdemo.runner import MAX_POINTS

    # Best near epoch 30, then 4000 epochs of patience: the server keeps 2000 points.
    config = Config(dataset="moons", n_train=40, n_val=100, hidden=(32, 32), lr=0.01,
                    epochs=MAX_POINTS * 3, early_stopping=True, patience=MAX_POINTS * 2,
                    restore_best=True, seed=2)
    reference = Trainer(config)
    reference.fit()
    expected = reference.summary()
    assert expected["best_val_loss"] is not None and reference.restored_epoch
    pool = ThreadRunner(store=store, save_interval=0.05) if backend == "thread" else \
        ProcessRunner(workers=1, store=store, save_interval=0.05)
    try:
        if backend == "process":
            assert pool.wait_ready(120)
        handle = pool.create(config)
        handle.set_speed(None)
        handle.start()
        assert handle.wait(240)
        pool.save_now()
        snap = handle.snapshot()
        assert snap.best_epoch not in [r.epoch for r in snap.history]  # thinned away
        assert store.info(handle.saved_id).summary == pytest.approx(expected)
    finally:
        pool.stop_all()
        if backend == "process":
            pool.shutdown()
