"""The live board's feed: what a tick carries (only what is new), what it costs, its pace."""

import base64
import json
import time
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest

from regdemo import live_feed
from regdemo.config import Config
from regdemo.engine import Trainer
from regdemo.presets import PRESETS
from regdemo.records import EpochRecord, Event
from regdemo.regularizers import ZERO_TOL
from regdemo.runner import ThreadRunner
from regdemo.ui import board_registry, routes
from regdemo.ui.board_registry import REGISTRY, Pace

TINY = Config(dataset="moons", n_train=16, n_val=16, hidden=(4,), epochs=100_000)


@pytest.fixture
def runner():
    pool = ThreadRunner()
    yield pool
    pool.stop_all()


def _train(runner, config: Config, epochs: int):
    handle = runner.create(config)
    handle.step(epochs)
    assert handle.wait(120)
    return handle


def _reply_bytes(token: str, have: str) -> int:
    status, body = routes.feed_reply(token, have)
    assert status == 200
    return len(json.dumps(body, separators=(",", ":")))


# ----------------------------------------------------------------- what a have asks for
def test_have_strings_parse_and_junk_means_nothing_held():
    have = live_feed.parse_have("12.340.2.5;13.0.0.0")
    assert have == [live_feed.Have(12, 340, 2, 5), live_feed.Have(13, 0, 0, 0)]
    assert live_feed.parse_have("") == [None, None]
    assert live_feed.parse_have("1.2.3;x.1.1.1;9") == [None, None]
    assert live_feed.parse_have("-1.0.0.0;1.99999999999999999999.0.0") == [None, None]


def test_a_new_board_gets_everything_once_then_only_what_is_new(runner):
    handle = _train(runner, TINY.replace(epochs=30), 12)
    first = live_feed.run_update(handle, None)
    assert first["full"] and first["rec"]["e"] == list(range(1, 13))
    assert first["data"]["kind"] == "2d" and len(first["data"]["train"]["x"]) == 16
    assert "views" in first and "events" in first
    held = live_feed.Have(handle.id, 12, len(first["events"]), first["vv"])
    handle.set_live(dropout=0.5)
    handle.step(3)
    assert handle.wait(60)
    later = live_feed.run_update(handle, held)
    assert not later["full"] and later["rec"]["e"] == [13, 14, 15]
    assert [label for _, label, _ in later["events"]] == ["dropout 0 -> 0.5 @ epoch 12"]
    assert "data" not in later  # the data never changes: sent once
    # Nothing new: no records, and no events or views unless they changed.
    held = live_feed.Have(handle.id, 15, 1, later["vv"])
    idle = live_feed.run_update(handle, held)
    assert idle["rec"]["e"] == [] and "events" not in idle and "views" not in idle


def test_another_run_or_a_board_ahead_of_the_run_gets_a_full_reply(runner):
    handle = _train(runner, TINY.replace(epochs=30), 5)
    assert live_feed.run_update(handle, live_feed.Have(handle.id + 1, 3, 0, 0))["full"]
    ahead = live_feed.run_update(handle, live_feed.Have(handle.id, 50, 0, 0))
    assert ahead["full"] and ahead["rec"]["e"] == [1, 2, 3, 4, 5]


def test_a_long_stretch_is_thinned_but_keeps_its_newest_epoch(runner):
    handle = _train(runner, TINY, 1500)
    columns = live_feed.run_update(handle, live_feed.Have(handle.id, 10, 0, 0))["rec"]
    assert len(columns["e"]) == live_feed.MAX_DELTA and columns["e"][-1] == 1500
    assert columns["e"][0] == 11 and columns["e"] == sorted(columns["e"])
    assert set(columns) == {"e", "tl", "vl", "ts", "vs", "wn", "sp"}


def test_nan_and_infinity_become_null_for_strict_json():
    bad = EpochRecord(1, float("nan"), float("inf"), 0.5, 0.5, 1, 0, 1, 0, 0.1, 0.1)
    columns = live_feed.encode_records([bad])
    assert columns["tl"] == [None] and columns["vl"] == [None]
    json.dumps(columns, allow_nan=False)
    assert live_feed.strict({"a": [1.0, float("nan")], "b": (float("-inf"),)}) == {
        "a": [1.0, None], "b": [None]}


