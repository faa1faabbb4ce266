"""Sidebar controls: one widget per Config field, declared in a table, mapped to a Config."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from regdemo.augment import AUGMENTATIONS
from regdemo.config import (
    ACTIVATIONS,
    ARCHITECTURES,
    LIVE_KNOBS,
    OPTIMIZERS,
    Config,
    bounds,
    encode,
)
from regdemo.datasets import DATASETS, KIND_2D, UnknownDataset, spec_for
from regdemo.features import FEATURES

LIVE = "⚡"  # marks knobs that change a running run without a restart


@dataclass(frozen=True)
class Control:
    """How one Config field is shown: widget kind, options or range, and help text."""

    name: str
    label: str
    widget: str  # selectbox, slider, select_slider, toggle, number, text, multiselect
    help: str
    options: tuple = ()
    step: float = 0.05
    format: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"w_{self.name}"

    @property
    def live(self) -> bool:
        return self.name in LIVE_KNOBS

    @property
    def low(self) -> float:
        """The setting's bounds, from the config's constraint table (stated once there)."""
        return bounds(self.name)[0]

    @property
    def high(self) -> float:
        return bounds(self.name)[1]


_LOG = (0.0, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0)
_DECAYS = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
_RADII = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 10.0)  # max-norm; 0 is off
_RATES = (1e-4, 3e-4, 1e-3, 3e-3, 0.005, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)

SECTIONS: dict[str, list[Control]] = {
    "Data": [
        Control("dataset", "Dataset", "selectbox", "Which data to learn. 2-D sets show a "
                "decision boundary, 1-D sets a fitted curve.", options=tuple(DATASETS),
                format={k: v.title for k, v in DATASETS.items()}),
        Control("n_train", "Training points", "number", "Fewer points make overfitting "
                "easier to see.", step=10),
        Control("n_val", "Validation points", "number", "Held-out points that measure "
                "generalization; never trained on. Early stopping and sweeps choose on them.",
                step=50),
        Control("n_test", "Test points", "number", "Held-out points that nothing trains or "
                "chooses on: the honest estimate, shown when a run pauses or ends. (Bundled "
                "sets hold out a fixed 20% of their rows instead.)", step=100),
        Control("noise", "Input noise", "slider", "How much the classes overlap.",
                step=0.05),
        Control("label_noise", "Label noise", "slider", "Share of training labels that are "
                "wrong. A big net memorises them.", step=0.05),
        Control("features", "Extra input features", "multiselect", "Feed the net x1², x2², "
                "x1x2 or sin besides x1 and x2 (2-D sets): with x1² and x2² even a net without "
                "hidden layers draws a circle.", options=tuple(FEATURES), format=FEATURES),
    ],
    "Model": [
        Control("hidden", "Hidden layers", "text", "Widths of the hidden layers, like 64-64. "
                "Wider and deeper nets can memorise more."),
        Control("activation", "Activation", "selectbox", "Nonlinearity after each hidden "
                "layer.", options=ACTIVATIONS),
        Control("arch", "Architecture", "selectbox", "'cnn' adds two conv layers (digits only).",
                options=ARCHITECTURES),
        Control("batch_norm", "Batch norm", "toggle", "Normalise each hidden layer over the "
                "batch; trains faster and regularizes a little."),
        Control("residual", "Residual blocks", "toggle", "Skip connections around each hidden "
                "layer (needed for stochastic depth)."),
    ],
    "Regularization": [
        Control("l2", "L2 penalty", "select_slider", "Adds lambda/2 x sum of squared weights to "
                "the loss: smaller weights, smoother boundary.", options=_LOG),
        Control("l1", "L1 penalty", "select_slider", "Pushes weights to exact zeros; watch "
                "sparsity and the feature bars.", options=_LOG),
        Control("weight_decay", "Weight decay", "select_slider", "The optimizer's decay; "
                "decoupled from the gradient under AdamW.", options=_DECAYS),
        Control("dropout", "Dropout", "slider", "Randomly silences this share of hidden units "
                "while training.", step=0.05),
        Control("augment", "Augmentation", "selectbox", "Transforms training inputs each epoch "
                "(shift, rotate and pixel noise are for digits).", options=tuple(AUGMENTATIONS),
                format={k: v.title for k, v in AUGMENTATIONS.items()}),
        Control("augment_strength", "Augmentation strength", "slider", "Scales the "
                "augmentation.", step=0.05),
        Control("label_smoothing", "Label smoothing", "slider", "Aims for 1 - epsilon/2 "
                "confidence instead of 100%.", step=0.05),
        Control("stochastic_depth", "Stochastic depth", "slider", "Skips residual blocks at "
                "random while training (deeper blocks more often).", step=0.05),
        Control("max_norm", "Max-norm", "select_slider", "Caps the length of each hidden "
                "unit's incoming weights after every step (0 = off); with dropout it keeps a "
                "large learning rate stable.", options=_RADII),
        Control("early_stopping", "Early stopping", "toggle", "Stop when validation loss has "
                "not improved for `patience` epochs."),
        Control("patience", "Patience (epochs)", "number", "How long to wait for a new best "
                "validation loss.", step=10),
        Control("restore_best", "Restore best weights", "toggle", "On an early stop, go back "
                "to the best epoch."),
    ],
    "Training": [
        Control("optimizer", "Optimizer", "selectbox", "sgd, momentum (SGD with 0.9), adam or "
                "adamw (decoupled weight decay).", options=OPTIMIZERS),
        Control("lr", "Learning rate", "select_slider", "Step size; too high and the run "
                "diverges.", options=_RATES),
        Control("batch_size", "Batch size (0 = full)", "number", "Samples per step; small "
                "batches add noise.", step=10),
        Control("epochs", "Epochs", "number", "Length of the run (can be raised mid-run).",
                step=100),
        Control("seed", "Seed", "number", "Same seed, same run: data, weights and noise.",
                step=1),
    ],
}
CONTROLS = {c.name: c for section in SECTIONS.values() for c in section}


LOADED = "loaded_values"  # the last loaded config, for controls a link hides


def set_widget(name: str, value: Any) -> None:
    """Set one control's widget state (in a callback, or before the widget is drawn)."""
    control = CONTROLS[name]
    st.session_state[control.key] = _widget_value(control, value)
    st.session_state.setdefault(LOADED, {})[name] = encode(name, value)


