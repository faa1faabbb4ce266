"""Every guided lesson's claims hold on its fixed-seed runs, and the registry is well formed.

Each lesson is played headless once per seed, as "Do it for me" would play it (`play`), and
cached for the module. Seed 0 is what the page shows, so the figures a lesson's text quotes
are checked on seed 0, each next to the phrase that quotes it. The seed-parametrized tests
check the claim itself (its direction and a meaningful size) with margins that held on seeds
0-5 when the lessons were written; they run seeds 0 and 1 to stay fast.
"""

import functools
import math
import re

import numpy as np
import pytest
import torch

from regdemo.augment import AUGMENTATIONS, DataInfo
from regdemo.config import LIVE_KNOBS, Config, ConfigError
from regdemo.datasets import make_split
from regdemo.engine import Trainer
from regdemo.lessons import LESSONS, TECHNIQUES, Lesson, Step, get_lesson, play
from regdemo.models import DropPath

SEEDS = (0, 1)


def _runs(key: str, seed: int = 0, upto: int | None = None) -> tuple[Trainer, ...]:
    """The lesson's runs as played; each (lesson, seed, upto) is trained once per module."""
    return _played(key, seed, upto)  # positional, so f(k) and f(k, 0) share a cache entry


@functools.cache
def _played(key: str, seed: int, upto: int | None) -> tuple[Trainer, ...]:
    return tuple(play(LESSONS[key], seed=seed, upto=upto))


def _partial(key: str, epochs: int, seed: int = 0) -> Trainer:
    """The lesson's own config trained for only `epochs` (state before a live change)."""
    return _trained(LESSONS[key].config.replace(seed=seed), epochs)


@functools.cache
def _trained(config: Config, epochs: int) -> Trainer:
    tr = Trainer(config)
    tr.fit(epochs)
    return tr


def _at(tr: Trainer, epoch: int):
    return tr.history[epoch - 1]


def _first(tr: Trainer, train_score: float) -> int | None:
    """First epoch whose training accuracy reaches `train_score`."""
    return next((r.epoch for r in tr.history if r.train_score >= train_score), None)


def _gap_turns_positive(tr: Trainer) -> int | None:
    """First epoch after the start-up (20) with a positive gap."""
    return next((r.epoch for r in tr.history if r.epoch > 20 and r.gap > 0), None)


def _agrees_with_flipped(tr: Trainer) -> float:
    """Share of the wrong (flipped) training labels the net now predicts."""
    flipped = tr.split.flipped
    pred = tr.predict(tr.x_train.numpy()).argmax(1)
    return float((pred[flipped] == tr.split.y_train[flipped]).mean())


def _confidence(tr: Trainer) -> np.ndarray:
    """Max softmax probability on each training point."""
    return tr.predict(tr.x_train.numpy()).max(1)


def _text(lesson: Lesson) -> str:
    parts = [lesson.title, lesson.goal, lesson.question, lesson.reveal]
    return " ".join(parts + [s.text for s in lesson.steps])


def _quote(key: str, *phrases: str) -> None:
    """The lesson's text still says these phrases, so the figure checked next is the shown one."""
    text = _text(LESSONS[key])
    for phrase in phrases:
        assert phrase in text, f"{key}: the text no longer says {phrase!r}; re-check the figure"


# ------------------------------------------------------------------ the registry
def test_registry_covers_every_technique_as_a_course():
    """At least 11 lessons, keys unique and matching, every technique taught at least once."""
    assert len(LESSONS) >= 11
    assert all(key == lesson.key for key, lesson in LESSONS.items())
    taught = {t for lesson in LESSONS.values() for t in lesson.techniques}
    assert set(TECHNIQUES) <= taught
    assert taught <= set(TECHNIQUES)
    assert list(LESSONS)[0] == "overfit_capacity"  # a course starts with the problem
    assert list(LESSONS)[-1] == "combined"
    assert get_lesson("l2") is LESSONS["l2"]
    assert get_lesson("no such lesson") is None


@pytest.mark.parametrize("key", list(LESSONS))
def test_lesson_is_well_formed(key):
    """Texts present, 3-5 steps, a fixed seed, few enough epochs to play in seconds."""
    lesson = LESSONS[key]
    for text in (lesson.title, lesson.goal, lesson.question, lesson.reveal):
        assert text.strip() == text and len(text) > 10
    assert lesson.question.endswith("?")
    sentences = len(re.findall(r"[.!?](?:\s|$)", lesson.reveal))
    assert 2 <= sentences <= 4, f"{key}: reveal has {sentences} sentences"
    assert 3 <= len(lesson.steps) <= 5
    assert all(isinstance(s, Step) and len(s.text) > 10 for s in lesson.steps)
    assert lesson.steps[0].train  # step 1 starts the lesson's own run
    assert lesson.config.seed == 0 and lesson.config.epochs <= 300


