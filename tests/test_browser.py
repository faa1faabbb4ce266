"""Real-browser tests: headless Debian Chromium, driven by Playwright, against `streamlit run`."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from regdemo.presets import PRESETS

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.browser
GRACE_SECONDS = 8  # the server's grace period for closed tabs, shortened for tests
SERVER_PIDS: dict[str, int] = {}
SERVER_LOG = Path(os.environ.get("TMPDIR", "/tmp")) / f"regdemo-test-server-{os.getpid()}.log"


def _require_browser():
    if os.path.exists(CHROMIUM):
        return
    if os.environ.get("REGDEMO_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{CHROMIUM} is missing and REGDEMO_REQUIRE_BROWSER=1")
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cold_server():
    """`streamlit run app.py` on a free localhost port; yields its base URL."""
    _require_browser()
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=SERVER_LOG.open("w"),
        env={**os.environ, "REGDEMO_GRACE_SECONDS": str(GRACE_SECONDS),
             "REGDEMO_MAX_RUNS": "30"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("streamlit did not become healthy within 60 s")
    SERVER_PIDS[url] = proc.pid
    yield url
    proc.terminate()
    try:
        proc.wait(30)  # workers still importing torch on a busy machine stop slowly
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@pytest.fixture(scope="module")
def browser():
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(cold_server, browser):
    """The server once its training workers are up (a cold start imports torch in each:
    seconds on a quiet machine, minutes on a loaded one), so tests time only their work."""
    context = browser.new_context()
    page = context.new_page()
    _open(page, f"{cold_server}/?preset=overfit&epochs=3&hidden=4")
    _train(page, lambda n: n == 3, timeout=300)
    context.close()
    return cold_server


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1500, "height": 1300})
    yield context.new_page()
    context.close()


# The board's loss chart, read in the page itself (a Plotly graph div: its traces, layout
# annotations, and the board's redraw counter).
_READ_LOSS = """() => {
  const d = document.querySelector('[data-chart=loss]');
  if (!d || !d.data || !d.layout) return null;
  return {title: (d.layout.title && d.layout.title.text) || '',
          points: d.data[0] && d.data[0].x ? d.data[0].x.length : 0,
          traces: d.data.map(t => [t.name, t.x && t.x.length ? +t.x[t.x.length - 1] : 0]),
          annotations: (d.layout.annotations || []).map(a => a.text),
          renders: +d.dataset.renders || 0};
}"""


def _loss_chart(page) -> dict:
    return page.evaluate(_READ_LOSS) or {"points": 0, "annotations": [], "traces": [],
                                         "renders": 0}


_POINTS = lambda page: _loss_chart(page)["points"]
_NEWEST = lambda page: max((x for _, x in _loss_chart(page).get("traces", [])), default=0)
_ANNOTATIONS = lambda page: _loss_chart(page)["annotations"]


def _wait_for(page, script, predicate, timeout=120.0):  # generous: CI machines are busy
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = script(page) if callable(script) else page.evaluate(script)
        if predicate(value):
            return value
        time.sleep(0.2)
    log = SERVER_LOG.read_text()[-3000:] if SERVER_LOG.exists() else ""
    raise AssertionError(f"timed out; last value {value!r}; server log ends:\n{log}")


def _train(page, predicate=lambda n: n > 0, timeout=120.0):
    """Click Train and wait for the chart's points to satisfy `predicate`.

    A click that lands while the page is mid-rerun can be dropped by the browser side; if
    no point shows within 30 s the click is repeated once, and said so on stdout.
    """
    page.get_by_role("button", name="Train", exact=True).click()
    try:
        return _wait_for(page, _POINTS, lambda n: n > 0, timeout=30)
    except AssertionError:
        print("Train showed no point within 30 s; clicking it again")
        page.get_by_role("button", name="Train", exact=True).click()
    return _wait_for(page, _POINTS, predicate, timeout=timeout)


def _open(page, url):
    """Load the page and wait for its first script run to finish (the main area's prompt)."""
    page.goto(url)
    page.get_by_text("to start. Change the live knobs").wait_for(timeout=60000)
    page.wait_for_function("!document.querySelector('[data-stale=true]')", timeout=30000)
    page.locator("[data-chart=loss]").wait_for(timeout=30000)  # the live board is mounted


def test_train_clicked_as_soon_as_the_page_shows_draws_a_point(server, page):
    """Click Train the moment it appears: the live board (mounted with the page's first
    script run, one Plotly load, no chart iframe) already has a chart to draw into."""
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
    page.goto(f"{server}/?preset=overfit&epochs=100000")
    train = page.get_by_role("button", name="Train", exact=True)
    train.wait_for(timeout=60000)
    train.click()
    _wait_for(page, _POINTS, lambda n: n > 0, timeout=60)
    assert page.locator("iframe").count() == 0
    loads = "document.querySelectorAll('script[src*=\"plotly.min.js\"]').length"
    assert page.evaluate(loads) == 1
    charts = page.evaluate("[...document.querySelectorAll('[data-chart]')]"
                           ".map(d => d.dataset.chart)")
    assert {"loss", "data", "weights", "norm"} <= set(charts)
    page.get_by_role("tab", name="Saved runs").click()  # a chart drawn in a hidden tab
    page.get_by_role("tab", name="Live run").click()
    time.sleep(1)
    # Nothing from another host (no favicon from a font CDN), no Plotly NaN-path error.
    assert errors == [], errors
    page.get_by_role("button", name="Reset", exact=True).click()


def test_a_run_past_20000_epochs_still_redraws_in_place(server, page):
    """The same chart element keeps growing past epoch 20,000 (the browser thins what it
    keeps; the server sends only new epochs)."""
    _open(page, f"{server}/?preset=overfit&epochs=100000&hidden=4&n_val=20&speed=max")
    page.evaluate("document.querySelector('[data-chart=loss]').__kept = 'same element'")
    _train(page, lambda n: n > 0)
    _wait_for(page, _NEWEST, lambda n: n > 20_000, timeout=300)
    before = _loss_chart(page)
    after = _wait_for(page, _loss_chart, lambda c: c["renders"] >= before["renders"] + 3)
    assert max(x for _, x in after["traces"]) > max(x for _, x in before["traces"])
    assert page.evaluate("document.querySelector('[data-chart=loss]').__kept") == "same element"
    assert 1000 < after["points"] <= 6000
    page.get_by_role("button", name="Reset", exact=True).click()


def test_a_reloaded_page_takes_its_run_back_and_resyncs_the_whole_history(server, page):
    """F5 mid-run: the browser's owner cookie lets the new page take back the run it had
    (it trained on meanwhile); its board asks for everything once and draws it all."""
    _open(page, f"{server}/?preset=overfit&epochs=100000&speed=max")
    _train(page, lambda n: n > 200)
    before = _NEWEST(page)
    run_points = _POINTS(page)
    page.reload()
    back = _wait_for(page, _loss_chart, lambda c: c["points"] >= min(run_points, 1000)
                     and max(x for _, x in c["traces"]) > before, timeout=60)
    assert back["points"] > 100
    page.get_by_role("button", name="Reset", exact=True).click()


def test_train_grows_curves_and_a_live_change_leaves_a_marker(server, page):
    """Click Train, see >20 epochs, move dropout mid-run, find its marker on the chart."""
    _open(page, f"{server}/?preset=overfit&epochs=100000")
    _train(page, lambda n: n > 20)
    first = _NEWEST(page)
    later = _wait_for(page, _NEWEST, lambda n: n > first)  # still growing: live
    assert later > first
    dropout = page.get_by_role("slider", name="Dropout ⚡")
    dropout.focus()
    dropout.press("ArrowRight")  # one step: 0 -> 0.05, applied to the running trainer
    labels = _wait_for(page, _ANNOTATIONS, lambda a: any(t.startswith("dropout") for t in a))
    assert any("dropout 0 -> 0.05 @ epoch" in t for t in labels)
    time.sleep(2)
    for _ in range(4):  # a quick burst of key presses is one change on the chart
        dropout.press("ArrowRight")
    labels = _wait_for(page, _ANNOTATIONS,
                       lambda a: any(t.startswith("dropout 0.05 -> 0.25") for t in a))
    assert len([t for t in labels if t.startswith("dropout")]) == 2, labels
    assert page.locator("[data-testid=stException]").count() == 0
    _zoom_survives_ticks(page)
    page.get_by_role("button", name="Reset", exact=True).click()
    page.get_by_text("to start. Change the live knobs").wait_for(timeout=30000)


def _zoom_survives_ticks(page):
    """Drag a box on the loss chart like a user; later ticks redraw it and keep the zoom."""
    box = page.locator("[data-chart=loss] .nsewdrag").first.bounding_box()
    x0, y0 = box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.4
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + box["width"] * 0.2, y0 + box["height"] * 0.3, steps=8)
    page.mouse.up()
    axis = "() => document.querySelector('[data-chart=loss]')._fullLayout.xaxis.range.slice()"
    zoomed = _wait_for(page, axis, lambda r: r[0] > 0.5)  # no longer starts at epoch ~0
    renders = _loss_chart(page)["renders"]
    _wait_for(page, lambda p: _loss_chart(p)["renders"], lambda n: n >= renders + 3)
    assert page.evaluate(axis) == zoomed  # three redraws later the user's zoom stands


