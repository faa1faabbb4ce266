"""The live board (one Components v2 element for every live chart) and a static chart.

Both load Plotly once per page from the server's own route (the bundle inside the plotly
package: no CDN, no iframe). The board's numbers come from the feed route, not from here.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from regdemo.ui.routes import FEED_PATH, PLOTLY_PATH

_ASSETS = Path(__file__).with_name("assets")

_LOADER = (_ASSETS / "plotly_loader.js").read_text()
_BOARD = st.components.v2.component(
    "regdemo_board",
    js=_LOADER + (_ASSETS / "board.js").read_text(),
    css=(_ASSETS / "board.css").read_text(),
    isolate_styles=False,  # the page's fonts and sizes apply inside the board
)


_STATIC = st.components.v2.component(
    "regdemo_static_chart", js=_LOADER + (_ASSETS / "static_chart.js").read_text(),
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
