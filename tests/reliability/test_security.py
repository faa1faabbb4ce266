"""Security: nothing a user sends is evaluated or unpickled; imports are checked; names are
shown as text; the shipped server settings keep XSRF and CORS protection; ids name no file.
"""

from __future__ import annotations

import ast
import json
import math
import re
import time
import tomllib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regdemo import store as store_
from regdemo.config import Config
from regdemo.presets import PRESETS
from regdemo.store import BadRunId, ImportRejected, RunStore, StoreError
from tests.page_reading import static_charts
from tests.reliability.helpers import ROOT, messages

HOSTILE_NAMES = ["<img src=x onerror=alert(1)>", '<a href="javascript:alert(1)">click</a>',
                 "<b>bold</b> & <i>co</i>", '<span style="font-size:90px">BIG</span>']


# ----------------------------------------------------------------------------- static scan
_BANNED_MODULES = {"pickle", "cPickle", "dill", "cloudpickle", "marshal", "shelve", "joblib",
                   "yaml", "jsonpickle"}
_BANNED_CALLS = {"eval", "exec", "compile", "__import__", "input"}
_BANNED_ATTRS = {("torch", "load"), ("torch.jit", "load"), ("np", "load"), ("numpy", "load"),
                 ("pd", "read_pickle"), ("pandas", "read_pickle"), ("os", "system"),
                 ("os", "popen"), ("yaml", "load"), ("yaml", "unsafe_load"),
                 ("importlib", "import_module"), ("components", "html"),
                 ("tempfile", "mktemp")}


def _dotted(node) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def _literal_names(tree: ast.Module) -> set[str]:
    """Module-level names bound once to a string literal (like a page's CSS constant)."""
    names = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(
                node.targets[0], ast.Name):
            name = node.targets[0].id
            literal = isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
            names[name] = literal and name not in names
    return {n for n, ok in names.items() if ok}


def scan(source: str, where: str) -> list[str]:
    """What in `source` could evaluate, unpickle or render a user's text as code."""
    found = []
    tree = ast.parse(source)
    literals = _literal_names(tree)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [
                node.module or ""]
            found += [f"{where}:{node.lineno} imports {n}" for n in names
                      if n.split(".")[0] in _BANNED_MODULES]
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        owner, _, attr = name.rpartition(".")
        if name in _BANNED_CALLS or (owner, attr) in _BANNED_ATTRS or (
                owner.endswith("torch") and attr == "load"):
            found.append(f"{where}:{node.lineno} calls {name}")
        for kw in node.keywords:
            literal = isinstance(kw.value, ast.Constant)
            if kw.arg == "shell" and not (literal and kw.value.value is False):
                found.append(f"{where}:{node.lineno} {name}(shell=...)")
            if kw.arg in ("unsafe_allow_html", "allow_pickle") and not (
                    literal and kw.value.value is False):
                found.append(f"{where}:{node.lineno} {name}({kw.arg}=...)")
        # st.html renders raw HTML: only a literal (the page's own CSS) may go in
        if attr == "html" and not all(isinstance(a, ast.Constant) or (
                isinstance(a, ast.Name) and a.id in literals) for a in node.args):
            found.append(f"{where}:{node.lineno} {name}(<not a literal>)")
    return found


def test_the_scanner_finds_what_it_looks_for():
    """The scan below is not vacuous: each pattern in a planted snippet is reported."""
    planted = (
        "import pickle\nfrom yaml import load\nimport torch\neval(x)\nexec(y)\n"
        "torch.load(f)\nnp.load(f, allow_pickle=True)\nsubprocess.run(c, shell=True)\n"
        "os.system(c)\nst.markdown(t, unsafe_allow_html=True)\nst.html(name)\n"
        "importlib.import_module(m)\n"
    )
    assert len(scan(planted, "planted")) == 12
    assert scan("CSS = '<style>x</style>'\nst.html(CSS)\nst.html('<p>')\n"
                "subprocess.run(['ls'])\njson.loads(t)\n", "fine") == []
    assert len(scan("CSS = '<style>'\nCSS = user\nst.html(CSS)\n", "rebound")) == 1


