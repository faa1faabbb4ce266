"""Data augmentations: pure (x, y) -> (x, y) tensor transforms, registered by data kind."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from regdemo.datasets import KIND_1D, KIND_2D, KIND_IMAGE, KIND_TABULAR

ALL_KINDS = frozenset({KIND_2D, KIND_1D, KIND_IMAGE, KIND_TABULAR})


@dataclass(frozen=True)
class DataInfo:
    """What a transform needs to know about the data it changes."""

    n_classes: int  # 0 for regression
    image_shape: tuple[int, int] | None = None
    background: float = 0.0


Transform = Callable[[torch.Tensor, torch.Tensor, float, torch.Generator, DataInfo], tuple]


@dataclass(frozen=True)
class Augmentation:
    """A registry entry: the transform, the data kinds it fits, and what strength means."""

    title: str
    kinds: frozenset
    apply: Transform
    strength_means: str


def _none(x, y, strength, gen, info):
    return x, y


def _jitter(x, y, strength, gen, info):
    # Inputs are standardised, so sigma is in units of one feature's spread.
    sigma = 0.5 * strength
    return x + sigma * torch.randn(x.shape, generator=gen), y


def _mixup(x, y, strength, gen, info):
    if strength <= 0:
        return x, y
    # torch's Beta sampler takes no generator; seed numpy's from ours to stay reproducible.
    seed = int(torch.randint(0, 2**62, (1,), generator=gen))
    w = np.random.default_rng(seed).beta(strength, strength, size=(x.shape[0], 1))
    w = torch.from_numpy(w).to(x.dtype)
    perm = torch.randperm(x.shape[0], generator=gen)
    target = F.one_hot(y, info.n_classes).to(x.dtype) if info.n_classes else y
    return w * x + (1 - w) * x[perm], w * target + (1 - w) * target[perm]


def _images(x, info):
    h, w = info.image_shape
    return x.view(-1, 1, h, w) - info.background


def _warp(x, info, angle, dx, dy):
    """Rotate by `angle` radians and shift by (dx, dy) pixels, one value per sample."""
    h, w = info.image_shape
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack(
        [
            torch.stack([cos, -sin, dx * 2 / w], dim=1),
            torch.stack([sin, cos, dy * 2 / h], dim=1),
        ],
        dim=1,
    )
    imgs = _images(x, info)
    grid = F.affine_grid(theta, list(imgs.shape), align_corners=False)
    out = F.grid_sample(imgs, grid, align_corners=False, padding_mode="zeros")
    return out.reshape(x.shape) + info.background


def _shift(x, y, strength, gen, info):
    k = round(2 * strength)  # up to 2 pixels of an 8x8 image
    if k == 0:
        return x, y
    n = x.shape[0]
    d = torch.randint(-k, k + 1, (2, n), generator=gen).to(x.dtype)
    return _warp(x, info, torch.zeros(n), d[0], d[1]), y


def _rotate(x, y, strength, gen, info):
    max_angle = math.radians(30 * strength)
    n = x.shape[0]
    angle = (torch.rand(n, generator=gen) * 2 - 1) * max_angle
    zero = torch.zeros(n)
    return _warp(x, info, angle, zero, zero), y


def _pixel_noise(x, y, strength, gen, info):
    return x + strength * torch.randn(x.shape, generator=gen), y


AUGMENTATIONS: dict[str, Augmentation] = {
    "none": Augmentation("None", ALL_KINDS, _none, "nothing"),
    "jitter": Augmentation(
        "Input jitter (Gaussian noise)", ALL_KINDS, _jitter, "noise std = 0.5 x strength"
    ),
    "mixup": Augmentation(
        "Mixup", ALL_KINDS, _mixup, "mixing weights ~ Beta(strength, strength)"
    ),
    "shift": Augmentation(
        "Random shifts", frozenset({KIND_IMAGE}), _shift, "up to 2 x strength pixels"
    ),
    "rotate": Augmentation(
        "Small rotations", frozenset({KIND_IMAGE}), _rotate, "up to 30 x strength degrees"
    ),
    "pixel_noise": Augmentation(
        "Pixel noise", frozenset({KIND_IMAGE}), _pixel_noise, "noise std = strength"
    ),
}


def fits(name: str, kind: str) -> bool:
    """True when augmentation `name` applies to data of `kind`."""
    return kind in AUGMENTATIONS[name].kinds
