"""The run as a standalone script: it runs without regdemo and ends where the lab ends."""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from regdemo.cli import main
from regdemo.codegen import abridged, script_for, starting_config
from regdemo.engine import Trainer
from regdemo.presets import PRESETS
from regdemo.records import Event

ROOT = Path(__file__).resolve().parent.parent
BASE = PRESETS["overfit"].config.replace(epochs=40)
CASES = {
    "l1_adam": PRESETS["l1_features"].config.replace(epochs=40, l1=0.003),
    "l2_sgd": BASE.replace(l2=0.3, optimizer="sgd", lr=0.1),
    "adamw_decay": BASE.replace(optimizer="adamw", weight_decay=3.0),
    "dropout_minibatch": BASE.replace(dropout=0.5, batch_size=16),
    "jitter": BASE.replace(augment="jitter", augment_strength=1.0),
    "label_smoothing": BASE.replace(label_smoothing=0.1),
    "early_stop_restore": BASE.replace(early_stopping=True, patience=5, epochs=300, lr=0.02),
    "live_l2": BASE.replace(epochs=50),
}
# What takes each case's regularizer away (the live case: the same run without the change).
WITHOUT = {"l1_adam": {"l1": 0.0}, "l2_sgd": {"l2": 0.0}, "adamw_decay": {"weight_decay": 0.0},
           "dropout_minibatch": {"dropout": 0.0}, "jitter": {"augment": "none"},
           "label_smoothing": {"label_smoothing": 0.0},
           "early_stop_restore": {"early_stopping": False}, "live_l2": {}}
LIVE_AT, LIVE_L2 = 20, 0.05
ROW = re.compile(r"^(\d+), (\S+), (\S+)$", re.M)
FINAL = re.compile(r"^final: train_loss (\S+), val_loss (\S+), .*\((.*)\)$", re.M)


def _lab(name: str) -> Trainer:
    """The lab's eager path (the fused one differs within float rounding)."""
    trainer = Trainer(CASES[name], use_fused=False)
    if name == "live_l2":
        trainer.fit(LIVE_AT)
        trainer.set_live(l2=LIVE_L2)
    trainer.fit()
    return trainer


def _clean_env() -> dict:
    """No PYTHONPATH, so regdemo cannot be imported; one thread, as the CPU is shared."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {**env, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """name -> (lab trainer, script text, script output, the lab's summary without the
    regularizer). The scripts run one after another
    in one fresh interpreter outside the repository (torch loads once: seconds saved)."""
    folder = tmp_path_factory.mktemp("scripts")
    trainers, texts, paths, plain = {}, {}, [], {}
    for name in CASES:
        trainers[name] = _lab(name)
        without = Trainer(CASES[name].replace(**WITHOUT[name]), use_fused=False)
        without.fit()
        plain[name] = without.summary()
        texts[name] = script_for(CASES[name], trainers[name].events)
        path = folder / f"{name}.py"
        path.write_text(texts[name])
        paths.append(str(path))
    driver = ("import runpy, sys\n"
              "for path in sys.argv[1:]:\n"
              "    print('=== ' + path, flush=True)\n"
              "    runpy.run_path(path, run_name='__main__')\n")
    done = subprocess.run([sys.executable, "-c", driver, *paths], capture_output=True,
                          text=True, cwd=folder, env=_clean_env(), timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    outputs = dict(zip(CASES, done.stdout.split("=== ")[1:]))
    return {name: (trainers[name], texts[name], outputs[name], plain[name]) for name in CASES}


@pytest.mark.parametrize("name", list(CASES))
def test_script_ends_where_the_lab_ends(runs, name):
    """Final train and val loss within 1% of Trainer.summary() (the restored figures after
    an early stop), and one printed row per trained epoch. Without its regularizer the lab's
    run ends more than 3% away: the 1% agreement shows the script does what it does."""
    trainer, _, output, plain = runs[name]
    summary = trainer.summary()
    final = FINAL.search(output)
    assert final, output[-500:]
    train, val = float(final[1]), float(final[2])
    assert train == pytest.approx(summary["train_loss"], rel=0.01)
    assert val == pytest.approx(summary["val_loss"], rel=0.01)
    rows = ROW.findall(output)
    assert [int(r[0]) for r in rows] == list(range(1, trainer.epoch + 1))
    assert max(abs(plain[k] / summary[k] - 1) for k in ("train_loss", "val_loss")) > 0.03


def test_script_never_imports_regdemo(runs):
    """Only the standard library, numpy and torch; never regdemo (nor scikit-learn)."""
    for _, text, _, _ in runs.values():
        tree = ast.parse(text)
        imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                    if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom)}
        assert imported == {"base64", "math", "zlib", "numpy", "torch"}
        assert "regdemo" not in text.split('"""', 2)[2]  # the docstring may name the lab


