"""The command line: exit codes, one-line errors, written histories."""

import csv
import json
import subprocess
import sys

import pytest

from regdemo.cli import main


def test_train_writes_csv_and_prints_summary(tmp_path, capsys):
    """A run prints its summary and writes one CSV row per epoch."""
    out = tmp_path / "run.csv"
    code = main(["train", "--preset", "overfit", "--set", "epochs=12", "--set", "hidden=8-8",
                 "--out", str(out), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "gap" in printed and "best epoch" in printed
    assert "finished: reached 12 epochs" in printed
    rows = list(csv.DictReader(out.open()))
    assert [int(r["epoch"]) for r in rows] == list(range(1, 13))
    assert float(rows[-1]["val_loss"]) > 0


def test_train_writes_json_with_config_and_events(tmp_path):
    """JSON output carries the config (as query params), summary and history."""
    out = tmp_path / "run.json"
    assert main(["train", "--set", "epochs=5", "--out", str(out), "--quiet"]) == 0
    data = json.loads(out.read_text())
    assert data["config"]["epochs"] == "5"
    assert len(data["history"]) == 5 and data["summary"]["epochs"] == 5


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--set", "dropout=1.5"], "'dropout' must be a float in [0, 0.95]; got 1.5."),
        (["train", "--preset", "nope"], "unknown preset 'nope'"),
        (["train", "--set", "colour=red"], "unknown setting 'colour'"),
        (["train", "--set", "dropout"], "--set takes KEY=VALUE"),
        (["train", "--out", "run.txt"], "--out must end in .csv or .json"),
        (["train", "--set", "augment=shift"], "'augment' 'shift' does not fit"),
        (["fly"], "invalid choice"),
        ([], "required"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(argv, message, capsys):
    """Bad input: exit code 2 and a single clear error line, no traceback."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err
    assert len(err.splitlines()) == 1


def test_diverged_run_exits_1_with_reason(capsys):
    """A diverging run ends with its reason and exit code 1."""
    code = main(["train", "--preset", "sine_wiggle", "--set", "optimizer=sgd",
                 "--set", "lr=10", "--quiet"])
    assert code == 1
    assert "diverged at epoch" in capsys.readouterr().out


def test_module_entry_point_runs():
    """`python -m regdemo presets` lists the scenarios and exits 0."""
    result = subprocess.run([sys.executable, "-m", "regdemo", "presets"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert "overfit" in result.stdout and "l1_features" in result.stdout
