"""The page: sidebar (preset, controls, run buttons) and the live panels."""

from __future__ import annotations

import time

import streamlit as st

from regdemo import plots
from regdemo.config import LIVE_KNOBS, STRUCTURAL_KNOBS, Config, ConfigError
from regdemo.datasets import KIND_1D, KIND_2D, KIND_IMAGE
from regdemo.presets import DEFAULT_PRESET, PRESETS
from regdemo.runner import PAUSED, QUEUED, RUNNING, STOPPED, Snapshot
from regdemo.ui import controls
from regdemo.ui.state import get_runner, session_runs

POLL_SECONDS = 0.3  # live panels redraw ~3 times a second while a run trains
HEAVY_SECONDS = 1.0  # boundary, weights and norm charts: at most once a second
SPEEDS = ("max", 500, 200, 100, 50, 20, 10, 5)


# ----------------------------------------------------------------- state changes
def _load_preset(name: str) -> None:
    st.session_state["preset"] = name
    controls.load_into_widgets(PRESETS[name].config)
    _reset_run()


def _on_preset_change() -> None:
    _load_preset(st.session_state["w_preset"])


def _init_from_url() -> None:
    """First visit: the link's preset and settings, with a warning for what was ignored."""
    query = st.query_params.to_dict()
    warnings = []
    name = query.get("preset", DEFAULT_PRESET)
    if name not in PRESETS:
        warnings.append(f"unknown preset {name!r}; showing '{DEFAULT_PRESET}'")
        name = DEFAULT_PRESET
    config, problems = Config.from_query(query, base=PRESETS[name].config)
    st.session_state["preset"] = st.session_state["w_preset"] = name
    controls.load_into_widgets(config)
    st.session_state["link_warnings"] = warnings + problems
    st.session_state["initialized"] = True


def _handle():
    run_id = st.session_state.get("run_id")
    return get_runner().get(run_id) if run_id is not None else None


def _reset_run() -> None:
    run_id = st.session_state.pop("run_id", None)
    if run_id is not None:
        get_runner().forget(run_id)
        session_runs().run_ids.discard(run_id)


def _new_run(config: Config):
    _reset_run()
    handle = get_runner().create(config)
    st.session_state["run_id"] = handle.id
    session_runs().run_ids.add(handle.id)
    handle.set_speed(_speed())
    return handle


def _speed():
    value = st.session_state.get("w_speed", "max")
    return None if value == "max" else float(value)


def _structural_changes(handle, config: Config) -> list[str]:
    old = handle.config
    return [k for k in sorted(STRUCTURAL_KNOBS) if getattr(old, k) != getattr(config, k)]


def _train(config: Config) -> None:
    handle = _handle()
    if handle is None or _structural_changes(handle, config) or handle.status == STOPPED:
        handle = _new_run(config)
    handle.set_speed(_speed())
    handle.start()


def _step(config: Config) -> None:
    handle = _handle()
    if handle is None or _structural_changes(handle, config):
        handle = _new_run(config)
    handle.step(1)


def _apply_live(handle, config: Config) -> str | None:
    """Send changed live knobs to the running trainer; returns an error message if refused."""
    old = handle.config
    changes = {k: getattr(config, k) for k in LIVE_KNOBS if getattr(old, k) != getattr(config, k)}
    if not changes:
        return None
    try:
        handle.set_live(**changes)
    except ConfigError as exc:
        return str(exc)
    return None


