"""The fused epoch for plain MLPs: binds trainers to the kernels of `fused_kernel`.

Eager PyTorch spends ~300 us of dispatch on a mini-batch step of a small net that needs ~2 us
of arithmetic. The fused path runs the whole epoch of a plain MLP (linear layers and
activations, dropout, input jitter, L1/L2/weight decay, max-norm, label smoothing, SGD/
momentum/Adam/AdamW) in one compiled call, so a batch-10 epoch costs microseconds of
overhead, not milliseconds; and a sweep's group of same-shaped runs trains as one stack.

It trains the torch models' own parameters and optimizer state in place: they are
re-pointed at views of flat buffers (one row per model) the kernel updates. The eager path
can take over at any epoch (a live change to something the kernel does not do) and the
views, the weights panel, early stopping and fork all keep seeing the same tensors. Random
draws (batch order, dropout masks, jitter noise) come from each run's torch generator in the
eager path's order, so both paths see the same randomness; results agree within float
rounding (tested), and a run gives the same numbers alone or in a stack.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

try:  # numba is a requirement; without it (or with REGDEMO_FUSED=0) the eager path runs
    from regdemo import fused_kernel as kernel
except ImportError:  # pragma: no cover - exercised only on a broken install
    kernel = None

ACTIVATIONS = {"relu": 0, "tanh": 1, "sigmoid": 2, "leaky_relu": 3, "elu": 4, "gelu": 5}
OPTIMIZERS = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 3}
AUGMENTS = ("none", "jitter")
ACTIVATION_CLASSES = ("ReLU", "Tanh", "Sigmoid", "LeakyReLU", "ELU", "GELU")


_kernel_blas_capped = False  # set once the kernel's BLAS runs on one thread


def limit_blas_threads(threads: int) -> None:
    """Cap the loaded BLAS libraries' threads, as torch.set_num_threads caps torch."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads, user_api="blas")


def single_threaded_kernel_blas() -> None:
    """The kernel's larger products call scipy's BLAS: run it on one thread, always.

    Its thread count is part of the numbers (a 2-thread BLAS sums in another order), so a
    process's first run, a notebook and a worker must agree; and on a shared 2-core machine
    a two-thread BLAS on 600x64 products ran 10x slower than one. scipy's BLAS is loaded
    here first (numba would load it with the kernels, after a cap could reach it): the
    first run of a process trained on two threads and drew other curves than the rest.
    """
    global _kernel_blas_capped
    if _kernel_blas_capped:
        return
    import scipy.linalg.cython_blas  # noqa: F401 - the library numba's np.dot links
    from threadpoolctl import ThreadpoolController

    controller = ThreadpoolController()
    scipys = [lib.filepath for lib in controller.lib_controllers
              if lib.user_api == "blas" and "scipy.libs" in lib.filepath]
    if scipys:
        controller.select(filepath=scipys).limit(limits=1)
    _kernel_blas_capped = True


def enabled() -> bool:
    """Whether the fused path may run here (numba present, not switched off)."""
    return kernel is not None and os.environ.get("REGDEMO_FUSED", "1") != "0"


def unsupported_config(config) -> str | None:
    """Why the fused epoch cannot train runs of this config, or None when it can."""
    if config.arch != "mlp" or config.residual or config.batch_norm:
        return "not a plain MLP"
    if config.features:
        return "extra input features"
    if config.activation not in ACTIVATIONS:
        return f"activation {config.activation}"
    if config.augment not in AUGMENTS:
        return f"augmentation {config.augment}"
    if config.optimizer not in OPTIMIZERS:
        return f"optimizer {config.optimizer}"
    return None


def unsupported(config, model: nn.Module) -> str | None:
    """Why the fused epoch cannot train this run now, or None when it can."""
    why = unsupported_config(config)
    if why:
        return why
    kinds = {type(m).__name__ for m in model.modules()} - {
        "Sequential", "Linear", "SeededDropout", *(ACTIVATION_CLASSES)
    }
    return f"layers {sorted(kinds)}" if kinds else None




# ---------------------------------------------------------------------------- the driver
def _rows(per_model: list[list], sizes: list[int]) -> torch.Tensor:
    """A new (K, sum(sizes)) float32 buffer: row k holds model k's tensors one after
    another (0 for None)."""
    flat = torch.zeros(len(per_model), sum(sizes), dtype=torch.float32)
    for k, tensors in enumerate(per_model):
        offset = 0
        for t, size in zip(tensors, sizes):
            if t is not None:
                flat[k, offset:offset + size] = t.reshape(-1)
            offset += size
    return flat


def _linears(trainer) -> list[nn.Linear]:
    return [m for m in trainer.model_.modules() if isinstance(m, nn.Linear)]


