"""Page logic through Streamlit's AppTest: presets, controls -> Config, links, errors, runs."""

import base64
import re
import time

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from regdemo.config import Config
from regdemo.presets import PRESETS
from regdemo.ui.state import get_runner, get_store
from tests.page_reading import (
    board,
    event_labels,
    query_of,
    run_handle,
    static_charts,
    wait_until_parked,
)
from tests.support import APP


@pytest.fixture
def process_app(make_page, tmp_path):
    """A fresh page on the server's default backend: worker processes."""
    return make_page("process", data_dir=tmp_path)


def _values(array) -> list:
    """A trace's x or y as sent: a plain list, or Plotly's base64 typed array."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


def _messages(elements):
    return [e.value for e in elements]


def test_default_page_loads_the_default_preset(app):
    """No exception, the overfit preset's controls, and a prompt to press Train."""
    app.run()
    assert not app.exception
    assert app.selectbox(key="w_preset").value == "overfit"
    assert app.number_input(key="w_n_train").value == PRESETS["overfit"].config.n_train
    assert app.text_input(key="w_hidden").value == "128-128"
    assert any("Press **Train**" in m for m in _messages(app.info))
    assert query_of(app)["preset"] == "overfit"


def test_choosing_a_preset_sets_every_control(app):
    """The L1 preset sets dataset, width and lambda."""
    app.run()
    app.selectbox(key="w_preset").set_value("l1_features").run()
    preset = PRESETS["l1_features"].config
    assert app.selectbox(key="w_dataset").value == "sparse"
    assert app.select_slider(key="w_l1").value == preset.l1 > 0
    assert app.text_input(key="w_hidden").value == "-".join(map(str, preset.hidden))
    assert PRESETS["l1_features"].watch in [c.value for c in app.sidebar.caption]


def test_controls_map_to_config_and_url(app):
    """Moving controls changes the Config that the URL carries."""
    app.run()
    app.slider(key="w_dropout").set_value(0.5).run()
    app.text_input(key="w_hidden").set_value("32-16").run()
    query = query_of(app)
    config, problems = Config.from_query(query)
    assert problems == []
    assert config.dropout == 0.5 and config.hidden == (32, 16)
    assert config.n_train == PRESETS["overfit"].config.n_train


def test_shared_link_restores_every_control(app):
    """A link's preset and settings come back in the controls."""
    shared = PRESETS["dropout"].config.replace(dropout=0.3, seed=9, hidden=(64, 32))
    for key, value in {"preset": "dropout", **shared.to_query()}.items():
        app.query_params[key] = value
    app.run()
    assert not app.exception and not app.warning
    assert app.selectbox(key="w_preset").value == "dropout"
    assert app.slider(key="w_dropout").value == 0.3
    assert app.number_input(key="w_seed").value == 9
    assert app.text_input(key="w_hidden").value == "64-32"
    query = query_of(app)
    assert Config.from_query(query)[0] == shared


def test_bad_link_warns_and_falls_back(app):
    """Unknown preset and bad values are named in warnings; the rest of the link applies."""
    for key, value in {"preset": "nope", "dropout": "7", "hidden": "abc", "seed": "5",
                       "zzz": "1"}.items():
        app.query_params[key] = value
    app.run()
    assert not app.exception
    text = re.sub(r"\\(.)", r"\1", " ".join(_messages(app.warning)))  # as rendered
    assert "unknown preset 'nope'" in text
    assert "'dropout' must be a float in [0, 0.95]; got 7." in text
    assert "'hidden' must be" in text and "zzz" not in text
    assert app.number_input(key="w_seed").value == 5
    assert app.slider(key="w_dropout").value == PRESETS["overfit"].config.dropout