@pytest.mark.parametrize("key", list(LESSONS))
def test_every_step_can_be_done_for_you(key):
    """Restarts make valid configs; live knobs are live and valid on the run they change."""
    lesson = LESSONS[key]
    current = None
    for i, step in enumerate(lesson.steps, 1):
        if step.train or step.restart:
            current = lesson.config_for(step)  # raises ConfigError if invalid
        if step.live:
            assert set(step.live) <= LIVE_KNOBS, f"{key} step {i}: structural knob"
            assert current is not None and step.at_epoch is not None
            assert 0 < step.at_epoch < current.epochs
            current = current.with_live(**step.live)
        elif step.at_epoch is not None:
            assert current is not None and 0 < step.at_epoch <= current.epochs


def test_a_bad_restart_is_refused():
    """config_for validates: a restart that breaks a constraint raises, it does not run."""
    lesson = LESSONS["l2"]
    with pytest.raises(ConfigError):
        lesson.config_for(Step("x", restart={"dropout": 1.5}))


def test_play_applies_live_changes_at_the_stated_epochs():
    """play() logs each live change at its step's epoch, as the page's chart markers show."""
    (run,) = _runs("l2")
    assert [(e.epoch, e.knob, e.new) for e in run.events] == [(100, "l2", 0.01), (200, "l2", 0.0)]
    assert run.epoch == run.config.epochs


# ------------------------------------------------------------------ overfitting
@pytest.mark.parametrize("seed", SEEDS)
def test_overfit_capacity_claims(seed):
    """Big net memorises; 10x data shrinks the gap by a lot; a tiny net cannot memorise."""
    big, more_data, small = _runs("overfit_capacity", seed)
    assert _first(big, 1.0) <= 90
    assert big.best_epoch <= 40
    lowest = min(r.val_loss for r in big.history)
    assert big.history[-1].val_loss > 3 * lowest  # climbs for the rest of the run
    at_best = _at(big, big.best_epoch).val_score
    assert big.history[-1].val_score == pytest.approx(at_best, abs=0.06)  # accuracy: flat
    assert more_data.history[-1].gap < 0.5 * big.history[-1].gap
    assert more_data.history[-1].val_loss < 0.5 * big.history[-1].val_loss
    # 2-7 points better on seeds 0-4; seed 5's 40 points already reach 90%, near the top
    # for moons this noisy, and there 400 points only tie.
    assert more_data.history[-1].val_score > big.history[-1].val_score - 0.01
    assert small.history[-1].gap < 0.2 * big.history[-1].gap
    assert small.history[-1].weight_norm < 0.3 * big.history[-1].weight_norm
    assert max(r.train_score for r in small.history) < 1.0  # never gets all 40 right


def test_overfit_capacity_figures():
    """The figures the overfitting lesson quotes, on the page's seed."""
    big, more_data, small = _runs("overfit_capacity")
    _quote("overfit_capacity", "17,000 weights", "Within about 50 epochs", "around epoch 22",
           "(about 0.31)", "to about 2.3 by epoch 300", "near 85%", "the 250 epochs after")
    assert sum(w.numel() for w in big._weights) == pytest.approx(17_000, rel=0.05)
    assert _first(big, 1.0) == pytest.approx(50, abs=8)
    assert big.best_epoch == pytest.approx(22, abs=4)
    assert min(r.val_loss for r in big.history) == pytest.approx(0.31, abs=0.03)
    assert big.history[-1].val_loss == pytest.approx(2.3, abs=0.3)
    assert big.history[-1].val_score == pytest.approx(0.85, abs=0.015)
    _quote("overfit_capacity", "about 0.3 instead of 2.3", "to about 88%")
    assert more_data.history[-1].gap == pytest.approx(0.3, abs=0.1)
    assert more_data.history[-1].val_score == pytest.approx(0.88, abs=0.02)
    _quote("overfit_capacity", "stays near 5", "is about 31", "stays near 88%",
           "gap ends near 0.07")
    assert max(r.weight_norm for r in small.history) == pytest.approx(5, abs=0.6)
    assert big.history[-1].weight_norm == pytest.approx(31, abs=1.5)
    assert small.history[-1].train_score == pytest.approx(0.88, abs=0.03)
    assert max(r.train_score for r in small.history) < 1.0
    assert small.history[-1].gap == pytest.approx(0.07, abs=0.04)


@pytest.mark.parametrize("seed", SEEDS)
def test_label_noise_is_learned_late(seed):
    """Wrong labels are ignored early and memorised late, and that costs validation accuracy."""
    noisy, clean = _runs("overfit_label_noise", seed)
    early = _partial("overfit_label_noise", 50, seed)
    assert _agrees_with_flipped(early) < 0.4
    assert _agrees_with_flipped(noisy) > max(0.65, _agrees_with_flipped(early) + 0.35)
    assert _at(noisy, 50).gap < 0
    peak = max(r.val_score for r in noisy.history[:100])
    assert noisy.history[-1].val_score < peak - 0.08
    assert min(r.val_score for r in clean.history[100:]) > 0.9
    assert clean.history[-1].val_loss > 1.3 * min(r.val_loss for r in clean.history)


