"""The Share panel: a link that opens exactly this page, set up for a class."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import streamlit as st

from regdemo import classroom
from regdemo.config import Config
from regdemo.presets import PRESETS
from regdemo.ui.controls import CONTROLS

_PART_LABELS = {"preset": "Scenario picker", "lesson": "Lesson picker", "speed": "Speed",
                "fork": "Fork buttons", "tabs": "Saved runs and Sweep tabs"}


def _label(name: str) -> str:
    return CONTROLS[name].label if name in CONTROLS else _PART_LABELS.get(name, name)


def base_url() -> str:
    """The page's address for students: REGDEMO_PUBLIC_URL, else the one this browser used
    (its Host header, behind a proxy the forwarded one), without the query."""
    public = os.environ.get("REGDEMO_PUBLIC_URL", "").strip()
    if public:
        return public.split("?")[0].rstrip("/") + "/"
    try:
        headers = st.context.headers
        url = st.context.url or ""
    except Exception:  # noqa: BLE001 - outside a browser session (tests): a relative link
        return "/"
    host = headers.get("X-Forwarded-Host") or headers.get("Host") or ""
    if not host:
        return url.split("?")[0] or "/"
    scheme = headers.get("X-Forwarded-Proto") or urlsplit(url).scheme or "http"
    path = urlsplit(url).path or "/"
    return f"{scheme}://{host}{path}"


def local_only(url: str) -> bool:
    """A link that only this machine can open."""
    host = (urlsplit(url).hostname or "").lower()
    return host in ("localhost", "127.0.0.1", "::1") or host.startswith("127.")


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
                                   projector, ab and has_baseline, current.speed)
        base = base_url()
        st.code(classroom.link(base, preset, config, room), language=None, wrap_lines=True)
        st.caption("Copy it with the button in the box's corner.")
        if local_only(base):
            st.warning("This address only works on this computer. Open the page by the "
                       "address students reach (this machine's name or IP), or set "
                       "REGDEMO_PUBLIC_URL when starting the server.",
                       icon=":material/wifi_off:")
