"""The fused epoch's numba kernels: forward, backward, optimizer step and measuring.

One kernel trains K same-shaped plain MLPs, each on its own row of flat buffers and with
its own settings: a single run is a stack of one, a sweep's group a stack of many. It is
the compiled half of the update rule; `engine.Trainer._eager_epoch` is the torch half,
and the parity tests hold the two together (docs/architecture.md).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

ZERO_TOL = 1e-8  # same as regularizers.ZERO_TOL: below this a weight counts as zero
# Products below this many multiply-adds run as plain loops: a BLAS call costs more there.
SMALL = 1 << 16
# Let the compiler reorder sums (vectorised loops); never assume "no NaN", since divergence
# is detected from the NaNs the kernel produces.
_FAST = {"reassoc", "contract", "nsz", "arcp"}


@njit(cache=True, nogil=True)
def _exp(v):
    """exp, 0 far below 1: libm's underflow path (it sets errno) was 40x slower."""
    return math.exp(v) if v > -80.0 else 0.0


# tanh(x) ~ x p(x^2) / q(x^2) on [-7.9, 7.9] (Eigen's float32 fit; |tanh| rounds to 1
# beyond): within 5 ulp of libm's tanh (torch's vectorised one: 2 ulp). A loop of it
# vectorises; calling libm per element did not, and was 5x slower on a 500x8 layer.
_TANH_P = (-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11,
           5.12229709037114e-08, 1.48572235717979e-05, 6.37261928875436e-04,
           4.89352455891786e-03)
_TANH_Q = (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03,
           4.89352518554385e-03)
_TANH_CLAMP = 7.90531110763549805


@njit(cache=True, nogil=True, fastmath={"contract"})
def _tanh(zf, hf):
    """hf = tanh(zf) for flat float32 arrays, by the rational fit above."""
    f32 = np.float32
    p0, p1, p2, p3 = f32(_TANH_P[0]), f32(_TANH_P[1]), f32(_TANH_P[2]), f32(_TANH_P[3])
    p4, p5, p6 = f32(_TANH_P[4]), f32(_TANH_P[5]), f32(_TANH_P[6])
    q0, q1, q2, q3 = f32(_TANH_Q[0]), f32(_TANH_Q[1]), f32(_TANH_Q[2]), f32(_TANH_Q[3])
    lim, tiny = f32(_TANH_CLAMP), f32(0.0004)
    for i in range(zf.size):
        v = zf[i]
        x = min(max(v, -lim), lim)
        x2 = x * x
        p = p0 * x2 + p1
        p = p * x2 + p2
        p = p * x2 + p3
        p = p * x2 + p4
        p = p * x2 + p5
        p = (p * x2 + p6) * x
        q = ((q0 * x2 + q1) * x2 + q2) * x2 + q3
        hf[i] = v if abs(v) < tiny else p / q


@njit(cache=True, nogil=True)
def _activate(z, code, h):
    """h = activation(z), elementwise."""
    zf, hf = z.ravel(), h.ravel()
    if code == 1:
        _tanh(zf, hf)
        return
    for i in range(zf.size):
        v = zf[i]
        if code == 0:
            r = v if v > 0 else 0.0
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
def _linear_backward(dz, a, w, gw, gb, da, want_da):
    """A linear layer's backward pass: gw = dz.T @ a, gb = dz's column sums and, if
    want_da, da = dz @ w (the gradient w.r.t. the layer's input a)."""
    n, k = a.shape
    m = dz.shape[1]
    gb[:] = 0.0
    for i in range(n):
        gb += dz[i]
    if n * k * m >= SMALL:
        gw[:] = np.dot(dz.T, a)
        if want_da:
            da[:] = np.dot(dz, w)
        return
    gw[:] = 0.0
    if want_da:
        da[:] = 0.0
    for i in range(n):
        for o in range(m):
            d = dz[i, o]
            for j in range(k):
                gw[o, j] += d * a[i, j]
            if want_da:
                for j in range(k):
                    da[i, j] += d * w[o, j]


@njit(cache=True, nogil=True)
def _train_one(P, G, M, V, steps, offs, dims, act, x, yc, yr, classification, perm,
               batch, masks, mask_offs, keep_scale, noise, sigma, opt, lr, wd, l1, l2,
               momentum, b1, b2, eps, smoothing, max_norm):
    """Train one model one epoch over `perm` in batches; its mean train-mode data loss."""
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
            if sigma > 0:  # jitter; strength 0 adds nothing, as 0 * noise does
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
            gb = G[offs[layer, 1]:offs[layer, 1] + n_out]
            da = grads[layer][:bsz]  # the first layer's input needs no gradient
            _linear_backward(dz, inputs[layer][:bsz], w, gw, gb, da, layer > 0)
            if layer > 0:
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
def train_epochs(P, G, M, V, steps, offs, dims, act, x, yc, yr, classification, perm, batch,
                 masks, mask_offs, keep_scale, noise, sigma, opt, lr, wd, l1, l2, momentum,
                 b1, b2, eps, smoothing, max_norm, active, losses):
    """One epoch for each active model k of a stack, on row k of every per-model array.

    Shared: the layout (offs, dims), activation, optimizer kind, batch size, betas. Per
    model: parameters and optimizer state, data, batch order, masks, noise, and the
    settings lr, wd, l1, l2, keep_scale, sigma, smoothing, max_norm. G is scratch.
    Writes each active model's mean train-mode data loss into losses[k].
    """
    for k in range(P.shape[0]):
        if active[k]:
            losses[k] = _train_one(
                P[k], G, M[k], V[k], steps[k], offs, dims, act, x[k], yc[k], yr[k],
                classification, perm[k], batch, masks[k], mask_offs, keep_scale[k],
                noise[k], sigma[k], opt, lr[k], wd[k], l1[k], l2[k], momentum, b1, b2, eps,
                smoothing[k], max_norm[k])


@njit(cache=True, nogil=True)
def _measure_one(P, offs, dims, act, x_all, n_train, yc, yr, classification, res):
    """Eval-mode (train loss, val loss, train score, val score, norm, l1, sparsity) into res.

    Rows below n_train are training points, the rest validation points. Scores are
    accuracies for classification and sums of squared errors for regression (the caller
    turns those into MSE and R^2).
    """
    out = _forward(P, offs, dims, act, x_all)
    res[:] = 0.0
    k = out.shape[1]
    n = out.shape[0]
    for i in range(n):
        is_train = i < n_train
        if classification:
            y = yc[i]
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
                d = out[i, j] - yr[i, j]
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


@njit(cache=True, nogil=True)
def measure_many(P, offs, dims, act, x_all, n_train, yc, yr, classification, active, res):
    """`_measure_one` for each active model k of a stack, into res[k]."""
    for k in range(P.shape[0]):
        if active[k]:
            _measure_one(P[k], offs, dims, act, x_all[k], n_train, yc[k], yr[k],
                         classification, res[k])