def test_label_noise_figures():
    """The figures the label-noise lesson quotes, on the page's seed."""
    noisy, clean = _runs("overfit_label_noise")
    early = _partial("overfit_label_noise", 50)
    _quote("overfit_label_noise", "18 of the 100", "to about 93%", "stays near 80%",
           "about 97%", "(16 of 18)", "to about 81%")
    assert int(noisy.split.flipped.sum()) == 18
    assert _at(noisy, 50).val_score == pytest.approx(0.93, abs=0.015)
    assert _at(noisy, 50).train_score == pytest.approx(0.80, abs=0.03)
    assert noisy.history[-1].train_score == pytest.approx(0.97, abs=0.02)
    assert _agrees_with_flipped(noisy) * 18 == pytest.approx(16, abs=2)
    assert _agrees_with_flipped(early) * 18 <= 3
    assert noisy.history[-1].val_score == pytest.approx(0.81, abs=0.02)
    _quote("overfit_label_noise", "near 95% from epoch 50", "from about 0.15 to 0.38")
    assert all(0.94 <= r.val_score <= 0.965 for r in clean.history[49:])
    assert min(r.val_loss for r in clean.history) == pytest.approx(0.15, abs=0.02)
    assert clean.history[-1].val_loss == pytest.approx(0.38, abs=0.04)


# ------------------------------------------------------------------ L2 and weight decay
@pytest.mark.parametrize("seed", SEEDS)
def test_l2_shrinks_weights_and_gap_while_on(seed):
    """L2 on at 100: norm and gap fall, a few tangled points are given up; off at 200: all
    three come back."""
    (run,) = _runs("l2", seed)
    on, during, off = _at(run, 100), _at(run, 200), run.history[-1]
    assert on.train_score == 1.0
    assert during.weight_norm < 0.4 * on.weight_norm
    assert during.gap < 0.4 * on.gap
    assert 0.875 <= during.train_score < 1.0  # gives up a few points, keeps the rest
    assert off.gap > 2.5 * during.gap
    assert off.weight_norm > 1.5 * during.weight_norm
    assert off.train_score == 1.0  # memorised again


def test_l2_figures():
    """The figures the L2 lesson quotes, on the page's seed."""
    (run,) = _runs("l2")
    _quote("l2", "weight norm is about 25", "gap about 1.2", "falls to about 7",
           "gap to about 0.1", "norm about 16", "reopens to about 1.0")
    assert _at(run, 100).weight_norm == pytest.approx(25, abs=1)
    assert _at(run, 100).gap == pytest.approx(1.2, abs=0.15)
    assert _at(run, 150).weight_norm == pytest.approx(7, abs=0.7)
    assert _at(run, 150).gap == pytest.approx(0.1, abs=0.05)
    _quote("l2", "drops to about 92%: the 3 points", "back to 100%")
    assert _at(run, 150).train_score == pytest.approx(0.92, abs=0.015)
    assert round((1 - _at(run, 150).train_score) * 40) == 3
    assert run.history[-1].train_score == 1.0
    assert run.history[-1].weight_norm == pytest.approx(16, abs=1.5)
    assert run.history[-1].gap == pytest.approx(1.0, abs=0.2)


@pytest.mark.parametrize("seed", SEEDS)
def test_adamw_decay_needs_a_far_larger_number_than_adam(seed):
    """AdamW at 0.01 is as good as no decay; at 5 it bites; Adam's coupled 0.01 bites."""
    adamw, adam = _runs("weight_decay_adamw", seed)
    plain = _runs("overfit_capacity", seed)[0]  # the same run without any decay
    # 100 epochs of a memorising net amplify AdamW's tiny pull: the gap moves by up to
    # 12% (seed 3), the weight norm by under 2%, where decay 5 takes 85-95% off the gap.
    assert _at(adamw, 100).gap == pytest.approx(_at(plain, 100).gap, rel=0.15)
    assert _at(adamw, 100).weight_norm == pytest.approx(_at(plain, 100).weight_norm, rel=0.02)
    assert adamw.history[-1].weight_norm < 0.65 * _at(adamw, 100).weight_norm
    assert adamw.history[-1].gap < 0.25 * _at(adamw, 100).gap
    assert adam.history[-1].weight_norm < 0.4 * plain.history[-1].weight_norm
    assert adam.history[-1].gap < 0.4 * plain.history[-1].gap


