"""Runs trainers off the page: a handle per run, lock-protected snapshots, bounded history.

Two backends, one API (`create`, and on each handle start/pause/step/stop/set_live/fork/
snapshot/wait):
- `ThreadRunner`: a thread per run, in this process (notebooks, the CLI, tests).
- `ProcessRunner`: a few worker processes train every run in turn and send records back in
  batches (the server: training threads would fight the page for the GIL; docs/architecture.md).
The page only reads `snapshot()`; no training code ever touches the UI.
"""

from __future__ import annotations

from regdemo.process_runner import ProcessRunHandle, ProcessRunner, hidden_main
from regdemo.run_base import MAX_POINTS, Snapshot, summary_of
from regdemo.run_states import PAUSED, QUEUED, RUNNING, STOPPED
from regdemo.thread_runner import ThreadRunHandle, ThreadRunner

__all__ = ["MAX_POINTS", "PAUSED", "QUEUED", "RUNNING", "STOPPED", "ProcessRunHandle",
           "ProcessRunner", "Snapshot", "ThreadRunHandle", "ThreadRunner", "hidden_main",
           "summary_of"]
