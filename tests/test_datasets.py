"""Datasets: split sizes and dtypes, seeding, train-only standardisation, label noise."""

import dataclasses
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from regdemo.datasets import DATASETS, KIND_IMAGE, _bundled, make_split

NON_IMAGE = [name for name, spec in DATASETS.items() if spec.kind != KIND_IMAGE]
CLASSIFICATION = [name for name, spec in DATASETS.items() if spec.task == "classification"]


@pytest.mark.parametrize("name", list(DATASETS))
def test_split_sizes_dtypes_and_shapes(name):
    """Asked sizes, float32 features, int64 labels in range or float32 (n, 1) targets."""
    spec = DATASETS[name]
    s = make_split(name, 30, 50, noise=0.1, seed=1)
    assert s.x_train.shape[0] == 30 and s.x_val.shape[0] == 50
    assert s.x_train.dtype == np.float32 and s.x_val.dtype == np.float32
    assert s.x_train.ndim == 2 and s.x_val.shape[1] == s.x_train.shape[1] == s.n_features
    assert np.isfinite(s.x_train).all() and np.isfinite(s.x_val).all()
    assert s.kind == spec.kind and s.n_classes == spec.n_classes and s.task == spec.task
    assert len(s.feature_names) == s.n_features
    if spec.task == "classification":
        for y, n in ((s.y_train, 30), (s.y_val, 50)):
            assert y.dtype == np.int64 and y.shape == (n,)
            assert y.min() >= 0 and y.max() < spec.n_classes
    else:
        assert s.y_train.dtype == np.float32 and s.y_train.shape == (30, 1)
        assert s.y_val.dtype == np.float32 and s.y_val.shape == (50, 1)
    if spec.kind == KIND_IMAGE:
        assert s.image_shape == (8, 8) and s.n_features == 64
    else:
        assert s.image_shape is None


@pytest.mark.parametrize("name", list(DATASETS))
def test_seeded_determinism(name):
    """The same seed gives identical arrays; another seed gives different ones."""
    a = make_split(name, 40, 60, noise=0.2, label_noise=0.2, seed=3)
    b = make_split(name, 40, 60, noise=0.2, label_noise=0.2, seed=3)
    c = make_split(name, 40, 60, noise=0.2, label_noise=0.2, seed=4)
    for field in ("x_train", "y_train", "x_val", "y_val", "flipped"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.x_train, c.x_train)
    assert not np.array_equal(a.x_val, c.x_val)


