"""Concurrent sessions on the live board's feed: shown-epoch pace, throughput, feed cost, memory.

Every row starts a fresh `streamlit run app.py` (uvicorn serving the page and the board's feed
route beside it; process backend, one training worker per core) and drives it like a class:

- N sessions (--sessions, default 2,30,60) train `?preset=overfit&epochs=100000&speed=max`
  (REGDEMO_MAX_RUNS=max(40, N) so nobody queues; nothing finishes). The first --pages
  sessions are real pages in headless Chromium; the rest are "wire" sessions
  (bench/_wire.py): Streamlit's websocket spoken like a page (the same link, the widget
  states of the first page's Train click, Train clicked by its trigger) and the live board's
  feed polled exactly as board.js does (one poll at a time, waiting the `next` the server
  asks for, >= 1 s while idle, the same have string from the same per-slot state, the data
  preview's key, the owner cookie, a poll at once when a script run hands the board new
  data, a "status" trigger when a run's state leaves the page's `expect`). The board's token
  comes from the BidiComponent element ("regdemo_board") in the ForwardMsg deltas. They draw
  nothing: dozens fit beside the server. Once every session shows an epoch (+3 s), a
  --seconds window measures
  (1) shown epoch advances: per session, the intervals between increases of the epoch it
      shows (wire: slot A's `epoch` of each reply; page: the board's "Epoch" metric, sampled
      every 50 ms in the page), the window's edges closing the first and the last interval
      (a session shown nothing new gives the whole window); p95 over sessions and time,
      goal <= 2 s;
  (2) epochs/s trained: per run, the growth of that shown epoch between the window's first
      and last sample; their sum (goal >= 80% of the N=2 figure) and min / max (fairness);
  (3) server CPU per poll: utime+stime of the streamlit process alone (/proc/<pid>/stat, not
      its workers) over the window / feed polls answered in it (wire replies + the pages'
      feed responses); goal <= 3 ms. In brackets the same net of the base: the server's
      CPU in a following 4 s window with every poll held (wire loops paused, the pages' feed
      requests held in the browser), i.e. its runner's updates, saving and websockets: the
      feed's own share per poll. Also polls/s, the median `next` the server asked for and
      the median reply size;
  (4) RSS of server + workers at the window's end; MB per extra session against the
      smallest N (goal <= 40 MB);
  and CPU per group in cores (server process / its workers / Chromium and the Playwright
  driver / this script, i.e. the wire sessions), and the boards per real page
  (`.rd-board` elements: a page with two polls twice per tick).
- long run: one wire session alone; its run trains at max until epoch >= --long-epoch, then
  at 5 epochs/s (about one new epoch per poll), and a window measures server CPU per poll
  (and net of a base window with its polls held), the median time from request to reply,
  and the size of a reply that brings one new epoch (and of a reload's whole-run reply).
  Then the same for a fresh run near epoch 100 (trained at 10 epochs/s up to 60, then at 5).
  Goal: the same within noise (CPU <= 1.25x + 0.5 ms, bytes <= 1.2x + 50).
- class: the shipped defaults (no REGDEMO_MAX_RUNS, no speed change: the page without a query,
  default scenario, 50 epochs/s). One page trains once and resets (workers warm, as a
  teacher would try it), then --class-sessions sessions press Train within 2 s (shuffled);
  reports how many train, how many were ever shown "queued" (the slot's status), each run's
  epochs/s from its first shown epoch to its last (goal >= 30 each), their median from 1 s
  after the last Train on (past the burst of commands), and server / worker CPU.

Client and server share the machine's cores: the 1/5/15-minute load average is printed with
the results; run it on a quiet machine. Server logs go to a temporary file (its tail is
printed when a row fails).

    python bench/sessions.py [--sessions 2,30,60] [--pages 2] [--seconds 12]
                             [--long-epoch 50000] [--class-sessions 30] [--skip long,class]
    python bench/sessions.py --quick      # N=2,10, 8 s windows, long run to 10000, class of 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.WidgetStates_pb2 import WidgetStates

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench._wire import Http, WireSession  # noqa: E402

# The browser benchmark's Chromium flags and process helpers (one copy of each).
from bench.browser import FLAGS, cpu_seconds, free_port, healthy, tree  # noqa: E402
from bench.browser import stop as stop_server  # noqa: E402

QUERY = "preset=overfit&epochs=100000&speed=max"  # the throughput rows' and the long run's link
FEED = "/regdemo/feed"
PAGE_READY = "to start. Change the live knobs"
# In the page (top frame): the board's "Epoch" metric and its status (the cell's title),
# noted with performance.now() whenever either changes; and the websocket frames it sends.
WATCH = """(() => {
  if (window.top !== window) return;
  const ep = window.__ep = {samples: [], last: null, state: null};
  setInterval(() => {
    const cell = document.querySelector('[data-metric="Epoch"]');
    const value = cell && cell.querySelector('.rd-value');
    const shown = value ? parseInt(value.textContent) : NaN;
    const epoch = Number.isNaN(shown) ? -1 : shown;  // -1: no run shown ("–")
    const state = (cell && cell.title) || '';
    if (epoch !== ep.last || state !== ep.state) {
      ep.last = epoch; ep.state = state;
      ep.samples.push([performance.now() / 1000, epoch, state]);
    }
  }, 50);
  window.__out = []; window.__rec = false;
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    send(d) {
      if (window.__rec && (d instanceof ArrayBuffer || ArrayBuffer.isView(d))) {
        const b = d instanceof ArrayBuffer ? new Uint8Array(d)
          : new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
        window.__out.push(Array.from(b, (c) => String.fromCharCode(c)).join(''));
      }
      super.send(d);
    }
  };
})();"""
MARK = "() => [performance.now() / 1000, window.__ep.samples.length]"
HELD_SECONDS = 4.0  # the base window: every poll held, to tell the feed's share of the CPU
STATE_WORDS = {"training": "running", "queued: server busy": "queued"}  # board.js's words


def widget_value(states: bytes, key: str):
    """A widget's value in serialized WidgetStates (the first of an array's)."""
    for w in WidgetStates.FromString(states).widgets:
        if w.id.endswith(f"-{key}"):
            value = getattr(w, w.WhichOneof("value"))
            return value.data[0] if hasattr(value, "data") and value.data else value
    return None


def is_feed(url: str) -> bool:
    return FEED in url


def log(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


# ----------------------------------------------------------------- processes
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


class Server:
    """`streamlit run app.py` headless on a free port, in its own process group and data
    directory; `env` adds to (None: removes from) the environment."""

    def __init__(self, env: dict, logfile):
        self.data_dir = tempfile.mkdtemp(prefix="regdemo-bench-")
        environ = {**os.environ, "REGDEMO_GRACE_SECONDS": "2", "REGDEMO_DATA_DIR": self.data_dir}
        for key in ("REGDEMO_MAX_RUNS", "REGDEMO_WORKERS", "REGDEMO_BACKEND"):
            environ.pop(key, None)  # the shipped defaults unless a row says otherwise
        environ.update(env)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false"],
            cwd=ROOT, stdout=logfile, stderr=subprocess.STDOUT, env=environ,
            start_new_session=True)

    async def ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not await asyncio.to_thread(healthy, self.url):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            await asyncio.sleep(0.2)

    def workers(self) -> list[int]:
        return tree(self.proc.pid)[1:]

    def stop(self) -> None:
        """Stop the server and its workers (bench/browser.py's stop), drop its data."""
        stop_server(self.proc)
        shutil.rmtree(self.data_dir, ignore_errors=True)


# ----------------------------------------------------------------- sessions
class PageSession:
    """A real page in its own browser context (async Playwright)."""

    kind = "page"

    def __init__(self, context, page):
        self.context, self.page = context, page
        self.feed: list = []  # [(perf_counter, body bytes, next ms)] of each feed response
        self.offset = 0.0  # perf_counter - page clock
        self.samples: list = []  # [(t perf, epoch, state)], filled by fetch()
        page.on("response", self._response)

    async def _response(self, response) -> None:
        if FEED not in response.url:
            return
        t = time.perf_counter()
        try:
            body = await response.body()
            found = re.search(rb'"next":(\d+)}\s*$', body[-40:])
            self.feed.append((t, len(body), int(found.group(1)) if found else None))
        except Exception:  # noqa: BLE001 - the page went away meanwhile
            self.feed.append((t, 0, None))

    @classmethod
    async def open(cls, browser, url: str, query: str) -> PageSession:
        context = await browser.new_context(viewport={"width": 1500, "height": 1100})
        await context.add_init_script(WATCH)
        page = await context.new_page()
        self = cls(context, page)
        await page.goto(f"{url}/?{query}" if query else f"{url}/")
        try:
            await page.get_by_text(PAGE_READY).wait_for(timeout=120000)
        except Exception as exc:
            body = (await page.inner_text("body"))[:300]
            raise RuntimeError(f"no first page; it shows: {body!r}") from exc
        await self.settled()
        return self

    async def settled(self) -> None:
        await self.page.wait_for_function("!document.querySelector('[data-stale=true]')")

    async def train(self, capture: bool = False) -> bytes | None:
        """Click Train; with `capture`, return the widget states that click sent."""
        if capture:
            await self.page.evaluate("() => { window.__out = []; window.__rec = true; }")
        await self.page.get_by_role("button", name="Train", exact=True).click()
        if not capture:
            return None
        for _ in range(100):
            for frame in await self.page.evaluate("() => window.__out"):
                msg = BackMsg.FromString(frame.encode("latin-1"))
                widgets = msg.rerun_script.widget_states.widgets
                if any(w.id.endswith("-btn_train") and w.trigger_value for w in widgets):
                    await self.page.evaluate("() => { window.__rec = false; }")
                    return msg.rerun_script.widget_states.SerializeToString()
            await asyncio.sleep(0.1)
        raise RuntimeError("the page's Train click sent no widget states")

    async def reset(self) -> None:
        await self.page.get_by_role("button", name="Reset", exact=True).click()
        await self.page.wait_for_timeout(500)
        await self.settled()

    async def sync_clock(self) -> None:
        before = time.perf_counter()
        page_now, _ = await self.page.evaluate(MARK)
        after = time.perf_counter()
        self.offset = (before + after) / 2 - page_now

    async def current(self) -> tuple[int, str | None]:
        epoch, state = await self.page.evaluate("() => [window.__ep.last, window.__ep.state]")
        return epoch or 0, STATE_WORDS.get(state, state or None)

    async def fetch(self) -> None:
        """The page's shown-epoch samples so far, on this script's clock."""
        await self.sync_clock()
        raw = await self.page.evaluate("() => window.__ep.samples")
        self.samples = [(t + self.offset, e, STATE_WORDS.get(s, s or None)) for t, e, s in raw]

    def trace(self) -> list:
        return [(t, e) for t, e, _ in self.samples]

    def states(self) -> list:
        return [(t, s) for t, _, s in self.samples]

    def polls(self, t0: float, t1: float) -> int:
        return sum(t0 <= t <= t1 for t, _, _ in self.feed)

    def replies(self, t0: float, t1: float) -> list:
        return [SimpleNamespace(t=t, size=size, next=next_) for t, size, next_ in self.feed
                if t0 <= t <= t1 and next_ is not None]

    async def hold(self, held: bool) -> None:
        """Hold the page's feed requests in the browser (the base window), then let them go."""
        if held:
            gate = self._gate = asyncio.Event()

            async def wait(route) -> None:
                await gate.wait()
                with contextlib.suppress(Exception):  # unroute may have let it go already
                    await route.continue_()

            self._held = wait
            await self.page.route(is_feed, wait)
        else:
            self._gate.set()
            await asyncio.sleep(0.05)  # the held requests go on first
            await self.page.unroute(is_feed, self._held)

    async def boards(self) -> int:
        return await self.page.evaluate("() => document.querySelectorAll('.rd-board').length")

    async def close(self) -> None:
        await self.context.close()


class Wire:
    """A WireSession with the same reading interface as PageSession."""

    kind = "wire"

    def __init__(self, session: WireSession):
        self.s = session

    @classmethod
    async def open(cls, url: str, query: str, states: bytes) -> Wire:
        session = WireSession(url, query, states)
        await session.open()
        return cls(session)

    async def speed(self, value) -> None:
        self.s.set_widget("w_speed", value)
        await self.s.rerun()

    async def train(self, capture: bool = False) -> None:
        await self.s.train()

    def _replies(self) -> list:
        return self.s.board.replies if self.s.board is not None else []

    async def current(self) -> tuple[int, str | None]:
        for r in reversed(self._replies()):
            if r.status == 200:
                return r.epoch or 0, r.state
        return 0, None

    async def fetch(self) -> None:
        pass

    def trace(self) -> list:
        return [(r.t, r.epoch) for r in self._replies() if r.epoch is not None]

    def states(self) -> list:
        return [(r.t, r.state) for r in self._replies() if r.state is not None]

    def polls(self, t0: float, t1: float) -> int:
        return sum(r.status == 200 and t0 <= r.t <= t1 for r in self._replies())

    def replies(self, t0: float, t1: float) -> list:
        return [r for r in self._replies() if r.status == 200 and t0 <= r.t <= t1]

    async def hold(self, held: bool) -> None:
        """Hold the board's polls (the benchmark's base window; no page does this)."""
        if self.s.board is not None:
            self.s.board.paused = held

    async def boards(self) -> int:
        return 1

    async def close(self) -> None:
        await self.s.close()


# ----------------------------------------------------------------- figures
def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))] if values else float("nan")


