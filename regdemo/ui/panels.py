"""The live run's panels: a message about the run's state, then the live board."""

from __future__ import annotations

import streamlit as st

from regdemo.runner import QUEUED, RUNNING, Snapshot
from regdemo.ui.board import live_board
from regdemo.ui.board_registry import OWNER, OWNER_COOKIE, REGISTRY
from regdemo.ui.state import get_runner, session_runs

TOKEN_KEY = "board_token"
BOARD_KEY = "live_board"  # the board's widget key


def board_token() -> str:
    """This session's board token (kept across reruns and reconnects of the session)."""
    if TOKEN_KEY not in st.session_state:
        st.session_state[TOKEN_KEY] = REGISTRY.new_token()
    return st.session_state[TOKEN_KEY]


def board_owner() -> str | None:
    """This browser's owner token: its cookie when the session opened, else (a browser's
    first visit, whose board set the cookie) as the board's polls carried it; None before
    the first poll."""
    owner = st.context.cookies.get(OWNER_COOKIE)
    if isinstance(owner, str) and OWNER.fullmatch(owner):
        return owner
    board = REGISTRY.get(st.session_state[TOKEN_KEY]) if TOKEN_KEY in st.session_state \
        else None
    return board.owner if board is not None else None


def board_command() -> str | None:
    """The command the board just sent ('train', 'pause' or 'step'), in its callback."""
    state = st.session_state.get(BOARD_KEY)
    value = state.get("command") if hasattr(state, "get") else None
    command = value.split(":")[0] if isinstance(value, str) else None
    return command if command in ("train", "pause", "step") else None


def state_of(snap: Snapshot | None) -> str | None:
    """A run's state as the board reports it: 'id:status:busy'."""
    return None if snap is None else f"{snap.run_id}:{snap.status}:{int(snap.busy)}"


def run_message(snap: Snapshot) -> None:
    """At most one message about the run's state (drawn on the rerun the board asks for)."""
    if snap.status == RUNNING and not snap.history and not get_runner().ready():
        st.info("Starting the training workers: the first run after a server start takes a "
                "few seconds.", icon=":material/hourglass_top:")
    if snap.status == QUEUED:
        st.warning("The server is busy: this run is queued and starts when a slot frees up.")
    if snap.diverged or snap.error:
        st.error(snap.stop_reason, icon=":material/error:")
    elif snap.stop_reason:
        st.info(snap.stop_reason.capitalize(), icon=":material/flag:")


def live_panels(handle, task: str, handle_b=None, fork: dict | None = None,
                projector: bool = False, on_recheck=None, recheck: bool = False,
                on_command=None, config=None) -> None:
    """The run's state message and the live board (`handle` is None before the first Train;
    the board then shows the data of `config`, the controls' settings).

    The board is mounted on the page's first run, so Plotly loads while the page is read;
    it then polls the feed route for new epochs by itself (no fragment, no reruns).
    """
    token = board_token()
    runner = get_runner()
    a = handle.snapshot(since=None) if handle is not None else None
    b = handle_b.snapshot(since=None) if handle_b is not None and a is not None else None
    REGISTRY.publish(token, runner, (a.run_id if a else None, b.run_id if b else None),
                     preview=config)
    session_runs().board_token = token
    # Messages sit in one container above the board, so the board keeps its place in the
    # page's element tree whatever the run's state: it is never remounted by a rerun.
    with st.container():
        if a is None:
            st.info("Press **Train** to start. Change the live knobs (⚡) while it trains and "
                    "watch the curves react; each change is marked on the chart.",
                    icon=":material/play_arrow:")
        else:
            run_message(a)
            if b is not None and b.stop_reason and b.stop_reason != a.stop_reason:
                st.caption(f"B: {b.stop_reason}")
    task = a.config.task if a is not None else task
    fork_info = None
    if b is not None:
        fork_info = {"epoch": (fork or {}).get("epoch", 0), "events": (fork or {}).get("events", 0),
                     "label": (fork or {}).get("label")}
    live_board(token, projector=projector, fork=fork_info, expect=[state_of(a), state_of(b)],
               score="R²" if task == "regression" else "accuracy",
               empty_note="Press Train to start: the curves grow here, live.",
               on_recheck=on_recheck, recheck=recheck, on_command=on_command, key=BOARD_KEY)
