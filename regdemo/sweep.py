"""Sweep one knob over a range and several seeds; run the points in parallel and summarise.

The flow: `SweepSpec` (validated, builds one Config per value x seed) -> work units (configs
that share shapes go together so `batched.train_many` can stack them) -> an `Executor`
(a local spawn process pool by default, Ray tasks when asked) -> `SweepResult` (a row per
run, mean/std over seeds per value, the best value). The engine loads only where units run.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import math
import multiprocessing
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from regdemo.config import Config, ConfigError
from regdemo.cpus import usable_cpus
from regdemo.sweep_results import SweepResult, SweepRow

# Knobs a sweep can move. `width` sets every hidden layer's width at once.
KNOBS = ("l1", "l2", "weight_decay", "dropout", "label_smoothing", "augment_strength",
         "max_norm", "n_train", "width")
INT_KNOBS = frozenset({"n_train", "width"})
# Fields a batched model can vary per member: runs that differ only here can be stacked.
STACKABLE = frozenset({"l1", "l2", "weight_decay", "dropout", "label_smoothing",
                       "augment_strength", "max_norm", "seed"})
MIN_POINTS, MAX_POINTS = 5, 15
MIN_SEEDS, MAX_SEEDS = 1, 5
CHUNK_SIZE = 8  # runs per stacked unit: fixed, so results never depend on the worker count
RAY_ADDRESS_ENV = "REGDEMO_RAY_ADDRESS"
BACKENDS = ("local", "ray")


class SweepError(ConfigError):
    """The sweep spec is not valid; `errors` lists every problem in words a user can act on."""


# ----------------------------------------------------------------------------- the spec
@dataclass(frozen=True)
class SweepSpec:
    """What to sweep: `knob` from `start` to `stop` in `points` steps, over `seeds` seeds."""

    base: Config
    knob: str
    start: float
    stop: float
    points: int = 10
    log: bool = False
    seeds: int = 1  # runs per value, with seeds base.seed, base.seed + 1, ...

    def __post_init__(self):
        errors = self._errors()
        if errors:
            raise SweepError(errors)

    def _errors(self) -> list[str]:
        if self.knob not in KNOBS:
            return [f"unknown knob {self.knob!r}; choose from {', '.join(KNOBS)}."]
        errors = []
        if not _is_int(self.points) or not MIN_POINTS <= self.points <= MAX_POINTS:
            errors.append(f"points must be an int in [{MIN_POINTS}, {MAX_POINTS}]; "
                          f"got {self.points!r}.")
        if not _is_int(self.seeds) or not MIN_SEEDS <= self.seeds <= MAX_SEEDS:
            errors.append(f"seeds must be an int in [{MIN_SEEDS}, {MAX_SEEDS}]; "
                          f"got {self.seeds!r}.")
        ends = (self.start, self.stop)
        if not all(_is_real(v) and math.isfinite(v) for v in ends):
            errors.append(f"the range ends must be finite numbers; got {self.start!r} "
                          f"and {self.stop!r}.")
        elif self.start >= self.stop:
            errors.append(f"the range must go up: 'from' ({self.start:g}) must be below "
                          f"'to' ({self.stop:g}).")
        elif self.log and self.start <= 0:
            errors.append(f"a log range needs positive ends; got from {self.start:g}. "
                          "Start at a small positive value (like 1e-5) or drop --log.")
        errors += self._knob_errors()
        if errors:
            return errors
        values = self.values()
        if self.knob in INT_KNOBS and len(set(values)) < len(values):
            errors.append(
                f"'{self.knob}' takes whole numbers and {self.points} points between "
                f"{self.start:g} and {self.stop:g} round to repeated values "
                f"({', '.join(str(v) for v in values)}); use fewer points or a wider range."
            )
        for value in values:  # every value must make a valid config (bounds, dataset size)
            try:
                _apply(self.base, self.knob, value)
            except ConfigError as exc:
                errors += [f"{self.knob} = {_fmt(value)} does not fit: {e}" for e in exc.errors]
        return errors

    def _knob_errors(self) -> list[str]:
        """A knob that cannot act on the base config would sweep nothing: say so."""
        b, knob = self.base, self.knob
        if knob == "width" and not b.hidden:
            return ["'width' sets every hidden layer's width, but the config has no hidden "
                    "layer; add one first (like --set hidden=64)."]
        if knob == "label_smoothing" and b.task != "classification":
            return [f"'label_smoothing' acts on classification only; '{b.dataset}' is "
                    "a regression dataset."]
        if knob == "augment_strength" and b.augment == "none":
            return ["'augment_strength' does nothing while 'augment' is 'none'; choose an "
                    "augmentation first (like --set augment=jitter)."]
        if knob == "dropout" and not b.hidden and b.arch == "mlp":
            return ["'dropout' acts after hidden layers, and the config has none; add one "
                    "first (like --set hidden=64)."]
        return []

    def values(self) -> list[float] | list[int]:
        """The swept values, in increasing order (ints for n_train and width)."""
        grid = (np.geomspace if self.log else np.linspace)(self.start, self.stop, self.points)
        if self.knob in INT_KNOBS:
            return [int(round(v)) for v in grid]
        return [float(f"{v:.12g}") for v in grid]  # 1e-05, not 1.0000000000000001e-05

    @property
    def seed_list(self) -> list[int]:
        return [self.base.seed + i for i in range(self.seeds)]

    def configs(self) -> list[tuple[float | int, int, Config]]:
        """(value, seed, config) for every run, value-major."""
        return [(v, s, _apply(self.base, self.knob, v).replace(seed=s))
                for v in self.values() for s in self.seed_list]


def _apply(base: Config, knob: str, value: float | int) -> Config:
    if knob == "width":
        return base.replace(hidden=(int(value),) * len(base.hidden))
    return base.replace(**{knob: value})


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_real(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _fmt(value: float | int) -> str:
    return str(value) if isinstance(value, int) else f"{value:.4g}"


# ----------------------------------------------------------------------------- work units
def make_units(spec: SweepSpec, chunk_size: int = CHUNK_SIZE) -> list[list[int]]:
    """Run indices (into `spec.configs()`) grouped into units of work."""
    # Runs that differ only in STACKABLE fields share shapes, so `batched.train_many` can
    # train them as one model: a penalty sweep stacks across values and seeds, a width or
    # n_train sweep only the seeds of one value. The grouping depends on the spec alone,
    # never on the worker count, so neither do the results.
    groups: dict[tuple, list[int]] = {}
    for i, (_, _, config) in enumerate(spec.configs()):
        key = tuple(sorted((k, v) for k, v in config.to_query().items() if k not in STACKABLE))
        groups.setdefault(key, []).append(i)
    return [idx[j:j + chunk_size] for idx in groups.values()
            for j in range(0, len(idx), chunk_size)]


def run_unit(configs: list[Config]) -> list[dict[str, Any]]:
    """Train one unit in this process with one torch thread (what every backend calls)."""
    import torch

    from regdemo import batched

    torch.set_num_threads(1)  # the workers share the cores: one thread each
    return batched.train_many(configs)


# ----------------------------------------------------------------------------- executors
class Executor(Protocol):
    """Runs units of work somewhere; the sweep only needs this one method."""

    name: str

    def map_units(self, fn: Callable[[Any], Any], units: Sequence[Any],
                  cancel: threading.Event | None = None) -> Iterator[tuple[int, Any]]:
        """Yield (unit index, fn(unit)) as units finish; stop soon after `cancel` is set."""
        # Units not started are dropped on a cancel; the ones running are abandoned.
        ...


class SerialExecutor:
    """Runs units one after another in this process (no startup cost; for tiny sweeps)."""

    name = "serial"

    def map_units(self, fn, units, cancel=None):
        for i, unit in enumerate(units):
            if cancel is not None and cancel.is_set():
                return
            yield i, fn(unit)


def _init_worker() -> None:
    """Each worker: one torch thread, and the engine warmed up before the first unit."""
    import torch

    from regdemo import batched, warmup

    torch.set_num_threads(1)
    warmup.warm()
    # A process's first training pays ~2 s of one-off costs (imports, the first Adam, first
    # kernels): pay them while the pool starts, not inside the sweep's first unit.
    batched.train_many([Config(hidden=(4,), n_train=8, n_val=8, epochs=2, seed=s)
                        for s in (0, 1)])


class LocalExecutor:
    """A pool of spawned worker processes on this machine (the default backend)."""

    name = "local"

    def __init__(self, workers: int | None = None):
        self.workers = max(1, workers or usable_cpus())
        self._pool: cf.ProcessPoolExecutor | None = None

    def _ensure_pool(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            from regdemo.runner import hidden_main

            # Spawn (not fork: torch's threads do not survive a fork), and start the workers
            # with __main__ hidden: under `streamlit run` it is app.py, which they would re-run.
            with hidden_main():
                self._pool = cf.ProcessPoolExecutor(
                    self.workers, mp_context=multiprocessing.get_context("spawn"),
                    initializer=_init_worker,
                )
                # The pool spawns a process per submit while none is idle: start them all
                # now, while __main__ is hidden, not later on a sweep's first units.
                warm = [self._pool.submit(os.getpid) for _ in range(self.workers)]
            for f in warm:
                f.result()
        return self._pool

    def map_units(self, fn, units, cancel=None):
        pool = self._ensure_pool()
        futures = {pool.submit(fn, unit): i for i, unit in enumerate(units)}
        pending = set(futures)
        finished = False
        try:
            while pending:
                if cancel is not None and cancel.is_set():
                    return
                done, pending = cf.wait(pending, timeout=0.1, return_when=cf.FIRST_COMPLETED)
                for future in done:
                    yield futures[future], future.result()
            finished = True
        finally:
            if not finished:  # cancelled, failed or abandoned: stop the work in flight now
                self._kill()

    def _kill(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        # A running unit cannot be interrupted politely; its worker would train on for
        # seconds after a cancel. The next sweep starts a fresh pool.
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            with contextlib.suppress(Exception):
                process.terminate()

    def worker_pids(self) -> list[int]:
        """Process ids of the pool's workers (starting the pool if needed)."""
        return sorted(self._ensure_pool()._processes)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class RayExecutor:
    """Units as Ray tasks (one CPU each) on a cluster, or on a local instance for "local"."""

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None):
        try:
            import ray
        except ImportError as exc:
            raise SweepError(["backend 'ray' needs the ray package (pip install ray)."]) from exc
        self._ray = ray
        self.address = address or os.environ.get(RAY_ADDRESS_ENV) or "local"
        self._started = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if self.address == "local":
                kwargs["num_cpus"] = workers or usable_cpus()
            else:
                _check_reachable(self.address)
                kwargs["address"] = self.address
            try:
                ray.init(runtime_env=ray_runtime_env(), **kwargs)
            except Exception as exc:  # a wrong address, a cluster down: one line, no trace
                raise SweepError([f"could not start or reach Ray at {self.address!r}: "
                                  f"{exc}"]) from exc
            self._started = True
        self._remote = ray.remote(num_cpus=1)(run_unit)

    def map_units(self, fn, units, cancel=None):
        ray = self._ray
        remote = self._remote if fn is run_unit else ray.remote(num_cpus=1)(fn)
        refs = {remote.remote(unit): i for i, unit in enumerate(units)}
        pending = list(refs)
        try:
            while pending:
                if cancel is not None and cancel.is_set():
                    return
                done, pending = ray.wait(pending, num_returns=1, timeout=0.1)
                for ref in done:
                    yield refs[ref], ray.get(ref)
        finally:
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()
            self._started = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _check_reachable(address: str, timeout: float = 3.0) -> None:
    """Fail fast on a dead host:port: ray.init retries a wrong address for minutes."""
    host, sep, port = address.split("://")[-1].rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto" and the like: Ray resolves those itself
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise SweepError([f"could not reach Ray at {address!r}: {exc}"]) from exc