def test_fork_shows_two_curve_sets_growing_side_by_side(server, page):
    """Train, fork, change B's L2: one chart carries A's and B's curves, both growing."""
    _open(page, f"{server}/?preset=overfit&epochs=100000")
    _train(page, lambda n: n > 20)
    page.get_by_role("button", name="Fork A/B", exact=True).click()

    def branches(p):  # the newest epoch drawn on each branch's validation curve
        traces = dict(_loss_chart(p).get("traces", []))
        return traces.get("A validation", 0), traces.get("B validation", 0)

    first = _wait_for(page, branches, lambda ab: ab[1] > 2)
    l2 = page.get_by_role("slider", name="L2 penalty ⚡")
    l2.focus()
    l2.press("ArrowRight")  # goes to branch B: the fork switched the knobs to it
    labels = _wait_for(page, _ANNOTATIONS, lambda a: any(t.startswith("B: l2") for t in a))
    assert not any(t.startswith("A: l2") for t in labels)
    later = _wait_for(page, branches, lambda ab: ab[0] > first[0] and ab[1] > first[1])
    assert later[1] > first[1]
    assert page.locator("[data-testid=stException]").count() == 0
    page.get_by_role("button", name="Reset", exact=True).click()
    page.get_by_text("to start. Change the live knobs").wait_for(timeout=30000)


