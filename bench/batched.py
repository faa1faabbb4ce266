"""Benchmark: model-epochs/s of `batched.fit_stacked` (one fused stack) against separate runs.

A group of K configs that differ only in seed and L2 (a sweep's shape) trains both ways in
one process; each timed block trains K fresh trainers for a few epochs (building them is
not timed: both paths build the same K trainers). Blocks alternate between the contenders
over several rounds and the median rate of each is compared, so machine noise hits both
alike; read the ratios, not the absolute rates.

    python bench/batched.py [--quick] [--rows overfit,small] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from regdemo.batched import fit_stacked  # noqa: E402
from regdemo.config import Config  # noqa: E402
from regdemo.engine import Trainer  # noqa: E402
from regdemo.presets import PRESETS  # noqa: E402

GOAL = 10.0  # issue goal: ~10x model-epochs/s at K=32 for small nets
HEADLINE = ("small", 32)
SIZES = (1, 8, 32)
L2S = (0.0, 1e-4, 1e-3, 1e-2)  # cycled over the group, with seeds 0..K-1

_OVERFIT = PRESETS["overfit"].config
ROWS: dict[str, tuple[str, Config, int]] = {  # title, config, epochs per timed block
    "overfit": ("overfit preset 2-128-128-2 relu adam full", _OVERFIT, 8),
    "small": ("overfit 2-8-8-2 tanh adam b10",
              _OVERFIT.replace(hidden=(8, 8), activation="tanh", batch_size=10), 20),
    "dropout": ("overfit 2-8-8-2 tanh adam b10 dropout 0.2",
                _OVERFIT.replace(hidden=(8, 8), activation="tanh", batch_size=10,
                                 dropout=0.2), 20),
}


@dataclass(frozen=True)
class Timing:
    """Rounds of interleaved blocks, and how many epochs a block trains (scaled per row)."""

    rounds: int
    epoch_scale: float


FULL = Timing(rounds=7, epoch_scale=1.0)
QUICK = Timing(rounds=3, epoch_scale=0.5)


@dataclass
class Result:
    """One table line: a row at one group size, median model-epochs/s of each path."""

    row: str
    title: str
    k: int
    separate: float
    batched: float
    blocks: dict[str, list[float]]  # every block's rate per path, for re-analysis

    @property
    def ratio(self) -> float:
        return self.batched / self.separate


def group(row: str, k: int, epochs: int) -> list[Config]:
    """K configs of a sweep: seeds and L2 vary, shapes do not."""
    base = ROWS[row][1].replace(epochs=epochs)
    return [base.replace(seed=i, l2=L2S[i % len(L2S)]) for i in range(k)]


def run_separate(configs: list[Config]) -> float:
    """Seconds for K separate Trainer runs (built before the clock starts)."""
    trainers = [Trainer(c) for c in configs]
    t0 = time.perf_counter()
    for trainer in trainers:
        trainer.fit()
    return time.perf_counter() - t0


def run_batched(configs: list[Config]) -> float:
    """Seconds for the same K runs as one stacked model."""
    trainers = [Trainer(c) for c in configs]
    t0 = time.perf_counter()
    fit_stacked(trainers)
    return time.perf_counter() - t0


def warm_up_process() -> None:
    """Pay one-off costs (first Adam, first autograd pass, MKL) before anything is timed."""
    torch.set_num_threads(1)
    for row in ROWS:
        configs = group(row, 2, 3)
        run_separate(configs)
        run_batched(configs)


def bench(rows: list[str], timing: Timing) -> list[Result]:
    """Interleave every (row, K) line's two paths over the rounds; medians per path."""
    lines = [(row, k) for row in rows for k in SIZES]
    rates: dict[tuple[str, int], dict[str, list[float]]] = {
        line: {"separate": [], "batched": []} for line in lines
    }
    runners = {"separate": run_separate, "batched": run_batched}
    for r in range(timing.rounds):
        for row, k in lines:
            epochs = max(2, round(ROWS[row][2] * timing.epoch_scale))
            configs = group(row, k, epochs)
            order = ["separate", "batched"] if r % 2 == 0 else ["batched", "separate"]
            for name in order:
                rates[row, k][name].append(k * epochs / runners[name](configs))
        print(f"  round {r + 1}/{timing.rounds} done", file=sys.stderr, flush=True)
    return [
        Result(row, ROWS[row][0], k, statistics.median(rates[row, k]["separate"]),
               statistics.median(rates[row, k]["batched"]), rates[row, k])
        for row, k in lines
    ]


def table(results: list[Result]) -> str:
    """The results as a markdown table."""
    head = ("row", "K", "separate model-ep/s", "batched model-ep/s", "ratio")
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in results:
        cells = (f"({r.row}) {r.title}", str(r.k), f"{r.separate:,.0f}", f"{r.batched:,.0f}",
                 f"{r.ratio:.1f}x")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict(results: list[Result]) -> str:
    """One line: the headline (small net, K=32) against the issue's ~10x."""
    head = [r for r in results if (r.row, r.k) == HEADLINE]
    if not head:
        return f"headline {HEADLINE} not run"
    ratio = head[0].ratio
    status = "MET" if ratio >= GOAL else "NOT MET"
    sign = ">=" if ratio >= GOAL else "<"
    others = ", ".join(f"{r.row} K={r.k} {r.ratio:.1f}x" for r in results
                       if r.k == max(SIZES) and (r.row, r.k) != HEADLINE)
    tail = f"; at K={max(SIZES)}: {others}" if others else ""
    return f"headline {HEADLINE[0]} K={HEADLINE[1]}: {ratio:.1f}x {sign} {GOAL:g}x: {status}{tail}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer rounds and epochs, a smoke check")
    p.add_argument("--rows", default=",".join(ROWS), help="rows to run, like overfit,small")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write results as JSON")
    args = p.parse_args(argv)
    args.rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in args.rows if r not in ROWS]
    if unknown or not args.rows:
        p.error(f"--rows takes a comma list of {', '.join(ROWS)}; got {unknown or 'none'}")
    return args


def main(argv: list[str] | None = None) -> list[Result]:
    """Run the selected rows, print the table and the verdict, optionally write JSON."""
    args = parse_args(argv)
    timing = QUICK if args.quick else FULL
    t0 = time.perf_counter()
    warm_up_process()
    results = bench(args.rows, timing)
    print(table(results))
    print(verdict(results))
    print(f"[{time.perf_counter() - t0:.0f} s, torch {torch.__version__}, {timing.rounds} "
          "rounds, medians, one thread; building trainers not timed]")
    if args.json:
        payload = {
            "torch": torch.__version__,
            "timing": asdict(timing),
            "goal": GOAL,
            "verdict": verdict(results),
            "results": [{**asdict(r), "ratio": r.ratio} for r in results],
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