def advance_gaps(trace: list, t0: float, t1: float) -> list[float]:
    """Intervals between increases of the shown epoch in [t0, t1]; the window's edges close
    the first and the last (a session that shows nothing new gives the whole window)."""
    rises, last = [], None
    for t, epoch in sorted(trace):
        if last is not None and epoch > last and t0 <= t <= t1:
            rises.append(t)
        last = epoch if last is None else max(last, epoch)
    points = [t0, *rises, t1]
    return [b - a for a, b in zip(points, points[1:])]


def run_rate(trace: list, t0: float, t1: float) -> float:
    """Epochs/s of the shown epoch between the window's first and last sample."""
    inside = sorted((t, e) for t, e in trace if t0 <= t <= t1)
    if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
        return 0.0
    (ta, ea), (tb, eb) = inside[0], inside[-1]
    return (eb - ea) / (tb - ta)


async def wait_for(predicate, timeout: float, what: str, every: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(every)


async def all_showing(sessions: list, least: int = 1) -> bool:
    shown = await asyncio.gather(*(s.current() for s in sessions))
    return all(epoch >= least for epoch, _ in shown)


async def open_wires(url: str, query: str, states: bytes, count: int) -> list[Wire]:
    """`count` wire sessions, a few opening at a time (each first page view is a script run)."""
    gate = asyncio.Semaphore(6)

    async def one():
        async with gate:
            return await Wire.open(url, query, states)

    return list(await asyncio.gather(*(one() for _ in range(count))))


def health(wires: list) -> str:
    """Lost websockets, failed polls and poll errors of wire sessions ('' if none)."""
    lost = [why for w in wires if (why := w.s.lost())]
    boards = [w.s.board for w in wires if w.s.board is not None]
    failed = sum(r.status != 200 for b in boards for r in b.replies)
    errors = [e for b in boards for e in b.errors]
    out = []
    if lost:
        out.append(f"{len(lost)} websockets lost ({lost[0]})")
    if failed:
        out.append(f"{failed} polls failed")
    if errors:
        out.append(f"{len(errors)} poll errors ({errors[0]})")
    if len(boards) < len(wires):
        out.append(f"{len(wires) - len(boards)} sessions got no board")
    return "; ".join(out)


async def close_all(sessions: list) -> None:
    for s in sessions:
        try:
            await asyncio.wait_for(s.close(), 15)
        except Exception as exc:  # noqa: BLE001 - closing must go on for the others
            log(f"closing a session: {exc!r}")


# ----------------------------------------------------------------- rows
async def sessions_row(n: int, pages: int, seconds: float, browser, logfile) -> dict:
    """One server, n sessions training at max speed; the figures of one window."""
    server = Server({"REGDEMO_MAX_RUNS": str(max(40, n))}, logfile)
    sessions: list = []
    try:
        await server.ready()
        first = await PageSession.open(browser, server.url, QUERY)  # starts the workers
        sessions.append(first)
        states = await first.train(capture=True)
        speed = widget_value(states, "w_speed")  # None: not mounted yet, the link's holds
        if speed not in (None, "max"):
            log(f"N={n}: the page's speed is {speed!r}, not 'max'")
        await wait_for(lambda: all_showing([first]), 300, "workers ready (a first epoch)")
        for _ in range(1, min(n, pages)):
            sessions.append(await PageSession.open(browser, server.url, QUERY))
        sessions += await open_wires(server.url, QUERY, states, n - len(sessions))
        await asyncio.gather(*(s.train() for s in sessions[1:]))
        await wait_for(lambda: all_showing(sessions), 300, "every session showing an epoch")
        await asyncio.sleep(3)  # settle: every run busy, first-call costs paid
        workers = server.workers()
        browsers = [p for p in tree(os.getpid())[1:] if p not in workers and p != server.proc.pid]
        groups = [[server.proc.pid], workers, browsers, [os.getpid()]]
        for s in sessions:
            if isinstance(s, PageSession):
                await s.sync_clock()
        cpu0, t0 = [cpu_seconds(g) for g in groups], time.perf_counter()
        await asyncio.sleep(seconds)
        cpu1, t1 = [cpu_seconds(g) for g in groups], time.perf_counter()
        rss = rss_mb(tree(server.proc.pid))
        # The base: the server's CPU while every board's polls are held (its runner's
        # updates, saving, websockets): what the feed adds is the rest.
        await asyncio.gather(*(s.hold(True) for s in sessions))
        await asyncio.sleep(0.6)  # polls in flight are answered
        cpu2, t2 = cpu_seconds([server.proc.pid]), time.perf_counter()
        await asyncio.sleep(HELD_SECONDS)
        cpu3, t3 = cpu_seconds([server.proc.pid]), time.perf_counter()
        held_polls = sum(s.polls(t2, t3) for s in sessions)
        held = (cpu3 - cpu2) / (t3 - t2)
        await asyncio.gather(*(s.hold(False) for s in sessions))
        if held_polls:
            log(f"N={n}: {held_polls} polls answered while held")
        await asyncio.gather(*(s.fetch() for s in sessions))
        boards = [await s.boards() for s in sessions if isinstance(s, PageSession)]
        trouble = health([s for s in sessions if isinstance(s, Wire)])
        if trouble:
            log(f"N={n}: {trouble}")
    finally:
        await close_all(sessions)
        await asyncio.to_thread(server.stop)
    wall = t1 - t0
    gaps = [g for s in sessions for g in advance_gaps(s.trace(), t0, t1)]
    rates = [run_rate(s.trace(), t0, t1) for s in sessions]
    polls = sum(s.polls(t0, t1) for s in sessions)
    replies = [r for s in sessions for r in s.replies(t0, t1)]
    cores = [(b - a) / wall for a, b in zip(cpu0, cpu1)]
    net = 1000 * (cores[0] - held) * wall / polls if polls else float("nan")
    log(f"N={n} epochs/s per run: {' '.join(f'{r:.0f}' for r in rates)}")
    return {"n": n, "pages": min(n, pages), "gap50": percentile(gaps, 0.5),
            "gap95": percentile(gaps, 0.95), "gapmax": max(gaps, default=float("nan")),
            "total": sum(rates), "min": min(rates), "max": max(rates),
            "polls": polls / wall, "next": statistics.median([r.next for r in replies])
            if replies else float("nan"),
            "size": statistics.median([r.size for r in replies]) if replies else float("nan"),
            "ms_poll": 1000 * (cpu1[0] - cpu0[0]) / max(polls, 1), "cpu": cores,
            "held": held, "net": net,
            "rss": rss, "boards": boards, "load": os.getloadavg(), "states": states}


async def phase(wire: Wire, server: Server, seconds: float) -> dict:
    """Server CPU per poll and the replies of one session over a window."""
    cpu0, t0 = cpu_seconds([server.proc.pid]), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu1, t1 = cpu_seconds([server.proc.pid]), time.perf_counter()
    await wire.hold(True)
    await asyncio.sleep(0.6)
    cpu2, t2 = cpu_seconds([server.proc.pid]), time.perf_counter()
    await asyncio.sleep(HELD_SECONDS)
    cpu3, t3 = cpu_seconds([server.proc.pid]), time.perf_counter()
    await wire.hold(False)
    base = (cpu3 - cpu2) / (t3 - t2)
    replies = wire.replies(t0, t1)
    one = [r.size for r in replies if r.new == 1 and not r.full]
    board = wire.s.board
    http = Http(server.url)  # a reload's first poll: the whole run (on its own connection)
    status, body = await http.get(f"{FEED}?t={board.data['token']}&h=;")
    http.close()
    return {"epoch": (await wire.current())[0], "polls": len(replies) / (t1 - t0),
            "ms_poll": 1000 * (cpu1 - cpu0) / max(len(replies), 1),
            "net": 1000 * (cpu1 - cpu0 - base * (t1 - t0)) / max(len(replies), 1),
            "latency": 1000 * statistics.median([r.t - r.sent for r in replies])
            if replies else float("nan"),
            "one": statistics.median(one) if one else float("nan"), "ones": len(one),
            "full": len(body) if status == 200 else float("nan")}


async def long_row(long_epoch: int, seconds: float, states: bytes | None, browser,
                   logfile) -> dict:
    """One session alone: its run at epoch >= long_epoch, then a fresh run near epoch 100."""
    server = Server({}, logfile)
    sessions: list = []
    try:
        await server.ready()
        if states is None:  # no earlier row copied a page's states: copy them here
            page = await PageSession.open(browser, server.url, QUERY)
            states = await page.train(capture=True)
            await page.reset()
            await page.close()
        wire = await Wire.open(server.url, QUERY, states)
        sessions.append(wire)
        await wire.train()  # at max speed (the copied states)
        started, shown = time.monotonic(), time.monotonic()
        while (epoch := (await wire.current())[0]) < long_epoch:
            if time.monotonic() - started > max(600, long_epoch / 50):
                raise TimeoutError(f"the long run reached epoch {epoch} only")
            if time.monotonic() - shown > 10:
                log(f"long run: epoch {epoch:,} ({(await wire.current())[1]}, "
                    f"{len(wire.s.board.replies)} polls) {health([wire])}")
                shown = time.monotonic()
            await asyncio.sleep(0.5)
        await wire.speed(5)  # about one new epoch per poll
        await asyncio.sleep(2)
        long = await phase(wire, server, seconds)
        await wire.close()
        sessions.remove(wire)
        await asyncio.sleep(3)  # its run is stopped after the 2 s grace
        fresh = await Wire.open(server.url, QUERY, states)
        sessions.append(fresh)
        fresh.s.set_widget("w_speed", 10)
        await fresh.train()
        await wait_for(lambda: all_showing([fresh], 60), 120, "the fresh run at epoch 60", 0.1)
        await fresh.speed(5)
        await asyncio.sleep(1)
        short = await phase(fresh, server, seconds)
    finally:
        await close_all(sessions)
        await asyncio.to_thread(server.stop)
    return {"long": long, "short": short, "load": os.getloadavg()}


async def class_row(count: int, pages: int, browser, logfile, timeout: float = 90) -> dict:
    """Shipped defaults: `count` sessions press Train within 2 s; who trains, how fast."""
    server = Server({}, logfile)
    sessions: list = []
    try:
        await server.ready()
        first = await PageSession.open(browser, server.url, "")
        sessions.append(first)
        states = await first.train(capture=True)  # the teacher tries it once: workers warm
        await wait_for(lambda: all_showing([first]), 300, "workers ready (a first epoch)")
        await first.reset()
        for _ in range(1, min(count, pages)):
            sessions.append(await PageSession.open(browser, server.url, ""))
        sessions += await open_wires(server.url, "", states, count - len(sessions))
        order = list(sessions)
        random.Random(0).shuffle(order)
        start = time.perf_counter()

        pressed: dict = {}
        groups = [[server.proc.pid], server.workers()]
        cpu0 = [cpu_seconds(g) for g in groups]

        async def press(session, i):
            await asyncio.sleep(2.0 * i / max(1, len(order) - 1))
            pressed[id(session)] = time.perf_counter()
            await session.train()

        await asyncio.gather(*(press(s, i) for i, s in enumerate(order)))
        spread = max(pressed.values()) - start

        async def finished():
            shown = await asyncio.gather(*(s.current() for s in sessions))
            return all(state == "stopped" and epoch > 0 for epoch, state in shown)

        with contextlib.suppress(TimeoutError):
            await wait_for(finished, timeout, "every class run finished")
        cores = [(cpu_seconds(g) - c) / (time.perf_counter() - start)
                 for g, c in zip(groups, cpu0)]
        await asyncio.gather(*(s.fetch() for s in sessions))
    finally:
        await close_all(sessions)
        await asyncio.to_thread(server.stop)
    trained = queued = 0
    rates, steady = [], []
    calm = max(pressed.values()) + 1.0  # every Train's commands handled by then
    for s in sessions:  # only what each session was shown after its Train
        trace = [(t, e) for t, e in s.trace() if e > 0 and t >= pressed[id(s)]]
        trained += bool(trace)
        queued += any(state == "queued" for t, state in s.states() if t >= pressed[id(s)])
        if len(trace) >= 2:
            end = next((p for p in trace if p[1] >= trace[-1][1]), trace[-1])
            rates.append((end[1] - trace[0][1]) / max(end[0] - trace[0][0], 1e-9))
            later = [p for p in trace if p[0] >= calm and p[0] <= end[0]]
            if len(later) >= 2 and later[-1][0] - later[0][0] > 1:
                steady.append((later[-1][1] - later[0][1]) / (later[-1][0] - later[0][0]))
        else:
            rates.append(0.0)
    return {"n": count, "trained": trained, "queued": queued, "rates": rates,
            "steady": steady, "spread": spread, "cores": cores, "load": os.getloadavg()}


# ----------------------------------------------------------------- output
COLUMNS = ["sessions (pages)", "shown epoch advance p50 / p95 / max s", "epochs/s trained",
           "per run min / max", "feed polls/s", "median next ms", "median reply KB",
           "server CPU ms per poll (net of base)", "server CPU base (cores)",
           "CPU server / workers / Chromium / wires", "RSS MB", "MB per extra session",
           "boards per page", "load 1 min"]


def print_header() -> None:
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS), flush=True)


