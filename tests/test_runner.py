"""ThreadRunner and its run handles: lifecycle, controls, live knobs, fork, limits and history."""

import time

import pytest

from regdemo.config import Config, ConfigError
from regdemo.records import EpochRecord
from regdemo.run_base import History
from regdemo.runner import ThreadRunner
from tests.support import until

SMALL = Config(dataset="moons", n_train=40, n_val=60, hidden=(16, 16), epochs=30)
ENDLESS = SMALL.replace(epochs=100_000)  # never finishes within a test: stop it yourself


def wait_until(predicate, timeout: float = 2.0) -> bool:
    """`until` with this file's short default: the in-process runner answers at once."""
    return until(predicate, timeout, every=0.01)


def settle() -> None:
    """Give a run a moment (guards timing-sensitive checks)."""
    time.sleep(0.05)


def epoch_of(handle) -> int:
    """The run's finished epochs, read through a snapshot."""
    return handle.snapshot().epoch


@pytest.fixture
def make_runner():
    """Builds ThreadRunners and stops every run (and joins its thread) after the test."""
    runners, handles = [], []

    def build(**kwargs) -> ThreadRunner:
        runner = ThreadRunner(**kwargs)
        runners.append(runner)
        return runner

    yield build
    for runner in runners:
        handles.extend(runner.runs())
        runner.stop_all()
    for handle in handles:
        if handle._thread is not None:
            handle._thread.join(timeout=2.0)


@pytest.fixture
def runner(make_runner):
    """A runner with the default limits."""
    return make_runner()


def fake_record(epoch: int) -> EpochRecord:
    """An EpochRecord with every field set (values derived from the epoch)."""
    return EpochRecord(epoch=epoch, train_loss=1.0 / epoch, val_loss=2.0 / epoch,
                       train_score=0.5, val_score=0.4, objective=1.0 / epoch, penalty=0.0,
                       weight_norm=1.0, sparsity=0.0, lr=0.01, wall_time=0.001)


# ----------------------------------------------------------------- start, pause, step, stop
def test_start_trains_until_the_run_finishes(runner):
    """start() trains all epochs; the snapshot ends stopped, finished, with epochs 1..N."""
    handle = runner.create(SMALL)
    assert handle.status == "paused"
    handle.start()
    assert handle.wait(timeout=10)
    snap = handle.snapshot()
    assert snap.status == "stopped"
    assert snap.stop_reason.startswith("finished")
    assert snap.epoch == 30
    assert [r.epoch for r in snap.history] == list(range(1, 31))
    assert snap.error is None
    assert wait_until(lambda: not runner.active_threads(), timeout=1.0)


def test_pause_stops_progress_and_resume_continues(runner):
    """After pause() + wait() the epoch stays put; resume() makes it advance again."""
    handle = runner.create(ENDLESS)
    handle.start()
    assert wait_until(lambda: epoch_of(handle) >= 5)
    handle.pause()
    assert handle.wait(timeout=2)
    settle()
    paused_at = epoch_of(handle)
    time.sleep(0.3)
    snap = handle.snapshot()
    assert snap.status == "paused"
    assert snap.epoch == paused_at
    handle.resume()
    assert wait_until(lambda: epoch_of(handle) >= paused_at + 5)
    assert handle.status == "running"


def test_step_trains_exactly_n_epochs_then_pauses(runner):
    """step(n) adds exactly n epochs and leaves the run paused, also when repeated."""
    handle = runner.create(ENDLESS)
    handle.step(7)
    assert handle.wait(timeout=5)
    settle()
    snap = handle.snapshot()
    assert snap.epoch == 7 and snap.status == "paused"
    assert [r.epoch for r in snap.history] == list(range(1, 8))
    handle.step(3)
    assert handle.wait(timeout=5)
    time.sleep(0.1)  # a stray extra epoch would show up here
    assert epoch_of(handle) == 10
    assert handle.status == "paused"


def test_stop_ends_the_thread(runner):
    """stop() ends a training thread within a second and the epoch stops moving."""
    handle = runner.create(ENDLESS)
    handle.start()
    assert wait_until(lambda: epoch_of(handle) >= 1)
    handle.stop()
    assert wait_until(lambda: not runner.active_threads(), timeout=1.0)
    stopped_at = epoch_of(handle)
    time.sleep(0.1)
    assert handle.snapshot().status == "stopped"
    assert epoch_of(handle) == stopped_at
    handle.start()  # a stopped run cannot be restarted
    assert handle.status == "stopped" and not runner.active_threads()


