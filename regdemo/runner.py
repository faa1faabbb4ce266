"""Runs trainers off the page: a handle per run, lock-protected snapshots, bounded history.

Two backends, one API (`create`, and on each handle start/pause/step/stop/set_live/fork/
snapshot/wait):
- `ThreadRunner`: a thread per run, in this process (notebooks, the CLI, tests).
- `ProcessRunner`: a few worker processes train every run in turn and send records back in
  batches (the server: training threads would fight the page for the GIL; docs/architecture.md).
The page only reads `snapshot()`; no training code ever touches the UI.
"""

from __future__ import annotations

import atexit
import bisect
import contextlib
import itertools
import multiprocessing
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from regdemo import warmup
from regdemo.config import Config, ConfigError
from regdemo.cpus import usable_cpus
from regdemo.datasets import Split, split_for
from regdemo.engine import EpochRecord, Event, Trainer, summary_dict
from regdemo.run_states import PAUSED, QUEUED, RUNNING, STOPPED, VIEW_INTERVAL

__all__ = ["PAUSED", "QUEUED", "RUNNING", "STOPPED", "ProcessRunner", "Snapshot",
           "ThreadRunner", "summary_of"]

MAX_POINTS = 2000  # history points kept per run; older ones are thinned out evenly
SAVE_INTERVAL = 0.5  # seconds between batched writes of new epochs to the store


@dataclass(frozen=True)
class Snapshot:
    """A consistent copy of a run's state for the page to draw."""

    run_id: int
    config: Config
    status: str
    epoch: int
    history: list[EpochRecord]
    events: list[Event]
    stop_reason: str | None
    diverged: bool
    best_epoch: int | None
    epochs_per_second: float
    view: dict | None = None  # predict_grid(): boundary or fitted curve
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    feature_importance: np.ndarray | None = None
    augmented: tuple | None = None  # a few augmented training inputs
    mistakes: tuple | None = None  # misclassified validation images (x, true, predicted)
    error: str | None = None  # an unexpected failure inside the run, in plain words
    split: Split | None = None  # the run's data (read-only, shared, not copied)
    views_version: int = 0  # grows each time the views above are refreshed
    busy: bool = False  # training, queued, or Step epochs still to train
    restored_epoch: int | None = None  # early stopping put this epoch's weights back
    summary: dict | None = None  # Trainer.summary() of a run at rest (None while it trains)


def _view_fields(views: dict) -> dict:
    """Snapshot fields from a `Trainer.views()` dict (empty before the first refresh)."""
    return {
        "view": views.get("view"),
        "weights": views.get("weights") or {},
        "feature_importance": views.get("importance"),
        "augmented": views.get("augmented"),
        "mistakes": views.get("mistakes"),
    }


def _epoch_of(record: EpochRecord) -> int:
    return record.epoch


class _History:
    """Records with a cap: when full, every other old point is dropped (even thinning)."""

    def __init__(self, limit: int = MAX_POINTS):
        self.limit = limit
        self.items: list[EpochRecord] = []

    def since(self, epoch: int | None) -> list[EpochRecord]:
        """The records after `epoch` (all of them for None): a tail copy, not a full one."""
        if epoch is None:
            return list(self.items)
        return self.items[bisect.bisect_right(self.items, epoch, key=_epoch_of):]

    def add(self, record: EpochRecord) -> None:
        self.items.append(record)
        if len(self.items) > self.limit:
            # Keep the newest half untouched so the live end of the curve stays dense.
            half = len(self.items) // 2
            self.items = self.items[:half:2] + self.items[half:]


