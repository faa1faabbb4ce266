"""A sweep's results: a row per run, mean and std over seeds per value, the best value
(chosen on validation, reported with its held-out test loss), and the CSV of it all."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol


class SpecShape(Protocol):
    """What results read of their `sweep.SweepSpec` (carried whole, for the page)."""

    knob: str
    points: int
    seeds: int


@dataclass(frozen=True)
class SweepRow:
    """One run of the sweep: its value and seed, and the final figures of its summary."""

    value: float | int
    seed: int
    train_loss: float | None
    val_loss: float | None
    best_val_loss: float | None
    best_epoch: int | None
    gap: float | None
    train_score: float | None
    val_score: float | None
    sparsity: float | None
    epochs: int
    stop_reason: str | None
    test_loss: float | None = None  # held out: no run or choice looked at it
    test_score: float | None = None

    @property
    def diverged(self) -> bool:
        return bool(self.stop_reason and self.stop_reason.startswith("diverged"))

    @classmethod
    def from_summary(cls, value, seed, s: dict[str, Any]) -> SweepRow:
        return cls(value, seed, *(s.get(f.name) for f in fields(cls)[2:]))


ROW_FIELDS = tuple(f.name for f in fields(SweepRow))


@dataclass(frozen=True)
class PointStats:
    """Mean and sample std over seeds of one value's final losses (std 0 for one seed)."""

    value: float | int
    n_runs: int  # runs that finished without diverging (the ones averaged)
    n_diverged: int
    train_loss_mean: float | None
    train_loss_std: float | None
    val_loss_mean: float | None
    val_loss_std: float | None
    # The held-out test set's loss: the honest figure of the value validation picks.
    test_loss_mean: float | None = None
    test_loss_std: float | None = None


def _mean_std(xs: list[float]) -> tuple[float | None, float | None]:
    if not xs:
        return None, None
    mean = sum(xs) / len(xs)
    if len(xs) == 1:
        return mean, 0.0
    return mean, math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))


def aggregate(rows: Sequence[SweepRow]) -> list[PointStats]:
    """Per value (in increasing order): mean and std over seeds; diverged runs left out."""
    by_value: dict[float | int, list[SweepRow]] = {}
    for row in rows:
        by_value.setdefault(row.value, []).append(row)
    stats = []
    for value in sorted(by_value):
        ok = [r for r in by_value[value] if not r.diverged and r.val_loss is not None]
        train = _mean_std([r.train_loss for r in ok])
        val = _mean_std([r.val_loss for r in ok])
        test = _mean_std([r.test_loss for r in ok if r.test_loss is not None])
        stats.append(PointStats(value, len(ok), len(by_value[value]) - len(ok), *train, *val,
                                *test))
    return stats


def best_point(stats: Sequence[PointStats]) -> PointStats | None:
    """The value with the lowest mean final val loss (values with a diverged run excluded).

    Chosen on validation, never on test: the chosen value's test loss then says how well
    the choice does on data nothing looked at (its val loss is optimistic: it won a pick).
    """
    fine = [p for p in stats if p.val_loss_mean is not None and p.n_diverged == 0]
    return min(fine, key=lambda p: p.val_loss_mean, default=None)


@dataclass
class SweepResult:
    """Rows (value-major, then seed), whether the sweep was cancelled, and its wall time."""

    spec: SpecShape
    rows: list[SweepRow]
    cancelled: bool = False
    wall_time: float = 0.0
    backend: str = "local"
    stats: list[PointStats] = field(init=False)
    best: PointStats | None = field(init=False)

    def __post_init__(self):
        self.stats = aggregate(self.rows)
        self.best = best_point(self.stats)

    @property
    def complete(self) -> bool:
        return len(self.rows) == self.spec.points * self.spec.seeds

    def to_csv(self, path: str | Path) -> None:
        """One line per run; the knob's name heads the value column."""
        with Path(path).open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow([self.spec.knob, *ROW_FIELDS[1:]])
            for row in self.rows:
                writer.writerow(["" if v is None else v for v in asdict(row).values()])
