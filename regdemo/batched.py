"""Train many configs to the end and return their summaries (the sweep's unit of work).

Configs with equal `stack_key`s (plain MLPs, same dataset sizes, widths, activation,
optimizer and batch size) train as one stacked model: K nets' weights in (K, out, in)
tensors, one `baddbmm` per layer for all of them. Everything else is per model: split,
init, random stream (batch order, dropout masks), lr, L1, L2, weight decay, dropout p,
label smoothing, early stopping, epochs, divergence. Each model keeps its own Trainer, so
it ends as a separate `fit()` would: the same summary within float tolerance (losses agree
to ~1e-6 relative, usually ~1e-7; weights are often bitwise equal). Batch norm, residual
blocks, stochastic depth, the CNN and augmentation fall back to `Trainer(c).fit()`.
Small nets gain most (2-8-8-2 at batch 10: ~15x model-epochs/s at K=32); wide ones are
compute-bound (128-128: 1.1-1.5x). See bench/batched.py.
"""

from __future__ import annotations

import math
import time
from collections.abc import Hashable
from typing import Any

import torch
from torch import nn

from regdemo import models, regularizers
from regdemo.config import Config
from regdemo.engine import Trainer
from regdemo.regularizers import ZERO_TOL

# Adam's defaults, as Trainer's torch.optim.Adam uses them.
_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8
# Stack size: K * (n_train + n_val) * widest layer floats of eval activations, at most this
# (or _MIN_STACK models). Measured on a 512 KB-L2 core: 32-32 nets ran 1.6x faster in stacks
# of 16 than of 32; 8-8 nets still gained up to 64; 128-128 nets peaked near 8-16.
_STACK_FLOATS = 2**18
_MIN_STACK = 8


def stack_key(config: Config) -> Hashable | None:
    """Configs with equal keys can train as one stacked model; None: not supported."""
    c = config
    if c.arch != "mlp" or c.batch_norm or c.residual or c.augment != "none" or c.features:
        # batch statistics, drop-path, convs, augmentation and feature maps stay per-run
        return None
    # Per-model knobs (lr, penalties, dropout, smoothing, seed, noise, early stopping,
    # epochs) are left out: they change values, not shapes or the order of steps.
    return (c.dataset, c.n_train, c.n_val, c.hidden, c.activation, c.optimizer, c.batch_size)


def train_many(configs: list[Config]) -> list[dict[str, Any]]:
    """Train each config to the end and return `summary()` dicts, in the configs' order."""
    results: list[dict[str, Any] | None] = [None] * len(configs)
    groups: dict[Hashable, list[int]] = {}
    for i, config in enumerate(configs):
        key = stack_key(config)
        if key is None:
            results[i] = _alone(config)
        else:
            groups.setdefault(key, []).append(i)
    for members in groups.values():
        if len(members) == 1:  # nothing to share: the plain trainer is the reference
            results[members[0]] = _alone(configs[members[0]])
            continue
        trainers = [Trainer(configs[i]) for i in members]
        fit_stacked(trainers)
        for i, trainer in zip(members, trainers):
            results[i] = trainer.summary()
    return results  # type: ignore[return-value]


def _alone(config: Config) -> dict[str, Any]:
    trainer = Trainer(config)
    trainer.fit()
    return trainer.summary()