def test_nothing_in_the_app_evaluates_or_unpickles():
    """Every module of regdemo/ and app.py: no pickle/marshal/shelve/yaml, no eval/exec/
    compile/__import__, no torch.load/np.load/read_pickle, no shell=True or os.system, no
    unsafe_allow_html, no st.html of anything but a literal. (The runner's queues pickle
    between the server and its own worker processes; nothing a user sends takes that path:
    links, widgets, uploads and command lines arrive as text and are parsed, never loaded.)
    The chart component's page parses figures with JSON.parse, never eval or innerHTML."""
    files = sorted((ROOT / "regdemo").rglob("*.py")) + [ROOT / "app.py"]
    assert len(files) > 20
    found = [f for path in files for f in scan(path.read_text(), str(path.relative_to(ROOT)))]
    assert found == []
    for page in (ROOT / "regdemo").rglob("*.html"):
        text = page.read_text()
        for pattern in (r"\beval\s*\(", r"new\s+Function", r"innerHTML", r"document\.write",
                        r"outerHTML", r"insertAdjacentHTML"):
            assert not re.search(pattern, text), (page, pattern)


# ----------------------------------------------------------------------------- imports
def _good() -> dict:
    return {"format": "regdemo-run", "version": 1, "name": "n", "config": {"epochs": "2"},
            "summary": {"val_loss": 0.5, "stop_reason": "finished"},
            "events": [{"epoch": 1, "knob": "augment", "old": "none", "new": "jitter"}],
            "history": {f: [1, 2] for f in store_.FIELDS}}


def _nest(depth: int):
    value = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.fixture
def store(tmp_path):
    with RunStore(tmp_path) as s:
        yield s


HOSTILE_IMPORTS = {
    "over the size limit": b" " * (store_.MAX_IMPORT_BYTES + 1),
    "deeply nested": "[" * 200_000 + "]" * 200_000,
    "nested inside the summary": lambda d: {**d, "summary": {"x": _nest(50)}},
    "nested inside an event": lambda d: {**d, "events": [{**d["events"][0], "old": _nest(5)}]},
    "not UTF-8": b"\xff\xfe{\x00",
    "a list": "[]",
    "config not text": lambda d: {**d, "config": {"epochs": 2}},
    "config value too long": lambda d: {**d, "config": {"epochs": "9" * 5000}},
    "a lone surrogate in the name": lambda d: {**d, "name": "\udcff"},
    "a lone surrogate in the summary": lambda d: {**d, "summary": {"stop_reason": "\ud800"}},
    "a control character in the name": lambda d: {**d, "name": "a\x1b[2Jb"},
    "an int past a float in the history": lambda d: {
        **d, "history": {**d["history"], "val_loss": [1, 10**400]}},
    "an epoch past SQLite's integers": lambda d: {
        **d, "history": {**d["history"], "epoch": [1, 2**70]}},
    "an event epoch past SQLite's integers": lambda d: {
        **d, "events": [{**d["events"][0], "epoch": 2**70}]},
    "markup as an event's knob": lambda d: {
        **d, "events": [{**d["events"][0], "knob": '<a href="https://evil.example">x</a>'}]},
    "markup as an event's value": lambda d: {
        **d, "events": [{**d["events"][0], "new": "<b>jitter</b>"}]},
    "a huge summary number": lambda d: {**d, "summary": {"val_loss": 10**30}},
    "too many events": lambda d: {**d, "events": d["events"] * 10_001},
    "history rows of the wrong type": lambda d: {**d, "history": [1, 2, 3]},
    "a string epoch": lambda d: {**d, "history": {**d["history"], "epoch": ["1", "2"]}},
}


@pytest.mark.parametrize("name", list(HOSTILE_IMPORTS))
def test_a_hostile_import_is_refused_with_one_line(store, name):
    """Too big, too deep, wrong types, text SQLite cannot hold, numbers past its integers,
    markup where a chart label is made: ImportRejected with one line, nothing saved. (Each
    of the surrogate, int-range and markup cases raised something else, or was saved and
    drawn as markup, before the store's checks were tightened.)"""
    hostile = HOSTILE_IMPORTS[name]
    data = hostile(_good()) if callable(hostile) else hostile
    text = json.dumps(data) if isinstance(data, (dict, list)) else data
    start = time.perf_counter()
    with pytest.raises(ImportRejected) as caught:
        store.import_json(text)
    assert time.perf_counter() - start < 5
    message = str(caught.value)
    assert message.startswith("cannot import run: ") and "\n" not in message
    assert len(message) < 400 and store.runs() == []


def test_markup_in_a_name_is_kept_as_text(store):
    """A name is any printable text, stored as given: showing it safely is the page's job
    (the next tests check that it does)."""
    for name in HOSTILE_NAMES:
        run_id = store.import_json(json.dumps({**_good(), "name": name}))
        assert store.info(run_id).name == name


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_subnormal=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)
_PLACES = ["name", "status", "config", "summary", "events", "history", "format", "version"]