# ----------------------------------------------------------------- drawing
def _status_line(snap: Snapshot) -> None:
    last = snap.history[-1] if snap.history else None
    cols = st.columns(5)
    labels = {RUNNING: "training", PAUSED: "paused", QUEUED: "queued: server busy",
              STOPPED: "stopped"}
    cols[0].metric("Epoch", f"{snap.epoch} / {snap.config.epochs}",
                   help=labels.get(snap.status, snap.status))
    cols[1].metric("Epochs/s", f"{snap.epochs_per_second:,.0f}" if snap.status == RUNNING else "–")
    cols[2].metric("Train loss", f"{last.train_loss:.4f}" if last else "–")
    cols[3].metric("Val loss", f"{last.val_loss:.4f}" if last else "–")
    cols[4].metric("Gap (val − train)", f"{last.gap:+.4f}" if last else "–")
    if snap.status == RUNNING and not snap.history and not get_runner().ready():
        st.info("Starting the training workers: the first run after a server start takes a "
                "few seconds.", icon=":material/hourglass_top:")
    if snap.status == QUEUED:
        st.warning("The server is busy: this run is queued and starts when a slot frees up.")
    if snap.diverged or snap.error:
        st.error(snap.stop_reason, icon=":material/error:")
    elif snap.stop_reason:
        st.info(snap.stop_reason.capitalize(), icon=":material/flag:")


def _data_figures(snap: Snapshot) -> list[tuple[str, object]]:
    """The data view's charts for this kind of data: [(key, figure), ...]."""
    split, kind = snap.split, snap.split.kind
    if kind == KIND_2D and snap.view is not None:
        return [("data_chart", plots.boundary_figure(snap.view, split, snap.augmented))]
    if kind == KIND_1D and snap.view is not None:
        return [("data_chart", plots.curve_figure(snap.view, split))]
    if kind == KIND_IMAGE:
        if snap.augmented is not None:
            images, labels = snap.augmented
            labels = labels.argmax(1) if labels.ndim == 2 else labels
            title = f"Training digits as the net sees them ({snap.config.augment})"
        else:
            images, labels, title = split.x_train, split.y_train, "Training digits"
        out = []
        if snap.mistakes is not None and len(snap.mistakes[0]):
            x, true, pred = snap.mistakes
            out.append(("mistakes_chart", plots.images_figure(
                x, [f"{t}→{p}" for t, p in zip(true, pred)],
                f"Misclassified validation digits (true→predicted), {len(x)} shown")))
        return out + [("data_chart", plots.images_figure(images, list(labels), title))]
    if snap.feature_importance is not None:
        return [("data_chart", plots.feature_figure(snap.feature_importance,
                                                    split.feature_names, split.informative))]
    return []


def _heavy_figures(snap: Snapshot) -> dict:
    """Charts that are costly to draw in the browser (contours, histograms)."""
    return {
        "data": _data_figures(snap),
        "weights": plots.weights_figure(snap.weights) if snap.weights else None,
        "norm": plots.norm_figure(snap.history),
    }