def test_invalid_combination_is_explained_beside_the_control(app):
    """Batch norm with batch size 1: an error in the sidebar, no traceback."""
    app.run()
    app.toggle(key="w_batch_norm").set_value(True).run()
    app.number_input(key="w_batch_size").set_value(1).run()
    assert not app.exception
    errors = _messages(app.sidebar.error)
    assert any("'batch_norm' needs batches of 2 or more" in e for e in errors)
    # Train and Step are blocked (Train once ran such a run anyway, with batch size 0).
    assert app.button(key="btn_train").disabled and app.button(key="btn_step").disabled
    assert any("Train needs settings a run can take" in e for e in errors)
    assert "run_id" not in app.session_state


def test_train_runs_to_the_end_and_reports(app):
    """Train runs the configured epochs; the status line shows them."""
    app.run()
    app.number_input(key="w_epochs").set_value(40).run()
    app.button(key="btn_train").click().run()
    wait_until_parked(app)
    assert not app.exception
    run = board(app)["runs"][0]
    assert (run["epoch"], run["epochs"], run["status"], run["busy"]) == (40, 40, "stopped", False)
    assert run["rec"]["e"] == list(range(1, 41))
    assert any("Finished: reached 40 epochs" in m for m in _messages(app.info))
    assert len(run_handle(app).snapshot().history) == 40


def test_step_then_live_change_records_an_event(app):
    """Step trains one epoch at a time; a live knob change is logged at that epoch."""
    app.run()
    for _ in range(3):
        app.button(key="btn_step").click().run()
        wait_until_parked(app)
    handle = run_handle(app)
    assert handle.snapshot().epoch == 3
    app.slider(key="w_dropout").set_value(0.5).run()
    events = handle.snapshot().events
    assert [e.label for e in events] == ["dropout 0 -> 0.5 @ epoch 3"]
    app.button(key="btn_step").click().run()
    wait_until_parked(app)
    assert handle.snapshot().epoch == 4  # same run: the live change did not reset it
    run = board(app)["runs"][0]
    assert run["rec"]["e"] == [1, 2, 3, 4]  # every epoch, for the curves
    assert event_labels(run) == ["dropout 0 -> 0.5 @ epoch 3"]  # the chart's marker


def test_structural_change_asks_for_a_new_run(app):
    """Changing the width mid-run is not applied live; the page says to press Train."""
    app.run()
    app.button(key="btn_step").click().run()
    wait_until_parked(app)
    first = app.session_state["run_id"]
    app.text_input(key="w_hidden").set_value("8").run()
    assert any("need a new run" in m for m in _messages(app.sidebar.info))
    app.button(key="btn_step").click().run()
    wait_until_parked(app)
    assert app.session_state["run_id"] != first
    assert run_handle(app).config.hidden == (8,)


def test_diverged_run_shows_its_reason(app):
    """lr 10 with SGD: the page shows the divergence reason, no exception."""
    app.run()
    app.selectbox(key="w_dataset").set_value("sine").run()
    app.selectbox(key="w_optimizer").set_value("sgd").run()
    app.select_slider(key="w_lr").set_value(10.0).run()
    app.button(key="btn_train").click().run()
    wait_until_parked(app)
    time.sleep(0.1)
    app.run()
    assert not app.exception
    assert any(e.startswith("diverged at epoch") for e in _messages(app.error))


def test_reset_forgets_the_run(app):
    """Reset stops the run and frees it on the server."""
    app.run()
    app.button(key="btn_step").click().run()
    wait_until_parked(app)
    run_id = app.session_state["run_id"]
    app.button(key="btn_reset").click().run()
    assert get_runner().get(run_id) is None
    assert any("Press **Train**" in m for m in _messages(app.info))