def test_weight_decay_figures():
    """The figures the weight-decay lesson quotes, and its arithmetic, on the page's seed."""
    adamw, adam = _runs("weight_decay_adamw")
    _quote("weight_decay_adamw", "weight norm about 25, gap about 1.2",
           "norm is down to about 10", "gap to about 0.05", "norm about 5, gap about 0.1")
    assert _at(adamw, 100).weight_norm == pytest.approx(25, abs=1)
    assert _at(adamw, 100).gap == pytest.approx(1.2, abs=0.15)
    assert adamw.history[-1].weight_norm == pytest.approx(10, abs=1)
    assert adamw.history[-1].gap == pytest.approx(0.05, abs=0.04)
    assert adam.history[-1].weight_norm == pytest.approx(5, abs=0.5)
    assert adam.history[-1].gap == pytest.approx(0.1, abs=0.04)
    _quote("weight_decay_adamw", "lr × 5 = 5%", "lr 0.01 a decay of 0.01",
           "removes 0.01% per step", "about 3% over the whole run", "hundreds of times apart")
    lesson = LESSONS["weight_decay_adamw"]
    lr, epochs = adamw.config.lr, adamw.config.epochs
    strong, default = lesson.steps[1].live["weight_decay"], lesson.config.weight_decay
    assert (lr, default, strong) == (0.01, 0.01, 5.0)
    assert lr * strong == pytest.approx(0.05)
    assert lr * default == pytest.approx(0.0001)
    assert 1 - (1 - lr * default) ** epochs == pytest.approx(0.03, abs=0.001)
    assert 100 <= strong / default < 1000


def test_adam_weight_decay_is_exactly_l2():
    """The lesson says Adam's weight decay 0.01 is an L2 penalty of 0.01: same curve."""
    _quote("weight_decay_adamw", "exactly an L2 penalty of 0.01")
    base = LESSONS["l2"].config.replace(epochs=20)
    coupled, l2 = Trainer(base.replace(weight_decay=0.01)), Trainer(base.replace(l2=0.01))
    coupled.fit()
    l2.fit()
    assert coupled.history[-1].val_loss == pytest.approx(l2.history[-1].val_loss, rel=1e-4)


# ------------------------------------------------------------------ L1
@pytest.mark.parametrize("seed", SEEDS)
def test_l1_cuts_the_noise_inputs_to_exact_zeros(seed):
    """L1 mid-run: >90% exact zeros, every informative input kept and nearly all the noise
    inputs cut; L2 cuts no input."""
    l1, l2 = _runs("l1_sparsity", seed)
    informative = list(l1.split.informative)
    noise = [i for i in range(l1.split.n_features) if i not in informative]
    assert _at(l1, 100).sparsity == 0
    assert _at(l1, 150).sparsity > 0.9
    assert _at(l1, 150).val_score > _at(l1, 100).val_score + 0.04
    imp = l1.feature_importance()
    assert (imp > 0).sum() <= 12  # of 40
    assert (imp[informative] > 0).all()
    assert (imp[noise] == 0).mean() > 0.8
    share = imp[informative].sum() / imp.sum()  # 5 of 40 inputs: 0.125 if spread evenly
    imp2 = l2.feature_importance()
    assert (imp2 > 0).all()
    assert share > imp2[informative].sum() / imp2.sum() + 0.3
    assert l2.history[-1].val_score > _at(l1, 100).val_score


def test_l1_figures():
    """The figures the L1 lesson quotes, and the ceiling it names, on the page's seed."""
    l1, l2 = _runs("l1_sparsity")
    _quote("l1_sparsity", "within about 30 epochs", "near 84%", "sparsity is 0%", "past 90%",
           "to about 89%", "about 6 of the 40", "all five of x0 to x4",
           "over 95% of the weight", "drops to about 96%", "to about 87%", "84% into 89%")
    assert _first(l1, 1.0) == pytest.approx(30, abs=5)
    assert _at(l1, 100).val_score == pytest.approx(0.84, abs=0.015)
    assert _at(l1, 100).sparsity == 0
    assert _at(l1, 150).sparsity > 0.9
    assert _at(l1, 150).val_score == pytest.approx(0.89, abs=0.015)
    imp = l1.feature_importance()
    assert (imp > 0).sum() == pytest.approx(6, abs=2)
    assert (imp[list(l1.split.informative)] > 0).all()
    assert imp[list(l1.split.informative)].sum() / imp.sum() > 0.95
    assert (imp[list(range(5, 40))] == 0).sum() >= 32  # noise inputs cut exactly
    assert l1.history[-1].train_score == pytest.approx(0.96, abs=0.02)
    assert l2.history[-1].val_score == pytest.approx(0.87, abs=0.015)
    # "about 93% is the ceiling": the best rule for this data, estimated on 4000 points.
    _quote("l1_sparsity", "about 93% is the ceiling")
    big = make_split("sparse", 4000, 4000, seed=0)
    one, zero = big.x_train[big.y_train == 1].mean(0), big.x_train[big.y_train == 0].mean(0)
    best = float((((big.x_val - (one + zero) / 2) @ (one - zero) > 0) == big.y_val).mean())
    assert best == pytest.approx(0.93, abs=0.015)
    assert l1.history[-1].val_score < best


