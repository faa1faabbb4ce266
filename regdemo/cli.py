"""`python -m regdemo train ...`: headless runs with a live progress line and a summary."""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import sys
import time
from pathlib import Path

from regdemo.cli_args import Parser, UsageError, config_from_args
from regdemo.config import Config, ConfigError
from regdemo.presets import DEFAULT_PRESET, PRESETS
from regdemo.store import DIVERGED, FINISHED, STOPPED, RunStore, StoreError


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m regdemo", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train one run and print its summary")
    train.add_argument("--preset", default=DEFAULT_PRESET, help="scenario name (see `presets`)")
    train.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override a setting, e.g. --set dropout=0.5 --set hidden=64-64",
    )
    train.add_argument("--data", type=Path, metavar="FILE.csv",
                       help="train on your own CSV file (a header line, then rows)")
    train.add_argument("--target", help="with --data: the column to predict (default: last)")
    train.add_argument("--task", choices=("classification", "regression"),
                       help="with --data: override the detected task")
    train.add_argument("--out", type=Path, help="write the history here (.csv or .json)")
    train.add_argument("--quiet", action="store_true", help="no live progress line")
    train.add_argument("--no-save", action="store_true",
                       help="do not save the run (by default it goes to the runs store, "
                            "listed by `runs list` and on the page's Saved runs tab)")
    sub.add_parser("presets", help="list the scenarios")
    # Commands that live beside the code they drive: each adds its parser with
    # `set_defaults(handler=fn)`, fn(args) -> exit code, raising UsageError on bad input.
    from regdemo import cli_code, cli_runs, cli_sweep

    cli_code.register(sub)
    cli_runs.register(sub)
    cli_sweep.register(sub)
    return parser


def _write_history(path: Path, trainer) -> None:
    rows = [r.as_dict() for r in trainer.history]
    if path.suffix == ".json":
        payload = {
            "config": trainer.config.to_query(),
            "summary": trainer.summary(),
            "events": [e.label for e in trainer.events],
            "history": rows,
        }
        path.write_text(json.dumps(payload, indent=1))
        return
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["epoch"])
        writer.writeheader()
        writer.writerows(rows)


class _Saver:
    """Writes a headless run to the runs store as it trains: a killed run keeps its epochs."""

    INTERVAL = 0.5  # seconds between writes: one transaction, not one per epoch

    def __init__(self, store, run_id: str):
        self.store, self.run_id = store, run_id
        self.written, self.events, self.last = 0, 0, 0.0

    @classmethod
    def open(cls, config: Config):
        """A saver on the default store, or None (with a note) if it cannot be opened."""
        try:
            store = RunStore()
            return cls(store, store.create(config, origin="cli"))
        except StoreError as exc:
            print(f"note: the run is not saved ({exc})", file=sys.stderr)
            return None

    def write(self, trainer, now: float, force: bool = False) -> None:
        if self.store is None or not force and now - self.last < self.INTERVAL:
            return
        self.last = now
        try:
            self.store.append(self.run_id, trainer.history[self.written:],
                              trainer.events[self.events:])
        except StoreError as exc:
            print(f"\nnote: saving stopped ({exc})", file=sys.stderr)
            self.store = None
            return
        self.written, self.events = len(trainer.history), len(trainer.events)

    def finish(self, trainer, status: str) -> None:
        self.write(trainer, time.perf_counter(), force=True)
        if self.store is not None:
            with contextlib.suppress(StoreError):
                self.store.finish(self.run_id, status, trainer.summary())
                self.store.close()


def _train(args) -> int:
    if (args.target or args.task) and args.data is None:
        raise UsageError("--target and --task go with --data")
    config = config_from_args(args.preset, args.set, args.data, args.target, args.task)
    if args.out and args.out.suffix not in (".csv", ".json"):
        raise UsageError(f"--out must end in .csv or .json; got {args.out.name!r}")
    from regdemo.engine import Trainer  # torch loads only once the arguments are good

    trainer = Trainer(config, threads=1)  # tiny nets: one thread is the fastest
    saver = None if args.no_save else _Saver.open(config)
    last_print = 0.0
    try:
        while (record := trainer.step()) is not None:
            now = time.perf_counter()
            if saver is not None:
                saver.write(trainer, now)
            if not args.quiet and now - last_print > 0.2:
                print(
                    f"\repoch {record.epoch:>6}/{config.epochs}  train {record.train_loss:.4f}"
                    f"  val {record.val_loss:.4f}  gap {record.gap:+.4f}",
                    end="", file=sys.stderr, flush=True,
                )
                last_print = now
    except KeyboardInterrupt:
        if saver is not None:
            saver.finish(trainer, STOPPED)
        print("\ninterrupted" + (f"; saved as run {saver.run_id}" if saver else ""),
              file=sys.stderr)
        return 130
    if saver is not None:
        saver.finish(trainer, DIVERGED if trainer.diverged else FINISHED)
    if not args.quiet:
        print(file=sys.stderr)
    s = trainer.summary()
    if s["epochs"]:
        print(
            f"train loss {s['train_loss']:.4f}  val loss {s['val_loss']:.4f}  gap {s['gap']:+.4f}"
            f"  val score {s['val_score']:.3f}  best epoch {s['best_epoch']}"
            f" (val loss {s['best_val_loss']:.4f})"
        )
        print(f"test loss {s['test_loss']:.4f}  test score {s['test_score']:.3f}"
              "  (held out: nothing trained or chose on it)")
    print(f"stopped: {trainer.stop_reason}")
    if saver is not None:
        print(f"saved as run {saver.run_id} (see python -m regdemo runs list)")
    if args.out:
        _write_history(args.out, trainer)
        print(f"history written to {args.out}")
    return 1 if trainer.diverged else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (2 for bad arguments, 1 for a diverged run)."""
    try:
        args = _parser().parse_args(argv)
        if args.command == "presets":
            for name, preset in PRESETS.items():
                print(f"{name:16} {preset.title}")
            return 0
        if args.command == "train":
            return _train(args)
        return args.handler(args)
    except (UsageError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
