"""Pure chart builders: (history, views) -> Plotly figures. No state, no Streamlit."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

# Colorblind-safe pair (Okabe-Ito blue / vermillion), also told apart by dash style.
TRAIN_COLOR, VAL_COLOR = "#0072B2", "#D55E00"
GAP_FILL = "rgba(213, 94, 0, 0.12)"
EVENT_COLOR, BEST_COLOR = "#6a3d9a", "#009E73"
CLASS_COLORS = ("#0072B2", "#D55E00")
# One color per compared run (Okabe-Ito, without its yellow, which vanishes on white).
RUN_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
MAX_DRAWN_POINTS = 600  # per curve: more than a chart's pixel width only costs render time
# No named template: resolving one costs ~130 ms per figure, and Streamlit's theme applies.
_LAYOUT = dict(
    margin=dict(l=55, r=20, t=75, b=45),
    legend=dict(orientation="h", yanchor="bottom", y=1.01, xanchor="left", x=0),
    height=360,
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


def loss_figure(
    history: Sequence,
    events: Sequence = (),
    best_epoch: int | None = None,
    patience: int | None = None,
    metric: str = "loss",
    score_name: str = "accuracy",
    log_y: bool = False,
    window: int | None = None,
    uirevision: str = "loss",
) -> go.Figure:
    """Train vs val curves with the gap shaded, live-change markers and the best epoch."""
    if window:
        history = [r for r in history if r.epoch > history[-1].epoch - window] if history else []
    best = next((r for r in history if r.epoch == best_epoch), None) if best_epoch else None
    history = _thin(history)
    # numpy arrays, not lists: Plotly validates a 2,000-float list ~10x slower.
    epochs = np.array([r.epoch for r in history])
    if metric == "loss":
        train = np.array([r.train_loss for r in history])
        val = np.array([r.val_loss for r in history])
        title, y_title = "Loss: training vs validation", "loss"
    else:
        train = np.array([r.train_score for r in history])
        val = np.array([r.val_score for r in history])
        title, y_title = f"{score_name.capitalize()}: training vs validation", score_name
    # One dict, one Figure: this chart is rebuilt three times a second per session, and
    # plotly's add_vline/add_annotation/update_* calls cost 5x more than building it whole.
    data = [
        dict(type="scatter", x=epochs, y=train, name="training", mode="lines",
             line=dict(color=TRAIN_COLOR, width=2.5)),
        dict(type="scatter", x=epochs, y=val, name="validation", mode="lines",
             line=dict(color=VAL_COLOR, width=2.5, dash="dash"), fill="tonexty",
             fillcolor=GAP_FILL),
    ]
    shapes, notes = [], []
    first = epochs[0] if (window and len(epochs)) else 0  # events before a window are off-screen
    for event in events:
        if event.epoch < first:
            continue
        shapes.append(dict(type="line", x0=event.epoch, x1=event.epoch, xref="x", y0=0, y1=1,
                           yref="y domain", line=dict(color=EVENT_COLOR, width=1.5, dash="dot")))
        notes.append(dict(x=event.epoch, y=1, yref="paper", text=event.label, showarrow=False,
                          textangle=-90, xanchor="right", yanchor="top",
                          font=dict(color=EVENT_COLOR, size=11)))
    if best_epoch and len(epochs) and best_epoch >= first:
        if best is not None:
            y = best.val_loss if metric == "loss" else best.val_score
            data.append(dict(type="scatter", x=[best_epoch], y=[y],
                             name=f"best epoch {best_epoch}", mode="markers",
                             marker=dict(symbol="star", size=14, color=BEST_COLOR)))
        if patience:
            shapes.append(dict(type="rect", x0=best_epoch, x1=best_epoch + patience, xref="x",
                               y0=0, y1=1, yref="y domain", fillcolor=BEST_COLOR, opacity=0.08,
                               line=dict(width=0)))
            notes.append(dict(x=best_epoch, y=1, xref="x", yref="y domain", text="patience",
                              showarrow=False, xanchor="left", yanchor="top"))
    layout = dict(
        title=dict(text=title, x=0, y=0.97, font=dict(size=15)), uirevision=uirevision,
        shapes=shapes, annotations=notes, xaxis=dict(title=dict(text="epoch")),
        yaxis=dict(title=dict(text=y_title),
                   type="log" if log_y and metric == "loss" else "linear"),
        **_LAYOUT,
    )
    return go.Figure(data=data, layout=layout)


def compare_figure(
    runs: Sequence[tuple[str, Sequence, Sequence]],
    metric: str = "loss",
    score_name: str = "accuracy",
    log_y: bool = False,
    title: str | None = None,
    uirevision: str = "compare",
) -> go.Figure:
    """Several runs' curves on one chart: a color per run, training dashed, validation solid.

    `runs` holds (label, history, events); each run's live changes are marked in its color.
    """
    what = "Loss" if metric == "loss" else score_name.capitalize()
    fig = _figure(title or f"{what}: training (dashed) vs validation (solid)", uirevision)
    for i, (label, history, events) in enumerate(runs):
        color = RUN_COLORS[i % len(RUN_COLORS)]
        history = _thin(history)
        epochs = np.array([r.epoch for r in history])
        pick = (lambda r: (r.train_loss, r.val_loss)) if metric == "loss" else \
            (lambda r: (r.train_score, r.val_score))
        values = np.array([pick(r) for r in history]).reshape(-1, 2)
        fig.add_trace(go.Scatter(x=epochs, y=values[:, 0], name=f"{label} training",
                                 mode="lines", legendgroup=label,
                                 line=dict(color=color, width=2, dash="dash")))
        fig.add_trace(go.Scatter(x=epochs, y=values[:, 1], name=f"{label} validation",
                                 mode="lines", legendgroup=label,
                                 line=dict(color=color, width=2.5)))
        for event in events:
            fig.add_vline(x=event.epoch, line=dict(color=color, width=1.2, dash="dot"))
            fig.add_annotation(x=event.epoch, y=1, yref="paper", text=f"{label}: {event.label}",
                               showarrow=False, textangle=-90, xanchor="right", yanchor="top",
                               font=dict(color=color, size=11))
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text=what.lower(),
                     type="log" if log_y and metric == "loss" else "linear")
    return fig


def boundary_figure(view: dict, split, ghosts: tuple | None = None,
                    uirevision: str = "data") -> go.Figure:
    """Decision boundary: P(class 1) heatmap with training and validation points."""
    fig = _figure("Decision boundary", uirevision)
    # A heatmap paints far faster in the browser than a filled contour.
    fig.add_trace(go.Heatmap(
        x=view["x"], y=view["y"], z=view["z"], zmin=0, zmax=1, zsmooth="best",
        colorscale=[[0, "#c6dbef"], [0.5, "#ffffff"], [1, "#fdd0a2"]], showscale=False,
        hoverinfo="skip", name="P(class 1)"))
    fig.add_trace(go.Contour(
        x=view["x"], y=view["y"], z=view["z"], contours=dict(start=0.5, end=0.5, size=1,
                                                             coloring="none"),
        line=dict(color="#333", width=2), showscale=False, hoverinfo="skip", name="boundary"))
    if ghosts is not None:
        gx, gy = ghosts
        labels = gy.argmax(1) if gy.ndim == 2 else gy
        fig.add_trace(go.Scatter(x=gx[:, 0], y=gx[:, 1], mode="markers", name="augmented",
                                 marker=dict(size=6, color=np.array(CLASS_COLORS)[labels],
                                             opacity=0.25)))
    for name, x, y, symbol, size in (("validation", split.x_val, split.y_val, "x", 5),
                                     ("training", split.x_train, split.y_train, "circle", 9)):
        fig.add_trace(go.Scatter(
            x=x[:, 0], y=x[:, 1], mode="markers", name=name,
            marker=dict(symbol=symbol, size=size, color=np.array(CLASS_COLORS)[y],
                        line=dict(color="white" if symbol == "circle" else None,
                                  width=1 if symbol == "circle" else 0),
                        opacity=1.0 if name == "training" else 0.45)))
    fig.update_xaxes(title_text="x1 (standardised)", range=[view["x"][0], view["x"][-1]])
    fig.update_yaxes(title_text="x2 (standardised)", range=[view["y"][0], view["y"][-1]])
    return fig


def curve_figure(view: dict, split, uirevision: str = "data") -> go.Figure:
    """1-D regression: the fitted curve over training and validation points."""
    fig = _figure("Fitted curve", uirevision)
    fig.add_trace(go.Scatter(x=split.x_val[:, 0], y=split.y_val[:, 0], mode="markers",
                             name="validation", marker=dict(color=VAL_COLOR, size=5, opacity=0.4,
                                                            symbol="x")))
    fig.add_trace(go.Scatter(x=split.x_train[:, 0], y=split.y_train[:, 0], mode="markers",
                             name="training", marker=dict(color=TRAIN_COLOR, size=9)))
    fig.add_trace(go.Scatter(x=view["x"], y=view["y"], mode="lines", name="model",
                             line=dict(color="#222", width=3)))
    fig.update_xaxes(title_text="x (standardised)")
    fig.update_yaxes(title_text="y")
    return fig


def feature_figure(importance: np.ndarray, names: Sequence[str],
                   informative: Sequence[int] = (), uirevision: str = "data") -> go.Figure:
    """Per-feature weight size of the first layer; known informative features highlighted."""
    fig = _figure("Input feature weights (first layer)", uirevision)
    colors = [BEST_COLOR if i in set(informative) else "#888" for i in range(len(importance))]
    fig.add_trace(go.Bar(x=list(names), y=importance, marker_color=colors, name="|w| per input"))
    fig.update_yaxes(title_text="L2 norm of the input's weights")
    fig.update_xaxes(tickangle=-60 if len(names) > 12 else 0)
    return fig


def images_figure(images: np.ndarray, labels: Sequence, title: str,
                  shape=(8, 8), columns: int = 12, uirevision: str = "images") -> go.Figure:
    """A strip of small grayscale images (augmented digits, misclassified ones)."""
    n = min(len(images), columns * 2)
    rows = max(1, -(-n // columns))
    h, w = shape
    canvas = np.full((rows * (h + 1), columns * (w + 1)), np.nan)
    for i in range(n):
        r, c = divmod(i, columns)
        canvas[r * (h + 1): r * (h + 1) + h, c * (w + 1): c * (w + 1) + w] = images[i].reshape(h, w)
    fig = _figure(title, uirevision)
    fig.add_trace(go.Heatmap(z=canvas[::-1], colorscale="Greys", showscale=False,
                             hoverinfo="skip"))
    for i in range(n):
        r, c = divmod(i, columns)
        fig.add_annotation(x=c * (w + 1) + w / 2 - 0.5, y=rows * (h + 1) - r * (h + 1) - 0.2,
                           text=str(labels[i]), showarrow=False, font=dict(size=10),
                           yanchor="bottom")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x")
    fig.update_layout(height=110 + 70 * rows)
    return fig


def weights_figure(weights: dict[str, np.ndarray], uirevision: str = "weights") -> go.Figure:
    """Histogram of every layer's weights, overlaid; a spike at 0 is L1 at work."""
    fig = _figure("Weight histogram per layer", uirevision)
    # A diverged run's weights can be NaN or infinite: count only the finite ones.
    values = [v[np.isfinite(v)] for v in (w.reshape(-1) for w in weights.values())]
    top = max((float(np.abs(v).max()) for v in values if v.size), default=1.0) or 1.0
    edges = np.linspace(-top, top, 61)  # shared bins; counted here, not in the browser
    centers = (edges[:-1] + edges[1:]) / 2
    for name, v in zip(weights, values):
        counts, _ = np.histogram(v, bins=edges)
        fig.add_trace(go.Bar(x=centers, y=counts, name=name, opacity=0.6,
                             width=edges[1] - edges[0]))
    fig.update_layout(barmode="overlay", bargap=0)
    fig.update_xaxes(title_text="weight value")
    fig.update_yaxes(title_text="count")
    return fig


