"""Small helpers every test folder shares; also imported by spawned workers (keep light)."""

from __future__ import annotations

import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
BROWSER = "test-browser-0123456789"  # a returning browser's owner cookie


def until(predicate, timeout: float = 20.0, every: float = 0.02) -> bool:
    """Poll `predicate` until it is true (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return bool(predicate())


def started_pool(workers: int, grace: float):
    """A ProcessRunner of `workers` worker processes, as the server runs them; shut down
    after (a generator for pool fixtures of any scope)."""
    from regdemo.runner import ProcessRunner

    runner = ProcessRunner(workers=workers, grace=grace)
    assert runner.wait_ready(120) and runner.ready()
    yield runner
    runner.shutdown()


def pid_alive(pid: int) -> bool:
    """True while process `pid` exists and is not a zombie (from /proc)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
