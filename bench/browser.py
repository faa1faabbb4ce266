"""Browser latency of the live board: Train -> first point, refresh, knob -> marker, reload.

Starts `streamlit run app.py` (empty data dir, free port), drives Debian's headless Chromium
with Playwright and prints medians and p95 over --tries, each try a fresh page. Every try
opens `?preset=overfit&epochs=100000` (a run that does not end while it is measured) at the
default speed, 50 epochs/s (--speed S adds `&speed=S` to the link: 5..500 or max), then:

  (a) clicks Train 1 s after the Train button appears -> the loss chart's first point;
  (b) while it trains: the time between changes of the loss chart's newest epoch;
  (c) presses ArrowRight on the Dropout slider -> the loss chart's annotations hold the
      new "dropout ..." event label;
  (d) reloads the page while the run trains -> the loss chart shows the whole history
      again (its first epoch to the newest it had, and as many points as it had, or as many
      as the feed sends a new board: live_feed.MAX_DELTA);
  (e) browser main-thread long tasks (PerformanceObserver 'longtask') in the 3 s after
      the click.

Times come from the page's own clock (performance.now(), whose origin is the navigation's
start): a recorder injected before the page's scripts notes the Train click, the key
press and every redraw of the loss chart (a MutationObserver on the board's `data-renders`
counter), so a busy Python side or a slow Playwright round trip does not inflate them.

A reload starts a new Streamlit session; the reloaded page is to take its run back (by the
owner cookie the board sets) if it comes back within the server's grace period
(REGDEMO_GRACE_SECONDS, 10 s here); if it does not, (d) says what the page showed instead.
--reload session resumes the old Streamlit session instead, the way Streamlit's own
reconnect does, by handing the new page's websocket the old session id (the third entry of
its subprotocols): the same resync without the take-back.

Goals: first point <= 1.0 s, refresh every <= 0.5 s, knob -> marker <= 0.5 s, board
mounted -> resynced <= 0.5 s after a reload (medians).

    python bench/browser.py [--tries 10] [--speed 5..500|max] [--reload plain|session]
                            [--screenshot-dir DIR]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # regdemo.live_feed, for MAX_DELTA
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
QUERY = "preset=overfit&epochs=100000"
GRACE_SECONDS = 10  # a reloading page must come back within this to keep its run
LONGTASK_WINDOW = 3.0  # seconds after the Train click in which long tasks are summed
RESYNC_TIMEOUT = 20.0  # seconds a reloaded page gets to show its run again
LOST_AFTER = 30.0  # seconds after a Train click with no run: the click counts as lost

# Injected before the page's own scripts (main document only). window.__rd notes, in
# performance.now() ms: the board's mount (its loss chart div exists), its first drawing,
# the moment every visible board chart is drawn and Train is enabled ("ready"), Train
# clicks, slider key presses, each redraw of the loss chart with its newest epoch and point
# count, each change of its annotations, long tasks, and (after a reload that set
# sessionStorage.__rdTarget) when the loss chart holds the whole history again. With
# sessionStorage.__rdResume set, the page's Streamlit websocket asks to resume that session.
RECORDER = r"""(() => {
  if (window.top !== window) return;
  const store = window.sessionStorage;
  const resume = store.getItem('__rdResume');
  const target = JSON.parse(store.getItem('__rdTarget') || 'null');
  store.removeItem('__rdResume'); store.removeItem('__rdTarget');
  if (resume) {
    const Native = window.WebSocket;
    window.WebSocket = class extends Native {
      constructor(url, protocols) {
        if (String(url).includes('_stcore/stream') && Array.isArray(protocols)
            && protocols.length < 3 && !window.__rdResumed) {
          window.__rdResumed = true;
          protocols = [protocols[0], protocols[1] || '', resume];
        }
        super(url, protocols);
      }
    };
  }
  const R = window.__rd = {mount: null, drawn: null, ready: null, clicks: [], keys: [],
                           xs: [], notes: [], long: [], sync: null, syncN: null, target,
                           resumed: !!resume, plotly: null, feed: [], boards: 0,
                           lossDivs: 0, anyFirst: null};
  const now = () => performance.now();
  // When Plotly's bundle has run (it assigns window.Plotly as it ends).
  let plotly;
  Object.defineProperty(window, 'Plotly', {configurable: true, enumerable: true,
    get: () => plotly, set: (v) => { plotly = v; if (R.plotly === null) R.plotly = now(); }});
  // The board's polls: [sent, answered, epochs in run A's reply (-1: no run), A's status].
  const nativeFetch = window.fetch;
  window.fetch = function (input, init) {
    const url = String((input && input.url) || input);
    const reply = nativeFetch.call(this, input, init);
    if (!url.includes('/regdemo/feed')) return reply;
    const sent = now();
    return reply.then((r) => {
      const got = now();
      r.clone().json().then((b) => {
        const a = b && b.runs && b.runs[0];
        R.feed.push([sent, got, a && a.rec ? a.rec.e.length : -1, a ? a.status : null]);
      }).catch(() => {});
      return r;
    });
  };
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) R.long.push([e.startTime, e.duration]);
    }).observe({type: 'longtask', buffered: true});
  } catch (e) { R.long = null; }
  const TRAIN = '.st-key-btn_train button';
  document.addEventListener('click', (e) => {
    if (e.target.closest && e.target.closest(TRAIN)) R.clicks.push(now());
  }, true);
  document.addEventListener('keydown', (e) => {
    const t = e.target;  // Streamlit's sliders: <input type=range> (or role=slider)
    if (t && t.getAttribute && (t.type === 'range' || t.getAttribute('role') === 'slider'))
      R.keys.push([now(), e.key, t.getAttribute('aria-label')]);
  }, true);
  // The top board's loss chart (a rerun can add a board below it: see `boards`).
  let div = null, renders = null, lastX, notes = '';
  const look = () => {
    const t = now();
    const boards = document.querySelectorAll('.rd-board');
    R.boards = Math.max(R.boards, boards.length);
    if (R.anyFirst === null) {
      for (const b of boards) {
        const d = b.querySelector('[data-chart="loss"]');
        const tr = d && d.data && d.data[0];
        if (tr && tr.x && tr.x.length) { R.anyFirst = t; break; }
      }
    }
    const loss = boards.length ? boards[0].querySelector('[data-chart="loss"]') : null;
    if (!loss) return;
    if (R.mount === null) R.mount = t;
    if (R.drawn === null && loss._fullLayout) R.drawn = t;
    if (R.ready === null) {
      const charts = [...document.querySelectorAll('.rd-board [data-chart]')]
        .filter((d) => d.style.display !== 'none');
      const train = document.querySelector(TRAIN);
      if (charts.every((d) => d._fullLayout) && train && !train.disabled) {
        R.ready = t; R.readyCharts = charts.map((d) => d.dataset.chart);
      }
    }
    if (loss !== div) { div = loss; renders = null; R.lossDivs++; }
    if (loss.dataset.renders === renders) return;
    renders = loss.dataset.renders;
    const tr = loss.data && loss.data[0];
    const n = tr && tr.x ? tr.x.length : 0;
    const x = n ? +tr.x[n - 1] : null;
    if (x !== lastX) { R.xs.push([t, x, n]); lastX = x; }
    const text = ((loss.layout && loss.layout.annotations) || []).map((a) => a.text).join('\n');
    if (text !== notes) { R.notes.push([t, text]); notes = text; }
    if (target && R.sync === null && n >= target.n && +tr.x[0] <= target.first
        && x >= target.last) { R.sync = t; R.syncN = n; }
  };
  const start = () => {
    new MutationObserver(look).observe(document.documentElement, {
      subtree: true, attributes: true, attributeFilter: ['data-renders']});
    const timer = setInterval(() => { look(); if (R.ready !== null) clearInterval(timer); }, 10);
  };
  if (document.documentElement) start(); else document.addEventListener('DOMContentLoaded', start);
})();"""

# The loss chart as the page shows it now (Python's view, for the reload's target).
LOSS_NOW = """() => { const d = document.querySelector('.rd-board [data-chart="loss"]');
  const t = d && d.data && d.data[0]; const n = t && t.x ? t.x.length : 0;
  const m = document.querySelector('[data-metric="Epoch"] .rd-value');
  return {n, first: n ? +t.x[0] : null, last: n ? +t.x[n - 1] : null,
          epoch: m ? m.innerText : null, now: performance.now()}; }"""


# ----------------------------------------------------------------- server processes
def tree(pid: int) -> list[int]:
    """`pid` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by `pids`."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(env: dict, log) -> tuple[subprocess.Popen, str]:
    """Start `streamlit run app.py` headless on a free port (own process group)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env},
        start_new_session=True)
    return proc, f"http://127.0.0.1:{port}"


def healthy(url: str) -> bool:
    try:
        return urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok"
    except OSError:
        return False


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server, then SIGKILL whatever of its tree is left after 15 s."""
    pids = tree(proc.pid)
    proc.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(15)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
        time.sleep(0.1)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    proc.wait()