def _chunks(trainers: list[Trainer]) -> list[list[Trainer]]:
    c = trainers[0].config
    widest = max((*c.hidden, trainers[0].x_train.shape[1], 2))
    size = max(_MIN_STACK, _STACK_FLOATS // ((c.n_train + c.n_val) * widest))
    n_chunks = -(-len(trainers) // size)
    size = -(-len(trainers) // n_chunks)  # even chunks: 33 models go 17 + 16, not 32 + 1
    return [trainers[i : i + size] for i in range(0, len(trainers), size)]


def fit_stacked(trainers: list[Trainer]) -> None:
    """Train fresh trainers with equal `stack_key`s to the end, in stacks of a fitting size.

    Afterwards each trainer holds what `trainer.fit()` would have left: history, weights
    (restored on an early stop), stop reason, early-stopping state and optimizer state.
    A record's `wall_time` is the model's share of its stack's epoch.
    """
    keys = {stack_key(t.config) for t in trainers}
    if len(keys) != 1 or None in keys:
        raise ValueError("fit_stacked needs supported configs with one stack_key")
    if any(t.epoch or t.stopped for t in trainers):
        raise ValueError("fit_stacked needs fresh trainers")
    for chunk in _chunks(trainers):
        stack = _Stack(chunk)
        while stack.trainers:
            stack.epoch()


class _Stack:
    """The still-running trainers' nets as stacked tensors; row k mirrors trainers[k]."""

    def __init__(self, trainers: list[Trainer]):
        first = trainers[0]
        c = first.config
        # Equal learning rates side by side: fused Adam takes one lr per call, on a slice.
        trainers = sorted(trainers, key=lambda t: t.config.lr)
        self.trainers = trainers
        self.classification = first.classification
        self.n_train = first.n_train
        self.n_classes = first.split.n_classes
        self.activation = models.ACTIVATION_MODULES[c.activation]()
        self.optimizer = c.optimizer
        self.batch_size = c.batch_size
        self.step_count = 0
        self.linears = [
            [m for m in t.model_.modules() if isinstance(m, nn.Linear)] for t in trainers
        ]

        def stack(get) -> torch.Tensor:
            return torch.stack([get(t) for t in trainers])

        n_layers = len(self.linears[0])
        self.weights = [
            torch.stack([ls[j].weight.detach() for ls in self.linears]).requires_grad_()
            for j in range(n_layers)
        ]
        self.biases = [
            torch.stack([ls[j].bias.detach() for ls in self.linears]).requires_grad_()
            for j in range(n_layers)
        ]
        self.x_train = stack(lambda t: t.x_train)
        self.y_train = stack(lambda t: t.y_train)
        self.x_all = stack(lambda t: t.x_all)
        self.y_all = stack(lambda t: torch.cat([t.y_train, t.y_val]))
        self.exp_avgs = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sqs = [torch.zeros_like(p) for p in self.params]
        self.momenta: list[torch.Tensor] | None = None
        self._coefficients()
        self._point_models()

    # ----------------------------------------------------------------- state
    @property
    def params(self) -> list[torch.Tensor]:
        return self.weights + self.biases

    def _coefficients(self) -> None:
        """Per-model knobs as (K, 1, 1) columns, and whether any model uses each."""
        cs = [t.config for t in self.trainers]

        def col(values) -> torch.Tensor:
            return torch.tensor(values, dtype=torch.float32).reshape(-1, 1, 1)

        coupled = self.optimizer != "adamw"  # weight decay joins the gradient, as L2 does
        self.grad_decay = col([c.l2 + (c.weight_decay if coupled else 0.0) for c in cs])
        self.any_grad_decay = any(c.l2 > 0 or (coupled and c.weight_decay > 0) for c in cs)
        self.shrink = col([1.0 - c.lr * c.weight_decay for c in cs])
        self.any_shrink = not coupled and any(c.weight_decay > 0 for c in cs)
        self.l1_step = col([c.lr * c.l1 for c in cs])
        self.neg_lr = col([-c.lr for c in cs])
        self.lr_runs = []  # (start, stop, lr) of equal learning rates
        for k, c in enumerate(cs):
            if self.lr_runs and self.lr_runs[-1][2] == c.lr:
                self.lr_runs[-1][1] = k + 1
            else:
                self.lr_runs.append([k, k + 1, c.lr])
        self.any_l1 = any(c.l1 > 0 for c in cs)
        self.radius = col([c.max_norm if c.max_norm > 0 else math.inf for c in cs])
        self.any_max_norm = any(c.max_norm > 0 for c in cs)
        self.droppers = [k for k, c in enumerate(cs) if c.dropout > 0]
        self.keep_prob = [1.0 - c.dropout for c in cs]
        self.drop_scale = [1.0 / (1.0 - c.dropout) for c in cs]
        eps = [c.label_smoothing for c in cs]
        self.any_smoothing = any(e > 0 for e in eps)
        self.nll_share = col([1.0 - e for e in eps]).reshape(-1)
        self.smooth_share = col([e / max(self.n_classes, 1) for e in eps]).reshape(-1)

    def _point_models(self) -> None:
        """Make each trainer's parameters views of its row, so it always sees its weights."""
        for k, linears in enumerate(self.linears):
            for j, lin in enumerate(linears):
                lin.weight.data = self.weights[j].detach()[k]
                lin.bias.data = self.biases[j].detach()[k]

    def _release(self, k: int) -> None:
        """Give a stopped trainer its own copy of weights and optimizer state."""
        trainer = self.trainers[k]
        for lin in self.linears[k]:
            lin.weight.data = lin.weight.data.clone()
            lin.bias.data = lin.bias.data.clone()
        own = [lin.weight for lin in self.linears[k]] + [lin.bias for lin in self.linears[k]]
        state = trainer.optimizer_.state
        for i, p in enumerate(own):
            if self.optimizer in ("adam", "adamw"):
                state[p] = {
                    "step": torch.tensor(float(self.step_count)),
                    "exp_avg": self.exp_avgs[i][k].clone(),
                    "exp_avg_sq": self.exp_avg_sqs[i][k].clone(),
                }
            elif self.momenta is not None:
                state[p] = {"momentum_buffer": self.momenta[i][k].clone()}

    def _select(self, keep: list[int]) -> None:
        """Drop stopped models from the stack, so they cost nothing and poison nothing."""
        idx = torch.tensor(keep)

        def pick(t: torch.Tensor, leaf: bool = False) -> torch.Tensor:
            t = t.detach()[idx]
            return t.requires_grad_() if leaf else t

        self.weights = [pick(w, True) for w in self.weights]
        self.biases = [pick(b, True) for b in self.biases]
        self.exp_avgs = [pick(t) for t in self.exp_avgs]
        self.exp_avg_sqs = [pick(t) for t in self.exp_avg_sqs]
        if self.momenta is not None:
            self.momenta = [pick(t) for t in self.momenta]
        self.x_train, self.y_train = pick(self.x_train), pick(self.y_train)
        self.x_all, self.y_all = pick(self.x_all), pick(self.y_all)
        self.trainers = [self.trainers[k] for k in keep]
        self.linears = [self.linears[k] for k in keep]
        self._coefficients()
        self._point_models()

    # ----------------------------------------------------------------- training
    def _forward(self, x: torch.Tensor, train: bool) -> torch.Tensor:
        n_hidden = len(self.weights) - 1
        for j in range(n_hidden):
            x = self.activation(
                torch.baddbmm(self.biases[j].unsqueeze(1), x, self.weights[j].transpose(1, 2))
            )
            if train and self.droppers:
                x = x * self._dropout_mask(x)
        return torch.baddbmm(self.biases[-1].unsqueeze(1), x, self.weights[-1].transpose(1, 2))

    def _dropout_mask(self, x: torch.Tensor) -> torch.Tensor:
        """Each model's mask from its own generator, drawn as SeededDropout draws it."""
        mask = torch.ones_like(x)
        for k in self.droppers:
            # Scale folded into the mask: x * (keep * s) equals SeededDropout's x * keep * s.
            mask[k].bernoulli_(self.keep_prob[k], generator=self.trainers[k].train_generator)
            mask[k].mul_(self.drop_scale[k])
        return mask

    def _loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-model mean data loss (K,), label smoothing as F.cross_entropy computes it."""
        if not self.classification:
            return (out - target).pow(2).mean((1, 2))
        logp = torch.log_softmax(out, -1)
        nll = -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1).mean(1)
        if not self.any_smoothing:
            return nll
        smooth = -logp.sum(-1).mean(1)
        return self.nll_share * nll + smooth * self.smooth_share

    def _batches(self):
        n, size = self.n_train, self.batch_size
        if size == 0 or size >= n:
            return [None]
        # One permutation per model from its own generator, as Trainer._batches draws it.
        perm = torch.stack(
            [torch.randperm(n, generator=t.train_generator) for t in self.trainers]
        )
        return [perm[:, start : start + size] for start in range(0, n, size)]

    def _train(self) -> list[float]:
        """One epoch for every model; returns each model's mean train-mode batch loss."""
        rows = torch.arange(len(self.trainers)).unsqueeze(1)
        total, batches = None, self._batches()
        for idx in batches:
            xb = self.x_train if idx is None else self.x_train[rows, idx]
            yb = self.y_train if idx is None else self.y_train[rows, idx]
            loss = self._loss(self._forward(xb, train=True), yb)
            for p in self.params:
                p.grad = None
            # Each model's loss touches only its own rows, so the sum's gradient is theirs.
            loss.sum().backward()
            with torch.no_grad():
                self._step()
            total = loss.detach() if total is None else total + loss.detach()
        return [v / len(batches) for v in total.tolist()]

    def _step(self) -> None:
        params, grads = self.params, [p.grad for p in self.params]
        if self.any_grad_decay:  # L2 (and coupled weight decay) on weights only
            for w in self.weights:
                w.grad.addcmul_(w, self.grad_decay)
        self.step_count += 1
        if self.optimizer in ("adam", "adamw"):
            if self.any_shrink:  # AdamW's decoupled decay, before the Adam step as fused does
                for w in self.weights:
                    w.mul_(self.shrink)
            steps = [torch.tensor(float(self.step_count))] * len(params)
            state = (params, grads, self.exp_avgs, self.exp_avg_sqs)
            for start, stop, lr in self.lr_runs:
                if len(self.lr_runs) > 1:
                    part = [[t[start:stop] for t in ts] for ts in state]
                else:
                    part = state
                # What torch.optim.Adam(fused=True).step() calls, minus its Python overhead.
                torch._fused_adam_(
                    *part, [], steps, amsgrad=False, lr=lr, beta1=_BETA1, beta2=_BETA2,
                    weight_decay=0.0, eps=_EPS, maximize=False, grad_scale=None,
                    found_inf=None,
                )
        else:
            if self.optimizer == "momentum":
                if self.momenta is None:
                    self.momenta = [g.clone() for g in grads]
                else:
                    torch._foreach_mul_(self.momenta, 0.9)
                    torch._foreach_add_(self.momenta, grads)
                grads = self.momenta
            if len(self.lr_runs) == 1:
                torch._foreach_add_(params, grads, alpha=-self.lr_runs[0][2])
            else:
                for p, g in zip(params, grads):
                    p.addcmul_(g, self.neg_lr if p.dim() == 3 else self.neg_lr[:, :, 0])
        if self.any_l1:
            self._soft_threshold()
        if self.any_max_norm:  # a radius of 0 (off) is no bound: infinity for that model
            regularizers.max_norm_(regularizers.hidden_weights(self.weights), self.radius)

    def _soft_threshold(self) -> None:
        """L1's proximal step in the optimizer's geometry, as regularizers.l1_thresholds."""
        for i, w in enumerate(self.weights):
            t = self.l1_step
            if self.optimizer in ("adam", "adamw"):
                v_hat = self.exp_avg_sqs[i] / (1 - _BETA2 ** float(self.step_count))
                t = (v_hat.sqrt() + _EPS).reciprocal() * t
            w.copy_(w.sign() * (w.abs() - t).clamp_min(0))

    # ----------------------------------------------------------------- measuring
    @torch.inference_mode()
    def _scores(self) -> list[list[float]]:
        """Per model: train/val loss and score (eval mode), L2 norm, L1 norm, sparsity."""
        out = self._forward(self.x_all, train=False)
        n, k = self.n_train, len(self.trainers)
        if self.classification:
            # Classes on dim 1: log_softmax over 2 classes in the last dim ran 2x slower.
            logp = torch.log_softmax(out.transpose(1, 2), 1)
            nll = -logp.gather(1, self.y_all.unsqueeze(1)).squeeze(1)
            hit = (out.argmax(-1) == self.y_all).float()
            figures = [nll[:, :n].mean(1), nll[:, n:].mean(1), hit[:, :n].mean(1),
                       hit[:, n:].mean(1)]
        else:
            se = (out - self.y_all).pow(2).squeeze(-1)
            figures = [se[:, :n].sum(1), se[:, n:].sum(1)]
        flat = torch.cat([w.reshape(k, -1) for w in self.weights], 1)
        size = flat.shape[1]
        figures += [
            torch.linalg.vector_norm(flat, dim=1), flat.abs().sum(1),
            (flat.abs() <= ZERO_TOL).sum(1).float(),  # a count: exact in float32
        ]
        rows = torch.stack(figures, 1).tolist()
        for row in rows:
            row[-1] /= size  # in double, as weight_stats divides
        if not self.classification:  # SSE -> MSE and R^2, as Trainer.scores
            n_val = self.x_all.shape[1] - n
            fixed = []
            for t, (sse_tr, sse_va, *rest) in zip(self.trainers, rows):
                sst = t.target_spread
                fixed.append([
                    sse_tr / n, sse_va / n_val,
                    1 - sse_tr / sst[0] if sst[0] else 0.0,
                    1 - sse_va / sst[1] if sst[1] else 0.0, *rest,
                ])
            rows = fixed
        return rows

    def epoch(self) -> None:
        """Train and measure one epoch; stopped models leave the stack."""
        t0 = time.perf_counter()
        mean_losses = self._train()
        rows = self._scores()
        share = (time.perf_counter() - t0) / len(self.trainers)  # each model's part of it
        keep = []
        for k, (t, mean_loss, row) in enumerate(zip(self.trainers, mean_losses, rows)):
            t.record_epoch(mean_loss, row, share)  # the tail of Trainer.step, per model
            if t.stopped:
                self._release(k)
            else:
                keep.append(k)
        if len(keep) < len(self.trainers):
            if keep:
                self._select(keep)
            else:
                self.trainers = []
