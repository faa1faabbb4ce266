"""A page without a browser, for bench/sessions.py: Streamlit's websocket plus the board's feed.

`WireSession` opens Streamlit's websocket like a page on a browser's first visit (a first
script run for the query, then reruns that send copied widget states, Train clicked by its
trigger, the query the page's URL shows by then) and, once the live board's element
(BidiComponent "regdemo_board", its JSON data) arrives in a delta, runs `Board`: the poll
loop of regdemo/ui/assets/board.js without the drawing. One poll at a time; the next one
`next` ms after a reply (at least 1000 ms when none of its runs is busy, 2000 ms after a
failure); the have string built from what it holds per slot (run id, last epoch of the
records held, events, views version), the data preview's key, the owner cookie the board
sets; a poll at once whenever a script run hands the board new data; a "status" trigger
(one rerun) when a run's state moves away from the `expect` the page was drawn for (asked
again after 3 s), and a "recheck" trigger 3.5 s after a mount that asks for one. It keeps a
few numbers per slot, so a few dozen sessions fit beside the server.

The feed is fetched over one HTTP/1.1 keep-alive connection per board with asyncio streams
(no client library), as a browser's fetch reuses its connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetStates

BOARD = "regdemo_board"  # the live board's component name (regdemo/ui/board.py)
IDLE_MS = 1000  # board.js: poll pace while nothing of this board trains
RETRY_MS = 2000  # board.js: after a failed poll
TRIGGER_PREFIX = "$$STREAMLIT_INTERNAL_KEY_"  # + element id + "__events": CCv2's triggers
OWNER = "regdemo_owner"  # the browser's owner cookie (board.js sets it)


# ----------------------------------------------------------------- HTTP/1.1 keep-alive
class Http:
    """One keep-alive connection to the server; reopened when the server closes it."""

    def __init__(self, url: str, headers: dict | None = None):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.headers = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.reader = self.writer = None
        self.connects = 0

    async def get(self, target: str, timeout: float = 30.0) -> tuple[int, bytes]:
        """(status, body) of GET `target`; one retry on a fresh connection if the kept
        one was closed under us."""
        for attempt in (0, 1):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
                self.connects += 1
            try:
                return await asyncio.wait_for(self._exchange(target), timeout)
            except (TimeoutError, asyncio.CancelledError):  # the reply may still come
                self.close()
                raise
            except (ConnectionError, asyncio.IncompleteReadError, OSError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def _exchange(self, target: str) -> tuple[int, bytes]:
        self.writer.write(f"GET {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                          f"Accept: */*\r\n{self.headers}\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = bytearray()
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                body += await self.reader.readexactly(size + 2)
                del body[-2:]
                if size == 0:  # no trailers: the last chunk's CRLF ended the body
                    break
            body = bytes(body)
        else:
            body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


# ----------------------------------------------------------------- the board's poll loop
@dataclass
class Slot:
    """What board.js keeps of one run, reduced to what its have string and status need."""

    id: int | None = None
    have: int = 0  # the last epoch of the records held
    records: int = 0
    events: int = 0
    vv: int = -1
    epoch: int = 0
    epochs: int = 0
    status: str | None = None
    busy: bool = False


@dataclass
class Reply:
    """One answered poll: when, what slot A showed, and what it cost on the wire."""

    t: float  # perf_counter when the reply was read
    sent: float  # when the request was sent
    status: int
    size: int  # body bytes
    next: int | None  # ms, as the server said
    epoch: int | None  # slot A's epoch as the board shows it (None: no run)
    state: str | None  # slot A's status
    run: int | None  # slot A's run id
    new: int  # records new to the board in slot A (after the have's epoch)
    full: bool


@dataclass
class Board:
    """board.js's `poll` loop for one mounted board (see the module docstring)."""

    http: Http
    data: dict  # the element's JSON data: token, feed, expect, recheck, ...
    trigger: object = None  # callable(event, value): the component's setTriggerValue
    runs: list = field(default_factory=lambda: [Slot(), None])
    told: dict = field(default_factory=dict)  # slot -> (state told, when)
    preview: str = ""  # the key of the data preview the board holds (before Train)
    rechecked: bool = False
    replies: list = field(default_factory=list)
    paused: bool = False  # the benchmark may hold the loop (not something a page does)
    errors: list = field(default_factory=list)  # unexpected failures of a poll

    def __post_init__(self):
        self.kick = asyncio.Event()
        self.task = asyncio.ensure_future(self._loop())
        self._mounted()

    def have(self) -> str:
        return ";".join(f"{r.id}.{r.have}.{r.events}.{r.vv}" if r is not None and r.id is not None
                        else "" for r in self.runs)

    def update(self, data: dict) -> None:
        """A script run handed the component new data: board.js polls at once."""
        if data.get("token") != self.data.get("token"):
            self.runs, self.told, self.preview, self.rechecked = [Slot(), None], {}, "", False
        self.data = data
        self._mounted()
        self.kick.set()

    def _mounted(self) -> None:
        """board.js on each call: a reloaded page's board asks for its run once more."""
        if self.data.get("recheck") and not self.rechecked:
            self.rechecked = True
            asyncio.get_running_loop().call_later(
                3.5, lambda: self.trigger and self.trigger("recheck", int(time.time() * 1000)))

    async def _loop(self) -> None:
        while True:
            self.kick.clear()
            try:
                wait = await self.poll()
            except Exception as exc:  # noqa: BLE001 - a surprise must not end the loop unseen
                self.errors.append(repr(exc))
                wait = RETRY_MS
            if self.kick.is_set():  # a rerun asked while the poll was in flight: at once
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.kick.wait(), wait / 1000)
            while self.paused:
                await asyncio.sleep(0.05)

    async def poll(self) -> float:
        """One poll as board.js sends it; returns the wait (ms) before the next one."""
        target = (f"{self.data['feed']}?t={quote(self.data['token'], safe='')}&h={self.have()}"
                  f"&p={quote(self.preview, safe='')}")
        sent = time.perf_counter()
        try:
            status, body = await self.http.get(target)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            self.replies.append(Reply(time.perf_counter(), sent, 0, 0, None, None, None, None,
                                      0, False))
            return RETRY_MS
        now = time.perf_counter()
        if status != 200:
            self.replies.append(Reply(now, sent, status, len(body), None, None, None, None, 0,
                                      False))
            return RETRY_MS
        reply = json.loads(body)
        new = 0
        full = False
        for i, u in enumerate(reply["runs"]):
            if u is None:
                if self.runs[i] is not None and self.runs[i].id is not None:
                    self.runs[i] = Slot()
                continue
            if self.runs[i] is None:
                self.runs[i] = Slot()
            fresh = self._merge(self.runs[i], u)
            if i == 0:
                new, full = fresh, bool(u["full"])
        if reply.get("preview"):
            self.preview = reply["preview"]["key"]
        a = self.runs[0]
        shown = a is not None and a.id is not None
        self.replies.append(Reply(now, sent, status, len(body), reply["next"],
                                  a.epoch if shown else None, a.status if shown else None,
                                  a.id if shown else None, new, full))
        self._tell_page()
        busy = any(r is not None and r.busy for r in self.runs)
        return reply["next"] if busy else max(reply["next"], IDLE_MS)

    @staticmethod
    def _merge(run: Slot, u: dict) -> int:
        """board.js's merge(): returns how many records were new to the board."""
        if u["full"] or run.id != u["id"]:
            run.__dict__.update(Slot(id=u["id"]).__dict__)
        epochs = u["rec"]["e"]
        start = 0
        while start < len(epochs) and run.records and epochs[start] <= run.have:
            start += 1
        fresh = len(epochs) - start
        run.records += fresh
        if fresh:
            run.have = epochs[-1]
        run.status, run.busy = u["status"], u["busy"]
        run.epochs, run.epoch = u["epochs"], u["epoch"]
        if "events" in u:
            run.events = len(u["events"])
        run.vv = u["vv"]
        return fresh

    def _tell_page(self) -> None:
        """board.js's tellPage(): a run's state moved on from the page's `expect`: one
        rerun (asked again if the page still expects the old state 3 s later)."""
        expect = self.data.get("expect") or []
        for i, run in enumerate(self.runs):
            if run is None or run.id is None or i >= len(expect) or expect[i] is None:
                continue
            now = f"{run.id}:{run.status}:{1 if run.busy else 0}"
            told, when = self.told.get(i, (None, 0.0))
            if now != expect[i] and (told != now or time.monotonic() - when > 3.0):
                self.told[i] = (now, time.monotonic())
                if self.trigger is not None:
                    self.trigger("status", now)

    def close(self) -> None:
        self.task.cancel()
        self.http.close()


