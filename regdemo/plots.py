"""Pure builders of the static charts (saved runs, sweeps) as Plotly figures. No state, no
Streamlit; the live charts are drawn in the browser by the board (ui/assets/board.js)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

# Colorblind-safe pair (Okabe-Ito blue / vermillion), also told apart by dash style.
TRAIN_COLOR, VAL_COLOR = "#0072B2", "#D55E00"
GAP_FILL = "rgba(213, 94, 0, 0.12)"
EVENT_COLOR, BEST_COLOR = "#6a3d9a", "#009E73"
# One color per compared run (Okabe-Ito, without its yellow, which vanishes on white).
RUN_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
MAX_DRAWN_POINTS = 600  # per curve: more than a chart's pixel width only costs render time
# No named template: resolving one costs ~130 ms per figure, and Streamlit's theme applies.
_LAYOUT = dict(
    margin=dict(l=55, r=20, t=75, b=45),
    legend=dict(orientation="h", yanchor="bottom", y=1.01, xanchor="left", x=0),
    height=360,
    # Plain numbers on the axes: 1e-4 reads as 10^-4, never as "100µ".
    xaxis=dict(exponentformat="power"), yaxis=dict(exponentformat="power"),
)


def _thin(history: Sequence) -> Sequence:
    """At most MAX_DRAWN_POINTS records, evenly spaced, the newest kept."""
    if len(history) <= MAX_DRAWN_POINTS:
        return history
    step = len(history) / MAX_DRAWN_POINTS
    return [history[int(i * step)] for i in range(MAX_DRAWN_POINTS - 1)] + [history[-1]]


def _figure(title: str, uirevision: str) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=dict(text=title, x=0, y=0.97, font=dict(size=15)),
                      uirevision=uirevision,
                      **_LAYOUT)
    return fig


def compare_figure(
    runs: Sequence[tuple[str, Sequence, Sequence]],
    metric: str = "loss",
    score_name: str = "accuracy",
    log_y: bool = False,
    title: str | None = None,
    uirevision: str = "compare",
) -> go.Figure:
    """Several runs' curves on one chart: a color per run, training solid, validation dashed
    (the live board's convention).

    `runs` holds (label, history, events); each run's live changes are marked in its color.
    """
    what = "Loss" if metric == "loss" else score_name.capitalize()
    fig = _figure(title or f"{what}: training (solid) vs validation (dashed)", uirevision)
    for i, (label, history, events) in enumerate(runs):
        color = RUN_COLORS[i % len(RUN_COLORS)]
        history = _thin(history)
        epochs = np.array([r.epoch for r in history])
        pick = (lambda r: (r.train_loss, r.val_loss)) if metric == "loss" else \
            (lambda r: (r.train_score, r.val_score))
        values = np.array([pick(r) for r in history]).reshape(-1, 2)
        fig.add_trace(go.Scatter(x=epochs, y=values[:, 0], name=f"{label} training",
                                 mode="lines", legendgroup=label,
                                 line=dict(color=color, width=2)))
        fig.add_trace(go.Scatter(x=epochs, y=values[:, 1], name=f"{label} validation",
                                 mode="lines", legendgroup=label,
                                 line=dict(color=color, width=2.5, dash="dash")))
        for event in events:
            fig.add_vline(x=event.epoch, line=dict(color=color, width=1.2, dash="dot"))
            fig.add_annotation(x=event.epoch, y=1, yref="paper", text=f"{label}: {event.label}",
                               showarrow=False, textangle=-90, xanchor="right", yanchor="top",
                               font=dict(color=color, size=11))
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text=what.lower(),
                     type="log" if log_y and metric == "loss" else "linear")
    return fig


def sweep_figure(stats: Sequence, knob: str, log_x: bool = False, best=None,
                 current: float | None = None, uirevision: str = "sweep") -> go.Figure:
    """Final train and val loss against a knob, mean ± 1 std over seeds, best value starred.

    `stats` holds sweep_results.PointStats (value, *_mean, *_std); points whose runs all diverged
    are left out, so a gap in the curve means "diverged here".
    """
    fig = _figure(f"Validation curve: final loss against {knob}", uirevision)
    fine = [p for p in stats if p.val_loss_mean is not None]
    x = np.array([p.value for p in fine], dtype=float)
    for name, color, dash, mean_of, std_of in (
            ("training", TRAIN_COLOR, None, "train_loss_mean", "train_loss_std"),
            ("validation", VAL_COLOR, "dash", "val_loss_mean", "val_loss_std")):
        mean = np.array([getattr(p, mean_of) for p in fine], dtype=float)
        std = np.array([getattr(p, std_of) or 0.0 for p in fine], dtype=float)
        fill = GAP_FILL if name == "validation" else "rgba(0, 114, 178, 0.12)"
        # The ±1 std band: upper edge, then the lower edge filled up to it.
        fig.add_trace(go.Scatter(x=x, y=mean + std, mode="lines", line=dict(width=0),
                                 showlegend=False, hoverinfo="skip", legendgroup=name))
        fig.add_trace(go.Scatter(x=x, y=mean - std, mode="lines", line=dict(width=0),
                                 fill="tonexty", fillcolor=fill, name=f"{name} ±1 std",
                                 hoverinfo="skip", legendgroup=name))
        fig.add_trace(go.Scatter(x=x, y=mean, mode="lines+markers", name=name,
                                 legendgroup=name, line=dict(color=color, width=2.5, dash=dash),
                                 marker=dict(size=7)))
    if best is not None:
        fig.add_trace(go.Scatter(x=[best.value], y=[best.val_loss_mean], mode="markers",
                                 name=f"best {knob} = {best.value:.3g} (chosen on validation)",
                                 marker=dict(symbol="star", size=16, color=BEST_COLOR)))
        if best.test_loss_mean is not None:
            fig.add_trace(go.Scatter(x=[best.value], y=[best.test_loss_mean], mode="markers",
                                     name="its test loss (held out)",
                                     marker=dict(symbol="diamond", size=12, color="#000000")))
    if current is not None and (current > 0 or not log_x):  # 0 has no place on a log axis
        fig.add_vline(x=current, line=dict(color=EVENT_COLOR, width=1.5, dash="dot"))
        fig.add_annotation(x=current, y=1, yref="paper", text=f"current {knob} = {current:g}",
                           showarrow=False, xanchor="left", yanchor="top",
                           font=dict(color=EVENT_COLOR, size=11))
    fig.update_xaxes(title_text=knob, type="log" if log_x else "linear")
    fig.update_yaxes(title_text="final loss")
    return fig
