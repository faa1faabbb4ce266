"""Classroom links (hide, lock, lesson, projector, A/B), the lesson panel, help everywhere."""

from urllib.parse import parse_qs, urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st_

from regdemo import classroom
from regdemo.config import Config
from regdemo.lessons import LESSONS
from regdemo.presets import PRESETS
from regdemo.ui.state import get_runner
from tests.page_reading import board, query_of, run_handle, wait_until_parked


def _open(app, **query):
    for key, value in query.items():
        app.query_params[key] = value
    app.run()
    assert not app.exception, app.exception
    return app


def _keys(app, kind: str) -> set:
    return {w.key for w in app.sidebar.get(kind)}


# ---------------------------------------------------------------- the link format
def test_flags_round_trip_through_a_link():
    room = classroom.Classroom("dropout", frozenset({"l1", "arch", "tabs"}),
                               frozenset({"dataset"}), projector=True, ab=False)
    url = classroom.link("http://host:8501/", "dropout", PRESETS["dropout"].config, room)
    query = {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}
    again, problems = classroom.from_query(query, LESSONS)
    assert again == room and problems == []
    config, problems = Config.from_query(query)
    assert config == PRESETS["dropout"].config and problems == []


def test_bad_flags_are_dropped_with_a_message():
    room, problems = classroom.from_query(
        {"lesson": "nope", "hide": "l1,<script>,l1", "lock": "l1,seed,zzz",
         "projector": "maybe", "ab": ["0", "1"]}, LESSONS)
    assert room.lesson is None and room.hide == {"l1"} and room.lock == {"seed"}
    assert not room.projector and room.ab  # repeated keys: the last one wins
    assert len(problems) == 4 and any("unknown lesson" in p for p in problems)


@settings(max_examples=300, deadline=None)
@given(st_.dictionaries(st_.sampled_from(["lesson", "hide", "lock", "projector", "ab", "x"]),
                        st_.one_of(st_.text(max_size=300),
                                   st_.lists(st_.text(max_size=50), max_size=3))))
def test_any_flags_parse_without_raising(query):
    room, problems = classroom.from_query(query, LESSONS)
    assert room.hide <= set(classroom.HIDEABLE) and room.lock <= set(classroom.CONTROL_NAMES)
    assert not room.hide & room.lock
    assert all(isinstance(p, str) and len(p) < 400 for p in problems)


# ---------------------------------------------------------------- the page
def test_hidden_controls_are_absent_and_locked_ones_disabled(app):
    _open(app, preset="l2", l1="0.001", hide="l1,dropout,lesson,fork", lock="dataset,l2")
    assert "w_l1" not in _keys(app, "select_slider") and "w_dropout" not in _keys(app, "slider")
    assert "w_lesson" not in _keys(app, "selectbox") and "btn_fork" not in _keys(app, "button")
    assert app.sidebar.selectbox(key="w_dataset").disabled
    assert app.sidebar.select_slider(key="w_l2").disabled
    assert not app.sidebar.select_slider(key="w_lr").disabled
    app.sidebar.button(key="btn_train").click().run()
    run_handle(app).pause()
    wait_until_parked(app)
    # The hidden value from the link is what trains, and the link keeps the flags.
    assert run_handle(app).config.l1 == 0.001
    assert query_of(app)["hide"] == "dropout,fork,l1,lesson"
    assert query_of(app)["lock"] == "dataset,l2"


def test_projector_mode_from_the_link_reaches_the_board(app):
    """The link's projector flag turns the toggle on and tells the board (which draws large
    type, thick lines and fewer panels: checked in the browser tests); off again, it is off."""
    _open(app, projector="1")
    assert app.sidebar.toggle(key="w_projector").value
    app.sidebar.button(key="btn_step").click().run()
    wait_until_parked(app)
    assert board(app)["data"]["projector"] is True
    app.sidebar.toggle(key="w_projector").set_value(False).run()
    assert board(app)["data"]["projector"] is False
    assert query_of(app).get("projector") is None


def test_a_speed_link_sets_the_pace_and_a_bad_one_warns(app):
    _open(app, speed="max")
    assert app.select_slider(key="w_speed").value == "max"
    assert query_of(app)["speed"] == "max"
    app.select_slider(key="w_speed").set_value(10).run()
    assert query_of(app)["speed"] == "10"
    app.select_slider(key="w_speed").set_value(50).run()
    assert "speed" not in query_of(app)  # the default is not written


def test_a_bad_speed_in_a_link_is_named_and_the_default_used(app):
    _open(app, speed="warp")
    assert any("'speed' must be one of" in w.value for w in app.warning)
    assert app.select_slider(key="w_speed").value == 50