# ----------------------------------------------------------------- the session
def board_data(element) -> dict | None:
    """The JSON data of a delta's element if it is the live board (json or mixed form)."""
    if element.WhichOneof("type") != "bidi_component":
        return None
    bc = element.bidi_component
    if not bc.component_name.endswith(BOARD):
        return None
    kind = bc.WhichOneof("data")
    text = bc.json if kind == "json" else bc.mixed.json if kind == "mixed" else ""
    return json.loads(text) if text else None


class WireSession:
    """One browser session over the websocket, with the live board's poll loop.

    `states`: serialized WidgetStates copied from a real page's Train click (the widget
    values a page sends); `query`: the page's first query string.
    """

    def __init__(self, url: str, query: str, states: bytes):
        self.url, self.query, self.page_query = url, query, query
        self.states = WidgetStates.FromString(states)
        self.ws = None
        self.train_id: str | None = None
        self.board: Board | None = None
        self.board_id: str | None = None
        self.runs_done = 0  # completed script runs
        self.first_run = asyncio.Event()
        self.reruns = 0
        self.widget_ids: dict[str, str] = {}  # widget key -> id, from the deltas
        self.triggers: list[str] = []  # the board's triggers sent (status, recheck)
        self.task = None
        # The browser's owner cookie, as board.js sets it on its first mount (a first visit:
        # the websocket opened before it, so only the feed's requests carry it).
        self.owner = secrets.token_urlsafe(18)

    async def open(self, timeout: float = 180.0) -> None:
        uri = self.url.replace("http", "ws", 1) + "/_stcore/stream"
        # No protocol pings: the page sends none, and a busy server must not drop us for them.
        self.ws = await websockets.connect(uri, subprotocols=["streamlit"], max_size=None,
                                           ping_interval=None, open_timeout=timeout)
        self.task = asyncio.ensure_future(self._receive())
        await self._send(first=True)
        await asyncio.wait_for(self.first_run.wait(), timeout)

    async def _receive(self) -> None:
        async for data in self.ws:
            msg = ForwardMsg.FromString(data)
            kind = msg.WhichOneof("type")
            if kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                element = msg.delta.new_element
                kind_ = element.WhichOneof("type")
                widget = getattr(element, kind_) if kind_ else None
                wid = getattr(widget, "id", "") if widget is not None else ""
                if isinstance(wid, str) and wid.startswith("$$ID-"):
                    self.widget_ids[wid.rsplit("-", 1)[-1]] = wid  # key -> widget id
                if kind_ == "button" and element.button.label == "Train":
                    self.train_id = element.button.id
                    continue
                data_ = board_data(element)
                if data_ is not None:
                    self.board_id = element.bidi_component.id
                    if self.board is None:  # mounted: it sets the cookie and polls at once
                        self.board = Board(Http(self.url, {"Cookie": f"{OWNER}={self.owner}"}),
                                           data_, self._trigger)
                    elif data_ != self.board.data:  # board.js is called again: polls at once
                        self.board.update(data_)
            elif kind == "page_info_changed":
                self.page_query = msg.page_info_changed.query_string
            elif kind == "script_finished":
                self.runs_done += 1
                self.first_run.set()

    def _trigger(self, event: str, value) -> None:
        """The board's setTriggerValue(event, value): one rerun of the page."""
        trigger = WidgetStates()
        trigger.widgets.add(id=f"{TRIGGER_PREFIX}{self.board_id}__events",
                            json_trigger_value=json.dumps([{"event": event, "value": value}]))
        self.triggers.append(event)
        asyncio.ensure_future(self._send(extra=trigger))

    async def _send(self, first: bool = False, trigger: str | None = None,
                    extra: WidgetStates | None = None) -> None:
        msg = BackMsg()
        msg.rerun_script.query_string = self.query if first else self.page_query
        if not first:
            states = WidgetStates()
            states.widgets.extend(w for w in self.states.widgets
                                  if w.WhichOneof("value") not in (
                                      "trigger_value", "json_trigger_value",
                                      "string_trigger_value"))
            if trigger:
                states.widgets.add(id=trigger, trigger_value=True)
            if extra is not None:
                states.widgets.extend(extra.widgets)
            msg.rerun_script.widget_states.CopyFrom(states)
        self.reruns += not first
        await self.ws.send(msg.SerializeToString())

    def set_widget(self, key: str, value, kind: str = "string_array_value") -> None:
        """Change a widget's value in the states this session sends (e.g. w_speed, a
        select_slider: its option's text in a string array). A widget the copied states
        lack (a page sends only the widgets it has mounted) is added with `kind`."""
        if not any(w.id.endswith(f"-{key}") for w in self.states.widgets):
            if key not in self.widget_ids:
                raise KeyError(f"no widget {key!r} seen on the page")
            w = self.states.widgets.add(id=self.widget_ids[key])
            getattr(w, kind).SetInParent()
        for w in self.states.widgets:
            if w.id.endswith(f"-{key}"):
                kind = w.WhichOneof("value")
                if kind == "string_array_value":
                    del w.string_array_value.data[:]
                    w.string_array_value.data.append(str(value))
                elif kind == "double_array_value":
                    del w.double_array_value.data[:]
                    w.double_array_value.data.append(float(value))
                else:
                    setattr(w, kind, value)
                return
        raise KeyError(key)

    async def train(self) -> None:
        if self.train_id is None:
            raise RuntimeError("no Train button seen")
        await self._send(trigger=self.train_id)

    async def rerun(self) -> None:
        """A widget change (see set_widget): one script run with the new states."""
        await self._send()

    def lost(self) -> str | None:
        """Why the websocket ended early, if it did."""
        if self.task is None or not self.task.done() or self.task.cancelled():
            return None
        exc = self.task.exception()
        return repr(exc) if exc else f"closed by the server ({self.ws.close_code})"

    async def close(self) -> None:
        if self.board is not None:
            self.board.close()
        if self.ws is not None:
            await self.ws.close()
        if self.task is not None:
            self.task.cancel()