@pytest.mark.parametrize("name", NON_IMAGE)
def test_standardised_with_train_statistics(name):
    """Train features have mean 0 and std 1 each; val (other rows) is not exactly so."""
    s = make_split(name, 80, 80, noise=0.2, seed=2)
    np.testing.assert_allclose(s.x_train.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(s.x_train.std(axis=0), 1.0, atol=1e-3)
    assert np.abs(s.x_val.mean(axis=0)).max() > 1e-3
    assert np.abs(s.x_val.std(axis=0) - 1).max() > 1e-3


def test_digits_use_one_scalar_and_background_is_raw_zero():
    """Digits: overall pixel mean 0 / std 1, per-pixel not; background is a raw 0 pixel."""
    s = make_split("digits", 300, 100, seed=0)
    x = s.x_train.astype(np.float64)
    assert abs(x.mean()) < 1e-4 and abs(x.std() - 1) < 1e-3
    # One scalar, not per pixel: corner pixels (always 0 raw) stay at the background.
    assert np.abs(x.mean(axis=0)).max() > 0.5
    np.testing.assert_allclose(x[:, 0], s.background, atol=1e-5)
    assert s.background < 0
    # Raw pixels are the integers 0..16: standardised values are background + k * step.
    values = np.unique(np.round(x, 5))
    assert values[0] == pytest.approx(s.background, abs=1e-5)
    step = values[1] - values[0]
    raw = (x - s.background) / step
    np.testing.assert_allclose(raw, np.round(raw), atol=1e-3)
    assert round(raw.min()) == 0 and round(raw.max()) == 16
    assert (np.round(raw) == 0).mean() > 0.3  # digits images are mostly empty


@pytest.mark.parametrize(("name", "rate"), [("moons", 0.3), ("wine", 0.2), ("digits", 0.1)])
def test_label_noise_flips_train_only(name, rate):
    """About `rate` of train labels move to another class; x and val are untouched."""
    n_train = 1000 if name != "wine" else 90
    clean = make_split(name, n_train, 50, label_noise=0.0, seed=5)
    noisy = make_split(name, n_train, 50, label_noise=rate, seed=5)
    assert clean.flipped is None
    np.testing.assert_array_equal(clean.x_train, noisy.x_train)
    np.testing.assert_array_equal(clean.x_val, noisy.x_val)
    np.testing.assert_array_equal(clean.y_val, noisy.y_val)
    flipped = noisy.flipped
    assert flipped.dtype == bool and flipped.shape == (n_train,)
    tolerance = 4 * np.sqrt(rate * (1 - rate) / n_train)
    assert abs(flipped.mean() - rate) < tolerance
    changed = noisy.y_train != clean.y_train
    np.testing.assert_array_equal(changed, flipped)  # every flip really changes the label
    assert noisy.y_train.min() >= 0 and noisy.y_train.max() < DATASETS[name].n_classes


def test_regression_label_noise_corrupts_train_targets_only():
    """Regression: about `rate` of targets are redrawn inside the target range."""
    clean = make_split("sine", 2000, 50, noise=0.1, label_noise=0.25, seed=1)
    base = make_split("sine", 2000, 50, noise=0.1, label_noise=0.0, seed=1)
    np.testing.assert_array_equal(clean.y_val, base.y_val)
    assert abs(clean.flipped.mean() - 0.25) < 0.04
    changed = (clean.y_train != base.y_train)[:, 0]
    np.testing.assert_array_equal(changed, clean.flipped)
    assert clean.y_train.dtype == np.float32
    assert base.y_train.min() <= clean.y_train.min() <= clean.y_train.max() <= base.y_train.max()


def test_sparse_informative_features_carry_the_signal():
    """A classifier on the informative columns beats one on five noise columns by far."""
    s = make_split("sparse", 200, 1000, seed=0)
    info = list(s.informative)
    assert info == [0, 1, 2, 3, 4]
    noise_cols = [c for c in range(s.n_features) if c not in info][:5]
    assert s.n_features == 40

    def score(cols):
        model = LogisticRegression(max_iter=1000).fit(s.x_train[:, cols], s.y_train)
        return model.score(s.x_val[:, cols], s.y_val)

    good, bad = score(info), score(noise_cols)
    assert good > 0.85
    assert bad < 0.65
    assert good - bad > 0.25


def test_sparse_rows_are_not_sorted_by_class():
    """Train and val both hold both classes in mixed order."""
    s = make_split("sparse", 40, 40, seed=0)
    assert set(s.y_train) == {0, 1} and set(s.y_val) == {0, 1}
    assert (np.diff(s.y_train) != 0).sum() > 3


def test_no_network_access(monkeypatch):
    """Making every dataset's split opens no network connection."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access during dataset loading")

    for name, spec in list(DATASETS.items()):
        if spec.load is not None:  # a fresh, empty cache: the load really runs below
            monkeypatch.setitem(DATASETS, name, dataclasses.replace(spec, load=_bundled(name)))
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    for name, spec in DATASETS.items():
        s = make_split(name, 20, 20, seed=11)
        assert len(s.y_train) == 20
        assert spec.load is None or spec.max_samples > 40


@pytest.mark.parametrize(("name", "n_train", "n_val"), [("wine", 138, 4), ("digits", 1428, 10)])
def test_bundled_split_near_full_size(name, n_train, n_val):
    """Sizes the config accepts (n_train + n_val <= rows) always give a split."""
    from regdemo.config import Config

    Config(dataset=name, n_train=n_train, n_val=n_val)  # valid
    s = make_split(name, n_train, n_val, seed=0)
    assert len(s.y_train) == n_train and len(s.y_val) == n_val


@pytest.mark.parametrize("name", ["wine", "breast_cancer", "digits"])
def test_bundled_full_size_split(name):
    """Using every row (n_train + n_val == max_samples) works, with disjoint rows."""
    total = DATASETS[name].max_samples
    n_val = max(DATASETS[name].n_classes, 20)
    s = make_split(name, total - n_val, n_val, seed=0)
    assert len(s.y_train) + len(s.y_val) == total
    rows = np.concatenate([s.x_train, s.x_val])
    assert len(np.unique(rows, axis=0)) >= total - 5  # no row drawn twice (few duplicates)


@pytest.mark.parametrize("name", [n for n, s in DATASETS.items() if s.load is not None])
def test_stated_row_counts_match_the_bundled_sets(name):
    """Row counts are stated so config checks need no scikit-learn; they must be the truth."""
    assert DATASETS[name].rows == len(DATASETS[name].load()[1])


def test_the_page_modules_load_without_scikit_learn():
    code = ("import sys, regdemo.ui.page, regdemo.presets; "
            "print('sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], timeout=120)
    assert out.stdout.strip() == "False", out.stderr[-2000:]


@pytest.mark.parametrize("name", ["moons", "sine", "sparse", "wine", "digits"])
def test_the_validation_and_test_sets_do_not_move_with_n_train(name):
    """More training data is compared on the same validation points; the test set depends
    on the seed (and n_test) only."""
    small, big = make_split(name, 20, 30, noise=0.1, seed=7), make_split(name, 60, 30,
                                                                            noise=0.1, seed=7)
    assert len(big.y_train) == 60 and len(small.y_train) == 20
    np.testing.assert_array_equal(small.y_val, big.y_val)
    np.testing.assert_array_equal(small.y_test, big.y_test)
    # The same points, standardised with another train set's mean and std: equal once
    # each column is put on its own scale.
    def rescaled(v, keep):
        v = v[:, keep].astype(np.float64)
        return (v - v.mean(0)) / v.std(0)

    for a, b in ((small.x_val, big.x_val), (small.x_test, big.x_test)):
        keep = a.std(axis=0) > 1e-6  # constant pixels have no scale of their own
        np.testing.assert_allclose(rescaled(a, keep), rescaled(b, keep), atol=1e-3)


@pytest.mark.parametrize("name", ["wine", "breast_cancer", "digits"])
def test_a_bundled_set_holds_out_a_fixed_share_as_its_test_set(name):
    """20% of the rows, the same for every n_train and n_val, never trained or validated on."""
    spec = DATASETS[name]
    s = make_split(name, 40, 30, seed=3)
    assert len(s.y_test) == spec.test_rows == round(spec.rows * 0.2)
    assert spec.max_samples == spec.rows - spec.test_rows
    rows = lambda x: {r.tobytes() for r in x}  # noqa: E731
    assert not rows(s.x_test) & (rows(s.x_train) | rows(s.x_val))


def test_a_generated_set_draws_n_test_points():
    assert len(make_split("moons", 20, 30, seed=1, n_test=77).y_test) == 77
