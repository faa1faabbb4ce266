"""A Plotly chart that updates in place (`Plotly.react`), so live ticks keep the user's zoom."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import plotly
import plotly.graph_objects as go
import streamlit.components.v1 as components

_SOURCE = Path(__file__).with_name("live_chart") / "index.html"
_BUNDLE = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _served_dir() -> Path:
    """A folder with the page and Plotly's own bundle (shipped in the plotly package: no CDN).

    Streamlit serves a component's folder and refuses symlinks that leave it, so the bundle
    is linked or copied next to the page once per plotly version.
    """
    page = _SOURCE.read_bytes()
    tag = hashlib.sha1(page + plotly.__version__.encode()).hexdigest()[:12]
    folder = Path(tempfile.gettempdir()) / f"regdemo-live-chart-{tag}"
    if not (folder / "plotly.min.js").exists():
        staging = Path(tempfile.mkdtemp(prefix="regdemo-live-chart-"))
        (staging / "index.html").write_bytes(page)
        try:
            os.link(_BUNDLE, staging / "plotly.min.js")
        except OSError:  # another filesystem: copy instead
            shutil.copyfile(_BUNDLE, staging / "plotly.min.js")
        try:
            staging.rename(folder)  # atomic: a second server process never sees half a folder
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # someone else made it first
    return folder


_component = components.declare_component("live_chart", path=str(_served_dir()))


def live_chart(fig: go.Figure, key: str, revision: str | None = None) -> None:
    """Draw `fig` in a persistent chart; a new `revision` resets zoom, the same one keeps it."""
    # The costly charts are kept and re-sent on every tick while they are fresh: serialise
    # each figure once per revision, not once per tick.
    cached = getattr(fig, "_regdemo_spec", None)
    if cached is None or cached[0] != revision:
        if revision is not None:
            fig.update_layout(uirevision=revision)
        cached = (revision, fig.to_json())
        fig._regdemo_spec = cached
    height = int(fig.layout.height or 360)
    _component(spec=cached[1], height=height, key=key, default=None)


# What tests and benchmarks read from each chart's frame in a real browser (Playwright).
_READ_JS = """() => {
  const d = document.getElementById('chart');
  if (!d || !d._fullLayout) return null;
  const trace = d._fullData && d._fullData[0];
  return {title: (d._fullLayout.title && d._fullLayout.title.text) || '',
          points: trace && trace.x ? trace.x.length : 0,
          traces: d._fullData.map(t => [t.name, t.x && t.x.length ? +t.x[t.x.length - 1] : 0]),
          annotations: (d.layout.annotations || []).map(a => a.text),
          renders: +d.dataset.renders || 0};
}"""


def read_chart(frame) -> dict | None:
    """{title, points, traces: [[name, last x]], annotations, renders} of the live chart
    in a Playwright frame (None if it has none yet)."""
    try:
        return frame.evaluate(_READ_JS)
    except Exception:  # noqa: BLE001 - a frame can detach while we read it
        return None


def read_charts(page) -> dict[str, dict]:
    """Title -> read_chart() of every live chart on a Playwright page."""
    charts = (read_chart(frame) for frame in page.frames[1:])
    return {chart["title"]: chart for chart in charts if chart}
