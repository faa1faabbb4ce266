"""A fused epoch for plain MLPs: forward, backward, optimizer step and measuring in one kernel.

Eager PyTorch spends ~300 us of dispatch on a mini-batch step of a small net that needs ~2 us
of arithmetic. This module compiles the whole epoch of a plain MLP (linear layers and
activations, dropout, input jitter, L1/L2/weight decay, label smoothing, SGD/momentum/Adam/
AdamW) with numba, so a batch-10 epoch costs microseconds of overhead, not milliseconds.

It trains the torch model's own parameters and optimizer state in place: they are re-pointed
at views of flat buffers the kernel updates. The eager path can take over at any epoch (a
live change to something the kernel does not do) and the views, the weights panel, early
stopping and fork all keep seeing the same tensors. Random draws (batch order, dropout masks,
jitter noise) come from the run's torch generator in the eager path's order, so both paths
see the same randomness; results agree within float rounding (tested).
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
from torch import nn

try:  # numba is a requirement; without it (or with REGDEMO_FUSED=0) the eager path runs
    from numba import njit
except ImportError:  # pragma: no cover - exercised only on a broken install
    njit = None

ACTIVATIONS = {"relu": 0, "tanh": 1, "sigmoid": 2, "leaky_relu": 3, "elu": 4, "gelu": 5}
OPTIMIZERS = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 3}
AUGMENTS = ("none", "jitter")
ACTIVATION_CLASSES = ("ReLU", "Tanh", "Sigmoid", "LeakyReLU", "ELU", "GELU")
ZERO_TOL = 1e-8  # same as regularizers.ZERO_TOL: below this a weight counts as zero


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
    return njit is not None and os.environ.get("REGDEMO_FUSED", "1") != "0"


def unsupported(config, model: nn.Module) -> str | None:
    """Why the fused epoch cannot train this run now, or None when it can."""
    if config.arch != "mlp" or config.residual or config.batch_norm:
        return "not a plain MLP"
    if config.activation not in ACTIVATIONS:
        return f"activation {config.activation}"
    if config.augment not in AUGMENTS:
        return f"augmentation {config.augment}"
    if config.optimizer not in OPTIMIZERS:
        return f"optimizer {config.optimizer}"
    kinds = {type(m).__name__ for m in model.modules()} - {
        "Sequential", "Linear", "SeededDropout", *(ACTIVATION_CLASSES)
    }
    return f"layers {sorted(kinds)}" if kinds else None


# ---------------------------------------------------------------------------- the kernel
# Products below this many multiply-adds run as plain loops: a BLAS call costs more there.
SMALL = 1 << 16
# Let the compiler reorder sums (vectorised loops); never assume "no NaN", since divergence
# is detected from the NaNs the kernel produces.
_FAST = {"reassoc", "contract", "nsz", "arcp"}

if njit is not None:

    @njit(cache=True, nogil=True)
    def _exp(v):
        """exp, 0 far below 1: libm's underflow path (it sets errno) was 40x slower."""
        return math.exp(v) if v > -80.0 else 0.0

    @njit(cache=True, nogil=True)
    def _activate(z, code, h):
        """h = activation(z), elementwise."""
        zf, hf = z.ravel(), h.ravel()
        for i in range(zf.size):
            v = zf[i]
            if code == 0:
                r = v if v > 0 else 0.0
            elif code == 1:
                r = math.tanh(v)
            elif code == 2:
                r = 1.0 / (1.0 + _exp(-v)) if v > -80.0 else 0.0
            elif code == 3:
                r = v if v > 0 else 0.01 * v
            elif code == 4:
                r = v if v > 0 else (math.expm1(v) if v > -80.0 else -1.0)
            else:
                r = 0.5 * v * (1.0 + math.erf(v * 0.7071067811865476))
            hf[i] = r

    @njit(cache=True, nogil=True)
    def _activation_grad(z, h, code, g):
        """g *= activation'(z), elementwise (h is the activation's output)."""
        zf, hf, gf = z.ravel(), h.ravel(), g.ravel()
        for i in range(zf.size):
            v = zf[i]
            if code == 0:
                d = 1.0 if v > 0 else 0.0
            elif code == 1:
                d = 1.0 - hf[i] * hf[i]
            elif code == 2:
                d = hf[i] * (1.0 - hf[i])
            elif code == 3:
                d = 1.0 if v > 0 else 0.01
            elif code == 4:
                d = 1.0 if v > 0 else hf[i] + 1.0
            else:
                d = 0.5 * (1.0 + math.erf(v * 0.7071067811865476)) + v * _exp(
                    -0.5 * v * v) * 0.3989422804014327
            gf[i] = gf[i] * d

    @njit(cache=True, nogil=True)
    def _forward(P, offs, dims, act, x):
        """Eval-mode forward pass (no dropout): the output layer's values."""
        a = x
        n_layers = offs.shape[0]
        for layer in range(n_layers):
            n_in, n_out = dims[layer], dims[layer + 1]
            w = P[offs[layer, 0]:offs[layer, 0] + n_out * n_in].reshape((n_out, n_in))
            b = P[offs[layer, 1]:offs[layer, 1] + n_out]
            z = np.dot(a, w.T) + b
            if layer < n_layers - 1:
                h = np.empty_like(z)
                _activate(z, act, h)
                a = h
            else:
                a = z
        return a

    @njit(cache=True, nogil=True)
    def _loss_grad(out, yc, yr, classification, smoothing, dz):
        """Mean data loss of a batch, and its gradient w.r.t. the outputs into dz."""
        n, k = out.shape
        total = 0.0
        if classification:
            for i in range(n):
                m = out[i, 0]
                for j in range(1, k):
                    m = max(m, out[i, j])
                s = 0.0
                for j in range(k):
                    s += _exp(out[i, j] - m)
                log_s = math.log(s)
                for j in range(k):
                    log_p = out[i, j] - m - log_s
                    q = smoothing / k + (1.0 - smoothing if j == yc[i] else 0.0)
                    total -= q * log_p
                    dz[i, j] = (_exp(log_p) - q) / n
        else:
            for i in range(n):
                for j in range(k):
                    d = out[i, j] - yr[i, j]
                    total += d * d
                    dz[i, j] = 2.0 * d / (n * k)
            return total / (n * k)
        return total / n

    @njit(cache=True, nogil=True, fastmath=_FAST)
    def _update(P, G, M, V, lo, hi, is_weight, opt, lr, wd, l1, l2, momentum, b1, b2, eps,
                bc1, bc2):
        """One optimizer step on P[lo:hi], then L1's proximal step on weights.

        Branches sit outside the loops so each loop vectorises.
        """
        # float32 scalars keep the loops in float32, as torch's own kernels compute.
        f32 = np.float32
        lr_, decay = f32(lr), f32((l2 if is_weight else 0.0) + (wd if opt != 3 else 0.0))
        if opt == 0:  # SGD; L2's gradient and coupled decay are both lambda * w
            for j in range(lo, hi):
                P[j] -= lr_ * (G[j] + decay * P[j])
        elif opt == 1:  # SGD with momentum
            mom = f32(momentum)
            for j in range(lo, hi):
                M[j] = mom * M[j] + (G[j] + decay * P[j])
                P[j] -= lr_ * M[j]
        else:  # Adam (decay coupled into the gradient) or AdamW (decoupled shrink)
            shrink = f32(1.0 - lr * wd if opt == 3 else 1.0)
            step, root = f32(lr / bc1), f32(1.0 / math.sqrt(bc2))
            one_b1, b2_, one_b2, eps_ = f32(1.0 - b1), f32(b2), f32(1.0 - b2), f32(eps)
            for j in range(lo, hi):
                g = G[j] + decay * P[j]
                P[j] *= shrink
                M[j] += (g - M[j]) * one_b1
                V[j] = b2_ * V[j] + one_b2 * g * g
                P[j] -= step * M[j] / (np.sqrt(V[j]) * root + eps_)
        if is_weight and l1 > 0:
            for j in range(lo, hi):
                # SGD steps by lr; Adam scales each coordinate's step (proximal Adam).
                threshold = lr * l1 if opt <= 1 else lr * l1 / (math.sqrt(V[j] / bc2) + eps)
                w = P[j]
                shrunk = abs(w) - threshold
                P[j] = 0.0 if shrunk <= 0 else (shrunk if w > 0 else -shrunk)

    @njit(cache=True, nogil=True)
    def _max_norm(P, lo, n_in, n_out, radius):
        """Project each row of the [n_out, n_in] weights at P[lo:] onto the ball of
        `radius` (regularizers.max_norm_'s rule, in the kernel's float32)."""
        for o in range(n_out):
            start = lo + o * n_in
            total = 0.0
            for j in range(start, start + n_in):
                total += float(P[j]) * float(P[j])
            norm = math.sqrt(total)
            if norm > radius:
                scale = np.float32(radius / norm)
                for j in range(start, start + n_in):
                    P[j] *= scale

    @njit(cache=True, nogil=True, fastmath=_FAST)
    def _linear(a, w, b, out):
        """out = a @ w.T + b (a linear layer's forward pass)."""
        n, k = a.shape
        m = w.shape[0]
        if n * k * m >= SMALL:
            out[:] = np.dot(a, w.T)
            for i in range(n):
                out[i] += b
            return
        for i in range(n):
            for o in range(m):
                s = b[o]
                for j in range(k):
                    s += a[i, j] * w[o, j]
                out[i, o] = s

    @njit(cache=True, nogil=True, fastmath=_FAST)
    def _grad_weight(dz, a, gw):
        """gw = dz.T @ a (the weight gradient of a linear layer)."""
        n, k = a.shape
        m = dz.shape[1]
        if n * k * m >= SMALL:
            gw[:] = np.dot(dz.T, a)
            return
        gw[:] = 0.0
        for i in range(n):
            for o in range(m):
                d = dz[i, o]
                for j in range(k):
                    gw[o, j] += d * a[i, j]

    @njit(cache=True, nogil=True, fastmath=_FAST)
    def _grad_input(dz, w, da):
        """da = dz @ w (the gradient w.r.t. a linear layer's input)."""
        n, m = dz.shape
        k = w.shape[1]
        if n * k * m >= SMALL:
            da[:] = np.dot(dz, w)
            return
        da[:] = 0.0
        for i in range(n):
            for o in range(m):
                d = dz[i, o]
                for j in range(k):
                    da[i, j] += d * w[o, j]

    @njit(cache=True, nogil=True)
    def train_epoch(P, G, M, V, steps, offs, dims, act, x, yc, yr, classification, perm,
                    batch, masks, mask_offs, keep_scale, noise, sigma, opt, lr, wd, l1, l2,
                    momentum, b1, b2, eps, smoothing, max_norm):
        """Train one epoch over `perm` in batches; returns the mean train-mode data loss."""
        n = perm.shape[0]
        n_layers = offs.shape[0]
        batch = min(batch, n)
        # Buffers for one batch, made once per epoch: each layer's input (after dropout),
        # pre-activation, activation, and the gradient w.r.t. its input.
        inputs = [np.empty((batch, dims[0]), np.float32)]
        zs = [np.empty((batch, dims[0]), np.float32)]
        hs = [np.empty((batch, dims[0]), np.float32)]
        grads = [np.empty((batch, dims[0]), np.float32)]
        for layer in range(n_layers):
            width = dims[layer + 1]
            zs.append(np.empty((batch, width), np.float32))
            hs.append(np.empty((batch, width), np.float32))
            inputs.append(np.empty((batch, width), np.float32))
            grads.append(np.empty((batch, width), np.float32))
        yb_c = np.empty(batch, np.int64)
        yb_r = np.empty((batch, yr.shape[1]), np.float32)
        scale = np.float32(keep_scale)
        total, n_batches = 0.0, 0
        for start in range(0, n, batch):
            stop = min(start + batch, n)
            rows = perm[start:stop]
            bsz = stop - start
            xb = inputs[0][:bsz]
            for i in range(bsz):
                xb[i] = x[rows[i]]
                if noise.shape[0] > 0:
                    xb[i] += np.float32(sigma) * noise[start + i]
                if classification:
                    yb_c[i] = yc[rows[i]]
                else:
                    yb_r[i] = yr[rows[i]]
            # Forward.
            for layer in range(n_layers):
                n_in, n_out = dims[layer], dims[layer + 1]
                w = P[offs[layer, 0]:offs[layer, 0] + n_out * n_in].reshape((n_out, n_in))
                b = P[offs[layer, 1]:offs[layer, 1] + n_out]
                z = zs[layer + 1][:bsz]
                _linear(inputs[layer][:bsz], w, b, z)
                if layer < n_layers - 1:
                    h = hs[layer + 1][:bsz]
                    _activate(z, act, h)
                    a = inputs[layer + 1][:bsz]
                    if keep_scale > 0:  # dropout: the eager path's mask, x * keep * scale
                        mask = masks[mask_offs[layer] + start * n_out:
                                     mask_offs[layer] + stop * n_out].reshape((bsz, n_out))
                        for i in range(bsz):
                            for j in range(n_out):
                                a[i, j] = h[i, j] * mask[i, j] * scale
                    else:
                        a[:] = h
            out = zs[n_layers][:bsz]
            dz = grads[n_layers][:bsz]
            total += _loss_grad(out, yb_c[:bsz], yb_r[:bsz], classification, smoothing, dz)
            n_batches += 1
            # Backward into G.
            for layer in range(n_layers - 1, -1, -1):
                n_in, n_out = dims[layer], dims[layer + 1]
                w = P[offs[layer, 0]:offs[layer, 0] + n_out * n_in].reshape((n_out, n_in))
                gw = G[offs[layer, 0]:offs[layer, 0] + n_out * n_in].reshape((n_out, n_in))
                _grad_weight(dz, inputs[layer][:bsz], gw)
                gb = G[offs[layer, 1]:offs[layer, 1] + n_out]
                gb[:] = 0.0
                for i in range(bsz):
                    gb += dz[i]
                if layer > 0:
                    da = grads[layer][:bsz]
                    _grad_input(dz, w, da)
                    if keep_scale > 0:
                        mask = masks[mask_offs[layer - 1] + start * n_in:
                                     mask_offs[layer - 1] + stop * n_in].reshape((bsz, n_in))
                        for i in range(bsz):
                            for j in range(n_in):
                                da[i, j] = da[i, j] * mask[i, j] * scale
                    _activation_grad(zs[layer][:bsz], hs[layer][:bsz], act, da)
                    dz = da
            # Optimizer step (the same step count for every parameter, as in torch).
            steps += 1.0
            t = steps[0]
            bc1, bc2 = 1.0 - b1 ** t, 1.0 - b2 ** t
            for layer in range(n_layers):
                n_in, n_out = dims[layer], dims[layer + 1]
                lo = offs[layer, 0]
                _update(P, G, M, V, lo, lo + n_out * n_in, True, opt, lr, wd, l1, l2,
                        momentum, b1, b2, eps, bc1, bc2)
                lo = offs[layer, 1]
                _update(P, G, M, V, lo, lo + n_out, False, opt, lr, 0.0, 0.0, 0.0,
                        momentum, b1, b2, eps, bc1, bc2)
            if max_norm > 0:
                for layer in range(n_layers - 1):  # hidden units' incoming weights
                    _max_norm(P, offs[layer, 0], dims[layer], dims[layer + 1], max_norm)
        return total / max(n_batches, 1)

    @njit(cache=True, nogil=True)
    def measure(P, offs, dims, act, x_all, n_train, yc_train, yc_val, yr_train, yr_val,
                classification):
        """Eval-mode (train loss, val loss, train score, val score, norm, l1, sparsity).

        Scores are accuracies for classification and sums of squared errors for regression
        (the caller turns those into MSE and R^2).
        """
        out = _forward(P, offs, dims, act, x_all)
        res = np.zeros(7)
        k = out.shape[1]
        n = out.shape[0]
        for i in range(n):
            is_train = i < n_train
            if classification:
                y = yc_train[i] if is_train else yc_val[i - n_train]
                m, best = out[i, 0], 0
                for j in range(1, k):
                    if out[i, j] > m:
                        m, best = out[i, j], j
                s = 0.0
                for j in range(k):
                    s += _exp(out[i, j] - m)
                loss = -(out[i, y] - m - math.log(s))
                hit = 1.0 if best == y else 0.0
            else:
                loss = 0.0
                for j in range(k):
                    d = out[i, j] - (yr_train[i, j] if is_train else yr_val[i - n_train, j])
                    loss += d * d
                hit = 0.0
            res[0 if is_train else 1] += loss
            res[2 if is_train else 3] += hit
        n_val = n - n_train
        if classification:
            res[0] /= n_train
            res[1] /= n_val
            res[2] /= n_train
            res[3] /= n_val
        else:
            res[2], res[3] = res[0], res[1]  # sums of squares, for R^2
            res[0] /= n_train * k
            res[1] /= n_val * k
        count = 0
        for layer in range(offs.shape[0]):
            lo = offs[layer, 0]
            for j in range(lo, lo + dims[layer] * dims[layer + 1]):
                w = P[j]
                res[4] += w * w
                res[5] += abs(w)
                if abs(w) <= ZERO_TOL:
                    res[6] += 1.0
                count += 1
        res[4] = math.sqrt(res[4])
        res[6] /= count
        return res