# The board's network diagram, read in the page (SVG): per layer its real width, the units
# drawn and those drawn dead; the edges drawn (one segment "M..L.." each, in paths by sign
# and width class), the title and the captions.
_READ_NET = """() => {
  const d = document.querySelector('[data-chart=net]');
  if (!d) return null;
  const layers = [...d.querySelectorAll('g.rd-layer')].map(g => ({
    units: +g.dataset.units, shown: g.querySelectorAll('circle.rd-node').length,
    dead: g.querySelectorAll('circle.rd-node.rd-dead').length}));
  const paths = [...d.querySelectorAll('.rd-edges path')].map(p => p.getAttribute('d') || '');
  return {layers, edges: paths.join('|'), text: d.textContent,
          segments: paths.reduce((n, p) => n + (p.match(/L/g) || []).length, 0),
          renders: +d.dataset.renders || 0};
}"""


def _net(page) -> dict:
    return page.evaluate(_READ_NET) or {"layers": [], "edges": "", "segments": 0, "text": "",
                                        "renders": 0}


def test_the_network_diagram_draws_the_layers_and_l1_leaves_units_dead(server, page):
    """Overfit (2-128-128-2): four columns, 16 units of the wide layers drawn and the rest
    counted, edges that change while it trains. L1 on 40 inputs: units drawn dead."""
    _open(page, f"{server}/?preset=overfit&epochs=100000")
    _train(page, lambda n: n > 5)
    first = _wait_for(page, _net, lambda n: n["segments"] > 0)
    assert [(layer["units"], layer["shown"]) for layer in first["layers"]] == [
        (2, 2), (128, 16), (128, 16), (2, 2)]
    assert 100 < first["segments"] <= 2 * 16 + 16 * 16 + 16 * 2
    assert "Network (2 → 128 → 128 → 2)" in first["text"] and "+112 more" in first["text"]
    assert not any(layer["dead"] for layer in first["layers"])
    later = _wait_for(page, _net, lambda n: n["edges"] != first["edges"])  # live weights
    assert later["renders"] > first["renders"]
    page.get_by_role("button", name="Reset", exact=True).click()
    page.get_by_text("to start. Change the live knobs").wait_for(timeout=30000)

    _open(page, f"{server}/?preset=l1_features&speed=max")
    _train(page, lambda n: n > 100)
    cut = _wait_for(page, _net, lambda n: len(n["layers"]) == 3 and n["layers"][0]["dead"] > 5)
    assert [(layer["units"], layer["shown"]) for layer in cut["layers"]] == [
        (40, 16), (32, 16), (2, 2)]
    assert "Hollow: cut off" in cut["text"] and "+24 more" in cut["text"]
    assert cut["layers"][0]["dead"] < 16  # the informative inputs stay
    assert page.locator("[data-testid=stException]").count() == 0
    page.get_by_role("button", name="Reset", exact=True).click()

