"""Named classroom scenarios: a Config, what to watch for, and the knob that regularizes it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from regdemo.config import Config


@dataclass(frozen=True)
class Preset:
    """A scenario. `baseline` lists the changes that take its regularizer away."""

    title: str
    config: Config
    watch: str  # two sentences: what to look at while it trains
    regularizer: str  # the technique the preset shows ("none" for the plain overfit)
    baseline: dict[str, Any] = field(default_factory=dict)

    def without_regularizer(self) -> Config:
        """The same scenario with its regularizer removed (the comparison run)."""
        return self.config.replace(**self.baseline)


# The shared overfitting scenario: a 128-128 net memorises 40 noisy moon points.
_OVERFIT = Config(dataset="moons", n_train=40, n_val=400, noise=0.3, hidden=(128, 128),
                  optimizer="adam", lr=0.005, epochs=400)

PRESETS: dict[str, Preset] = {
    "overfit": Preset(
        "Big net, 40 points (no regularization)",
        _OVERFIT,
        "Training loss falls towards zero while validation loss bottoms out within the first "
        "few epochs and then climbs for the rest of the run. The decision boundary curls "
        "around single points: that is memorisation, not learning.",
        regularizer="none",
    ),
    "l2": Preset(
        "L2 penalty smooths the boundary",
        _OVERFIT.replace(l2=0.01),
        "With an L2 penalty the weight norm stays small and the boundary stays smooth, so "
        "validation loss stops climbing. Set L2 to 0 mid-run and watch the gap open again.",
        regularizer="l2",
        baseline={"l2": 0.0},
    ),
    "weight_decay": Preset(
        "Decoupled weight decay (AdamW)",
        _OVERFIT.replace(optimizer="adamw", weight_decay=3.0),
        "AdamW shrinks every weight by lr x decay each step, outside Adam's scaling, so it "
        "acts differently from an L2 penalty under Adam. Compare the weight-norm curve with "
        "the L2 preset.",
        regularizer="weight_decay",
        baseline={"weight_decay": 0.0},
    ),
    "dropout": Preset(
        "Dropout rescues noisy labels",
        Config(dataset="moons", n_train=60, n_val=400, noise=0.2, label_noise=0.2,
               hidden=(128, 128), optimizer="adam", lr=0.003, epochs=600, dropout=0.5),
        "A fifth of the training labels are wrong. With dropout 0.5 the net cannot memorise "
        "them and validation accuracy stays high; drop it to 0 mid-run and the gap explodes.",
        regularizer="dropout",
        baseline={"dropout": 0.0},
    ),
    "l1_features": Preset(
        "L1 picks the 5 real features out of 40",
        Config(dataset="sparse", n_train=50, n_val=400, noise=0.0, hidden=(32,),
               optimizer="adam", lr=0.01, epochs=500, l1=0.01),
        "Only the first 5 of 40 inputs carry signal. L1's soft-threshold step drives the "
        "other weights to exact zeros: watch sparsity climb and the feature bars vanish.",
        regularizer="l1",
        baseline={"l1": 0.0},
    ),
    "early_stopping": Preset(
        "Early stopping keeps the best epoch",
        _OVERFIT.replace(early_stopping=True, patience=50, restore_best=True),
        "Validation loss is lowest early; early stopping waits `patience` epochs for a new "
        "best, then stops and restores the best weights. The shaded window is the patience.",
        regularizer="early_stopping",
        baseline={"early_stopping": False},
    ),
    "augment": Preset(
        "Input jitter: new points for free",
        _OVERFIT.replace(augment="jitter", augment_strength=0.5),
        "Each epoch sees every training point nudged by Gaussian noise (the ghost points), so "
        "the net cannot carve a region around one point. The gap stays a fraction of the "
        "overfit preset's.",
        regularizer="augment",
        baseline={"augment": "none"},
    ),
    "digits_shift": Preset(
        "Digits: shifted images",
        Config(dataset="digits", n_train=100, n_val=500, noise=0.0, hidden=(128,),
               optimizer="adam", lr=0.003, batch_size=32, epochs=200, augment="shift",
               augment_strength=0.5),
        "100 handwritten digits, each shown shifted by up to a pixel every epoch, so the "
        "net cannot memorise exact pixels: the gap between training and validation loss "
        "stays smaller. An MLP sees pixels, not shapes, so shifts do not buy it accuracy "
        "(the digits lesson shows pixel noise doing better); try arch = cnn.",
        regularizer="augment",
        baseline={"augment": "none"},
    ),
    "label_smoothing": Preset(
        "Label smoothing tames over-confidence",
        _OVERFIT.replace(label_smoothing=0.1),
        "Without smoothing the net drives its logits to infinity on every training point and "
        "validation loss explodes on the points it gets wrong. Smoothing caps the confidence "
        "it aims for at 1 - epsilon/2.",
        regularizer="label_smoothing",
        baseline={"label_smoothing": 0.0},
    ),
    "stochastic_depth": Preset(
        "Stochastic depth in a deep residual net",
        Config(dataset="moons", n_train=60, n_val=400, noise=0.2, label_noise=0.2,
               residual=True, hidden=(64,) * 6, optimizer="adam", lr=0.003, epochs=400,
               stochastic_depth=0.5),
        "Six residual blocks; in training each is skipped at random, deeper ones more often, "
        "so the net behaves like an ensemble of shallower ones. The training curve gets "
        "noisier and the gap on these noisy labels shrinks.",
        regularizer="stochastic_depth",
        baseline={"stochastic_depth": 0.0},
    ),
    "more_data": Preset(
        "Capacity vs data: 400 points instead of 40",
        _OVERFIT.replace(n_train=400),
        "The same big net, ten times the data: the gap closes because the net can no longer "
        "memorise every point. Drop n_train back to 40 and start again to see it overfit.",
        regularizer="n_train",
        baseline={"n_train": 40},
    ),
    "sine_wiggle": Preset(
        "1-D regression: the wiggly fit",
        Config(dataset="sine", n_train=15, n_val=200, noise=0.3, hidden=(128, 128),
               optimizer="adam", lr=0.01, epochs=1500, l2=0.003),
        "Fifteen noisy samples of a sine. Without a penalty the curve bends through every "
        "point; with L2 it follows the sine. Set L2 to 0 mid-run and watch it wiggle.",
        regularizer="l2",
        baseline={"l2": 0.0},
    ),
    "double_descent": Preset(
        "Double descent: sweep the width",
        Config(dataset="sine", n_train=20, n_val=400, noise=0.5, hidden=(32,),
               activation="tanh", optimizer="adam", lr=0.01, epochs=3000, seed=1),
        "Twenty very noisy sine points and one tanh layer of 32 units, no regularization: "
        "the curve bends through the noise and validation loss climbs. Sweep the width "
        "(python -m regdemo sweep --preset double_descent --knob width --from 1 --to 512 "
        "--log --seeds 5): validation loss rises to a peak around 16-64 units, where the net "
        "fits the training noise most closely, then falls again for the widest nets.",
        regularizer="none",
    ),
}

DEFAULT_PRESET = "overfit"
