"""The fused epoch (numba) gives the eager PyTorch path's results, and hands over cleanly."""

import numpy as np
import pytest
import torch

from regdemo import fused
from regdemo.config import Config
from regdemo.engine import Trainer

FIELDS = ("train_loss", "val_loss", "train_score", "val_score", "objective", "penalty",
          "weight_norm", "sparsity")
BASE = dict(dataset="moons", n_train=60, n_val=100, hidden=(16, 16), epochs=1000, lr=0.01)
EPOCHS = 40

CASES = {
    "sgd full batch": dict(optimizer="sgd", lr=0.1, activation="tanh"),
    "sgd batch 10": dict(optimizer="sgd", lr=0.1, batch_size=10, activation="tanh"),
    "momentum, leftover batch": dict(optimizer="momentum", batch_size=16, l2=1e-3),
    "adam l2": dict(optimizer="adam", l2=1e-2, batch_size=8),
    "adam coupled decay": dict(optimizer="adam", weight_decay=0.1),
    "adamw decoupled decay": dict(optimizer="adamw", weight_decay=0.5, batch_size=20),
    "adam l1 (proximal)": dict(optimizer="adam", l1=3e-3, batch_size=12),
    "sgd l1 (proximal)": dict(optimizer="sgd", lr=0.1, l1=1e-3),
    "dropout": dict(optimizer="adam", dropout=0.3, batch_size=10),
    "jitter": dict(optimizer="adam", augment="jitter", augment_strength=0.6, batch_size=15),
    "label smoothing": dict(optimizer="adam", label_smoothing=0.2),
    "max-norm with dropout": dict(optimizer="momentum", lr=0.5, dropout=0.3, max_norm=0.8,
                                  batch_size=10),
    "everything": dict(optimizer="adamw", weight_decay=0.1, l1=1e-3, l2=1e-3, dropout=0.2,
                       augment="jitter", label_smoothing=0.1, batch_size=7),
    "sigmoid deep": dict(activation="sigmoid", hidden=(8, 8, 8), optimizer="adam"),
    "leaky relu": dict(activation="leaky_relu", optimizer="adam", batch_size=10),
    "elu": dict(activation="elu", optimizer="adam"),
    "gelu": dict(activation="gelu", optimizer="adam", batch_size=10),
    "no hidden layer": dict(hidden=(), optimizer="adam"),
    "sine regression": dict(dataset="sine", n_train=30, optimizer="adam", l2=1e-3,
                            batch_size=8, dropout=0.1),
    "tabular, 10 classes": dict(dataset="digits", n_train=100, n_val=100, hidden=(32,),
                                noise=0.0, optimizer="adam", batch_size=32),
    "early stopping restores": dict(optimizer="adam", lr=0.05, n_train=20, early_stopping=True,
                                    patience=5, restore_best=True),
}


def _history(config: Config, use_fused: bool, epochs: int = EPOCHS) -> np.ndarray:
    trainer = Trainer(config, use_fused=use_fused)
    trainer.fit(epochs)
    assert (trainer._fused is not None) == use_fused
    return np.array([[getattr(r, f) for f in FIELDS] for r in trainer.history])


def _assert_close(a: np.ndarray, b: np.ndarray, rtol: float = 2e-4) -> None:
    assert a.shape == b.shape
    sparse = FIELDS.index("sparsity")
    rest = [i for i in range(len(FIELDS)) if i != sparse]
    np.testing.assert_allclose(a[:, rest], b[:, rest], rtol=rtol, atol=1e-5)
    # L1's threshold lands a weight on exactly zero or just beside it: float dust may
    # decide one weight differently (1/320 of this net's weights), never more than a few.
    np.testing.assert_allclose(a[:, sparse], b[:, sparse], atol=0.01)


@pytest.mark.parametrize("name", CASES)
def test_fused_epochs_match_the_eager_path(name):
    config = Config(**{**BASE, **CASES[name]})
    assert fused.unsupported(config, Trainer(config, use_fused=False).model_) is None
    _assert_close(_history(config, True), _history(config, False))


def test_early_stopping_ends_at_the_same_epoch_with_the_same_weights():
    config = Config(**{**BASE, **CASES["early stopping restores"]})
    a, b = Trainer(config, use_fused=True), Trainer(config, use_fused=False)
    a.fit(200)
    b.fit(200)
    assert a.stop_reason == b.stop_reason and a.restored_epoch == b.restored_epoch is not None
    for (ka, va), (kb, vb) in zip(a.model_.state_dict().items(), b.model_.state_dict().items()):
        assert ka == kb
        torch.testing.assert_close(va, vb, rtol=1e-4, atol=1e-6)


