"""The pure figure builders: traces, markers, shapes and determinism of every chart."""

import numpy as np
import plotly.graph_objects as go
import pytest

from regdemo import plots
from regdemo.config import Config
from regdemo.engine import EpochRecord, Event, Trainer


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


@pytest.fixture(scope="module")
def moons_trainer() -> Trainer:
    tr = Trainer(Config(dataset="moons", n_train=40, n_val=60, hidden=(16, 16), epochs=20,
                        augment="jitter"))
    tr.fit(5)
    return tr


@pytest.fixture(scope="module")
def sine_trainer() -> Trainer:
    tr = Trainer(Config(dataset="sine", n_train=15, n_val=30, hidden=(16,), epochs=20))
    tr.fit(5)
    return tr


@pytest.fixture(scope="module")
def sparse_trainer() -> Trainer:
    tr = Trainer(Config(dataset="sparse", n_train=50, n_val=60, hidden=(8,), epochs=20))
    tr.fit(3)
    return tr


@pytest.fixture(scope="module")
def digits_trainer() -> Trainer:
    return Trainer(Config(dataset="digits", n_train=50, n_val=50, hidden=(16,), epochs=5))


# ----------------------------------------------------------------- loss_figure
def test_loss_figure_has_training_and_validation_traces():
    """Training and validation traces carry the epochs and losses; the gap is shaded."""
    fig = plots.loss_figure(HISTORY)
    train, val = trace(fig, "training"), trace(fig, "validation")
    assert list(train.x) == list(range(1, 11)) == list(val.x)
    assert list(train.y) == [r.train_loss for r in HISTORY]
    assert list(val.y) == [r.val_loss for r in HISTORY]
    assert val.fill == "tonexty"
    assert list(fig.data).index(val) == list(fig.data).index(train) + 1  # fills to training
    assert fig.layout.yaxis.type == "linear"
    assert "Loss" in fig.layout.title.text


def test_loss_figure_marks_every_event_with_a_line_and_its_label():
    """One dotted vertical line and one annotation (the event label) per live change."""
    fig = plots.loss_figure(HISTORY, EVENTS)
    lines = shapes(fig, "line")
    assert [(s.x0, s.x1) for s in lines] == [(3, 3), (8, 8)]
    texts = [a.text for a in fig.layout.annotations]
    assert texts == ["dropout 0 -> 0.5 @ epoch 3", "lr 0.01 -> 0.001 @ epoch 8"]
    assert [a.x for a in fig.layout.annotations] == [3, 8]


def test_loss_figure_best_epoch_marker_and_patience_window():
    """A star at the best epoch's val loss; a patience rectangle only when patience is set."""
    fig = plots.loss_figure(HISTORY, best_epoch=4, patience=3)
    best = trace(fig, "best epoch 4")
    assert list(best.x) == [4] and list(best.y) == [HISTORY[3].val_loss]
    assert best.mode == "markers"
    rects = shapes(fig, "rect")
    assert [(r.x0, r.x1) for r in rects] == [(4, 7)]
    assert "patience" in [a.text for a in fig.layout.annotations]

    no_patience = plots.loss_figure(HISTORY, best_epoch=4)
    assert shapes(no_patience, "rect") == []
    assert "patience" not in [a.text for a in no_patience.layout.annotations]
    assert trace(no_patience, "best epoch 4").x == (4,)

    no_best = plots.loss_figure(HISTORY, patience=3)
    assert len(no_best.data) == 2 and shapes(no_best, "rect") == []


def test_loss_figure_log_scale_applies_to_loss_only():
    """log_y switches the loss axis to log but leaves the score axis linear."""
    assert plots.loss_figure(HISTORY, log_y=True).layout.yaxis.type == "log"
    assert plots.loss_figure(HISTORY, metric="score", log_y=True).layout.yaxis.type == "linear"


def test_loss_figure_score_metric_uses_scores():
    """metric='score' plots the scores, names the axis after the score, marks the best score."""
    fig = plots.loss_figure(HISTORY, best_epoch=4, metric="score", score_name="R^2")
    assert list(trace(fig, "training").y) == [r.train_score for r in HISTORY]
    assert list(trace(fig, "validation").y) == [r.val_score for r in HISTORY]
    assert list(trace(fig, "best epoch 4").y) == [HISTORY[3].val_score]
    assert fig.layout.yaxis.title.text == "R^2"
    assert fig.layout.title.text.startswith("R^2: training vs validation")


def test_loss_figure_window_keeps_the_last_epochs_and_drops_older_events():
    """window=4 shows epochs 7-10 only, with the events and best epoch inside the window."""
    fig = plots.loss_figure(HISTORY, EVENTS, best_epoch=4, patience=3, window=4)
    assert list(trace(fig, "training").x) == [7, 8, 9, 10]
    assert list(trace(fig, "validation").y) == [r.val_loss for r in HISTORY[6:]]
    assert [(s.x0, s.x1) for s in shapes(fig, "line")] == [(8, 8)]
    assert [a.text for a in fig.layout.annotations] == [EVENTS[1].label]
    assert len(fig.data) == 2 and shapes(fig, "rect") == []  # best epoch 4 is outside

    wide = plots.loss_figure(HISTORY, EVENTS, window=50)
    assert list(trace(wide, "training").x) == list(range(1, 11))
    assert len(shapes(wide, "line")) == 2


