"""Worker process of the process backend: trains many runs in turn, sends batched updates.

One worker per core. Each loop it reads commands, gives every run that wants epochs a short
time slice, and about every 100 ms sends the new records (and, at most 4 times a second,
fresh views) of the runs that changed. The server process never trains.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import queue
import time

from regdemo.run_states import PAUSED, RUNNING, STOPPED, VIEW_INTERVAL

SLICE_SECONDS = 0.02  # one run's turn before the next run's
FLUSH_SECONDS = 0.1  # batch updates at this interval
IDLE_WAIT = 0.05  # seconds a worker with nothing due waits for a command
# A throttled run that fell behind (a busy worker's round took longer than its period)
# makes up at most this much time, so its speed holds when the worker is shared.
CATCH_UP = 0.25
PARENT_CHECK_SECONDS = 1.0  # how soon a worker notices that its server died


class _Run:
    """A trainer plus what its page asked for."""

    def __init__(self, trainer):
        self.trainer = trainer
        self.want = PAUSED
        self.pending = 0  # epochs asked for by Step
        self.speed = None  # epochs per second, None = max
        self.next_due = 0.0
        self.seq = 0  # last command handled, echoed so the server knows it was applied
        self.records = []  # new since the last flush
        self.events_sent = len(trainer.events)
        self.dirty = True
        self.view_time = 0.0
        self.views_at = None  # (epoch, status) the views last sent were drawn at
        self.error = None
        self.rate, self._count, self._tick = 0.0, 0, time.perf_counter()

    def wants_epoch(self, now: float) -> bool:
        if self.trainer.stopped or self.want == STOPPED:
            return False
        return self.pending > 0 or (self.want == RUNNING and now >= self.next_due)

    def due(self) -> float | None:
        """When a throttled, running run's next epoch is due (None: not throttled)."""
        if self.want != RUNNING or not self.speed or self.trainer.stopped:
            return None
        return self.next_due

    def status(self) -> str:
        if self.want == STOPPED or self.trainer.stopped:
            return STOPPED
        return RUNNING if self.want == RUNNING else PAUSED

    def train_slice(self) -> None:
        """Train epochs for up to SLICE_SECONDS (or until throttled, paused or stopped)."""
        start = time.perf_counter()
        while self.wants_epoch(time.perf_counter()):
            try:
                record = self.trainer.step()
            except Exception as exc:  # one failing run must not take the worker down
                self.error = f"the run failed: {type(exc).__name__}: {exc}"
                self.trainer.halt(self.error)
                record = None
            if self.pending:
                self.pending -= 1
            if record is not None:
                self.records.append(record)
                self._count += 1
            self.dirty = True
            now = time.perf_counter()
            if self.speed:
                # On a fixed schedule (not "now + period"), so the epoch's own time does not
                # slow the run below its speed; a run that fell behind makes up CATCH_UP at
                # most, rather than racing through everything it missed.
                period = 1.0 / self.speed
                self.next_due = max(self.next_due + period, now - CATCH_UP) \
                    if self.next_due else now + period
            if now - self._tick >= 0.5:
                self.rate, self._count, self._tick = self._count / (now - self._tick), 0, now
            if now - start >= SLICE_SECONDS:
                break

    def update(self, now: float, force_views: bool) -> dict:
        """What changed since the last flush, for the server's mirror of this run."""
        t = self.trainer
        out = {
            "seq": self.seq,
            "records": self.records,
            "status": self.status(),
            "epoch": t.epoch,
            "stop_reason": t.stop_reason,
            "diverged": t.diverged,
            "best_epoch": t.best_epoch,
            "restored_epoch": t.restored_epoch,
            # Measured on the test set: only for a run at rest, not every tick.
            "summary": t.summary() if self.status() != RUNNING else None,
            "rate": self.rate if self.want == RUNNING else 0.0,
            "pending": self.pending,
            "error": self.error,
        }
        self.records = []
        if len(t.events) != self.events_sent:
            out["events"] = list(t.events)
            self.events_sent = len(t.events)
        # A run that stops or pauses sends its final views at once: the views were up to a
        # second (hundreds of epochs at max speed) older than its last epoch.
        at_rest = out["status"] != RUNNING and not self.pending and \
            self.views_at != (t.epoch, out["status"])
        if force_views or at_rest or now - self.view_time >= VIEW_INTERVAL:
            self.view_time, self.views_at = now, (t.epoch, out["status"])
            try:
                out["views"] = t.views()
            except Exception as exc:  # this run's failure, not its worker's
                self.error = out["error"] = f"the run failed: {type(exc).__name__}: {exc}"
                t.halt(self.error)
                out["status"], out["stop_reason"] = STOPPED, t.stop_reason
        self.dirty = False
        return out