# ----------------------------------------------------------------- views and data
def _pixels(block: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(block["pixels"]), dtype=np.uint8)


def test_the_boundary_grid_ghosts_and_histograms_are_encoded():
    trainer, snap = _trained(Config(dataset="moons", n_train=40, n_val=60, hidden=(16, 16),
                                    augment="jitter", epochs=20), 5)
    views = live_feed.encode_views(snap)
    grid = views["grid"]
    z = np.frombuffer(base64.b64decode(grid["z"]), dtype=np.uint8)
    assert z.size == len(grid["x"]) * len(grid["y"]) == 100 * 100
    expected = np.round(np.clip(snap.view["z"], 0, 1) * 255).reshape(-1)
    assert np.abs(z.astype(int) - expected).max() <= 1
    assert len(views["ghosts"]["x"]) == len(views["ghosts"]["c"]) > 0
    hist = views["hist"]
    assert [name for name, _ in hist["layers"]] == list(trainer.weights())
    for (_, counts), w in zip(hist["layers"], trainer.weights().values()):
        assert sum(counts) == w.size and len(counts) == live_feed.HIST_BINS
    data = live_feed.encode_data(trainer.split)
    assert len(data["train"]["x"]) == 40 and len(data["val"]["c"]) == 60
    assert set(data["train"]["c"]) == {0, 1}


def test_curve_features_and_digit_strips_are_encoded():
    sine, snap = _trained(Config(dataset="sine", n_train=15, n_val=30, hidden=(16,),
                                 epochs=20), 3)
    curve = live_feed.encode_views(snap)["curve"]
    assert len(curve["x"]) == len(curve["y"]) > 10
    data = live_feed.encode_data(sine.split)
    assert data["kind"] == "1d" and len(data["train"]["y"]) == 15 and data["train"]["c"] is None

    sparse, snap = _trained(Config(dataset="sparse", n_train=50, n_val=60, hidden=(8,),
                                   epochs=20), 2)
    views = live_feed.encode_views(snap)
    data = live_feed.encode_data(sparse.split)
    assert len(views["importance"]) == len(data["features"]) == sparse.split.n_features
    assert data["informative"] == list(sparse.split.informative)

    digits, snap = _trained(Config(dataset="digits", n_train=50, n_val=50, hidden=(16,),
                                   epochs=5), 1)
    data = live_feed.encode_data(digits.split)
    strip = data["strip"]
    assert strip["n"] == live_feed.STRIP and strip["shape"] == [8, 8]
    assert _pixels(strip).size == strip["n"] * 64 and len(strip["labels"]) == strip["n"]
    views = live_feed.encode_views(snap)
    mistakes = views["mistakes"]
    assert _pixels(mistakes).size == mistakes["n"] * 64
    assert all("→" in label for label in mistakes["labels"])


def _blocks(net: dict) -> list[np.ndarray]:
    """The diagram's weight blocks as the board decodes them: int8, [out, in]."""
    shown = [min(n, live_feed.NET_UNITS) for n in net["sizes"]]
    return [np.frombuffer(base64.b64decode(b), dtype=np.int8).reshape(o, i)
            for b, i, o in zip(net["w"], shown, shown[1:])]