def test_train_and_live_change_on_the_process_backend(process_app):
    """The default backend: workers train, the page reads their batched records."""
    app = process_app
    app.run()
    get_runner().wait_ready()
    app.number_input(key="w_epochs").set_value(30).run()
    for _ in range(2):
        app.button(key="btn_step").click().run()
        wait_until_parked(app)
    app.slider(key="w_dropout").set_value(0.5).run()
    app.button(key="btn_train").click().run()
    wait_until_parked(app)
    assert not app.exception
    snap = run_handle(app).snapshot()
    assert [r.epoch for r in snap.history] == list(range(1, 31))
    assert [e.label for e in snap.events] == ["dropout 0 -> 0.5 @ epoch 2"]
    assert snap.stop_reason == "finished: reached 30 epochs"
    run = board(app)["runs"][0]
    assert (run["epoch"], run["status"]) == (30, "stopped")
    assert event_labels(run) == ["dropout 0 -> 0.5 @ epoch 2"]


def test_digits_preset_shows_augmented_and_misclassified_digits(app):
    """Digits: a strip of augmented training images and the misclassified ones."""
    app.run()
    app.selectbox(key="w_preset").set_value("digits_shift").run()
    app.button(key="btn_step").click().run()
    wait_until_parked(app)
    assert not app.exception
    snap = run_handle(app).snapshot()
    assert snap.augmented is not None and snap.mistakes is not None
    assert len(snap.mistakes[0]) > 0  # one epoch in, some digits are still wrong
    run = board(app)["runs"][0]
    assert run["data"]["kind"] == "image"
    views = run["views"]
    assert "as the net sees them" in views["strip"]["title"] and views["strip"]["n"] > 0
    assert views["mistakes"]["n"] == len(snap.mistakes[0]) == len(views["mistakes"]["labels"])
    assert all("→" in label for label in views["mistakes"]["labels"])
    assert views["hist"]["layers"]  # the weights panel


def _trace_names(figure: dict) -> list[str]:
    return [t.get("name") for t in figure["data"]]


def test_fork_trains_both_branches_and_a_knob_change_reaches_only_b(app):
    """Fork at epoch 5: B starts from A's state, takes the next dropout change, A does not."""
    app.run()
    for _ in range(5):
        app.button(key="btn_step").click().run()
        wait_until_parked(app)
    app.button(key="btn_fork").click().run()
    a, b = run_handle(app), get_runner().get(app.session_state["run_b"])
    assert b.snapshot().epoch == 5 and app.session_state["w_branch"] == "B"
    app.slider(key="w_dropout").set_value(0.5).run()
    assert (a.config.dropout, b.config.dropout) == (0.0, 0.5)
    app.button(key="btn_step").click().run()
    assert a.wait() and b.wait()
    app.run()
    assert (a.snapshot().epoch, b.snapshot().epoch) == (6, 6)
    a_hist, b_hist = a.snapshot().history, b.snapshot().history
    assert [r.val_loss for r in a_hist[:5]] == [r.val_loss for r in b_hist[:5]]  # shared past
    assert a_hist[-1].val_loss != b_hist[-1].val_loss  # the change made them part
    shown = board(app)
    fork = shown["data"]["fork"]
    assert fork["epoch"] == 5
    run_a, run_b = shown["runs"]
    assert (run_a["id"], run_b["id"]) == (a.id, b.id)
    assert run_a["rec"]["e"][-1] == run_b["rec"]["e"][-1] == 6
    assert event_labels(run_b, fork["events"]) == ["dropout 0 -> 0.5 @ epoch 5"]
    assert event_labels(run_a) == []
    assert run_a["data"]["kind"] == run_b["data"]["kind"] == "2d"  # both data views
    # Switching the knobs to A shows A's values again.
    app.segmented_control(key="w_branch").set_value("A").run()
    assert app.slider(key="w_dropout").value == 0.0


def test_an_unchanged_fork_retraces_its_original_exactly(app):
    """Same data, same weights, same random stream: without a change B equals A."""
    app.run()
    app.button(key="btn_step").click().run()
    wait_until_parked(app)
    app.button(key="btn_fork").click().run()
    for _ in range(4):
        app.button(key="btn_step").click().run()
        wait_until_parked(app)
    a = run_handle(app).snapshot()
    b = get_runner().get(app.session_state["run_b"]).snapshot()
    assert [r.val_loss for r in a.history] == [r.val_loss for r in b.history]
    app.button(key="btn_unfork").click().run()
    shown = board(app)
    assert "run_b" not in app.session_state
    assert shown["runs"][1] is None and shown["data"]["fork"] is None