class _Failed:
    """A run that could not be made (its Trainer or fork raised): reports that, once."""

    def __init__(self, error: str):
        self.error, self.seq, self.dirty = error, 0, True

    def wants_epoch(self, now: float) -> bool:
        return False

    def due(self) -> float | None:
        return None

    def train_slice(self) -> None:
        pass

    def update(self, now: float, force_views: bool) -> dict:
        self.dirty = False
        return {"seq": self.seq, "records": [], "status": STOPPED, "epoch": 0,
                "stop_reason": self.error, "diverged": False, "best_epoch": None,
                "rate": 0.0, "pending": 0, "error": self.error}


def _handle(runs: dict, message: tuple) -> None:
    """Apply one command from the server."""
    from regdemo.engine import Trainer

    op, run_id, seq, *args = message
    try:
        if op == "create":
            runs[run_id] = _Run(Trainer(args[0], split=args[1], threads=1))
        elif op == "fork":
            src = runs.get(args[0])
            if isinstance(src, _Run):
                runs[run_id] = _Run(src.trainer.fork())
    except Exception as exc:  # one bad run must not take the worker (and its runs) down
        runs[run_id] = _Failed(f"the run failed to start: {type(exc).__name__}: {exc}")
    run = runs.get(run_id)
    if run is None:
        return
    run.seq, run.dirty = seq, True
    if isinstance(run, _Failed):  # nothing to start or change: only acknowledge
        if op == "drop":
            runs.pop(run_id, None)
        return
    if op == "start":
        run.want = RUNNING
    elif op == "pause":
        run.want = PAUSED
    elif op == "step":
        run.want, run.pending = PAUSED, run.pending + args[0]
    elif op == "stop":
        run.want = STOPPED
    elif op == "drop":
        runs.pop(run_id, None)
        # A Trainer sits in reference cycles and a worker rarely reaches a full collection:
        # without this a worker kept ~1.5 MB of every run it had trained.
        gc.collect()
    elif op == "speed":
        run.speed, run.next_due = args[0], 0.0
    elif op == "live":
        try:
            run.trainer.set_live(**args[0])
        except Exception as exc:  # validated by the server already; never crash on it
            run.error = f"a live change was refused: {exc}"
    elif op == "halt":
        run.trainer.halt(args[0])


def worker_main(index: int, commands, updates, niceness: int = 5) -> None:
    """The worker process's loop; ends on a ('shutdown',) command."""
    import contextlib

    with contextlib.suppress(OSError):
        os.nice(niceness)  # the page's own process stays responsive
    from regdemo.config import Config
    from regdemo.engine import Trainer

    # The first run in a process pays for imports (sklearn) and the first optimizer (~1 s):
    # pay it now, before anyone presses Train.
    Trainer(Config(n_train=8, n_val=8, hidden=(4,)), threads=1).step()
    from regdemo import warmup

    # The fused epoch loads from numba's disk cache in ~0.4 s (it compiles, ~20 s, on the
    # very first start after an install): before anyone presses Train, as for the rest.
    warmup.warm()
    updates.put(("ready", index, None))
    runs: dict[int, _Run] = {}
    last_flush = last_check = 0.0
    rounds = 0
    parent = multiprocessing.parent_process()
    while True:
        now = time.perf_counter()
        if now - last_check >= PARENT_CHECK_SECONDS:
            # A server killed with SIGKILL sends no shutdown: don't train on for nobody.
            if parent is not None and not parent.is_alive():
                os._exit(0)  # at once: joining queue threads towards a dead reader can hang
            last_check = now
        busy = any(r.wants_epoch(now) for r in runs.values())
        # A throttled run's next epoch may be due in less than the idle wait: wake for it,
        # or every speed above 20 epochs/s would train at 20.
        due = min((d for d in (r.due() for r in runs.values()) if d is not None),
                  default=now + IDLE_WAIT)
        touched: set[int] = set()  # runs a command changed: their views are refreshed now
        try:
            message = commands.get_nowait() if busy else commands.get(
                timeout=min(IDLE_WAIT, max(0.0005, due - now)))
            while True:
                if message[0] == "shutdown":
                    return
                _handle(runs, message)
                touched.add(message[1])
                message = commands.get_nowait()
        except queue.Empty:
            pass
        # Each round starts one run further on: the run at the front of every round trained
        # slower than the others (it shared its slice with the update queue's pickling).
        order = list(runs.values())
        if order:
            start = rounds % len(order)
            order = order[start:] + order[:start]
        rounds += 1
        for run in order:
            run.train_slice()
        now = time.perf_counter()
        if touched or now - last_flush >= FLUSH_SECONDS:
            batch = [(run_id, run.update(now, force_views=run_id in touched))
                     for run_id, run in runs.items() if run.dirty]
            if batch:
                updates.put(("batch", index, batch))
            last_flush = now
