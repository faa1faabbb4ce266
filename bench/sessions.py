"""Concurrent sessions: aggregate epochs/s, fairness, poll latency and memory per session.

For each N, one fresh `streamlit run app.py` server (REGDEMO_MAX_RUNS=40: nobody queued)
and N sessions training `?preset=overfit&epochs=100000`. The first --pages sessions are real
pages in headless Chromium; the others are "wire" sessions: this script speaks Streamlit's
websocket protocol like the page does (same query, the same widget states copied from a real
page, Train clicked by its trigger, a fragment rerun every `auto_rerun` interval) but draws
nothing, so 20 sessions fit on two cores beside the server. To the server they are ordinary
sessions (same requests, same script runs); they declare no cached messages, so they get a
full delta where a page may get a reference: if anything, a little more work for the server.
(One headless page redrawing its Plotly charts in software takes ~0.6 of a core here: with
more pages the benchmark would measure Chromium, not the server.)

Measured over --seconds once every session trains: epochs/s trained per run from the server's
run store (slope of the highest epoch saved over its save time, read once a second from the
SQLite file), epochs/s shown = growth of each
session's "Epoch N / 100000" metric as its websocket delivered it, poll round trip = fragment
rerun request sent -> the first completed run that started after it (`script_finished`; a run
cut short by the next request answers nobody), all per session from its websocket frames.
Real pages also give the chart redraw interval (`data-renders` of the loss chart).
RSS = server + its worker processes (VmRSS). CPU is counted per group (server, workers,
clients = Chromium + this script); epochs per worker CPU-second shows scaling apart from what
other programs on the machine take.
Goals: total epochs/s at N=20 >= 80% of N=2, poll p95 <= 250 ms, <= 40 MB per extra session.

    python bench/sessions.py [--sessions 1,2,5,10,20] [--seconds 12] [--pages 1]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import math
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetStates

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.browser import FLAGS  # noqa: E402
from regdemo.ui.live_chart import read_chart  # noqa: E402

QUERY = "preset=overfit&epochs=100000"
SMALL = 8192  # frames kept for analysis: control messages and metrics, not the figures
# Before the page's own scripts: note the websocket frames (with performance.now() in s).
RECORDER = """(() => {
  if (window.top !== window) return;
  window.__frames = []; window.__rec = false;
  const keep = (dir, d) => {
    if (!window.__rec) return;
    const b = d instanceof ArrayBuffer ? new Uint8Array(d)
      : ArrayBuffer.isView(d) ? new Uint8Array(d.buffer, d.byteOffset, d.byteLength) : null;
    if (b && b.length <= SMALL) window.__frames.push([dir, performance.now() / 1000, b.slice()]);
  };
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...a) { super(...a); this.addEventListener('message', (e) => keep('in', e.data)); }
    send(d) { keep('out', d); super.send(d); }
  };
})();""".replace("SMALL", str(SMALL))
# In a chart's frame: note each redraw (the `data-renders` counter of live_chart/index.html).
WATCH_REDRAWS = """() => { window.__renders = [];
  if (window.__watching) return;
  window.__watching = true;
  new MutationObserver(() => window.__renders.push(performance.now() / 1000)).observe(
    document.getElementById('chart'), {attributes: true, attributeFilter: ['data-renders']}); }"""
TAKE_FRAMES = """() => { const f = window.__frames; window.__frames = []; window.__rec = false;
  return f.map(([d, t, b]) => [d, t, btoa(String.fromCharCode(...b))]); }"""
EPOCH_JS = """() => { const v = [...document.querySelectorAll('[data-testid="stMetricValue"]')]
  .map((e) => e.innerText).find((t) => / \\/ /.test(t)); return v ? parseInt(v) : 0; }"""


# ----------------------------------------------------------------- processes
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


def rss_mb(pids: list[int]) -> float:
    """Sum of VmRSS over `pids`, in MB."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


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


def stored_epochs(data_dir: str) -> dict[str, tuple[int, float]]:
    """Run id -> (highest epoch saved, when) from the server's run store, read-only."""
    db = Path(data_dir) / "runs.sqlite3"
    if not db.exists():
        return {}
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
        return {run: (epochs, when) for run, epochs, when
                in conn.execute("SELECT id, epochs, updated FROM runs")}


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