def norm_figure(history: Sequence, uirevision: str = "norm") -> go.Figure:
    """Weight norm and sparsity over epochs (two axes)."""
    history = _thin(history)
    epochs = np.array([r.epoch for r in history])
    data = [
        dict(type="scatter", x=epochs, y=np.array([r.weight_norm for r in history]),
             name="weight norm", line=dict(color=TRAIN_COLOR, width=2.5)),
        dict(type="scatter", x=epochs, y=np.array([100 * r.sparsity for r in history]),
             name="sparsity %", yaxis="y2", line=dict(color=BEST_COLOR, width=2.5, dash="dash")),
    ]
    layout = dict(
        _LAYOUT, title=dict(text="Weight norm and sparsity", x=0, y=0.97, font=dict(size=15)),
        uirevision=uirevision, margin=dict(_LAYOUT["margin"], r=60),
        xaxis=dict(title=dict(text="epoch")), yaxis=dict(title=dict(text="L2 norm")),
        yaxis2=dict(title=dict(text="zero weights %"), overlaying="y", side="right",
                    range=[0, 100], showgrid=False),
    )
    return go.Figure(data=data, layout=layout)


def sweep_figure(stats: Sequence, knob: str, log_x: bool = False, best=None,
                 current: float | None = None, uirevision: str = "sweep") -> go.Figure:
    """Final train and val loss against a knob, mean ± 1 std over seeds, best value starred.

    `stats` holds sweep.PointStats (value, *_mean, *_std); points whose runs all diverged
    are left out, so a gap in the curve means "diverged here".
    """
    fig = _figure(f"Validation curve: final loss against {knob}", uirevision)
    fine = [p for p in stats if p.val_loss_mean is not None]
    x = np.array([p.value for p in fine], dtype=float)
    for name, color, dash, mean_of, std_of in (
            ("training", TRAIN_COLOR, "dash", "train_loss_mean", "train_loss_std"),
            ("validation", VAL_COLOR, None, "val_loss_mean", "val_loss_std")):
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
                                 name=f"best {knob} = {best.value:.3g}",
                                 marker=dict(symbol="star", size=16, color=BEST_COLOR)))
    if current is not None and (current > 0 or not log_x):  # 0 has no place on a log axis
        fig.add_vline(x=current, line=dict(color=EVENT_COLOR, width=1.5, dash="dot"))
        fig.add_annotation(x=current, y=1, yref="paper", text=f"current {knob} = {current:g}",
                           showarrow=False, xanchor="left", yanchor="top",
                           font=dict(color=EVENT_COLOR, size=11))
    fig.update_xaxes(title_text=knob, type="log" if log_x else "linear")
    fig.update_yaxes(title_text="final loss")
    return fig


