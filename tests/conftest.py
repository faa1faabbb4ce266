"""Shared test setup: saved runs go to a temporary folder; the fused epoch is compiled; a
fresh page (AppTest) and a worker pool for the tests that need them."""

import pytest
from streamlit.testing.v1 import AppTest

from tests.support import APP, BROWSER, started_pool


@pytest.fixture(autouse=True, scope="session")
def _runs_in_a_temporary_folder(tmp_path_factory):
    """Pages, servers and CLI runs started by tests save into a throwaway data folder."""
    folder = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REGDEMO_DATA_DIR", str(folder))
        yield folder


@pytest.fixture(autouse=True, scope="session")
def _fused_kernels_ready():
    """Compile (or load from numba's cache) the fused epoch once, so runs take it as in use."""
    from regdemo import warmup

    warmup.warm()


@pytest.fixture(autouse=True, scope="session")
def _one_thread_like_the_server():
    """Train on one torch and BLAS thread, as the server's workers do (their figures)."""
    import torch

    from regdemo import fused

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    fused.limit_blas_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def make_page(monkeypatch, tmp_path):
    """make_page(backend="thread", data_dir=None, **env) -> a fresh AppTest of the page with
    its own data folder, opened by the browser BROWSER.

    Afterwards every run is forgotten, a process pool is shut down and Streamlit's resource
    caches (runner, store, session hook) are cleared.
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
        at.session_state["owner"] = BROWSER
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


@pytest.fixture
def app(make_page, tmp_path):
    """A fresh page on the in-process backend, its saved-runs folder empty."""
    return make_page("thread", data_dir=tmp_path)


@pytest.fixture(scope="session")
def pool():
    """One worker process shared by the suite (a test module may override it)."""
    yield from started_pool(workers=1, grace=1.0)


@pytest.fixture
def runner(pool):
    """The pool, emptied after each test."""
    yield pool
    for handle in pool.runs():
        pool.forget(handle.id)
    pool.max_concurrent = 8