class FusedStack:
    """K trainers' same-shaped MLPs and optimizers bound to one set of flat buffers (row k
    is trainers[k]); `epoch` and `measure` run the kernels on the rows still active.

    A single run is a stack of one (`Trainer.fused_kernel`); a sweep's group of runs with
    one `batched.stack_key` is a stack of many, and each model gets exactly the numbers it
    would get alone.
    """

    def __init__(self, trainers: list):
        single_threaded_kernel_blas()  # before the first epoch: part of the numbers
        self.trainers = list(trainers)
        first = self.trainers[0]
        self.optimizer = first.config.optimizer
        linears = [_linears(t) for t in self.trainers]
        params = [[p for lin in ls for p in (lin.weight, lin.bias)] for ls in linears]
        shapes = {tuple(tuple(p.shape) for p in ps) for ps in params}
        if len(shapes) != 1 or {t.config.optimizer for t in self.trainers} != {self.optimizer}:
            raise ValueError("a fused stack needs one layer shape and one optimizer")
        for t, ps in zip(self.trainers, params):
            opt = t.optimizer_
            if {id(p) for g in opt.param_groups for p in g["params"]} != {id(p) for p in ps}:
                raise ValueError("the optimizer does not train exactly the MLP's parameters")
        sizes = [p.numel() for p in params[0]]
        starts = [0, *np.cumsum(sizes)[:-1].tolist()]
        self.offs = np.array(starts, np.int64).reshape(-1, 2)
        self.dims = np.array(
            [linears[0][0].in_features] + [lin.out_features for lin in linears[0]], np.int64
        )

        def views(flat: torch.Tensor, k: int) -> list[torch.Tensor]:
            return [flat[k, s:s + p.numel()].view(p.shape) for s, p in zip(starts, params[0])]

        # Parameters and optimizer state become views of the rows, their values kept.
        self._p = _rows([[p.data for p in ps] for ps in params], sizes)
        for k, ps in enumerate(params):
            for p, view in zip(ps, views(self._p, k)):
                p.data = view
        self.P = self._p.numpy()
        self.G = np.zeros(self.P.shape[1], np.float32)  # scratch: one model at a time
        states = [[t.optimizer_.state[p] for p in ps]  # creates empty entries for new runs
                  for t, ps in zip(self.trainers, params)]
        n_params = len(sizes)
        if self.optimizer in ("adam", "adamw"):
            self._m = _rows([[s.get("exp_avg") for s in st] for st in states], sizes)
            self._v = _rows([[s.get("exp_avg_sq") for s in st] for st in states], sizes)
            self._steps = torch.tensor(
                [[float(st[0]["step"]) if "step" in st[0] else 0.0] * n_params
                 for st in states], dtype=torch.float32)
            for k, st in enumerate(states):
                for i, (s, m, v) in enumerate(zip(st, views(self._m, k), views(self._v, k))):
                    s["exp_avg"], s["exp_avg_sq"] = m, v
                    s["step"] = self._steps[k, i]  # 0-d view: torch's fused Adam adds in place
        else:
            self._m = _rows([[s.get("momentum_buffer") for s in st] for st in states], sizes)
            self._v = torch.zeros(len(states), 1)
            self._steps = torch.zeros(len(states), n_params, dtype=torch.float32)
            if self.optimizer == "momentum":
                # A zero buffer gives exactly torch's first momentum step (buffer = grad).
                for k, st in enumerate(states):
                    for s, m in zip(st, views(self._m, k)):
                        s["momentum_buffer"] = m
        self.M, self.V, self.steps = self._m.numpy(), self._v.numpy(), self._steps.numpy()
        self.widths = [int(d) for d in self.dims[1:-1]]  # hidden layers: dropout masks
        self.mask_offs = np.zeros(max(len(self.widths), 1), np.int64)
        self.mask_offs[: len(self.widths)] = np.cumsum([0, *self.widths[:-1]])
        self._settings_for: tuple | None = None  # (what they were made from, settings)
        self._data()

    def _data(self) -> None:
        ts = self.trainers
        first = ts[0]
        self.classification = first.classification
        self.n_train = first.n_train
        self.x = np.stack([t.x_train.numpy() for t in ts])
        self.x_all = np.stack([t.x_all.numpy() for t in ts])
        ys = np.stack([torch.cat([t.y_train, t.y_val]).numpy() for t in ts])
        if self.classification:
            self.yc, self.yr = ys, np.zeros((len(ts), 1, 1), np.float32)
        else:
            self.yc, self.yr = np.zeros((len(ts), 1), np.int64), ys
        self.act = ACTIVATIONS[first.config.activation]

    def _random_draws(self, active: list[int], batch: int):
        """Each active model's batch order, jitter noise and dropout masks, drawn from its
        own generator in the eager path's order."""
        n_models, n, n_in = self.x.shape
        widths, mask_offs = self.widths, n * self.mask_offs
        configs = [t.config for t in self.trainers]
        jitter = [c.augment == "jitter" for c in configs]
        drop = [c.dropout for c in configs]
        full = batch >= n
        batch = n if full else batch
        perm = torch.empty((n_models, n), dtype=torch.int64)
        noise = torch.zeros((n_models, n, n_in) if any(jitter) else (n_models, 0, 0))
        masks = torch.zeros((n_models, n * sum(widths) if any(drop) else 0))
        for k in active:
            gen = self.trainers[k].train_generator
            if full:
                perm[k] = torch.arange(n)
            else:
                perm[k] = torch.randperm(n, generator=gen)
            p = drop[k]
            layer_masks = [masks[k, int(o):int(o) + n * w].view(n, w)
                           for o, w in zip(mask_offs, widths)] if p > 0 else []
            if jitter[k] or layer_masks:
                for start in range(0, n, batch):
                    stop = min(start + batch, n)
                    if jitter[k]:
                        noise[k, start:stop] = torch.randn((stop - start, n_in), generator=gen)
                    for m in layer_masks:
                        m[start:stop].bernoulli_(1.0 - p, generator=gen)
        return perm.numpy(), batch, noise.numpy(), masks.numpy(), mask_offs

    def _settings(self) -> dict[str, np.ndarray]:
        """Each model's current settings (live knobs included), as per-model arrays."""
        source = tuple((t.config, t.optimizer_.param_groups[0]["lr"],
                        t.optimizer_.param_groups[0]["weight_decay"]) for t in self.trainers)
        if self._settings_for is not None and self._settings_for[0] == source:
            return self._settings_for[1]
        rows = []
        for t in self.trainers:
            c, group = t.config, t.optimizer_.param_groups[0]
            p = c.dropout
            rows.append((
                float(group["lr"]), float(group["weight_decay"]), c.l1, c.l2,
                1.0 / (1.0 - p) if p > 0 else 0.0,
                0.5 * c.augment_strength if c.augment == "jitter" else 0.0,
                c.label_smoothing if t.classification else 0.0, float(c.max_norm),
            ))
        names = ("lr", "wd", "l1", "l2", "keep_scale", "sigma", "smoothing", "max_norm")
        columns = np.array(rows, np.float64).T
        settings = {name: np.ascontiguousarray(col) for name, col in zip(names, columns)}
        self._settings_for = (source, settings)
        return settings

    def _all(self, active: np.ndarray | None) -> np.ndarray:
        if active is None:
            return np.ones(len(self.trainers), np.bool_)
        return np.asarray(active, np.bool_)

    def epoch(self, active: np.ndarray | None = None) -> np.ndarray:
        """Train every active model (all by default) one epoch in place; each model's mean
        train-mode data loss (undefined for inactive rows)."""
        active = self._all(active)
        rows = [k for k, on in enumerate(active.tolist()) if on]
        first = self.trainers[rows[0]]
        n = self.x.shape[1]
        size = first.config.batch_size
        perm, batch, noise, masks, mask_offs = self._random_draws(rows, size or n)
        group = first.optimizer_.param_groups[0]
        b1, b2 = group.get("betas", (0.9, 0.999))
        s = self._settings()
        losses = np.zeros(len(self.trainers))
        kernel.train_epochs(
            self.P, self.G, self.M, self.V, self.steps, self.offs, self.dims, self.act,
            self.x, self.yc, self.yr, self.classification, perm, batch, masks, mask_offs,
            s["keep_scale"], noise, s["sigma"], OPTIMIZERS[self.optimizer], s["lr"], s["wd"],
            s["l1"], s["l2"], 0.9, float(b1), float(b2), float(group.get("eps", 1e-8)),
            s["smoothing"], s["max_norm"], active, losses,
        )
        return losses

    def measure(self, active: np.ndarray | None = None) -> list[tuple[float, ...]]:
        """Each model's eval-mode (train loss, val loss, train score, val score, weight L2
        norm, L1 norm, sparsity), as Trainer.record_epoch takes them."""
        active = self._all(active)
        res = np.zeros((len(self.trainers), 7))
        kernel.measure_many(self.P, self.offs, self.dims, self.act, self.x_all, self.n_train,
                            self.yc, self.yr, self.classification, active, res)
        out = []
        for t, row in zip(self.trainers, res.tolist()):
            if not self.classification:  # sums of squares -> R^2
                sst_tr, sst_va = t.target_spread
                row[2] = 1 - row[2] / sst_tr if sst_tr else 0.0
                row[3] = 1 - row[3] / sst_va if sst_va else 0.0
            out.append(tuple(row))
        return out