# ----------------------------------------------------------------- sessions
DONE = (ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY)


def analyse(frames: list) -> dict:
    """Epochs/s, poll round trips (s) and completed / interrupted fragment runs of one
    session's frames [(dir, t, bytes)].

    A fragment rerun request is answered by the first run that starts (`new_session`) after
    it was sent and completes: a run cut short by the next request (FINISHED_EARLY_FOR_RERUN,
    when a tick takes longer than the poll interval) answers nobody.
    """
    samples, pending, in_run, trips, done, early = [], [], [], [], 0, 0
    for direction, t, data in frames:
        if direction == "out":
            msg = BackMsg.FromString(data)
            if msg.WhichOneof("type") == "rerun_script" and msg.rerun_script.is_auto_rerun:
                pending.append(t)
            continue
        msg = ForwardMsg.FromString(data)
        kind = msg.WhichOneof("type")
        if kind == "new_session":
            in_run, pending = in_run + pending, []
        elif kind == "script_finished" and msg.script_finished in DONE:
            trips += [t - sent for sent in in_run]
            in_run = []
            done += msg.script_finished == ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY
        elif kind == "script_finished":
            early += msg.script_finished == ForwardMsg.FINISHED_EARLY_FOR_RERUN
        elif kind == "delta" and msg.delta.new_element.metric.label == "Epoch":
            samples.append((t, int(msg.delta.new_element.metric.body.split("/")[0])))
    rate = 0.0
    if len(samples) >= 2 and samples[-1][0] > samples[0][0]:
        (t0, e0), (t1, e1) = samples[0], samples[-1]
        rate = (e1 - e0) / (t1 - t0)
    return {"rate": rate, "trips": trips, "done": done, "early": early}


class PageSession:
    """A real page in its own browser context."""

    def __init__(self, browser, url: str):
        self.context = browser.new_context(viewport={"width": 1500, "height": 1100})
        self.context.add_init_script(RECORDER)
        self.page = self.context.new_page()
        self.page.goto(f"{url}/?{QUERY}")
        try:
            self.page.get_by_text("to start. Change the live knobs").wait_for(timeout=90000)
        except Exception as exc:
            raise RuntimeError(f"no first page; it shows: {self.page.inner_text('body')[:300]!r}"
                               ) from exc
        self.page.wait_for_function("!document.querySelector('[data-stale=true]')")

    def train(self) -> None:
        self.page.get_by_role("button", name="Train", exact=True).click()

    def epoch(self) -> int:
        return self.page.evaluate(EPOCH_JS)

    def _charts(self):
        return [f for f in self.page.frames[1:] if "Loss" in ((read_chart(f) or {}).get("title")
                                                              or "")]

    def record(self, redraws: bool = True) -> None:
        self.page.evaluate("() => { window.__frames = []; window.__rec = true; }")
        for frame in self._charts()[:1] if redraws else ():
            frame.evaluate(WATCH_REDRAWS)

    def frames(self) -> list:
        return [(d, t, base64.b64decode(b)) for d, t, b in self.page.evaluate(TAKE_FRAMES)]

    def redraws(self) -> list[float]:
        """Intervals between loss chart redraws since record()."""
        times = [t for f in self._charts()[:1] for t in f.evaluate("() => window.__renders")]
        return [b - a for a, b in zip(times, times[1:])]

    def widget_states(self) -> bytes:
        """The widget states this page sends with a fragment rerun (to copy into wires)."""
        self.record(redraws=False)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            time.sleep(0.5)
            for d, _, data in reversed(self.frames()):
                msg = BackMsg.FromString(data) if d == "out" else None
                if msg and msg.rerun_script.is_auto_rerun:
                    return msg.rerun_script.widget_states.SerializeToString()
            self.page.evaluate("() => { window.__rec = true; }")
        raise RuntimeError("the page sent no fragment rerun")

    def close(self) -> None:
        self.context.close()


