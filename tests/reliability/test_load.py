"""Load: a classroom of 30 sessions on one server for a minute, then everyone leaves.

The server's pieces, as `streamlit run app.py` wires them (regdemo.ui.state): one
ProcessRunner (2 worker processes, REGDEMO_MAX_RUNS=8, the run store written by its saver)
shared by 4 real page sessions (AppTest: the whole page script, fragments run inline) and
26 sessions that do what a page does through the runner's API (create a run on Train,
start, read a snapshot ~3 times a second, change a live knob, Reset or close the tab).
Real pages draw every chart; 30 of them would measure this 2-core machine's Plotly, not the
server (bench/sessions.py measures real pages and websocket sessions on `streamlit run`).
"""

from __future__ import annotations

import gc
import os
import random
import threading
import time

import pytest
from streamlit.runtime.caching import cache_resource_api
from streamlit.testing.v1 import AppTest

from regdemo.config import Config
from regdemo.runner import QUEUED, RUNNING, STOPPED
from regdemo.store import RunStore
from tests.reliability.helpers import APP, messages, rss_mb, until

pytestmark = pytest.mark.load

SESSIONS = 30
PAGES = 4
MAX_RUNS = 8
HOLD = float(os.environ.get("REGDEMO_LOAD_SECONDS", "30"))  # seconds all 30 are on
GRACE = 2.0
# Memory bounds (RSS). The page process: growth while 30 sessions train, and what it may
# keep once they have left; the workers: the same (their live runs are small nets).
SERVER_MB_PER_SESSION = 8  # measured ~3.5
SERVER_RETURN_MB = 120  # measured +40-75 (allocator high-water marks)
WORKERS_MB_PER_SESSION = 5
WORKERS_RETURN_MB = 120  # with a gc.collect() per dropped run: +87 measured
QUEUED_TEXT = "The server is busy: this run is queued"


class Session(threading.Thread):
    """One student: Train, watch, change a knob, wait for the end, Reset, Train again..."""

    def __init__(self, index: int, runner, stop_at: float, start: threading.Event):
        super().__init__(name=f"session-{index}", daemon=True)
        self.index, self.runner, self.stop_at, self.go = index, runner, stop_at, start
        self.rng = random.Random(index)
        self.failures: list[str] = []
        self.statuses: set[str] = set()
        self.finished: list[tuple[object, int]] = []  # (handle, epochs): first and last
        self.epochs = 0  # trained, over all its runs
        self.done = 0  # runs that finished
        self.handle = None

    def run(self) -> None:
        try:
            self.go.wait()
            while time.monotonic() < self.stop_at:
                self._one_run()
                time.sleep(self.rng.uniform(0.5, 2.0))  # reading the result
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.failures.append(f"{type(exc).__name__}: {exc}")

    def _one_run(self) -> None:
        epochs = self.rng.choice([300, 600, 1000])
        config = Config(n_train=self.rng.choice([40, 100, 200]), n_val=100,
                        hidden=self.rng.choice([(16, 16), (32, 32), (64,)]),
                        epochs=epochs, seed=self.index)
        if self.handle is not None:  # Train after a finished run: the page makes a new run
            self.runner.forget(self.handle.id)
        handle = self.handle = self.runner.create(config)
        handle.start()
        changed = False
        while time.monotonic() < self.stop_at:
            snap = handle.snapshot()  # the page's poll
            self.statuses.add(snap.status)
            if snap.error:
                self.failures.append(snap.error)
                return
            if snap.epoch > 50 and not changed:
                handle.set_live(dropout=0.1)  # a live knob mid-run
                changed = True
            if snap.status == STOPPED:
                self.epochs += snap.epoch
                if snap.stop_reason != f"finished: reached {epochs} epochs":
                    self.failures.append(f"ended with {snap.stop_reason!r}")
                # Keep the first and the last only: a handle holds its run's history and views.
                self.finished[1:] = [(handle, epochs)]
                self.done += 1
                return
            time.sleep(0.3)
        self.epochs += handle.snapshot().epoch


def _pages_poll(pages, handles_of, seen_queued_text, failures) -> None:
    """One fragment tick of each real page; a finished run gets Train pressed again."""
    for i, at in enumerate(pages):
        at.run()
        if at.exception:
            failures.append(f"page {i}: {[e.proto.message for e in at.exception]}")
            continue
        handle = handles_of(at)
        if handle is None:
            continue
        warnings = messages(at.warning)
        if any(QUEUED_TEXT in w for w in warnings):
            seen_queued_text.add(i)
        if handle.status == STOPPED:
            at.button(key="btn_train").click().run()


