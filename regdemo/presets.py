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


# The shared overfitting scenario: a 128-128 net and 100 noisy moon points, a fifth of them
# with the wrong label. The wrong labels sit among points of the other class, so a net that
# memorises must curl its boundary around single points: memorisation shows in the data
# view, not only in the loss curves. 600 epochs: 12 s at the page's default 50 epochs/s.
# Every caption's claims are checked on seeds 0-5 by tests/test_scenarios.py.
_OVERFIT = Config(dataset="moons", n_train=100, n_val=400, noise=0.2, label_noise=0.2,
                  hidden=(128, 128), optimizer="adam", lr=0.005, epochs=600)

PRESETS: dict[str, Preset] = {
    "overfit": Preset(
        "Big net, 100 noisy points (no regularization)",
        _OVERFIT,
        "A fifth of the 100 training labels are wrong. Training loss falls towards zero "
        "while validation loss bottoms out early (within the first 100 epochs) and then "
        "climbs for the rest of the run. The boundary curls around single points to give "
        "the wrong labels pockets of their own: that is memorisation, not learning.",
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
        "AdamW shrinks every weight by lr x decay (here 1.5%) each step, outside Adam's "
        "scaling, so it acts differently from an L2 penalty under Adam: compare the "
        "weight-norm curve with the L2 preset's. The weight norm levels off at a third of "
        "the unregularized run's and validation loss stays flat.",
        regularizer="weight_decay",
        baseline={"weight_decay": 0.0},
    ),
    "dropout": Preset(
        "Dropout rescues noisy labels",
        _OVERFIT.replace(dropout=0.5, lr=0.003),
        "A fifth of the training labels are wrong. With dropout 0.5 the net learns far "
        "fewer of them than without it, and validation loss stays flat instead of "
        "climbing. Drop it to 0 mid-run and the gap opens as the net memorises the wrong "
        "labels.",
        regularizer="dropout",
        baseline={"dropout": 0.0},
    ),
    "l1_features": Preset(
        "L1 finds the 5 real features among 40",
        Config(dataset="sparse", n_train=400, n_val=400, noise=0.0, hidden=(32,),
               optimizer="adam", lr=0.003, epochs=500, l1=0.03),
        "Only the first 5 of 40 inputs carry signal. L1's soft-threshold step drives most "
        "weights to exact zeros: watch sparsity climb past 95%, the bars of the 35 noise "
        "inputs vanish and the 5 real ones stay the tallest.",
        regularizer="l1",
        baseline={"l1": 0.0},
    ),
    "early_stopping": Preset(
        "Early stopping keeps the best epoch",
        _OVERFIT.replace(early_stopping=True, patience=50, restore_best=True),
        "Validation loss is lowest early (within the first 100 epochs); early stopping "
        "waits `patience` epochs for a new best, then stops and restores the best weights. "
        "The shaded window is the patience.",
        regularizer="early_stopping",
        baseline={"early_stopping": False},
    ),
    "augment": Preset(
        "Input jitter: new points for free",
        _OVERFIT.replace(augment="jitter", augment_strength=1.0),
        "Each epoch sees every training point nudged by Gaussian noise (the ghost points, "
        "drawn well apart from their originals), so the net cannot carve a region around "
        "one point. The gap stays a fraction of the overfit preset's.",
        regularizer="augment",
        baseline={"augment": "none"},
    ),
    # The key keeps its old name so saved links still open this preset. Random shifts were
    # dropped: with an MLP they did not shrink the gap on every seed (it sees pixels, not
    # shapes); pixel noise does.
    "digits_shift": Preset(
        "Digits: noisy pixels",
        Config(dataset="digits", n_train=100, n_val=500, noise=0.0, hidden=(128,),
               optimizer="adam", lr=0.01, epochs=600, augment="pixel_noise",
               augment_strength=1.0),
        "100 handwritten digits, each seen with fresh pixel noise every epoch, so the net "
        "cannot memorise exact pixels: training loss stays higher and the gap between "
        "training and validation loss stays smaller than without the noise. The digits "
        "lesson compares it with random shifts.",
        regularizer="augment",
        baseline={"augment": "none"},
    ),
    "label_smoothing": Preset(
        "Label smoothing tames over-confidence",
        _OVERFIT.replace(label_smoothing=0.1),
        "Without smoothing the net drives its logits ever higher: the typical training "
        "point ends above 99.5% confidence, and validation loss explodes on the points it "
        "gets wrong. Smoothing aims for 1 - epsilon/2 = 95% instead: the typical training "
        "point stays near that, and the loss on wrong validation points stays far lower.",
        regularizer="label_smoothing",
        baseline={"label_smoothing": 0.0},
    ),
    "stochastic_depth": Preset(
        "Stochastic depth in a deep residual net",
        _OVERFIT.replace(residual=True, hidden=(32,) * 6, lr=0.001, stochastic_depth=0.9),
        "Six residual blocks; in training each is skipped at random, deeper ones more often "
        "(the last 90% of the time), so a training point passes through about 3 of them. "
        "The training curve gets noisier, and on these noisy labels validation loss stays "
        "flat, while without stochastic depth it climbs.",
        regularizer="stochastic_depth",
        baseline={"stochastic_depth": 0.0},
    ),
    "more_data": Preset(
        "Capacity vs data: 1000 points instead of 100",
        _OVERFIT.replace(n_train=1000),
        "The same big net, ten times the data: the gap closes because the net can no "
        "longer memorise every point (it learns few of the wrong labels). Drop n_train "
        "back to 100 and start again to see it overfit.",
        regularizer="n_train",
        baseline={"n_train": _OVERFIT.n_train},
    ),
    "max_norm": Preset(
        "Max-norm lets dropout take a big step",
        Config(dataset="moons", n_train=100, n_val=400, noise=0.2, hidden=(64, 64),
               dropout=0.5, optimizer="momentum", lr=1.5, epochs=300, max_norm=1.0),
        "Dropout 0.5 with SGD and momentum at learning rate 1.5, three times what trains "
        "this net well. Max-norm caps each hidden unit's incoming weights at length 1 after "
        "every step, so the big steps cannot inflate them: validation loss ends near 0.3. "
        "Set max-norm to 0 and start again: it ends higher, often far higher, and the "
        "weights may blow up.",
        regularizer="max_norm",
        baseline={"max_norm": 0.0},
    ),
    "sine_wiggle": Preset(
        "1-D regression: the wiggly fit",
        Config(dataset="sine", n_train=15, n_val=200, noise=0.3, hidden=(128, 128),
               activation="tanh", optimizer="adam", lr=0.01, epochs=1500, l2=0.01),
        "Fifteen noisy samples of a sine. Without a penalty the curve bends through the "
        "points and wiggles between them; with L2 it follows the sine's two turns. Set L2 "
        "to 0 mid-run and watch it wiggle.",
        regularizer="l2",
        baseline={"l2": 0.0},
    ),
    "double_descent": Preset(
        "Double descent: sweep the width",
        Config(dataset="sine", n_train=20, n_val=400, noise=0.5, hidden=(32,),
               activation="tanh", optimizer="adam", lr=0.03, epochs=2000, seed=1),
        "Twenty very noisy sine points and one tanh layer of 32 units, no regularization: "
        "the curve bends through the noise and validation loss climbs. Then open the Sweep "
        "tab, pick knob width from 1 to 512 with log steps, 5 seeds and 2000 epochs per "
        "run: validation loss is lowest for the narrowest nets, peaks in the middle of the "
        "range and falls again for the widest (512 units). (Command line: python -m "
        "regdemo sweep --preset double_descent --knob width --from 1 --to 512 --log "
        "--seeds 5.)",
        regularizer="none",
    ),
}

DEFAULT_PRESET = "overfit"
