"""The lesson beside the charts: the question to predict, numbered steps, "Do it for me"."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from regdemo.config import Config
from regdemo.lessons import LESSONS, Lesson, Step
from regdemo.runner import QUEUED, RUNNING
from regdemo.ui import controls

STEP_KEY = "lesson_step"  # index of the step the panel shows
REVEAL_KEY = "lesson_reveal"


def current() -> Lesson | None:
    """The lesson this session follows, if any."""
    # Not the picker's widget state: a link may hide the picker, and Streamlit drops the
    # state of widgets it does not draw.
    return LESSONS.get(st.session_state.get("lesson") or "")


def start(key: str | None) -> None:
    """Follow lesson `key` (None: free play): its scenario goes into the controls."""
    st.session_state["lesson"] = st.session_state["w_lesson"] = key or ""
    st.session_state[STEP_KEY] = 0
    st.session_state[REVEAL_KEY] = False
    lesson = LESSONS.get(key or "")
    if lesson is not None:
        controls.load_into_widgets(lesson.config)
        st.session_state["w_speed"] = st.session_state["speed"] = lesson.speed  # its pace


def _goto(index: int) -> None:
    st.session_state[STEP_KEY] = index


def _do_step(step: Step, lesson: Lesson, new_run: Callable[[Config], object],
             handle: Callable[[], object]) -> None:
    """What the step says, done for the student; then on to the next step.

    When the next step is meant for a later epoch, the run trains exactly up to it and
    pauses there, so the class reads the step before acting.
    """
    run = handle()
    if step.train or step.restart or run is None:
        config = lesson.config_for(step)
        controls.load_into_widgets(config)
        run = new_run(config)
    if step.live:
        run.set_live(**step.live)  # recorded as an event: the chart marks it
        for name, value in step.live.items():
            controls.set_widget(name, value)
    index = lesson.steps.index(step)
    following = lesson.steps[index + 1] if index + 1 < len(lesson.steps) else None
    epoch = run.snapshot(touch=False).epoch
    if following is not None and following.at_epoch and following.at_epoch > epoch:
        run.pause()
        run.step(following.at_epoch - epoch)
    elif run.status not in (RUNNING, QUEUED):
        run.start()
    st.session_state[STEP_KEY] = min(index + 1, len(lesson.steps) - 1)


def _action_words(step: Step) -> str:
    """What "Do it for me" will do, in a few words."""
    if step.restart:
        changes = ", ".join(f"{k} = {v}" for k, v in step.restart.items())
        return f"Start a new run with {changes}"
    if step.live:
        changes = ", ".join(f"{k} → {v}" for k, v in step.live.items())
        return f"Change {changes} in the running run"
    if step.train:
        return "Start the lesson's run"
    return ""


def draw(new_run: Callable[[Config], object], handle: Callable[[], object]) -> None:
    """The lesson panel: goal, prediction, the current step with its buttons, the reveal."""
    lesson = current()
    if lesson is None:
        return
    index = min(st.session_state.get(STEP_KEY, 0), len(lesson.steps) - 1)
    step = lesson.steps[index]
    with st.container(border=True, key="lesson_panel"):
        left, right = st.columns([3, 2])
        with left:
            st.markdown(f"#### {lesson.title}")
            st.caption(lesson.goal)
            at = f" (around epoch {step.at_epoch})" if step.at_epoch else ""
            st.markdown(f"**Step {index + 1} of {len(lesson.steps)}{at}.** {step.text}")
            cols = st.columns([1, 2, 1])
            cols[0].button("Back", key="lesson_back", icon=":material/arrow_back:",
                           disabled=index == 0, on_click=_goto, args=(index - 1,),
                           help="The previous step.", width="stretch")
            words = _action_words(step)
            cols[1].button("Do it for me", key="lesson_do", type="primary",
                           icon=":material/auto_fix_high:", disabled=not words,
                           on_click=_do_step, args=(step, lesson, new_run, handle),
                           help=(words + ", then go to the next step.") if words else
                           "Nothing to change in this step: watch the charts.",
                           width="stretch")
            cols[2].button("Next", key="lesson_next", icon=":material/arrow_forward:",
                           disabled=index == len(lesson.steps) - 1, on_click=_goto,
                           args=(index + 1,), help="The next step.", width="stretch")
        with right:
            st.markdown(f"**Predict first.** {lesson.question}")
            revealed = st.toggle("Show what happens and why", key=REVEAL_KEY,
                                 help="Make your prediction before you look.")
            if revealed:
                st.success(lesson.reveal, icon=":material/lightbulb:")