def extra_mb(r: dict, base: dict | None) -> float | None:
    return (r["rss"] - base["rss"]) / (r["n"] - base["n"]) if base and r["n"] > base["n"] \
        else None


def print_row(r: dict, base: dict | None) -> None:
    extra = extra_mb(r, base)
    cells = [f"{r['n']} ({r['pages']})",
             f"{r['gap50']:.2f} / {r['gap95']:.2f} / {r['gapmax']:.2f}",
             f"{r['total']:,.0f}", f"{r['min']:,.0f} / {r['max']:,.0f}", f"{r['polls']:.1f}",
             f"{r['next']:.0f}", f"{r['size'] / 1000:.1f}",
             f"{r['ms_poll']:.2f} ({r['net']:.2f})", f"{r['held']:.2f}",
             " / ".join(f"{c:.2f}" for c in r["cpu"]), f"{r['rss']:,.0f}",
             "-" if extra is None else f"{extra:.1f}",
             " ".join(str(b) for b in r["boards"]) or "-", f"{r['load'][0]:.1f}"]
    print("| " + " | ".join(cells) + " |", flush=True)


def print_long(r: dict) -> None:
    print("\n| long run | epoch | feed polls/s | server CPU ms per poll (net of base) | "
          "median reply ms | reply bytes, one new epoch (n) | reply bytes, whole run "
          "(a reload) |")
    print("|---|---|---|---|---|---|---|")
    for name in ("long", "short"):
        p = r[name]
        print(f"| {name} | {p['epoch']:,} | {p['polls']:.1f} | {p['ms_poll']:.2f} "
              f"({p['net']:.2f}) | {p['latency']:.1f} | {p['one']:,.0f} ({p['ones']}) | "
              f"{p['full']:,.0f} |")
    print(f"(one session alone at 5 epochs/s in both; load {r['load'][0]:.1f})", flush=True)