# ---------------------------------------------------------------------------- the driver
def _flat(tensors: list, sizes: list[int]) -> torch.Tensor:
    """A new flat float32 buffer holding the tensors' values one after another (0 for None)."""
    flat = torch.zeros(sum(sizes), dtype=torch.float32)
    offset = 0
    for t, size in zip(tensors, sizes):
        if t is not None:
            flat[offset:offset + size] = t.reshape(-1)
        offset += size
    return flat


class FusedMLP:
    """Binds a Trainer's MLP and optimizer to flat buffers and runs fused epochs on them."""

    def __init__(self, trainer):
        single_threaded_kernel_blas()  # before the first epoch: part of the numbers
        self.trainer = trainer
        model, opt = trainer.model_, trainer.optimizer_
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        params = [p for lin in linears for p in (lin.weight, lin.bias)]
        if {id(p) for g in opt.param_groups for p in g["params"]} != {id(p) for p in params}:
            raise ValueError("the optimizer does not train exactly the MLP's parameters")
        sizes = [p.numel() for p in params]
        starts = [0, *np.cumsum(sizes)[:-1].tolist()]
        self.offs = np.array(starts, np.int64).reshape(-1, 2)
        self.dims = np.array(
            [linears[0].in_features] + [lin.out_features for lin in linears], np.int64
        )

        def views(flat: torch.Tensor) -> list[torch.Tensor]:
            return [flat[s:s + p.numel()].view(p.shape) for s, p in zip(starts, params)]

        # Parameters and optimizer state become views of flat buffers, their values kept.
        self._p = _flat([p.data for p in params], sizes)
        for p, view in zip(params, views(self._p)):
            p.data = view
        self.P = self._p.numpy()
        self.G = np.zeros(len(self.P), np.float32)
        state = [opt.state[p] for p in params]  # creates empty entries for new runs
        if trainer.config.optimizer in ("adam", "adamw"):
            self._m = _flat([s.get("exp_avg") for s in state], sizes)
            self._v = _flat([s.get("exp_avg_sq") for s in state], sizes)
            step = float(state[0]["step"]) if "step" in state[0] else 0.0
            self._steps = torch.full((len(params),), step, dtype=torch.float32)
            for i, (s, m, v) in enumerate(zip(state, views(self._m), views(self._v))):
                s["exp_avg"], s["exp_avg_sq"] = m, v
                s["step"] = self._steps[i]  # a 0-d view: torch's fused Adam adds to it in place
        else:
            self._m = _flat([s.get("momentum_buffer") for s in state], sizes)
            self._v = torch.zeros(1)
            self._steps = torch.zeros(len(params), dtype=torch.float32)
            if trainer.config.optimizer == "momentum":
                # A zero buffer gives exactly torch's first momentum step (buffer = grad).
                for s, m in zip(state, views(self._m)):
                    s["momentum_buffer"] = m
        self.M, self.V, self.steps = self._m.numpy(), self._v.numpy(), self._steps.numpy()
        self._data()

    def _data(self):
        t = self.trainer
        self.x = t.x_train.numpy()
        self.x_all = t.x_all.numpy()
        if t.classification:
            self.yc, self.yc_val = t.y_train.numpy(), t.y_val.numpy()
            self.yr = self.yr_val = np.zeros((1, 1), np.float32)
        else:
            self.yr, self.yr_val = t.y_train.numpy(), t.y_val.numpy()
            self.yc = self.yc_val = np.zeros(1, np.int64)
        self.act = ACTIVATIONS[t.config.activation]

    def _random_draws(self, n: int, batch: int, gen: torch.Generator, config):
        """Batch order, jitter noise and dropout masks, drawn in the eager path's order."""
        widths = [int(d) for d in self.dims[1:-1]]
        p = config.dropout
        jitter = config.augment == "jitter"
        if batch >= n:
            perm, batch = np.arange(n, dtype=np.int64), n
        else:
            perm = torch.randperm(n, generator=gen).numpy()
        noise = torch.empty((n, self.x.shape[1]) if jitter else (0, 0), dtype=torch.float32)
        masks = torch.empty(n * sum(widths) if p > 0 else 0, dtype=torch.float32)
        mask_offs = np.zeros(max(len(widths), 1), np.int64)
        layer_masks = []
        if p > 0:
            mask_offs[: len(widths)] = n * np.concatenate([[0], np.cumsum(widths)[:-1]])
            layer_masks = [
                masks[int(o):int(o) + n * w].view(n, w) for o, w in zip(mask_offs, widths)
            ]
        if jitter or p > 0:
            for start in range(0, n, batch):
                stop = min(start + batch, n)
                if jitter:
                    noise[start:stop] = torch.randn((stop - start, self.x.shape[1]),
                                                    generator=gen)
                for m in layer_masks:
                    m[start:stop].bernoulli_(1.0 - p, generator=gen)
        return perm, batch, noise.numpy(), masks.numpy(), mask_offs

    def epoch(self) -> float:
        """Train one epoch in place; the mean train-mode data loss over its batches."""
        t = self.trainer
        c = t.config
        n = len(self.x)
        batch = n if c.batch_size == 0 else c.batch_size
        perm, batch, noise, masks, mask_offs = self._random_draws(n, batch, t.train_generator, c)
        group = t.optimizer_.param_groups[0]
        b1, b2 = group.get("betas", (0.9, 0.999))
        p = c.dropout
        loss = float(train_epoch(
            self.P, self.G, self.M, self.V, self.steps, self.offs, self.dims, self.act,
            self.x, self.yc, self.yr, t.classification, perm, batch, masks, mask_offs,
            1.0 / (1.0 - p) if p > 0 else 0.0, noise, 0.5 * c.augment_strength,
            OPTIMIZERS[c.optimizer], float(group["lr"]), float(group["weight_decay"]),
            c.l1, c.l2, 0.9, float(b1), float(b2), float(group.get("eps", 1e-8)),
            c.label_smoothing if t.classification else 0.0, float(c.max_norm),
        ))
        return loss

    def measure(self) -> tuple[float, float, float, float, float, float, float]:
        """Eval-mode losses, scores and weight statistics, as Trainer.record_epoch takes them."""
        t = self.trainer
        r = measure(self.P, self.offs, self.dims, self.act, self.x_all, len(self.x), self.yc,
                    self.yc_val, self.yr, self.yr_val, t.classification)
        train_loss, val_loss, train_score, val_score, norm, l1, sparsity = (float(v) for v in r)
        if not t.classification:
            sst_tr, sst_va = t.target_spread
            train_score = 1 - train_score / sst_tr if sst_tr else 0.0
            val_score = 1 - val_score / sst_va if sst_va else 0.0
        return train_loss, val_loss, train_score, val_score, norm, l1, sparsity