class ThreadRunHandle:
    """One run: start, pause, resume, step, stop, live knobs, fork and snapshots."""

    def __init__(self, runner: ThreadRunner, run_id: int, trainer: Trainer):
        self.runner, self.id, self.trainer = runner, run_id, trainer
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._status = PAUSED  # what the user asked for; STOPPED once stop() was called
        self._history = _History()
        for record in trainer.history:
            self._history.add(record)
        # For the store's saver (a fork brings its past along); kept only if there is one.
        self._unsaved = list(trainer.history) if runner.store is not None else []
        self.saved_id: str | None = None  # its id in the store, once written
        self.initial_config = trainer.config  # at epoch 0: with the events, it replays the run
        self.parent: int | None = None  # the run it was forked from
        self.name: str | None = None  # for the store; None: one made from the config
        self.owner: str | None = None  # the browser that made it (a page may re-adopt it)
        self._pending_steps = 0
        self._busy = False  # an epoch taken by the thread but not yet recorded
        self._thread: threading.Thread | None = None
        self._error: str | None = None
        self._speed: float | None = None  # epochs per second; None = as fast as possible
        self._rate = 0.0
        self._views: dict = {}
        self._views_version = 0
        self._view_time = 0.0
        self.last_seen = time.monotonic()
        self.orphaned_at: float | None = None  # when its page went away (grace period)
        self.started_at: float | None = None
        self._refresh_views()

    # ----------------------------------------------------------------- controls
    @property
    def status(self) -> str:
        with self._lock:
            return self._effective_status()

    def _effective_status(self) -> str:
        """A finished, early-stopped or diverged trainer counts as stopped."""
        if self.trainer.stopped and self._status != QUEUED:
            return STOPPED
        return self._status

    def start(self) -> None:
        """Train until the run stops, paused, or is stopped (queued if the server is full)."""
        with self._lock:
            if self._status == STOPPED or self.trainer.stopped:
                return
            self._status = RUNNING
            self.started_at = self.started_at or time.monotonic()
            self._wake.notify_all()
        self._ensure_thread()

    resume = start

    def pause(self) -> None:
        with self._lock:
            if self._status in (RUNNING, QUEUED):
                self._status = PAUSED

    @property
    def stepping(self) -> bool:
        """Epochs asked for by step() are still to train."""
        return self._pending_steps > 0

    def step(self, n: int = 1) -> None:
        """Train exactly `n` more epochs, then pause."""
        with self._lock:
            if self._status == STOPPED or self.trainer.stopped:
                return
            self._status = PAUSED
            self._pending_steps += n
            self._wake.notify_all()
        self._ensure_thread()

    def stop(self) -> None:
        """End the run for good; its thread exits at the next epoch boundary."""
        with self._lock:
            self._status = STOPPED
            self._wake.notify_all()
        self.runner._release(self)

    def set_speed(self, epochs_per_second: float | None) -> None:
        """Throttle to N epochs per second (so a class can follow), or None for max."""
        with self._lock:
            self._speed = epochs_per_second if epochs_per_second else None

    def set_live(self, **knobs) -> list[Event]:
        """Change live knobs; applied between epochs. Raises ConfigError on bad input."""
        with self._lock:
            events = self.trainer.set_live(**knobs)
            # More epochs can lift a finished run's stop: a run meant to train goes on.
            resume = self._status == RUNNING and not self.trainer.stopped
            self._wake.notify_all()
        if resume:
            self._ensure_thread()
        self._refresh_views(force=True)
        return events

    @property
    def config(self) -> Config:
        return self.trainer.config

    def fork(self) -> ThreadRunHandle:
        """A new paused run that continues from this one's current epoch."""
        with self._lock:
            clone = self.trainer.fork()
        handle = self.runner._adopt(clone)
        handle.parent, handle.initial_config = self.id, self.initial_config
        handle.owner = self.owner
        return handle

    def wait(self, timeout: float = 30.0) -> bool:
        """Block until the run is not training (paused, stopped or finished)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                busy = self._busy or self._pending_steps or (
                    self._status in (RUNNING, QUEUED) and not self.trainer.stopped
                )
            if not busy:
                return True
            time.sleep(0.01)
        return False

    # ----------------------------------------------------------------- reading
    def snapshot(self, touch: bool = True, since: int | None = None) -> Snapshot:
        """A consistent copy of everything the page draws, taken under the lock.

        A page's read `touch`es the run: the reaper then knows its page is still there.
        `since`: only the history after that epoch (a live board's tick needs no more).
        """
        if touch:
            self.last_seen = time.monotonic()
        with self._lock:
            t = self.trainer
            status = self._effective_status()
            busy = status in (RUNNING, QUEUED) or status != STOPPED and (
                self._busy or bool(self._pending_steps))
            return Snapshot(
                run_id=self.id,
                config=t.config,
                status=status,
                epoch=t.epoch,
                history=self._history.since(since),
                events=list(t.events),
                stop_reason=t.stop_reason,
                diverged=t.diverged,
                best_epoch=t.best_epoch,
                restored_epoch=t.restored_epoch,
                # Measured on the test set: only for a run at rest, not every tick.
                summary=None if busy else t.summary(),
                epochs_per_second=self._rate,
                error=self._error,
                split=t.split,
                views_version=self._views_version,
                busy=busy,
                **_view_fields(self._views),
            )

    def _drain(self) -> tuple[list[EpochRecord], list[Event]]:
        """Records not yet saved (taken), and all events so far."""
        with self._lock:
            records, self._unsaved = self._unsaved, []
            return records, list(self.trainer.events)

    # ----------------------------------------------------------------- the thread
    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._loop, name=f"regdemo-run-{self.id}", daemon=True
            )
            self._thread.start()

    def _next_action(self) -> str:
        """Wait until there is an epoch to train ('train') or the run ends ('exit')."""
        with self._lock:
            while True:
                if self._status == STOPPED or self.trainer.stopped:
                    return "exit"
                if self._pending_steps:
                    self._pending_steps -= 1
                    self._busy = True
                    return "train"
                if self._status in (RUNNING, QUEUED) and self.runner._admit(self):
                    self._status, self._busy = RUNNING, True
                    return "train"
                if self._status == RUNNING:
                    self._status = QUEUED
                if self._status == PAUSED:
                    self.runner._release(self)  # a paused run leaves its slot to others
                self._wake.wait(0.2)

    def _loop(self) -> None:
        tick = time.perf_counter()
        done, due = 0, 0.0
        try:
            while self._next_action() == "train":
                with self._lock:
                    record = self.trainer.step()
                    if record is not None:
                        self._history.add(record)
                        if self.runner.store is not None:  # else nobody drains it
                            self._unsaved.append(record)
                    speed, self._busy = self._speed, False
                done += 1
                now = time.perf_counter()
                if now - tick >= 0.5:
                    self._rate, tick, done = done / (now - tick), now, 0
                self._refresh_views()
                if speed:  # on a fixed schedule: the epoch's own time is part of the period
                    due = max(due + 1.0 / speed, now - 1.0 / speed) if due else now + 1.0 / speed
                    time.sleep(max(0.0, due - time.perf_counter()))
                else:
                    due = 0.0
                if self.runner.max_run_seconds and self.started_at and (
                    time.monotonic() - self.started_at > self.runner.max_run_seconds
                ):
                    with self._lock:
                        self.trainer.halt("stopped: the run reached the time limit")
        except Exception as exc:  # a failing run must not take the server down
            with self._lock:
                self._error = f"the run failed: {type(exc).__name__}: {exc}"
                self.trainer.halt(self._error)
                self._status, self._busy = STOPPED, False
        finally:
            self._refresh_views(force=True)
            self.runner._release(self)

    def _refresh_views(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._view_time < VIEW_INTERVAL:
            return
        with self._lock:
            self._views = self.trainer.views()
            self._views_version += 1
        self._view_time = now


class _Runner:
    """Run registry, concurrency cap and the grace-period reaper shared by both backends.

    A run whose page went away (`orphan`) is stopped and forgotten after `grace` seconds
    unless the page comes back and reads it again (a reconnect within the grace period).
    """

    def __init__(self, max_concurrent: int = 8, max_run_seconds: float | None = 1800,
                 grace: float = 45.0, store=None, save_interval: float = SAVE_INTERVAL):
        self.max_concurrent = max_concurrent
        self.max_run_seconds = max_run_seconds
        self.grace = grace
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._runs: dict = {}
        self._active: set[int] = set()
        self._reaper: threading.Thread | None = None
        self.store = store  # a store.RunStore: every run's epochs are saved as it trains
        self._saver = _Saver(self, store, save_interval) if store is not None else None

    def _register(self, handle):
        with self._lock:
            self._runs[handle.id] = handle
        if self._saver is not None:
            self._saver.wake()
        return handle

    def save_now(self, run_ids=None) -> None:
        """Write every run's unsaved epochs to the store (the saver does it every 0.5 s), or
        only those of `run_ids` (a page about to list its runs)."""
        if self._saver is None:
            return
        if run_ids is None:
            self._saver.flush_all()
            return
        for run_id in run_ids:
            handle = self.get(run_id)
            if handle is not None:
                self._saver.flush(handle)

    def get(self, run_id: int):
        with self._lock:
            return self._runs.get(run_id)

    def runs(self) -> list:
        with self._lock:
            return list(self._runs.values())

    def stop_all(self) -> None:
        for handle in self.runs():
            handle.stop()

    def orphan(self, run_id: int) -> None:
        """The run's page closed: stop it after the grace period unless the page returns."""
        handle = self.get(run_id)
        if handle is None:
            return
        with self._lock:
            handle.orphaned_at = time.monotonic()
            if self._reaper is None:
                self._reaper = threading.Thread(target=self._reap, name="regdemo-reaper",
                                                daemon=True)
                self._reaper.start()

    def orphan_of(self, owner: str | None):
        """The newest run of `owner` (not a fork) whose page closed, if any: a reloaded page
        of that browser takes it back (another open tab's runs are never taken)."""
        with self._lock:
            mine = [h for h in self._runs.values() if owner and h.owner == owner
                    and h.parent is None and h.orphaned_at is not None]
        return max(mine, key=lambda h: h.id, default=None)

    def runs_of(self, owner: str | None) -> list:
        """Every run of `owner` on this server."""
        with self._lock:
            return [h for h in self._runs.values() if owner and h.owner == owner]

    def forget(self, run_id: int) -> None:
        """Stop a run and drop it from the server's memory."""
        handle = self.get(run_id)
        if handle is not None:
            handle.stop()
            with self._lock:
                self._runs.pop(run_id, None)
            self._dropped(handle)
            if self._saver is not None:
                self._saver.flush(handle, final=True)

    def _dropped(self, handle) -> None:
        """Backend hook: free what a forgotten run holds elsewhere."""

    def _reap(self) -> None:
        while True:
            time.sleep(min(1.0, self.grace / 4))
            now = time.monotonic()
            for handle in self.runs():
                if handle.orphaned_at is None:
                    continue
                if handle.last_seen > handle.orphaned_at:  # the page came back
                    handle.orphaned_at = None
                elif now - handle.orphaned_at >= self.grace:
                    self.forget(handle.id)
            with self._lock:  # exit only when no orphan waits (orphan() starts a new one)
                if not any(h.orphaned_at is not None for h in self._runs.values()):
                    self._reaper = None
                    return


def summary_of(snap: Snapshot) -> dict:
    """The run's `Trainer.summary()`, as its trainer computed it (full history, restored
    weights, test set). A run caught mid-training has none yet: its last epoch's figures."""
    if snap.summary is not None:
        return snap.summary
    last = snap.history[-1] if snap.history else None
    best = next((r for r in snap.history if r.epoch == snap.best_epoch), None)
    return summary_dict(snap.epoch, last, snap.best_epoch, best.val_loss if best else None,
                        snap.stop_reason)


def _ending(snap: Snapshot) -> str:
    """How a stopped run ended, in the store's words."""
    if snap.diverged:
        return "diverged"
    if snap.error:
        return "failed"
    return "finished" if snap.stop_reason else "stopped"


class _Saver:
    """Writes each run's new epochs and events to the store in batches, from one thread.

    Batches are small and frequent, so a server killed mid-run keeps all but the last
    half second; a run is created in the store with its first epoch (an untrained run
    leaves nothing behind) and finished when it stops or is forgotten.
    """

    def __init__(self, runner: _Runner, store, interval: float):
        self.runner, self.store, self.interval = runner, store, interval
        self._lock = threading.Lock()  # one flush at a time per run
        self._events_saved: dict[int, int] = {}
        self._ended: dict[int, int] = {}  # run id -> epoch at which it was marked finished
        self._browser_saved: dict[int, str] = {}  # run id -> owner written to the store
        self._thread: threading.Thread | None = None
        self.error: str | None = None  # the last write that failed, for the page

    def wake(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="regdemo-saver",
                                            daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            time.sleep(self.interval)
            self.flush_all()

    def flush_all(self) -> None:
        for handle in self.runner.runs():
            self.flush(handle)

    def flush(self, handle, final: bool = False) -> None:
        """Save what `handle` trained since the last flush; `final` when it is forgotten."""
        with self._lock:
            try:
                self._flush(handle, final)
            except Exception as exc:  # a full disk must not stop training; the page says so
                self.error = f"saving runs failed: {type(exc).__name__}: {exc}"

    def _flush(self, handle, final: bool) -> None:
        records, events = handle._drain()
        if handle.saved_id is None:
            if not records:
                return
            parent = self.runner.get(handle.parent) if handle.parent else None
            handle.saved_id = self.store.create(
                handle.initial_config, handle.name, parent=parent.saved_id if parent else None,
                origin="fork" if parent else "page")
        if handle.owner and self._browser_saved.get(handle.id) != handle.owner:
            self.store.set_browser(handle.saved_id, handle.owner)  # tagged after its start
            self._browser_saved[handle.id] = handle.owner
        new_events = events[self._events_saved.get(handle.id, 0):]
        if records or new_events:
            self.store.append(handle.saved_id, records, new_events)
            self._events_saved[handle.id] = len(events)
        if not (final or handle.status == STOPPED):
            return
        snap = handle.snapshot(touch=False)  # not a page read: the reaper must not see one
        if self._ended.get(handle.id) != snap.epoch:
            ending = "stopped" if final and snap.status != STOPPED else _ending(snap)
            self.store.finish(handle.saved_id, ending, summary_of(snap))
            self._ended[handle.id] = snap.epoch
        if final:  # forgotten: nothing more will come
            self._events_saved.pop(handle.id, None)
            self._browser_saved.pop(handle.id, None)
            self._ended.pop(handle.id, None)



class ThreadRunner(_Runner):
    """A training thread per run, in this process."""

    def create(self, config: Config) -> ThreadRunHandle:
        """A new paused run for `config` (data drawn and model built now)."""
        warmup.warm_in_background()
        if not isinstance(config, Config):
            raise ConfigError([f"expected a Config; got {type(config).__name__}"])
        return self._adopt(Trainer(config, threads=1))

    def _adopt(self, trainer: Trainer) -> ThreadRunHandle:
        return self._register(ThreadRunHandle(self, next(self._ids), trainer))

    def _admit(self, handle) -> bool:
        with self._lock:
            if handle.id in self._active:
                return True
            if len(self._active) < self.max_concurrent:
                self._active.add(handle.id)
                return True
            return False

    def _release(self, handle) -> None:
        with self._lock:
            self._active.discard(handle.id)

    def ready(self) -> bool:
        """Threads start at once."""
        return True

    def active_threads(self) -> list[threading.Thread]:
        """Training threads still alive (for lifecycle checks)."""
        return [h._thread for h in self.runs() if h._thread and h._thread.is_alive()]



# ===================================================================== process backend
@contextlib.contextmanager
def hidden_main():
    """Hide `__main__`'s file while starting workers: under `streamlit run` it is app.py,
    and spawned children would otherwise re-run the whole page."""
    main = sys.modules.get("__main__")
    saved = {k: getattr(main, k) for k in ("__file__", "__spec__") if hasattr(main, k)}
    try:
        for key in saved:
            setattr(main, key, None) if key == "__spec__" else delattr(main, key)
        yield
    finally:
        for key, value in saved.items():
            setattr(main, key, value)


class _Worker:
    """One worker process, its command queue and the runs it holds."""

    def __init__(self, ctx, index: int, updates):
        from regdemo.workers import worker_main

        self.index = index
        self.commands = ctx.Queue()
        self.ready = threading.Event()
        self.n_runs = 0
        self.process = ctx.Process(target=worker_main, args=(index, self.commands, updates),
                                   name=f"regdemo-worker-{index}", daemon=True)
        self.process.start()


class ProcessRunHandle:
    """The server's mirror of a run that trains in a worker process."""

    def __init__(self, runner: ProcessRunner, run_id: int, worker: _Worker, config: Config,
                 split: Split, history=(), events=()):
        self.runner, self.id, self.worker, self.split = runner, run_id, worker, split
        self._lock = threading.Lock()
        self._config = config
        self._status = PAUSED
        self._want = PAUSED
        self._closed = False
        self._history = _History()
        for record in history:
            self._history.add(record)
        self._unsaved = list(history) if runner.store is not None else []  # for the saver
        self.saved_id: str | None = None
        self.name: str | None = None
        self.owner: str | None = None
        self.initial_config = config
        self.parent: int | None = None
        self._events = list(events)
        self._epoch = history[-1].epoch if history else 0
        self._stop_reason: str | None = None
        self._diverged = False
        self._best_epoch: int | None = None
        self._summary: dict | None = None
        self._restored: int | None = None
        self._rate = 0.0
        self._pending = 0
        self._error: str | None = None
        self._views: dict = {}
        self._views_version = 0
        self._speed_sent: float | None = None
        self._sent = self._acked = 0
        self.last_seen = time.monotonic()
        self.orphaned_at: float | None = None
        self.started_at: float | None = None

    def _send(self, op: str, *args) -> None:
        with self._lock:
            self._sent += 1
            seq = self._sent
        self.worker.commands.put((op, self.id, seq, *args))

    # ----------------------------------------------------------------- controls
    @property
    def config(self) -> Config:
        return self._config

    @property
    def status(self) -> str:
        with self._lock:
            return self._status

    def start(self) -> None:
        """Train until the run stops, is paused or stopped; queued while the server is full."""
        with self._lock:
            if self._closed or (self._stop_reason and self._status == STOPPED
                                and self._epoch >= self._config.epochs):
                return
            self._want = RUNNING
            self.started_at = self.started_at or time.monotonic()
        if self.runner._admit(self):
            self._go()
        else:
            with self._lock:
                self._status = QUEUED

    resume = start

    def _go(self) -> None:
        with self._lock:
            self._status = RUNNING
        self._send("start")

    def pause(self) -> None:
        with self._lock:
            self._want = PAUSED
            if self._status in (RUNNING, QUEUED):
                self._status = PAUSED
        self._send("pause")
        self.runner._release(self)

    @property
    def stepping(self) -> bool:
        """Epochs asked for by step() are still to train (as far as the mirror knows)."""
        with self._lock:
            return self._pending > 0 or self._acked < self._sent

    def step(self, n: int = 1) -> None:
        """Train exactly `n` more epochs, then pause."""
        with self._lock:
            if self._closed:
                return
            self._want, self._pending = PAUSED, self._pending + n
            if self._status in (RUNNING, QUEUED):
                self._status = PAUSED
        self._send("step", n)
        self.runner._release(self)

    def stop(self) -> None:
        """End the run for good."""
        with self._lock:
            self._closed, self._want, self._status = True, STOPPED, STOPPED
        self._send("stop")
        self.runner._release(self)

    def set_speed(self, epochs_per_second: float | None) -> None:
        """Throttle to N epochs per second, or None for max (sent only when it changes: the
        page sets it on every rerun, and an unacknowledged command counts as busy)."""
        speed = epochs_per_second or None
        with self._lock:
            if self._speed_sent == speed and self._sent:
                return
            self._speed_sent = speed
        self._send("speed", speed)

    def set_live(self, **knobs) -> list[Event]:
        """Validate here (so bad input raises at once), apply in the worker between epochs."""
        new = self._config.with_live(**knobs)
        with self._lock:
            self._config = new
        self._send("live", knobs)
        return []  # the worker records the events; they arrive with the next update

    def fork(self) -> ProcessRunHandle:
        """A new paused run in the same worker, continuing from this run's current epoch."""
        return self.runner._fork(self)

    def wait(self, timeout: float = 30.0) -> bool:
        """Block until the worker has applied every command and the run is not training."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                idle = self._acked >= self._sent and not self._pending and \
                    self._status not in (RUNNING, QUEUED)
            if idle:
                return True
            time.sleep(0.01)
        return False

    # ----------------------------------------------------------------- mirror
    def _apply(self, update: dict) -> bool:
        """Take a worker update; True when the run stopped training (its slot frees)."""
        with self._lock:
            for record in update["records"]:
                self._history.add(record)
            if self.runner.store is not None:  # else nobody drains it
                self._unsaved += update["records"]
            if "events" in update:
                self._events = update["events"]
            if "views" in update:
                self._views = update["views"]
                self._views_version += 1
            self._acked = max(self._acked, update["seq"])
            self._epoch = update["epoch"]
            self._stop_reason, self._diverged = update["stop_reason"], update["diverged"]
            self._best_epoch, self._rate = update["best_epoch"], update["rate"]
            self._restored = update.get("restored_epoch")
            self._summary = update.get("summary")
            self._pending, self._error = update["pending"], update["error"]
            if self._acked >= self._sent and self._status != QUEUED:
                self._status = update["status"]
            ended = update["status"] == STOPPED
            limit = self.runner.max_run_seconds
            overdue = bool(limit and self.started_at and not ended
                           and time.monotonic() - self.started_at > limit)
        if overdue:
            self._send("halt", "stopped: the run reached the time limit")
        return ended

    def _drain(self) -> tuple[list[EpochRecord], list[Event]]:
        """Records not yet saved (taken), and all events so far."""
        with self._lock:
            records, self._unsaved = self._unsaved, []
            return records, list(self._events)

    def snapshot(self, touch: bool = True, since: int | None = None) -> Snapshot:
        """A consistent copy of the mirror, taken under the lock (`touch`: a page's read;
        `since`: only the history after that epoch)."""
        if touch:
            self.last_seen = time.monotonic()
        if not self.worker.process.is_alive() and not self._closed:
            with self._lock:
                self._error = self._error or "the training worker stopped unexpectedly"
                self._stop_reason = self._stop_reason or self._error
                self._status = STOPPED
        with self._lock:
            return Snapshot(
                run_id=self.id,
                config=self._config,
                status=self._status,
                epoch=self._epoch,
                history=self._history.since(since),
                events=list(self._events),
                stop_reason=self._stop_reason,
                diverged=self._diverged,
                best_epoch=self._best_epoch,
                restored_epoch=self._restored,
                summary=self._summary,
                epochs_per_second=self._rate,
                error=self._error,
                split=self.split,
                views_version=self._views_version,
                busy=self._status in (RUNNING, QUEUED) or self._status != STOPPED and (
                    self._pending > 0 or self._acked < self._sent),
                **_view_fields(self._views),
            )


class ProcessRunner(_Runner):
    """A pool of worker processes (one per core by default) that train all runs in turn."""

    def __init__(self, workers: int | None = None, **kwargs):
        super().__init__(**kwargs)
        ctx = multiprocessing.get_context("spawn")
        self._ctx = ctx
        self._updates = ctx.Queue()
        self._queue: list[ProcessRunHandle] = []  # started while the server was full
        with hidden_main():
            self._workers = [_Worker(ctx, i, self._updates)
                             for i in range(workers or usable_cpus())]
        self._reader = threading.Thread(target=self._read, name="regdemo-updates", daemon=True)
        self._reader.start()
        atexit.register(self.shutdown)

    def ready(self) -> bool:
        """True once every worker can train (the first start after boot takes seconds)."""
        return all(w.ready.is_set() for w in self._workers)

    def wait_ready(self, timeout: float = 60.0) -> bool:
        """Block until every worker has imported torch and warmed up."""
        deadline = time.monotonic() + timeout
        return all(w.ready.wait(max(0.0, deadline - time.monotonic())) for w in self._workers)

    def create(self, config: Config) -> ProcessRunHandle:
        """A new paused run for `config`, placed on the least loaded worker."""
        if not isinstance(config, Config):
            raise ConfigError([f"expected a Config; got {type(config).__name__}"])
        # Drawn once here and sent along: the page shows exactly the data the worker trains on.
        split = split_for(config)
        with self._lock:
            self._replace_dead_workers()
            worker = min(self._workers, key=lambda w: w.n_runs)
            worker.n_runs += 1
        handle = self._register(ProcessRunHandle(self, next(self._ids), worker, config, split))
        handle._send("create", config, split)
        return handle

    def _fork(self, src: ProcessRunHandle) -> ProcessRunHandle:
        snap = src.snapshot()
        with self._lock:
            src.worker.n_runs += 1
        handle = ProcessRunHandle(self, next(self._ids), src.worker, snap.config, src.split,
                                  history=snap.history, events=snap.events)
        handle._best_epoch, handle._summary = snap.best_epoch, snap.summary
        handle.parent, handle.initial_config = src.id, src.initial_config
        handle.owner = src.owner
        self._register(handle)
        handle.worker.commands.put(("fork", handle.id, 0, src.id))
        return handle

    def _dropped(self, handle: ProcessRunHandle) -> None:
        handle._send("drop")
        with self._lock:
            handle.worker.n_runs -= 1

    def _admit(self, handle: ProcessRunHandle) -> bool:
        with self._lock:
            if handle.id in self._active or len(self._active) < self.max_concurrent:
                self._active.add(handle.id)
                return True
            if handle not in self._queue:
                self._queue.append(handle)
            return False

    def _release(self, handle: ProcessRunHandle) -> None:
        promoted = []
        with self._lock:
            self._active.discard(handle.id)
            if handle in self._queue:
                self._queue.remove(handle)
            while self._queue and len(self._active) < self.max_concurrent:
                nxt = self._queue.pop(0)
                if nxt._want == RUNNING and not nxt._closed:
                    self._active.add(nxt.id)
                    promoted.append(nxt)
        for nxt in promoted:
            nxt._go()

    def _read(self) -> None:
        """Apply the workers' batched updates to the mirrors (the server's only busy work)."""
        while True:
            try:
                kind, index, payload = self._updates.get()
            except (EOFError, OSError, ValueError):
                return
            if kind == "ready":
                self._workers[index].ready.set()
                continue
            for run_id, update in payload:
                handle = self.get(run_id)
                if handle is not None and handle._apply(update):
                    self._release(handle)

    def _replace_dead_workers(self) -> None:
        """A worker killed from outside (the OOM killer, a native crash) gets a successor
        before new runs are placed; its own runs already say the worker stopped."""
        for i, worker in enumerate(self._workers):
            if not worker.process.is_alive():
                with hidden_main():
                    self._workers[i] = _Worker(self._ctx, i, self._updates)

    def worker_pids(self) -> list[int]:
        return [w.process.pid for w in self._workers]

    def worker_run_counts(self) -> list[int]:
        """Runs each worker holds (a forgotten run is dropped from its worker)."""
        with self._lock:
            return [w.n_runs for w in self._workers]

    def shutdown(self) -> None:
        """Stop the workers (at exit, or when a test is done with the pool)."""
        for worker in self._workers:
            if worker.process.is_alive():
                with contextlib.suppress(Exception):
                    worker.commands.put(("shutdown",))
        for worker in self._workers:
            worker.process.join(2)
            if worker.process.is_alive():
                worker.process.kill()