# ------------------------------------------------------------------ dropout
@pytest.mark.parametrize("seed", SEEDS)
def test_dropout_lets_go_of_the_wrong_labels(seed):
    """Dropout on mid-run: training accuracy falls, validation accuracy and truth win."""
    live, fresh = _runs("dropout", seed)
    plain = _runs("overfit_label_noise", seed)[0]  # the same run without dropout
    on = LESSONS["dropout"].steps[1].at_epoch
    assert _at(live, on + 50).train_score < _at(live, on).train_score - 0.03
    assert live.history[-1].val_score > plain.history[-1].val_score + 0.05
    assert _agrees_with_flipped(live) < 0.5 * _agrees_with_flipped(plain)
    assert fresh.history[-1].val_score > plain.history[-1].val_score + 0.06
    assert max(r.train_score for r in fresh.history) < 0.9


def test_dropout_figures():
    """The figures the dropout lesson quotes, on the page's seed."""
    live, fresh = _runs("dropout")
    plain = _runs("overfit_label_noise")[0]
    before = _partial("dropout", 150)
    _quote("dropout", "about 89% and rising", "11 of the 18", "peak of about 93% to about 85%",
           "to about 80%", "ends near 89%", "ends near 81%")
    assert LESSONS["dropout"].steps[1].at_epoch == 150
    assert _at(live, 150).train_score == pytest.approx(0.89, abs=0.02)
    assert _agrees_with_flipped(before) * 18 == pytest.approx(11, abs=2)
    assert max(r.val_score for r in live.history[:150]) == pytest.approx(0.93, abs=0.01)
    # The noisy net's validation accuracy jumps by 2-3 points from epoch to epoch here:
    # "about 85%" is the level of the curve over epochs 141-150.
    assert np.mean([r.val_score for r in live.history[140:150]]) == pytest.approx(0.85, abs=0.015)
    assert _at(live, 200).train_score == pytest.approx(0.80, abs=0.03)
    assert live.history[-1].val_score == pytest.approx(0.89, abs=0.015)
    assert plain.history[-1].val_score == pytest.approx(0.81, abs=0.02)
    _quote("dropout", "near 80% all run", "ends near 89%", "only 5 of the 18 instead of 16")
    assert all(0.72 <= r.train_score <= 0.86 for r in fresh.history[20:])
    assert fresh.history[-1].val_score == pytest.approx(0.89, abs=0.015)
    assert _agrees_with_flipped(live) * 18 == pytest.approx(5, abs=2)
    assert _agrees_with_flipped(plain) * 18 == pytest.approx(16, abs=2)


# ------------------------------------------------------------------ early stopping
@pytest.mark.parametrize("seed", SEEDS)
def test_early_stopping_keeps_the_best_epoch_and_patience_matters(seed):
    """Patience 50 stops 50 after the best epoch and restores it; patience 5 stops too soon."""
    plain, patient, hasty = _runs("early_stopping", seed)
    best = plain.best_epoch
    losses = [r.val_loss for r in plain.history]
    assert best == losses.index(min(losses)) + 1 < 150
    assert patient.epoch == best + 50 and patient.restored_epoch == best
    assert patient.scores()[1] == pytest.approx(min(losses), rel=1e-6)
    assert patient.scores()[3] > plain.history[-1].val_score + 0.04
    assert hasty.epoch <= 20
    assert hasty.scores()[1] > patient.scores()[1]


def test_early_stopping_figures():
    """The figures the early-stopping lesson quotes, on the page's seed."""
    plain, patient, hasty = _runs("early_stopping")
    _quote("early_stopping", "near epoch 60 and climbs", "bottoms out near epoch 60",
           "(about 0.28", "validation accuracy about 92%", "to about 0.73", "down to about 81%")
    best = plain.best_epoch
    assert best == pytest.approx(60, abs=3)
    assert _at(plain, best).val_loss == pytest.approx(0.28, abs=0.01)
    assert _at(plain, best).val_score == pytest.approx(0.92, abs=0.01)
    assert plain.history[-1].val_loss == pytest.approx(0.73, abs=0.05)
    assert plain.history[-1].val_score == pytest.approx(0.81, abs=0.02)
    _quote("early_stopping", "stops near epoch 110, 50 epochs after the best one",
           "restores that best epoch's weights", "stops near epoch 13 and keeps epoch 8",
           "validation loss about 0.36", "about 83%")
    assert (patient.epoch, patient.restored_epoch) == (best + 50, best)
    assert patient.epoch == pytest.approx(110, abs=3)
    assert patient.scores()[3] == pytest.approx(0.92, abs=0.01)
    assert hasty.epoch == hasty.restored_epoch + 5
    assert hasty.restored_epoch == pytest.approx(8, abs=1)
    assert hasty.scores()[1] == pytest.approx(0.36, abs=0.01)
    assert hasty.scores()[3] == pytest.approx(0.83, abs=0.01)