def ray_runtime_env() -> dict[str, Any]:
    """The `runtime_env` to pass to `ray.init` when you start Ray yourself for sweeps."""
    # Ship this package with the job: cluster nodes, and a local instance's workers (whose
    # sys.path is the driver's cwd), may lack regdemo. Ray takes a local directory only at
    # `ray.init`, not per task.
    return {"py_modules": [str(Path(__file__).resolve().parent)], "excludes": ["__pycache__"]}


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def make_executor(backend: str | None = None, workers: int | None = None):
    """The executor for `backend`; None: Ray if REGDEMO_RAY_ADDRESS is set and ray installed."""
    if backend is None:
        backend = "ray" if os.environ.get(RAY_ADDRESS_ENV) and ray_available() else "local"
    if backend == "local":
        return LocalExecutor(workers)
    if backend == "ray":
        return RayExecutor(workers=workers)
    raise SweepError([f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}."])


# ----------------------------------------------------------------------------- running
Progress = Callable[[int, int], None]


def run_sweep(
    spec: SweepSpec,
    executor: Executor | None = None,
    *,
    workers: int | None = None,
    backend: str | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> SweepResult:
    """Train every run of `spec` (on `executor`, else a new one for `backend`) and summarise."""
    # A given executor is the caller's to close. `progress(done, total)` runs in this thread
    # with runs finished so far, first with (0, total). Setting `cancel` (from any thread)
    # stops early: the result holds the runs that finished and `cancelled` is True.
    runs = spec.configs()
    units = make_units(spec, chunk_size)
    owned = executor is None
    t0 = time.perf_counter()
    if owned:
        executor = make_executor(backend, workers)
    summaries: dict[int, dict[str, Any]] = {}
    try:
        if progress:
            progress(0, len(runs))
        configs = [[runs[i][2] for i in unit] for unit in units]
        for u, result in executor.map_units(run_unit, configs, cancel):
            for i, summary in zip(units[u], result, strict=True):
                summaries[i] = summary
            if progress:
                progress(len(summaries), len(runs))
    finally:
        if owned:
            executor.close()
    rows = [SweepRow.from_summary(runs[i][0], runs[i][1], summaries[i])
            for i in sorted(summaries)]
    return SweepResult(spec, rows, cancelled=len(rows) < len(runs),
                       wall_time=time.perf_counter() - t0, backend=executor.name)
