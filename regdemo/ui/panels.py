"""The live panels: status line, loss curves, data view and weights, redrawn on each tick."""

from __future__ import annotations

import time

import streamlit as st

from regdemo import plots
from regdemo.datasets import KIND_1D, KIND_2D, KIND_IMAGE
from regdemo.runner import PAUSED, QUEUED, RUNNING, STOPPED, Snapshot
from regdemo.ui.live_chart import live_chart
from regdemo.ui.state import get_runner

HEAVY_SECONDS = 1.0  # boundary, weights and norm charts: at most once a second


def status_line(snap: Snapshot) -> None:
    """Epoch, speed, losses and gap, then at most one message about the run's state."""
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


def data_figures(snap: Snapshot) -> list[tuple[str, object]]:
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
        # The strip first: the mistakes chart appears later and must not move it.
        out = [("data_chart", plots.images_figure(images, list(labels), title))]
        if snap.mistakes is not None and len(snap.mistakes[0]):
            x, true, pred = snap.mistakes
            out.append(("mistakes_chart", plots.images_figure(
                x, [f"{t}→{p}" for t, p in zip(true, pred)],
                f"Misclassified validation digits (true→predicted), {len(x)} shown")))
        return out
    if snap.feature_importance is not None:
        return [("data_chart", plots.feature_figure(snap.feature_importance,
                                                    split.feature_names, split.informative))]
    return []


def _heavy_figures(snap: Snapshot, branch: str | None = None) -> dict:
    """Charts that are costly to draw in the browser (heatmaps, histograms)."""
    data = data_figures(snap)
    for _, fig in data if branch else ():  # a fork's views sit side by side, named by branch
        fig.update_layout(title_text=f"{branch}: {fig.layout.title.text}", showlegend=False,
                          height=330)
    return {
        "data": data,
        "weights": plots.weights_figure(snap.weights) if snap.weights else None,
        "norm": plots.norm_figure(snap.history),
    }


def live_panels(handle, task: str, handle_b=None, fork: dict | None = None,
                projector: bool = False) -> None:
    """Everything that changes while a run trains; `handle` is None before the first Train.

    With a fork, `handle_b` is branch B and `fork` says where it split ({epoch, events}):
    both curve sets share one chart and both data views stand next to each other.
    Each chart keeps its place in the element tree whatever the run's state (messages sit
    in one container above them), so the browser updates it in place instead of remounting.
    In projector mode the charts get large type and thick lines, and the weights row goes.
    """
    snap = handle.snapshot() if handle is not None else None
    snap_b = handle_b.snapshot() if handle_b is not None and snap is not None else None
    task = snap.config.task if snap is not None else task
    with st.container():
        if snap is None:
            st.info("Press **Train** to start. Change the live knobs (⚡) while it trains and "
                    "watch the curves react; each change is marked on the chart.",
                    icon=":material/play_arrow:")
        else:
            status_line(snap)
            if snap_b is not None:
                _branch_line(snap_b, fork or {})
    opts = st.columns([1, 1, 1, 2])
    metric = opts[0].segmented_control(
        "Curve", ["loss", "score"], default="loss", key="w_metric",
        format_func=lambda m: "Loss" if m == "loss" else
        ("R²" if task == "regression" else "Accuracy"))
    log_y = opts[1].toggle("Log scale", key="w_log")
    window = opts[2].selectbox("Show epochs", ["all", 100, 500, 2000], key="w_window")
    opts[3].caption("Drag on a chart to zoom: the zoom stays while it trains. "
                    "Double-click to zoom out.")
    score_name = "R²" if task == "regression" else "accuracy"
    window = None if window == "all" else int(window)
    if snap_b is None:
        loss = plots.loss_figure(
            snap.history if snap else [], snap.events if snap else (),
            snap.best_epoch if snap else None,
            patience=snap.config.patience if snap and snap.config.early_stopping else None,
            metric=metric or "loss", score_name=score_name, log_y=log_y, window=window)
    else:
        loss = _fork_figure(snap, snap_b, fork or {}, metric or "loss", score_name, log_y,
                            window)
    if projector:
        plots.for_projector(loss)
    # A zoom survives ticks of the same run and view; a new run or axis choice resets it.
    revision = (str(snap.run_id) if snap else "empty") + ("-projector" if projector else "")
    left, right = st.columns([3, 2])
    with left:
        live_chart(loss, "loss_chart",
                   f"{revision}-{snap_b.run_id if snap_b else ''}-{metric}-{log_y}-{window}")
    if snap is None:
        # Every chart is mounted before Train, so its frame loads Plotly (3.5 MB of script)
        # while the page is read; mounted at Train they held the first point back seconds.
        with right:
            live_chart(plots.placeholder_figure(
                "Data", "The data, and what the model makes of it, appear here once it "
                "trains."), "data_chart", revision)
        if not projector:
            left, right = st.columns(2)
            with left:
                live_chart(plots.placeholder_figure("Weights", "Weight histograms per "
                                                    "layer"), "weights_chart", revision)
            with right:
                live_chart(plots.placeholder_figure("Weight norm and sparsity", "Over "
                                                    "epochs"), "norm_chart", revision)
        return
    heavy = _throttled_heavy(snap, "heavy", "A" if snap_b is not None else None, projector)
    with right:
        if snap_b is None:
            for key, fig in heavy["data"]:
                live_chart(fig, key, revision)
        else:  # A and B next to each other: same data, one knob apart
            heavy_b = _throttled_heavy(snap_b, "heavy_b", "B", projector)
            cols = st.columns(2)
            for col, branch, figures in ((cols[0], "A", heavy["data"]),
                                         (cols[1], "B", heavy_b["data"])):
                with col:
                    for key, fig in figures:
                        live_chart(fig, f"{key}_{branch}", f"{revision}-{branch}")
        if not heavy["data"]:
            st.caption("No data view for this model.")
    if projector:  # fewer panels: the weights row is for closer reading
        return
    left, right = st.columns(2)
    with left:
        if heavy["weights"] is not None:
            live_chart(heavy["weights"], "weights_chart", revision)
    with right:
        live_chart(heavy["norm"], "norm_chart", revision)


