"""`python -m regdemo sweep ...`: sweep one knob over a range and seeds, print and save a table."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from regdemo.presets import DEFAULT_PRESET


def register(sub) -> None:
    """Add the `sweep` parser to the `python -m regdemo` subparsers."""
    from regdemo.sweep import BACKENDS, KNOBS, MAX_POINTS, MAX_SEEDS, MIN_POINTS, MIN_SEEDS

    p = sub.add_parser("sweep", help="sweep one knob over a range and seeds, in parallel")
    p.add_argument("--preset", default=DEFAULT_PRESET, help="scenario name (see `presets`)")
    p.add_argument("--knob", required=True, choices=KNOBS, help="the setting to sweep")
    p.add_argument("--from", dest="start", type=float, required=True, help="first value")
    p.add_argument("--to", dest="stop", type=float, required=True, help="last value")
    p.add_argument("--points", type=int, default=10,
                   help=f"values in the range, {MIN_POINTS}-{MAX_POINTS} (default 10)")
    p.add_argument("--log", action="store_true", help="space the values evenly in log scale")
    p.add_argument("--seeds", type=int, default=1,
                   help=f"runs per value with seeds seed, seed+1, ... ({MIN_SEEDS}-{MAX_SEEDS})")
    p.add_argument("--workers", type=int, help="worker processes (default: one per core)")
    p.add_argument("--epochs", type=int, help="epochs per run (default: the preset's)")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override a setting of the preset, e.g. --set hidden=64-64",
    )
    p.add_argument("--backend", choices=BACKENDS,
                   help="where runs execute (default: ray if REGDEMO_RAY_ADDRESS is set, "
                        "else local processes)")
    p.add_argument("--out", type=Path, help="write one row per run here (.csv)")
    p.add_argument("--quiet", action="store_true", help="no live progress line")
    p.set_defaults(handler=_sweep)


def _spec(args):
    from regdemo.cli_args import UsageError, config_from_args
    from regdemo.sweep import SweepError, SweepSpec

    settings = list(args.set)
    if args.epochs is not None:
        settings.append(f"epochs={args.epochs}")
    base = config_from_args(args.preset, settings)
    try:
        return SweepSpec(base, args.knob, args.start, args.stop, points=args.points,
                         log=args.log, seeds=args.seeds)
    except SweepError as exc:
        raise UsageError(exc.errors[0] if len(exc.errors) == 1 else
                         f"{exc.errors[0]} (and {len(exc.errors) - 1} more)") from exc


def _num(x: float | None, width: int = 8) -> str:
    return f"{'-':>{width}}" if x is None else f"{x:>{width}.4f}"


def _print_table(result) -> None:
    spec = result.spec
    print(f"{spec.knob:>10}  {'runs':>4}  {'train loss':>17}  {'val loss':>17}"
          f"  {'test loss':>17}")
    for p in result.stats:
        mark = "  <- best" if result.best is not None and p.value == result.best.value else ""
        note = f"  ({p.n_diverged} diverged)" if p.n_diverged else ""
        value = str(p.value) if isinstance(p.value, int) else f"{p.value:.4g}"
        print(f"{value:>10}  {p.n_runs:>4}  {_num(p.train_loss_mean)} ± {_num(p.train_loss_std, 6)}"
              f"  {_num(p.val_loss_mean)} ± {_num(p.val_loss_std, 6)}"
              f"  {_num(p.test_loss_mean)} ± {_num(p.test_loss_std, 6)}{mark}{note}")
    if result.best is not None:
        b = result.best
        print(f"best {spec.knob} = {b.value if isinstance(b.value, int) else f'{b.value:.4g}'}"
              f" (mean val loss {b.val_loss_mean:.4f} over {b.n_runs} seed"
              f"{'s' if b.n_runs != 1 else ''}); chosen on validation, its test loss "
              f"{_num(b.test_loss_mean, 0).strip()} is the honest estimate")
    else:
        print("best: none (every value had a diverged run)")


def _sweep(args) -> int:
    from regdemo.cli_args import UsageError

    if args.out and args.out.suffix != ".csv":
        raise UsageError(f"--out must end in .csv; got {args.out.name!r}")
    from regdemo.sweep import MAX_POINTS, MAX_SEEDS

    most = MAX_POINTS * MAX_SEEDS  # a sweep's most runs: more workers would only idle
    if args.workers is not None and not 1 <= args.workers <= most:
        raise UsageError(f"--workers must be in [1, {most}] (a sweep has at most {most} runs);"
                         f" got {args.workers}")
    spec = _spec(args)
    from regdemo.sweep import SweepError, make_executor, run_sweep

    try:
        executor = make_executor(args.backend, args.workers)
    except SweepError as exc:
        raise UsageError(exc.errors[0]) from exc
    t0 = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if not args.quiet:
            print(f"\rsweep {args.knob}: {done}/{total} runs  {time.perf_counter() - t0:5.1f} s",
                  end="", file=sys.stderr, flush=True)

    cancel = threading.Event()
    try:
        with executor:
            result = run_sweep(spec, executor, progress=progress, cancel=cancel)
    except KeyboardInterrupt:
        print("\nsweep cancelled", file=sys.stderr)
        return 130
    if not args.quiet:
        print(file=sys.stderr)
    _print_table(result)
    print(f"{len(result.rows)} runs on {result.backend} in {result.wall_time:.1f} s")
    if args.out:
        result.to_csv(args.out)
        print(f"results written to {args.out}")
    return 0