def test_the_network_diagram_gets_signed_weights_and_the_real_widths():
    """Each block holds the first 16x16 signed weights relative to the net's largest |w|
    (127); the widths are the real ones, so the board can say '+N more'."""
    trainer = Trainer(Config(dataset="moons", n_train=40, n_val=40, hidden=(20, 5),
                             epochs=50, dropout=0.25))
    trainer.fit(5)
    net = live_feed.encode_net(trainer.weights(), trainer.config)
    assert net["sizes"] == [2, 20, 5, 2] and net["kind"] == "mlp"
    weights = list(trainer.weights().values())
    top = max(float(np.abs(w).max()) for w in weights)
    assert net["top"] == pytest.approx(top, rel=1e-3)
    blocks = _blocks(net)
    assert [b.shape for b in blocks] == [(16, 2), (5, 16), (2, 5)]
    for block, w in zip(blocks, weights):
        part = w[:16, :16]
        assert (np.sign(block) == np.sign(part)).all()  # signed, not |w|
        assert np.abs(block - part / top * 127).max() <= 1
    assert np.abs(np.concatenate([b.ravel() for b in blocks])).max() <= 127
    assert (np.concatenate([b.ravel() for b in blocks]) < 0).any()
    assert net["dead"] == [[], [], [], []] and net["ndead"] == [0, 0, 0, 0]
    assert net["drop"] == 0.25 and net["dropped"] == [1, 2]  # the hidden layers
    json.dumps(net, allow_nan=False)


def test_l1_cuts_units_off_and_the_diagram_marks_them_dead():
    """The l1_features preset trained: L1's exact zeros cut most noise inputs and many
    hidden units off; `dead` names exactly the units no path of non-zero weights crosses."""
    trainer = Trainer(PRESETS["l1_features"].config)
    trainer.fit(300)
    net = live_feed.encode_net(trainer.weights(), trainer.config)
    w0, w1 = (np.abs(w) > ZERO_TOL for w in trainer.weights().values())
    # One hidden layer: a hidden unit needs an incoming and an outgoing weight; an input
    # needs a weight to a hidden unit that has an outgoing one.
    hidden = w0.any(axis=1) & w1.any(axis=0)
    inputs = (w0 & hidden[:, None]).any(axis=0)
    assert net["sizes"] == [40, 32, 2]
    assert net["ndead"] == [int((~inputs).sum()), int((~hidden).sum()), 0]
    assert net["dead"][:2] == [np.flatnonzero(~inputs[:16]).tolist(),
                               np.flatnonzero(~hidden[:16]).tolist()]
    assert net["ndead"][0] >= 20 and net["ndead"][1] >= 1  # most of the 35 noise inputs
    # A unit whose weights in and out are all exactly zero is dead, and draws no edge.
    cut = ~w0.any(axis=0)
    assert cut.any() and not inputs[cut].any()
    assert (_blocks(net)[0][:, cut[:16]] == 0).all()
    views = live_feed.encode_views(_Snap(trainer))
    assert views["net"] == net


class _Snap:
    """What encode_views reads of a run snapshot, from a trainer."""

    def __init__(self, trainer):
        self.config, self.split = trainer.config, trainer.split
        views = trainer.views()
        self.view, self.weights = views["view"], views["weights"]
        self.feature_importance, self.augmented = views["importance"], views["augmented"]
        self.mistakes = views["mistakes"]


def test_a_residual_branch_of_zeros_leaves_its_units_alive_through_the_skip():
    """A residual block whose weights are all zero passes its input on unchanged: its
    units are not dead. The same zeros in a plain MLP cut everything off."""
    rng = np.random.default_rng(0)
    weights = {"linear 1": rng.normal(size=(4, 2)), "linear 2": np.zeros((4, 4)),
               "linear 3": rng.normal(size=(1, 4))}
    residual = Config(dataset="sine", hidden=(4,), residual=True, stochastic_depth=0.5)
    net = live_feed.encode_net(weights, residual)
    assert net["kind"] == "residual" and net["ndead"] == [0, 0, 0, 0]
    assert net["sd"] == 0.5 and _blocks(net)[1].tolist() == [[0] * 4] * 4
    plain = live_feed.encode_net(weights, Config(dataset="sine", hidden=(4, 4)))
    assert plain["ndead"] == [2, 4, 4, 1]


def test_the_cnn_diagram_covers_its_dense_part_and_drops_the_conv_features():
    trainer = Trainer(Config(dataset="digits", arch="cnn", hidden=(24,), n_train=60,
                             n_val=60, epochs=5, dropout=0.5))
    trainer.fit(1)
    net = live_feed.encode_net(trainer.weights(), trainer.config)
    assert net["kind"] == "cnn" and net["sizes"] == [128, 24, 10]
    assert [b.shape for b in _blocks(net)] == [(16, 16), (10, 16)]
    assert net["dropped"] == [0, 1]  # dropout follows the conv features and the hidden layer


