"""Server-wide runner and the per-session hook that stops a closed tab's runs."""

from __future__ import annotations

import os
import threading

import streamlit as st

from regdemo.cpus import usable_cpus
from regdemo.datasets import preload
from regdemo.runner import ProcessRunner, ThreadRunner
from regdemo.store import RunStore
from regdemo.sweep_jobs import SweepQueue
from regdemo.ui.board_registry import REGISTRY


@st.cache_resource
def get_store() -> RunStore:
    """Saved runs: one SQLite file in $REGDEMO_DATA_DIR (default ./runs).

    Runs that a killed server left "running" are marked interrupted when it starts again.
    """
    store = RunStore()
    store.mark_interrupted()
    return store


# Runs training at once per worker process (more are queued): a default run at the default
# speed takes a few percent of a core, so a class of 30 trains at once on two cores.
RUNS_PER_WORKER = 20


def default_workers() -> int:
    """REGDEMO_WORKERS, else one worker per CPU this server may use."""
    return int(os.environ.get("REGDEMO_WORKERS", "0")) or usable_cpus()


@st.cache_resource
def get_runner() -> ProcessRunner | ThreadRunner:
    """One runner for the whole server; backend and limits come from the environment.

    REGDEMO_BACKEND=process (default): worker processes train, the server only draws.
    REGDEMO_BACKEND=thread: training threads in this process (page tests, notebooks).
    """
    workers = default_workers()
    limits = dict(
        max_concurrent=int(os.environ.get("REGDEMO_MAX_RUNS", "0")) or RUNS_PER_WORKER * workers,
        max_run_seconds=float(os.environ.get("REGDEMO_MAX_RUN_SECONDS", "1800")),
        grace=float(os.environ.get("REGDEMO_GRACE_SECONDS", "45")),
        store=get_store(),
    )
    # The server draws each run's data (scikit-learn, 1.3 s to import): import it while
    # the first visitor reads the page, not when they press Train.
    threading.Thread(target=preload, name="regdemo-preload", daemon=True).start()
    if os.environ.get("REGDEMO_BACKEND", "process") == "thread":
        return ThreadRunner(**limits)
    return ProcessRunner(workers=workers, **limits)


@st.cache_resource
def get_sweeps() -> SweepQueue:
    """The server's sweep line: one sweep at a time on REGDEMO_SWEEP_WORKERS processes
    (default: one per core); REGDEMO_RAY_ADDRESS sends them to a Ray cluster instead."""
    return SweepQueue(workers=int(os.environ.get("REGDEMO_SWEEP_WORKERS", "0")) or None)


class SessionRuns:
    """The run ids one browser session owns."""

    def __init__(self):
        self.run_ids: set[int] = set()
        self.board_token: str | None = None  # its live board's feed token


def _release(session: SessionRuns) -> None:
    # The websocket closed: a reconnect within the grace period keeps the runs (the page's
    # rerun publishes its board again); until then the board's polls touch no run.
    if session.board_token is not None:
        REGISTRY.drop(session.board_token)
    runner = get_runner()
    for run_id in list(session.run_ids):
        runner.orphan(run_id)


@st.cache_resource(scope="session", on_release=_release)
def session_runs() -> SessionRuns:
    """Defined here, in an imported module, so the hook keeps no page globals alive."""
    return SessionRuns()
