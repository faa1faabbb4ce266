"""The process backend: a few worker processes train every run in turn and send records
back in batches (the server: training threads would fight the page for the GIL)."""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import sys
import threading
import time

from regdemo.config import Config, ConfigError
from regdemo.cpus import usable_cpus
from regdemo.datasets import Split, split_for
from regdemo.records import EpochRecord, Event
from regdemo.run_base import History, Runner, RunState, Snapshot, is_busy, take_snapshot
from regdemo.run_states import PAUSED, QUEUED, RUNNING, STOPPED


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
        # The worker's trainer as its updates tell it (what a snapshot reads).
        self._run = RunState(config, epoch=history[-1].epoch if history else 0,
                             events=list(events))
        self._status = PAUSED
        self._want = PAUSED
        self._closed = False
        self._history = History()
        for record in history:
            self._history.add(record)
        self._unsaved = list(history) if runner.store is not None else []  # for the saver
        self.saved_id: str | None = None
        self.name: str | None = None
        self.owner: str | None = None
        self.initial_config = config
        self.parent: int | None = None
        self._summary: dict | None = None
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
        return self._run.config

    @property
    def status(self) -> str:
        with self._lock:
            return self._status

    def start(self) -> None:
        """Train until the run stops, is paused or stopped; queued while the server is full."""
        with self._lock:
            run = self._run
            if self._closed or (run.stop_reason and self._status == STOPPED
                                and run.epoch >= run.config.epochs):
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

    def set_live(self, **knobs) -> None:
        """Validate here (so bad input raises at once), apply in the worker between epochs;
        the events it records arrive with the worker's next update."""
        new = self._run.config.with_live(**knobs)
        with self._lock:
            self._run.config = new
        self._send("live", knobs)

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
            run = self._run
            if "events" in update:
                run.events = update["events"]
            if "views" in update:
                self._views = update["views"]
                self._views_version += 1
            self._acked = max(self._acked, update["seq"])
            run.epoch = update["epoch"]
            run.stop_reason, run.diverged = update["stop_reason"], update["diverged"]
            run.best_epoch, self._rate = update["best_epoch"], update["rate"]
            run.restored_epoch = update.get("restored_epoch")
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

    def drain_unsaved(self) -> tuple[list[EpochRecord], list[Event]]:
        """Records not yet saved (taken), and all events so far."""
        with self._lock:
            records, self._unsaved = self._unsaved, []
            return records, list(self._run.events)

    def snapshot(self, touch: bool = True, since: int | None = None) -> Snapshot:
        """A consistent copy of the mirror, taken under the lock (`touch`: a page's read;
        `since`: only the history after that epoch)."""
        if touch:
            self.last_seen = time.monotonic()
        if not self.worker.process.is_alive() and not self._closed:
            with self._lock:
                self._error = self._error or "the training worker stopped unexpectedly"
                self._run.stop_reason = self._run.stop_reason or self._error
                self._status = STOPPED
        with self._lock:
            return take_snapshot(
                self.id, self._run, status=self._status, history=self._history.since(since),
                busy=is_busy(self._status, self._pending > 0 or self._acked < self._sent),
                summary=self._summary, rate=self._rate, error=self._error, split=self.split,
                views_version=self._views_version, views=self._views)


class ProcessRunner(Runner):
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
        handle._run.best_epoch, handle._summary = snap.best_epoch, snap.summary
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