def test_the_network_diagram_of_a_128_128_net_stays_small():
    """Sent with every views change to every board: well under 3 KB for the overfit net."""
    trainer = Trainer(PRESETS["overfit"].config)
    trainer.fit(3)
    net = live_feed.encode_net(trainer.weights(), trainer.config)
    assert net["sizes"] == [2, 128, 128, 2]
    size = len(json.dumps(net, separators=(",", ":")))
    assert size < 1000, size
    deep = Trainer(PRESETS["stochastic_depth"].config.replace(hidden=(64,) * 8))
    size = len(json.dumps(live_feed.encode_net(deep.weights(), deep.config),
                          separators=(",", ":")))
    assert size < 3500, size  # the deepest net a config allows: about 3 KB


def test_a_diverged_net_draws_no_edge_where_a_weight_is_not_finite():
    weights = {"linear 1": np.array([[np.nan, 1.0], [np.inf, -2.0]]),
               "linear 2": np.array([[0.5, -0.5]])}
    net = live_feed.encode_net(weights, Config(dataset="moons", hidden=(2,)))
    assert net["top"] == 2.0 and _blocks(net)[0].tolist() == [[0, 64], [0, -127]]
    assert net["dead"][0] == [0]
    json.dumps(net, allow_nan=False)


def _trained(config: Config, epochs: int):
    """(the trainer, its snapshot as the page sees it) after `epochs` epochs."""
    pool = ThreadRunner()
    try:
        handle = _train(pool, config, epochs)
        return handle.trainer, handle.snapshot()
    finally:
        pool.stop_all()


# ----------------------------------------------------------------- the tick's cost
def test_the_feed_builds_no_plotly_figure(runner, monkeypatch):
    """A tick is numbers only: no plotly graph object is constructed on the feed's path."""
    made = []
    for name in ("Figure", "Scatter", "Heatmap", "Bar", "Contour"):
        cls = getattr(go, name)
        original = cls.__init__

        def counting(self, *args, _original=original, _name=name, **kwargs):
            made.append(_name)
            _original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "__init__", counting)
    go.Figure()  # the counter works
    assert made == ["Figure"]
    made.clear()
    handle = _train(runner, TINY.replace(epochs=200, augment="jitter"), 50)
    token = REGISTRY.new_token()
    REGISTRY.publish(token, runner, (handle.id, None))
    for have in ("", f"{handle.id}.10.0.0", f"{handle.id}.49.0.1"):
        assert routes.feed_reply(token, have)[0] == 200
    assert made == []


def test_one_new_epoch_costs_the_same_bytes_at_epoch_100_and_at_20000(runner):
    """The reply for one new epoch does not grow with the run's length."""
    handle = _train(runner, TINY, 100)
    token = REGISTRY.new_token()
    REGISTRY.publish(token, runner, (handle.id, None))
    full = routes.feed_reply(token, "")[1]["runs"][0]
    vv, events = full["vv"], len(full["events"])
    early = _reply_bytes(token, f"{handle.id}.99.{events}.{vv}")
    handle.step(19_900)
    assert handle.wait(300)
    vv = routes.feed_reply(token, "")[1]["runs"][0]["vv"]
    late = _reply_bytes(token, f"{handle.id}.19999.{events}.{vv}")
    assert late < 1000 and late <= early + 40, (early, late)
    everything = _reply_bytes(token, "")
    assert everything > 20 * late  # a new board does get the (thinned) history


# ----------------------------------------------------------------- tokens and pace
def test_an_unknown_or_oversized_token_is_refused(runner):
    assert routes.feed_reply("no-such-board", "")[0] == 404
    assert routes.feed_reply("x" * 10_000, "")[0] == 404
    token = REGISTRY.new_token()
    REGISTRY.publish(token, runner, (None, None))
    status, body = routes.feed_reply(token, "garbage;" * 1000)
    assert status == 200 and body["runs"] == [None, None]
    REGISTRY.drop(token)
    assert routes.feed_reply(token, "")[0] == 404