def test_shared_url_restores_the_controls(server, page):
    """The URL the page writes, opened in a new page, shows the same controls."""
    _open(page, f"{server}/?preset=dropout")
    slider = page.get_by_role("slider", name="Dropout ⚡")
    assert slider.get_attribute("aria-valuetext") == "0.50"
    slider.focus()
    slider.press("ArrowLeft")
    # page.url misses history.replaceState; the address bar is window.location.
    shared = _wait_for(page, "window.location.href", lambda u: "dropout=0.45&" in u, 15)
    assert "preset=dropout" in shared
    fresh = page.context.new_page()
    _open(fresh, shared)
    assert fresh.get_by_role("slider", name="Dropout ⚡").get_attribute("aria-valuetext") == "0.45"
    assert fresh.get_by_role("spinbutton", name="Training points").input_value() == \
        str(PRESETS["dropout"].config.n_train)
    fresh.close()


def test_train_is_among_the_first_keyboard_stops(server, page):
    """Tab from the top of the page reaches Train within 6 presses (after the skip link and
    the lesson and scenario pickers), and T starts a run from anywhere but a text box."""
    _open(page, f"{server}/?preset=overfit&epochs=30&seed=77")
    focused = []
    for _ in range(6):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.innerText || ''"))
    assert any(text.strip().endswith("Train") for text in focused), focused
    page.evaluate("document.activeElement.blur()")  # out of every control
    page.keyboard.press("t")
    _wait_for(page, _POINTS, lambda n: n > 0, timeout=60)


