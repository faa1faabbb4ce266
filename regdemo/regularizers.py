"""Weight penalties and weight statistics; only weight matrices and kernels are penalised."""

from __future__ import annotations

import torch
from torch import nn

# Below this magnitude a weight counts as zero in the sparsity figure; the proximal L1
# step produces exact zeros, this only absorbs float dust from other optimizers.
ZERO_TOL = 1e-8


def penalized_weights(model: nn.Module) -> list[nn.Parameter]:
    """Weights of linear and conv layers; biases and norm parameters are never penalised."""
    return [m.weight for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def penalty(config, l1_norm: float, l2_norm: float) -> float:
    """The penalty term of what the optimizer minimises: L1, L2 and coupled weight decay.

    SGD's and Adam's weight_decay add decay * w to the gradient: the gradient of
    decay/2 * sum w^2, so it is a penalty like L2. AdamW's decoupled decay shrinks the
    weights outside the gradient and is no term of any objective, so it is left out.
    """
    coupled = config.weight_decay if config.optimizer != "adamw" else 0.0
    return config.l1 * l1_norm + 0.5 * (config.l2 + coupled) * l2_norm * l2_norm


def add_l2_grad_(weights: list[torch.Tensor], lam: float) -> None:
    """Add the gradient of lambda/2*sum w^2 (= lambda*w) to each weight's grad, in place.

    Same update as putting the penalty in the loss, without an autograd graph for it.
    """
    grads = [w.grad for w in weights if w.grad is not None]
    torch._foreach_add_(grads, [w for w in weights if w.grad is not None], alpha=lam)


def hidden_weights(weights: list[torch.Tensor]) -> list[torch.Tensor]:
    """The weight matrices that feed hidden units: every linear layer's but the output's."""
    return [w for w in weights if w.dim() >= 2][:-1]


@torch.no_grad()
def max_norm_(weights: list[torch.Tensor], radius) -> None:
    """Max-norm (the dropout paper's companion): after each step, every hidden unit's
    incoming weight vector (a row of W, [..., out, in]) is projected back onto the ball
    of `radius` (a float, or one per stacked model broadcast as [K, 1, 1])."""
    for w in weights:
        norms = torch.linalg.vector_norm(w, dim=-1, keepdim=True)
        w.mul_((radius / norms.clamp_min(1e-12)).clamp(max=1.0))


@torch.no_grad()
def soft_threshold_(weights: list[torch.Tensor], thresholds: list) -> None:
    """Proximal step of L1: w <- sign(w) * max(|w| - t, 0), which lands on exact zeros."""
    for w, t in zip(weights, thresholds):
        w.copy_(w.sign() * (w.abs() - t).clamp_min(0))


@torch.no_grad()
def l1_thresholds(weights, optimizer: torch.optim.Optimizer, group: dict, lam: float) -> list:
    """Per-weight thresholds of the L1 prox in the optimizer's own step geometry.

    Plain and momentum SGD step by lr, so the threshold is lr * lambda. Adam scales each
    coordinate's step by 1 / (sqrt(v_hat) + eps), so its prox threshold is scaled the same
    way (proximal Adam); without that, Adam's normalised steps would undo the shrinkage.
    """
    lr = group["lr"]
    if "betas" not in group:
        return [lr * lam] * len(weights)
    beta2, eps = group["betas"][1], group["eps"]
    out = []
    for w in weights:
        state = optimizer.state[w]
        v_hat = state["exp_avg_sq"] / (1 - beta2 ** float(state["step"]))
        out.append(lr * lam / (v_hat.sqrt() + eps))
    return out


@torch.no_grad()
def weight_stats(weights: list[torch.Tensor]) -> tuple[float, float, float]:
    """(L2 norm, L1 norm, share of exact zeros) over all penalised weights."""
    flat = torch.cat([w.reshape(-1) for w in weights])
    norm = float(torch.linalg.vector_norm(flat))
    l1 = float(flat.abs().sum())
    sparsity = float((flat.abs() <= ZERO_TOL).sum()) / flat.numel()
    return norm, l1, sparsity