PROJECTOR_FONT = 20


def for_projector(fig: go.Figure) -> go.Figure:
    """The figure for the back of a lecture hall: large type, thick lines, strong contrast.

    Changes `fig` in place (idempotent) and returns it. Train and validation keep their
    colorblind-safe pair and differ by dash style too, so they stay apart in grayscale.
    """
    fig.update_layout(
        font=dict(size=PROJECTOR_FONT, color="#000000"),
        title_font=dict(size=PROJECTOR_FONT + 6),
        legend=dict(font=dict(size=PROJECTOR_FONT)),
        height=max(int(fig.layout.height or 360), 460),
        margin=dict(t=95),
    )
    axes = dict(tickfont=dict(size=PROJECTOR_FONT - 2, color="#000000"), gridcolor="#b0b0b0",
                linecolor="#000000", title_font=dict(size=PROJECTOR_FONT))
    fig.update_xaxes(**axes)
    fig.update_yaxes(**axes)
    fig.update_traces(line_width=5, selector=dict(type="scatter", mode="lines"))
    fig.update_traces(marker_size=22, selector=dict(type="scatter", mode="markers"))
    fig.update_shapes(line_width=3, selector=dict(type="line"))
    fig.update_annotations(font_size=PROJECTOR_FONT - 2)
    return fig


def placeholder_figure(title: str, note: str, height: int = 360) -> go.Figure:
    """An empty chart with a note: holds a chart's place (and loads Plotly) before a run."""
    return go.Figure(layout=dict(
        _LAYOUT, height=height, title=dict(text=title, x=0, y=0.97, font=dict(size=15)),
        xaxis=dict(visible=False), yaxis=dict(visible=False),
        annotations=[dict(text=note, x=0.5, y=0.5, xref="paper", yref="paper",
                          showarrow=False, font=dict(size=14, color="#808495"))],
    ))
