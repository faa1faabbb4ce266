"""Oracle tests: penalties and the L1 prox step equal hand computations."""

import numpy as np
import pytest
import torch
from torch import nn

from regdemo import regularizers as R
from regdemo.config import Config
from regdemo.models import build_model


def _weights():
    return [torch.tensor([[1.0, -2.0], [0.5, 0.0]]), torch.tensor([[3.0, -0.25]])]


def test_the_penalty_matches_hand_computation():
    """l1 * sum|w| + l2/2 * sum w^2 = 0.1 * (1 + 2 + 0.5 + 0 + 3 + 0.25)
    + 0.5 * 0.2 * (1 + 4 + 0.25 + 0 + 9 + 0.0625)."""
    norm, l1_norm, sparsity = R.weight_stats(_weights())
    assert (l1_norm, norm ** 2, sparsity) == pytest.approx((6.75, 14.3125, 1 / 6))
    config = Config(l1=0.1, l2=0.2)
    assert R.penalty(config, l1_norm, norm) == pytest.approx(0.1 * 6.75 + 0.1 * 14.3125)


def test_l2_grad_equals_autograd_of_penalty():
    """Adding lambda*w to the grads is the gradient of the penalty in the loss."""
    w1 = nn.Parameter(torch.randn(3, 4, generator=torch.Generator().manual_seed(0)))
    w2 = nn.Parameter(w1.detach().clone())
    (0.5 * 0.3 * w1.pow(2).sum()).backward()  # lambda/2 * sum w^2 through autograd
    w2.grad = torch.zeros_like(w2)
    R.add_l2_grad_([w2], 0.3)
    torch.testing.assert_close(w1.grad, w2.grad)


def test_soft_threshold_is_exact():
    """sign(w) * max(|w| - t, 0), with exact zeros inside [-t, t]."""
    w = torch.tensor([-1.0, -0.3, -0.1, 0.0, 0.05, 0.2, 2.0])
    R.soft_threshold_([w], [0.2])
    torch.testing.assert_close(w, torch.tensor([-0.8, -0.1, 0.0, 0.0, 0.0, 0.0, 1.8]))
    assert int((w == 0).sum()) == 4


def test_soft_threshold_accepts_per_coordinate_thresholds():
    """Adam's prox gives every coordinate its own threshold."""
    w = torch.tensor([1.0, 1.0, -1.0])
    R.soft_threshold_([w], [torch.tensor([0.5, 2.0, 0.25])])
    torch.testing.assert_close(w, torch.tensor([0.5, 0.0, -0.75]))


def test_l1_thresholds_sgd_is_lr_times_lambda():
    """Plain SGD's prox threshold is lr * lambda."""
    w = nn.Parameter(torch.ones(2, 2))
    opt = torch.optim.SGD([w], lr=0.5)
    assert R.l1_thresholds([w], opt, opt.param_groups[0], 0.1) == [pytest.approx(0.05)]


def test_l1_thresholds_adam_scaled_by_second_moment():
    """Adam's prox threshold is lr * lambda / (sqrt(v_hat) + eps) per coordinate."""
    w = nn.Parameter(torch.ones(2))
    opt = torch.optim.Adam([w], lr=0.1)
    w.grad = torch.tensor([2.0, 0.5])
    opt.step()
    (t,) = R.l1_thresholds([w], opt, opt.param_groups[0], 0.01)
    # After one step v_hat = g^2, so the threshold is 0.001 / (|g| + eps).
    torch.testing.assert_close(t, torch.tensor([0.001 / 2.0, 0.001 / 0.5]), rtol=1e-4, atol=0)


def test_penalized_weights_skip_biases_and_norm_parameters():
    """Only linear (and conv) weight matrices are penalised."""
    model = build_model(Config(hidden=(8, 8), batch_norm=True), 2, 2)
    weights = R.penalized_weights(model)
    assert [tuple(w.shape) for w in weights] == [(8, 2), (8, 8), (2, 8)]
    bn = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    ids = {id(w) for w in weights}
    assert bn and all(id(m.weight) not in ids for m in bn)


def test_weight_stats():
    """Norm, L1 norm and exact-zero share over all weights."""
    norm, l1, sparsity = R.weight_stats(_weights())
    assert norm == pytest.approx(np.sqrt(14.3125))
    assert l1 == pytest.approx(6.75)
    assert sparsity == pytest.approx(1 / 6)
