"""Bad input: hostile links, command lines and control settings never raise; runs stay bounded.

Each test feeds input a classroom (or a prankster) can produce and checks that the app either
takes it as a valid Config or says what it ignored, with no traceback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import random
import subprocess
import sys
import textwrap
import time
from types import SimpleNamespace
from unittest import mock
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamlit.runtime.state.query_params import QueryParams

from regdemo import config as config_
from regdemo.augment import AUGMENTATIONS
from regdemo.config import ACTIVATIONS, OPTIMIZERS, Config, ConfigError
from regdemo.datasets import DATASETS
from regdemo.presets import PRESETS
from regdemo.ui import controls, page
from tests.reliability.helpers import ROOT, known_bug

FIELDS = [f.name for f in dataclasses.fields(Config)]
URL_EXAMPLES = 2000  # reported in the issue: hostile query strings parsed like the page
CLI_EXAMPLES = 800
PAGE_COMBINATIONS = 24


# ----------------------------------------------------------------------------- links
def within_bounds(c: Config) -> None:
    """The README's bounds: what one run may ask of the server."""
    assert 4 <= c.n_train <= config_.MAX_SAMPLES and 4 <= c.n_val <= config_.MAX_SAMPLES
    assert len(c.hidden) <= config_.MAX_DEPTH and all(1 <= w <= config_.MAX_WIDTH
                                                      for w in c.hidden)
    assert 1 <= c.epochs <= config_.MAX_EPOCHS and 1 <= c.patience <= config_.MAX_EPOCHS
    assert 0 <= c.batch_size <= config_.MAX_SAMPLES and 0 <= c.seed <= 2**31 - 1
    assert 0 < c.lr <= 10
    for name in FIELDS:
        value = getattr(c, name)
        if isinstance(value, float):
            assert math.isfinite(value), name
    assert Config(**{k: getattr(c, k) for k in FIELDS}) == c  # re-validates


_NUMBERS = st.one_of(
    st.integers(-10**30, 10**30).map(str),
    # No subnormals from Hypothesis: Trainer.step() sets flush-to-zero in its thread (the
    # engine's choice), after which Hypothesis refuses to make them; they come as text below.
    st.floats(allow_subnormal=False).map(repr),
    st.floats(allow_nan=False, allow_subnormal=False).map(lambda x: f"{x:.3e}"),
    st.sampled_from(["nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e999", "-1e999",
                     "1e-400", "0x10", "1_000", "٣", "６４", "+5", "-0", "0.0", "1e2", "5000.5",
                     "4999.9999999999", "2147483648", "-2147483649", "1" * 39, "9" * 41,
                     "5e-324", "2.2250738585072014e-308", "-0.0"]),
)
_WIDTHS = st.one_of(
    st.lists(st.integers(-5, 2000).map(str), max_size=12).flatmap(
        lambda ws: st.sampled_from(["-", ",", "x", " ", "--", ", "]).map(lambda s: s.join(ws))),
    st.integers(1, 3000).map(lambda n: "512," * n),  # "512,512,512,..." up to 12 KB
    st.sampled_from(["512-512-512-512-512-512-512-512", "512x8", "0", "-", "none", "64-",
                     "-64", "1e3", "64.0-64", "٣-٣"]),
)
_WORDS = st.sampled_from(
    [*DATASETS, *PRESETS, *AUGMENTATIONS, *ACTIVATIONS, *OPTIMIZERS, "cnn", "mlp", "true",
     "false", "on", "off", "yes", "", " ", "None", "null", "undefined", "<script>alert(1)</script>",
     "[Log in](https://evil.example)", "../../etc/passwd", "\x00", "😀" * 50, "é" * 3,
     "x" * 20_000, "9" * 5000, "1-" * 10_000])