class WireSession:
    """A session driven over the websocket as the page does (see the module docstring)."""

    def __init__(self, loop, url: str, states: bytes):
        self.loop, self.states = loop, states
        self.frames_, self.rec, self.last_epoch = [], False, 0
        self.train_id, self.timers, self.ws = None, {}, None
        self.shown = threading.Event()  # the first page run finished
        uri = url.replace("http", "ws", 1) + "/_stcore/stream"
        self.task = asyncio.run_coroutine_threadsafe(self._run(uri), loop)
        if not self.shown.wait(180):
            failure = self.task.exception(0) if self.task.done() else "timeout"
            raise RuntimeError(f"a wire session got no page: {failure}")

    async def _run(self, uri: str) -> None:
        # No protocol pings: the page sends none, and a busy server must not drop us for them.
        async with websockets.connect(uri, subprotocols=["streamlit"], max_size=None,
                                      ping_interval=None) as ws:
            self.ws = ws
            await self._send()
            async for data in ws:
                self._receive(data)

    async def _send(self, fragment: str = "", trigger: str | None = None) -> None:
        msg = BackMsg()
        msg.rerun_script.query_string = QUERY
        if fragment:
            msg.rerun_script.fragment_id, msg.rerun_script.is_auto_rerun = fragment, True
        if self.train_id:  # after the first page run, send what the page would
            states = WidgetStates.FromString(self.states)
            kept = [w for w in states.widgets if w.id != trigger]
            del states.widgets[:]
            states.widgets.extend(kept)
            if trigger:
                states.widgets.add(id=trigger, trigger_value=True)
            msg.rerun_script.widget_states.CopyFrom(states)
        data = msg.SerializeToString()
        if self.rec:
            self.frames_.append(("out", time.perf_counter(), data))
        await self.ws.send(data)

    async def _every(self, fragment: str, interval: float) -> None:
        """Like the page's setInterval: a fragment rerun every `interval` s (no catching up)."""
        due = time.perf_counter()
        while True:
            due = max(due + interval, time.perf_counter())
            await asyncio.sleep(due - time.perf_counter())
            await self._send(fragment)

    def _receive(self, data: bytes) -> None:
        now = time.perf_counter()
        msg = ForwardMsg.FromString(data)
        kind = msg.WhichOneof("type")
        if self.rec and len(data) <= SMALL:
            self.frames_.append(("in", now, data))
        if kind == "delta":
            element = msg.delta.new_element
            if element.button.label == "Train":
                self.train_id = element.button.id
            elif element.metric.label == "Epoch":
                self.last_epoch = int(element.metric.body.split("/")[0])
        elif kind == "script_finished":
            self.shown.set()
        elif kind == "auto_rerun":
            fragment, interval = msg.auto_rerun.fragment_id, msg.auto_rerun.interval
            if fragment not in self.timers or self.timers[fragment][0] != interval:
                if fragment in self.timers:
                    self.timers[fragment][1].cancel()
                self.timers[fragment] = (interval, asyncio.ensure_future(
                    self._every(fragment, interval)))
        elif kind == "stop_auto_rerun":
            for fragment in msg.stop_auto_rerun.fragment_ids:
                if fragment in self.timers:
                    self.timers.pop(fragment)[1].cancel()

    def train(self) -> None:
        asyncio.run_coroutine_threadsafe(self._send(trigger=self.train_id), self.loop).result(10)

    def epoch(self) -> int:
        return self.last_epoch

    def record(self) -> None:
        self.frames_, self.rec = [], True

    def frames(self) -> list:
        self.rec = False
        return list(self.frames_)

    def redraws(self) -> list[float]:
        return []

    def lost(self) -> str | None:
        """Why the connection ended early, if it did."""
        if not self.task.done():
            return None
        exc = self.task.exception(0)
        return repr(exc) if exc else f"closed by the server ({self.ws.close_code})"

    def close(self) -> None:
        async def shut():
            for _, timer in self.timers.values():
                timer.cancel()
            if self.ws is not None:
                await self.ws.close()
        asyncio.run_coroutine_threadsafe(shut(), self.loop).result(10)
        self.task.cancel()


# ----------------------------------------------------------------- one N
def wait_until(predicate, timeout: float, what: str, page=None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            shows = f"; the page shows {page.inner_text('body')[:400]!r}" if page else ""
            raise TimeoutError(what + shows)
        time.sleep(0.2)


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))] if values else float("nan")


