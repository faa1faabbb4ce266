"""Same link, same curves on AVX2 and AVX-512 CPUs: the math libraries' paths are pinned."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from regdemo import cpu_paths

ROOT = Path(__file__).resolve().parent.parent
AVX2 = cpu_paths.has_avx2()

# The stochastic-depth lesson's two runs (eager residual net; its figure once moved with
# the CPU) and the overfit lesson's (the fused kernel): val loss of every epoch.
_CURVES = """
import json
import regdemo
from regdemo.engine import Trainer
from regdemo.lessons import LESSONS
import torch
out = {"capability": torch.backends.cpu.get_cpu_capability()}
for key in ("stochastic_depth", "overfit_capacity"):
    lesson = LESSONS[key]
    for i, step in enumerate(lesson.steps):
        if step.restart is not None or i == 0:
            t = Trainer(lesson.config_for(step), threads=1)
            t.fit()
            out[f"{key}-{i}"] = [r.val_loss for r in t.history]
print(json.dumps(out))
"""


def _curves(**env) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in cpu_paths.PINS}
    result = subprocess.run([sys.executable, "-c", _CURVES], cwd=ROOT, env={**clean, **env},
                            capture_output=True, text=True, timeout=600, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_pins_fill_only_what_is_not_set_and_only_on_avx2_cpus():
    env = {"ATEN_CPU_CAPABILITY": "default"}
    added = cpu_paths.pin(env, avx2=True)
    assert env["ATEN_CPU_CAPABILITY"] == "default"  # the user's choice wins
    assert added["MKL_CBWR"] == "AVX2" and "ATEN_CPU_CAPABILITY" not in added
    older = {}
    assert cpu_paths.pin(older, avx2=False) == {} and older == {}


@pytest.mark.skipif(not AVX2, reason="the pins apply to CPUs with AVX2")
def test_a_lesson_gives_the_same_curves_with_the_cpu_forced_down_to_avx2():
    """An AVX2 machine, emulated (MKL and ATen limited to AVX2), draws the very curves this
    machine draws by default: the lesson's figures cannot move with the CPU."""
    default = _curves()
    forced = _curves(MKL_ENABLE_INSTRUCTIONS="AVX2", ATEN_CPU_CAPABILITY="avx2")
    assert default.pop("capability") == forced.pop("capability") == "AVX2"
    assert default.keys() == forced.keys() and len(default) >= 3
    for name in default:
        assert forced[name] == default[name], name


_TWICE = """
import json
from regdemo.engine import Trainer
from regdemo.presets import PRESETS
runs = []
for _ in range(2):
    t = Trainer(PRESETS["overfit"].config.replace(epochs=150), threads=1)  # as workers
    t.fit()
    runs.append([r.val_loss for r in t.history])
print(json.dumps(runs))
"""


def test_a_processs_first_run_draws_the_same_curve_as_its_second():
    """The fused kernel's BLAS ran on two threads until its first epoch had loaded it, so
    the first run of every process (a worker's, a notebook's) ended elsewhere (val loss
    1.125 against 1.138 for the overfit scenario)."""
    clean = {k: v for k, v in os.environ.items() if k not in cpu_paths.PINS}
    result = subprocess.run([sys.executable, "-c", _TWICE], cwd=ROOT, env=clean,
                            capture_output=True, text=True, timeout=600, check=True)
    first, second = json.loads(result.stdout.strip().splitlines()[-1])
    assert first == second
