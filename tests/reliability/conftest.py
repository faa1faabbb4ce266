"""Fixtures of the reliability suite: pages (AppTest) on a throwaway data folder."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.reliability.helpers import APP


@pytest.fixture
def make_page(monkeypatch, tmp_path):
    """make_page(backend="thread", **env) -> a fresh AppTest of the page, its own data folder.

    Afterwards every run is forgotten, a process pool is shut down and Streamlit's resource
    caches (runner, store, session hook) are cleared, as tests/test_page.py does.
    """
    import streamlit as st

    st.cache_resource.clear()
    made = []

    def make(backend: str = "thread", data_dir=None, **env) -> AppTest:
        if not made:
            monkeypatch.setenv("REGDEMO_BACKEND", backend)
            monkeypatch.setenv("REGDEMO_DATA_DIR", str(data_dir or tmp_path / "runs"))
            for key, value in env.items():
                monkeypatch.setenv(key, str(value))
        at = AppTest.from_file(APP, default_timeout=90)
        at.session_state["owner"] = "test-browser-0123456789"  # a returning browser's cookie
        made.append(at)
        return at

    yield make
    if made:
        from regdemo.ui.state import get_runner

        runner = get_runner()
        for handle in runner.runs():
            runner.forget(handle.id)
        if hasattr(runner, "shutdown"):
            runner.shutdown()
    st.cache_resource.clear()


@pytest.fixture(scope="session")
def pool():
    """One worker process, as the server runs them (spawned, niced), shared by the suite."""
    from regdemo.runner import ProcessRunner

    runner = ProcessRunner(workers=1, grace=1.0)
    assert runner.wait_ready(120)
    yield runner
    runner.shutdown()


@pytest.fixture
def runner(pool):
    """The shared pool, emptied after each test."""
    yield pool
    for handle in pool.runs():
        pool.forget(handle.id)
    pool.max_concurrent = 8