def test_a_classroom_link_hides_locks_and_opens_the_lesson_on_the_projector(server, page):
    """A teacher's link: the lesson's step beside the charts, hidden controls absent, a
    locked one disabled, projector type; Do it for me trains to the next step's epoch."""
    _open(page, f"{server}/?lesson=dropout&projector=1&hide=l1,l2,tabs,fork&lock=dataset")
    page.get_by_text("Step 1 of").wait_for(timeout=30000)
    page.get_by_role("slider", name="Dropout ⚡").wait_for(timeout=30000)
    for hidden in ("L1 penalty ⚡", "L2 penalty ⚡"):
        assert page.get_by_role("slider", name=hidden).count() == 0
    assert page.get_by_role("button", name="Fork A/B").count() == 0
    assert page.get_by_role("tab", name="Saved runs").count() == 0
    dataset = page.locator('[data-testid="stSelectbox"]').filter(has_text="Dataset")
    assert dataset.locator("input").is_disabled()
    assert page.evaluate("getComputedStyle(document.documentElement).fontSize") == "21px"
    font = ("() => { const d = document.querySelector('[data-chart=loss]');"
            " return d && d._fullLayout ? d._fullLayout.font.size : null; }")
    assert _wait_for(page, font, lambda size: size is not None) >= 20  # projector charts
    assert page.locator("[data-chart=weights]").count() == 0  # fewer panels
    page.get_by_role("button", name="Do it for me").click()
    from regdemo.lessons import LESSONS
    target = LESSONS["dropout"].steps[1].at_epoch
    _wait_for(page, _NEWEST, lambda n: n == target)
    page.get_by_text("Step 2 of").wait_for(timeout=30000)
    time.sleep(1.5)
    assert _NEWEST(page) == target  # paused where step 2 begins


def test_an_ab_link_opens_with_its_scenarios_settings_every_time(server, browser):
    """The A/B link opened with its settings 9 times in 14 (the page's fragment polled the
    two new runs, then asked for a full rerun from inside the fragment; the browser had
    dropped the sidebar's values and drew the number boxes at their minimums, or the
    overfit scenario). No fragment now: fresh loads come up right every time."""
    want = PRESETS["dropout"].config
    for _ in range(4):
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.goto(f"{server}/?preset=dropout&ab=1")
        page.get_by_text("Branch B (B: dropout = 0.5)").wait_for(timeout=60000)
        time.sleep(1.5)  # what the page shows once its first reruns have settled
        shown = [page.get_by_role("spinbutton", name=n).input_value()
                 for n in ("Training points", "Validation points")]
        assert shown == [str(want.n_train), str(want.n_val)]
        assert "dropout" in page.evaluate("window.location.search")
        context.close()


def test_saved_runs_are_listed_only_in_the_browser_that_made_them(server, browser):
    """Two browsers (their own cookies): A's finished run is in A's Saved runs tab, and B's
    tab does not list it (so B cannot rename or delete it); A's read-only link shows it."""
    contexts = [browser.new_context(viewport={"width": 1400, "height": 1000})
                for _ in range(2)]
    try:
        a, b = (c.new_page() for c in contexts)
        _open(a, f"{server}/?preset=overfit&epochs=7&speed=max&seed=4242")
        _train(a, lambda n: n == 7)
        a.get_by_role("tab", name="Saved runs").click()
        a.get_by_text("overfit epochs=7").first.wait_for(timeout=30000)  # its own run
        _open(b, f"{server}/?preset=overfit&seed=4242")
        b.get_by_role("tab", name="Saved runs").click()
        b.get_by_text("this browser's runs only").wait_for(timeout=30000)
        assert b.get_by_text("overfit epochs=7").count() == 0
        # A's read-only link shows B that one run, without making it B's.
        link = a.locator("code").filter(has_text="?run=").first.inner_text(timeout=30000)
        b.goto(link.strip())
        b.get_by_text("Shared run (read-only):").wait_for(timeout=60000)
        b.locator("[data-chart=shared_chart] .scatterlayer .trace").first.wait_for(
            timeout=30000)
    finally:
        for context in contexts:
            context.close()


