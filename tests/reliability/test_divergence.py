"""Divergence: a run that blows up ends with a reason a student can read; the page goes on."""

from __future__ import annotations

import json
import math

import pytest

from regdemo import live_feed
from regdemo.config import Config
from regdemo.engine import Trainer
from regdemo.presets import PRESETS
from regdemo.runner import STOPPED, ThreadRunner
from tests.page_reading import board
from tests.reliability.helpers import messages, until

OVERFIT = PRESETS["overfit"].config
DIVERGING = {
    "sgd lr 10": OVERFIT.replace(optimizer="sgd", lr=10.0),
    "sgd lr 10, batches of 10 (NaN weights in epoch 1)": Config(
        dataset="sine", optimizer="sgd", lr=10.0, batch_size=10),
    "weight decay 10": Config(optimizer="sgd", weight_decay=10.0, lr=1.0),
    "adamw decay 10": Config(optimizer="adamw", weight_decay=10.0, lr=10.0),
    "l2 10": Config(optimizer="sgd", l2=10.0, lr=1.0),
}


def _readable(reason: str) -> bool:
    """'diverged at epoch N: <what happened>. Lower the ... and start a new run.'"""
    return (reason.startswith("diverged at epoch ") and "Lower the" in reason
            and "start a new run" in reason and len(reason) < 200)


def _finite_history(history) -> bool:
    return all(math.isfinite(v) for r in history for v in r.as_dict().values())


@pytest.mark.parametrize("name", list(DIVERGING))
def test_a_diverging_run_stops_with_a_reason_and_a_finite_history(name):
    """Trainer: the run stops within a few epochs, says why and what to do, records no NaN
    or inf, and the curves the board plots from it hold only finite numbers."""
    trainer = Trainer(DIVERGING[name].replace(epochs=500))
    trainer.fit()
    assert trainer.diverged and trainer.epoch < 50
    assert _readable(trainer.stop_reason), trainer.stop_reason
    assert _finite_history(trainer.history)
    assert trainer.summary()["stop_reason"] == trainer.stop_reason
    assert trainer.step() is None and trainer.fit() == []  # stays stopped
    columns = live_feed.encode_records(trainer.history)  # what the board plots
    json.dumps(columns, allow_nan=False)
    assert all(v is None or math.isfinite(v) for values in columns.values() for v in values)
    trainer.set_live(lr=0.001, epochs=1000)  # no live change lifts a divergence
    assert trainer.stopped and trainer.step() is None


@pytest.mark.parametrize("backend", ["thread", "process"])
def test_the_runner_reports_divergence_in_the_snapshot(backend, runner):
    """Both backends: the snapshot the page reads is stopped, diverged, with the reason, and
    its history (what the charts plot) is finite."""
    pool = ThreadRunner() if backend == "thread" else runner
    handle = pool.create(DIVERGING["sgd lr 10, batches of 10 (NaN weights in epoch 1)"])
    handle.start()
    assert handle.wait(60)
    snap = handle.snapshot()
    assert snap.status == STOPPED and snap.diverged and _readable(snap.stop_reason)
    assert snap.error is None  # a divergence is an outcome, not a failure
    assert _finite_history(snap.history)
    other = pool.create(OVERFIT.replace(epochs=20))  # the runner is fine afterwards
    other.start()
    assert other.wait(60) and other.snapshot().epoch == 20
    if backend == "thread":
        pool.stop_all()


PAGE_CASES = {
    "sgd lr 10": dict(optimizer="sgd", lr=10.0),
    "weight decay 10": dict(optimizer="sgd", lr=1.0, weight_decay=10.0),
    # Found by this suite and fixed: NaN weights crashed the weights histogram.
    "sgd lr 10, batches of 10": dict(dataset="sine", optimizer="sgd", lr=10.0, batch_size=10),
}
_WIDGETS = {"dataset": "selectbox", "optimizer": "selectbox", "lr": "select_slider",
            "weight_decay": "select_slider", "batch_size": "number_input"}


@pytest.mark.parametrize("settings", PAGE_CASES.values(), ids=list(PAGE_CASES))
def test_the_page_shows_the_divergence_and_trains_again(make_page, settings):
    """The page: the reason in an error box, only finite points on the loss chart, no
    exception; Train again diverges again (same message); with a sane lr it trains."""
    from regdemo.ui.state import get_runner

    at = make_page()
    at.run()
    for name, value in settings.items():
        getattr(at, _WIDGETS[name])(key=f"w_{name}").set_value(value)
    at.number_input(key="w_epochs").set_value(300).run()
    first = None
    for _ in range(2):  # Train, then Train again on the stopped run
        at.button(key="btn_train").click().run()
        assert at.session_state["run_id"] != first  # a stopped run: Train starts a new one
        first = at.session_state["run_id"]
        handle = get_runner().get(first)
        assert handle.wait(60) and until(lambda h=handle: h.snapshot().diverged, 10)
        at.run()
        assert not at.exception, [e.proto.message for e in at.exception]
        errors = messages(at.error)
        assert any(_readable(e) for e in errors), errors
        shown = board(at)  # what the browser gets: strict JSON (no NaN), numbers or null
        json.dumps(shown, allow_nan=False)
        rec = shown["runs"][0]["rec"]
        assert all(v is None or math.isfinite(v) for v in rec["tl"] + rec["vl"])
    at.select_slider(key="w_lr").set_value(0.01).run()
    at.number_input(key="w_epochs").set_value(20).run()
    at.button(key="btn_train").click().run()
    handle = get_runner().get(at.session_state["run_id"])
    assert handle.wait(60)
    at.run()
    assert not at.exception and not any(_readable(e) for e in messages(at.error))
    assert handle.snapshot().epoch == 20