def test_loss_figure_with_empty_history():
    """No epochs yet: two empty traces, no markers, with or without a window."""
    for window in (None, 10):
        fig = plots.loss_figure([], best_epoch=None, patience=5, window=window)
        assert [t.name for t in fig.data] == ["training", "validation"]
        assert len(trace(fig, "training").x) == 0
        assert fig.layout.shapes == ()


# ----------------------------------------------------------------- data views
def test_boundary_figure_has_contours_and_every_point(moons_trainer):
    """Heatmap and 0.5 contour over the grid, plus 40 training and 60 validation points."""
    split = moons_trainer.split
    view = moons_trainer.predict_grid(50)
    fig = plots.boundary_figure(view, split)
    (heat,) = [t for t in fig.data if isinstance(t, go.Heatmap)]
    assert np.array_equal(np.asarray(heat.z), view["z"])
    (line,) = [t for t in fig.data if isinstance(t, go.Contour)]
    assert line.contours.start == 0.5 == line.contours.end
    train, val = trace(fig, "training"), trace(fig, "validation")
    assert len(train.x) == 40 and len(val.x) == 60
    assert np.allclose(train.x, split.x_train[:, 0]) and np.allclose(train.y, split.x_train[:, 1])
    assert np.allclose(val.x, split.x_val[:, 0])
    assert list(train.marker.color) == [plots.CLASS_COLORS[int(c)] for c in split.y_train]
    assert "augmented" not in [t.name for t in fig.data]
    assert tuple(fig.layout.xaxis.range) == (view["x"][0], view["x"][-1])


def test_boundary_figure_shows_augmented_ghost_points(moons_trainer):
    """Ghost points: one marker per augmented input, coloured by (hard or soft) label."""
    view = moons_trainer.predict_grid(50)
    ghosts = moons_trainer.augmented_sample()
    assert ghosts is not None
    fig = plots.boundary_figure(view, moons_trainer.split, ghosts)
    ghost = trace(fig, "augmented")
    assert len(ghost.x) == len(ghosts[0]) == 40
    assert np.allclose(ghost.x, ghosts[0][:, 0])
    assert list(ghost.marker.color) == [plots.CLASS_COLORS[int(c)] for c in ghosts[1]]

    soft = (ghosts[0], np.eye(2)[ghosts[1]] * 0.8 + 0.1)  # mixup-style soft labels
    soft_fig = plots.boundary_figure(view, moons_trainer.split, soft)
    assert list(trace(soft_fig, "augmented").marker.color) == list(ghost.marker.color)


def test_curve_figure_draws_model_over_the_points(sine_trainer):
    """The fitted curve spans the grid; training and validation points are all drawn."""
    split = sine_trainer.split
    view = sine_trainer.predict_grid(100)
    fig = plots.curve_figure(view, split)
    model = trace(fig, "model")
    assert model.mode == "lines"
    assert np.allclose(model.x, view["x"]) and np.allclose(model.y, view["y"])
    assert len(model.x) == 100
    assert np.allclose(trace(fig, "training").y, split.y_train[:, 0])
    assert len(trace(fig, "training").x) == 15 and len(trace(fig, "validation").x) == 30


def test_feature_figure_highlights_informative_features(sparse_trainer):
    """One bar per input; the known informative ones get the highlight colour."""
    split = sparse_trainer.split
    importance = sparse_trainer.feature_importance()
    fig = plots.feature_figure(importance, split.feature_names, split.informative)
    bars = fig.data[0]
    assert isinstance(bars, go.Bar)
    assert list(bars.x) == list(split.feature_names) and len(bars.x) == len(importance)
    assert np.allclose(bars.y, importance)
    colors = list(bars.marker.color)
    assert split.informative and len(split.informative) < len(colors)
    for i, color in enumerate(colors):
        expected = plots.BEST_COLOR if i in split.informative else "#888"
        assert color == expected
    plain = plots.feature_figure(importance, split.feature_names)
    assert set(plain.data[0].marker.color) == {"#888"}


def test_images_figure_lays_out_five_digits(digits_trainer):
    """Five 8x8 digits in one row of a 12-column canvas, each with its label."""
    split = digits_trainer.split
    images, labels = split.x_train[:5], [int(y) for y in split.y_train[:5]]
    fig = plots.images_figure(images, labels, "Some digits")
    heat = fig.data[0]
    assert isinstance(heat, go.Heatmap)
    canvas = np.asarray(heat.z, dtype=float)[::-1]  # rows were flipped for display
    assert canvas.shape == (9, 12 * 9)
    for i in range(5):
        cell = canvas[0:8, i * 9: i * 9 + 8]
        assert np.allclose(cell, images[i].reshape(8, 8))
    assert np.isnan(canvas[:, 5 * 9:]).all()  # no image after the fifth
    assert [a.text for a in fig.layout.annotations] == [str(y) for y in labels]
    assert fig.layout.title.text == "Some digits"


