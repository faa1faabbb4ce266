"""The pure figure builders: traces, markers, shapes and determinism of every chart."""

import numpy as np
import plotly.graph_objects as go

from regdemo import plots
from regdemo.records import EpochRecord, Event


def record(epoch: int, sparsity: float = 0.0) -> EpochRecord:
    """A fake epoch whose values are easy to recognise in a trace."""
    return EpochRecord(epoch=epoch, train_loss=1.0 / epoch, val_loss=0.5 + 0.1 * abs(epoch - 4),
                       train_score=0.5 + 0.04 * epoch, val_score=0.6 + 0.01 * epoch,
                       objective=1.0 / epoch, penalty=0.0, weight_norm=float(epoch),
                       sparsity=sparsity, lr=0.01, wall_time=0.001)


HISTORY = [record(e) for e in range(1, 11)]  # lowest val loss at epoch 4
EVENTS = [Event(3, "dropout", 0.0, 0.5), Event(8, "lr", 0.01, 0.001)]


def trace(fig: go.Figure, name: str):
    """The one trace called `name`."""
    found = [t for t in fig.data if t.name == name]
    assert len(found) == 1, f"expected one trace {name!r}, got {[t.name for t in fig.data]}"
    return found[0]


def shapes(fig: go.Figure, kind: str) -> list:
    return [s for s in fig.layout.shapes if s.type == kind]


def test_compare_figure_gives_each_run_one_color_solid_training_and_dashed_validation():
    other = [record(e) for e in range(1, 6)]
    fig = plots.compare_figure([("A", HISTORY, []), ("B", other, [Event(3, "l2", 0.0, 0.01)])])
    a_train, b_val = trace(fig, "A training"), trace(fig, "B validation")
    assert a_train.line.dash is None and b_val.line.dash == "dash"
    assert a_train.line.color != b_val.line.color
    assert trace(fig, "B training").line.color == b_val.line.color
    assert list(trace(fig, "B validation").y) == [r.val_loss for r in other]
    assert [a.text for a in fig.layout.annotations] == ["B: l2 0 -> 0.01 @ epoch 3"]


def test_compare_figure_scores_and_thinning():
    long = [record(e) for e in range(1, 5001)]
    fig = plots.compare_figure([("run", long, [])], metric="score", score_name="accuracy")
    xs = trace(fig, "run validation").x
    assert len(xs) == plots.MAX_DRAWN_POINTS and xs[-1] == 5000
    assert list(trace(fig, "run training").y[:2]) == [long[0].train_score, long[8].train_score]
    assert "Accuracy" in fig.layout.title.text


def test_sweep_figure_draws_mean_and_std_bands_and_marks_best_and_current():
    from regdemo.sweep_results import PointStats

    stats = [PointStats(0.001, 3, 0, 0.1, 0.01, 0.9, 0.1),
             PointStats(0.01, 3, 0, 0.2, 0.02, 0.5, 0.05),
             PointStats(0.1, 0, 3, None, None, None, None)]  # every run diverged
    fig = plots.sweep_figure(stats, "l2", log_x=True, best=stats[1], current=0.001)
    val = trace(fig, "validation")
    assert list(val.x) == [0.001, 0.01] and list(val.y) == [0.9, 0.5]
    band = trace(fig, "validation ±1 std")
    assert np.allclose(band.y, [0.8, 0.45]) and band.fill == "tonexty"
    assert list(trace(fig, "best l2 = 0.01 (chosen on validation)").x) == [0.01]
    assert fig.layout.xaxis.type == "log"
    assert [a.text for a in fig.layout.annotations] == ["current l2 = 0.001"]


def test_axes_use_plain_powers_not_si_prefixes():
    """A sweep over 1e-4..1 reads 10^-4 on its axis, never '100µ'."""
    from regdemo.sweep_results import PointStats

    stats = [PointStats(1e-4, 1, 0, 0.1, 0.0, 0.9, 0.0), PointStats(1.0, 1, 0, 0.2, 0.0, 0.5, 0.0)]
    fig = plots.sweep_figure(stats, "l2", log_x=True)
    assert fig.layout.xaxis.exponentformat == "power"
    assert plots.compare_figure([("A", HISTORY, [])]).layout.yaxis.exponentformat == "power"
