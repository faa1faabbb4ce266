"""The Share panel: a link that opens exactly this page, set up for a class."""

from __future__ import annotations

import streamlit as st

from regdemo import classroom
from regdemo.config import Config
from regdemo.presets import PRESETS
from regdemo.ui.controls import CONTROLS

_PART_LABELS = {"preset": "Scenario picker", "lesson": "Lesson picker", "speed": "Speed",
                "fork": "Fork buttons", "tabs": "Saved runs and Sweep tabs"}


def _label(name: str) -> str:
    return CONTROLS[name].label if name in CONTROLS else _PART_LABELS.get(name, name)


def _base_url() -> str:
    """The address the browser shows for this page (without its query)."""
    try:
        url = st.context.url or ""
    except Exception:  # noqa: BLE001 - outside a browser session (tests): a relative link
        url = ""
    return url.split("?")[0] or "/"


def share_panel(preset: str, config: Config, current: classroom.Classroom) -> None:
    """Pick what the class sees; the link (with a copy button) opens exactly that page."""
    with st.sidebar.expander("Share: classroom link", icon=":material/share:"):
        st.caption("The link carries every setting, the seed (so the curves come out the "
                   "same), the lesson, and what to hide or lock.")
        hideable = [n for n in classroom.HIDEABLE if n in CONTROLS or n in _PART_LABELS]
        hide = st.multiselect("Hide", hideable, default=sorted(current.hide), key="share_hide",
                              format_func=_label,
                              help="Controls and page parts the class will not see.")
        lock = st.multiselect("Lock", [n for n in CONTROLS if n not in hide],
                              default=sorted(current.lock - set(hide)), key="share_lock",
                              format_func=_label,
                              help="Controls the class sees but cannot change.")
        projector = st.toggle("Open in projector mode", value=current.projector,
                              key="share_projector",
                              help="Large type and thick lines for a lecture hall.")
        has_baseline = bool(PRESETS[preset].baseline) and current.lesson is None
        ab = st.toggle("Open as A/B: without vs with the regularizer", key="share_ab",
                       disabled=not has_baseline,
                       help="Two runs side by side from the same start: A without this "
                            "scenario's regularizer, B with it."
                            if has_baseline else "Needs a scenario with a regularizer "
                            "(not during a lesson).")
        room = classroom.Classroom(current.lesson, frozenset(hide), frozenset(lock),
                                   projector, ab and has_baseline)
        st.code(classroom.link(_base_url(), preset, config, room), language=None,
                wrap_lines=True)
        st.caption("Copy it with the button in the box's corner.")
