"""Sweeps: spec validation, work units, parallel = serial, aggregation, cancel, CLI, Ray."""

import csv
import math
import threading
import time

import pytest

from regdemo import sweep
from regdemo.cli import main
from regdemo.config import Config
from regdemo.presets import PRESETS
from regdemo.sweep import (
    LocalExecutor,
    SerialExecutor,
    SweepError,
    SweepSpec,
    make_units,
    run_sweep,
)
from regdemo.sweep_results import SweepRow, aggregate, best_point

# Small and quick: a few ms per run, so process start-up dominates the parallel tests.
TINY = PRESETS["overfit"].config.replace(hidden=(8, 8), n_train=30, n_val=60, epochs=25)


def tiny_spec(**kw) -> SweepSpec:
    args = dict(base=TINY, knob="l2", start=1e-4, stop=1e-1, points=5, log=True, seeds=2)
    return SweepSpec(**{**args, **kw})


@pytest.fixture(scope="module")
def pool():
    """One two-worker pool for the module: spawning workers costs seconds each time."""
    with LocalExecutor(2) as executor:
        yield executor


# ----------------------------------------------------------------------------- the spec
@pytest.mark.parametrize(
    "changes, message",
    [
        ({"points": 4}, "points must be an int in [5, 15]; got 4."),
        ({"points": 16}, "points must be an int in [5, 15]; got 16."),
        ({"seeds": 0}, "seeds must be an int in [1, 5]; got 0."),
        ({"seeds": 6}, "seeds must be an int in [1, 5]; got 6."),
        ({"start": 0.0}, "a log range needs positive ends; got from 0."),
        ({"start": 0.1, "stop": 0.01}, "'from' (0.1) must be below 'to' (0.01)"),
        ({"stop": math.nan}, "the range ends must be finite numbers"),
        ({"knob": "lr"}, "unknown knob 'lr'; choose from l1, l2,"),
        ({"knob": "dropout", "log": False, "start": 0.0, "stop": 0.99},
         "dropout = 0.99 does not fit: 'dropout' must be a float in [0, 0.95]; got 0.99."),
        ({"knob": "width", "start": 1, "stop": 1024},
         "width = 1024 does not fit: 'hidden' must be a list of 0 to 8 widths"),
        ({"knob": "n_train", "log": False, "start": 4, "stop": 8, "points": 10},
         "round to repeated values (4, 4, 5, 5, 6, 6, 7, 7, 8, 8)"),
        ({"knob": "width", "base": TINY.replace(hidden=())}, "the config has no hidden layer"),
        ({"knob": "augment_strength", "log": False, "start": 0, "stop": 1},
         "'augment_strength' does nothing while 'augment' is 'none'"),
        ({"knob": "label_smoothing", "log": False, "start": 0, "stop": 0.3,
          "base": PRESETS["sine_wiggle"].config}, "acts on classification only"),
    ],
)
def test_bad_specs_are_refused_with_a_clear_message(changes, message):
    """Every bad spec raises SweepError whose message names the problem and the fix."""
    with pytest.raises(SweepError) as info:
        tiny_spec(**changes)
    assert any(message in e for e in info.value.errors), info.value.errors


def test_n_train_beyond_the_dataset_names_the_bound():
    """A bundled dataset's row count bounds n_train, and the message says by how much."""
    base = Config(dataset="breast_cancer", n_train=50, n_val=400)
    with pytest.raises(SweepError) as info:
        SweepSpec(base, "n_train", 50, 300, points=5)
    # 569 rows less the 20% test share: 455 for training and validation together.
    assert info.value.errors[0] == (
        "n_train = 112 does not fit: 'n_train' + 'n_val' must be at most 455 for "
        "'breast_cancer'; got 112 + 400.")
    assert len(info.value.errors) == 4  # 112, 175, 238 and 300; only 50 fits beside 400


def test_values_and_configs():
    """Log and linear grids, ints for width, width applied to every hidden layer, seeds."""
    assert tiny_spec(start=1e-5, stop=1e-1).values() == [1e-5, 1e-4, 1e-3, 1e-2, 1e-1]
    assert tiny_spec(knob="dropout", log=False, start=0, stop=0.8).values() == [
        0.0, 0.2, 0.4, 0.6, 0.8]
    spec = tiny_spec(knob="width", start=1, stop=256, points=9, seeds=3)
    assert spec.values() == [1, 2, 4, 8, 16, 32, 64, 128, 256]
    runs = spec.configs()
    assert len(runs) == 27
    value, seed, config = runs[5]  # value-major: width 2, third seed
    assert (value, seed, config.hidden, config.seed) == (2, 2, (2, 2), 2)