def test_thirty_sessions_train_queue_and_leave(tmp_path, monkeypatch):
    """30 sessions for HOLD seconds (60 by default), 8 training at a time.

    Checks: no exception on any page, no run error, no saving error; every session trains
    epochs (the queue lets everyone in); sessions past the cap are queued and the pages say
    so; each finished run's saved rows are epochs 1..N; server memory (this process plus its
    workers) stays bounded per session; once every session has left (half Reset, half
    close the tab) every run is stopped and dropped from the workers, and memory is back
    within SERVER_RETURN_MB (page process) and WORKERS_RETURN_MB (workers) of the baseline.

    (Found by this test and fixed: workers kept ~1-2 MB of every run they trained, since a
    dropped Trainer waits for a full cyclic collection; a worker now collects on "drop".)
    """
    import streamlit as st

    from regdemo.ui.state import get_runner, get_store

    data = tmp_path / "data"
    for key, value in {"REGDEMO_BACKEND": "process", "REGDEMO_WORKERS": "2",
                       "REGDEMO_MAX_RUNS": str(MAX_RUNS), "REGDEMO_GRACE_SECONDS": str(GRACE),
                       "REGDEMO_DATA_DIR": str(data)}.items():
        monkeypatch.setenv(key, value)
    st.cache_resource.clear()
    pages = [AppTest.from_file(APP, default_timeout=120) for _ in range(PAGES)]
    runner = None
    try:
        for at in pages:
            at.run()
            assert not at.exception
            at.number_input(key="w_epochs").set_value(800).run()
        runner = get_runner()
        assert runner.wait_ready(180)
        server = lambda: [os.getpid(), *runner.worker_pids()]  # noqa: E731
        gc.collect()
        baseline = rss_mb(server())
        split = lambda: (rss_mb([os.getpid()]), rss_mb(runner.worker_pids()))  # noqa: E731
        parts = {"before": split()}
        peaks = list(parts["before"])

        go = threading.Event()
        stop_at = time.monotonic() + HOLD
        sessions = [Session(i, runner, stop_at, go) for i in range(SESSIONS - PAGES)]
        for s in sessions:
            s.start()
        go.set()  # the class presses Train together
        assert until(lambda: len([h for h in runner.runs() if h.status == RUNNING])
                     >= MAX_RUNS, 30)
        for at in pages:  # the last four arrive when the server is full
            at.button(key="btn_train").click().run()
        def handles_of(at):
            try:
                return runner.get(at.session_state["run_id"])
            except KeyError:
                return None

        seen_queued_text: set[int] = set()
        page_failures: list[str] = []
        page_epochs = {i: 0 for i in range(PAGES)}
        peak, most_running = baseline, 0
        while time.monotonic() < stop_at:
            _pages_poll(pages, handles_of, seen_queued_text, page_failures)
            for i, at in enumerate(pages):
                handle = handles_of(at)
                page_epochs[i] = max(page_epochs[i], handle.snapshot().epoch if handle else 0)
            # The runner's admitted set is what trains (a mirror's status can lag an update).
            most_running = max(most_running, len(runner._active))
            now = split()
            peaks = [max(a, b) for a, b in zip(peaks, now)]
            peak = max(peak, sum(now))
            time.sleep(0.3)
        for s in sessions:
            s.join(30)
        during = peak

        # Everyone leaves: half press Reset, half close the tab (the grace period applies).
        for s in sessions[::2]:
            if s.handle is not None:
                runner.forget(s.handle.id)
        for s in sessions[1::2]:
            if s.handle is not None:
                runner.orphan(s.handle.id)
        cache_resource_api.clear_session_cache("test session id")  # the 4 pages' tabs close
        assert until(lambda: not runner.runs(), GRACE + 20)
        assert until(lambda: runner.worker_run_counts() == [0, 0], 10)
        runner.save_now()
        store = get_store()
        saver_error = runner._saver.error if runner._saver else None

        failures = [f"session {s.index}: {f}" for s in sessions for f in s.failures]
        assert failures == [] and page_failures == [] and saver_error is None
        assert all(not s.is_alive() for s in sessions)
        # Every session trained, the ones over the cap were queued and the pages said so.
        trained = [s.epochs for s in sessions] + list(page_epochs.values())
        assert min(trained) > 0, trained
        queued = [s for s in sessions if QUEUED in s.statuses]
        assert len(queued) >= SESSIONS - PAGES - MAX_RUNS
        assert seen_queued_text, "no page showed the queued message"
        assert most_running <= MAX_RUNS
        # Saved: a sample of finished runs, every epoch, in order, marked finished.
        finished = [f for s in sessions for f in s.finished]
        assert len(finished) >= SESSIONS - PAGES
        with RunStore(data) as reader:
            for handle, epochs in finished:
                saved = reader.get(handle.saved_id)
                assert saved.info.status == "finished"
                assert [e.epoch for e in saved.history] == list(range(1, epochs + 1))
            n_saved = len(reader.runs(limit=100_000))
        assert store.problem is None

        # Memory: bounded while they trained, near the baseline after they left.
        del pages[:]
        gc.collect()
        time.sleep(1.0)
        after = rss_mb(server())
        parts["peak"], parts["after"] = tuple(peaks), split()
        runs_done = sum(s.done for s in sessions)
        print(f"\nload: {SESSIONS} sessions ({PAGES} pages) for {HOLD:.0f} s, at most "
              f"{most_running} training at once; {runs_done} runs finished, {n_saved} saved; "
              f"{len(queued)} sessions queued at some point, queued message on pages "
              f"{sorted(seen_queued_text)}; epochs per session min {min(trained):,} "
              f"max {max(trained):,}; RSS (server + workers) before {baseline:.0f} MB, peak "
              f"{during:.0f} MB, after {after:.0f} MB; (server, workers) MB: "
              + ", ".join(f"{k} {a:.0f}/{b:.0f}" for k, (a, b) in parts.items()))
        grew = [p - b for p, b in zip(parts["peak"], parts["before"])]
        kept = [a - b for a, b in zip(parts["after"], parts["before"])]
        assert grew[0] <= SERVER_MB_PER_SESSION * SESSIONS and kept[0] <= SERVER_RETURN_MB
        assert grew[1] <= WORKERS_MB_PER_SESSION * SESSIONS, grew
        assert kept[1] <= WORKERS_RETURN_MB, kept  # workers collect a dropped run at once
    finally:
        if runner is not None:
            for handle in runner.runs():
                runner.forget(handle.id)
            runner.shutdown()
        st.cache_resource.clear()
