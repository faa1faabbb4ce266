"""Helpers of the reliability tests; also imported by spawned worker processes (keep light)."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
from pathlib import Path

from regdemo.config import Config
from tests.support import APP, ROOT, pid_alive, until  # noqa: F401 - for the suite

INJECTED = "injected fault: the engine raised mid-epoch"


def tree(pid: int) -> list[int]:
    """`pid` and its descendants (from /proc)."""
    out, todo = [], [pid]
    while todo:
        parent = todo.pop()
        out.append(parent)
        for task in Path(f"/proc/{parent}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in (task / "children").read_text().split()]
    return out


def rss_mb(pids: list[int]) -> float:
    """Sum of VmRSS over `pids`, in MB (processes that are gone count 0)."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def _training_here() -> bool:
    """True inside a worker process or a runner's training thread (not on the page)."""
    return (multiprocessing.current_process().name.startswith("regdemo-worker")
            or threading.current_thread().name.startswith("regdemo-run-"))


class FaultyConfig(Config):
    """A Config whose `l1` raises while a run trains: the engine failing mid-epoch, wherever
    the run trains, without touching the engine. Made by `faulty(config)` (the dataclass'
    __init__ cannot set a property); pickles like a Config, so a worker process gets it."""

    @property
    def l1(self):
        if _training_here():
            raise RuntimeError(INJECTED)
        return self.__dict__["l1"]


class BrokenViewsConfig(Config):
    """A Config whose `augment` raises while a run trains: its step and its views() fail."""

    @property
    def augment(self):
        if _training_here():
            raise RuntimeError(INJECTED)
        return self.__dict__["augment"]


def faulty(config: Config, cls: type = FaultyConfig) -> Config:
    """The same settings as `config`, as an instance of the faulty subclass `cls`."""
    clone = Config(**{k: v for k, v in config.__dict__.items()})
    object.__setattr__(clone, "__class__", cls)
    return clone


def messages(elements) -> list[str]:
    return [e.value for e in elements]


def kill_quietly(pid: int, sig: int = 9) -> None:
    with contextlib.suppress(OSError):
        os.kill(pid, sig)


# Bugs found by this suite in files its authors may not change (see the report): a
# page exception matching one of these is counted and turned into an xfail, not a failure.
KNOWN_PAGE_BUGS: dict[str, str] = {}  # both found so far are fixed (plots, compare)


def known_bug(exceptions) -> str | None:
    """The known bug an AppTest exception element list shows, if that is all it shows."""
    texts = [e.proto.message + "".join(e.proto.stack_trace) for e in exceptions]
    for bug, marker in KNOWN_PAGE_BUGS.items():
        if texts and all(marker in t for t in texts):
            return bug
    return None
