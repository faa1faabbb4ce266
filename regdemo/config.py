"""One frozen, validated run configuration, with a constraint table and URL round-trip."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from regdemo.augment import AUGMENTATIONS
from regdemo.datasets import (
    DATASETS,
    DEFAULT_TEST,
    KIND_2D,
    KIND_IMAGE,
    UnknownDataset,
    spec_for,
)
from regdemo.features import FEATURES, canonical
from regdemo.uploads import hash_of

ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "elu", "leaky_relu")
OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")
ARCHITECTURES = ("mlp", "cnn")

# Bounds that keep one run from taking the server's memory or time (documented in README).
MAX_SAMPLES = 5000
MAX_WIDTH = 512
MAX_DEPTH = 8
MAX_EPOCHS = 100_000
# Longest text parsed as hidden widths: 8 x '512' with separators is 31 characters.
MAX_WIDTHS_TEXT = 100


class ConfigError(ValueError):
    """A setting is out of range or does not fit the others; `errors` lists every message."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__("; ".join(self.errors))


@dataclass(frozen=True)
class Config:
    """Everything that defines a run; the seed included, so a config reproduces its run."""

    # --- data
    dataset: str = "moons"  # registry name in DATASETS, or upload:<hash> (uploaded data)
    n_train: int = 40  # training points, [4, 5000]
    n_val: int = 400  # validation points, [4, 5000]
    n_test: int = DEFAULT_TEST  # held-out test points of a generated set, [4, 5000]
    noise: float = 0.3  # input noise of the generator (std units for bundled sets), [0, 1]
    label_noise: float = 0.0  # share of training labels flipped or corrupted, [0, 0.5]
    features: tuple[str, ...] = ()  # extra inputs of 2-D sets (ids in FEATURES), like x1sq
    # --- model
    hidden: tuple[int, ...] = (64, 64)  # hidden widths, 0-8 layers of 1-512 units
    activation: str = "relu"  # one of ACTIVATIONS
    arch: str = "mlp"  # "mlp", or "cnn" (digits only: two conv layers before `hidden`)
    batch_norm: bool = False  # BatchNorm1d after every hidden linear layer
    residual: bool = False  # residual blocks (equal widths) that allow stochastic depth
    # --- regularization (all live except none)
    l1: float = 0.0  # lambda of lambda*sum|w| by a proximal soft-threshold step, [0, 1]
    l2: float = 0.0  # lambda of lambda/2*sum w^2 added to the loss, [0, 10]
    weight_decay: float = 0.0  # the optimizer's own decay (decoupled under adamw), [0, 10]
    dropout: float = 0.0  # drop probability after each hidden activation, [0, 0.95]
    augment: str = "none"  # registry name in AUGMENTATIONS
    augment_strength: float = 0.5  # scales the augmentation, [0, 1]
    label_smoothing: float = 0.0  # epsilon of the cross-entropy's smoothing, [0, 0.5]
    stochastic_depth: float = 0.0  # drop-path rate of the last residual block, [0, 0.9]
    max_norm: float = 0.0  # radius of each hidden unit's incoming weights; 0 = off, [0, 10]
    early_stopping: bool = False  # stop when val loss has not improved for `patience`
    patience: int = 50  # epochs without improvement before stopping, [1, 100000]
    min_delta: float = 0.0  # improvement smaller than this does not count, [0, 1]
    restore_best: bool = True  # on an early stop, go back to the best epoch's weights
    # --- training
    optimizer: str = "adam"  # one of OPTIMIZERS ("momentum" is SGD with momentum 0.9)
    lr: float = 0.01  # learning rate, (0, 10]
    batch_size: int = 0  # 0 = full batch, else mini-batches of this size, [0, 5000]
    epochs: int = 500  # epochs of a full run, [1, 100000]
    # --- reproducibility
    seed: int = 0  # seeds data, initial weights and training noise, [0, 2**31 - 1]

    def __post_init__(self):
        errors = []
        for name, check in _CONSTRAINTS.items():
            value = getattr(self, name)
            ok, coerced = check.coerce(value)
            if not ok:
                errors.append(check.message(name, value))
            elif coerced is not value:
                object.__setattr__(self, name, coerced)
        if not errors:
            errors = _cross_field_errors(self)
        if errors:
            raise ConfigError(errors)

    def replace(self, **changes) -> Config:
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def with_live(self, **knobs) -> Config:
        """A copy with live knobs changed; structural or unknown names are refused clearly."""
        bad = sorted(set(knobs) - LIVE_KNOBS)
        unknown = [k for k in bad if k not in _CONSTRAINTS]
        if unknown:
            raise ConfigError([f"unknown setting {k!r}" for k in unknown])
        if bad:
            raise ConfigError(
                [f"'{k}' is structural: it needs a new run (press Reset), not a live change."
                 for k in bad]
            )
        return self.replace(**knobs)

    @property
    def kind(self) -> str:
        return spec_for(self.dataset).kind

    @property
    def task(self) -> str:
        return spec_for(self.dataset).task

    def to_query(self, only_changed: bool = False) -> dict[str, str]:
        """The config as URL query parameters (all fields, so links survive new defaults)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if only_changed and value == f.default:
                continue
            out[f.name] = _CONSTRAINTS[f.name].encode(value)
        return out

    @classmethod
    def from_query(cls, query: Mapping[str, Any], base: Config | None = None):
        """Parse query params over `base`; returns (config, problems), never raises.

        Missing keys keep the base value, unknown keys are ignored, and every bad value is
        dropped with one message in `problems` so the caller can warn and carry on.
        """
        base = base or cls()
        changes, problems = {}, []
        for name, check in _CONSTRAINTS.items():
            if name not in query:
                continue
            raw = query[name]
            if isinstance(raw, (list, tuple)):  # repeated keys: the last one wins
                raw = raw[-1] if raw else ""
            value = check.decode(str(raw))
            ok, coerced = check.coerce(value)
            if not ok:
                problems.append(check.message(name, _short(raw)))
                continue
            changes[name] = coerced
        try:
            return dataclasses.replace(base, **changes), problems
        except ConfigError as exc:
            problems.extend(exc.errors)
        # The values fit alone but not together: keep each change that fits the base.
        config = base
        for name, value in changes.items():
            with contextlib.suppress(ConfigError):
                config = dataclasses.replace(config, **{name: value})
        return config, problems


LIVE_KNOBS = frozenset(
    {
        "lr",
        "l1",
        "l2",
        "weight_decay",
        "dropout",
        "label_smoothing",
        "augment",
        "augment_strength",
        "stochastic_depth",
        "max_norm",
        "early_stopping",
        "patience",
        "min_delta",
        "restore_best",
        "batch_size",
        "epochs",
    }
)
STRUCTURAL_KNOBS = frozenset(f.name for f in dataclasses.fields(Config)) - LIVE_KNOBS


def data_settings(dataset: str) -> dict[str, Any]:
    """Settings that fit a dataset on its own: every row it has for train + val (a quarter
    for validation), and no knob of another kind of data (noise, extra inputs, CNN). For
    uploaded data, where the scenario's sizes and noise were chosen for another set."""
    spec = spec_for(dataset)
    out: dict[str, Any] = {"dataset": dataset, "noise": 0.0, "label_noise": 0.0,
                           "features": (), "augment": "none", "arch": "mlp"}
    if spec.max_samples is not None:
        least = max(4, spec.n_classes)
        n_val = min(MAX_SAMPLES, max(least, spec.max_samples // 4))
        out.update(n_train=min(MAX_SAMPLES, spec.max_samples - n_val), n_val=n_val)
    return out


def bounds(name: str) -> tuple[float, float]:
    """(low, high) of a numeric setting, as the constraint table states them."""
    check = _CONSTRAINTS[name]
    if check.low is None or check.high is None:
        raise ValueError(f"{name!r} is not a numeric setting")
    return check.low, check.high


def encode(name: str, value: Any) -> str:
    """One field's value as its URL text (the inverse of what from_query parses)."""
    return _CONSTRAINTS[name].encode(value)


def _short(raw: Any, limit: int = 40) -> str:
    text = str(raw)
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass(frozen=True)
class _Check:
    """One row of the constraint table: type, range or choices, and the codec for URLs."""

    kind: str  # "int", "float", "bool", "choice", "dataset", "widths", "subset" (of choices)
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.kind == "bool":
            return "a bool (true or false)"
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind == "dataset":
            return ("one of " + ", ".join(repr(c) for c in self.choices)
                    + ", or upload:<16 hex digits> (uploaded data)")
        if self.kind == "subset":
            return "none or some of " + ", ".join(self.choices) + " (like x1sq-x2sq)"
        if self.kind == "widths":
            return (
                f"a list of 0 to {MAX_DEPTH} widths, each an int in [1, {MAX_WIDTH}]"
                " (like 64-64)"
            )
        left = "(" if self.low_open else "["
        article = "an" if self.kind == "int" else "a"
        return f"{article} {self.kind} in {left}{_num(self.low)}, {_num(self.high)}]"

    def message(self, name: str, value: Any) -> str:
        shown = value if isinstance(value, str) else repr(value)
        return f"'{name}' must be {self.describe()}; got {shown}."

    def coerce(self, value: Any) -> tuple[bool, Any]:
        """(ok, value in canonical type); ints are accepted where floats are expected."""
        if self.kind == "bool":
            return isinstance(value, bool), value
        if self.kind == "choice":
            return isinstance(value, str) and value in self.choices, value
        if self.kind == "dataset":  # whether this server has the upload is a later check
            return isinstance(value, str) and (value in self.choices or
                                               hash_of(value) is not None), value
        if self.kind == "subset":
            if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
                return False, value
            ok = all(isinstance(v, str) and v in self.choices for v in value)
            return ok, canonical(value) if ok else value
        if self.kind == "widths":
            try:
                widths = tuple(value)
            except TypeError:
                return False, value
            ok = len(widths) <= MAX_DEPTH and all(
                isinstance(w, int) and not isinstance(w, bool) and 1 <= w <= MAX_WIDTH
                for w in widths
            )
            return ok, widths if ok else value
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            return False, value
        if self.kind == "int":
            if not isinstance(value, numbers.Integral) and not float(value).is_integer():
                return False, value
            value = int(value)
        else:
            try:
                value = float(value)
            except OverflowError:  # an int too large for a float is out of range anyway
                return False, value
        if isinstance(value, float) and not math.isfinite(value):
            return False, value
        if value < self.low or value > self.high or (self.low_open and value == self.low):
            return False, value
        return True, value

    def encode(self, value: Any) -> str:
        if self.kind == "bool":
            return "1" if value else "0"
        if self.kind in ("widths", "subset"):
            return "-".join(str(w) for w in value)
        return repr(value) if self.kind == "float" else str(value)

    def decode(self, text: str) -> Any:
        """Best-effort parse; a value that does not parse comes back as the raw text."""
        text = text.strip()
        if self.kind == "bool":
            return {"1": True, "true": True, "yes": True, "on": True, "0": False,
                    "false": False, "no": False, "off": False}.get(text.lower(), text)
        if self.kind in ("choice", "dataset"):
            return text
        if self.kind == "subset":
            if text in ("", "-", "none"):
                return ()
            if len(text) > 20 * len(self.choices):
                return text
            return tuple(p.strip() for p in text.replace(",", "-").split("-"))
        if self.kind == "widths":
            if text in ("", "-", "none"):
                return ()
            if len(text) > MAX_WIDTHS_TEXT:  # parsed, "1-" * 10**8 would take gigabytes
                return text
            parts = text.replace(",", "-").replace("x", "-").split("-")
            try:
                return tuple(int(p) for p in parts)
            except ValueError:
                return text
        if len(text) > 40:  # a 10,000-digit "number" is an attack, not a setting
            return text
        try:
            return int(text) if self.kind == "int" else float(text)
        except ValueError:
            try:
                as_float = float(text)  # "300.0" is a fine int
                return int(as_float) if as_float.is_integer() else as_float
            except (ValueError, OverflowError):
                return text


def _num(x: float) -> str:
    if x == 2**31 - 1:
        return "2**31 - 1"
    return f"{x:g}" if isinstance(x, float) else str(x)


_CONSTRAINTS: dict[str, _Check] = {
    "dataset": _Check("dataset", choices=tuple(DATASETS)),
    "n_train": _Check("int", 4, MAX_SAMPLES),
    "n_val": _Check("int", 4, MAX_SAMPLES),
    "n_test": _Check("int", 4, MAX_SAMPLES),
    "noise": _Check("float", 0.0, 1.0),
    "label_noise": _Check("float", 0.0, 0.5),
    "features": _Check("subset", choices=tuple(FEATURES)),
    "hidden": _Check("widths"),
    "activation": _Check("choice", choices=ACTIVATIONS),
    "arch": _Check("choice", choices=ARCHITECTURES),
    "batch_norm": _Check("bool"),
    "residual": _Check("bool"),
    "l1": _Check("float", 0.0, 1.0),
    "l2": _Check("float", 0.0, 10.0),
    "weight_decay": _Check("float", 0.0, 10.0),
    "dropout": _Check("float", 0.0, 0.95),
    "augment": _Check("choice", choices=tuple(AUGMENTATIONS)),
    "augment_strength": _Check("float", 0.0, 1.0),
    "label_smoothing": _Check("float", 0.0, 0.5),
    "stochastic_depth": _Check("float", 0.0, 0.9),
    "max_norm": _Check("float", 0.0, 10.0),
    "early_stopping": _Check("bool"),
    "patience": _Check("int", 1, MAX_EPOCHS),
    "min_delta": _Check("float", 0.0, 1.0),
    "restore_best": _Check("bool"),
    "optimizer": _Check("choice", choices=OPTIMIZERS),
    "lr": _Check("float", 0.0, 10.0, low_open=True),
    "batch_size": _Check("int", 0, MAX_SAMPLES),
    "epochs": _Check("int", 1, MAX_EPOCHS),
    "seed": _Check("int", 0, 2**31 - 1),
}

assert set(_CONSTRAINTS) == {f.name for f in dataclasses.fields(Config)}


def _cross_field_errors(c: Config) -> list[str]:
    """Rules that tie fields together; each message says how to fix the setting."""
    errors = []
    try:
        spec = spec_for(c.dataset)
    except UnknownDataset as exc:  # nothing else can be checked without the data
        return [f"'dataset': {exc}."]
    if spec.max_samples is not None and c.n_train + c.n_val > spec.max_samples:
        errors.append(
            f"'n_train' + 'n_val' must be at most {spec.max_samples} for '{c.dataset}'; "
            f"got {c.n_train} + {c.n_val}."
        )
    small = min(c.n_train, c.n_val) < spec.n_classes
    if spec.task == "classification" and spec.max_samples is not None and small:
        errors.append(
            f"'n_train' and 'n_val' must each be at least {spec.n_classes} "
            f"(one per class) for '{c.dataset}'."
        )
    if spec.kind not in AUGMENTATIONS[c.augment].kinds:
        fitting = ", ".join(repr(a) for a, v in AUGMENTATIONS.items() if spec.kind in v.kinds)
        errors.append(
            f"'augment' {c.augment!r} does not fit the {spec.kind} dataset '{c.dataset}'; "
            f"use one of {fitting}."
        )
    if c.features and spec.kind != KIND_2D:
        errors.append(f"'features' (like x1sq) are extra inputs for 2-D point sets, not for "
                      f"'{c.dataset}': clear them.")
    if c.arch == "cnn" and spec.kind != KIND_IMAGE:
        errors.append(f"'arch' 'cnn' needs image data (digits); got dataset '{c.dataset}'.")
    if c.residual and len(set(c.hidden)) > 1:
        widths = _CONSTRAINTS["hidden"].encode(c.hidden)
        errors.append(f"'residual' needs equal hidden widths (like 64-64-64); got {widths}.")
    if c.residual and not c.hidden:
        errors.append("'residual' needs at least one hidden layer.")
    if c.stochastic_depth > 0 and not c.residual:
        errors.append("'stochastic_depth' drops residual blocks: turn 'residual' on first.")
    if c.batch_norm and c.batch_size == 1:
        errors.append("'batch_norm' needs batches of 2 or more; set 'batch_size' to 0 or >= 2.")
    if c.dropout > 0 and not c.hidden and c.arch == "mlp":
        errors.append("'dropout' acts after hidden layers: add a hidden layer first.")
    return errors