def test_a_live_change_to_what_the_kernel_lacks_hands_over_to_eager_and_back():
    """Mixup is eager-only: fused -> eager -> fused follows an all-eager run."""
    config = Config(**{**BASE, "optimizer": "adam", "batch_size": 10, "l2": 1e-3})
    runs = []
    for use in (True, False):
        t = Trainer(config, use_fused=use)
        t.fit(10)
        t.set_live(augment="mixup", augment_strength=0.4)
        t.fit(10)
        assert t.fused_kernel() is None  # mixup: eager this epoch
        t.set_live(augment="none", dropout=0.2)
        t.fit(10)
        assert (t.fused_kernel() is not None) == use
        runs.append(np.array([[getattr(r, f) for f in FIELDS] for r in t.history]))
    _assert_close(*runs)


def test_optimizer_state_is_shared_with_torch():
    """After fused epochs, torch's Adam state holds the kernel's moments and step count."""
    config = Config(**{**BASE, "optimizer": "adam", "batch_size": 20})
    t = Trainer(config, use_fused=True)
    t.fit(3)  # 3 batches an epoch
    w = t.model_[0].weight
    state = t.optimizer_.state[w]
    assert float(state["step"]) == 9
    assert w.data_ptr() == t._fused._p.data_ptr()  # the first weight starts the flat buffer
    assert float(state["exp_avg_sq"].abs().sum()) > 0
    eager = Trainer(config, use_fused=False)
    eager.fit(3)
    torch.testing.assert_close(state["exp_avg"], eager.optimizer_.state[eager.model_[0].weight][
        "exp_avg"], rtol=1e-4, atol=1e-7)


def test_a_fork_of_a_fused_run_continues_exactly_like_the_original():
    config = Config(**{**BASE, "optimizer": "adam", "dropout": 0.2, "batch_size": 10})
    t = Trainer(config, use_fused=True)
    t.fit(5)
    branch = t.fork()
    a, b = t.fit(10), branch.fit(10)
    assert [r.val_loss for r in a] == [r.val_loss for r in b]
    assert branch._fused is not None and branch._fused is not t._fused
    assert branch._fused.P.ctypes.data != t._fused.P.ctypes.data  # its own weights


def test_divergence_is_caught_on_the_fused_path():
    t = Trainer(Config(**{**BASE, "optimizer": "sgd", "lr": 10.0, "hidden": (64, 64),
                          "n_train": 200}), use_fused=True)
    t.fit(200)
    assert t.diverged and "diverged" in t.stop_reason
    assert all(np.isfinite(r.val_loss) for r in t.history)


@pytest.mark.parametrize("change", [
    dict(batch_norm=True), dict(residual=True, hidden=(16, 16)), dict(augment="mixup"),
    dict(dataset="digits", arch="cnn", noise=0.0, hidden=(16,)),
])
def test_what_the_kernel_lacks_trains_eagerly(change):
    t = Trainer(Config(**{**BASE, **change}), use_fused=True)
    t.fit(2)
    assert t._fused is None and len(t.history) == 2


def test_the_path_depends_on_the_config_alone(monkeypatch):
    """Not on timing: a run is fused (where the kernel covers it) whether or not the
    kernels were loaded yet, so every process gives the same numbers for a config."""
    from regdemo import warmup

    monkeypatch.setattr(warmup, "_ready", type(warmup._ready)())  # as if not warmed yet
    t = Trainer(Config(**BASE))
    assert t.use_fused
    t.fit(1)
    assert t._fused is not None
    monkeypatch.setenv("REGDEMO_FUSED", "0")
    assert not fused.enabled() and not Trainer(Config(**BASE)).use_fused


def test_the_kernels_blas_runs_on_the_runs_one_thread():
    """numba's products call scipy's OpenBLAS: capped like torch (two spinning threads per
    run made a worker 20x slower on a shared machine)."""
    from threadpoolctl import threadpool_info

    Trainer(Config(**BASE), threads=1).fit(1)
    # numba links scipy's BLAS (numpy's own, loaded or not, is not on the kernel's path).
    blas = [i for i in threadpool_info() if "scipy.libs" in i["filepath"]]
    assert blas and all(i["num_threads"] == 1 for i in blas)
