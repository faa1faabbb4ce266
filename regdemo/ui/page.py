"""The page: sidebar (preset, controls, run buttons) and the live panels."""

from __future__ import annotations

import re

import streamlit as st

from regdemo import classroom
from regdemo.config import LIVE_KNOBS, STRUCTURAL_KNOBS, Config, ConfigError
from regdemo.lessons import LESSONS
from regdemo.presets import DEFAULT_PRESET, PRESETS
from regdemo.runner import QUEUED, RUNNING, STOPPED
from regdemo.store import is_run_id
from regdemo.ui import (
    code_panel,
    compare,
    controls,
    explain,
    lesson_panel,
    panels,
    share,
    sweeps,
    upload_panel,
)
from regdemo.ui.state import get_runner, get_store, session_runs


# ----------------------------------------------------------------- state changes
def _load_preset(name: str) -> None:
    st.session_state["preset"] = name
    lesson_panel.start(None)  # a scenario picked by hand ends the lesson
    controls.load_into_widgets(PRESETS[name].config)
    _reset_run()


def _load_shared(config: Config) -> None:
    controls.load_into_widgets(config)
    _reset_run()


def _close_shared() -> None:
    st.session_state.pop("shared_run", None)


def _on_lesson_change() -> None:
    lesson_panel.start(st.session_state.get("w_lesson"))
    _reset_run()


def _on_preset_change() -> None:
    _load_preset(st.session_state["w_preset"])


def _init_from_url() -> None:
    """First visit: the link's preset, lesson and settings, with a warning for what was
    ignored, and its classroom flags (hidden and locked controls, projector, A/B)."""
    query = st.query_params.to_dict()
    warnings = []
    name = query.get("preset", DEFAULT_PRESET)
    if name not in PRESETS:
        warnings.append(f"unknown preset {name!r}; showing '{DEFAULT_PRESET}'")
        name = DEFAULT_PRESET
    room, room_problems = classroom.from_query(query, LESSONS)
    st.session_state["classroom"] = room
    st.session_state["w_projector"] = room.projector
    lesson_panel.start(room.lesson)  # a lesson opens at its own pace...
    if "speed" in query or room.lesson is None:  # ...unless the link sets one
        # Kept apart from the slider's state too: a link may hide the slider, and
        # Streamlit drops the state of widgets it does not draw.
        st.session_state["w_speed"] = st.session_state["speed"] = room.speed
    base = LESSONS[room.lesson].config if room.lesson else PRESETS[name].config
    config, problems = Config.from_query(query, base=base)
    st.session_state["preset"] = st.session_state["w_preset"] = name
    controls.load_into_widgets(config)
    if room.ab:
        warnings += _open_ab(name, config)
    shared = query.get("run")
    if shared is not None and is_run_id(shared):
        st.session_state["shared_run"] = shared  # a saved run someone shared, read-only
    elif shared is not None:
        warnings.append(f"'run' must be a saved run's id (12 lowercase hex digits); got "
                        f"{shared[:40]!r}")
    st.session_state["link_warnings"] = warnings + room_problems + problems
    st.session_state["initialized"] = True


def _open_ab(preset: str, config: Config) -> list[str]:
    """A classroom A/B link: A without the preset's regularizer, B with it, side by side."""
    baseline = PRESETS[preset].baseline
    if not baseline:
        return [f"'ab' needs a scenario with a regularizer; '{preset}' has none"]
    a_config = config.replace(**baseline)
    controls.load_into_widgets(a_config)
    a = _new_run(a_config)
    b = get_runner().create(config)
    b.name = f"{_run_name(config)} (B: {PRESETS[preset].regularizer})"
    b.owner = a.owner
    st.session_state["run_b"] = b.id
    changed = ", ".join(f"{k} = {getattr(config, k)}" for k in baseline)
    st.session_state["fork"] = {"epoch": 0, "events": 0, "label": f"B: {changed}"}
    session_runs().run_ids.add(b.id)
    st.session_state["w_branch"] = "A"
    return []


def _handle(slot: str = "run_id"):
    """The session's run (A), or with slot="run_b" its fork (B); None if there is none."""
    run_id = st.session_state.get(slot)
    return get_runner().get(run_id) if run_id is not None else None


def _plain(text: str, limit: int = 300) -> str:
    """User text for a markdown element: shortened, with markdown's specials escaped."""
    text = text if len(text) <= limit else text[:limit] + "…"
    return re.sub(r"([\\`*_\[\]()#!|<>~$])", r"\\\1", text)


def _handles() -> list:
    """A, and B when the run was forked: buttons act on both."""
    return [h for h in (_handle(), _handle("run_b")) if h is not None]


