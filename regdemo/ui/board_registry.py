"""Which runs each page's live board shows (by an unguessable token), and the feed's pace.

The page publishes its board on every script run; the feed route reads it without any
Streamlit call. Boards that nobody polled or published for a while are dropped.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from dataclasses import dataclass, field

IDLE_SECONDS = 900.0  # a board unseen this long is dropped (its page is long gone)
MIN_INTERVAL, MAX_INTERVAL = 0.25, 2.0  # seconds between one board's polls
FEED_BUDGET = 0.15  # share of one core that all boards' polls may take together
ACTIVE_SECONDS = 5.0  # a board polled within this window counts as active
# The browser's owner token: a cookie the board sets (never in a link), read by the page
# when its session opens and by the feed on each poll.
OWNER_COOKIE = "regdemo_owner"
OWNER = re.compile(r"[A-Za-z0-9_-]{16,64}")


@dataclass
class Board:
    """One page's board: the runs it shows (A, and B when forked) and its runner."""

    runner: object
    run_ids: tuple[int | None, int | None] = (None, None)
    seen: float = field(default_factory=time.monotonic)
    owner: str | None = None  # the browser's owner token, as its polls carry it
    preview: object = None  # before Train: the Config whose data the board shows


class Registry:
    """Token -> Board, for every open page of this server process."""

    def __init__(self):
        self._boards: dict[str, Board] = {}
        self._lock = threading.Lock()
        self._swept = time.monotonic()

    @staticmethod
    def new_token() -> str:
        return secrets.token_urlsafe(18)

    def publish(self, token: str, runner, run_ids, preview=None) -> None:
        """The page's current runs for its board (called on every script run), and the
        settings whose data it shows while it has no run."""
        now = time.monotonic()
        with self._lock:
            known = self._boards.get(token)
            self._boards[token] = Board(runner, tuple(run_ids), now,
                                        known.owner if known else None, preview)
            if now - self._swept > 60:
                self._swept = now
                for key in [k for k, b in self._boards.items() if now - b.seen > IDLE_SECONDS]:
                    del self._boards[key]

    def get(self, token: str) -> Board | None:
        with self._lock:
            board = self._boards.get(token)
            if board is not None:
                board.seen = time.monotonic()
            return board

    def drop(self, token: str) -> None:
        with self._lock:
            self._boards.pop(token, None)


class Pace:
    """How often boards poll: as often as MIN_INTERVAL allows while every active board's
    polls together stay within FEED_BUDGET of one core; slower (up to MAX_INTERVAL) when
    many boards or costly replies would take more."""

    def __init__(self):
        self._lock = threading.Lock()
        self._cost = 0.001  # seconds per reply (moving average)
        self._polls: dict[str, float] = {}  # token -> last poll

    def add_cost(self, seconds: float) -> None:
        """One reply's whole cost (building and encoding it), into the moving average."""
        with self._lock:
            self._cost += 0.05 * (seconds - self._cost)

    def record(self, token: str, seconds: float) -> float:
        """Note one reply's cost; returns the interval this board should wait next."""
        self.add_cost(seconds)
        return self.interval(token)

    def interval(self, token: str) -> float:
        """The interval this board should wait before its next poll (and note the poll)."""
        now = time.monotonic()
        with self._lock:
            self._polls[token] = now
            if len(self._polls) > 64 and len(self._polls) % 64 == 0:
                self._polls = {k: t for k, t in self._polls.items()
                               if now - t < ACTIVE_SECONDS}
            active = sum(1 for t in self._polls.values() if now - t < ACTIVE_SECONDS)
            wanted = active * self._cost / FEED_BUDGET
        return min(MAX_INTERVAL, max(MIN_INTERVAL, wanted))


REGISTRY = Registry()
PACE = Pace()
