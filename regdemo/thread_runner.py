"""The thread backend: a training thread per run, in this process (notebooks, the CLI,
tests)."""

from __future__ import annotations

import threading
import time

from regdemo import warmup
from regdemo.config import Config, ConfigError
from regdemo.engine import Trainer
from regdemo.records import EpochRecord, Event
from regdemo.run_base import History, Runner, Snapshot, is_busy, take_snapshot
from regdemo.run_states import PAUSED, QUEUED, RUNNING, STOPPED, VIEW_INTERVAL


class ThreadRunHandle:
    """One run: start, pause, resume, step, stop, live knobs, fork and snapshots."""

    def __init__(self, runner: ThreadRunner, run_id: int, trainer: Trainer):
        self.runner, self.id, self.trainer = runner, run_id, trainer
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._status = PAUSED  # what the user asked for; STOPPED once stop() was called
        self._history = History()
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

    def set_live(self, **knobs) -> None:
        """Change live knobs; applied between epochs. Raises ConfigError on bad input.
        The events it records show in the next snapshot (as on the process backend)."""
        with self._lock:
            self.trainer.set_live(**knobs)
            # More epochs can lift a finished run's stop: a run meant to train goes on.
            resume = self._status == RUNNING and not self.trainer.stopped
            self._wake.notify_all()
        if resume:
            self._ensure_thread()
        self._refresh_views(force=True)

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
            busy = is_busy(status, self._busy or bool(self._pending_steps))
            # The summary is measured on the test set: only for a run at rest, not every tick.
            return take_snapshot(
                self.id, t, status=status, history=self._history.since(since), busy=busy,
                summary=None if busy else t.summary(), rate=self._rate, error=self._error,
                split=t.split, views_version=self._views_version, views=self._views)

    def drain_unsaved(self) -> tuple[list[EpochRecord], list[Event]]:
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


class ThreadRunner(Runner):
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