def test_saved_runs_tab_overlays_the_runs_and_lists_what_differs(app):
    """Two runs with different L2 are saved; the tab overlays them and names the setting."""
    app.run()
    app.number_input(key="w_epochs").set_value(15).run()
    app.button(key="btn_train").click().run()
    wait_until_parked(app)
    app.select_slider(key="w_l2").set_value(0.01).run()
    app.button(key="btn_train").click().run()  # epochs reached: Train starts a new run
    wait_until_parked(app)
    get_runner().save_now()
    app.run()
    picked = app.multiselect(key="w_compare")
    assert len(picked.value) == 2  # the newest two, until the user picks
    assert picked.options[0].startswith("overfit l2=0.01")  # named by what was changed
    compare = static_charts(app)["compare_chart"]
    assert len([n for n in _trace_names(compare) if n.endswith("validation")]) == 2
    differences = [d for d in app.dataframe if "l2" in list(d.value.index)]
    assert differences and sorted(differences[0].value.loc["l2"]) == ["0.0", "0.01"]


def test_sweep_tab_draws_the_validation_curve_with_the_best_value(app, monkeypatch):
    """A 5-point L2 sweep of the current settings runs in the background and is drawn."""
    monkeypatch.setenv("REGDEMO_SWEEP_WORKERS", "1")
    app.run()
    assert app.selectbox(key="w_sweep_knob").value == "l2"
    app.slider(key="w_sweep_points").set_value(5)
    app.number_input(key="w_sweep_seeds").set_value(1)
    app.number_input(key="w_sweep_epochs").set_value(20)
    app.button(key="btn_sweep").click().run()
    job = app.session_state["sweep_job"]
    deadline = time.monotonic() + 120
    while job.active and time.monotonic() < deadline:
        time.sleep(0.2)
    app.run()
    assert job.status == "done" and len(job.result.rows) == 5
    chart = static_charts(app)["sweep_chart"]
    assert len(_values(next(t for t in chart["data"] if t.get("name") == "validation")["x"])) == 5
    assert any(t.get("name", "").startswith("best l2 = ") for t in chart["data"])
    assert any("Lowest mean validation loss at" in m.value for m in app.markdown)


def test_sweep_tab_explains_a_bad_range(app):
    """A log range from 0 is refused with a message, and nothing is submitted."""
    app.run()
    app.toggle(key="w_sweep_log").set_value(True)
    app.number_input(key="w_sweep_from").set_value(0.0)
    app.button(key="btn_sweep").click().run()
    assert any("a log range needs positive ends" in e for e in _messages(app.error))
    assert "sweep_job" not in app.session_state


def test_a_link_with_very_few_epochs_still_draws_every_tab(app):
    """epochs=3 is valid; the sweep tab's own epoch box (at least 10) must not trip on it."""
    app.query_params["epochs"] = "3"
    app.run()
    assert not app.exception
    assert app.number_input(key="w_epochs").value == 3
    assert app.number_input(key="w_sweep_epochs").value == 10


def test_a_knob_moved_after_the_run_finished_is_not_recorded_into_it(app):
    """The finished run keeps its record (a change used to land in it as an event at its
    last epoch); the next Train starts a new run with the knob's new value."""
    app.run()
    app.number_input(key="w_epochs").set_value(10).run()
    app.button(key="btn_train").click().run()
    wait_until_parked(app)
    finished = run_handle(app)
    app.slider(key="w_dropout").set_value(0.5).run()
    assert finished.snapshot().events == [] and finished.config.dropout == 0.0
    app.button(key="btn_train").click().run()
    assert run_handle(app) is not finished and run_handle(app).config.dropout == 0.5