# ----------------------------------------------------------------- live knobs
def test_set_live_during_a_run_records_an_event_inside_the_history(runner):
    """A live change lands between epochs: event epoch within the history, config updated."""
    handle = runner.create(ENDLESS)
    handle.start()
    assert wait_until(lambda: epoch_of(handle) >= 3)
    handle.set_live(dropout=0.5)
    events = handle.snapshot().events
    assert [(e.knob, e.old, e.new) for e in events] == [("dropout", 0.0, 0.5)]
    assert handle.trainer.config.dropout == 0.5
    event = events[0]
    assert wait_until(lambda: epoch_of(handle) >= event.epoch + 3)
    snap = handle.snapshot()
    assert snap.events == events
    assert snap.config.dropout == 0.5
    assert event.epoch in {r.epoch for r in snap.history}
    assert snap.status == "running"


def test_invalid_live_value_raises_and_the_run_keeps_going(runner):
    """Out-of-range or structural live changes raise ConfigError and change nothing."""
    handle = runner.create(ENDLESS)
    handle.start()
    assert wait_until(lambda: epoch_of(handle) >= 2)
    with pytest.raises(ConfigError):
        handle.set_live(dropout=2.0)
    with pytest.raises(ConfigError, match="structural"):
        handle.set_live(hidden=(8,))
    assert handle.trainer.config == ENDLESS
    before = epoch_of(handle)
    assert wait_until(lambda: epoch_of(handle) >= before + 5)
    snap = handle.snapshot()
    assert snap.status == "running" and snap.events == [] and snap.error is None


def test_live_change_does_not_lift_the_time_limit(make_runner):
    """An unrelated live change (lr) on a time-limited run leaves it stopped."""
    runner = make_runner(max_run_seconds=0.2)
    handle = runner.create(ENDLESS)
    handle.start()
    assert handle.wait(timeout=5)
    assert wait_until(lambda: not runner.active_threads(), timeout=1.0)
    handle.set_live(lr=0.02)
    snap = handle.snapshot()
    assert snap.status == "stopped"
    assert snap.stop_reason is not None and "time limit" in snap.stop_reason


def test_more_epochs_on_a_finished_run_does_not_leave_it_stuck_running(runner):
    """After set_live(epochs=more) on a finished run, status matches what the thread does."""
    handle = runner.create(SMALL.replace(epochs=10))
    handle.start()
    assert handle.wait(timeout=5)
    assert wait_until(lambda: not runner.active_threads(), timeout=1.0)  # its thread is gone
    handle.set_live(epochs=20)
    assert handle.wait(timeout=1.0)  # either it trains to 20 or it is paused, not stuck
    assert handle.status != "running"


# ----------------------------------------------------------------- fork
def test_fork_continues_identically_and_independently(runner):
    """A fork shares the history and, unchanged, trains the very same next epochs."""
    config = ENDLESS.replace(dropout=0.3, batch_size=8)  # training draws random numbers
    handle = runner.create(config)
    handle.start()
    assert wait_until(lambda: epoch_of(handle) >= 10)
    handle.pause()
    assert handle.wait()
    settle()
    original = handle.snapshot()
    fork = handle.fork()
    forked = fork.snapshot()
    assert fork.id != handle.id and runner.get(fork.id) is fork
    assert forked.status == "paused"
    assert forked.epoch == original.epoch
    assert forked.history == original.history
    start = original.epoch

    handle.step(5)
    fork.step(5)
    assert handle.wait() and fork.wait()
    settle()
    a, b = handle.snapshot().history, fork.snapshot().history
    assert [r.epoch for r in a[-5:]] == [r.epoch for r in b[-5:]] == list(range(start + 1,
                                                                               start + 6))
    assert [(r.train_loss, r.val_loss) for r in a[-5:]] == [
        (r.train_loss, r.val_loss) for r in b[-5:]
    ]

    # Independent: a live change on the fork alters only the fork's continuation.
    fork.set_live(lr=0.1)
    handle.step(3)
    fork.step(3)
    assert handle.wait() and fork.wait()
    settle()
    a, b = handle.snapshot(), fork.snapshot()
    assert a.config.lr == config.lr and a.events == []
    assert a.history[-1].train_loss != b.history[-1].train_loss


