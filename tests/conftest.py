"""Shared test setup: saved runs go to a temporary folder, never the working tree."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _runs_in_a_temporary_folder(tmp_path_factory):
    """Pages, servers and CLI runs started by tests save into a throwaway data folder."""
    folder = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REGDEMO_DATA_DIR", str(folder))
        yield folder
