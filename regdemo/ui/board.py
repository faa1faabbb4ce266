"""The live board (one Components v2 element for every live chart) and a static chart.

Both load Plotly once per page from the server's own route (the bundle inside the plotly
package: no CDN, no iframe). The board's numbers come from the feed route, not from here.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from regdemo.ui.routes import FEED_PATH, PLOTLY_PATH

_ASSETS = Path(__file__).with_name("assets")

_BOARD = st.components.v2.component(
    "regdemo_board",
    js=(_ASSETS / "board.js").read_text(),
    css=(_ASSETS / "board.css").read_text(),
    isolate_styles=False,  # the page's fonts and sizes apply inside the board
)

_STATIC_JS = """
export default function ({ parentElement, data }) {
  let div = parentElement.querySelector(":scope > .rd-static");
  if (!div) {
    div = document.createElement("div");
    div.className = "rd-static";
    div.dataset.chart = data.key;
    parentElement.append(div);
  }
  if (div.__spec === data.spec) return;  // an unchanged figure costs nothing
  div.__spec = data.spec;
  if (!window.__regdemoPlotly) {
    window.__regdemoPlotly = new Promise((resolve, reject) => {
      if (window.Plotly) return resolve(window.Plotly);
      const s = document.createElement("script");
      s.src = data.plotly;
      s.onload = () => resolve(window.Plotly);
      s.onerror = () => { window.__regdemoPlotly = null; reject(new Error("plotly")); };
      document.head.appendChild(s);
    });
  }
  if (!div.offsetWidth) {
    // In a tab not shown yet: Plotly would lay out a zero-width chart (NaN paths). Draw
    // when the chart gets its size.
    if (!div.__waiting) {
      div.__waiting = new ResizeObserver(() => {
        if (!div.offsetWidth) return;
        div.__waiting.disconnect();
        div.__waiting = null;
        const spec = div.__spec;
        div.__spec = null;
        draw(spec);
      });
      div.__waiting.observe(div);
    }
    return;
  }
  draw(data.spec);
  function draw(spec) {
    div.__spec = spec;
    window.__regdemoPlotly.then((Plotly) => plot(Plotly, spec))
      .catch((err) => console.error("regdemo chart:", err));
  }
  function plot(Plotly, spec) {
    const fig = JSON.parse(spec);
    const layout = Object.assign({ paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
                                   autosize: true }, fig.layout || {});
    layout.font = Object.assign({ family: '"Source Sans", "Source Sans Pro", sans-serif',
                                  color: "#31333F", size: 13 }, layout.font || {});
    return Plotly.react(div, fig.data || [], layout, { responsive: true, displaylogo: false });
  }
}
"""

_STATIC = st.components.v2.component("regdemo_static_chart", js=_STATIC_JS,
                                     isolate_styles=False)


def _ignore() -> None:
    """A trigger's only job is the rerun it causes."""


def live_board(token: str, *, projector: bool, fork: dict | None, expect: list,
               score: str, empty_note: str, on_recheck, recheck: bool, on_command,
               key: str) -> None:
    """Mount the page's live board: it polls the feed for `token`'s runs by itself.

    `expect` holds, per run (A, B), the state the page was drawn for ('id:status:busy');
    when a run's state moves on, the board asks for one rerun (a trigger). The board sets
    the browser's owner cookie (a returning browser's page reads it when it opens); with
    `recheck` it asks once more a few seconds after mounting (trigger 'recheck', then
    `on_recheck` runs). Its own Train, Pause and Step (shown on phones) and the keys T, P
    and S send a trigger 'command' ('train:<time>', ...); `on_command` runs then.
    """
    _BOARD(key=key, data={
        "token": token, "feed": FEED_PATH, "plotly": PLOTLY_PATH, "projector": projector,
        "fork": fork, "expect": expect, "score": score, "empty_note": empty_note,
        "recheck": recheck,
    }, on_status_change=_ignore, on_recheck_change=on_recheck or _ignore,
        on_command_change=on_command or _ignore)


def static_chart(fig, key: str) -> None:
    """A Plotly figure drawn in place (the same Plotly as the board; zoom kept on redraws
    through the figure's `uirevision`)."""
    _STATIC(key=key, data={"key": key, "spec": fig.to_json(), "plotly": PLOTLY_PATH})