# ------------------------------------------------------------------ augmentation
@pytest.mark.parametrize("seed", SEEDS)
def test_jitter_undoes_overfitting(seed):
    """Jitter mid-run shrinks the gap a lot, and val loss ends back near the plain run's best."""
    (run,) = _runs("augment_jitter", seed)
    plain = _runs("overfit_capacity", seed)[0]
    assert _at(run, 200).gap < 0.35 * _at(run, 100).gap
    assert run.history[-1].gap < 0.25 * _at(run, 100).gap
    assert run.history[-1].val_loss < 1.15 * min(r.val_loss for r in plain.history)


def test_jitter_figures():
    """The figures the jitter lesson quotes (and its noise scale), on the page's seed."""
    (run,) = _runs("augment_jitter")
    plain = _runs("overfit_capacity")[0]
    _quote("augment_jitter", "about 1.2 by epoch 100", "a quarter of a feature's spread",
           "down to about 0.12", "gap is about 0.04", "validation loss about 0.32",
           "back to the lowest", "(0.31, near epoch 22)")
    assert _at(run, 100).gap == pytest.approx(1.2, abs=0.15)
    assert _at(run, 200).gap == pytest.approx(0.12, abs=0.05)
    assert run.history[-1].gap == pytest.approx(0.04, abs=0.03)
    assert run.history[-1].val_loss == pytest.approx(0.32, abs=0.03)
    assert min(r.val_loss for r in plain.history) == pytest.approx(0.31, abs=0.03)
    assert plain.best_epoch == pytest.approx(22, abs=4)
    assert run.history[-1].val_loss < 1.1 * min(r.val_loss for r in plain.history)
    gen = torch.Generator().manual_seed(0)
    x = torch.zeros(20_000, 2)
    moved, _ = AUGMENTATIONS["jitter"].apply(x, torch.zeros(20_000), 0.5, gen, DataInfo(2))
    assert float(moved.std()) == pytest.approx(0.25, abs=0.01)


@pytest.mark.parametrize("seed", SEEDS)
def test_pixel_noise_helps_digits_and_shifts_do_not_help_accuracy(seed):
    """Pixel noise: lower val loss, higher accuracy. Two-pixel shifts: slow or never to fit,
    and accuracy below both the pixel-noise run and no augmentation at all."""
    plain, noisy, shifted = _runs("augment_digits", seed)
    assert noisy.history[-1].val_loss < 0.85 * plain.history[-1].val_loss
    assert noisy.history[-1].val_score > plain.history[-1].val_score
    assert (_first(shifted, 1.0) or math.inf) > 3 * _first(plain, 1.0)
    assert shifted.history[-1].val_score < noisy.history[-1].val_score - 0.03
    assert shifted.history[-1].val_score < plain.history[-1].val_score


def test_digits_figures():
    """The figures the digits lesson quotes, on the page's seed."""
    plain, noisy, shifted = _runs("augment_digits")
    _quote("augment_digits", "100% by epoch 22", "near epoch 60 (about 0.17)",
           "creeps up to 0.20", "accuracy about 94%")
    assert _first(plain, 1.0) == pytest.approx(22, abs=3)
    assert plain.best_epoch == pytest.approx(60, abs=8)
    assert min(r.val_loss for r in plain.history) == pytest.approx(0.17, abs=0.02)
    assert plain.history[-1].val_loss == pytest.approx(0.20, abs=0.02)
    assert plain.history[-1].val_score == pytest.approx(0.94, abs=0.01)
    _quote("augment_digits", "twice as long", "(about epoch 45)", "loss about 0.14",
           "accuracy about 95%", "cannot fit the moving digits in 300 epochs",
           "loss about 0.31", "accuracy about 90%", "a quarter of its width")
    assert _first(noisy, 1.0) == pytest.approx(45, abs=6)
    assert _first(noisy, 1.0) / _first(plain, 1.0) == pytest.approx(2, abs=0.4)
    assert noisy.history[-1].val_loss == pytest.approx(0.14, abs=0.02)
    assert noisy.history[-1].val_score == pytest.approx(0.95, abs=0.01)
    assert _first(shifted, 1.0) is None
    assert shifted.history[-1].val_loss == pytest.approx(0.31, abs=0.03)
    assert shifted.history[-1].val_score == pytest.approx(0.90, abs=0.01)
    assert round(2 * shifted.config.augment_strength) == 2  # shift: up to 2 x strength pixels


# ------------------------------------------------------------------ batch norm
@pytest.mark.parametrize("seed", SEEDS)
def test_batch_norm_unsticks_a_deep_net(seed):
    """Without BN the net stays at chance; with BN it learns fast; Adam gets there later."""
    stuck, normed, adam = _runs("batch_norm", seed)
    assert max(r.train_score for r in stuck.history) < 0.7
    assert min(r.train_loss for r in stuck.history) > 0.6  # ln 2 = 0.693 is chance
    assert _first(normed, 0.9) <= 35
    assert normed.history[-1].val_score > 0.95
    assert _first(normed, 0.9) < _first(adam, 0.9) <= 100