def _drop_fork() -> None:
    run_id = st.session_state.pop("run_b", None)
    st.session_state.pop("fork", None)
    st.session_state["w_branch"] = "A"
    if run_id is not None:
        get_runner().forget(run_id)
        session_runs().run_ids.discard(run_id)


def _reset_run() -> None:
    _drop_fork()
    run_id = st.session_state.pop("run_id", None)
    if run_id is not None:
        get_runner().forget(run_id)
        session_runs().run_ids.discard(run_id)


def _run_name(config: Config) -> str:
    """A saved run's name: its scenario and what was changed from it (at most three)."""
    lesson = lesson_panel.current()
    preset = st.session_state.get("preset", DEFAULT_PRESET)
    start = lesson.config if lesson else PRESETS[preset].config
    base = start.to_query()
    changed = [f"{k}={v}" for k, v in config.to_query().items() if base.get(k) != v]
    head = f"lesson {lesson.key}" if lesson else preset
    return " ".join([head, *changed[:3]]) + (" …" if len(changed) > 3 else "")


def _new_run(config: Config):
    _reset_run()
    handle = get_runner().create(config)
    handle.name = _run_name(config)
    handle.owner = st.session_state.get("owner")
    st.session_state["run_id"] = handle.id
    session_runs().run_ids.add(handle.id)
    handle.set_speed(_speed())
    return handle


def _speed_setting() -> int | str:
    """The pace picked on the slider (or set by the link when the slider is hidden)."""
    return st.session_state.get("w_speed", st.session_state.get("speed",
                                                                classroom.DEFAULT_SPEED))


def _speed() -> float | None:
    """Epochs per second for the runner; None for max."""
    value = _speed_setting()
    return None if value == "max" else float(value)


def _structural_changes(handle, config: Config) -> list[str]:
    old = handle.config
    return [k for k in sorted(STRUCTURAL_KNOBS) if getattr(old, k) != getattr(config, k)]


def _train(config: Config) -> None:
    handle = _handle()
    if handle is None or _structural_changes(handle, config) or (
            handle.status == STOPPED and _handle("run_b") is None):
        _new_run(config)
    for h in _handles():
        h.set_speed(_speed())
        h.start()


def _step(config: Config) -> None:
    handle = _handle()
    if handle is None or _structural_changes(handle, config):
        _new_run(config)
    for h in _handles():
        h.step(1)


def _pause() -> None:
    for h in _handles():
        h.pause()


def _fork() -> None:
    """Clone run A at its current epoch into B; both train on, side by side."""
    a = _handle()
    if a is None or not a.snapshot().epoch:
        st.toast("Train a few epochs first: a fork continues from the current epoch.")
        return
    _drop_fork()
    b = a.fork()
    b.name = f"{getattr(a, 'name', 'run')} (fork B)"
    snap = a.snapshot()
    st.session_state["run_b"] = b.id
    st.session_state["fork"] = {"epoch": snap.epoch, "events": len(snap.events)}
    session_runs().run_ids.add(b.id)
    b.set_speed(_speed())
    if a.status in (RUNNING, QUEUED):
        b.start()
    st.session_state["w_branch"] = "B"  # the next knob change goes to the new branch


def _on_owner() -> None:
    """A returning browser (its owner cookie): after a reload the page takes back the run
    it had, which trained on meanwhile (the board then resyncs its whole history)."""
    owner = panels.board_owner()
    if owner is None:
        return
    st.session_state["owner"] = owner
    st.session_state["recheck"] = False
    if _handle() is None:
        run = get_runner().orphan_of(owner)
        if run is not None:
            st.session_state["run_id"] = run.id
            session_runs().run_ids.add(run.id)
            controls.load_into_widgets(run.config)
        else:
            # Just after a reload the old page may still be read (or not yet closed): the
            # board asks once more a moment later.
            st.session_state["recheck"] = bool(get_runner().runs_of(owner))


def _controls_config() -> tuple[Config, list[str]]:
    """The Config the controls hold (on the lesson's or scenario's defaults), and what in
    them a run cannot take."""
    lesson = lesson_panel.current()
    base = lesson.config if lesson else PRESETS[st.session_state["preset"]].config
    return Config.from_query(controls.current_values(), base=base)


def _on_command() -> None:
    """Train, Pause or Step from the board (its buttons on a phone, or the T, P, S keys)."""
    command = panels.board_command()
    config, problems = _controls_config()
    if command == "pause":
        _pause()
    elif command in ("train", "step") and not problems:
        (_train if command == "train" else _step)(config)