def test_an_ab_link_opens_baseline_and_regularized_side_by_side(app):
    _open(app, preset="dropout", ab="1")
    a, b = run_handle(app), get_runner().get(app.session_state["run_b"])
    assert a.config.dropout == 0.0 and b.config.dropout == 0.5
    assert a.config.replace(dropout=0.5) == b.config  # one knob apart, same seed and data
    # Each is named by its own settings (B was once named after A: "dropout=0.0 (B: ...)").
    assert (a.name, b.name) == ("dropout dropout=0.0", "dropout (B: dropout)")
    app.sidebar.button(key="btn_step").click().run()
    assert a.wait(30) and b.wait(30)
    app.run()
    shown = board(app)
    assert shown["data"]["fork"]["label"] == "B: dropout = 0.5"  # the board's branch line
    assert [run["id"] for run in shown["runs"]] == [a.id, b.id]
    assert shown["runs"][0]["epoch"] == shown["runs"][1]["epoch"] == 1


def test_a_lesson_link_shows_the_step_and_does_it_for_me(app):
    """Step 1 trains up to the epoch step 2 is meant for and pauses; step 2's change lands
    exactly there (marked on the chart) and the run goes on to step 3's epoch."""
    lesson = LESSONS["l2"]
    first, second, third = lesson.steps[:3]
    assert first.train and second.live and second.at_epoch and third.at_epoch
    _open(app, lesson="l2")
    text = " ".join(m.value for m in app.markdown)
    assert lesson.title in text and lesson.question in text and "Step 1 of" in text
    assert app.sidebar.selectbox(key="w_lesson").value == "l2"
    app.button(key="lesson_do").click().run()
    handle = run_handle(app)
    assert handle.config == lesson.config
    assert handle.wait(60)
    app.run()
    assert handle.snapshot().epoch == second.at_epoch
    assert "Step 2 of" in " ".join(m.value for m in app.markdown)
    app.button(key="lesson_do").click().run()
    assert handle.wait(60)
    snap = handle.snapshot()
    assert snap.epoch == third.at_epoch
    assert [(e.epoch, e.knob, e.new) for e in snap.events] == [
        (second.at_epoch, k, v) for k, v in second.live.items()]
    for knob, value in second.live.items():
        assert app.session_state[f"w_{knob}"] == value  # the sidebar shows the change
    assert app.session_state["lesson_step"] == 2
    app.toggle(key="lesson_reveal").set_value(True).run()
    assert lesson.reveal in " ".join(s.value for s in app.success)


def test_picking_a_scenario_ends_the_lesson(app):
    _open(app, lesson="dropout")
    assert app.sidebar.selectbox(key="w_lesson").value == "dropout"
    app.sidebar.selectbox(key="w_lesson").set_value("").run()
    app.sidebar.selectbox(key="w_preset").set_value("l1_features").run()
    assert app.session_state["lesson"] == ""
    assert "Step 1 of" not in " ".join(m.value for m in app.markdown)


def test_every_control_and_button_explains_itself(app):
    _open(app)
    widgets = [w for kind in ("selectbox", "select_slider", "slider", "toggle", "number_input",
                              "text_input", "button", "multiselect")
               for w in app.sidebar.get(kind)]
    assert len(widgets) > 30
    missing = [w.key for w in widgets if not (w.help or "").strip()]
    assert missing == []


def test_share_panel_builds_the_link_with_the_picked_flags(app):
    _open(app, preset="dropout")
    app.sidebar.multiselect(key="share_hide").set_value(["l1", "arch"]).run()
    app.sidebar.toggle(key="share_projector").set_value(True).run()
    app.sidebar.toggle(key="share_ab").set_value(True).run()
    link = next(c.value for c in app.sidebar.code)
    query = {k: v[-1] for k, v in parse_qs(urlsplit(link).query).items()}
    assert query["hide"] == "arch,l1" and query["projector"] == "1" and query["ab"] == "1"
    assert Config.from_query(query)[0] == PRESETS["dropout"].config


def test_the_share_link_uses_the_public_address_and_keeps_the_pace(app, monkeypatch):
    """REGDEMO_PUBLIC_URL is the link's address (students cannot open localhost); the
    link carries a pace set on the page."""
    monkeypatch.setenv("REGDEMO_PUBLIC_URL", "http://lab.school.example:8501")
    _open(app, preset="dropout", speed="20")
    link = next(c.value for c in app.sidebar.code)
    assert link.startswith("http://lab.school.example:8501/?preset=dropout&")
    assert parse_qs(urlsplit(link).query)["speed"] == ["20"]
    assert not any("only works on this computer" in w.value for w in app.sidebar.warning)


def test_alocal_only_share_address_is_flagged():
    from regdemo.ui.share import local_only

    assert local_only("http://localhost:8501/") and local_only("http://127.0.0.1:8501/")
    assert not local_only("http://10.0.0.5:8501/") and not local_only("https://lab.example/")


def test_a_lesson_opens_at_its_own_pace_unless_the_link_sets_one(app):
    """augment_digits opens at 20 epochs/s (its digits are watched changing); a link's
    speed= wins over the lesson's."""
    assert LESSONS["augment_digits"].speed == 20 and LESSONS["l2"].speed == 50
    _open(app, lesson="augment_digits")
    assert app.select_slider(key="w_speed").value == 20


def test_a_links_speed_wins_over_its_lessons(app):
    _open(app, lesson="augment_digits", speed="max")
    assert app.select_slider(key="w_speed").value == "max"