_VALUES = st.one_of(st.text(max_size=40), _NUMBERS, _WIDTHS, _WORDS)
_KEYS = st.one_of(
    st.sampled_from([*FIELDS, "preset"]),
    st.sampled_from(["PRESET", "Dropout", "embed", "embed_options", "__proto__", "hidden[]",
                     "", " ", "n_train ", "ñ", "😀", "run", "id", "w_dropout"]),
    st.text(max_size=12),
)
_ENCODINGS = {
    "quote": lambda t: quote(t, safe=""),
    "plus": quote_plus,
    "raw": lambda t: t,  # unescaped: '&', '=', '#' and '%' break the pairs
    "double": lambda t: quote(quote(t, safe=""), safe=""),
}


@st.composite
def query_strings(draw) -> str:
    """A link's query string: pairs of hostile keys and values, each encoded some way."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.text(max_size=200))  # any text at all
    pairs = draw(st.lists(st.tuples(_KEYS, _VALUES, st.sampled_from(sorted(_ENCODINGS))),
                          max_size=12))
    parts = [f"{_ENCODINGS[e](k)}={_ENCODINGS[e](v)}" if draw(st.booleans()) or v
             else _ENCODINGS[e](k) for k, v, e in pairs]  # some keys come without "="
    return draw(st.sampled_from(["", "?"])) + "&".join(parts)


def _page_parse(query_string: str):
    """What the page makes of a link: `_init_from_url`, then main()'s parse of the controls.

    Streamlit's own QueryParams parses the string; the page's code runs on a stand-in for
    `st` (query_params and session_state only), so thousands of links take seconds.
    """
    params = QueryParams()
    params.populate_from_query_string(query_string)
    fake = SimpleNamespace(query_params=params, session_state={})
    with mock.patch.object(page, "st", fake), mock.patch.object(controls, "st", fake):
        page._init_from_url()
        config, problems = Config.from_query(
            controls.current_values(), base=PRESETS[fake.session_state["preset"]].config)
    return config, problems, fake.session_state


def _fits_its_widget(control: controls.Control, value) -> bool:
    if control.widget == "selectbox":
        return value in control.options
    if control.widget in ("number", "slider"):
        return control.low <= value <= control.high and not isinstance(value, bool)
    if control.widget == "toggle":
        return isinstance(value, bool)
    if control.widget == "select_slider":
        return isinstance(value, float) and math.isfinite(value)
    if control.widget == "multiselect":
        return isinstance(value, list) and set(value) <= set(control.options)
    return isinstance(value, str)


@settings(max_examples=URL_EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(query_strings())
def test_hostile_links_give_a_valid_config_or_warnings(query_string):
    """Huge numbers, NaN, inf, negative sizes, unicode, repeated and unknown keys, empty and
    very long values, 'hidden=512,512,...', percent-encoding: never an exception; the page
    gets a Config within the README's bounds, every control a value it can show, and each
    ignored value one short message."""
    config, problems, state = _page_parse(query_string)
    within_bounds(config)
    assert state["preset"] in PRESETS and state["initialized"] is True
    for control in controls.CONTROLS.values():
        assert _fits_its_widget(control, state[control.key]), (control.name, state[control.key])
    for message in state["link_warnings"] + problems:
        assert isinstance(message, str) and message
    for message in state["link_warnings"]:
        if not message.startswith("unknown preset"):  # config's messages: see the xfail below
            assert len(message) <= 300, message


def test_a_very_long_hidden_value_is_refused_quickly():
    """'1-' * 10**7 (a crafted 20 MB websocket request) must not be parsed into 10**7 ints:
    it took seconds and gigabytes before the length guard (config.MAX_WIDTHS_TEXT)."""
    start = time.perf_counter()
    config, problems = Config.from_query({"hidden": "1-" * 10**7})
    assert time.perf_counter() - start < 1.0
    assert config.hidden == Config().hidden and problems[0].startswith("'hidden' must be")
    assert len(problems[0]) < 200


HOSTILE_LINKS = [
    {"hidden": "512,512,512,512,512,512,512,512", "n_val": "5000"},
    {"n_train": "5000", "n_val": "5000", "hidden": "64-64"},
    {"hidden": "512," * 1000, "n_train": "-5", "dropout": "nan", "lr": "inf"},
    {"epochs": "1e999", "seed": "-1", "batch_size": "99999999999999999999999999"},
    {"preset": "../../etc/passwd", "dataset": "<script>alert(1)</script>"},
    {"dropout": ["0.1", "0.2", "banana"], "l2": ["", "0.5"], "zzz": "1", "": "x"},
    {"noise": "٣", "n_val": "６４", "activation": "😀" * 200, "label_noise": "-0"},
    {"preset": "digits_shift", "n_train": "5000", "arch": "cnn", "augment": "jitter"},
    {"residual": "yes", "hidden": "64-32", "stochastic_depth": "0.9", "batch_norm": "on",
     "batch_size": "1"},
    {"lr": "1e-300", "weight_decay": "10", "optimizer": "sgd", "l1": "1"},
    {"dataset": "wine", "n_train": "5000", "hidden": "", "dropout": "0.5"},
]


@pytest.mark.parametrize("link", HOSTILE_LINKS, ids=[str(i) for i in range(len(HOSTILE_LINKS))])
def test_hostile_links_on_the_real_page_warn_and_still_train(make_page, link):
    """The same links through the whole page (AppTest): warnings, no exception, and Train
    (2 epochs) still trains the Config the controls show."""
    from regdemo.ui.state import get_runner

    at = make_page()
    for key, value in link.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception
    at.number_input(key="w_epochs").set_value(2).run()
    at.button(key="btn_train").click().run()
    handle = get_runner().get(at.session_state["run_id"])
    assert handle.wait(60)
    at.run()
    assert not at.exception
    within_bounds(handle.config)
    assert handle.snapshot().epoch == 2 or handle.snapshot().diverged


# ----------------------------------------------------------------------------- the CLI
class _StubTrainer:
    """Stands in for the engine under the CLI fuzz: a valid config 'trains' 0 epochs at once
    (a random argv may well ask for 100,000 epochs on 8 x 512 units)."""

    def __init__(self, config, *args, **kwargs):
        assert isinstance(config, Config)
        within_bounds(config)
        self.config, self.history, self.events = config, [], []
        self.stop_reason, self.diverged = "stub: no training in the fuzz", False

    def step(self):
        return None

    def summary(self):
        return {"epochs": 0}


@pytest.fixture
def cli_sandbox(tmp_path, monkeypatch):
    """A data folder with one saved run, a working folder of odd files, no real training."""
    from regdemo import engine, sweep
    from regdemo.store import RunStore

    data = tmp_path / "data"
    monkeypatch.setenv("REGDEMO_DATA_DIR", str(data))
    with RunStore() as store:
        run_id = store.create(PRESETS["overfit"].config, "a <b>saved</b> run")
    work = tmp_path / "work" / "here"
    work.mkdir(parents=True)
    (work / "run.json").write_text(json.dumps({"config": {}, "history": {}}))
    (work / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (work / "binary.json").write_bytes(bytes(range(256)) * 10)
    (work / "adir.csv").mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(engine, "Trainer", _StubTrainer)
    monkeypatch.setattr(sweep, "make_executor", lambda backend, workers: contextlib.nullcontext())

    def no_sweep(spec, executor, progress=None, cancel=None):
        assert 5 <= len(spec.values()) <= 15
        raise KeyboardInterrupt  # the CLI's cancel path: it says so and exits 130

    monkeypatch.setattr(sweep, "run_sweep", no_sweep)
    return run_id


_ARG_WORDS = ["train", "presets", "runs", "sweep", "list", "export", "import", "rename",
              "delete", "--preset", "--set", "--out", "--quiet", "--limit", "--format",
              "--data-dir", "--knob", "--from", "--to", "--points", "--log", "--seeds",
              "--workers", "--epochs", "--backend", "--", "-", "=", "a=b", "--set=seed=1",
              "--help"]
_ARG_VALUES = st.one_of(
    st.sampled_from(["overfit", "dropout", "nope", "l2", "width", "dropout=0.5", "lr=10",
                     "hidden=" + "-".join(["512"] * 20), "hidden=512,512,512", "epochs=3",
                     "seed=" + "1" * 100, "json", "csv", "ray", "local", "x.csv", "x.json",
                     "x.txt", "adir.csv", "run.json", "deep.json", "binary.json", "missing.json",
                     "../up.csv", "data/runs.sqlite3", "../../etc/passwd", "sub/../x.json",
                     "nan", "inf", "-inf", "-1", "0", "1", "1e999", "9" * 30, "", " ",
                     "\udcff", "é", "<img src=x onerror=alert(1)>", "[x](https://e.example)",
                     "75", "76", "100000"]),
    _NUMBERS,
    st.sampled_from(["9" * 30, "-" + "9" * 30, str(2**63), str(2**64), "1e30", "10**30"]),
    # undecodable argv bytes (os.fsdecode's surrogateescape), alone or in a word
    st.text(alphabet=st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF), min_size=1,
            max_size=3).map(lambda t: "caf" + t),
    # Relative paths only: `--out` and `--data-dir` write where they point (we are root).
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
            max_size=20).filter(lambda t: not t.lstrip().startswith(("/", "~"))),
)


_COMMANDS = {  # each command with the options it takes (others are noise)
    ("train",): ["--preset", "--set", "--out", "--quiet"],
    ("presets",): [],
    ("sweep",): ["--preset", "--knob", "--from", "--to", "--points", "--log", "--seeds",
                 "--workers", "--epochs", "--set", "--backend", "--out", "--quiet"],
    ("runs", "list"): ["--limit", "--data-dir"],
    ("runs", "export"): ["--format", "--out", "--data-dir"],
    ("runs", "import"): ["--data-dir"],
    ("runs", "rename"): ["--data-dir"],
    ("runs", "delete"): ["--data-dir"],
    ("runs",): ["--data-dir"],
    (): [],
}
_FLAGS = ("--quiet", "--log")


@st.composite
def argvs(draw, run_id: str) -> list[str]:
    """A command line: a command, its positionals, its options with hostile values, and
    now and then a word of noise. (argv from a shell never holds NUL; undecodable bytes
    arrive as lone surrogates.)"""
    command = draw(st.sampled_from(sorted(_COMMANDS)))
    argv = list(command)
    if command[1:] in (("export",), ("rename",), ("delete",)):
        argv.append(draw(st.one_of(st.just(run_id), _ARG_VALUES)))
    if command[1:] == ("rename",):
        argv.append(draw(_ARG_VALUES))
    if command[1:] == ("import",):
        argv.append(draw(_ARG_VALUES))
    own = _COMMANDS[command] or ["--set"]
    for option, value in draw(st.lists(st.tuples(st.sampled_from(own), _ARG_VALUES),
                                       max_size=4)):
        argv += [option] if option in _FLAGS else [option, value]
    if draw(st.integers(0, 3)) == 0:
        word = draw(st.one_of(st.sampled_from(_ARG_WORDS), _ARG_VALUES))
        argv.insert(draw(st.integers(0, len(argv))), word)
    return argv


def _run_cli(argv: list[str]) -> tuple[object, str, str]:
    from regdemo.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # --help: argparse prints usage and exits 0
            code = ("exit", exc.code)
    return code, out.getvalue(), err.getvalue()


def test_random_command_lines_exit_cleanly(cli_sandbox):
    """Random argv lists (commands with hostile values, odd files, a real saved run's id)
    through `python -m regdemo`'s main in-process: an exit code of 0, 1, 2 or 130 and at most
    one 'error: ...' line, or --help's SystemExit(0); never another exception or a traceback.
    (Training and sweeping are stubbed: argument handling is under test, not the engine.)"""
    seen = {"examples": 0, "codes": {}}

    @settings(max_examples=CLI_EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(argvs(cli_sandbox))
    def check(argv):
        code, out, err = _run_cli(argv)
        seen["examples"] += 1
        seen["codes"][str(code)] = seen["codes"].get(str(code), 0) + 1
        assert "Traceback" not in out + err
        if code == ("exit", 0):
            assert "usage:" in out
            return
        assert code in (0, 1, 2, 130), (argv, code)
        if code == 2:  # one "error: ..." line (two with the corrupt-store warning); an
            # argument holding a newline is echoed as it is, so it may span more
            lines = err.strip("\n").split("\n")
            newlines = sum(a.count("\n") for a in argv)
            assert any(line.startswith("error: ") for line in lines), (argv, err)
            assert len(lines) <= 2 + newlines, (argv, err)

    check()
    assert seen["examples"] >= CLI_EXAMPLES * 0.9
    assert {"0", "2"} <= set(seen["codes"])  # both good and refused command lines were tried
    print(f"{seen['examples']} command lines: exit codes {seen['codes']}")


@pytest.mark.parametrize("argv, message", [
    (["runs", "list", "--limit", "9" * 30], None),  # was OverflowError from SQLite's LIMIT
    (["runs", "rename", "RUNID", "\udcff"], "lone surrogate"),  # undecodable argv bytes
    (["sweep", "--knob", "l2", "--from", "0.001", "--to", "1", "--workers", "100000"],
     "--workers must be in [1, 75]"),  # would have spawned 100,000 processes
])
def test_command_lines_that_used_to_crash(cli_sandbox, argv, message):
    """Found by the fuzz above: each was a traceback (or a fork bomb) before its fix."""
    code, out, err = _run_cli([cli_sandbox if a == "RUNID" else a for a in argv])
    assert "Traceback" not in err
    if message is None:
        assert code == 0 and "a <b>saved</b> run" in out
    else:
        assert code == 2 and message in err


def test_undecodable_argv_bytes_from_a_real_shell(tmp_path):
    """The surrogate case end to end: bytes that are not UTF-8 on a real command line."""
    from regdemo.store import RunStore

    with RunStore(tmp_path) as store:
        run_id = store.create(PRESETS["overfit"].config, "before")
    result = subprocess.run(
        [sys.executable, "-m", "regdemo", "runs", "--data-dir", str(tmp_path), "rename", run_id,
         b"caf\xe9"], cwd=ROOT, capture_output=True, check=False)
    assert result.returncode == 2, result.stderr
    assert b"Traceback" not in result.stderr and b"lone surrogate" in result.stderr
    with RunStore(tmp_path) as store:
        assert store.info(run_id).name == "before"


# ----------------------------------------------------------------------------- controls
_WIDEST = "-".join(["512"] * 8)
_CHOICES = {
    "dataset": list(DATASETS), "noise": [0.0, 1.0], "label_noise": [0.0, 0.5],
    "hidden": [_WIDEST, "1", "", "1-1-1-1-1-1-1-1", "512", "0", "513", "1-2-3-4-5-6-7-8-9",
               "abc", "64,64", "64-64"],
    "activation": list(ACTIVATIONS), "arch": ["mlp", "cnn"], "batch_norm": [True, False],
    "residual": [True, False], "l2": [0.0, 1.0], "l1": [0.0, 1.0], "weight_decay": [0.0, 10.0],
    "dropout": [0.0, 0.95], "augment": list(AUGMENTATIONS), "augment_strength": [0.0, 1.0],
    "label_smoothing": [0.0, 0.5], "stochastic_depth": [0.0, 0.9],
    "early_stopping": [True, False], "patience": [1, 100_000], "restore_best": [True, False],
    "optimizer": list(OPTIMIZERS), "lr": [1e-4, 10.0], "seed": [0, 2**31 - 1],
}


def _combination(rng: random.Random) -> dict:
    """Every control at an end of its range; sizes kept so one epoch stays under a second or
    two (batch 1 over 5,000 points of an 8 x 512 net takes minutes, see the RSS test)."""
    default = PRESETS["overfit"].config  # half the controls stay at the page's defaults
    values = {name: rng.choice(options) if rng.random() < 0.5 else
              controls.encode("hidden", default.hidden) if name == "hidden" else
              getattr(default, name) for name, options in _CHOICES.items()}
    values["batch_size"] = rng.choice([0, 1, 2, 5000])
    # (the widest net on 5,000 points has its own test: the RSS one below)
    small = values["batch_size"] in (1, 2) or values["hidden"] == _WIDEST
    values["n_train"] = rng.choice([4, 40] if small else [4, 5000])
    values["n_val"] = rng.choice([4, 5000])
    values["epochs"] = rng.choice([1, 2])
    return values


def _set(at, name: str, value) -> None:
    control = controls.CONTROLS[name]
    widget = {"selectbox": at.selectbox, "slider": at.slider, "select_slider": at.select_slider,
              "toggle": at.toggle, "number": at.number_input, "text": at.text_input}
    widget[control.widget](key=control.key).set_value(value)


def test_extreme_control_combinations_train_without_an_exception(make_page):
    """A few dozen combinations of controls at the ends of their ranges, then Train: the page
    shows errors beside controls that do not fit together (and blocks Train for them), trains
    what does, and never shows an exception; the run's Config is within bounds."""
    from regdemo.ui.state import get_runner

    at = make_page()
    at.run()
    rng = random.Random(6)
    trained = refused = 0
    known: dict[str, list[int]] = {}

    def no_exception(i, values):
        bug = known_bug(at.exception)
        if bug:
            known.setdefault(bug, []).append(i)
        else:
            assert not at.exception, (i, values, [e.proto.message for e in at.exception])

    for i in range(PAGE_COMBINATIONS):
        values = _combination(rng)
        for name, value in values.items():
            _set(at, name, value)
        at.run()
        no_exception(i, values)
        if at.sidebar.error:  # settings a run cannot take: Train is blocked, not run
            refused += 1
            assert at.button(key="btn_train").disabled, (i, values)
            continue
        at.button(key="btn_train").click().run()
        no_exception(i, values)
        handle = get_runner().get(at.session_state["run_id"])
        assert handle.wait(120), (i, values)
        at.run()
        no_exception(i, values)
        snap = handle.snapshot()
        within_bounds(snap.config)
        assert snap.error is None, (i, values, snap.error)
        trained += snap.epoch > 0 or snap.diverged
        at.button(key="btn_reset").click().run()
        no_exception(i, values)
    known = {bug: sorted(set(ids)) for bug, ids in known.items()}
    print(f"{PAGE_COMBINATIONS} combinations: {refused} with errors beside controls, "
          f"{trained} trained, known bugs hit: {known}")
    assert refused >= 5 and trained >= 5  # both paths were exercised
    assert trained + refused == PAGE_COMBINATIONS  # each one trained or was refused
    if known:
        pytest.xfail("; ".join(f"{bug}: combinations {ids}" for bug, ids in known.items()))


# ----------------------------------------------------------------------------- engine
_SMALL_CONFIGS = st.fixed_dictionaries(dict(
    dataset=st.sampled_from(list(DATASETS)), n_train=st.sampled_from([4, 5, 33]),
    n_val=st.sampled_from([4, 50]), noise=st.sampled_from([0.0, 1.0]),
    label_noise=st.sampled_from([0.0, 0.5]),
    hidden=st.lists(st.sampled_from([1, 3, 16]), max_size=3).map(tuple),
    activation=st.sampled_from(ACTIVATIONS), arch=st.sampled_from(["mlp", "cnn"]),
    batch_norm=st.booleans(), residual=st.booleans(), l1=st.sampled_from([0.0, 1.0]),
    l2=st.sampled_from([0.0, 10.0]), weight_decay=st.sampled_from([0.0, 10.0]),
    dropout=st.sampled_from([0.0, 0.95]), augment=st.sampled_from(list(AUGMENTATIONS)),
    augment_strength=st.sampled_from([0.0, 1.0]), label_smoothing=st.sampled_from([0.0, 0.5]),
    stochastic_depth=st.sampled_from([0.0, 0.9]), early_stopping=st.booleans(),
    patience=st.just(1), optimizer=st.sampled_from(OPTIMIZERS),
    lr=st.sampled_from([1e-4, 0.01, 10.0]), batch_size=st.sampled_from([0, 1, 3]),
    epochs=st.just(3), seed=st.sampled_from([0, 2**31 - 1])))


@settings(max_examples=120, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(_SMALL_CONFIGS)
def test_every_valid_config_trains_forks_and_draws_without_raising(values):
    """Any Config the page can produce (small sizes, every other knob at an end) trains 3
    epochs, draws its views, forks and takes a live change without an exception; every
    recorded number is finite and a stop has a sentence for a reason."""
    from regdemo.engine import Trainer

    try:
        config = Config(**values)
    except ConfigError:
        return
    trainer = Trainer(config)
    trainer.fit(3)
    trainer.views()
    branch = trainer.fork()
    branch.set_live(epochs=5, lr=0.001)
    branch.fit()
    branch.views()
    for record in trainer.history + branch.history:
        assert all(math.isfinite(v) for v in record.as_dict().values()), record
    for t in (trainer, branch):
        assert t.stop_reason is None or len(t.stop_reason.split()) >= 3


# ----------------------------------------------------------------------------- memory
_EXTREME_RUN = textwrap.dedent("""
    import json, os, resource, sys, threading, time
    from pathlib import Path
    from regdemo.config import Config
    from regdemo.engine import Trainer

    def rss():
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    def peak():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    Trainer(Config(n_train=8, n_val=8, hidden=(4,))).step()  # imports and first optimizer
    out = {"base": rss()}
    widest = dict(n_train=5000, n_val=5000, hidden=(512,) * 8, epochs=100000,
                  early_stopping=True, patience=100000, dataset=sys.argv[1])
    t0 = time.perf_counter()
    trainer = Trainer(Config(**widest))  # full batch: the most memory per epoch
    trainer.step()
    trainer.views()
    branch = trainer.fork()  # Fork A/B doubles a run's weights and optimizer state
    out["full_batch_epoch_s"] = time.perf_counter() - t0
    out["full_batch_peak"] = peak()
    del trainer, branch
    small = Trainer(Config(**widest, batch_size=1))  # batch 1: the most steps per epoch
    threading.Thread(target=small.step, daemon=True).start()
    t0, top = time.perf_counter(), 0.0
    while time.perf_counter() - t0 < 2.5:
        top = max(top, rss())
        time.sleep(0.05)
    out["batch1_rss"] = top
    out["peak"] = peak()
    print(json.dumps(out), flush=True)
    os._exit(0)  # the batch-1 epoch is still running in its thread
""")
RUN_MB_BOUND = 800


@pytest.mark.parametrize("dataset", ["sparse"])
def test_the_most_extreme_valid_run_has_bounded_memory(dataset):
    """Memory of the most extreme valid run, measured in a fresh process (RSS, MB).

    Bounds (for the README): one run at the limits (5,000 training and 5,000 validation
    points of the 40-feature `sparse` set, 8 hidden layers of 512 units, Adam, early
    stopping keeping its best weights, up to 100,000 epochs), training full batch with its
    views drawn and a Fork A/B of it, or with batch size 1, adds at most RUN_MB_BOUND = 800
    MB to its process above a warm engine's baseline (measured here: +363 MB at the peak of
    a full-batch epoch, repeatably, and +602 MB once in a full-suite run; +110 MB with batch
    1). The process's own baseline (torch, numba's kernels, scikit-learn) is ~540 MB.
    History is kept whole in the Trainer (100,000 epochs at most, ~20 MB) and thinned to
    2,000 points in the page's mirror.
    Time is not bounded the same way: one batch-1 epoch of that net over 5,000 points takes
    ~40 s on the fused path it gets by default (~20 s eager) on this machine, and a worker
    trains nothing else during an epoch (it yields between epochs only).
    """
    result = subprocess.run([sys.executable, "-c", _EXTREME_RUN, dataset], cwd=ROOT,
                            capture_output=True, text=True, timeout=240, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    m = json.loads(result.stdout.strip().splitlines()[-1])
    grown = m["peak"] - m["base"]
    print(f"extreme run: base {m['base']:.0f} MB, full-batch peak +"
          f"{m['full_batch_peak'] - m['base']:.0f} MB ({m['full_batch_epoch_s']:.1f} s/epoch), "
          f"batch-1 +{m['batch1_rss'] - m['base']:.0f} MB, overall peak +{grown:.0f} MB")
    assert grown <= RUN_MB_BOUND
    assert m["batch1_rss"] - m["base"] <= RUN_MB_BOUND
