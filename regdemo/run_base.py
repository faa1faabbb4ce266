"""What both runners share: snapshots, bounded history, the run registry with its cap
and reaper, and the saver that writes runs to the store."""

from __future__ import annotations

import bisect
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from regdemo.config import Config
from regdemo.datasets import Split
from regdemo.records import EpochRecord, Event, summary_dict
from regdemo.run_states import QUEUED, RUNNING, STOPPED


class RunHandle(Protocol):
    """What the page, the feed and the saver use of a run; both backends implement it."""

    id: int
    owner: str | None
    saved_id: str | None

    @property
    def config(self) -> Config: ...
    @property
    def status(self) -> str: ...
    def start(self) -> None: ...
    def pause(self) -> None: ...
    def step(self, n: int = 1) -> None: ...
    def stop(self) -> None: ...
    def set_speed(self, epochs_per_second: float | None) -> None: ...
    def set_live(self, **knobs) -> None: ...
    def fork(self) -> RunHandle: ...
    def wait(self, timeout: float = 30.0) -> bool: ...
    def snapshot(self, touch: bool = True, since: int | None = None) -> Snapshot: ...
    def drain_unsaved(self) -> tuple[list[EpochRecord], list[Event]]: ...


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


@dataclass
class RunState:
    """What a snapshot reads of a run's training. A Trainer has these attributes; the
    process backend's handle keeps them as the worker's updates tell them."""

    config: Config
    epoch: int = 0
    events: list[Event] = field(default_factory=list)
    stop_reason: str | None = None
    diverged: bool = False
    best_epoch: int | None = None
    restored_epoch: int | None = None


def is_busy(status: str, work_left: bool) -> bool:
    """Training, queued, or (unless stopped) with epochs or commands still to do."""
    return status in (RUNNING, QUEUED) or (status != STOPPED and work_left)


def take_snapshot(run_id: int, run: RunState, *, status: str, history: list[EpochRecord],
                  busy: bool, summary: dict | None, rate: float, error: str | None,
                  split: Split | None, views_version: int, views: dict) -> Snapshot:
    """A Snapshot of `run` (a Trainer or a RunState) and what its handle knows."""
    return Snapshot(
        run_id=run_id, config=run.config, status=status, epoch=run.epoch, history=history,
        events=list(run.events), stop_reason=run.stop_reason, diverged=run.diverged,
        best_epoch=run.best_epoch, restored_epoch=run.restored_epoch, summary=summary,
        epochs_per_second=rate, error=error, split=split, views_version=views_version,
        busy=busy, **view_fields(views),
    )


def view_fields(views: dict) -> dict:
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


class History:
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


class Runner:
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
        self._saver = Saver(self, store, save_interval) if store is not None else None

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


class Saver:
    """Writes each run's new epochs and events to the store in batches, from one thread.

    Batches are small and frequent, so a server killed mid-run keeps all but the last
    half second; a run is created in the store with its first epoch (an untrained run
    leaves nothing behind) and finished when it stops or is forgotten.
    """

    def __init__(self, runner: Runner, store, interval: float):
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
        records, events = handle.drain_unsaved()
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
