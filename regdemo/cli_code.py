"""`python -m regdemo code ...`: a run's settings as one standalone PyTorch script."""

from __future__ import annotations

import sys
from pathlib import Path

from regdemo.presets import DEFAULT_PRESET


def register(sub) -> None:
    """Add the `code` parser to the `python -m regdemo` subparsers."""
    p = sub.add_parser("code", help="print a run as a standalone PyTorch script")
    p.add_argument("--preset", default=DEFAULT_PRESET, help="scenario name (see `presets`)")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override a setting, e.g. --set dropout=0.5 --set hidden=64-64",
    )
    p.add_argument("--out", type=Path, help="write the script here (.py) instead of printing it")
    p.set_defaults(handler=_code)


def _code(args) -> int:
    from regdemo.cli_args import UsageError, config_from_args
    from regdemo.codegen import script_for

    config = config_from_args(args.preset, args.set)
    if args.out and args.out.suffix != ".py":
        raise UsageError(f"--out must end in .py; got {args.out.name!r}")
    try:
        script = script_for(config)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if args.out is None:
        sys.stdout.write(script)
        return 0
    args.out.write_text(script)
    print(f"script written to {args.out} ({len(script.splitlines())} lines); "
          f"run it with: python {args.out}")
    return 0