def poll(read, predicate, timeout=90.0, every=0.01):
    """Call `read()` until `predicate(value)`; returns (value, seconds waited)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        value = read()
        if predicate(value):
            return value, time.perf_counter() - t0
        time.sleep(every)
    raise TimeoutError(f"{read} after {timeout} s")


# ----------------------------------------------------------------- the page
class Page:
    """A fresh context and page with the recorder, its console and its session id."""

    def __init__(self, browser, url: str, console: collections.Counter, speed: str = "50",
                 session_id: bool = False):
        self.context = browser.new_context(viewport={"width": 1500, "height": 1100})
        self.context.add_init_script(RECORDER)
        self.page = self.context.new_page()
        self.session_id: str | None = None
        self.console = console
        if session_id:  # only then: every frame of the socket would come through Python
            self.page.on("websocket", self._watch_socket)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda err: console.update([f"pageerror: {err}"[:160]]))
        self.page.goto(f"{url}/?{QUERY}" + (f"&speed={speed}" if speed != "50" else ""))

    def _console(self, msg) -> None:
        if msg.type in ("error", "warning"):
            self.console.update([f"{msg.type}: {msg.text}"[:160]])

    def _watch_socket(self, ws) -> None:
        """Note the Streamlit session id from the socket's new_session message."""
        if "_stcore/stream" not in ws.url:
            return
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        def frame(payload):
            if self.session_id is not None or not isinstance(payload, bytes):
                return
            msg = ForwardMsg()
            with contextlib.suppress(Exception):
                msg.ParseFromString(payload)
                if msg.WhichOneof("type") == "new_session":
                    self.session_id = msg.new_session.initialize.session_id
                    ws.remove_listener("framereceived", frame)
        ws.on("framereceived", frame)

    def rd(self, key: str | None = None):
        """The recorder's notes (or one of them); None while the page navigates."""
        try:
            return self.page.evaluate(f"() => window.__rd{'.' + key if key else ''}")
        except Exception:  # noqa: BLE001 - a reload destroys the context we read
            return None

    def wait_rd(self, predicate, timeout: float, every: float = 0.02) -> dict:
        value, _ = poll(self.rd, lambda r: r is not None and predicate(r), timeout, every)
        return value

    def state(self) -> str:
        """What the page shows and the recorder saw, for an error message."""
        rd = self.rd() or {}
        try:
            loss = self.page.evaluate(LOSS_NOW)
        except Exception as exc:  # noqa: BLE001
            loss = repr(exc)
        return (f"loss chart {loss}; Train clicks seen {rd.get('clicks')}; last feed replies "
                f"[sent ms, answered ms, epochs, status] {(rd.get('feed') or [])[-3:]}; "
                f"boards {rd.get('boards')}; console {dict(self.console)}")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.page.get_by_role("button", name="Reset", exact=True).click(timeout=5000)
        self.context.close()


