"""What a run records: an epoch's figures, a live change, the run's summary.

Plain tuples without torch, so the server, the store and the CLI's listing share them with
the engine that makes them.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class EpochRecord(NamedTuple):
    """What one epoch measured; losses are taken in eval mode without any regularizer."""

    epoch: int  # 1-based count of finished epochs
    train_loss: float  # data loss on the training set, eval mode, no penalty
    val_loss: float  # the same on the validation set
    train_score: float  # accuracy, or R^2 for regression
    val_score: float
    objective: float  # what was minimised: train-mode data loss (mean over batches) + penalty
    penalty: float  # L1 + L2 penalty at the epoch's final weights
    weight_norm: float  # L2 norm of all penalised weights
    sparsity: float  # share of penalised weights that are exactly zero
    lr: float
    wall_time: float  # seconds this epoch took (training + measuring)

    @property
    def gap(self) -> float:
        """Generalization gap: validation loss minus training loss."""
        return self.val_loss - self.train_loss

    def as_dict(self) -> dict[str, float]:
        return self._asdict()


FIELDS = EpochRecord._fields
FLOAT_FIELDS = FIELDS[1:]


class Event(NamedTuple):
    """A live change: `knob` went from `old` to `new` after `epoch` finished epochs."""

    epoch: int
    knob: str
    old: Any
    new: Any

    @property
    def label(self) -> str:
        return f"{self.knob} {_fmt(self.old)} -> {_fmt(self.new)} @ epoch {self.epoch}"


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def summary_dict(epochs: int, last: EpochRecord | None, best_epoch: int | None,
                 best_val_loss: float | None, stop_reason: str | None,
                 test: tuple[float, float] | None = None) -> dict[str, Any]:
    """The run summary's fields (`Trainer.summary()`, and an untrained run's)."""
    return {
        "epochs": epochs,
        "train_loss": last.train_loss if last else None,
        "val_loss": last.val_loss if last else None,
        "gap": last.gap if last else None,
        "train_score": last.train_score if last else None,
        "val_score": last.val_score if last else None,
        "best_epoch": best_epoch,
        "best_val_loss": best_val_loss,
        "sparsity": last.sparsity if last else None,
        "stop_reason": stop_reason,
        # The held-out test set: nothing trained or chose on it (validation picked the
        # epoch and the settings), so it is the honest estimate of new data.
        "test_loss": test[0] if test else None,
        "test_score": test[1] if test else None,
    }