def test_batch_norm_figures():
    """The figures the batch-norm lesson quotes, including why the plain net is stuck."""
    stuck, normed, adam = _runs("batch_norm")
    _quote("batch_norm", "near 0.69", "below 65%", "at about epoch 30", "ends near 97%",
           "near epoch 70")
    assert all(r.train_loss > 0.66 for r in stuck.history)
    assert max(r.train_score for r in stuck.history) < 0.65
    assert _first(normed, 0.9) == pytest.approx(30, abs=5)
    assert normed.history[-1].val_score == pytest.approx(0.97, abs=0.015)
    assert _first(adam, 0.9) == pytest.approx(70, abs=8)
    _quote("batch_norm", "about 0.44 after layer 1 to 0.06 after layer 6",
           "hundreds of times smaller")
    spreads, grads = {}, {}
    for bn in (False, True):
        tr = Trainer(LESSONS["batch_norm"].config.replace(batch_norm=bn))  # fresh weights
        x, spreads[bn] = tr.x_train, []
        with torch.no_grad():
            for layer in tr.model_:
                x = layer(x)
                if isinstance(layer, torch.nn.ReLU):
                    spreads[bn].append(float(x.std()))
        torch.nn.functional.cross_entropy(tr.model_(tr.x_train), tr.y_train).backward()
        grads[bn] = float(tr._weights[0].grad.norm())
    assert spreads[False][0] == pytest.approx(0.44, abs=0.03)
    assert spreads[False][-1] == pytest.approx(0.06, abs=0.015)
    assert min(spreads[True]) > 0.5
    assert 100 < grads[True] / grads[False] < 1000


# ------------------------------------------------------------------ label smoothing
@pytest.mark.parametrize("seed", SEEDS)
def test_label_smoothing_caps_confidence_and_val_loss(seed):
    """Smoothing at 100: the typical point's confidence settles at 1 - eps/2, none near 100%,
    val loss falls, accuracy stays."""
    (run,) = _runs("label_smoothing", seed)
    before = _confidence(_partial("label_smoothing", 100, seed))
    after = _confidence(run)
    assert np.median(before) > 0.999
    # The median point: the few points tangled in the other moon sit lower, and a ReLU
    # net's confidence grows with distance from the boundary, so the outermost sit higher.
    assert np.median(after) == pytest.approx(1 - 0.1 / 2, abs=0.008)
    assert after.max() < 0.995
    assert _at(run, 150).val_loss < 0.5 * _at(run, 100).val_loss
    assert run.history[-1].val_score == pytest.approx(_at(run, 100).val_score, abs=0.06)


def test_label_smoothing_figures():
    """The figures the label-smoothing lesson quotes, on the page's seed."""
    (run,) = _runs("label_smoothing")
    before = _confidence(_partial("label_smoothing", 100))
    after = _confidence(run)
    _quote("label_smoothing", "99.99% sure of a typical training point",
           "validation loss is about 1.2", "about 87%", "drops to about 0.4",
           "(the median) has settled near 95%", "none is above 99%", "still about 85% (87% before)",
           "1 − ε/2 = 95%")
    assert np.median(before) > 0.9999
    assert _at(run, 100).val_loss == pytest.approx(1.2, abs=0.15)
    assert _at(run, 100).val_score == pytest.approx(0.87, abs=0.01)
    assert _at(run, 150).val_loss == pytest.approx(0.4, abs=0.06)
    assert np.median(after) == pytest.approx(0.95, abs=0.01)
    assert after.max() < 0.99
    # The last ten epochs' level: single epochs wobble by a point or two.
    assert np.mean([r.val_score for r in run.history[-10:]]) == pytest.approx(0.85, abs=0.015)


# ------------------------------------------------------------------ stochastic depth
@functools.cache
def _depth_runs(seed: int) -> tuple[Trainer, Trainer, Trainer]:
    """Plain, drop-path kept to the end (steps 1-2), drop-path switched off at 150 (step 3)."""
    lesson = LESSONS["stochastic_depth"]
    plain, kept = _runs("stochastic_depth", seed, upto=2)
    step2, step3 = lesson.steps[1], lesson.steps[2]
    off = Trainer(lesson.config_for(step2).replace(seed=seed))
    off.fit(step3.at_epoch)
    off.set_live(**step3.live)
    off.fit()
    return plain, kept, off


