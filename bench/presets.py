"""Every scenario's figures with and without its regularizer: validation and held-out test.

    python bench/presets.py [--seeds 0,1,2] [--json PATH]

Validation chose nothing here (fixed epochs unless a preset stops early), so the two
columns differ by sampling only; the test column is the one to quote.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from regdemo.engine import Trainer  # noqa: E402
from regdemo.presets import PRESETS  # noqa: E402


def figures(config, seeds) -> dict[str, float]:
    """Mean final val loss, test loss, test score and gap over the seeds."""
    rows = []
    for seed in seeds:
        t = Trainer(config.replace(seed=seed), threads=1)
        t.fit()
        rows.append(t.summary())
    return {k: statistics.fmean(r[k] for r in rows)
            for k in ("val_loss", "test_loss", "test_score", "gap")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0,1,2", help="seeds to average, like 0,1,2")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write results as JSON")
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    t0 = time.perf_counter()
    out = {}
    print(f"{'preset':18} {'with':>6} {'val':>7} {'test':>7} {'score':>6} {'gap':>7}"
          f"   {'without':>7} {'val':>7} {'test':>7} {'score':>6} {'gap':>7}  verdict")
    for name, preset in PRESETS.items():
        with_reg = figures(preset.config, seeds)
        without = figures(preset.without_regularizer(), seeds) if preset.baseline else None
        out[name] = {"with": with_reg, "without": without}
        cells = " ".join(f"{with_reg[k]:7.3f}" for k in ("val_loss", "test_loss"))
        line = f"{name:18} {preset.regularizer[:6]:>6} {cells} {with_reg['test_score']:6.3f}" \
               f" {with_reg['gap']:7.3f}"
        if without is not None:
            cells = " ".join(f"{without[k]:7.3f}" for k in ("val_loss", "test_loss"))
            better = with_reg["test_loss"] < without["test_loss"]
            line += f"   {'':>7} {cells} {without['test_score']:6.3f} {without['gap']:7.3f}" \
                    f"  {'test loss lower with it' if better else 'NOT lower on test'}"
        print(line, flush=True)
    print(f"seeds {seeds}; {time.perf_counter() - t0:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
