"""Worker counts follow the CPUs this process may use, not the host's core count."""

import os

import pytest

from regdemo import cpus


@pytest.fixture
def four_cores(monkeypatch):
    """A process allowed on 4 cores of a 64-core host."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(os, "cpu_count", lambda: 64)


def test_affinity_counts_not_the_hosts_cores(four_cores, tmp_path):
    assert cpus.usable_cpus(tmp_path) == 4  # no cgroup files: affinity alone


def test_a_cgroup_v2_quota_caps_the_count(four_cores, tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")  # 1.5 CPUs: two workers
    assert cpus.usable_cpus(tmp_path) == 2
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cpus.usable_cpus(tmp_path) == 4


def test_a_cgroup_v1_quota_caps_the_count(four_cores, tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    assert cpus.usable_cpus(tmp_path) == 1
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")  # no quota
    assert cpus.usable_cpus(tmp_path) == 4


def test_the_server_and_sweeps_start_that_many_workers(monkeypatch):
    """The page's runner and the local sweep pool ask usable_cpus, not os.cpu_count."""
    from regdemo import sweep
    from regdemo.ui import state

    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(state, "usable_cpus", lambda: 3)
    monkeypatch.setattr(sweep, "usable_cpus", lambda: 3)
    assert sweep.LocalExecutor().workers == 3
    assert state.default_workers() == 3