def test_early_stop_restores_the_best_weights(runs):
    """The script stops at the lab's epoch and prints the best epoch's figures, not the last."""
    trainer, _, output, _ = runs["early_stop_restore"]
    assert trainer.restored_epoch is not None and trainer.epoch < CASES["early_stop_restore"].epochs
    final = FINAL.search(output)
    assert f"weights of epoch {trainer.restored_epoch} restored" in final[3]
    last = ROW.findall(output)[-1]
    assert float(last[2]) != pytest.approx(float(final[2]), rel=1e-3)  # restored, not last


def test_live_change_is_scheduled(runs):
    """The change goes in as CHANGES, applied after the epoch it was made at."""
    trainer, text, _, _ = runs["live_l2"]
    assert trainer.events == [Event(LIVE_AT, "l2", 0.0, LIVE_L2)]
    assert f'CHANGES = {{\n    {LIVE_AT}: {{"l2": {LIVE_L2}}},\n}}' in text


def test_starting_config_undoes_the_live_changes(runs):
    """The page holds a run's current settings: starting_config gives the ones it began
    with, and the current ones with the changes are refused with a pointer to it."""
    trainer, _, _, _ = runs["live_l2"]
    assert trainer.config.l2 == LIVE_L2
    assert starting_config(trainer.config, trainer.events) == CASES["live_l2"]
    with pytest.raises(ValueError, match="starting_config"):
        script_for(trainer.config, trainer.events)