def print_class(r: dict) -> None:
    rates = sorted(r["rates"])
    print(f"\nclass ({r['n']} sessions, shipped defaults, Train pressed within "
          f"{r['spread']:.1f} s): {r['trained']}/{r['n']} trained, {r['queued']} ever queued; "
          f"epochs/s per run min / median / max {rates[0]:.1f} / "
          f"{statistics.median(rates):.1f} / {rates[-1]:.1f}; "
          f"all: {' '.join(f'{x:.0f}' for x in rates)}; from 1 s after the last Train on: "
          f"median {statistics.median(r['steady']) if r['steady'] else float('nan'):.1f} "
          f"({len(r['steady'])} runs); CPU server / workers "
          f"{r['cores'][0]:.2f} / {r['cores'][1]:.2f} cores from the first Train to the last "
          f"run's end (load {r['load'][0]:.1f})", flush=True)


def verdicts(rows: list[dict], failed: dict, long: dict | None, klass: dict | None) -> list:
    out = [f"{name}: failed ({why}): goals NOT met there" for name, why in failed.items()]
    met = lambda ok: "met" if ok else "NOT met"  # noqa: E731
    if rows:
        worst = max(rows, key=lambda r: r["gap95"])
        out.append(f"shown epoch advances p95 {worst['gap95']:.2f} s at worst (N={worst['n']}; "
                   f"goal <= 2 s): {met(worst['gap95'] <= 2)}")
        base = next((r for r in rows if r["n"] == 2), rows[0])
        for r in rows:
            if r is base:
                continue
            ratio = r["total"] / base["total"] if base["total"] else float("nan")
            out.append(f"N={r['n']} trains {ratio:.0%} of N={base['n']}'s {base['total']:,.0f} "
                       f"epochs/s (goal >= 80%): {met(ratio >= 0.8)}")
        worst = max(rows, key=lambda r: r["ms_poll"])
        net = max(r["net"] for r in rows)
        out.append(f"server CPU per poll {worst['ms_poll']:.2f} ms at worst (N={worst['n']}; "
                   f"goal <= 3 ms): {met(worst['ms_poll'] <= 3)} (net of the server's base "
                   f"{worst['net']:.2f} ms there, {net:.2f} ms at most)")
        top = rows[-1]
        extra = extra_mb(top, base)
        if extra is not None:
            out.append(f"{extra:.1f} MB per extra session at N={top['n']} (goal <= 40 MB): "
                       f"{met(extra <= 40)}")
        worst = min(rows, key=lambda r: r["min"] / r["max"] if r["max"] else 0)
        out.append(f"fairness: slowest / fastest run {worst['min'] / max(worst['max'], 1e-9):.0%}"
                   f" at N={worst['n']} ({worst['min']:,.0f} / {worst['max']:,.0f} epochs/s)")
    if long is not None:
        a, b = long["long"], long["short"]
        cpu_ok = a["ms_poll"] <= 1.25 * b["ms_poll"] + 0.5
        size_ok = a["one"] <= 1.2 * b["one"] + 50
        out.append(f"long run: {a['ms_poll']:.2f} vs {b['ms_poll']:.2f} ms per poll, "
                   f"{a['one']:,.0f} vs {b['one']:,.0f} bytes for one new epoch at epoch "
                   f"{a['epoch']:,} vs {b['epoch']:,} (goal: the same within noise, "
                   f"<= 1.25x + 0.5 ms and <= 1.2x + 50 B): {met(cpu_ok and size_ok)}")
    if klass is not None:
        slow = sum(x < 30 for x in klass["rates"])
        everyone = klass["trained"] == klass["n"] and not klass["queued"]
        out.append(f"class: {klass['trained']}/{klass['n']} trained, {klass['queued']} queued "
                   f"(goal: all, none): {met(everyone)}"
                   f"; slowest run {min(klass['rates']):.1f} epochs/s, {slow} below 30 "
                   f"(goal >= 30 each): {met(slow == 0)}")
    return out