def measure(n: int, pages: int, seconds: float, browser, loop, log) -> dict:
    """One server, n training sessions; the figures of one measurement window."""
    data_dir = tempfile.mkdtemp(prefix="regdemo-bench-")
    env = {"REGDEMO_MAX_RUNS": "40", "REGDEMO_GRACE_SECONDS": "2", "REGDEMO_DATA_DIR": data_dir}
    proc, url = launch(env, log)
    sessions = []
    try:
        wait_until(lambda: healthy(url), 120, "server health")
        first = PageSession(browser, url)  # its first page view starts the workers
        sessions.append(first)
        first.train()
        wait_until(lambda: first.epoch() > 0, 300, "workers ready (first epoch)", first.page)
        states = first.widget_states()
        for i in range(1, n):  # everyone opens the page, then everyone presses Train
            sessions.append(PageSession(browser, url) if i < pages
                            else WireSession(loop, url, states))
        for session in sessions[1:]:
            session.train()
        wait_until(lambda: sum(e > 0 for e, _ in stored_epochs(data_dir).values()) >= n, 300,
                   "all sessions training (in the run store)")
        time.sleep(3)  # settle: every worker busy, first-call costs paid
        workers = tree(proc.pid)[1:]
        clients = [p for p in tree(os.getpid()) if p not in workers and p != proc.pid]
        groups = [[proc.pid], workers, clients]  # CPU: the server, its workers, the clients
        cpu0 = [cpu_seconds(g) for g in groups], time.perf_counter()
        for session in sessions:
            session.record()
        saves: dict[str, set] = {}  # run id -> {(when saved, highest epoch)}, once a second
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            for run, (epochs, when) in stored_epochs(data_dir).items():
                saves.setdefault(run, set()).add((when, epochs))
            time.sleep(min(1.0, max(0.0, end - time.perf_counter())))
        cpu1 = [cpu_seconds(g) for g in groups], time.perf_counter()
        results = [analyse(session.frames()) for session in sessions]
        lost = [why for s in sessions if isinstance(s, WireSession) and (why := s.lost())]
        if lost:
            print(f"N={n}: {len(lost)} wire sessions lost: {lost[0]}", file=sys.stderr)
        redraws = [r for session in sessions for r in session.redraws()]
        rss = rss_mb(tree(proc.pid))
    finally:
        for session in sessions:
            try:
                session.close()
            except Exception as exc:  # noqa: BLE001 - closing must go on for the others
                print(f"closing a session: {exc}", file=sys.stderr)
        stop(proc)
        shutil.rmtree(data_dir, ignore_errors=True)
    rates = [r["rate"] for r in results]  # as shown on the pages
    trained = [statistics.linear_regression(*zip(*sorted(points))).slope
               for points in saves.values() if len(points) >= 3]  # epochs per second saved
    trips = [t for r in results for t in r["trips"]]
    wall = cpu1[1] - cpu0[1]
    cores = [(b - a) / wall for a, b in zip(cpu0[0], cpu1[0])]
    done, early = (sum(r[k] for r in results) for k in ("done", "early"))
    print(f"N={n} epochs/s per run: {' '.join(f'{r:.0f}' for r in trained)}; shown: "
          f"{' '.join(f'{r:.0f}' for r in rates)}", file=sys.stderr)
    trained += [0.0] * (n - len(trained))  # a run the store did not see progress in
    return {"n": n, "pages": min(n, pages), "total": sum(trained), "min": min(trained),
            "max": max(trained), "shown": sum(rates), "per_cpu": sum(trained) / max(cores[1], 1e-9),
            "trip50": percentile(trips or [math.inf], 0.5),
            "trip95": percentile(trips or [math.inf], 0.95),  # inf: no poll was answered
            "redraw95": percentile(redraws, 0.95), "rss": rss, "cpu": cores,
            "ticks": done / wall, "cut": early / max(1, done + early),
            "load": os.getloadavg()[0]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", default="1,2,5,10,20")
    parser.add_argument("--seconds", type=float, default=12)
    parser.add_argument("--pages", type=int, default=1, help="real Chromium pages per N")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args(argv)
    counts = sorted({int(x) for x in args.sessions.split(",")})
    from playwright.sync_api import sync_playwright

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    rows, failed = [], {}
    with tempfile.NamedTemporaryFile("w+", prefix="regdemo-server-", suffix=".log") as log:
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=args.chromium, args=FLAGS)
                print_header()
                try:
                    for n in counts:
                        try:
                            rows.append(measure(n, max(1, args.pages), args.seconds, browser,
                                                loop, log))
                        except Exception as exc:  # noqa: BLE001 - say so, go on with the next N
                            failed[n] = str(exc).splitlines()[0][:300]
                            print(f"| {n} | failed: {failed[n]} |", flush=True)
                            log.seek(0)
                            tail = "".join(log.readlines()[-15:])
                            print(f"server log tail:\n{tail}", file=sys.stderr)
                            continue
                        print_row(rows[-1], rows[0] if rows[0]["n"] == 1 else None)
                finally:
                    browser.close()
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)
    print_verdict(rows, failed, args.seconds)
    return 0


