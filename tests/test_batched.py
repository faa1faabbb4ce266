"""Batched training: a stack of same-shaped MLPs gives exactly what separate runs give.

A stack and a single run take the same fused kernel (a single run is a stack of one), so
every figure must agree bit for bit, not within a tolerance.
"""

import pytest
import torch

from regdemo import batched
from regdemo.config import Config
from regdemo.engine import Trainer

BASE = Config(dataset="moons", n_train=40, n_val=100, noise=0.3, hidden=(32, 32),
              optimizer="adam", lr=0.01, epochs=40)


@pytest.fixture
def stacks(monkeypatch):
    """Sizes of the stacks train_many trains (empty when everything fell back)."""
    sizes = []
    real = batched.fit_stacked

    def spy(trainers):
        sizes.append(len(trainers))
        return real(trainers)

    monkeypatch.setattr(batched, "fit_stacked", spy)
    return sizes


def separate(configs):
    out = []
    for config in configs:
        trainer = Trainer(config)
        trainer.fit()
        out.append(trainer.summary())
    return out


def assert_same(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g == w


def test_group_varying_l2_matches_separate_runs(stacks):
    """Full batch, Adam; L2 from none to strong: one stack of 4, same summaries."""
    configs = [BASE.replace(l2=v) for v in (0.0, 1e-2, 0.1, 1.0)]
    got = batched.train_many(configs)
    assert stacks == [4]
    assert_same(got, separate(configs))
    assert got[0]["val_loss"] != pytest.approx(got[3]["val_loss"], rel=1e-2)  # L2 mattered


def test_group_varying_max_norm_matches_separate_runs(stacks):
    """Max-norm off, loose and tight in one stack: each model keeps its own radius."""
    configs = [BASE.replace(max_norm=v, optimizer="momentum", lr=0.3) for v in (0.0, 2.0, 0.1)]
    got = batched.train_many(configs)
    assert stacks == [3]
    assert_same(got, separate(configs))
    assert got[0]["val_loss"] != pytest.approx(got[2]["val_loss"], rel=1e-2)  # it mattered


def test_group_varying_dropout_with_mini_batches(stacks):
    """Each model draws its batch order and masks from its own stream, as Trainer does."""
    configs = [BASE.replace(dropout=p, batch_size=10, epochs=25) for p in (0.0, 0.2, 0.5)]
    got = batched.train_many(configs)
    assert stacks == [3]
    assert_same(got, separate(configs))


def test_group_varying_seed_momentum_sgd(stacks):
    """Own data split, init and stream per seed; momentum SGD with mini-batches."""
    configs = [
        BASE.replace(seed=s, optimizer="momentum", lr=0.05, batch_size=16) for s in range(4)
    ]
    got = batched.train_many(configs)
    assert stacks == [4]
    assert_same(got, separate(configs))
    assert len({r["val_loss"] for r in got}) == 4


def test_group_varying_lr_and_decoupled_weight_decay(stacks):
    """Learning rate and AdamW decay are per model too."""
    configs = [
        BASE.replace(optimizer="adamw", lr=lr, weight_decay=wd)
        for lr, wd in ((0.01, 0.0), (0.003, 1.0), (0.01, 3.0), (0.03, 0.1))
    ]
    got = batched.train_many(configs)
    assert stacks == [4]
    assert_same(got, separate(configs))


@pytest.mark.parametrize("optimizer,lr", [("adam", 0.01), ("sgd", 0.3)])
def test_l1_sparsity_matches(stacks, optimizer, lr):
    """The proximal L1 step lands on the same exact zeros in the stack."""
    configs = [BASE.replace(optimizer=optimizer, lr=lr, l1=v) for v in (0.0, 1e-3, 1e-2)]
    got = batched.train_many(configs)
    assert stacks == [3]
    want = separate(configs)
    assert_same(got, want)
    assert [r["sparsity"] for r in got] == [r["sparsity"] for r in want]
    assert got[0]["sparsity"] == 0 and got[2]["sparsity"] > 0.2


def test_label_smoothing_group_with_own_epoch_counts(stacks):
    """Smoothing per model; a model that reaches its epochs leaves, the others go on."""
    configs = [BASE.replace(label_smoothing=e, epochs=n) for e, n in ((0.0, 40), (0.1, 15),
                                                                      (0.3, 30))]
    got = batched.train_many(configs)
    assert stacks == [3]
    assert_same(got, separate(configs))


def test_regression_group(stacks):
    """MSE and R^2 for 1-D regression, L2 varying."""
    configs = [
        BASE.replace(dataset="sine", hidden=(16, 16), activation="tanh", l2=v)
        for v in (0.0, 1e-2)
    ]
    got = batched.train_many(configs)
    assert stacks == [2]
    assert_same(got, separate(configs))


def test_group_varying_jitter_strength(stacks):
    """Jitter noise per model from its own stream; strength 0 trains as no jitter does."""
    configs = [BASE.replace(augment="jitter", augment_strength=v, batch_size=10, epochs=15)
               for v in (0.0, 0.3, 1.0)]
    got = batched.train_many(configs)
    assert stacks == [3]
    assert_same(got, separate(configs))
    assert got[0]["train_loss"] != got[2]["train_loss"]


def test_early_stopping_best_epoch_and_restored_weights():
    """Models stop at their own epochs; restored weights equal the separate run's."""
    configs = [
        BASE.replace(hidden=(64, 64), epochs=100, early_stopping=True, patience=p, seed=s)
        for p, s in ((5, 0), (15, 1), (100, 3))
    ]
    stacked = [Trainer(c) for c in configs]
    batched.fit_stacked(stacked)
    alone = [Trainer(c) for c in configs]
    for trainer in alone:
        trainer.fit()
    assert_same([t.summary() for t in stacked], [t.summary() for t in alone])
    assert stacked[0].restored_epoch is not None and stacked[0].epoch < 100
    assert stacked[2].epoch == 100  # patience longer than the run: no stop
    for s, a in zip(stacked, alone):
        assert s.restored_epoch == a.restored_epoch and s.best_epoch == a.best_epoch
    for s, a in zip(stacked, alone):  # the weights themselves, restored or last
        for ps, pa in zip(s.model_.parameters(), a.model_.parameters()):
            assert torch.equal(ps, pa)


def test_stacked_trainer_resumes_like_a_separate_one():
    """Weights and optimizer state come back to each trainer: more epochs continue alike."""
    config = BASE.replace(epochs=20, l2=1e-3)
    stacked = [Trainer(config), Trainer(config.replace(seed=1))]
    batched.fit_stacked(stacked)
    alone = Trainer(config)
    alone.fit()
    for trainer in (stacked[0], alone):
        trainer.set_live(epochs=30)
        trainer.fit()
    assert_same([stacked[0].summary()], [alone.summary()])


def test_diverging_member_stops_alone_without_poisoning_the_rest(stacks):
    """Exploding weights (lr 10) and a NaN loss (lr 10, tiny batches) stop those models only."""
    sgd = BASE.replace(optimizer="sgd", batch_size=2, epochs=10)
    full = sgd.replace(batch_size=0, hidden=(64, 64))
    configs = [sgd.replace(lr=0.1), full.replace(lr=10.0), sgd.replace(lr=10.0),
               sgd.replace(lr=0.05, seed=3), full.replace(lr=0.1)]
    got = batched.train_many(configs)
    assert sorted(stacks) == [2, 3]  # full batch and batch 2 are two stacks
    assert_same(got, separate(configs))
    assert "weights exploded" in got[1]["stop_reason"] and got[1]["epochs"] < 10
    assert "NaN or infinite" in got[2]["stop_reason"] and got[2]["epochs"] < 10
    finished = "finished: reached 10 epochs"
    assert got[0]["stop_reason"] == got[3]["stop_reason"] == got[4]["stop_reason"] == finished


def test_unsupported_configs_fall_back_and_match(stacks):
    """Batch norm, residual blocks, mixup and extra features train alone, as they would."""
    configs = [
        BASE.replace(batch_norm=True),
        BASE.replace(residual=True, stochastic_depth=0.2),
        BASE.replace(augment="mixup"),
        BASE.replace(features=("x1sq", "x2sq")),
    ]
    assert all(batched.stack_key(c) is None for c in configs)
    got = batched.train_many(configs)
    assert stacks == []
    assert_same(got, separate(configs))


def test_mixed_group_keeps_output_order(stacks):
    """Interleaved shapes and fallbacks: results come back in the configs' order."""
    wide = BASE.replace(epochs=20)
    narrow = wide.replace(hidden=(8,), activation="tanh")
    configs = [
        wide.replace(seed=1), narrow.replace(l2=1e-2), wide.replace(batch_norm=True),
        narrow, wide.replace(dropout=0.3), narrow.replace(seed=5), wide.replace(hidden=(4,)),
    ]
    got = batched.train_many(configs)
    assert sorted(stacks) == [2, 3]  # the 4-unit net is alone: the plain trainer runs it
    assert_same(got, separate(configs))


def test_fit_stacked_refuses_mixed_or_used_trainers():
    with pytest.raises(ValueError):
        batched.fit_stacked([Trainer(BASE), Trainer(BASE.replace(hidden=(8,)))])
    used = Trainer(BASE)
    used.step()
    with pytest.raises(ValueError):
        batched.fit_stacked([used, Trainer(BASE)])