def test_weights_figure_has_one_histogram_per_layer(moons_trainer):
    """Each layer's weights become one overlaid histogram (binned here) named after it."""
    weights = moons_trainer.weights()
    fig = plots.weights_figure(weights)
    assert [t.name for t in fig.data] == list(weights)
    assert all(isinstance(t, go.Bar) for t in fig.data)
    for t, w in zip(fig.data, weights.values()):
        assert int(np.sum(t.y)) == w.size  # every weight counted once
        assert len(t.x) == 60
    top = max(np.abs(w).max() for w in weights.values())
    assert fig.data[0].x[0] > -top and fig.data[0].x[-1] < top  # shared bins span the range
    assert len(fig.data) == 3  # 2 hidden layers + output layer
    assert fig.layout.barmode == "overlay"


def test_norm_figure_shows_sparsity_in_percent():
    """Weight norm on the left axis, sparsity x 100 on a 0-100 right axis."""
    history = [record(e, sparsity=e / 20) for e in range(1, 5)]
    fig = plots.norm_figure(history)
    norm, sparsity = trace(fig, "weight norm"), trace(fig, "sparsity %")
    assert list(norm.x) == [1, 2, 3, 4] and list(norm.y) == [1.0, 2.0, 3.0, 4.0]
    assert list(sparsity.y) == pytest.approx([5.0, 10.0, 15.0, 20.0])
    assert sparsity.yaxis == "y2" and norm.yaxis in (None, "y")
    assert tuple(fig.layout.yaxis2.range) == (0, 100)
    assert fig.layout.yaxis2.overlaying == "y"


# ----------------------------------------------------------------- determinism
BUILDERS = {
    "loss": lambda t: plots.loss_figure(HISTORY, EVENTS, best_epoch=4, patience=3, log_y=True),
    "loss_window": lambda t: plots.loss_figure(HISTORY, EVENTS, metric="score", window=5),
    "boundary": lambda t: plots.boundary_figure(t["moons"].predict_grid(40), t["moons"].split,
                                                t["moons"].augmented_sample()),
    "curve": lambda t: plots.curve_figure(t["sine"].predict_grid(60), t["sine"].split),
    "feature": lambda t: plots.feature_figure(t["sparse"].feature_importance(),
                                              t["sparse"].split.feature_names,
                                              t["sparse"].split.informative),
    "images": lambda t: plots.images_figure(t["digits"].split.x_train[:5],
                                            list(t["digits"].split.y_train[:5]), "digits"),
    "weights": lambda t: plots.weights_figure(t["moons"].weights()),
    "norm": lambda t: plots.norm_figure(HISTORY),
}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_every_builder_is_deterministic(name, moons_trainer, sine_trainer, sparse_trainer,
                                        digits_trainer):
    """The same input gives the very same figure JSON."""
    trainers = {"moons": moons_trainer, "sine": sine_trainer, "sparse": sparse_trainer,
                "digits": digits_trainer}
    first = BUILDERS[name](trainers).to_json()
    second = BUILDERS[name](trainers).to_json()
    assert first == second
    assert len(first) > 100


def test_loss_figure_thins_long_histories_but_keeps_the_best_and_newest():
    """At most MAX_DRAWN_POINTS per curve; the newest epoch and the best-epoch star stay."""
    history = [record(e) for e in range(1, 2001)]
    fig = plots.loss_figure(history, best_epoch=777)
    train = trace(fig, "training")
    assert len(train.x) == plots.MAX_DRAWN_POINTS
    assert train.x[-1] == 2000 and train.x[0] == 1
    star = trace(fig, "best epoch 777")
    assert list(star.x) == [777] and star.y[0] == pytest.approx(0.5 + 0.1 * 773)


def test_compare_figure_gives_each_run_one_color_dashed_training_and_solid_validation():
    other = [record(e) for e in range(1, 6)]
    fig = plots.compare_figure([("A", HISTORY, []), ("B", other, [Event(3, "l2", 0.0, 0.01)])])
    a_train, b_val = trace(fig, "A training"), trace(fig, "B validation")
    assert a_train.line.dash == "dash" and b_val.line.dash is None
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
    from regdemo.sweep import PointStats

    stats = [PointStats(0.001, 3, 0, 0.1, 0.01, 0.9, 0.1),
             PointStats(0.01, 3, 0, 0.2, 0.02, 0.5, 0.05),
             PointStats(0.1, 0, 3, None, None, None, None)]  # every run diverged
    fig = plots.sweep_figure(stats, "l2", log_x=True, best=stats[1], current=0.001)
    val = trace(fig, "validation")
    assert list(val.x) == [0.001, 0.01] and list(val.y) == [0.9, 0.5]
    band = trace(fig, "validation ±1 std")
    assert np.allclose(band.y, [0.8, 0.45]) and band.fill == "tonexty"
    assert list(trace(fig, "best l2 = 0.01").x) == [0.01]
    assert fig.layout.xaxis.type == "log"
    assert [a.text for a in fig.layout.annotations] == ["current l2 = 0.001"]
