"""Runs trainers off the page: a handle per run, lock-protected snapshots, bounded history.

This is the in-process thread backend (notebooks, the CLI, tests and the page for now).
The page reads `snapshot()`; the training thread never touches the UI.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from regdemo.config import Config, ConfigError
from regdemo.datasets import Split
from regdemo.engine import EpochRecord, Event, Trainer

QUEUED, RUNNING, PAUSED, STOPPED = "queued", "running", "paused", "stopped"
# Views are refreshed at most this often while training (the page polls at ~2 Hz).
VIEW_INTERVAL = 0.25
MAX_POINTS = 2000  # history points kept per run; older ones are thinned out evenly


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
    error: str | None = None  # an unexpected failure inside the run, in plain words
    split: Split | None = None  # the run's data (read-only, shared, not copied)


class _History:
    """Records with a cap: when full, every other old point is dropped (even thinning)."""

    def __init__(self, limit: int = MAX_POINTS):
        self.limit = limit
        self.items: list[EpochRecord] = []

    def add(self, record: EpochRecord) -> None:
        self.items.append(record)
        if len(self.items) > self.limit:
            # Keep the newest half untouched so the live end of the curve stays dense.
            half = len(self.items) // 2
            self.items = self.items[:half:2] + self.items[half:]


class RunHandle:
    """One run: start, pause, resume, step, stop, live knobs, fork and snapshots."""

    def __init__(self, runner: ThreadRunner, run_id: int, trainer: Trainer):
        self.runner, self.id, self.trainer = runner, run_id, trainer
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._status = PAUSED  # what the user asked for; STOPPED once stop() was called
        self._history = _History()
        for record in trainer.history:
            self._history.add(record)
        self._pending_steps = 0
        self._busy = False  # an epoch taken by the thread but not yet recorded
        self._thread: threading.Thread | None = None
        self._error: str | None = None
        self._speed: float | None = None  # epochs per second; None = as fast as possible
        self._rate = 0.0
        self._view = self._weights = self._importance = self._augmented = None
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

    def fork(self) -> RunHandle:
        """A new paused run that continues from this one's current epoch."""
        with self._lock:
            clone = self.trainer.fork()
        return self.runner._adopt(clone)

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
    def snapshot(self) -> Snapshot:
        """A consistent copy of everything the page draws, taken under the lock."""
        self.last_seen = time.monotonic()
        with self._lock:
            t = self.trainer
            status = self._effective_status()
            return Snapshot(
                run_id=self.id,
                config=t.config,
                status=status,
                epoch=t.epoch,
                history=list(self._history.items),
                events=list(t.events),
                stop_reason=t.stop_reason,
                diverged=t.diverged,
                best_epoch=t.best_epoch,
                epochs_per_second=self._rate,
                view=self._view,
                weights=self._weights or {},
                feature_importance=self._importance,
                augmented=self._augmented,
                error=self._error,
                split=t.split,
            )

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
        done = 0
        try:
            while self._next_action() == "train":
                with self._lock:
                    record = self.trainer.step()
                    if record is not None:
                        self._history.add(record)
                    speed, self._busy = self._speed, False
                done += 1
                now = time.perf_counter()
                if now - tick >= 0.5:
                    self._rate, tick, done = done / (now - tick), now, 0
                self._refresh_views()
                if speed:
                    time.sleep(max(0.0, 1.0 / speed - (time.perf_counter() - now)))
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
            t = self.trainer
            self._view = t.predict_grid(100)
            self._weights = t.weights()
            self._importance = t.feature_importance()
            self._augmented = t.augmented_sample()
        self._view_time = now


class ThreadRunner:
    """Creates runs and caps how many train at once (the rest wait, 'queued').

    A run whose page went away (`orphan`) is stopped and forgotten after `grace` seconds
    unless the page comes back and reads it again (a reconnect within the grace period).
    """

    def __init__(self, max_concurrent: int = 8, max_run_seconds: float | None = 1800,
                 grace: float = 45.0):
        self.max_concurrent = max_concurrent
        self.max_run_seconds = max_run_seconds
        self.grace = grace
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._runs: dict[int, RunHandle] = {}
        self._active: set[int] = set()
        self._reaper: threading.Thread | None = None

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

    def forget(self, run_id: int) -> None:
        """Stop a run and drop it from the server's memory."""
        handle = self.get(run_id)
        if handle is not None:
            handle.stop()
            with self._lock:
                self._runs.pop(run_id, None)

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

    def create(self, config: Config) -> RunHandle:
        """A new paused run for `config` (data drawn and model built now)."""
        if not isinstance(config, Config):
            raise ConfigError([f"expected a Config; got {type(config).__name__}"])
        return self._adopt(Trainer(config))

    def _adopt(self, trainer: Trainer) -> RunHandle:
        handle = RunHandle(self, next(self._ids), trainer)
        with self._lock:
            self._runs[handle.id] = handle
        return handle

    def get(self, run_id: int) -> RunHandle | None:
        with self._lock:
            return self._runs.get(run_id)

    def runs(self) -> list[RunHandle]:
        with self._lock:
            return list(self._runs.values())

    def _admit(self, handle: RunHandle) -> bool:
        with self._lock:
            if handle.id in self._active:
                return True
            if len(self._active) < self.max_concurrent:
                self._active.add(handle.id)
                return True
            return False

    def _release(self, handle: RunHandle) -> None:
        with self._lock:
            self._active.discard(handle.id)

    def stop_all(self) -> None:
        for handle in self.runs():
            handle.stop()

    def active_threads(self) -> list[threading.Thread]:
        """Training threads still alive (for lifecycle checks)."""
        return [h._thread for h in self.runs() if h._thread and h._thread.is_alive()]
