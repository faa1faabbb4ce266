"""The server's backend: worker processes train, the server mirrors batched updates."""

import contextlib
import os
import signal
import sys
import time

import pytest

from regdemo.config import Config, ConfigError
from regdemo.runner import QUEUED, RUNNING, STOPPED, ProcessRunner
from tests.support import pid_alive, started_pool, until

SMALL = Config(dataset="moons", n_train=40, n_val=60, hidden=(16, 16), epochs=30)
LONG = SMALL.replace(epochs=100_000)


@pytest.fixture(scope="module")
def pool():
    """Two workers: runs spread over them."""
    yield from started_pool(workers=2, grace=0.5)


def test_start_trains_to_the_end_with_every_epoch_mirrored(runner):
    """All epochs arrive in order; the finished run reports why it stopped."""
    handle = runner.create(SMALL)
    handle.start()
    assert handle.wait()
    snap = handle.snapshot()
    assert [r.epoch for r in snap.history] == list(range(1, 31))
    assert snap.status == STOPPED and snap.stop_reason == "finished: reached 30 epochs"
    assert snap.view is not None and snap.view["z"].shape == (100, 100)
    assert set(snap.weights) == {"linear 1 (2x16)", "linear 2 (16x16)", "linear 3 (16x2)"}


def test_same_numbers_as_training_in_process(runner):
    """A worker's history equals the in-process Trainer's for the same config."""
    from regdemo.engine import Trainer

    handle = runner.create(SMALL.replace(dropout=0.3, batch_size=8))
    handle.start()
    assert handle.wait()
    local = Trainer(SMALL.replace(dropout=0.3, batch_size=8))
    local.fit()
    remote = [(r.train_loss, r.val_loss) for r in handle.snapshot().history]
    assert remote == [(r.train_loss, r.val_loss) for r in local.history]


def test_step_pause_and_live_change(runner):
    """Step trains exactly n epochs; a live change is recorded at the epoch it landed."""
    handle = runner.create(LONG)
    handle.step(3)
    assert handle.wait() and handle.snapshot().epoch == 3
    handle.set_live(dropout=0.5)
    handle.step(2)
    assert handle.wait()
    snap = handle.snapshot()
    assert snap.epoch == 5 and [e.label for e in snap.events] == ["dropout 0 -> 0.5 @ epoch 3"]
    assert handle.config.dropout == 0.5
    with pytest.raises(ConfigError, match="structural"):
        handle.set_live(hidden=(4,))
    handle.start()
    assert until(lambda: handle.snapshot().epoch > 50)
    handle.pause()
    assert handle.wait()
    frozen = handle.snapshot().epoch
    time.sleep(0.3)
    assert handle.snapshot().epoch == frozen


def test_fork_continues_identically(runner):
    """Both branches of a fork train the same epochs when nothing differs."""
    handle = runner.create(LONG.replace(dropout=0.2, augment="jitter"))
    handle.step(10)
    assert handle.wait()
    fork = handle.fork()
    for h in (handle, fork):
        h.step(5)
    assert handle.wait() and fork.wait()
    a, b = handle.snapshot().history, fork.snapshot().history
    assert [r.epoch for r in b] == list(range(1, 16))
    assert [r.val_loss for r in a] == [r.val_loss for r in b]


def test_queue_past_the_cap_then_promotion(runner):
    """With one slot, a second run is queued until the first pauses."""
    runner.max_concurrent = 1
    first, second = runner.create(LONG), runner.create(LONG)
    first.start()
    second.start()
    assert second.status == QUEUED and first.status == RUNNING
    time.sleep(0.3)
    assert second.snapshot().epoch == 0
    first.pause()
    assert until(lambda: second.snapshot().epoch > 0)
    assert second.status == RUNNING


@pytest.mark.parametrize("speed", [20, 100, 200])
def test_speeds_are_what_they_say(runner, speed):
    """A throttled run trains at its speed within 10% (it once trained at 20 epochs/s for
    every speed from 20 to 500: the worker slept 50 ms between due epochs)."""
    handle = runner.create(LONG.replace(hidden=(8,)))
    handle.set_speed(speed)
    handle.start()
    assert until(lambda: handle.snapshot().epoch >= 3)
    first, start = handle.snapshot().epoch, time.monotonic()
    time.sleep(3.0)
    done, seconds = handle.snapshot().epoch - first, time.monotonic() - start
    handle.pause()
    # The mirror lags the worker by one update batch (<= 0.1 s) at both ends.
    assert abs(done / seconds - speed) <= 0.1 * speed, done / seconds


