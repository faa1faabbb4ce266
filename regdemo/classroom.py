"""Classroom links: which lesson, which controls to hide or lock, projector mode, A/B.

Like TensorFlow Playground's `_hide` flags, a teacher's link can take controls away so a
class looks at one thing. These flags sit in the URL beside the Config's own fields:

    ?preset=dropout&lesson=dropout&hide=l1,l2,arch&lock=dataset,hidden&projector=1&ab=1

Parsing never raises: unknown names and bad values are dropped with a message, like
`Config.from_query`. Hiding is for focus, not security (a student can edit the link).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from regdemo.config import Config

# Besides the Config's fields, a link may hide these page parts.
PAGE_PARTS = ("preset", "lesson", "speed", "fork", "tabs")
CONTROL_NAMES = tuple(f.name for f in dataclasses.fields(Config))
HIDEABLE = CONTROL_NAMES + PAGE_PARTS
FLAGS = ("lesson", "hide", "lock", "projector", "ab", "speed")
# The pace of a run in epochs per second ("max": as fast as the server allows).
SPEEDS = (5, 10, 20, 50, 100, 200, 500, "max")
DEFAULT_SPEED = 50  # the default scenario's 400 epochs take 8 s: time to turn a knob mid-run
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")
_MAX_NAMES = 64  # more names than there are controls is garbage


@dataclass(frozen=True)
class Classroom:
    """How a link sets the page up for a class."""

    lesson: str | None = None  # a key of lessons.LESSONS
    hide: frozenset[str] = frozenset()  # controls (Config fields) and page parts not shown
    lock: frozenset[str] = frozenset()  # controls shown but not changeable
    projector: bool = False  # large type, thick lines, fewer panels
    ab: bool = False  # open two runs side by side: without and with the preset's regularizer
    speed: int | str = DEFAULT_SPEED  # one of SPEEDS

    def to_query(self) -> dict[str, str]:
        """The flags as URL parameters (only those that are set)."""
        out = {}
        if self.lesson:
            out["lesson"] = self.lesson
        if self.hide:
            out["hide"] = ",".join(sorted(self.hide))
        if self.lock:
            out["lock"] = ",".join(sorted(self.lock))
        if self.projector:
            out["projector"] = "1"
        if self.ab:
            out["ab"] = "1"
        if self.speed != DEFAULT_SPEED:
            out["speed"] = str(self.speed)
        return out


def _last(raw: Any) -> str:
    if isinstance(raw, (list, tuple)):  # repeated keys: the last one wins, as for Config
        raw = raw[-1] if raw else ""
    return str(raw)


def _names(raw: Any, allowed: tuple[str, ...], flag: str, problems: list[str]) -> frozenset:
    parts = [p.strip() for p in _last(raw).split(",") if p.strip()]
    if len(parts) > _MAX_NAMES:
        problems.append(f"'{flag}' lists {len(parts)} names; kept the first {_MAX_NAMES}.")
        parts = parts[:_MAX_NAMES]
    unknown = [p for p in parts if p not in allowed]
    if unknown:
        shown = ", ".join(repr(u[:30]) for u in unknown[:5])
        problems.append(f"'{flag}' names unknown controls: {shown}.")
    return frozenset(p for p in parts if p in allowed)


def _flag(raw: Any, flag: str, problems: list[str]) -> bool:
    text = _last(raw).strip().lower()
    if text in _TRUE:
        return True
    if text not in _FALSE:
        problems.append(f"'{flag}' must be 1 or 0; got {text[:30]!r}.")
    return False


def from_query(query: Mapping[str, Any], lessons: Mapping[str, Any]) -> tuple[Classroom,
                                                                            list[str]]:
    """The classroom flags of a link and the problems found; never raises."""
    problems: list[str] = []
    lesson = None
    if "lesson" in query:
        key = _last(query["lesson"])
        if key in lessons:
            lesson = key
        elif key:
            problems.append(f"unknown lesson {key[:40]!r}.")
    hide = _names(query.get("hide", ""), HIDEABLE, "hide", problems)
    lock = _names(query.get("lock", ""), CONTROL_NAMES, "lock", problems) - hide
    projector = _flag(query.get("projector", "0"), "projector", problems)
    ab = _flag(query.get("ab", "0"), "ab", problems)
    speed = _speed(query.get("speed", str(DEFAULT_SPEED)), problems)
    return Classroom(lesson, hide, lock, projector, ab, speed), problems


def _speed(raw: Any, problems: list[str]) -> int | str:
    text = _last(raw).strip().lower()
    for value in SPEEDS:
        if text == str(value):
            return value
    problems.append(f"'speed' must be one of {', '.join(map(str, SPEEDS))}; got {text[:30]!r}.")
    return DEFAULT_SPEED


def link(base_url: str, preset: str, config: Config, classroom: Classroom) -> str:
    """A full link: the page's address, the preset, every Config field and the flags."""
    query = {"preset": preset, **config.to_query(), **classroom.to_query()}
    return f"{base_url.split('?')[0]}?{urlencode(query)}"
