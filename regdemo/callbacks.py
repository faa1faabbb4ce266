"""Early stopping: watch validation loss, remember the best epoch and its weights."""

from __future__ import annotations

import math

import torch
from torch import nn


class EarlyStopping:
    """Tracks the best validation loss; `should_stop` after `patience` epochs without gain."""

    def __init__(self, patience: int, min_delta: float = 0.0):
        self.patience = patience
        self.min_delta = min_delta
        self.best_loss = math.inf
        self.best_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None

    def update(self, epoch: int, val_loss: float, model: nn.Module | None) -> bool:
        """Record an epoch; keeps a copy of the weights when `model` is given. True if best."""
        if val_loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_epoch = val_loss, epoch
            if model is not None:
                self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return True
        return False

    def epochs_since_best(self, epoch: int) -> int:
        return 0 if self.best_epoch is None else epoch - self.best_epoch

    def should_stop(self, epoch: int) -> bool:
        return self.best_epoch is not None and self.epochs_since_best(epoch) >= self.patience

    def restore(self, model: nn.Module) -> bool:
        """Load the best epoch's weights into `model`; False when none were kept.

        Weights only: the optimizer keeps its latest state (momentum, Adam's moments), so a
        run trained on after a restore continues with those (the README says so).
        """
        if self.best_state is None:
            return False
        model.load_state_dict(self.best_state)
        return True