def test_a_forgotten_run_disappears_from_its_board(runner):
    handle = _train(runner, TINY.replace(epochs=10), 2)
    token = REGISTRY.new_token()
    REGISTRY.publish(token, runner, (handle.id, None))
    assert routes.feed_reply(token, "")[1]["runs"][0]["id"] == handle.id
    runner.forget(handle.id)
    assert routes.feed_reply(token, "")[1]["runs"] == [None, None]


def test_the_pace_slows_down_only_when_the_boards_would_take_too_much(monkeypatch):
    pace = Pace()
    assert pace.record("a", 0.001) == board_registry.MIN_INTERVAL  # one cheap board
    for i in range(30):
        interval = pace.record(f"board{i}", 0.001)
    # 30 boards at 1 ms: 30 ms a round, 4 rounds a second, within the budget.
    assert interval == board_registry.MIN_INTERVAL
    for i in range(60):
        interval = pace.record(f"board{i}", 0.001)
    assert interval == pytest.approx(61 * 0.001 / board_registry.FEED_BUDGET)  # with "a"
    slow = Pace()
    for _ in range(200):
        for i in range(60):
            interval = slow.record(f"board{i}", 0.01)
    wanted = 60 * 0.01 / board_registry.FEED_BUDGET
    assert interval == pytest.approx(min(board_registry.MAX_INTERVAL, wanted), rel=0.05)
    assert interval > board_registry.MIN_INTERVAL


def test_the_feed_reports_events_the_page_marks(runner):
    handle = _train(runner, TINY.replace(epochs=40), 3)
    handle.set_live(l2=0.01)
    handle.step(2)
    assert handle.wait(60)
    run = live_feed.run_update(handle, None)
    assert run["events"] == [[3, Event(3, "l2", 0.0, 0.01).label, "l2"]]


@pytest.mark.parametrize("backend", ["thread", "process"])
def test_a_restored_run_reports_the_figures_of_its_restored_epoch(backend):
    """Early stopping put epoch N's weights back: the board is told N (its metrics show
    N's figures) and the run's summary is N's, not the last epoch's (it was the last's)."""
    from regdemo.runner import ProcessRunner, summary_of

    pool = ThreadRunner() if backend == "thread" else ProcessRunner(workers=1)
    try:
        if backend == "process":
            assert pool.wait_ready(120)
        config = Config(dataset="moons", n_train=30, n_val=200, hidden=(64, 64), lr=0.03,
                        optimizer="adam", epochs=2000, early_stopping=True, patience=20,
                        restore_best=True, label_noise=0.3)
        handle = pool.create(config)
        handle.start()
        assert handle.wait(120)
        snap = handle.snapshot()
        assert snap.restored_epoch == snap.best_epoch and snap.epoch > snap.best_epoch
        run = live_feed.run_update(handle, None)
        assert run["restored"] == run["best"][0] == snap.best_epoch
        best = next(r for r in snap.history if r.epoch == snap.best_epoch)
        assert run["best"][2] == pytest.approx(best.val_loss)
        summary = summary_of(snap)
        assert summary["val_loss"] == pytest.approx(best.val_loss)
        assert summary["val_loss"] != pytest.approx(snap.history[-1].val_loss)
    finally:
        pool.stop_all()
        if backend == "process":
            pool.shutdown()


def test_the_feed_gives_a_boards_unowned_runs_its_browsers_owner(runner):
    """A browser's first visit: its runs start without an owner (the page could not read
    the cookie the board sets); the feed tags them from the cookie, never re-tags them."""
    handle = _train(runner, TINY.replace(epochs=10), 1)
    token = REGISTRY.new_token()
    REGISTRY.publish(token, runner, (handle.id, None))
    routes.feed_reply(token, "", "not a token!")
    assert handle.owner is None
    routes.feed_reply(token, "", "browser-a-0123456789")
    routes.feed_reply(token, "", "browser-b-0123456789")
    assert handle.owner == "browser-a-0123456789"