def first_after(entries, t0: float):
    return next((e for e in entries if e[0] >= t0), None)


def reload_and_resync(pg: Page, max_delta: int, mode: str) -> dict:
    """(d): reload while the run trains; seconds until the loss chart shows it all again.

    mode "plain": a plain reload (the page is expected to take its run back);
    "session": the new page's websocket resumes the old Streamlit session (its id).
    """
    before = pg.page.evaluate(LOSS_NOW)
    if not before["n"]:
        raise RuntimeError("nothing on the loss chart to resync")
    target = {"n": min(before["n"], max_delta), "first": before["first"], "last": before["last"]}
    if mode == "session" and pg.session_id is None:
        raise RuntimeError("no Streamlit session id seen on the page's websocket")
    pg.page.evaluate("([id, target]) => { if (id) sessionStorage.setItem('__rdResume', id);"
                     " sessionStorage.setItem('__rdTarget', JSON.stringify(target)); }",
                     [pg.session_id if mode == "session" else None, target])
    pg.page.reload(wait_until="commit")
    try:
        rd = pg.wait_rd(lambda r: r["target"] is not None and r["sync"] is not None,
                        RESYNC_TIMEOUT)
    except TimeoutError:
        after = pg.page.evaluate(LOSS_NOW)
        prompt = pg.page.get_by_text("to start. Change the live knobs").count() > 0
        inf = float("inf")
        return {"nav": inf, "mounted": inf, "before": before["n"], "after": after["n"],
                "steps": None, "lost": f"{before['n']} points before, {after['n']} "
                f"{RESYNC_TIMEOUT:.0f} s after the reload (Epoch {after['epoch']})"
                + (", the page asks to press Train" if prompt else "")}
    full = next((got for _, got, n, _ in rd["feed"] if n > 0), float("nan"))
    # From the navigation's start: board mounted, Plotly's bundle ran (another chart of the
    # page may have loaded it first), the first feed reply with the history, resynced.
    steps = (rd["mount"], rd["plotly"] or float("nan"), full, rd["sync"])
    return {"nav": rd["sync"] / 1000, "mounted": (rd["sync"] - rd["mount"]) / 1000,
            "before": before["n"], "after": rd["syncN"], "steps": [v / 1000 for v in steps],
            "lost": None}