def _branch_line(snap_b: Snapshot, fork: dict) -> None:
    """One line about branch B under A's status line."""
    last = snap_b.history[-1] if snap_b.history else None
    changes = [e.label for e in snap_b.events[fork.get("events", 0):]]
    figures = (f"train {last.train_loss:.4f} · val {last.val_loss:.4f} · gap {last.gap:+.4f}"
               if last else "")
    where = fork.get("label") or f"forked at epoch {fork.get('epoch', '?')}"
    st.markdown(
        f"**Branch B** ({where}): epoch {snap_b.epoch} · "
        f"{figures}" + (f" · changed: {'; '.join(changes)}" if changes else "" if
                        fork.get("label") else
                        " · no knob changed yet: pick B above the ⚡ knobs and change one"))
    if snap_b.stop_reason:
        st.caption(f"B: {snap_b.stop_reason}")


def _fork_figure(snap, snap_b, fork: dict, metric: str, score_name: str, log_y: bool,
                 window: int | None):
    """A's and B's curves on one chart; B's markers are only its own changes after the fork."""
    def recent(history):
        if not window or not history:
            return history
        return [r for r in history if r.epoch > history[-1].epoch - window]

    at = fork.get("epoch", 0)
    fig = plots.compare_figure(
        [("A", recent(snap.history), snap.events),
         ("B", recent([r for r in snap_b.history if r.epoch >= at]),
          snap_b.events[fork.get("events", 0):])],
        metric=metric, score_name=score_name, log_y=log_y,
        title=f"A vs B, {'Loss' if metric == 'loss' else score_name}: "
              "training (dashed) vs validation (solid)")
    fig.add_vline(x=at, line=dict(color="#888", width=1.5))
    fig.add_annotation(x=at, y=0, yref="paper", text=f"fork @ epoch {at}", showarrow=False,
                       xanchor="left", yanchor="bottom", font=dict(color="#555", size=11))
    return fig


def _throttled_heavy(snap: Snapshot, slot: str, branch: str | None = None,
                     projector: bool = False) -> dict:
    """Heatmaps and histograms cost the browser far more than a line chart: while a run
    trains they are rebuilt at most once a second, so the loss curve keeps its pace and
    sliders stay responsive (an unchanged figure is not redrawn at all)."""
    now = time.monotonic()
    stamp, heavy, key = st.session_state.get(slot, (0.0, None, None))
    fresh = (snap.run_id, branch, snap.status, projector, snap.epoch)
    if heavy is None or key[:4] != fresh[:4] or (
            key != fresh and now - stamp >= HEAVY_SECONDS):
        heavy = _heavy_figures(snap, branch)
        if projector:
            for _, fig in heavy["data"]:
                plots.for_projector(fig)
        st.session_state[slot] = (now, heavy, fresh)
    return heavy