# ----------------------------------------------------------------- main
async def amain(args) -> int:
    from playwright.async_api import async_playwright

    counts = sorted({int(x) for x in args.sessions.split(",") if x.strip()})
    skip = {x.strip() for x in args.skip.split(",") if x.strip()}
    rows, failed = [], {}
    long = klass = None
    states = None
    started = time.monotonic()
    with tempfile.NamedTemporaryFile("w+", prefix="regdemo-server-", suffix=".log") as logfile:

        def tail(name, exc):
            failed[name] = str(exc).splitlines()[0][:300] if str(exc) else repr(exc)
            logfile.seek(0)
            log(f"{name} failed: {exc!r}\nserver log tail:\n"
                + "".join(logfile.readlines()[-15:]))

        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=args.chromium, args=FLAGS)
            try:
                print(f"regdemo sessions benchmark: {os.cpu_count()} cores, load before "
                      f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; {args.seconds:g} s "
                      f"windows; sessions at speed max, epochs=100000, REGDEMO_MAX_RUNS="
                      f"max(40, N)\n", flush=True)
                print_header()
                for n in counts:
                    try:
                        rows.append(await sessions_row(n, max(1, args.pages), args.seconds,
                                                       browser, logfile))
                    except Exception as exc:  # noqa: BLE001 - say so, go on with the next N
                        tail(f"N={n}", exc)
                        print(f"| {n} | failed: {failed[f'N={n}']} |", flush=True)
                        continue
                    print_row(rows[-1], rows[0] if rows[-1] is not rows[0] else None)
                states = next((r["states"] for r in rows), None)
                if "long" not in skip:
                    try:
                        long = await long_row(args.long_epoch, args.seconds, states, browser,
                                              logfile)
                        print_long(long)
                    except Exception as exc:  # noqa: BLE001
                        tail("long run", exc)
                if "class" not in skip:
                    try:
                        klass = await class_row(args.class_sessions, max(1, args.pages),
                                                browser, logfile)
                        print_class(klass)
                    except Exception as exc:  # noqa: BLE001
                        tail("class", exc)
            finally:
                await browser.close()
    print(f"\n(took {time.monotonic() - started:.0f} s; CPU in cores over the window; "
          f"machine load average now {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"(1/5/15 min) on {os.cpu_count()} cores)")
    for line in verdicts(rows, failed, long, klass):
        print("verdict: " + line)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", default=None, help="N per row (default 2,30,60)")
    parser.add_argument("--pages", type=int, default=2, help="real Chromium pages per row")
    parser.add_argument("--seconds", type=float, default=None, help="window (default 12)")
    parser.add_argument("--long-epoch", type=int, default=None,
                        help="epoch the long run must pass (default 50000)")
    parser.add_argument("--class-sessions", type=int, default=None, help="default 30")
    parser.add_argument("--skip", default="", help="rows to leave out: long,class")
    parser.add_argument("--quick", action="store_true",
                        help="a fast check: N=2,10, 8 s windows, long run to 10000, class of 10")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args(argv)
    quick = args.quick
    args.sessions = args.sessions or ("2,10" if quick else "2,30,60")
    args.seconds = args.seconds or (8.0 if quick else 12.0)
    args.long_epoch = args.long_epoch or (10000 if quick else 50000)
    args.class_sessions = args.class_sessions or (10 if quick else 30)
    return asyncio.run(amain(args))


if __name__ == "__main__":
    sys.exit(main())
