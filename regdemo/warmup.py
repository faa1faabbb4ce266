"""Compile the fused epoch's kernels ahead of the first run (20 s cold, 0.4 s cached)."""

from __future__ import annotations

import threading

from regdemo import fused
from regdemo.config import Config
from regdemo.engine import Trainer

_ready = threading.Event()
_warming = threading.Lock()


def ready() -> bool:
    """True once the kernels are compiled (or loaded from numba's on-disk cache)."""
    return _ready.is_set()


def warm() -> bool:
    """Compile the kernels now; True when the fused path is usable.

    Runs a one-epoch toy problem through every kernel.
    """
    if not fused.enabled():
        return False
    with _warming:
        if not _ready.is_set():
            toy = Config(n_train=8, n_val=8, n_test=8, hidden=(2,), batch_size=4,
                         dropout=0.1, augment="jitter", l1=1e-3, epochs=1)
            trainer = Trainer(toy, use_fused=True)
            trainer.fused_kernel().epoch()
            trainer.fused_kernel().measure()
            _ready.set()
    return True


def warm_in_background() -> threading.Thread | None:
    """Start `warm()` on a daemon thread, so the first run does not wait for the kernels."""
    if not fused.enabled() or ready():
        return None
    thread = threading.Thread(target=warm, name="regdemo-fused-warm", daemon=True)
    thread.start()
    return thread
