"""A run as one standalone PyTorch script: same data, weights, batches and regularizers.

`script_for(config, events)` writes a Python file that needs only torch and numpy (never
regdemo) and trains what the lab's eager path trains: the embedded split, the seeded
initial weights, the optimizer, every regularizer that is on, and the run's live changes as
a schedule. It prints the train and validation loss after every epoch.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from dataclasses import dataclass

from regdemo import codegen_loop as loop
from regdemo import codegen_parts as parts
from regdemo.augment import AUGMENTATIONS
from regdemo.codegen_data import data_section
from regdemo.config import LIVE_KNOBS, Config
from regdemo.datasets import Split, split_for
from regdemo.records import Event

# Live knobs the script always reads; the others only when some value of them is on.
ALWAYS = ("lr", "batch_size", "epochs")
# The order of KNOBS in the script: as the page's sidebar lists them.
KNOB_ORDER = ("lr", "batch_size", "epochs", "weight_decay", "l2", "l1", "max_norm", "dropout",
              "stochastic_depth", "label_smoothing", "augment", "augment_strength",
              "early_stopping", "patience", "min_delta", "restore_best")
assert set(KNOB_ORDER) == LIVE_KNOBS


@dataclass(frozen=True)
class Plan:
    """What the script needs to say: the run's settings and which regularizers it uses."""

    config: Config
    split: Split
    changes: dict[int, dict]  # epoch -> {knob: new value}, applied after that epoch
    used: frozenset[str]  # the live knobs the script reads
    augments: tuple[str, ...]  # augmentations the run uses at some point (not "none")

    def uses(self, knob: str) -> bool:
        return knob in self.used

    @property
    def classification(self) -> bool:
        return self.split.n_classes > 0

    @property
    def changed(self) -> frozenset[str]:
        """The knobs some live change sets."""
        return frozenset(k for change in self.changes.values() for k in change)


def starting_config(current: Config, events: Iterable[Event]) -> Config:
    """The settings a run started with, from its current ones and its live changes."""
    first: dict[str, object] = {}
    for event in events:
        first.setdefault(event.knob, event.old)
    return current.replace(**first) if first else current


def _values(config: Config, events: list[Event], knob: str) -> list:
    return [getattr(config, knob), *(e.new for e in events if e.knob == knob)]


def _check_events(config: Config, events: list[Event]) -> None:
    """Refuse changes a run cannot have made, or that do not start from `config`."""
    value: dict[str, object] = {}
    last = -1
    for event in events:
        if event.knob not in LIVE_KNOBS:
            raise ValueError(f"'{event.knob}' is not a live knob: a run cannot change it "
                             "mid-run, so the script cannot schedule it.")
        if event.epoch < last:
            raise ValueError("the live changes must be in the order they were made.")
        before = value.get(event.knob, getattr(config, event.knob))
        if event.old != before:
            raise ValueError(
                f"the change of '{event.knob}' at epoch {event.epoch} starts from "
                f"{event.old!r}, but the settings say {before!r}: pass the settings the run "
                "started with (starting_config(current, events) gives them).")
        value[event.knob], last = event.new, event.epoch


def plan(config: Config, events: Iterable[Event] = (), split: Split | None = None) -> Plan:
    """Check the run and decide what the script says; ValueError on what it cannot say."""
    events = list(events)
    _check_events(config, events)
    split = split if split is not None else split_for(config)
    on = lambda knob: any(v for v in _values(config, events, knob))  # noqa: E731
    used = set(ALWAYS)
    used |= {k for k in ("weight_decay", "l2", "l1", "max_norm", "dropout", "stochastic_depth")
             if on(k)}
    if split.n_classes and on("label_smoothing"):
        used.add("label_smoothing")
    augments = tuple(a for a in AUGMENTATIONS
                     if a != "none" and a in _values(config, events, "augment"))
    for name in augments:
        if name not in parts.AUGMENT_CODE:
            raise ValueError(f"augmentation '{name}' is not supported by the script "
                             f"generator (it writes {', '.join(parts.AUGMENT_CODE)})")
    if augments:
        used |= {"augment", "augment_strength"}
    if on("early_stopping"):
        used |= {"early_stopping", "patience", "min_delta", "restore_best"}
    changes: dict[int, dict] = {}
    for event in events:
        if event.knob in used:
            changes.setdefault(event.epoch, {})[event.knob] = event.new
    return Plan(config, split, changes, frozenset(used), augments)


def _literal(value) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)  # "jitter", as ruff formats


# How the header names each regularizer (the page's labels).
LABELS = {"weight_decay": "weight decay", "l2": "L2 penalty", "l1": "L1 penalty",
          "max_norm": "max-norm", "dropout": "dropout", "stochastic_depth": "stochastic depth",
          "label_smoothing": "label smoothing", "augment": "augmentation",
          "early_stopping": "early stopping"}


