"""Trainer API: records, honest measurement, live knobs, fork, determinism, divergence."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from regdemo.config import Config, ConfigError
from regdemo.engine import Trainer
from regdemo.models import DropPath, SeededDropout

SMALL = Config(dataset="moons", n_train=40, n_val=60, hidden=(16, 16), epochs=30)


def test_step_returns_records_and_fit_stops_at_epochs():
    """fit() runs config.epochs epochs, numbered 1..N, then says why it stopped."""
    tr = Trainer(SMALL)
    records = tr.fit()
    assert [r.epoch for r in records] == list(range(1, 31))
    assert tr.history == records and tr.epoch == 30
    assert tr.stop_reason == "finished: reached 30 epochs"
    assert tr.step() is None
    assert records[-1].train_loss < records[0].train_loss
    assert records[-1].gap == pytest.approx(records[-1].val_loss - records[-1].train_loss)


def test_curves_are_measured_in_eval_mode_without_regularizers():
    """Recorded losses equal a plain eval-mode cross-entropy, not the dropout objective."""
    tr = Trainer(SMALL.replace(dropout=0.8, l2=0.1, label_smoothing=0.2))
    record = tr.step()
    tr.model_.eval()
    with torch.no_grad():
        out = tr.model_(tr.x_train)
        expected_train = float(F.cross_entropy(out, tr.y_train))
        expected_val = float(F.cross_entropy(tr.model_(tr.x_val), tr.y_val))
    assert record.train_loss == pytest.approx(expected_train, rel=1e-6)
    assert record.val_loss == pytest.approx(expected_val, rel=1e-6)
    # The objective has the dropout noise, the smoothing and the penalty in it.
    assert record.penalty > 0
    assert record.objective != pytest.approx(record.train_loss, rel=1e-3)


def test_regression_records_mse_and_r2():
    """1-D sets report MSE losses and R^2 scores."""
    tr = Trainer(Config(dataset="sine", n_train=30, n_val=50, hidden=(32,), epochs=200))
    tr.fit()
    r = tr.history[-1]
    y = tr.y_val.numpy()[:, 0]
    pred = tr.predict(tr.x_val.numpy())[:, 0]
    assert r.val_loss == pytest.approx(float(np.mean((pred - y) ** 2)), rel=1e-5)
    assert r.val_score == pytest.approx(1 - np.sum((pred - y) ** 2) / np.sum((y - y.mean()) ** 2))
    assert r.train_score > 0.5


def test_set_live_changes_knobs_without_resetting():
    """A live dropout change keeps the weights, updates the layers and logs an event."""
    tr = Trainer(SMALL)
    tr.fit(10)
    before = [p.detach().clone() for p in tr.model_.parameters()]
    (event,) = tr.set_live(dropout=0.5, lr=0.01)  # lr is unchanged: no event for it
    assert event.label == "dropout 0 -> 0.5 @ epoch 10"
    assert all(torch.equal(a, b) for a, b in zip(before, tr.model_.parameters()))
    assert {m.p for m in tr.model_.modules() if isinstance(m, SeededDropout)} == {0.5}
    tr.set_live(lr=0.02, weight_decay=0.1)
    assert [g["lr"] for g in tr.optimizer_.param_groups] == [0.02, 0.02]
    assert tr.optimizer_.param_groups[0]["weight_decay"] == 0.1
    assert tr.optimizer_.param_groups[1]["weight_decay"] == 0.0  # biases never decay
    assert tr.step().epoch == 11
    assert [e.knob for e in tr.events] == ["dropout", "lr", "weight_decay"]


def test_set_live_refuses_structural_unknown_and_invalid():
    """Structural knobs, unknown names and bad values each get one clear message."""
    tr = Trainer(SMALL)
    with pytest.raises(ConfigError, match="'hidden' is structural"):
        tr.set_live(hidden=(8,))
    with pytest.raises(ConfigError, match="unknown setting 'dropoutt'"):
        tr.set_live(dropoutt=0.1)
    with pytest.raises(ConfigError, match=r"'dropout' must be a float in \[0, 0.95\]; got 1.5"):
        tr.set_live(dropout=1.5)
    with pytest.raises(ConfigError, match="turn 'residual' on"):
        tr.set_live(stochastic_depth=0.2)
    assert tr.config == SMALL and tr.events == []


def test_raising_epochs_resumes_a_finished_run():
    """More epochs lift the 'finished' stop."""
    tr = Trainer(SMALL.replace(epochs=5))
    tr.fit()
    assert tr.stopped
    tr.set_live(epochs=8)
    assert not tr.stopped
    assert len(tr.fit()) == 3 and tr.epoch == 8


def test_fork_continues_identically_and_independently():
    """A fork replays the same future; training it leaves the original untouched."""
    config = SMALL.replace(dropout=0.3, augment="jitter", batch_size=8, epochs=60)
    tr = Trainer(config)
    tr.fit(20)
    fork = tr.fork()
    assert fork.history == tr.history
    a, b = tr.fit(15), fork.fit(15)
    strip = lambda rs: [(r.train_loss, r.val_loss, r.objective) for r in rs]  # noqa: E731
    assert strip(a) == strip(b)
    fork.set_live(dropout=0.0)
    c, d = tr.fit(5), fork.fit(5)
    assert strip(c) != strip(d)
    assert tr.epoch == fork.epoch == 40


def test_fork_shares_data_but_not_weights():
    """Data tensors are shared read-only; weights and optimizer state are copies."""
    tr = Trainer(SMALL)
    tr.fit(3)
    fork = tr.fork()
    assert fork.x_train is tr.x_train
    assert fork.model_ is not tr.model_
    w_fork, w_orig = next(fork.model_.parameters()), next(tr.model_.parameters())
    assert w_fork is not w_orig and torch.equal(w_fork, w_orig)
    assert fork.optimizer_.param_groups[0]["params"][0] is fork._weights[0]


def test_global_rng_is_untouched():
    """Training uses its own generators, never the global torch RNG."""
    state = torch.get_rng_state()
    Trainer(SMALL.replace(dropout=0.5, augment="mixup", batch_size=8)).fit(5)
    assert torch.equal(state, torch.get_rng_state())


_DETERMINISM_SCRIPT = """
import json
from regdemo.config import Config
from regdemo.engine import Trainer
c = Config(dataset="moons", n_train=40, n_val=60, hidden=(16, 16), epochs=25, dropout=0.3,
           augment="mixup", batch_size=8, label_noise=0.1, seed=7)