class LostClick(RuntimeError):
    """Train was clicked (the page saw the click) but no run started."""


def one_try(browser, url: str, speed: str, console: collections.Counter,
            shot: Path | None = None, reload_mode: str = "plain") -> dict:
    """Open a fresh page, train, move dropout, reload; the figures of (a) to (e)."""
    from regdemo.live_feed import MAX_DELTA

    pg = Page(browser, url, console, speed, session_id=reload_mode == "session")
    page = pg.page
    try:
        train = page.get_by_role("button", name="Train", exact=True)
        train.wait_for(timeout=120000)
        shown = time.perf_counter()
        time.sleep(max(0.0, shown + 1.0 - time.perf_counter()))
        train.click()
        try:  # the board's poll after the click knows the run (it may have no epoch yet)
            pg.wait_rd(lambda r: r["clicks"] and any(
                f[0] >= r["clicks"][-1] and f[3] is not None for f in r["feed"]), LOST_AFTER)
        except TimeoutError:
            raise LostClick(f"no run {LOST_AFTER:.0f} s after the click: {pg.state()}") from None
        try:
            rd = pg.wait_rd(lambda r: r["clicks"] and any(n > 0 for _, _, n in r["xs"]), 120)
        except TimeoutError:
            raise RuntimeError(f"no first point 120 s after the click: {pg.state()}") from None
        click = rd["clicks"][-1]
        first = first_after([e for e in rd["xs"] if e[2] > 0], click)
        fed = next((f for f in rd["feed"] if f[0] >= click and f[2] > 0), None)
        first_any = (rd["anyFirst"] - click) / 1000  # on whichever board drew it first
        fed = (fed[1] - click) / 1000 if fed else float("nan")  # a reply carried epochs
        # (b) and (e): keep training until LONGTASK_WINDOW after the click, and 2 s of redraws.
        end = max(click + LONGTASK_WINDOW * 1000, first[0] + 2000)
        time.sleep(max(0.0, (end - page.evaluate("performance.now()")) / 1000) + 0.05)
        rd = pg.rd()
        xs = [t for t, _, n in rd["xs"] if n > 0 and first[0] <= t <= end]
        gaps = [(b - a) / 1000 for a, b in zip(xs, xs[1:])][1:]  # the first follows a redraw
        longs = [d for s, d in (rd["long"] or []) if click <= s <= click + LONGTASK_WINDOW * 1000]
        # (c) a live knob: dropout one step up, by keyboard.
        slider = page.get_by_role("slider", name="Dropout ⚡")
        slider.focus()
        notes_before = set((rd["notes"][-1][1] if rd["notes"] else "").split("\n"))
        slider.press("ArrowRight")
        rd = pg.wait_rd(lambda r: any(
            any(line.startswith("dropout") and line not in notes_before
                for line in text.split("\n")) for _, text in r["notes"]), 30)
        key = rd["keys"][-1][0]
        marked = next(t for t, text in rd["notes"] if t >= key and any(
            line.startswith("dropout") and line not in notes_before for line in text.split("\n")))
        label = next(line for line in rd["notes"][-1][1].split("\n")
                     if line.startswith("dropout") and line not in notes_before)
        if shot is not None:
            page.screenshot(path=str(shot))
        boards = pg.rd("boards")
        # (d) reload while it trains.
        reload = reload_and_resync(pg, MAX_DELTA, reload_mode)
    finally:
        pg.close()
    return {"first": (first[0] - click) / 1000, "first_any": first_any, "fed": fed,
            "boards": boards,
            "refresh": statistics.median(gaps) if gaps else float("inf"), "gaps": gaps,
            "marker": (marked - key) / 1000, "label": label,
            "nav_sync": reload["nav"], "mount_sync": reload["mounted"],
            "points": (reload["before"], reload["after"]), "reload_steps": reload["steps"],
            "long_ms": sum(longs), "long_n": len(longs), "long_max": max(longs, default=0.0),
            "lost": reload["lost"]}