@settings(max_examples=400, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(_PLACES), _JSON), max_size=3),
       st.sampled_from(list(store_.FIELDS)), _JSON)
def test_random_json_in_any_field_is_imported_or_refused(store, changes, column, cell):
    """Any JSON value in any field (or in a history cell): a new run, or ImportRejected;
    never another exception. What is accepted reads back and exports as strict JSON."""
    data = _good()
    for place, value in changes:
        data[place] = value
    if isinstance(data.get("history"), dict) and isinstance(data["history"].get(column), list):
        data["history"][column] = [data["history"][column][0], cell]
    try:
        run_id = store.import_json(json.dumps(data))
    except ImportRejected as exc:
        assert str(exc).startswith("cannot import run: ")
        return
    run = store.get(run_id)
    assert run is not None and run.info.origin == "import"
    assert json.loads(store.export_json(run_id))["id"] == run_id
    store.delete(run_id)


# ----------------------------------------------------------------------------- names shown
def _figure_texts(figure: dict) -> list[str]:
    """Every string of a Plotly figure that Plotly renders as (its subset of) HTML."""
    texts = [figure.get("layout", {}).get("title", {}).get("text", "")]
    for trace in figure.get("data", []):
        texts += [str(trace.get(k, "")) for k in ("name", "legendgroup", "text",
                                                   "hovertemplate")]
    texts += [a.get("text", "") for a in figure.get("layout", {}).get("annotations", [])]
    return texts


def _elements(node):
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _elements(child)


def test_run_names_are_shown_as_text_on_the_page(make_page, tmp_path):
    """Runs named with markup (imported, so another user's) in the Saved runs tab: the
    compare chart carries them escaped (Plotly would render <a>, <b>, <span style>); no
    element that renders HTML holds them; markdown that shows them does not allow HTML."""
    from regdemo.ui.state import get_store

    data = tmp_path / "data"
    with RunStore(data) as s:
        ids = [s.import_json(json.dumps({**_good(), "name": name})) for name in HOSTILE_NAMES]
        for run_id in ids:  # imported by this page's browser
            s.set_browser(run_id, "test-browser-0123456789")
    at = make_page(data_dir=data)
    at.run()
    at.multiselect(key="w_compare").set_value(ids).run()
    assert not at.exception
    compare = static_charts(at)["compare_chart"]
    texts = _figure_texts(compare)
    assert any("&lt;img src=x onerror=alert(1)&gt;" in t for t in texts)
    for t in texts:
        assert "<" not in t, t
    raw = ("<img src=x", "<b>bold", "</a>", "</span>")  # unescaped pieces of the names
    shown = 0
    for element in _elements(at._tree):
        proto = getattr(element, "proto", None)
        if proto is None or not any(piece in str(proto) for piece in raw):
            continue
        shown += 1
        kind = getattr(element, "type", "")
        assert kind not in ("html", "component_instance", "bidi_component"), (
            kind, str(proto)[:300])
        if kind == "markdown":
            assert not proto.allow_html, str(proto)[:300]
    assert shown >= 2  # the names are on the page (picker, table): as text
    assert len(get_store().runs()) == len(HOSTILE_NAMES)


def test_a_crafted_link_cannot_put_links_or_images_in_the_pages_warnings(make_page):
    at = make_page()
    at.query_params["dropout"] = "[Log in](https://evil.example)"
    at.query_params["preset"] = "![x](https://evil.example/p.png)" + "x" * 10_000
    at.run()
    assert not at.exception
    bodies = messages(at.warning)
    assert len(bodies) == 1  # one box: a line for the preset, one for dropout
    for body in bodies:
        assert body.count("\n- ") == 2
        plain = re.sub(r"`[^`]*`", "", body)  # a code span shows its text literally
        assert not re.search(r"(?<!\\)\]\(", plain), body[:200]
        assert len(body) < 800


def test_a_links_tiny_values_survive_the_controls(make_page):
    at = make_page()
    at.query_params["lr"] = "1e-11"
    at.query_params["l2"] = "3e-11"
    at.run()
    assert not at.sidebar.error
    config, problems = Config.from_query(
        {k: v if isinstance(v, str) else v[-1] for k, v in at.query_params.items()})
    assert (config.lr, config.l2) == (1e-11, 3e-11)


