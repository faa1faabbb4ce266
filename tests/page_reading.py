"""What a page test reads off an AppTest page: the live board (through the feed, as the
browser does) and the static charts, as the JSON sent to the browser."""

from __future__ import annotations

import json

from regdemo.ui.routes import feed_reply
from regdemo.ui.state import get_runner


def run_handle(at):
    """The run the page holds (its session's run id, from the page's runner)."""
    return get_runner().get(at.session_state["run_id"])


def wait_until_parked(at, timeout=30.0):
    """Wait for the page's run to stop training, then rerun the page to draw it."""
    assert run_handle(at).wait(timeout)
    at.run()


def query_of(at) -> dict[str, str]:
    """The page's query parameters (the last value of a repeated one)."""
    return {k: v if isinstance(v, str) else v[-1] for k, v in at.query_params.items()}


def board(at, have: str = "") -> dict:
    """{'data': the board's mount data, 'runs': [A, B], 'next': ms}: the feed's reply for
    the page's board, for a board that holds `have` (default: nothing, so everything)."""
    elements = [e for e in at.get("bidi_component")
                if e.proto.component_name.endswith("regdemo_board")]
    assert len(elements) == 1, f"{len(elements)} live boards on the page"
    data = json.loads(elements[0].proto.json)
    status, reply = feed_reply(data["token"], have)
    assert status == 200, reply
    return {"data": data, **reply}


def static_charts(at) -> dict[str, dict]:
    """The page's static charts by key (compare, sweep), as Plotly figure dicts."""
    out = {}
    for element in at.get("bidi_component"):
        if element.proto.component_name.endswith("regdemo_static_chart"):
            data = json.loads(element.proto.json)
            out[data["key"]] = json.loads(data["spec"])
    return out


def event_labels(run: dict, start: int = 0) -> list[str]:
    """The event labels a board run carries (the chart's markers), from index `start`."""
    return [event[1] for event in run.get("events", [])[start:]]