def test_units_group_shared_shapes_and_split_shape_knobs():
    """Penalty sweeps stack in fixed chunks; width and n_train sweeps stack seeds only."""
    spec = tiny_spec(points=10, seeds=3)
    units = make_units(spec, chunk_size=8)
    assert [len(u) for u in units] == [8, 8, 8, 6]
    assert sorted(i for u in units for i in u) == list(range(30))
    width = make_units(tiny_spec(knob="width", start=2, stop=32, seeds=3))
    assert width == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11], [12, 13, 14]]
    assert make_units(tiny_spec(knob="n_train", log=False, start=10, stop=50, seeds=1)) == [
        [0], [1], [2], [3], [4]]


# ----------------------------------------------------------------------------- running
def test_one_and_two_workers_give_identical_results(pool):
    """Each run is deterministic per config, so where it runs changes nothing."""
    spec = tiny_spec()
    with LocalExecutor(1) as one:
        a = run_sweep(spec, one, chunk_size=3)
    b = run_sweep(spec, pool, chunk_size=3)
    c = run_sweep(spec, SerialExecutor(), chunk_size=3)
    assert len(a.rows) == 10 and not a.cancelled
    assert a.rows == b.rows == c.rows
    assert [(r.value, r.seed) for r in a.rows] == [(v, s) for v in spec.values() for s in (0, 1)]
    assert all(r.epochs == 25 and r.stop_reason == "finished: reached 25 epochs" for r in a.rows)
    # The knob did something: the strongest penalty fits the training set worst.
    assert a.stats[-1].train_loss_mean > a.stats[0].train_loss_mean


def test_progress_counts_runs():
    """progress(done, total) starts at 0 and ends at total, counting runs not units."""
    seen = []
    run_sweep(tiny_spec(seeds=1), SerialExecutor(), progress=lambda d, t: seen.append((d, t)),
              chunk_size=2)
    assert seen == [(0, 5), (2, 5), (4, 5), (5, 5)]


def test_cancel_stops_early():
    """Setting cancel from the progress callback stops after the unit in flight."""
    cancel = threading.Event()
    seen = []

    def progress(done, total):
        seen.append(done)
        if done >= 2:
            cancel.set()

    result = run_sweep(tiny_spec(), SerialExecutor(), progress=progress, cancel=cancel,
                       chunk_size=2)
    assert result.cancelled and not result.complete
    assert len(result.rows) == 2 and seen == [0, 2]


def test_cancel_stops_a_process_pool_early(pool):
    """Cancelling a pool sweep drops the queued runs and kills the ones in flight."""
    cancel = threading.Event()
    spec = tiny_spec(base=TINY.replace(epochs=400), points=15, seeds=5)  # 75 runs
    pids = pool.worker_pids()
    result = run_sweep(spec, pool, chunk_size=1, cancel=cancel,
                       progress=lambda done, total: done >= 1 and cancel.set())
    assert result.cancelled and 1 <= len(result.rows) < 10
    assert all(_gone(pid) for pid in pids)  # stopped, not left to train out their units
    again = run_sweep(tiny_spec(seeds=1), pool)  # the executor starts a fresh pool
    assert again.complete and set(pool.worker_pids()).isdisjoint(pids)