def _on_branch_change() -> None:
    """The live knobs now drive the other branch: show that branch's values."""
    target = _handle("run_b" if st.session_state.get("w_branch") == "B" else "run_id")
    if target is not None:
        controls.load_into_widgets(target.config)


def _apply_live(handle, config: Config) -> str | None:
    """Send changed live knobs to the running trainer; returns an error message if refused."""
    old = handle.config
    changes = {k: getattr(config, k) for k in LIVE_KNOBS if getattr(old, k) != getattr(config, k)}
    if not changes or handle.status == STOPPED:
        return None  # a finished run keeps its record: the change goes to the next run
    try:
        handle.set_live(**changes)
    except ConfigError as exc:
        return str(exc)
    return None


PROJECTOR_CSS = """<style>
html { font-size: 21px; }
[data-testid="stMetricValue"] { font-size: 1.7rem; }
/* The charts get the width: little padding around the main area (and the sidebar is
   folded away when a link opens the page in this mode). */
[data-testid="stMainBlockContainer"] { padding: 2.5rem 1.25rem 1rem; max-width: none; }
</style>"""
# On a phone the sidebar is a drawer: the board's own Train and Pause stand above the
# charts there (see ui/assets/board.css).


def main() -> None:
    """Draw the whole page."""
    # A projector link opens with the sidebar folded away: the charts fill the screen. The
    # same value on every rerun (a change of it folds or unfolds the sidebar again).
    if "sidebar" not in st.session_state:
        projector_link = st.query_params.get("projector", "") in ("1", "true", "yes", "on")
        st.session_state["sidebar"] = "collapsed" if projector_link else "auto"
    st.set_page_config(page_title="Regularization Lab", page_icon="📉", layout="wide",
                       initial_sidebar_state=st.session_state["sidebar"])
    # Streamlit fades an element while a rerun has not redrawn it yet; at three live ticks a
    # second that fade is a flicker on a projector. The charts update in place anyway.
    st.html("<style>[data-stale='true']{opacity:1 !important;transition:none !important}"
            "</style>")
    get_runner()  # the first page view starts the workers, so they are warm before Train
    if "initialized" not in st.session_state:
        _init_from_url()
        _on_owner()  # a returning browser (its cookie): take back a run a reload left
    # After a reconnect Streamlit hands the session a new, empty SessionRuns: this
    # session's runs must be in it, or closing the tab later would not stop them.
    session_runs().run_ids.update(
        i for i in (st.session_state.get("run_id"), st.session_state.get("run_b")) if i)
    room: classroom.Classroom = st.session_state.get("classroom", classroom.Classroom())
    hide, lock = room.hide, room.lock
    projector = bool(st.session_state.get("w_projector"))
    if projector:
        st.html(PROJECTOR_CSS)
    lesson = lesson_panel.current()
    config, problems = _controls_config()

    sb = st.sidebar
    sb.title("Regularization Lab")
    if "lesson" not in hide:
        st.session_state.setdefault("w_lesson", st.session_state.get("lesson", ""))
        sb.selectbox("Lesson", ["", *LESSONS], key="w_lesson", on_change=_on_lesson_change,
                     format_func=lambda k: LESSONS[k].title if k else "None: free play",
                     help="Guided experiments: a question to predict, then steps that show "
                          "one technique's effect. Each step can be done for you.")
    if "preset" not in hide and lesson is None:
        st.session_state.setdefault("w_preset", st.session_state["preset"])
        sb.selectbox("Scenario", list(PRESETS), key="w_preset", on_change=_on_preset_change,
                     format_func=lambda n: PRESETS[n].title,
                     help="Classroom scenarios; each sets every control below.")
        sb.caption(PRESETS[st.session_state["preset"]].watch)
    b = sb.columns(2)
    # Settings the controls hold but a run cannot take (batch norm with batches of 1, ...):
    # no Train or Step until they are fixed; each message stands under its control.
    blocked = bool(problems)
    if b[0].button("Train", type="primary", key="btn_train", width="stretch",
                   icon=":material/play_arrow:", disabled=blocked,
                   help="Fix the settings marked in red below first." if blocked else
                   "Start training (or resume). A changed structural control (data, "
                   "model, optimizer, seed) starts a new run."):
        _train(config)
    if b[1].button("Pause", key="btn_pause", width="stretch", icon=":material/pause:",
                   help="Hold the run; Train resumes it where it stopped."):
        _pause()
    if b[0].button("Step", key="btn_step", width="stretch", icon=":material/skip_next:",
                   disabled=blocked,
                   help="Train exactly one epoch, then pause: follow the curves by hand."):
        _step(config)
    if b[1].button("Reset", key="btn_reset", width="stretch", icon=":material/restart_alt:",
                   help="Throw the run away; the next Train starts from fresh weights."):
        _reset_run()
    if "fork" not in hide:
        if b[0].button("Fork A/B", key="btn_fork", width="stretch",
                       icon=":material/call_split:",
                       help="Clone the run at this epoch: same data, same weights. Change a "
                            "knob on one branch and watch both train side by side."):
            _fork()
        if b[1].button("Unfork", key="btn_unfork", width="stretch", icon=":material/close:",
                       disabled=_handle("run_b") is None, help="Stop branch B; A trains on."):
            _drop_fork()
    if blocked:
        sb.error("Train needs settings a run can take: see the messages in red below.",
                 icon=":material/block:")
    if _handle("run_b") is not None:
        sb.segmented_control("Live knobs change", ["A", "B"], key="w_branch",
                             on_change=_on_branch_change, required=True,
                             help="Which branch the ⚡ knobs below act on.")
    if "speed" not in hide:
        st.session_state.setdefault("w_speed", st.session_state.get("speed",
                                                                    classroom.DEFAULT_SPEED))
        sb.select_slider("Speed (epochs/s)", classroom.SPEEDS, key="w_speed",
                         help="Slow the run down so a class can follow it; 'max' trains as "
                              "fast as the server allows.")
    handle = _handle()
    for h in _handles():
        h.set_speed(_speed())
    if handle is not None:
        target = _handle("run_b") if st.session_state.get("w_branch") == "B" else None
        refused = _apply_live(target or handle, config)
        if refused:
            problems = problems + [refused]
        changed = _structural_changes(handle, config)
        if changed:
            sb.info(f"Changed {', '.join(changed)}: these need a new run. Press Train to "
                    "start it.", icon=":material/refresh:")
    # Your own data goes with the Dataset control: not where a link hides or locks it.
    uploader = {} if {"dataset"} & (hide | lock) else {"Data": upload_panel.draw}
    controls.draw_controls(controls.problems_by_field(problems), hide, lock, uploader)
    sb.toggle("Projector mode", key="w_projector",
              help="Large type, thick lines, strong contrast and fewer panels, for the back "
                   "of a lecture hall.")
    now = classroom.Classroom(lesson.key if lesson else None, hide, lock, projector,
                              speed=_speed_setting())
    share.share_panel(st.session_state["preset"], config, now)

    shared = st.session_state.get("shared_run")
    st.query_params.from_dict({"preset": st.session_state["preset"], **config.to_query(),
                               **now.to_query(), **({"run": shared} if shared else {})})
    _link_warnings()
    if shared:
        compare.shared_run_panel(get_store(), shared, _load_shared, _close_shared)

    if "tabs" in hide:
        _live_tab(config.task, config)
        return
    live, saved, sweep, code = st.tabs(["Live run", "Saved runs", "Sweep", "Code"], key="w_tab")
    with live:
        _live_tab(config.task, config)
    with saved:
        get_runner().save_now(session_runs().run_ids)  # the tab lists this page's runs whole
        compare.saved_runs_tab(get_store(), panels.board_owner() or
                               st.session_state.get("owner"))
    with sweep:
        sweeps.sweep_tab(config)
    with code:
        code_panel.code_tab(_handle(), config)


def _link_warnings() -> None:
    """What a link asked for and the page could not do: one box, dismissed with a click."""
    found = st.session_state.get("link_warnings", [])
    if not found:
        return
    with st.container(key="link_box"):
        # The link's own text, shown as text: no markdown links or images from a URL.
        lines = "\n".join(f"- {_plain(message)}" for message in found[:10])
        more = f"\n- … and {len(found) - 10} more" if len(found) > 10 else ""
        st.warning(f"Ignored from the link:\n{lines}{more}", icon=":material/link:")
        if st.button("Dismiss", key="btn_dismiss_link", icon=":material/close:"):
            st.session_state["link_warnings"] = []
            st.rerun()


def _live_tab(task: str, config: Config | None = None) -> None:
    """The lesson (if any), the primer, then the run's message and the live board."""
    lesson_panel.draw(_new_run, _handle)
    projector = bool(st.session_state.get("w_projector"))
    if not projector:
        explain.regularization_primer()
    panels.live_panels(_handle(), task, _handle("run_b"), st.session_state.get("fork"),
                       projector=projector, on_recheck=_on_owner,
                       recheck=bool(st.session_state.get("recheck")), on_command=_on_command,
                       config=config)