def load_into_widgets(config: Config) -> None:
    """Set every widget's state from a config (a preset, a link, a reset)."""
    for control in CONTROLS.values():
        set_widget(control.name, getattr(config, control.name))


def _widget_value(control: Control, value: Any) -> Any:
    """A Config value as its widget holds it (widths as text, a subset as a list)."""
    if control.widget == "text":
        return encode(control.name, value)
    return list(value) if control.widget == "multiselect" else value


def _options(control: Control, value: Any) -> list:
    options = list(control.options)
    if value not in options:  # a link may carry a value between the slider's stops
        options = sorted({*options, value}) if control.widget == "select_slider" else options
    return options


def _widget(control: Control, container, locked: bool = False, idle: bool = False) -> Any:
    """One control; `locked` by a link, or `idle` (greyed) where it does not apply."""
    label = f"{control.label} {LIVE}" if control.live else control.label
    help_text = control.help + (" Locked by this link." if locked else "")
    key, kw = control.key, {"help": help_text, "key": control.key, "disabled": locked or idle}
    if control.widget == "selectbox":
        fmt, options = control.format, list(control.options)
        value = st.session_state.get(key)
        if control.name == "dataset" and value not in options and _title(value):
            options.append(value)  # uploaded data: an option while it is chosen
        return container.selectbox(label, options,
                                   format_func=lambda v: fmt.get(v) or _title(v) or str(v),
                                   **kw)
    if control.widget == "select_slider":
        return container.select_slider(label, _options(control, st.session_state.get(key)),
                                       format_func=lambda v: f"{v:g}", **kw)
    if control.widget == "slider":
        return container.slider(label, float(control.low), float(control.high),
                                step=float(control.step), **kw)
    if control.widget == "toggle":
        return container.toggle(label, **kw)
    if control.widget == "multiselect":
        fmt = control.format
        return container.multiselect(label, control.options, format_func=lambda v: fmt[v],
                                     placeholder="none", **kw)
    if control.widget == "number":
        return container.number_input(label, int(control.low), int(control.high),
                                      step=int(control.step), **kw)
    return container.text_input(label, **kw)


def current_values() -> dict[str, str]:
    """The widgets' values (from session state) as URL-style strings.

    A control that is not drawn (a classroom link hid it) loses its widget state; its
    value is the one last loaded.
    """
    values = dict(st.session_state.get(LOADED, {}))
    for control in CONTROLS.values():
        if control.key in st.session_state:
            value = st.session_state[control.key]
            if isinstance(value, float):  # JS slider steps leave dust: 0.45000000000000007
                value = float(f"{value:.10g}")  # 10 significant digits: 1e-11 stays 1e-11
            values[control.name] = value if isinstance(value, str) else \
                encode(control.name, value)
    if not _points_2d():  # a switch to other data drops the extra inputs of 2-D points
        values["features"] = ""
    return values


def draw_controls(problems_by_field: dict[str, list[str]], hide: frozenset = frozenset(),
                  lock: frozenset = frozenset(), extras: dict | None = None) -> None:
    """All sections in the sidebar, each problem shown under the control it concerns.

    Controls in `hide` are not drawn (a section with none left goes too); those in `lock`
    are drawn disabled. `extras` maps a section title to a function drawing more into it
    (given the container), like the Data section's uploader.
    """
    for title, controls in SECTIONS.items():
        shown = [c for c in controls if c.name not in hide]
        if not shown:
            continue
        heading = f"{title} ({LIVE} = live)" if title == "Regularization" else title
        with st.sidebar.expander(heading, expanded=title in ("Regularization", "Data")):
            for control in shown:
                idle = control.name == "features" and not _points_2d()
                if idle:  # extra inputs only fit 2-D points: cleared and greyed elsewhere
                    st.session_state[control.key] = []
                _widget(control, st, locked=control.name in lock, idle=idle)
                for message in problems_by_field.get(control.name, []):
                    st.error(message, icon=":material/warning:")
            if title in (extras or {}):
                extras[title](st)


def _title(dataset) -> str | None:
    """An uploaded dataset's title, or None if this server does not have it."""
    try:
        return spec_for(dataset).title
    except UnknownDataset:
        return None


def _points_2d() -> bool:
    """True when the chosen dataset is a 2-D point set."""
    name = st.session_state.get(CONTROLS["dataset"].key)
    try:
        return spec_for(name).kind == KIND_2D
    except UnknownDataset:
        return True


def problems_by_field(problems: list[str]) -> dict[str, list[str]]:
    """Attach each message to the first field it names ('dropout' must be ...)."""
    out: dict[str, list[str]] = {}
    for message in problems:
        name = next((n for n in CONTROLS if f"'{n}'" in message), None)
        out.setdefault(name or "dataset", []).append(message)
    return out
