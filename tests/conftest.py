"""Shared test setup: saved runs go to a temporary folder; the fused epoch is compiled."""

import pytest


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