# ----------------------------------------------------------------- limits
def test_concurrency_cap_queues_the_second_run_until_the_first_stops(make_runner):
    """With max_concurrent=1 the second run waits 'queued', then trains once a slot frees."""
    runner = make_runner(max_concurrent=1)
    first, second = runner.create(ENDLESS), runner.create(ENDLESS)
    first.set_speed(20)
    first.start()
    assert wait_until(lambda: epoch_of(first) >= 1)
    second.start()
    assert wait_until(lambda: second.status == "queued", timeout=1.0)
    time.sleep(0.3)
    assert first.status == "running"
    assert second.status == "queued" and epoch_of(second) == 0
    first.stop()
    assert wait_until(lambda: second.status == "running" and epoch_of(second) >= 1)


def test_a_paused_run_frees_its_slot(make_runner):
    """With max_concurrent=1, pausing the training run lets a queued run train."""
    runner = make_runner(max_concurrent=1)
    first, second = runner.create(ENDLESS), runner.create(ENDLESS)
    first.set_speed(20)
    first.start()
    assert wait_until(lambda: epoch_of(first) >= 1)
    first.pause()
    assert first.wait()
    second.start()
    assert wait_until(lambda: epoch_of(second) >= 1, timeout=1.0)


def test_set_speed_limits_throughput(runner):
    """set_speed(50) keeps a run near 50 epochs/s, far below an unthrottled run."""
    slow, fast = runner.create(ENDLESS), runner.create(ENDLESS)
    slow.set_speed(50)
    slow.start()
    fast.start()
    assert wait_until(lambda: epoch_of(slow) >= 1 and epoch_of(fast) >= 1)
    t0, slow0, fast0 = time.monotonic(), epoch_of(slow), epoch_of(fast)
    time.sleep(1.0)
    slow1, fast1 = epoch_of(slow), epoch_of(fast)
    elapsed = time.monotonic() - t0
    slow_done, fast_done = slow1 - slow0, fast1 - fast0
    assert 10 <= slow_done <= 50 * elapsed + 3
    assert fast_done > 2 * slow_done
    assert 0 < slow.snapshot().epochs_per_second <= 55


def test_max_run_seconds_stops_a_long_run(make_runner):
    """The time-limit backstop stops an endless run and says so in stop_reason."""
    runner = make_runner(max_run_seconds=0.3)
    handle = runner.create(ENDLESS)
    t0 = time.monotonic()
    handle.start()
    assert handle.wait(timeout=5)
    assert time.monotonic() - t0 < 2.0
    snap = handle.snapshot()
    assert snap.status == "stopped"
    assert "time limit" in snap.stop_reason
    assert 0 < snap.epoch < ENDLESS.epochs
    assert wait_until(lambda: not runner.active_threads(), timeout=1.0)


# ----------------------------------------------------------------- failures
def test_a_failing_step_is_reported_and_other_runs_continue(runner, monkeypatch):
    """An exception inside a run sets `error`, stops it, and leaves other runs training."""
    healthy, broken = runner.create(ENDLESS), runner.create(ENDLESS)

    def explode():
        raise RuntimeError("boom in epoch")

    monkeypatch.setattr(broken.trainer, "step", explode)
    healthy.start()
    broken.start()
    assert broken.wait(timeout=2)
    snap = broken.snapshot()
    assert snap.status == "stopped"
    assert snap.error is not None
    assert "RuntimeError" in snap.error and "boom in epoch" in snap.error
    assert snap.epoch == 0
    assert wait_until(lambda: broken._thread is not None and not broken._thread.is_alive())
    before = epoch_of(healthy)
    assert wait_until(lambda: epoch_of(healthy) >= before + 5)
    good = healthy.snapshot()
    assert good.status == "running" and good.error is None


# ----------------------------------------------------------------- orphans and grace
def test_orphaned_runs_are_stopped_and_forgotten_after_the_grace(make_runner):
    """20 orphaned runs are gone (no run listed, no thread alive) soon after a 0.5 s grace."""
    runner = make_runner(grace=0.5)
    handles = [runner.create(ENDLESS) for _ in range(20)]
    for handle in handles:
        handle.set_speed(20)
        handle.start()
    threads = [h._thread for h in handles]
    assert all(t is not None and t.is_alive() for t in threads)
    for handle in handles:
        runner.orphan(handle.id)
    assert len(runner.runs()) == 20  # not before the grace period ends
    assert wait_until(
        lambda: not runner.runs() and not any(t.is_alive() for t in threads), timeout=1.5
    )
    assert all(h.status == "stopped" for h in handles)