def _regularization(p: Plan) -> list[str]:
    """The header's list of regularizers: each with its starting value."""
    c = p.config
    named = []
    for knob, label in LABELS.items():
        if knob not in p.used:
            continue
        if knob == "augment":
            named.append(f"{label} {c.augment} (strength {c.augment_strength:g})")
        elif knob == "early_stopping":
            named.append(f"{label} (patience {c.patience})" if c.early_stopping else
                         f"{label} (off at the start)")
        else:
            named.append(f"{label} {getattr(c, knob):g}")
    text = "Regularization: " + (", ".join(named) if named else "none") + "."
    if p.changes:
        text += f" Live changes after epochs {', '.join(map(str, p.changes))}: see CHANGES."
    return textwrap.wrap(text, 88)


def _header(p: Plan) -> list[str]:
    c = p.config
    hidden = "-".join(map(str, c.hidden)) or "none"
    model = f"{c.arch} {hidden} {c.activation}" + (", batch norm" if c.batch_norm else "") + \
        (", residual" if c.residual else "")
    lines = [
        '"""The Regularization Lab\'s run as a standalone PyTorch script.',
        "",
        f"Data: {c.dataset}, {len(p.split.x_train)} training and {len(p.split.x_val)} validation "
        f"points (seed {c.seed}).",
        f"Model: {model}. Optimizer: {c.optimizer}, learning rate {c.lr:g}.",
        *_regularization(p),
        "",
        "Generated by the Regularization Lab (regdemo); needs only torch and numpy. It",
        "trains the same data, initial weights, batches and regularizers as the lab's run",
        "and prints the training and validation loss (eval mode, no penalty) each epoch.",
        '"""',
        "",
        "import base64",
        "import math",
        "import zlib",
        "",
        "import numpy as np",
        "import torch",
        "import torch.nn.functional as F",
        "from torch import nn",
        "",
        "# ----------------------------------------------------------------- settings",
        f"SEED = {c.seed}",
        "INIT, TRAIN = 1, 2  # streams of the seed: initial weights; training noise",
    ]
    if p.split.image_shape is not None and ({"shift", "rotate"} & set(p.augments)):
        lines.append(f"IMAGE_SHAPE = {p.split.image_shape!r}")
        lines.append(f"BACKGROUND = {p.split.background!r}  # an empty pixel, standardised")
    if "mixup" in p.augments and p.classification:
        lines.append(f"N_CLASSES = {p.split.n_classes}")
    lines.append("# Live knobs at the start; CHANGES below sets new values between epochs.")
    lines.append("KNOBS = {")
    lines += [f'    "{k}": {_literal(getattr(c, k))},' for k in KNOB_ORDER if k in p.used]
    lines.append("}")
    lines.append("# The lab run's live changes: after epoch N these knobs took these values.")
    if not p.changes:
        lines.append("CHANGES: dict[int, dict] = {}")
    else:
        lines.append("CHANGES = {")
        for epoch, change in p.changes.items():
            items = ", ".join(f'"{k}": {_literal(v)}' for k, v in change.items())
            lines.append(f"    {epoch}: {{{items}}},")
        lines.append("}")
    return lines


def script_for(config: Config, events: Iterable[Event] = (), split: Split | None = None) -> str:
    """The run as one readable Python file (torch and numpy only).

    `config` is the settings the run started with; `events` its live changes in order
    (`starting_config` turns a run's current settings back into its starting ones).
    `split` defaults to the config's own data. ValueError on what the script cannot express.
    """
    p = plan(config, events, split)
    sections = [
        _header(p),
        parts.model_section(p),
        loop.regularizer_section(p),
        loop.training_section(p),
        loop.main_section(p),
        data_section(p.split),
        ['if __name__ == "__main__":', "    main()"],
    ]
    out: list[str] = []
    for section in sections:
        if not section:
            continue
        if out:
            out += ["", ""]
        out += section
    return "\n".join(out) + "\n"


def abridged(script: str, keep: int = 2) -> str:
    """The script with each long block of embedded data cut to its first lines, for show
    (the page shows this; the download is the whole file)."""
    lines = script.splitlines()
    is_data = [line.startswith('    "') and line.endswith('"') and " " not in line.strip()
               for line in lines]
    out, i = [], 0
    while i < len(lines):
        if not is_data[i]:
            out.append(lines[i])
            i += 1
            continue
        j = i
        while j < len(lines) and is_data[j]:
            j += 1
        out += lines[i:min(j, i + keep)]
        if j - i > keep:
            out.append(f"    # ... {j - i - keep} more lines of data (in the downloaded file)")
        i = j
    return "\n".join(out) + "\n"