def _live_panels() -> None:
    handle = _handle()
    if handle is None:
        st.info("Press **Train** to start. Change the live knobs (⚡) while it trains and "
                "watch the curves react; each change is marked on the chart.",
                icon=":material/play_arrow:")
        # Empty axes now: the Plotly bundle loads before Train, not after (first point sooner).
        st.plotly_chart(plots.loss_figure([]), key="loss_chart", config={"displaylogo": False})
        return
    snap = handle.snapshot()
    _status_line(snap)
    c = snap.config
    opts = st.columns([1, 1, 1, 2])
    metric = opts[0].segmented_control("Curve", ["loss", "score"], default="loss",
                                       key="w_metric", format_func=lambda m: "Loss" if m == "loss"
                                       else ("R²" if c.task == "regression" else "Accuracy"))
    log_y = opts[1].toggle("Log scale", key="w_log")
    window = opts[2].selectbox("Show epochs", ["all", 100, 500, 2000], key="w_window")
    freeze = opts[3].toggle("Freeze charts (zoom freely)", key="w_freeze",
                            help="Live redraws reset a zoom; freeze them while you look closer.")
    loss = st.session_state.get("loss_figure") if freeze else None
    if loss is None:
        loss = plots.loss_figure(
            snap.history, snap.events, snap.best_epoch,
            patience=c.patience if c.early_stopping else None, metric=metric or "loss",
            score_name="R²" if c.task == "regression" else "accuracy", log_y=log_y,
            window=None if window == "all" else int(window))
        st.session_state["loss_figure"] = loss
    # Redrawing a contour or histogram costs the browser far more than a line chart: while
    # a run trains they are rebuilt at most once a second (an unchanged figure is not
    # redrawn), so the loss curve keeps its pace and sliders stay responsive.
    now = time.monotonic()
    stamp, heavy, run_id = st.session_state.get("heavy", (0.0, None, None))
    stale = heavy is None or run_id != snap.run_id or snap.status != RUNNING or \
        now - stamp >= HEAVY_SECONDS
    if stale and not (freeze and heavy is not None):
        heavy = _heavy_figures(snap)
        st.session_state["heavy"] = (now, heavy, snap.run_id)
    left, right = st.columns([3, 2])
    with left:
        st.plotly_chart(loss, key="loss_chart", config={"displaylogo": False})
    with right:
        for key, fig in heavy["data"]:
            st.plotly_chart(fig, key=key, config={"displaylogo": False})
        if not heavy["data"]:
            st.caption("No data view for this model.")
    left, right = st.columns(2)
    with left:
        if heavy["weights"] is not None:
            st.plotly_chart(heavy["weights"], key="weights_chart",
                            config={"displaylogo": False})
    with right:
        st.plotly_chart(heavy["norm"], key="norm_chart", config={"displaylogo": False})
    if st.session_state.get("polling") and snap.status not in (RUNNING, QUEUED):
        st.rerun(scope="app")  # the run ended: redraw the page and stop polling


def main() -> None:
    """Draw the whole page."""
    st.set_page_config(page_title="Regularization Lab", page_icon=":material/show_chart:",
                       layout="wide")
    get_runner()  # the first page view starts the workers, so they are warm before Train
    if "initialized" not in st.session_state:
        _init_from_url()
    config, problems = Config.from_query(controls.current_values(),
                                         base=PRESETS[st.session_state["preset"]].config)

    sb = st.sidebar
    sb.title("Regularization Lab")
    sb.selectbox("Scenario", list(PRESETS), key="w_preset", on_change=_on_preset_change,
                 format_func=lambda n: PRESETS[n].title,
                 help="Classroom scenarios; each sets every control below.")
    sb.caption(PRESETS[st.session_state["preset"]].watch)
    b = sb.columns(2)
    if b[0].button("Train", type="primary", key="btn_train", width="stretch",
                   icon=":material/play_arrow:"):
        _train(config)
    if b[1].button("Pause", key="btn_pause", width="stretch", icon=":material/pause:") \
            and _handle():
        _handle().pause()
    if b[0].button("Step", key="btn_step", width="stretch", icon=":material/skip_next:"):
        _step(config)
    if b[1].button("Reset", key="btn_reset", width="stretch", icon=":material/restart_alt:"):
        _reset_run()
    sb.select_slider("Speed (epochs/s)", SPEEDS, key="w_speed",
                     help="Slow the run down so a class can follow it.")
    handle = _handle()
    if handle is not None:
        handle.set_speed(_speed())
        refused = _apply_live(handle, config)
        if refused:
            problems = problems + [refused]
        changed = _structural_changes(handle, config)
        if changed:
            sb.info(f"Changed {', '.join(changed)}: these need a new run. Press Train to "
                    "start it.", icon=":material/refresh:")
    controls.draw_controls(controls.problems_by_field(problems))

    st.query_params.from_dict({"preset": st.session_state["preset"], **config.to_query()})
    for message in st.session_state.get("link_warnings", []):
        st.warning(f"Ignored from the link: {message}", icon=":material/link:")

    # run_every is fixed when the fragment is made: poll only while a run trains.
    running = handle is not None and handle.status in (RUNNING, QUEUED)
    st.session_state["polling"] = running
    st.fragment(run_every=POLL_SECONDS if running else None)(_live_panels)()