def test_a_reconnect_within_the_grace_keeps_the_run(make_runner):
    """An orphan whose snapshot is read again before the grace ends survives; others don't."""
    runner = make_runner(grace=0.5)
    kept, dropped = runner.create(ENDLESS), runner.create(ENDLESS)
    for handle in (kept, dropped):
        handle.set_speed(20)
        handle.start()
    runner.orphan(kept.id)
    runner.orphan(dropped.id)
    time.sleep(0.2)
    kept.snapshot()  # the page came back
    assert wait_until(lambda: runner.get(dropped.id) is None, timeout=1.5)
    time.sleep(0.3)
    assert runner.get(kept.id) is kept
    assert kept.status == "running" and kept.orphaned_at is None
    before = epoch_of(kept)
    assert wait_until(lambda: epoch_of(kept) > before)


# ----------------------------------------------------------------- history thinning
def test_history_thinning_keeps_first_newest_and_order():
    """History never exceeds its limit, keeps epoch 1 and the newest, and stays sorted."""
    history = History(limit=10)
    for epoch in range(1, 101):
        history.add(fake_record(epoch))
        epochs = [r.epoch for r in history.items]
        if epoch <= 10:
            assert epochs == list(range(1, epoch + 1))  # nothing dropped below the limit
        assert len(epochs) <= 10
        assert epochs[0] == 1
        assert epochs[-1] == epoch
        assert epochs == sorted(set(epochs))
    assert len(history.items) >= 5  # thinned, not truncated to a stub
    assert history.items[-1] == fake_record(100)


# ----------------------------------------------------------------- races
def test_wait_after_step_sees_the_stepped_epoch(runner):
    """After step(1) + wait() the epoch is 1, even if the thread is slow to take the lock."""
    handle = runner.create(ENDLESS)
    next_action = handle._next_action

    def slow_next_action():
        action = next_action()
        time.sleep(0.2)  # widen the window between taking the step and training it
        return action

    handle._next_action = slow_next_action
    handle.step(1)
    assert handle.wait(timeout=2)
    assert epoch_of(handle) == 1


def test_a_closed_pages_run_goes_back_to_its_browser_only():
    """orphan_of: the newest orphaned, unforked run of that owner; never another browser's,
    never a run whose page is still open."""
    runner = ThreadRunner()
    try:
        mine, open_tab, other = (runner.create(Config(n_train=8, n_val=8, hidden=(4,)))
                                 for _ in range(3))
        mine.owner = open_tab.owner = "browser-a-0123456789"
        other.owner = "browser-b-0123456789"
        assert runner.orphan_of("browser-a-0123456789") is None  # both pages open
        runner.orphan(mine.id)
        runner.orphan(other.id)
        assert runner.orphan_of("browser-a-0123456789") is mine
        assert runner.orphan_of("browser-b-0123456789") is other
        assert runner.orphan_of(None) is None and runner.orphan_of("nobody") is None
        fork = mine.fork()
        runner.orphan(fork.id)
        assert runner.orphan_of("browser-a-0123456789") is mine  # forks stay with their A
        assert set(runner.runs_of("browser-a-0123456789")) == {mine, open_tab, fork}
    finally:
        runner.stop_all()


def test_both_backends_implement_one_run_handle_protocol():
    """The page, the feed and the saver use only RunHandle's methods; both handles have
    each of them, with the same parameters."""
    import inspect

    from regdemo.process_runner import ProcessRunHandle
    from regdemo.run_base import RunHandle
    from regdemo.thread_runner import ThreadRunHandle

    methods = [n for n, v in vars(RunHandle).items()
               if not n.startswith("_") and (callable(v) or isinstance(v, property))]
    assert {"start", "set_live", "snapshot", "drain_unsaved", "config"} <= set(methods)
    for name in methods:
        want = vars(RunHandle)[name]
        for cls in (ThreadRunHandle, ProcessRunHandle):
            got = getattr(cls, name)
            if callable(want):
                assert list(inspect.signature(got).parameters) == \
                    list(inspect.signature(want).parameters), (cls.__name__, name)
            else:
                assert isinstance(got, property), (cls.__name__, name)
