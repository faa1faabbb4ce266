"""The command line's shared pieces: its usage error, parser, and --preset/--set reading."""

from __future__ import annotations

import argparse

from regdemo.config import Config
from regdemo.presets import PRESETS


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing usage and exiting."""

    def error(self, message):  # argparse would print usage + exit; we want one clear line
        raise UsageError(message)


def config_from_args(preset: str, settings: list[str]) -> Config:
    """The preset's config with `key=value` overrides; UsageError on anything bad."""
    if preset not in PRESETS:
        raise UsageError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    base = PRESETS[preset].config
    query = {}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set takes KEY=VALUE; got {item!r}")
        if key not in base.to_query():
            raise UsageError(f"unknown setting {key!r}")
        query[key] = value
    config, problems = Config.from_query(query, base=base)
    if problems:
        raise UsageError(problems[0])
    return config
