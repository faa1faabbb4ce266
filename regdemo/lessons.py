"""Guided lessons: a scenario, a prediction to make, steps to take, and what it showed.

Every number a lesson quotes is what its fixed-seed run shows on the charts, and
tests/test_lessons.py checks each one, so a change to the engine that moves a curve fails
a test instead of quietly making a lesson wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from regdemo.config import Config

TECHNIQUES = ("overfitting", "l2", "weight_decay", "l1", "dropout", "early_stopping",
              "augmentation", "batch_norm", "label_smoothing", "stochastic_depth", "combined")


@dataclass(frozen=True)
class Step:
    """One numbered step; "Do it for me" starts `train`/`restart` runs, then applies `live`."""

    text: str  # what to do and what to watch, in plain words
    live: dict[str, Any] = field(default_factory=dict)  # set_live on the running run
    restart: dict[str, Any] = field(default_factory=dict)  # new run: lesson.config_for(step)
    train: bool = False  # start a run of the lesson's own config
    at_epoch: int | None = None  # the step is meant for this epoch of the current run


@dataclass(frozen=True)
class Lesson:
    """A guided experiment with a fixed seed, so every student sees the same curves."""

    key: str
    title: str
    techniques: tuple[str, ...]  # from TECHNIQUES
    config: Config  # the starting scenario
    goal: str  # one sentence: what you'll see
    question: str  # a prediction to make before acting
    steps: tuple[Step, ...]  # 3-5 numbered steps
    reveal: str  # what happened and why
    speed: int | str = 50  # epochs/s the lesson opens with (a classroom.SPEEDS value)

    def config_for(self, step: Step) -> Config:
        """The config a step's new run starts from: the lesson's, with `restart` applied.

        Restarts do not inherit earlier live changes, so each restart dict is complete.
        """
        return self.config.replace(**step.restart)


# Shared scenarios, small enough to play in seconds at the page's speed.
# 40 noisy moon points and a 128-128 net (17,000 weights): memorised within about 50
# epochs (lr 0.01: at 0.005 a few points tangled in the other moon took up to 110).
_MOONS_40 = Config(dataset="moons", n_train=40, n_val=400, noise=0.3, hidden=(128, 128),
                   optimizer="adam", lr=0.01, epochs=300)
# 100 moon points with a fifth of the labels flipped (18 with seed 0): memorising them
# costs accuracy, not just loss, so the damage is easy to read.
_NOISY_100 = Config(dataset="moons", n_train=100, n_val=400, noise=0.2, label_noise=0.2,
                    hidden=(128, 128), optimizer="adam", lr=0.003, epochs=300)

_LESSONS = (
    Lesson(
        key="overfit_capacity",
        title="Overfitting: a big net and 40 points",
        techniques=("overfitting",),
        config=_MOONS_40,
        goal="Watch a big network memorise 40 noisy points, then see what ten times the data "
             "or a much smaller network changes.",
        question="The net gets every training point right within about 50 epochs. What will "
                 "the validation loss do during the 250 epochs after that?",
        steps=(
            Step("Press Train. Within about 50 epochs training accuracy reaches 100% and "
                 "training loss heads for 0. Validation loss is lowest around epoch 22 (about "
                 "0.31), then climbs all run long, to about 2.3 by epoch 300, while validation "
                 "accuracy sits near 85%.", train=True),
            Step("Start again with 400 training points instead of 40, same net. The gap at "
                 "epoch 300 is about 0.3 instead of 2.3, and validation accuracy rises to "
                 "about 88%.", restart={"n_train": 400}),
            Step("Start again with 40 points, but one hidden layer of 8 units. Its weight norm "
                 "stays near 5 (the big net's is about 31), training accuracy stays near 88%: "
                 "it cannot even get all 40 points right, and the gap ends near 0.07.",
                 restart={"hidden": (8,)}),
        ),
        reveal="A net with 17,000 weights can store 40 points outright, so a training loss "
               "near 0 tells you nothing. Validation loss climbs although validation accuracy "
               "hardly moves: the net grows ever more certain, so the points it gets wrong "
               "cost more and more. With ten times the data, memorising every point is "
               "harder than learning the moon shape; 8 units have no room to memorise at "
               "all, so they learn the shape and leave the tangled points wrong.",
    ),
    Lesson(
        key="overfit_label_noise",
        title="Overfitting: memorising wrong labels",
        techniques=("overfitting",),
        config=_NOISY_100,
        goal="See a network learn the true pattern first and memorise the wrong labels later.",
        question="18 of the 100 training labels are wrong. Will the net end up agreeing with "
                 "them, and what happens to validation accuracy if it does?",
        steps=(
            Step("Press Train. Up to about epoch 50 validation accuracy climbs to about 93% "
                 "while training accuracy stays near 80%: the net fits the moons and ignores "
                 "the wrong labels. The gap is negative, because the training loss counts "
                 "those wrong labels.", train=True),
            Step("Keep watching to epoch 300. Training accuracy climbs to about 97%, so the "
                 "net now agrees with most of the wrong labels (16 of 18), and validation "
                 "accuracy sinks to about 81%. The boundary grows islands around single "
                 "points.", at_epoch=300),
            Step("Start again with clean labels. Validation accuracy holds near 95% from epoch "
                 "50 on. "
                 "Validation loss still creeps up (from about 0.15 to 0.38): the net still "
                 "grows overconfident, but now that costs no accuracy.",
                 restart={"label_noise": 0.0}),
        ),
        reveal="Networks learn the broad pattern first, because the many correct points all "
               "push the same way; each wrong label pulls alone and gets learned late, by "
               "bending the boundary around it. So the damage shows up as a slow slide in "
               "validation accuracy after an early peak, and stopping near the peak, or making "
               "memorising harder, pays off most when labels are noisy.",
    ),
    Lesson(
        key="l2",
        title="L2: a price on big weights",
        techniques=("l2",),
        config=_MOONS_40,
        goal="Turn an L2 penalty on and off in the middle of an overfitting run and watch the "
             "weight norm and the gap follow it.",
        question="By epoch 100 the net has memorised its 40 points. If you add an L2 penalty "
                 "now, can the gap still shrink, or is the damage done?",
        steps=(
            Step("Press Train and let it overfit: by epoch 100 the weight norm is about 25 "
                 "and the gap about 1.2.", train=True),
            Step("At epoch 100 set L2 to 0.01. Within 50 epochs the weight norm falls to "
                 "about 7 and the gap to about 0.1, and the boundary smooths out. Training "
                 "accuracy drops to about 92%: the 3 points that sit among the other moon "
                 "needed sharp turns, and L2 gives them up.", live={"l2": 0.01}, at_epoch=100),
            Step("At epoch 200 set L2 back to 0. The weights grow again (norm about 16 by "
                 "epoch 300), training accuracy is back to 100% and the gap reopens to about "
                 "1.0.", live={"l2": 0.0}, at_epoch=200),
        ),
        reveal="L2 adds λ/2·Σw² to the loss, so every weight pays rent and only the weights "
               "the data really needs stay large. Small weights make a gentler function: the "
               "net can no longer make the sharp, confident turns that wrapped single points, "
               "so its wrong validation answers cost less. The penalty works only while it is "
               "on: take it away and the net goes back to memorising.",
    ),
    Lesson(
        key="weight_decay_adamw",
        title="Weight decay: AdamW is not Adam + L2",
        techniques=("weight_decay",),
        config=_MOONS_40.replace(optimizer="adamw", weight_decay=0.01),
        goal="See that one weight-decay number means very different things under AdamW "
             "(decoupled) and Adam (coupled, which is L2).",
        question="PyTorch's AdamW uses weight decay 0.01 by default. Will that keep this big "
                 "net from overfitting its 40 points?",
        steps=(
            Step("Press Train (AdamW, weight decay 0.01). By epoch 100 it looks just like no "
                 "regularization: weight norm about 25, gap about 1.2.", train=True),
            Step("At epoch 100 set weight decay to 5. Every step now shrinks every weight by "
                 "lr × 5 = 5%: by epoch 300 the norm is down to about 10 and the gap to about "
                 "0.05.", live={"weight_decay": 5.0}, at_epoch=100),
            Step("Start again with plain Adam and weight decay 0.01. Adam adds the decay to "
                 "the gradient (exactly an L2 penalty of 0.01), and this small number bites "
                 "from the start: norm about 5, gap about 0.1.",
                 restart={"optimizer": "adam", "weight_decay": 0.01}),
        ),
        reveal="AdamW shrinks each weight directly, w ← w − lr·λ·w, next to Adam's step: at "
               "lr 0.01 a decay of 0.01 removes 0.01% per step, about 3% over the whole "
               "run. Adam's weight decay instead adds λ·w to the gradient, which Adam then "
               "divides by the gradient's running size, so the pull is strong on weights the "
               "data barely uses and weak on the ones it pushes hard. Here the two need "
               "values hundreds of times apart to act alike: settings do not transfer.",
    ),
    Lesson(
        key="l1_sparsity",
        title="L1: exact zeros pick the features",
        techniques=("l1",),
        config=Config(dataset="sparse", n_train=100, n_val=400, noise=0.0, hidden=(32,),
                      optimizer="adam", lr=0.003, epochs=300),
        goal="Watch an L1 penalty switch off the inputs that carry no signal, with exact zeros.",
        question="Only 5 of the 40 inputs (x0 to x4) carry signal. When you add an L1 "
                 "penalty, will the weights on the other 35 just get small, or exactly zero?",
        steps=(
            Step("Press Train. With no penalty the net fits all 100 training points within "
                 "about 30 epochs, using all 40 inputs; validation accuracy stalls near 84% "
                 "and sparsity is 0%.", train=True),
            Step("At epoch 100 set L1 to 0.04. Within 50 epochs sparsity jumps past 90% and "
                 "validation accuracy to about 89%.", live={"l1": 0.04}, at_epoch=100),
            Step("Look at the feature bars: only about 6 of the 40 inputs keep any weight, "
                 "all five of x0 to x4 among them, with over 95% of the weight. Training "
                 "accuracy drops to about 96%: the points only the noise inputs could explain "
                 "are given up.", at_epoch=300),
            Step("Start again with L2 = 0.01 instead of L1. Validation accuracy improves too "
                 "(to about 87%), but all 40 bars stay: the noise inputs shrink, none reaches "
                 "zero.", restart={"l2": 0.01}),
        ),
        reveal="L1 charges λ·|w|: the same price for the last bit of a weight as for the "
               "first, so a weight that does not earn at least that much is set to exactly "
               "zero (here by a soft-threshold step after each update). L2's price λ·w fades "
               "as the weight gets small, so it shrinks weights without finishing the job. "
               "With 35 useless inputs and only 100 points, cutting them off is what turns "
               "84% into 89% (no net can do much better here: the classes overlap, so about "
               "93% is the ceiling).",
    ),
    Lesson(
        key="dropout",
        title="Dropout: no unit can memorise alone",
        techniques=("dropout",),
        config=_NOISY_100,
        goal="Switch dropout on in a run that is memorising wrong labels and watch it let go "
             "of them.",
        question="By epoch 150 the net has started memorising the 18 wrong labels. If you "
                 "switch dropout on now, will training accuracy go up or down?",
        steps=(
            Step("Press Train. By epoch 150 training accuracy is about 89% and rising (the "
                 "net agrees with 11 of the 18 wrong labels), while validation accuracy has "
                 "slid from its peak of about 93% to about 85%.", train=True),
            Step("At epoch 150 set dropout to 0.5. By epoch 200 training accuracy has fallen "
                 "to about 80%, and validation accuracy recovers: the run ends near 89% "
                 "(without dropout it ends near 81%).",
                 live={"dropout": 0.5}, at_epoch=150),
            Step("Start again with dropout 0.5 from the first epoch. Training accuracy stays "
                 "near 80% all run and validation accuracy ends near 89%.",
                 restart={"dropout": 0.5}),
        ),
        reveal="Dropout switches off half of the hidden units at random on every step, so no "
               "single unit can be relied on, and memorising one odd point needs a precise "
               "combination of units that rarely survives. The moon shape is carried by many "
               "units at once, so it survives. Training accuracy near 80% is the good sign "
               "here: 18 of the 100 labels are wrong, and at the end the net agrees with "
               "only 5 of the 18 instead of 16.",
    ),
    Lesson(
        key="early_stopping",
        title="Early stopping: keep the best epoch",
        techniques=("early_stopping",),
        config=_NOISY_100,
        goal="Let the validation loss decide when to stop, and see how patience changes "
             "where you end up.",
        question="Validation loss is lowest near epoch 60 and climbs after that. With patience "
                 "50, at which epoch will the run stop, and whose weights will it keep?",
        steps=(
            Step("Press Train, early stopping off. Validation loss bottoms out near epoch 60 "
                 "(about 0.28, validation accuracy about 92%), then climbs to about 0.73 by "
                 "epoch 300, where accuracy is down to about 81%.", train=True),
            Step("Start again with early stopping on, patience 50. The run stops near epoch "
                 "110, 50 epochs after the best one, and restores that best epoch's weights: "
                 "validation accuracy about 92%.",
                 restart={"early_stopping": True, "patience": 50}),
            Step("Start again with patience 5. It stops near epoch 13 and keeps epoch 8: a "
                 "short early plateau was taken for the end (validation loss about 0.36, "
                 "accuracy about 83%).", restart={"early_stopping": True, "patience": 5}),
        ),
        reveal="Early stopping treats the number of epochs as a setting chosen on validation "
               "data: it remembers the best weights and quits once validation loss has not "
               "improved for `patience` epochs. Patience trades wasted epochs against "
               "stopping on a temporary plateau, and 5 is too little for curves this noisy. "
               "Because the validation set picked the epoch, an unbiased final score needs a "
               "third, untouched test set.",
    ),
    Lesson(
        key="augment_jitter",
        title="Augmentation: jittered copies of 40 points",
        techniques=("augmentation",),
        config=_MOONS_40,
        goal="Turn on input jitter in the middle of an overfitting run and watch the "
             "memorised islands melt.",
        question="Jitter moves every training point by fresh random noise each epoch. Can it "
                 "undo overfitting that has already happened, or only prevent it?",
        steps=(
            Step("Press Train and let it overfit: the gap is about 1.2 by epoch 100.",
                 train=True),
            Step("At epoch 100 set augmentation to jitter, strength 0.5 (noise of a quarter "
                 "of a feature's spread); the ghost points are the noisy copies. By epoch 200 "
                 "the gap is down to about 0.12.",
                 live={"augment": "jitter", "augment_strength": 0.5}, at_epoch=100),
            Step("At epoch 200 raise the strength to 0.7. By epoch 300 the gap is about 0.04 "
                 "and validation loss about 0.32, back to the lowest the plain run ever "
                 "reached (0.31, near epoch 22).", live={"augment_strength": 0.7},
                 at_epoch=200),
        ),
        reveal="Every epoch the net sees new points near the old ones with the same labels, so "
               "a whole region around each point must get that label: the little islands "
               "around single points cannot survive. It turns an assumption about the data "
               "(nearby points share a class) into extra training examples. Too much jitter "
               "would blur the two moons into each other, so the strength is a setting to "
               "tune like any other.",
    ),
    Lesson(
        key="augment_digits",
        title="Augmentation on images: noisy and shifted digits",
        speed=20,  # slow enough to watch the augmented digits change from epoch to epoch
        techniques=("augmentation",),
        config=Config(dataset="digits", n_train=150, n_val=500, noise=0.0, hidden=(128,),
                      optimizer="adam", lr=0.005, epochs=300),
        goal="Compare two image augmentations on 150 handwritten digits, and see that an "
             "augmentation is an assumption that can be wrong for the model.",
        question="Which will help a network trained on 150 digits more: random pixel noise, "
                 "or shifting each digit by up to two pixels?",
        steps=(
            Step("Press Train. Training accuracy hits 100% by epoch 22; validation loss is "
                 "lowest near epoch 60 (about 0.17) and creeps up to 0.20, with validation "
                 "accuracy about 94%.", train=True),
            Step("Start again with pixel noise, strength 1. Training needs twice as long to "
                 "reach 100% (about epoch 45), and validation ends better: loss about 0.14, "
                 "accuracy about 95%.",
                 restart={"augment": "pixel_noise", "augment_strength": 1.0}),
            Step("Start again with shifts of up to 2 pixels. The net cannot fit the moving "
                 "digits in 300 epochs, and validation ends worse than with no augmentation "
                 "at all: loss about 0.31, accuracy about 90%.",
                 restart={"augment": "shift", "augment_strength": 1.0}),
        ),
        reveal="An augmentation says which changes leave the label alone. Pixel noise fits "
               "these scans: a digit with a few smudged pixels is the same digit, so the net "
               "learns to rely on strokes rather than single pixels. A two-pixel shift moves "
               "an 8×8 digit by a quarter of its width, and this network sees pixels as "
               "unrelated inputs with no idea of neighbours, so shifting makes the task "
               "harder faster than it makes the net more general.",
    ),
    Lesson(
        key="batch_norm",
        title="Batch norm: a deep net that would not train",
        techniques=("batch_norm",),
        config=Config(dataset="spiral", n_train=300, n_val=400, noise=0.1, hidden=(32,) * 6,
                      optimizer="momentum", lr=0.03, epochs=150),
        goal="See batch normalization turn a six-layer net stuck at chance into one that "
             "learns the spiral in about 30 epochs.",
        question="This six-layer net starts at chance level (loss 0.69 for two classes). Will "
                 "SGD with momentum get it to learn the spiral in 150 epochs?",
        steps=(
            Step("Press Train. The loss sits near 0.69 and training accuracy stays below 65% "
                 "for all 150 epochs: the net is stuck.", train=True),
            Step("Start again with batch norm on. Training accuracy passes 90% at about epoch "
                 "30 and validation accuracy ends near 97%.", restart={"batch_norm": True}),
            Step("Start again without batch norm but with Adam (lr 0.01). It escapes too, "
                 "more slowly: 90% training accuracy only near epoch 70.",
                 restart={"optimizer": "adam", "lr": 0.01}),
        ),
        reveal="With PyTorch's default initialization each layer here shrinks its input: the "
               "activations' spread falls from about 0.44 after layer 1 to 0.06 after layer "
               "6, and the first layer's gradient is hundreds of times smaller than with "
               "batch norm. Batch norm rescales every layer's output to zero mean and unit "
               "spread over the batch, so signal and gradient arrive at full strength; Adam "
               "instead enlarges small gradients by dividing by their running size. Batch "
               "norm's regularizing side effect (noise from batch statistics) plays no part "
               "here: this lesson trains on the full batch.",
    ),
    Lesson(
        key="label_smoothing",
        title="Label smoothing: never 100% sure",
        techniques=("label_smoothing",),
        config=_MOONS_40,
        goal="See label smoothing cap the network's confidence and pull the exploding "
             "validation loss back down.",
        question="By epoch 100 the net is 99.99% sure of a typical training point. If you set "
                 "label smoothing to 0.1, how sure will it end up, and will validation "
                 "accuracy change?",
        steps=(
            Step("Press Train. By epoch 100 the boundary map is solid colour, validation loss "
                 "is about 1.2 and validation accuracy about 87%.", train=True),
            Step("At epoch 100 set label smoothing to 0.1. Within 50 epochs validation loss "
                 "drops to about 0.4, and the colours near the boundary soften.",
                 live={"label_smoothing": 0.1}, at_epoch=100),
            Step("By epoch 300 the net's confidence on a typical training point (the median) "
                 "has settled near 95%, none is above 99% (the few points tangled in the other "
                 "moon stay less sure), and validation accuracy is still about 85% (87% before).",
                 at_epoch=300),
        ),
        reveal="With smoothing ε the target for the true class is no longer 100% but "
               "1 − ε/2 = 95% (the other 5% goes to the other class), so pushing the logits "
               "further stops paying. Validation loss was huge only because the net was "
               "extremely sure on the validation points it gets wrong; capping confidence "
               "removes that cost without moving the boundary much, so accuracy stays put.",
    ),
    Lesson(
        key="stochastic_depth",
        title="Stochastic depth: skipping whole blocks",
        techniques=("stochastic_depth",),
        config=Config(dataset="moons", n_train=100, n_val=400, noise=0.2, label_noise=0.2,
                      residual=True, hidden=(64,) * 6, optimizer="adam", lr=0.002, epochs=300),
        goal="See randomly skipped residual blocks hold off memorisation in a deep network.",
        question="Six residual blocks, a fifth of the labels wrong. If each block is skipped "
                 "at random in training (deeper ones more often), will overfitting start "
                 "later, end smaller, or both?",
        steps=(
            Step("Press Train. Validation loss is lowest near epoch 60 (about 0.29); from "
                 "about epoch 75 the gap is positive, and by epoch 300 it is about 0.9.",
                 train=True),
            Step("Start again with stochastic depth 0.5 (block 6 is skipped half the time, "
                 "block 1 a twelfth). The gap stays negative until about epoch 140 and ends "
                 "near 0.15; validation loss ends near 0.4 instead of 1.0.",
                 restart={"stochastic_depth": 0.5}),
            Step("At epoch 150 set stochastic depth to 0. Memorising starts at once: around "
                 "epoch 300 training accuracy is about 91% and the gap about 0.6.",
                 live={"stochastic_depth": 0.0}, at_epoch=150),
        ),
        reveal="In training each residual block is skipped for a random share of the samples, "
               "more often the deeper it sits, so the network is really an ensemble of "
               "shallower networks that share weights; at test time every block runs. No "
               "deep path can be tuned to a wrong label, because it is not there every step. "
               "The result is a later and smaller slide into memorising, not a cure.",
    ),
    Lesson(
        key="combined",
        title="Combine them, but not too much",
        techniques=("combined", "dropout", "l2", "augmentation"),
        config=_NOISY_100,
        goal="Mix mild dropout, L2 and jitter, then see what too much of all three does.",
        question="Three mild regularizers together, or the same three turned up high: which "
                 "ends with the better validation accuracy?",
        steps=(
            Step("Press Train with no regularization: validation accuracy peaks near 93% "
                 "around epoch 45 and ends near 81%.", train=True),
            Step("Start again with dropout 0.3, L2 0.001 and jitter 0.3, each mild. Validation "
                 "accuracy no longer slides: it hovers around 88-95% from epoch 80 on and "
                 "ends near 92%; validation loss ends near 0.30 instead of 0.73.",
                 restart={"dropout": 0.3, "l2": 0.001, "augment": "jitter",
                          "augment_strength": 0.3}),
            Step("Start again with dropout 0.8, L2 0.03 and jitter 1. Now it underfits: the "
                 "weight norm sinks to about 2, the boundary is too plain for the moons' "
                 "curl, validation loss ends near 0.47 and accuracy near 83%.",
                 restart={"dropout": 0.8, "l2": 0.03, "augment": "jitter",
                          "augment_strength": 1.0}),
        ),
        reveal="Regularizers stack: each one blocks a different way to memorise (leaning on "
               "single units, large weights, exact input positions), so a little of each "
               "works well together. But all of them trade fit for smoothness, and past some "
               "point the net cannot fit the real pattern either: training and validation "
               "loss both stay high. Tune the mix on validation data and watch both curves.",
    ),
)

LESSONS: dict[str, Lesson] = {lesson.key: lesson for lesson in _LESSONS}


def get_lesson(key: str) -> Lesson | None:
    """The lesson named `key`, or None."""
    return LESSONS.get(key)


def play(lesson: Lesson, seed: int | None = None, upto: int | None = None) -> list:
    """Play a lesson headless as "Do it for me" would; returns one Trainer per run started.

    A run is trained to its end before the next one starts, and a live change is applied
    when its run reaches the step's `at_epoch`. `seed` replaces the seed of every run;
    `upto` plays only the first `upto` steps.
    """
    from regdemo.engine import Trainer  # importing lessons must not need the engine

    runs = []
    for step in lesson.steps[:upto]:
        if step.train or step.restart:
            if runs:
                runs[-1].fit()
            config = lesson.config_for(step)
            runs.append(Trainer(config if seed is None else config.replace(seed=seed)))
        if step.live:
            run = runs[-1]
            if step.at_epoch is not None:
                run.fit(max(0, step.at_epoch - run.epoch))
            run.set_live(**step.live)
    if runs:
        runs[-1].fit()
    return runs