@pytest.mark.parametrize("seed", SEEDS)
def test_stochastic_depth_delays_and_shrinks_overfitting(seed):
    """Drop-path: the gap turns positive far later and ends far smaller; off again, it grows."""
    plain, kept, off = _depth_runs(seed)
    assert _gap_turns_positive(kept) > _gap_turns_positive(plain) + 25
    assert kept.history[-1].gap < 0.6 * plain.history[-1].gap
    assert kept.history[-1].val_loss < 0.7 * plain.history[-1].val_loss
    assert off.history[-1].gap > 1.8 * kept.history[-1].gap
    assert off.history[-1].train_score > kept.history[-1].train_score


def test_stochastic_depth_figures():
    """The figures the stochastic-depth lesson quotes, on the page's seed."""
    plain, kept, off = _depth_runs(0)
    _quote("stochastic_depth", "near epoch 60 (about 0.29)", "from about epoch 75",
           "it is about 0.9", "until about epoch 140", "ends near 0.15",
           "near 0.4 instead of 1.0", "about 91% and the gap about 0.6")
    assert plain.best_epoch == pytest.approx(60, abs=5)
    assert min(r.val_loss for r in plain.history) == pytest.approx(0.29, abs=0.01)
    assert _gap_turns_positive(plain) == pytest.approx(75, abs=10)
    assert plain.history[-1].gap == pytest.approx(0.9, abs=0.15)
    assert _gap_turns_positive(kept) == pytest.approx(140, abs=15)
    assert kept.history[-1].gap == pytest.approx(0.15, abs=0.06)
    assert kept.history[-1].val_loss == pytest.approx(0.4, abs=0.06)
    assert plain.history[-1].val_loss == pytest.approx(1.0, abs=0.1)
    # "around epoch 300": the deep net's training accuracy wobbles by a few points from
    # epoch to epoch once it memorises, so the figure is the last ten epochs' mean.
    last = off.history[-10:]
    assert np.mean([r.train_score for r in last]) == pytest.approx(0.91, abs=0.03)
    assert off.history[-1].gap == pytest.approx(0.6, abs=0.12)
    _quote("stochastic_depth", "block 6 is skipped half the time, block 1 a twelfth")
    rates = [m.p for m in kept.model_.modules() if isinstance(m, DropPath)]
    assert len(rates) == 6
    assert rates[-1] == pytest.approx(0.5) and rates[0] == pytest.approx(0.5 / 6)


# ------------------------------------------------------------------ combined
@pytest.mark.parametrize("seed", SEEDS)
def test_a_mild_mix_beats_none_and_a_strong_mix_underfits(seed):
    """Mild dropout+L2+jitter keeps accuracy; the same three turned up underfit."""
    plain, mild, strong = _runs("combined", seed)
    peak = max(r.val_score for r in plain.history[:100])
    assert plain.history[-1].val_score < peak - 0.08
    assert mild.history[-1].val_score > plain.history[-1].val_score + 0.08
    # 0.8: the plain run's final val loss varies a lot with the seed (0.35-0.73 on seeds
    # 0-5; the mild mix ends at 0.41-0.79 of it); the accuracy slide above is steadier.
    assert mild.history[-1].val_loss < 0.8 * plain.history[-1].val_loss
    assert strong.history[-1].val_loss > mild.history[-1].val_loss + 0.1
    assert strong.history[-1].val_score < mild.history[-1].val_score - 0.02
    assert strong.history[-1].train_loss > mild.history[-1].train_loss + 0.05  # cannot fit
    assert strong.history[-1].weight_norm < 2.5


def test_combined_figures():
    """The figures the combined lesson quotes, on the page's seed."""
    plain, mild, strong = _runs("combined")
    _quote("combined", "peaks near 93% around epoch 45", "ends near 81%",
           "around 88-95% from epoch 80 on", "ends near 92%", "near 0.30 instead of 0.73",
           "sinks to about 2", "ends near 0.47", "accuracy near 83%")
    peak = max(plain.history, key=lambda r: r.val_score)
    assert peak.val_score == pytest.approx(0.93, abs=0.01)
    assert peak.epoch == pytest.approx(45, abs=5)
    assert plain.history[-1].val_score == pytest.approx(0.81, abs=0.02)
    assert all(0.87 <= r.val_score <= 0.955 for r in mild.history[79:])
    assert mild.history[-1].val_score == pytest.approx(0.92, abs=0.01)
    assert mild.history[-1].val_loss == pytest.approx(0.30, abs=0.02)
    assert plain.history[-1].val_loss == pytest.approx(0.73, abs=0.05)
    assert strong.history[-1].weight_norm == pytest.approx(2, abs=0.3)
    assert strong.history[-1].val_loss == pytest.approx(0.47, abs=0.03)
    assert strong.history[-1].val_score == pytest.approx(0.83, abs=0.015)


def test_no_lesson_run_diverged():
    """Every cached lesson run ended cleanly (a NaN would make every figure meaningless)."""
    for runs in [_runs(key) for key in LESSONS]:
        assert all(not tr.diverged and math.isfinite(tr.history[-1].val_loss) for tr in runs)