def stats(values: list[float]) -> tuple[float, float]:
    """(median, p95) with p95 the nearest rank (the largest of 10)."""
    values = sorted(values)
    return statistics.median(values), values[min(len(values) - 1,
                                                 round(0.95 * (len(values) - 1)))]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=10)
    parser.add_argument("--speed", choices=("5", "10", "20", "50", "100", "200", "500", "max"),
                        default="50", help="epochs/s, set by the link's speed= (50: the "
                                           "page's default, not written in the link)")
    parser.add_argument("--reload", choices=("plain", "session"), default="plain",
                        help="(d): a plain reload, or one that resumes the Streamlit session")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--screenshot-dir", type=Path, default=None,
                        help="save a screenshot of each try's page after the marker")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    if args.screenshot_dir:
        args.screenshot_dir.mkdir(parents=True, exist_ok=True)
    shot = (lambda i: args.screenshot_dir / f"browser-try-{i}.png") if args.screenshot_dir \
        else (lambda i: None)
    load = [os.getloadavg()]
    data_dir = tempfile.mkdtemp(prefix="regdemo-bench-")
    console: collections.Counter = collections.Counter()
    results: list[dict] = []
    lost: list[str] = []  # Train clicks that started no run
    with tempfile.TemporaryFile("w+") as log:
        proc, url = launch({"REGDEMO_DATA_DIR": data_dir,
                            "REGDEMO_GRACE_SECONDS": str(GRACE_SECONDS)}, log)
        try:
            poll(lambda: healthy(url), bool, timeout=120, every=0.1)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=args.chromium, args=FLAGS)
                # warm-up: workers, first imports, browser cache (a second one if a click
                # is lost)
                for _ in range(2):
                    try:
                        one_try(browser, url, args.speed, collections.Counter(),
                                reload_mode=args.reload)
                        break
                    except LostClick as exc:
                        lost.append(f"warm-up: {exc}")
                for i in range(args.tries):
                    try:
                        results.append(one_try(browser, url, args.speed, console, shot(i),
                                               args.reload))
                    except LostClick as exc:
                        lost.append(f"try {i + 1}: {exc}")
                browser.close()
        except Exception:
            log.seek(0)
            print("server log tail:\n" + "".join(log.readlines()[-20:]), file=sys.stderr)
            raise
        finally:
            stop(proc)
            shutil.rmtree(data_dir, ignore_errors=True)
    load.append(os.getloadavg())

    for text in lost:
        print(f"LOST Train click, {text}")
    if not results:
        print("no try gave figures")
        return 1
    how = "plain" if args.reload == "plain" else "the session resumed"
    rows = [("first", "(a) click Train -> first point on the loss chart", 1.0),
            ("refresh", "(b) loss chart refresh interval while training", 0.5),
            ("marker", "(c) dropout slider key -> event marker on the loss chart", 0.5),
            ("nav_sync", f"(d) reload ({how}): navigation -> resynced", None),
            ("mount_sync", f"(d) reload ({how}): board mounted -> resynced", 0.5)]
    pooled = [g for r in results for g in r["gaps"]]
    print(f"| measure ({len(results)} tries, speed {args.speed} epochs/s) | median s | p95 s "
          "| goal s | met |")
    print("|---|---|---|---|---|")
    verdicts = []
    for key, name, goal in rows:
        values = pooled if key == "refresh" and pooled else [r[key] for r in results]
        med, p95 = stats(values)
        ok = goal is not None and med <= goal
        print(f"| {name} | {med:.3f} | {p95:.3f} | {goal if goal is not None else '-'} | "
              f"{'-' if goal is None else 'yes' if ok else 'NO'} |")
        if goal is not None:
            verdicts.append((name, ok, med, p95, goal))
    for key, name in (("long_ms", "total ms"), ("long_n", "count"), ("long_max", "longest ms")):
        med, p95 = stats([r[key] for r in results])
        print(f"| (e) long tasks in the {LONGTASK_WINDOW:.0f} s after the click: {name} "
              f"| {med:.0f} | {p95:.0f} | - | - |")
    med = lambda key, rs=results: statistics.median(r[key] for r in rs)  # noqa: E731
    print(f"(a) medians: click -> first feed reply carrying epochs {med('fed'):.3f} s, -> drawn "
          f"on the loss chart {med('first'):.3f} s")
    boards = [r["boards"] for r in results]
    if max(boards) > 1:
        print(f"boards on the page per try: {', '.join(map(str, boards))} (1 expected: a rerun "
              f"mounted another board); a point on any board's loss chart after "
              f"{med('first_any'):.3f} s")
    per_try = ", ".join(f"{r['refresh']:.2f}" for r in results)
    print(f"(b) {len(pooled)} intervals pooled over the tries (per-try medians {per_try})")
    print(f"(c) marker labels: {', '.join(sorted({r['label'] for r in results}))}")
    synced = [r for r in results if r["lost"] is None]
    if synced:
        step = lambda i: statistics.median(r["reload_steps"][i] for r in synced)  # noqa: E731
        counts = ", ".join("{}->{}".format(*r["points"]) for r in synced)
        print(f"(d) medians from the navigation's start: board mounted {step(0):.3f} s, "
              f"Plotly's bundle ran {step(1):.3f} s, feed reply with the history {step(2):.3f} s,"
              f" resynced {step(3):.3f} s. Loss chart points before -> at resync: {counts}")
    for r in results:
        if r["lost"] is not None:
            print(f"(d) the reloaded page did not show its run again: {r['lost']}")
    print("load average (1, 5, 15 min) before: " + ", ".join(f"{x:.2f}" for x in load[0])
          + "; after: " + ", ".join(f"{x:.2f}" for x in load[1])
          + f"; {os.cpu_count()} cores")
    if console:
        print(f"browser console errors and warnings ({sum(console.values())} over the tries):")
        for text, n in console.most_common(8):
            print(f"  {n} x {text}")
    else:
        print("browser console: no errors or warnings")
    for name, ok, med, p95, goal in verdicts:
        print(f"verdict: {name}: {'met' if ok else 'NOT met'} (median {med:.3f} s, p95 "
              f"{p95:.3f} s; goal <= {goal} s)")
    print(f"verdict: {sum(v[1] for v in verdicts)}/{len(verdicts)} browser goals met"
          + (f"; {len(lost)} Train click(s) started no run" if lost else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