t = Trainer(c)
t.fit()
print(json.dumps([[r.train_loss, r.val_loss, r.objective, r.weight_norm] for r in t.history]))
"""


def test_same_config_gives_bit_identical_history_in_fresh_processes():
    """Two fresh interpreters produce the same floats, bit for bit."""
    runs = [
        subprocess.run(
            [sys.executable, "-c", _DETERMINISM_SCRIPT],
            capture_output=True, text=True, check=True,
        ).stdout
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    assert len(json.loads(runs[0])) == 25


def test_different_seeds_differ():
    """The seed matters: data and init change with it."""
    a = Trainer(SMALL.replace(seed=1)).fit(3)
    b = Trainer(SMALL.replace(seed=2)).fit(3)
    assert a[-1].val_loss != b[-1].val_loss


@pytest.mark.parametrize(
    "changes",
    [{"optimizer": "sgd", "lr": 10.0}, {"optimizer": "momentum", "lr": 10.0, "hidden": (64, 64)}],
)
def test_divergence_stops_with_reason_not_exception(changes):
    """A blow-up ends the run with a readable reason; no NaN reaches the history."""
    tr = Trainer(SMALL.replace(dataset="sine", epochs=500, **changes))
    tr.fit()
    assert tr.diverged
    assert tr.stop_reason.startswith("diverged at epoch")
    assert "learning rate" in tr.stop_reason
    assert all(math.isfinite(r.train_loss) and math.isfinite(r.val_loss) for r in tr.history)
    assert tr.step() is None
    tr.set_live(epochs=1000)  # a diverged run stays stopped
    assert tr.stopped


def test_minibatches_take_ceil_n_over_b_steps():
    """An epoch is one pass over the training set in mini-batches of batch_size."""
    tr = Trainer(SMALL.replace(batch_size=16))  # 40 points: 16 + 16 + 8
    tr.fit(2)
    state = tr.optimizer_.state[tr._weights[0]]
    assert int(state["step"]) == 6


def test_batch_norm_skips_a_leftover_single_sample():
    """With batch norm, a last batch of one sample is skipped instead of crashing."""
    tr = Trainer(SMALL.replace(n_train=21, batch_size=10, batch_norm=True))
    tr.fit(2)
    assert int(tr.optimizer_.state[tr._weights[0]]["step"]) == 4


def test_predict_grid_by_data_kind():
    """2-D: probabilities on a grid covering the data; 1-D: the curve; digits: none."""
    tr = Trainer(SMALL)
    tr.fit(5)
    grid = tr.predict_grid(50)
    assert grid["z"].shape == (50, 50)
    assert ((grid["z"] >= 0) & (grid["z"] <= 1)).all()
    xs = tr.x_train.numpy()
    assert grid["x"].min() < xs[:, 0].min() and grid["x"].max() > xs[:, 0].max()
    curve = Trainer(Config(dataset="sine", n_train=20, n_val=20)).predict_grid(80)
    assert curve["x"].shape == curve["y"].shape == (80,)
    digits = Config(dataset="digits", n_train=50, n_val=50, noise=0.0)
    assert Trainer(digits).predict_grid() is None


def test_weights_and_feature_importance():
    """Per-layer weight arrays named by shape; one importance per input feature."""
    tr = Trainer(SMALL)
    assert list(tr.weights()) == ["linear 1 (2x16)", "linear 2 (16x16)", "linear 3 (16x2)"]
    assert tr.feature_importance().shape == (2,)


def test_cnn_and_residual_models_train():
    """The digits CNN and the residual MLP with stochastic depth both run."""
    cnn = Trainer(Config(dataset="digits", n_train=60, n_val=60, noise=0.0, arch="cnn",
                         hidden=(32,), batch_size=30, augment="rotate"))
    assert cnn.fit(2)[-1].train_loss > 0
    assert cnn.feature_importance() is None
    res = Trainer(SMALL.replace(residual=True, hidden=(16, 16, 16), stochastic_depth=0.5))
    assert [m.p for m in res.model_.modules() if isinstance(m, DropPath)] == [
        pytest.approx(0.5 / 3), pytest.approx(1 / 3), pytest.approx(0.5)]
    assert res.fit(3)[-1].epoch == 3


def test_mistakes_are_the_misclassified_validation_digits():
    """Digits: every returned example is wrong, and all wrong ones up to n are returned."""
    tr = Trainer(Config(dataset="digits", n_train=60, n_val=100, noise=0.0, hidden=(16,),
                        epochs=3))
    tr.fit()
    x, true, pred = tr.mistakes(n=500)
    assert (true != pred).all()
    probs = tr.predict(tr.x_val.numpy())
    assert len(x) == int((probs.argmax(1) != tr.y_val.numpy()).sum()) > 0
    assert x.shape[1] == 64
    assert Trainer(SMALL).mistakes() is None


def test_a_trainer_leaves_the_processs_thread_count_alone_unless_asked():
    """A notebook's Trainer must not make the whole kernel single-threaded; the server's
    workers ask for one thread explicitly."""
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        Trainer(Config(n_train=8, n_val=8, hidden=(4,), epochs=1)).step()
        assert torch.get_num_threads() == 2
        Trainer(Config(n_train=8, n_val=8, hidden=(4,), epochs=1), threads=1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("optimizer, counted", [("sgd", True), ("adam", True),
                                                ("adamw", False)])
def test_the_objective_counts_coupled_weight_decay_as_a_penalty(optimizer, counted):
    """SGD's and Adam's weight_decay is the gradient of decay/2 * sum w^2: the objective
    includes it; AdamW's decoupled decay is no term of any objective."""
    tr = Trainer(Config(n_train=20, n_val=20, hidden=(8,), optimizer=optimizer,
                        weight_decay=0.3, l2=0.1, epochs=3))
    record = tr.step()
    norm = record.weight_norm
    expected = 0.5 * (0.1 + (0.3 if counted else 0.0)) * norm * norm
    assert record.penalty == pytest.approx(expected)
    assert record.objective - record.penalty > 0


