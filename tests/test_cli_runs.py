"""`python -m regdemo runs ...`: the table, exports, rename, delete, one-line errors."""

import csv
import io
import json
import math

import pytest

from regdemo.cli import main
from regdemo.presets import PRESETS
from regdemo.records import EpochRecord
from regdemo.store import FLOAT_FIELDS, RunStore

CONFIG = PRESETS["overfit"].config.replace(epochs=3)


def _record(epoch: int, val_loss: float) -> EpochRecord:
    values = {f: epoch + i / 8 for i, f in enumerate(FLOAT_FIELDS)}
    return EpochRecord(epoch=epoch, **{**values, "val_loss": val_loss})


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """A data folder (set by the environment) with two runs: finished and still running."""
    monkeypatch.setenv("REGDEMO_DATA_DIR", str(tmp_path / "data"))
    with RunStore() as store:
        done = store.create(CONFIG, "wide net <b>")
        store.append(done, [_record(1, 0.9), _record(2, 0.75), _record(3, math.nan)])
        store.finish(done, "finished", {"val_loss": 0.6543, "epochs": 3})
        live = store.create(CONFIG, "still going")
        store.append(live, [_record(1, 1.2345)])
    return done, live


def test_list_prints_a_table_newest_first(runs, capsys):
    """One header and one row per run: id, name, status, epochs, final val loss, created."""
    done, live = runs
    assert main(["runs", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["id", "name", "status", "epochs", "final", "val", "loss",
                                "created"]
    assert lines[1].startswith(live) and "still going" in lines[1] and "1.2345" in lines[1]
    assert lines[2].startswith(done) and "wide net <b>" in lines[2] and "0.6543" in lines[2]
    assert " running " in lines[1] and " finished " in lines[2] and len(lines) == 3


def test_list_limit_and_empty_folder(runs, tmp_path, capsys):
    """--limit keeps the newest; --data-dir overrides the environment, before or after."""
    assert main(["runs", "list", "--limit", "1"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    empty = tmp_path / "empty"
    assert main(["runs", "--data-dir", str(empty), "list"]) == 0
    assert main(["runs", "list", "--data-dir", str(empty)]) == 0
    assert capsys.readouterr().out.count(f"no saved runs in {empty}") == 2


def test_export_csv_to_stdout_and_json_to_a_file(runs, tmp_path, capsys):
    """CSV goes to stdout with every epoch; JSON to --out, with the same numbers."""
    done, _ = runs
    assert main(["runs", "export", done, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [float(r["val_loss"]) for r in rows[:2]] == [0.9, 0.75]
    assert math.isnan(float(rows[2]["val_loss"]))
    out = tmp_path / "run.json"
    assert main(["runs", "export", done, "--out", str(out)]) == 0  # format from the suffix
    data = json.loads(out.read_text())
    assert data["history"]["val_loss"] == [0.9, 0.75, "NaN"]
    assert data["config"] == CONFIG.to_query() and data["name"] == "wide net <b>"


def test_import_rename_delete(runs, tmp_path, capsys):
    """An exported run imports as a new run; rename and delete change the table."""
    done, live = runs
    out = tmp_path / "run.json"
    main(["runs", "export", done, "--out", str(out)])
    assert main(["runs", "import", str(out)]) == 0
    assert "imported as run" in capsys.readouterr().out
    assert main(["runs", "rename", live, "renamed run"]) == 0
    assert main(["runs", "delete", done]) == 0
    with RunStore() as store:
        names = {r.id: r.name for r in store.runs()}
    assert done not in names and names[live] == "renamed run" and len(names) == 2


@pytest.mark.parametrize("argv, message", [
    (["runs", "export", "0123456789ab"], "no saved run with id '0123456789ab'"),
    (["runs", "delete", "0123456789ab"], "no saved run with id '0123456789ab'"),
    (["runs", "rename", "0123456789ab", "x"], "no saved run with id '0123456789ab'"),
    (["runs", "export", "../../etc/passwd"], "'../../etc/passwd' is not a run id"),
    (["runs", "delete", "ABCDEF012345"], "'ABCDEF012345' is not a run id"),
    (["runs", "export", "0123456789ab", "--format", "xml"], "invalid choice: 'xml'"),
    (["runs", "list", "--limit", "0"], "--limit must be at least 1"),
    (["runs"], "required"),
    (["runs", "import", "/nonexistent/run.json"], "cannot read /nonexistent/run.json"),
])
def test_bad_input_is_one_line_and_exit_2(runs, capsys, argv, message):
    """Unknown or malformed ids and bad options: one `error:` line on stderr, exit code 2."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_a_bad_name_is_refused_in_one_line(runs, capsys):
    """A name over the limit is refused; the run keeps its name."""
    _, live = runs
    assert main(["runs", "rename", live, "x" * 500]) == 2
    assert "at most 120 characters" in capsys.readouterr().err
    with RunStore() as store:
        assert store.info(live).name == "still going"


def test_an_import_of_a_bad_file_says_why(runs, tmp_path, capsys):
    """A file that is not a run export is refused with the reason."""
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"config": {"dropout": "2"}, "history": {}}))
    assert main(["runs", "import", str(bad)]) == 2
    assert "cannot import run: config: 'dropout' must be a float" in capsys.readouterr().err


def test_a_corrupt_store_is_reported_as_a_warning(tmp_path, monkeypatch, capsys):
    """The command still works on a fresh file and tells the user where the old one went."""
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "runs.sqlite3").write_bytes(b"not a database at all" * 100)
    assert main(["runs", "list", "--data-dir", str(folder)]) == 0
    captured = capsys.readouterr()
    assert "no saved runs" in captured.out
    assert captured.err.startswith("warning: ") and "runs.sqlite3.corrupt-" in captured.err