def test_orphaned_runs_are_reaped_and_dropped_from_workers(runner):
    """50 pages open and close: after the grace period no run is left anywhere."""
    handles = [runner.create(LONG) for _ in range(50)]
    for h in handles:
        h.start()
    assert until(lambda: sum(h.snapshot().epoch > 0 for h in handles) >= 8)
    for h in handles:
        runner.orphan(h.id)
    assert until(lambda: not runner.runs(), timeout=10)
    assert until(lambda: runner.worker_run_counts() == [0, 0], timeout=5)


def test_a_reconnecting_page_keeps_its_run(runner):
    """A snapshot read within the grace period cancels the reaping."""
    handle = runner.create(LONG)
    handle.start()
    runner.orphan(handle.id)
    for _ in range(10):
        handle.snapshot()  # the page polls again
        time.sleep(0.1)
    assert runner.get(handle.id) is handle


def test_a_dead_worker_is_reported_not_hidden():
    """If a worker process dies, its runs say so in plain words."""
    pool = ProcessRunner(workers=1)
    try:
        assert pool.wait_ready(90)
        handle = pool.create(LONG)
        handle.start()
        assert until(lambda: handle.snapshot().epoch > 0)
        os.kill(pool.worker_pids()[0], signal.SIGKILL)
        assert until(lambda: handle.snapshot().error is not None, timeout=5)
        snap = handle.snapshot()
        assert snap.status == STOPPED and "worker stopped unexpectedly" in snap.error
    finally:
        pool.shutdown()


def test_workers_do_not_rerun_the_main_script(tmp_path, monkeypatch):
    """Under `streamlit run`, __main__ is app.py: spawned workers must not execute it."""
    marker = tmp_path / "ran"
    script = tmp_path / "fake_app.py"
    script.write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    main = sys.modules["__main__"]
    monkeypatch.setattr(main, "__file__", str(script), raising=False)
    monkeypatch.setattr(main, "__spec__", None, raising=False)
    pool = ProcessRunner(workers=1)
    try:
        assert pool.wait_ready(90)
        assert not marker.exists()
        assert main.__file__ == str(script)  # restored after the start
    finally:
        pool.shutdown()


_SERVER = """
import time
from pathlib import Path
from regdemo.config import Config
from regdemo.runner import ProcessRunner
runner = ProcessRunner(workers=2)
runner.wait_ready(90)
handle = runner.create(Config(dataset="moons", n_train=40, n_val=60, hidden=(16, 16),
                              epochs=100000))
handle.start()
print(*runner.worker_pids(), flush=True)
time.sleep(600)
"""


def test_workers_exit_when_their_server_is_killed():
    """SIGKILL the server mid-run: its workers notice within seconds and stop training."""
    import subprocess

    proc = subprocess.Popen([sys.executable, "-c", _SERVER], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert len(pids) == 2 and all(pid_alive(p) for p in pids)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert until(lambda: not any(pid_alive(p) for p in pids), timeout=30)
    finally:
        proc.kill()
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def test_a_finished_run_shows_the_views_of_its_last_epoch(runner):
    """The views (boundary, weights, feature bars) were refreshed at most once a second, and
    not when the run stopped: at max speed a finished run showed weights hundreds of epochs
    old. They are sent again when the run comes to rest."""
    import numpy as np

    from regdemo.engine import Trainer

    config = Config(dataset="sparse", n_train=100, n_val=100, hidden=(8,), lr=0.01,
                    epochs=3333, l1=0.01)
    handle = runner.create(config)
    handle.set_speed(None)
    handle.start()
    assert handle.wait(120)
    deadline = time.monotonic() + 10
    while handle.snapshot().status != "stopped" and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # the final update's flush
    snap = handle.snapshot()
    reference = Trainer(config, threads=1)
    reference.fit()
    assert snap.epoch == 3333
    for name, w in reference.weights().items():
        np.testing.assert_allclose(snap.weights[name], w, rtol=1e-5, atol=1e-7)