def test_plotly_is_served_compressed_once_per_process():
    """The bundle is gzipped once (it was compressed per request, holding the server's event
    loop up to 1.4 s for each new browser) and unzips to the plotly package's own file."""
    import gzip

    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    client = TestClient(Starlette(routes=routes.routes()))
    reply = client.get(routes.PLOTLY_PATH, headers={"Accept-Encoding": "gzip"})
    assert reply.status_code == 200 and reply.headers["content-encoding"] == "gzip"
    assert reply.content == routes.plotly_bundle().read_bytes()  # httpx unzipped it
    assert len(gzip.compress(reply.content)) < routes.plotly_bundle().stat().st_size / 2
    assert routes.gzipped_bundle.cache_info().currsize == 1
    plain = client.get(routes.PLOTLY_PATH, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.content == reply.content
    assert client.get(routes.FEED_PATH + "?t=nope").status_code == 404


def test_before_train_the_board_gets_the_data_of_the_settings_once(runner):
    """No run yet: the reply carries the data the settings would train on (the points of
    the data view), and not again while the board has it."""
    token = REGISTRY.new_token()
    config = TINY.replace(n_train=12, n_val=20)
    REGISTRY.publish(token, runner, (None, None), preview=config)
    body = routes.feed_reply(token, "")[1]
    shown = body["preview"]
    assert shown["data"]["kind"] == "2d" and len(shown["data"]["train"]["x"]) == 12
    assert "preview" not in routes.feed_reply(token, "", "", shown["key"])[1]
    REGISTRY.publish(token, runner, (None, None), preview=config.replace(seed=5))
    assert routes.feed_reply(token, "", "", shown["key"])[1]["preview"]["key"] != shown["key"]
    handle = _train(runner, config, 1)
    REGISTRY.publish(token, runner, (handle.id, None), preview=config)
    assert "preview" not in routes.feed_reply(token, "")[1]  # the run's own data instead


def test_the_diagram_names_the_extra_input_features():
    """With x1² and x2² the first layer has 4 inputs, named as the control names them."""
    tr = Trainer(Config(dataset="circles", n_train=20, n_val=20, hidden=(4,),
                        features=("x2sq", "x1sq"), epochs=1))
    tr.step()
    net = live_feed.encode_net(tr.weights(), tr.config)
    assert net["sizes"][0] == 4 and net["inputs"] == ["x₁", "x₂", "x₁²", "x₂²"]


def test_a_run_at_rest_reports_its_test_figures_and_a_training_run_does_not(runner):
    """The test set is measured when a run pauses or ends (not every tick): the board gets
    [test loss, test score] then, equal to the trainer's summary."""
    handle = _train(runner, TINY, 5)
    run = live_feed.run_update(handle, None)
    summary = handle.trainer.summary()
    assert run["test"] == pytest.approx([summary["test_loss"], summary["test_score"]])
    handle.set_speed(20)
    handle.start()
    deadline = time.monotonic() + 30
    while handle.snapshot().epoch < 8 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live_feed.run_update(handle, None)["test"] is None  # training: not measured


def test_what_the_page_runs_in_the_browser_comes_from_the_package_not_a_shared_folder(
        tmp_path, monkeypatch):
    """The old chart page and bundle were served from a predictable folder in the system
    temp directory, trusted if it existed, so another local user could plant JavaScript.
    Now: Plotly from the installed plotly package, the board's code from regdemo's own
    files, and nothing is written to or read from the temp directory."""
    import tempfile

    import plotly

    from regdemo.ui import board

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # watch the temp directory
    bundle = routes.plotly_bundle().resolve()
    assert bundle.is_relative_to(Path(plotly.__file__).resolve().parent)
    routes.gzipped_bundle()
    assets = Path(board.__file__).resolve().parent / "assets"
    assert {p.name for p in assets.iterdir()} >= {"board.js", "board.css", "plotly_loader.js"}
    assert list(tmp_path.iterdir()) == []
    import regdemo

    package = Path(regdemo.__file__).resolve().parent
    sources = "".join(p.read_text() for p in package.rglob("*.py"))
    assert "gettempdir" not in sources and "regdemo-live-chart" not in sources
