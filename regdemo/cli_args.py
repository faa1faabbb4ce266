"""The command line's shared pieces: its usage error, parser, and --preset/--set reading."""

from __future__ import annotations

import argparse
from pathlib import Path

from regdemo.config import Config, data_settings, encode
from regdemo.presets import PRESETS


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing usage and exiting."""

    def error(self, message):  # argparse would print usage + exit; we want one clear line
        raise UsageError(message)


def config_from_args(preset: str, settings: list[str], data: Path | None = None,
                     target: str | None = None, task: str | None = None) -> Config:
    """The preset's config with `key=value` overrides; UsageError on anything bad. With
    `data` (a CSV file), the run trains on that file, kept in the runs store."""
    if preset not in PRESETS:
        raise UsageError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    base = PRESETS[preset].config
    query = {}
    if data is not None:
        query = {k: encode(k, v) for k, v in data_settings(upload(data, target, task)).items()}
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


def upload(path: Path, target: str | None = None, task: str | None = None) -> str:
    """Read a CSV file into the runs store; its dataset name (upload:<hash>)."""
    from regdemo.store import RunStore, StoreError
    from regdemo.uploads import MAX_BYTES, UploadError, parse_csv

    try:
        if path.stat().st_size > MAX_BYTES:  # not read into memory at all
            raise UploadError(f"the file is {path.stat().st_size:,} bytes; at most "
                              f"{MAX_BYTES:,} are read")
        table = parse_csv(path.read_bytes(), target, task)
    except UploadError as exc:
        raise UsageError(f"cannot use {path.name}: {exc}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    with RunStore() as store:
        try:
            store.save_dataset(table)
        except StoreError as exc:
            raise UsageError(f"cannot keep {path.name} in the runs store: {exc}") from None
        if not store.persistent:  # worker processes could not read it back
            raise UsageError(store.problem or "the runs store is not usable")
    return table.dataset
