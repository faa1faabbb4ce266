"""The page: sidebar (preset, controls, run buttons) and the live panels."""

from __future__ import annotations

import streamlit as st

from regdemo.config import LIVE_KNOBS, STRUCTURAL_KNOBS, Config, ConfigError
from regdemo.presets import DEFAULT_PRESET, PRESETS
from regdemo.runner import QUEUED, RUNNING, STOPPED
from regdemo.ui import controls, panels
from regdemo.ui.state import get_runner, session_runs

POLL_SECONDS = 0.3  # live panels redraw ~3 times a second while a run trains
SPEEDS = ("max", 500, 200, 100, 50, 20, 10, 5)


# ----------------------------------------------------------------- state changes
def _load_preset(name: str) -> None:
    st.session_state["preset"] = name
    controls.load_into_widgets(PRESETS[name].config)
    _reset_run()


def _on_preset_change() -> None:
    _load_preset(st.session_state["w_preset"])


def _init_from_url() -> None:
    """First visit: the link's preset and settings, with a warning for what was ignored."""
    query = st.query_params.to_dict()
    warnings = []
    name = query.get("preset", DEFAULT_PRESET)
    if name not in PRESETS:
        warnings.append(f"unknown preset {name!r}; showing '{DEFAULT_PRESET}'")
        name = DEFAULT_PRESET
    config, problems = Config.from_query(query, base=PRESETS[name].config)
    st.session_state["preset"] = st.session_state["w_preset"] = name
    controls.load_into_widgets(config)
    st.session_state["link_warnings"] = warnings + problems
    st.session_state["initialized"] = True


def _handle():
    run_id = st.session_state.get("run_id")
    return get_runner().get(run_id) if run_id is not None else None


def _reset_run() -> None:
    run_id = st.session_state.pop("run_id", None)
    if run_id is not None:
        get_runner().forget(run_id)
        session_runs().run_ids.discard(run_id)


def _new_run(config: Config):
    _reset_run()
    handle = get_runner().create(config)
    st.session_state["run_id"] = handle.id
    session_runs().run_ids.add(handle.id)
    handle.set_speed(_speed())
    return handle


def _speed():
    value = st.session_state.get("w_speed", "max")
    return None if value == "max" else float(value)


def _structural_changes(handle, config: Config) -> list[str]:
    old = handle.config
    return [k for k in sorted(STRUCTURAL_KNOBS) if getattr(old, k) != getattr(config, k)]


def _train(config: Config) -> None:
    handle = _handle()
    if handle is None or _structural_changes(handle, config) or handle.status == STOPPED:
        handle = _new_run(config)
    handle.set_speed(_speed())
    handle.start()


def _step(config: Config) -> None:
    handle = _handle()
    if handle is None or _structural_changes(handle, config):
        handle = _new_run(config)
    handle.step(1)


def _apply_live(handle, config: Config) -> str | None:
    """Send changed live knobs to the running trainer; returns an error message if refused."""
    old = handle.config
    changes = {k: getattr(config, k) for k in LIVE_KNOBS if getattr(old, k) != getattr(config, k)}
    if not changes:
        return None
    try:
        handle.set_live(**changes)
    except ConfigError as exc:
        return str(exc)
    return None


def main() -> None:
    """Draw the whole page."""
    st.set_page_config(page_title="Regularization Lab", page_icon=":material/show_chart:",
                       layout="wide")
    get_runner()  # the first page view starts the workers, so they are warm before Train
    if "initialized" not in st.session_state:
        _init_from_url()
    config, problems = Config.from_query(controls.current_values(),
                                         base=PRESETS[st.session_state["preset"]].config)

    sb = st.sidebar
    sb.title("Regularization Lab")
    sb.selectbox("Scenario", list(PRESETS), key="w_preset", on_change=_on_preset_change,
                 format_func=lambda n: PRESETS[n].title,
                 help="Classroom scenarios; each sets every control below.")
    sb.caption(PRESETS[st.session_state["preset"]].watch)
    b = sb.columns(2)
    if b[0].button("Train", type="primary", key="btn_train", width="stretch",
                   icon=":material/play_arrow:"):
        _train(config)
    if b[1].button("Pause", key="btn_pause", width="stretch", icon=":material/pause:") \
            and _handle():
        _handle().pause()
    if b[0].button("Step", key="btn_step", width="stretch", icon=":material/skip_next:"):
        _step(config)
    if b[1].button("Reset", key="btn_reset", width="stretch", icon=":material/restart_alt:"):
        _reset_run()
    sb.select_slider("Speed (epochs/s)", SPEEDS, key="w_speed",
                     help="Slow the run down so a class can follow it.")
    handle = _handle()
    if handle is not None:
        handle.set_speed(_speed())
        refused = _apply_live(handle, config)
        if refused:
            problems = problems + [refused]
        changed = _structural_changes(handle, config)
        if changed:
            sb.info(f"Changed {', '.join(changed)}: these need a new run. Press Train to "
                    "start it.", icon=":material/refresh:")
    controls.draw_controls(controls.problems_by_field(problems))

    st.query_params.from_dict({"preset": st.session_state["preset"], **config.to_query()})
    for message in st.session_state.get("link_warnings", []):
        st.warning(f"Ignored from the link: {message}", icon=":material/link:")

    # run_every is fixed when the fragment is made: poll only while a run trains.
    running = handle is not None and handle.status in (RUNNING, QUEUED)
    st.session_state["polling"] = running
    st.session_state["task"] = config.task
    st.fragment(run_every=POLL_SECONDS if running else None)(_live)()


def _live() -> None:
    """The fragment: live panels, and one full rerun when the run stops (polling off)."""
    handle = _handle()
    panels.live_panels(handle, st.session_state.get("task", "classification"))
    if st.session_state.get("polling") and (handle is None
                                            or handle.status not in (RUNNING, QUEUED)):
        st.rerun(scope="app")
