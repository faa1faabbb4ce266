"""Sweeps in the background for the page: one at a time per server, the rest wait in line."""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque

from regdemo.sweep import SweepSpec, run_sweep
from regdemo.sweep_results import SweepResult

WAITING, RUNNING, DONE, CANCELLED, FAILED = "waiting", "running", "done", "cancelled", "failed"


class SweepJob:
    """One submitted sweep: its progress, and its result once it ends."""

    def __init__(self, job_id: int, spec: SweepSpec):
        self.id, self.spec = job_id, spec
        self.status = WAITING
        self.done, self.total = 0, spec.points * spec.seeds
        self.result: SweepResult | None = None
        self.error: str | None = None
        self.cancel_event = threading.Event()
        self.submitted, self.started, self.ended = time.monotonic(), None, None

    @property
    def active(self) -> bool:
        return self.status in (WAITING, RUNNING)

    def cancel(self) -> None:
        """Stop soon: a running sweep keeps the runs that finished."""
        self.cancel_event.set()


class SweepQueue:
    """Runs submitted sweeps one after another on a process pool, from one thread.

    A sweep already fills every core, so two at once would only take twice as long each;
    one line keeps a classroom's sweeps fair and the live runs responsive.
    """

    def __init__(self, workers: int | None = None, backend: str | None = None):
        self.workers, self.backend = workers, backend
        self._lock = threading.Lock()
        self._line: deque[SweepJob] = deque()
        self._ids = itertools.count(1)
        self._thread: threading.Thread | None = None

    def submit(self, spec: SweepSpec) -> SweepJob:
        job = SweepJob(next(self._ids), spec)
        with self._lock:
            self._line.append(job)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="regdemo-sweeps",
                                                daemon=True)
                self._thread.start()
        return job

    def ahead_of(self, job: SweepJob) -> int:
        """How many sweeps run or wait before `job` starts."""
        with self._lock:
            return next((i for i, j in enumerate(self._line) if j is job), 0)

    def _work(self) -> None:
        while True:
            with self._lock:
                if not self._line:
                    self._thread = None
                    return
                job = self._line[0]
            self._run(job)
            with self._lock:
                self._line.popleft()

    def _run(self, job: SweepJob) -> None:
        if job.cancel_event.is_set():
            job.status = CANCELLED
            return
        job.status, job.started = RUNNING, time.monotonic()

        def progress(done: int, total: int) -> None:
            job.done, job.total = done, total

        try:
            job.result = run_sweep(job.spec, workers=self.workers, backend=self.backend,
                                   progress=progress, cancel=job.cancel_event)
            job.status = CANCELLED if job.result.cancelled else DONE
        except Exception as exc:  # a failed sweep must not take the server down
            job.error = f"the sweep failed: {type(exc).__name__}: {exc}"
            job.status = FAILED
        finally:
            job.ended = time.monotonic()