def test_regression_loss_is_the_mean_over_every_output_as_mse_loss_takes_it():
    tr = Trainer(Config(dataset="sine", n_train=20, n_val=30, hidden=(8,), epochs=2))
    record = tr.step()
    with torch.no_grad():
        expected = F.mse_loss(tr.model_.eval()(tr.x_val), tr.y_val)
    assert record.val_loss == pytest.approx(float(expected), rel=1e-5)


def test_the_test_set_is_measured_but_never_chosen_on():
    """summary() reports the held-out test figures of the kept weights; early stopping
    picks and restores on validation only (scrambling the test labels changes nothing)."""
    config = Config(n_train=30, n_val=60, n_test=200, hidden=(32, 32), lr=0.03, epochs=300,
                    early_stopping=True, patience=20, restore_best=True, label_noise=0.2)
    a, b = Trainer(config), Trainer(config)
    b.y_test = b.y_test[torch.randperm(len(b.y_test), generator=torch.Generator().manual_seed(0))]
    a.fit()
    b.fit()
    assert a.restored_epoch == b.restored_epoch is not None
    assert [r.val_loss for r in a.history] == [r.val_loss for r in b.history]
    s = a.summary()
    with torch.no_grad():
        out = a.model_.eval()(a.x_test)
    assert s["test_loss"] == pytest.approx(float(F.cross_entropy(out, a.y_test)), rel=1e-6)
    assert s["test_score"] == pytest.approx(float((out.argmax(1) == a.y_test).float().mean()))
    assert len(a.y_test) == 200 and b.summary()["test_loss"] != s["test_loss"]