COLUMNS = ["sessions (pages)", "epochs/s trained", "per run min / max", "epochs/s shown",
           "epochs per worker CPU-s", "UI ticks/s done (server CPU ms each, % cut short)",
           "poll p50 / p95 ms", "redraw p95 ms", "RSS MB", "MB per extra session",
           "CPU server / workers / clients", "load"]


def print_header() -> None:
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS), flush=True)


def print_row(r: dict, base: dict | None) -> None:
    extra = (r["rss"] - base["rss"]) / (r["n"] - 1) if base and r["n"] > 1 else None
    tick_ms = 1000 * r["cpu"][0] / r["ticks"] if r["ticks"] else float("nan")
    cells = [f"{r['n']} ({r['pages']})", f"{r['total']:,.0f}",
             f"{r['min']:,.0f} / {r['max']:,.0f}", f"{r['shown']:,.0f}", f"{r['per_cpu']:,.0f}",
             f"{r['ticks']:.1f} ({tick_ms:.0f}, {r['cut']:.0%})",
             f"{1000 * r['trip50']:.0f} / {1000 * r['trip95']:.0f}", f"{1000 * r['redraw95']:.0f}",
             f"{r['rss']:,.0f}", "-" if extra is None else f"{extra:.1f}",
             " / ".join(f"{c:.2f}" for c in r["cpu"]), f"{r['load']:.1f}"]
    print("| " + " | ".join(cells) + " |", flush=True)


def print_verdict(rows: list[dict], failed: dict, seconds: float) -> None:
    """One line of verdict against the goals."""
    base = next((r for r in rows if r["n"] == 1), None)
    print(f"({seconds:g} s windows; CPU in cores over the window; load = 1-min load average)")
    by_n = {r["n"]: r for r in rows}
    verdict = [f"N={n} failed (goals NOT met there)" for n in failed]
    if not rows:
        print("verdict: " + "; ".join(verdict))
        return
    if 2 in by_n and 20 in by_n:
        ratio = by_n[20]["total"] / by_n[2]["total"]
        per_cpu = by_n[20]["per_cpu"] / by_n[2]["per_cpu"]
        shown = by_n[20]["shown"] / by_n[2]["shown"] if by_n[2]["shown"] else math.nan
        verdict.append(f"N=20 trains {ratio:.0%} of N=2's epochs/s (goal >= 80%: "
                       f"{'met' if ratio >= 0.8 else 'NOT met'}; per worker CPU-s {per_cpu:.0%},"
                       f" shown on the pages {shown:.0%})")
    worst = max(rows, key=lambda r: r["trip95"])
    p95 = (f"{1000 * worst['trip95']:.0f} ms" if math.isfinite(worst["trip95"])
           else "no poll answered")
    verdict.append(f"worst poll p95: {p95} at N={worst['n']} "
                   f"(goal <= 250 ms: {'met' if worst['trip95'] <= 0.25 else 'NOT met'})")
    top = rows[-1]
    if base and top["n"] > 1:
        extra = (top["rss"] - base["rss"]) / (top["n"] - 1)
        verdict.append(f"{extra:.1f} MB per extra session at N={top['n']} "
                       f"(goal <= 40: {'met' if extra <= 40 else 'NOT met'})")
    print("verdict: " + "; ".join(verdict))


if __name__ == "__main__":
    sys.exit(main())