def _gone(pid: int, timeout: float = 10.0) -> bool:
    """True once `pid` has exited (a zombie waiting to be reaped counts as exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except OSError:  # gone between the check and the read (ENOENT or ESRCH)
            return True
        time.sleep(0.05)
    return False


# ----------------------------------------------------------------------------- results
def _row(value, seed, train, val, stop="finished: reached 25 epochs"):
    return SweepRow(value, seed, train, val, val, 3, val - train, 1.0, 0.8, 0.0, 25, stop)


def test_aggregation_matches_a_hand_computation():
    """Mean and sample std (n - 1) over seeds per value; one seed has std 0."""
    rows = [_row(0.1, 0, 0.1, 1.0), _row(0.1, 1, 0.3, 2.0), _row(0.1, 2, 0.5, 6.0),
            _row(0.01, 0, 0.2, 0.5)]
    low, high = aggregate(rows)
    assert (low.value, low.n_runs, low.val_loss_mean, low.val_loss_std) == (0.01, 1, 0.5, 0.0)
    assert high.value == 0.1 and high.n_runs == 3
    assert high.train_loss_mean == pytest.approx(0.3)
    assert high.train_loss_std == pytest.approx(0.2)  # sqrt((0.04 + 0 + 0.04) / 2)
    assert high.val_loss_mean == pytest.approx(3.0)
    assert high.val_loss_std == pytest.approx(math.sqrt((4 + 1 + 9) / 2))


def test_best_value_has_lowest_mean_val_loss_and_no_divergence():
    """The best value minimises mean val loss; a value with a diverged seed is not chosen."""
    rows = [_row(1, 0, 0.1, 0.9), _row(1, 1, 0.1, 0.7),  # mean 0.8
            _row(2, 0, 0.1, 0.5), _row(2, 1, 0.1, 0.9),  # mean 0.7: best
            _row(3, 0, 0.1, 0.2), _row(3, 1, 0.1, 0.3, stop="diverged at epoch 3: ...")]
    stats = aggregate(rows)
    assert [p.value for p in stats] == [1, 2, 3]
    assert stats[2].n_runs == 1 and stats[2].n_diverged == 1
    assert best_point(stats).value == 2
    assert best_point(stats[2:]) is None
    assert stats[1].test_loss_mean is None  # rows without test figures: none averaged


# ----------------------------------------------------------------------------- the CLI
class _Borrowed:
    """The module's pool lent to the CLI, which closes its executor: keep the pool open."""

    def __init__(self, executor):
        self.executor, self.name = executor, executor.name

    def map_units(self, *args):
        return self.executor.map_units(*args)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def test_cli_writes_a_csv_that_parses_back(tmp_path, capsys, monkeypatch, pool):
    """The sweep command prints a table with the best value and writes one row per run."""
    asked = []
    monkeypatch.setattr(sweep, "make_executor",
                        lambda *a: asked.append(a) or _Borrowed(pool))  # no new pool to start
    out = tmp_path / "sweep.csv"
    code = main(["sweep", "--knob", "dropout", "--from", "0", "--to", "0.6", "--points", "5",
                 "--seeds", "2", "--workers", "2", "--epochs", "20", "--set", "hidden=8-8",
                 "--set", "n_train=30", "--set", "n_val=60", "--backend", "local",
                 "--out", str(out)])
    assert code == 0 and asked == [("local", 2)]
    captured = capsys.readouterr()
    assert "<- best" in captured.out and "best dropout = " in captured.out
    assert "chosen on validation, its test loss" in captured.out  # the honest figure
    assert "10/10 runs" in captured.err
    rows = list(csv.DictReader(out.open()))
    assert [(float(r["dropout"]), int(r["seed"])) for r in rows] == [
        (v, s) for v in (0.0, 0.15, 0.3, 0.45, 0.6) for s in (0, 1)]
    assert all(int(r["epochs"]) == 20 and float(r["val_loss"]) > 0 for r in rows)
    assert all(float(r["test_loss"]) > 0 and 0 <= float(r["test_score"]) <= 1 for r in rows)
    assert list(rows[0])[:4] == ["dropout", "seed", "train_loss", "val_loss"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--knob", "l2", "--from", "0", "--to", "1", "--log"], "a log range needs positive"),
        (["--knob", "l2", "--from", "0", "--to", "1", "--points", "20"], "points must be"),
        (["--knob", "lr", "--from", "0", "--to", "1"], "invalid choice: 'lr'"),
        (["--knob", "l2", "--from", "0", "--to", "1", "--set", "colour=red"],
         "unknown setting 'colour'"),
        (["--knob", "l2", "--from", "0", "--to", "1", "--out", "s.json"], "must end in .csv"),
        (["--knob", "width", "--from", "1", "--to", "2000", "--log"], "width = 860 does not fit"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(argv, message, capsys):
    """Bad sweep input: exit code 2 and one clear line, before anything trains."""
    assert main(["sweep", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1


# ----------------------------------------------------------------------------- double descent
@pytest.mark.slow
# ----------------------------------------------------------------------------- Ray
def test_backend_choice(monkeypatch):
    """Unknown backends are refused; REGDEMO_RAY_ADDRESS picks Ray, and a dead address fails
    fast with one line instead of ray.init's minutes of retries."""
    with pytest.raises(SweepError, match="unknown backend 'dask'"):
        sweep.make_executor("dask")
    monkeypatch.delenv(sweep.RAY_ADDRESS_ENV, raising=False)
    assert sweep.make_executor(workers=1).name == "local"  # no pool starts until used
    if not sweep.ray_available():
        pytest.skip("ray is not installed (pip install ray)")
    monkeypatch.setenv(sweep.RAY_ADDRESS_ENV, "127.0.0.1:1")
    with pytest.raises(SweepError, match="could not reach Ray at '127.0.0.1:1'"):
        sweep.make_executor()


def test_ray_backend_matches_local():
    """The same sweep as Ray tasks on a local instance gives the local pool's rows."""
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install ray)")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env=sweep.ray_runtime_env())
    try:
        spec = tiny_spec()
        executor = sweep.RayExecutor()
        result = run_sweep(spec, executor, chunk_size=3)
        assert result.backend == "ray" and result.complete
        # In-process results equal the local pool's (test_one_and_two_workers...).
        assert result.rows == run_sweep(spec, SerialExecutor(), chunk_size=3).rows
    finally:
        ray.shutdown()


def test_the_sweep_progress_never_counts_past_its_runs():
    """Runs finish in batches (0, then all 6 at once): the words follow, never 'run 7 of 6'."""
    from regdemo.sweep_jobs import RUNNING, WAITING
    from regdemo.ui.sweeps import progress_text

    assert progress_text(RUNNING, 0, 6, 0) == "Training 6 runs in parallel batches: 0 of 6 done"
    assert progress_text(RUNNING, 6, 6, 0) == "All 6 runs trained: drawing the curve"
    assert "7" not in progress_text(RUNNING, 6, 6, 0)
    assert progress_text(WAITING, 0, 6, 2).startswith("Waiting: 2 sweeps")