def test_bad_link_shows_a_warning_not_a_traceback(server, page):
    """A malformed link names what it ignored and the page still trains."""
    _open(page, f"{server}/?dropout=banana&n_train=-5&epochs=30")
    page.get_by_text("Ignored from the link:").wait_for()
    page.get_by_text("'dropout' must be a float").wait_for()
    page.get_by_text("'n_train' must be an int").wait_for()
    _train(page, lambda n: n == 30)
    assert page.locator("[data-testid=stException]").count() == 0
    page.get_by_role("button", name="Dismiss").click()  # one box, gone with one click
    page.get_by_text("Ignored from the link:").wait_for(state="detached", timeout=30000)


_FITS = """(sel) => {
  const out = [];
  for (const el of document.querySelectorAll(sel)) {
    const r = el.getBoundingClientRect();
    out.push({top: r.top, bottom: r.bottom, left: r.left, right: r.right,
              clipped: el.scrollWidth > el.clientWidth + 1});
  }
  return out;
}"""
SCREENS = {"projector 1280x720": (1280, 720, True), "projector 1920x1080": (1920, 1080, True),
           "1024x768": (1024, 768, False), "phone 390x844": (390, 844, False)}


@pytest.mark.parametrize("screen", list(SCREENS))
def test_the_page_fits_the_screens_a_class_uses(server, browser, screen, tmp_path):
    """Projector links at 1280x720 and 1920x1080: the loss chart and the data view end
    above the fold, no metric is cut. 1024x768: no metric cut. A phone: Train is on the
    screen without opening the sidebar. Each screen's screenshot is kept with the test."""
    width, height, projector = SCREENS[screen]
    context = browser.new_context(viewport={"width": width, "height": height},
                                  is_mobile=width < 500)
    page = context.new_page()
    page.goto(f"{server}/?preset=overfit&epochs=100000" + ("&projector=1" if projector else ""))
    page.locator("[data-chart=loss]").wait_for(timeout=60000)
    page.keyboard.press("t")
    _wait_for(page, _POINTS, lambda n: n > 10, timeout=60)
    time.sleep(1.5)  # the sidebar has folded, the charts have their size
    page.screenshot(path=str(tmp_path / f"{screen.replace(' ', '-')}.png"))
    values = page.evaluate(_FITS, ".rd-value, .rd-label")
    assert values and not any(v["clipped"] for v in values), values
    if projector:
        for chart in ("loss", "data"):
            box = page.evaluate(_FITS, f"[data-chart={chart}]")[0]
            assert box["bottom"] <= height + 1 and box["right"] <= width + 1, (chart, box)
            assert box["bottom"] - box["top"] >= 280, (chart, box)
    if width < 500:
        train = page.evaluate(_FITS, ".rd-tool[data-command=train]")[0]
        assert 0 <= train["top"] and train["bottom"] <= height, train
    page.keyboard.press("p")
    context.close()


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            children = (task / "children").read_text().split()
            out += [int(c) for c in children]
            todo += [int(c) for c in children]
    return out


def _cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def _training_cpu(server_pid: int, seconds: float = 1.5) -> float:
    """CPU seconds the server's worker processes burn over `seconds`."""
    pids = _descendants(server_pid)
    before = _cpu_seconds(pids)
    time.sleep(seconds)
    return _cpu_seconds(pids) - before


@pytest.mark.slow
def test_closed_tabs_stop_their_runs_after_the_grace_period(server, browser):
    """4 tabs start runs and close mid-run: work goes on through the grace, then stops.

    (Many sessions at once are the reliability suite's load test; 4 here keep CI short.)
    """
    url, pid = server, SERVER_PIDS[server]
    for _ in range(4):
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        page = context.new_page()
        _open(page, f"{url}/?preset=overfit&epochs=100000&hidden=16-16&speed=max")
        _train(page, lambda n: n > 5)
        context.close()  # the tab goes away mid-run
    # Within the grace period the last tabs' runs are kept and train (niced workers get
    # less on a busy machine: any steady work over two seconds shows they live).
    assert _training_cpu(pid, 2.0) > 0.3
    time.sleep(GRACE_SECONDS + 2)
    assert _training_cpu(pid) < 0.15  # every run was stopped and dropped
