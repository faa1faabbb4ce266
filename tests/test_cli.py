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
    assert "test loss" in printed and "held out" in printed
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


def test_a_headless_run_is_saved_and_listed(tmp_path, monkeypatch, capsys):
    """`train` saves to the runs store (origin cli) with its summary; --no-save skips it."""
    from regdemo.engine import Trainer
    from regdemo.store import RunStore

    monkeypatch.setenv("REGDEMO_DATA_DIR", str(tmp_path))
    assert main(["train", "--set", "epochs=9", "--set", "hidden=8", "--quiet"]) == 0
    run_id = capsys.readouterr().out.split("saved as run ")[1].split()[0]
    with RunStore() as store:
        saved = store.get(run_id)
        assert saved.info.origin == "cli" and saved.info.status == "finished"
        assert [e.epoch for e in saved.history] == list(range(1, 10))
        reference = Trainer(saved.info.to_config()[0])
        reference.fit()
        assert saved.info.summary == pytest.approx(reference.summary())
        # The page lists it to every browser beside their own runs (read-only there).
        assert [r.id for r in store.runs(browser="b" * 20, unowned_from="cli")] == [run_id]
        assert store.runs(browser="b" * 20) == []
    assert main(["train", "--set", "epochs=3", "--quiet", "--no-save"]) == 0
    assert "saved as run" not in capsys.readouterr().out
    assert main(["runs", "list"]) == 0
    assert run_id in capsys.readouterr().out


def test_a_killed_headless_run_keeps_what_it_wrote(tmp_path):
    """SIGKILL mid-run: the epochs written so far are in the store."""
    import os
    import signal
    import time

    from regdemo.store import RunStore

    env = {**os.environ, "REGDEMO_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "regdemo", "train", "--set", "epochs=100000",
                             "--set", "hidden=8", "--quiet"], env=env)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if (tmp_path / "runs.sqlite3").exists():
                with RunStore(tmp_path) as store:
                    runs = store.runs()
                    if runs and runs[0].epochs > 50:
                        break
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        proc.kill()
    with RunStore(tmp_path) as store:
        saved = store.get(store.runs()[0].id)
        assert len(saved.history) > 50
        assert [e.epoch for e in saved.history] == list(range(1, len(saved.history) + 1))