# ----------------------------------------------------------------------------- settings
def test_the_shipped_server_settings_keep_protection_and_bound_uploads():
    """.streamlit/config.toml: XSRF protection and CORS stay on, and an upload is refused
    by the server above the import limit (Streamlit's default holds 200 MB per upload in
    memory before our 32 MB check could refuse it)."""
    settings_ = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    server = settings_["server"]
    assert server["enableXsrfProtection"] is True and server["enableCORS"] is True
    assert server.get("enableStaticServing", False) is False
    assert server["maxUploadSize"] * 1024 * 1024 <= store_.MAX_IMPORT_BYTES  # MB = 2**20 B
    assert settings_["browser"]["gatherUsageStats"] is False


def test_streamlit_reads_the_shipped_settings():
    """The file is where Streamlit looks and parses as Streamlit options (no typo'd keys)."""
    from streamlit import config as st_config

    parsed = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    for section, values in parsed.items():
        for key in values:
            assert f"{section}.{key}" in st_config._config_options, f"{section}.{key}"


# ----------------------------------------------------------------------------- ids
TRAVERSALS = ["../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "/etc/passwd", "runs.sqlite3",
              "0123456789ab/../../x", "0123456789AB", "0123456789a", "0123456789abc",
              "0123456789ab\n", "٠١٢٣٤٥٦٧٨٩ab", "", " ", "*", "%", "' OR 1=1 --", None, 12,
              b"0123456789ab"]


@pytest.mark.parametrize("bad", TRAVERSALS, ids=[repr(t)[:20] for t in TRAVERSALS])
def test_a_run_id_from_a_link_or_command_line_names_no_file(store, tmp_path, bad):
    """Every store call that takes an id refuses anything but 12 lowercase hex digits
    (before any query or file access), and the data folder is left as it was."""
    real = store.create(PRESETS["overfit"].config)
    before = sorted(p.name for p in tmp_path.iterdir())
    calls = [lambda: store.get(bad), lambda: store.info(bad), lambda: store.export_json(bad),
             lambda: store.export_csv(bad), lambda: store.rename(bad, "x"),
             lambda: store.delete(bad), lambda: store.append(bad, []),
             lambda: store.finish(bad, "stopped")]
    if bad is not None:  # None is "no parent" and "a new id" for create
        calls += [lambda: store.create(Config(), parent=bad),
                  lambda: store.create(Config(), run_id=bad)]
    for call in calls:
        with pytest.raises(BadRunId):
            call()
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert store.info(real) is not None


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=30))
def test_any_text_as_an_id_is_refused_or_unknown(store, text):
    if store_.is_run_id(text):
        assert store.get(text) is None
    else:
        with pytest.raises(BadRunId):
            store.get(text)


@pytest.mark.parametrize("action", ["export", "rename", "delete"])
def test_the_cli_refuses_a_traversal_id_in_one_line(tmp_path, capsys, action):
    from regdemo.cli import main

    argv = ["runs", "--data-dir", str(tmp_path), action, "../../etc/passwd"]
    argv += ["new name"] if action == "rename" else []
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: '../../etc/passwd' is not a run id") and "root:" not in err


def test_a_link_cannot_name_a_run_or_a_file(make_page):
    """The page takes no path from a link and a run id only as 12 hex digits (a read-only
    shared run): other keys are ignored, an unknown preset and a bad 'run' are refused by
    name, and no file's content shows up."""
    at = make_page()
    for key in ("run", "id", "run_id", "file", "data_dir", "preset"):
        at.query_params[key] = "../../etc/passwd"
    at.run()
    assert not at.exception
    shown = [re.sub(r"\\(.)", r"\1", w) for w in messages(at.warning)]  # as rendered
    assert [w for w in shown if "passwd" in w] == [
        "Ignored from the link:\n- unknown preset '../../etc/passwd'; showing 'overfit'\n"
        "- 'run' must be a saved run's id (12 lowercase hex digits); got '../../etc/passwd'"]
    assert "shared_run" not in at.session_state
    page_text = " ".join(str(e.proto) for e in _elements(at._tree) if hasattr(e, "proto"))
    assert "root:x:0:0" not in page_text


def test_errors_are_strings_not_crashes_for_bad_names(store):
    run_id = store.create(PRESETS["overfit"].config)
    for bad in ["", " ", "x" * 121, "a\nb", "\udcff", None, 5]:
        with pytest.raises(StoreError):
            store.rename(run_id, bad)
    assert math.isfinite(store.info(run_id).created)