def test_script_passes_ruff(tmp_path):
    """A script using every part (residual, stochastic depth, batch norm, extra inputs,
    mixup, all penalties, early stopping, live changes) passes the project's ruff config."""
    config = BASE.replace(residual=True, hidden=(32, 32), stochastic_depth=0.5, dropout=0.2,
                          batch_norm=True, batch_size=16, l1=0.001, l2=0.01, max_norm=2.0,
                          weight_decay=0.1, optimizer="adamw", label_smoothing=0.1,
                          augment="mixup", early_stopping=True, features=("x1sq", "x1x2"))
    events = [Event(0, "lr", 0.005, 0.01), Event(10, "dropout", 0.2, 0.0),
              Event(10, "stochastic_depth", 0.5, 0.1), Event(20, "augment", "mixup", "jitter"),
              Event(30, "epochs", 40, 60)]
    digits = PRESETS["digits_shift"].config.replace(arch="cnn", augment="rotate", optimizer="sgd",
                                                     l1=0.01)
    sine = PRESETS["sine_wiggle"].config
    paths = []
    for i, (c, ev) in enumerate([(config, events), (digits, []), (sine, [])]):
        paths.append(tmp_path / f"script_{i}.py")
        paths[-1].write_text(script_for(c, ev))
    ruff = [sys.executable, "-m", "ruff", "check", "--no-cache", "--config",
            str(ROOT / "pyproject.toml"), *map(str, paths)]
    done = subprocess.run(ruff, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout
    text = paths[0].read_text()
    assert "class DropPath" in text and "def l1_step" in text and "N_CLASSES = 2" in text


def test_only_what_the_run_uses_is_written():
    """A run without regularizers gets no dropout, penalty or early-stopping code."""
    text = script_for(BASE)
    for absent in ("SeededDropout", "add_l2_grad", "l1_step", "max_norm", "EarlyStopping",
                   "def augment", "apply_changes"):
        assert absent not in text, absent
    assert "CHANGES: dict[int, dict] = {}" in text and "Regularization: none." in text


def test_abridged_cuts_long_data_only():
    """The page's view keeps the code whole and cuts each long data block to two lines."""
    text = script_for(PRESETS["l1_features"].config)
    short = abridged(text)
    assert len(short) < len(text) / 5
    assert "more lines of data (in the downloaded file)" in short
    code = lambda script: script.split("# " + "-" * 65 + " data")[0]  # noqa: E731
    assert code(short) == code(text) and len(code(text)) > 5000


@pytest.mark.parametrize("events, message", [
    ([Event(5, "hidden", (128, 128), (64,))], "'hidden' is not a live knob"),
    ([Event(5, "l2", 0.3, 0.0)], "starts from 0.3, but the settings say 0.0"),
])
def test_runs_a_script_cannot_express_get_a_clear_error(events, message):
    """Changes no run can have made are refused with a message naming the problem."""
    with pytest.raises(ValueError, match=re.escape(message)):
        script_for(BASE, events)


def test_cli_prints_a_script():
    """`python -m regdemo code --preset overfit` exits 0 and prints Python."""
    done = subprocess.run([sys.executable, "-m", "regdemo", "code", "--preset", "overfit"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    ast.parse(done.stdout)
    assert "def main()" in done.stdout and '"epochs": 600' in done.stdout


def test_cli_writes_the_file(tmp_path, capsys):
    """--out writes the script and says how to run it; a non-.py name is refused."""
    out = tmp_path / "run.py"
    assert main(["code", "--preset", "l2", "--set", "epochs=7", "--out", str(out)]) == 0
    assert '"l2": 0.01' in out.read_text() and "run it with" in capsys.readouterr().out
    assert main(["code", "--out", str(tmp_path / "run.txt")]) == 2
    assert "--out must end in .py" in capsys.readouterr().err


def test_cli_bad_setting_is_one_line_exit_2(capsys):
    """A bad --set: exit 2 and one error line, no traceback."""
    assert main(["code", "--set", "dropout=1.5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "'dropout' must be a float" in err
    assert len(err.splitlines()) == 1


def test_code_tab_shows_and_offers_the_script():
    """The page's Code tab: the script in a code block and a download button."""
    from streamlit.testing.v1 import AppTest

    def page():
        from regdemo.presets import PRESETS
        from regdemo.ui.code_panel import code_tab

        code_tab(None, PRESETS["dropout"].config)

    at = AppTest.from_function(page).run(timeout=60)
    assert not at.exception
    assert at.code[0].language == "python"
    assert "class SeededDropout" in at.code[0].value
    assert at.get("download_button")


def test_code_tab_writes_the_runs_start_and_changes():
    """With a run: its starting settings (undone from the current ones) and its changes."""
    from streamlit.testing.v1 import AppTest

    def page():
        from types import SimpleNamespace

        from regdemo.presets import PRESETS
        from regdemo.records import Event
        from regdemo.ui.code_panel import code_tab

        current = PRESETS["l2"].config.replace(l2=0.0)  # after a live change of l2 to 0
        snap = SimpleNamespace(config=current, events=[Event(12, "l2", 0.01, 0.0)], split=None)
        code_tab(SimpleNamespace(snapshot=lambda since=None: snap), current)

    at = AppTest.from_function(page).run(timeout=60)
    assert not at.exception
    assert '"l2": 0.01,' in at.code[0].value and '12: {"l2": 0.0},' in at.code[0].value
