"""Every preset is a valid classroom scenario, and its regularizer visibly works."""

import pytest

from regdemo.engine import Trainer
from regdemo.presets import DEFAULT_PRESET, PRESETS

REQUIRED = {"none", "dropout", "l2", "l1", "early_stopping", "augment", "label_smoothing",
            "n_train"}


def test_presets_cover_every_required_technique():
    """At least 8 presets: a plain overfit and one per named technique."""
    assert len(PRESETS) >= 8
    assert REQUIRED <= {p.regularizer for p in PRESETS.values()}
    assert DEFAULT_PRESET in PRESETS


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_text_and_baseline(name):
    """Each preset explains what to watch, and its baseline really removes the regularizer."""
    preset = PRESETS[name]
    assert preset.title and preset.watch.count(".") >= 2
    if preset.regularizer == "none":
        assert preset.baseline == {}
    else:
        assert preset.without_regularizer() != preset.config


@pytest.mark.parametrize("name", [n for n, p in PRESETS.items() if p.regularizer != "none"])
def test_preset_regularizer_shrinks_the_gap(name):
    """Final train/val gap with the preset's regularizer is below the gap without it."""
    preset = PRESETS[name]
    with_reg, without = Trainer(preset.config), Trainer(preset.without_regularizer())
    with_reg.fit()
    without.fit()
    assert with_reg.summary()["gap"] < without.summary()["gap"]


def test_overfit_preset_overfits():
    """The no-regularization preset's val loss ends far above its best, while its training
    loss nears zero (a fifth of its labels are wrong, so it cannot reach 0.01 in 600
    epochs on every seed; tests/test_scenarios.py checks its caption on seeds 0-5)."""
    tr = Trainer(PRESETS["overfit"].config)
    tr.fit()
    s = tr.summary()
    assert s["val_loss"] > 3 * s["best_val_loss"]
    assert s["train_loss"] < 0.1
