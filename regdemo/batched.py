"""Train many configs to the end and return their summaries (the sweep's unit of work).

Configs with equal `stack_key`s (plain MLPs the fused kernel trains, with one dataset size,
layer widths, activation, optimizer, batch size and augmentation) train as one
`fused.FusedStack`: one kernel call per epoch trains every model of the group on its own
row, so a model costs its arithmetic and little else. Everything else is per model: split,
init, random stream (batch order, dropout masks, jitter), lr, L1, L2, weight decay, dropout
p, jitter strength, max-norm, label smoothing, early stopping, epochs, divergence. Each
model keeps its own Trainer and the kernel is the one a single run takes, so a model ends
exactly as a separate `fit()` would. Batch norm, residual blocks, stochastic depth, the CNN,
extra input features and mixup fall back to `Trainer(c).fit()`. See bench/batched.py.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from typing import Any

import numpy as np

from regdemo import fused
from regdemo.config import Config
from regdemo.engine import Trainer, flush_denormals


def stack_key(config: Config) -> Hashable | None:
    """Configs with equal keys can train as one stack; None: not supported."""
    c = config
    if not fused.enabled() or fused.unsupported_config(c):
        return None
    # Per-model knobs (lr, penalties, dropout, jitter strength, smoothing, seed, noise, early
    # stopping, epochs) are left out: they change values, not shapes or the order of steps.
    return (c.dataset, c.n_train, c.n_val, c.hidden, c.activation, c.optimizer, c.batch_size,
            c.augment)


def train_many(configs: list[Config]) -> list[dict[str, Any]]:
    """Train each config to the end and return `summary()` dicts, in the configs' order."""
    results: list[dict[str, Any] | None] = [None] * len(configs)
    groups: dict[Hashable, list[int]] = {}
    for i, config in enumerate(configs):
        key = stack_key(config)
        if key is None:
            results[i] = _alone(config)
        else:
            groups.setdefault(key, []).append(i)
    for members in groups.values():
        if len(members) == 1:  # nothing to share: the plain trainer is the reference
            results[members[0]] = _alone(configs[members[0]])
            continue
        trainers = [Trainer(configs[i]) for i in members]
        fit_stacked(trainers)
        for i, trainer in zip(members, trainers):
            results[i] = trainer.summary()
    return results  # type: ignore[return-value]


def _alone(config: Config) -> dict[str, Any]:
    trainer = Trainer(config)
    trainer.fit()
    return trainer.summary()


def fit_stacked(trainers: list[Trainer]) -> None:
    """Train fresh trainers with equal `stack_key`s to the end as one stack.

    Afterwards each trainer holds what `trainer.fit()` would have left: history, weights
    (restored on an early stop), stop reason, early-stopping state and optimizer state.
    A record's `wall_time` is the model's share of its stack's epoch.
    """
    keys = {stack_key(t.config) for t in trainers}
    if len(keys) != 1 or None in keys:
        raise ValueError("fit_stacked needs supported configs with one stack_key")
    if any(t.epoch or t.stopped for t in trainers):
        raise ValueError("fit_stacked needs fresh trainers")
    stack = fused.FusedStack(trainers)
    active = np.ones(len(trainers), np.bool_)
    while active.any():
        t0 = time.perf_counter()
        with flush_denormals():
            losses = stack.epoch(active)
            rows = stack.measure(active)
        share = (time.perf_counter() - t0) / int(active.sum())  # each model's part of it
        for k in np.flatnonzero(active):
            trainer = trainers[k]
            trainer.record_epoch(float(losses[k]), rows[k], share)  # Trainer.step's tail
            if trainer.stopped:  # its row stays as it is: the trainer's weights view it
                active[k] = False