def _trained_and_saved(at, **widgets) -> str:
    """Set number inputs and sliders (key -> value), train to the end, save; the run's id."""
    at.run()
    for key, value in widgets.items():
        (at.slider if isinstance(value, float) else at.number_input)(key=key).set_value(
            value).run()
    at.button(key="btn_train").click().run()
    wait_until_parked(at)
    get_runner().save_now()
    at.run()
    return run_handle(at).saved_id


def _another_browser() -> AppTest:
    """A second page on the same server, with its own owner cookie."""
    other = AppTest.from_file(APP, default_timeout=60)
    other.session_state["owner"] = "another-browser-0123456789"
    return other


def test_saved_runs_belong_to_the_browser_that_made_them(app):
    """Two browsers on one server: each Saved runs tab lists its own runs only, so nobody
    renames or deletes another's (they were all listed to everyone)."""
    mine = _trained_and_saved(app, w_epochs=5)
    picker = app.multiselect(key="w_compare")
    assert picker.value == [mine] and len(picker.options) == 1
    other = _another_browser()
    other.run()
    assert not other.exception
    assert [m for m in other.get("multiselect") if m.key == "w_compare"] == []
    assert any("this browser's runs only" in m.value for m in other.info)


def test_extra_input_features_go_into_the_link_and_clear_for_other_data(app):
    """x1² and x2² reach the Config and the URL; a 1-D set greys the control and clears it."""
    app.run()
    app.multiselect(key="w_features").set_value(["x2sq", "x1sq"]).run()
    assert Config.from_query(query_of(app))[0].features == ("x1sq", "x2sq")
    app.selectbox(key="w_dataset").set_value("sine").run()
    assert not app.exception and not _messages(app.sidebar.error)
    assert app.multiselect(key="w_features").disabled
    assert Config.from_query(query_of(app))[0].features == ()


def test_a_read_only_link_shows_one_saved_run_to_another_browser(app):
    """The owner's Saved runs tab gives a ?run= link; another browser sees that run's curves
    and settings, can train its settings as its own run, and cannot rename or delete it."""
    mine = _trained_and_saved(app, w_epochs=7, w_dropout=0.25)
    assert any(c.value.endswith(f"?run={mine}") for c in app.code)
    other = _another_browser()
    other.query_params["run"] = mine
    other.run()
    assert not other.exception and not other.warning
    assert any("Shared run (read-only)" in m.value for m in other.markdown)
    assert static_charts(other)["shared_chart"]["data"]  # its curves
    assert not [b for b in other.get("button") if b.key in ("btn_rename", "btn_delete")]
    assert query_of(other)["run"] == mine  # the link stays while the run is shown
    other.button(key="btn_shared_load").click().run()
    assert other.number_input(key="w_epochs").value == 7
    assert other.slider(key="w_dropout").value == 0.25
    assert get_store().runs(browser="another-browser-0123456789") == []  # not theirs
    other.button(key="btn_shared_close").click().run()
    assert "run" not in query_of(other)
    bad = AppTest.from_file(APP, default_timeout=60)
    bad.query_params["run"] = "../../etc"
    bad.run()
    assert not bad.exception
    assert any("'run' must be a saved run's id" in w.value for w in bad.warning)


def test_the_controls_bounds_are_the_configs_own(app):
    """Each number box and slider stops where the Config's constraint table does."""
    from regdemo.config import bounds
    from regdemo.ui.controls import CONTROLS

    app.run()
    numeric = [c for c in CONTROLS.values() if c.widget in ("number", "slider")]
    assert len(numeric) >= 10
    for control in numeric:
        widget = (app.number_input if control.widget == "number" else app.slider)(
            key=control.key)
        assert (widget.min, widget.max) == bounds(control.name), control.name
    assert bounds("n_train") == (4, 5000) and bounds("dropout") == (0.0, 0.95)
