"""Server-wide runner and the per-session hook that stops a closed tab's runs."""

from __future__ import annotations

import os

import streamlit as st

from regdemo.runner import ThreadRunner


@st.cache_resource
def get_runner() -> ThreadRunner:
    """One runner for the whole server; limits come from the environment."""
    return ThreadRunner(
        max_concurrent=int(os.environ.get("REGDEMO_MAX_RUNS", "8")),
        max_run_seconds=float(os.environ.get("REGDEMO_MAX_RUN_SECONDS", "1800")),
        grace=float(os.environ.get("REGDEMO_GRACE_SECONDS", "45")),
    )


class SessionRuns:
    """The run ids one browser session owns."""

    def __init__(self):
        self.run_ids: set[int] = set()


def _release(session: SessionRuns) -> None:
    # The websocket closed: a reconnect within the grace period keeps the runs.
    runner = get_runner()
    for run_id in list(session.run_ids):
        runner.orphan(run_id)


@st.cache_resource(scope="session", on_release=_release)
def session_runs() -> SessionRuns:
    """Defined here, in an imported module, so the hook keeps no page globals alive."""
    return SessionRuns()
