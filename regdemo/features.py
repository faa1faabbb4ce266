"""Extra input features for 2-D sets (x1², x2², x1·x2, sin), as in TensorFlow Playground."""

from __future__ import annotations

import torch
from torch import nn

# id (as in links) -> label. The order here is the order of the model's extra inputs.
FEATURES: dict[str, str] = {
    "x1sq": "x₁²",
    "x2sq": "x₂²",
    "x1x2": "x₁x₂",
    "sin1": "sin x₁",
    "sin2": "sin x₂",
}
BASE_INPUTS = ("x₁", "x₂")


def canonical(names) -> tuple[str, ...]:
    """The chosen ids in registry order, each once (a link's order does not matter)."""
    chosen = set(names)
    return tuple(name for name in FEATURES if name in chosen)


def input_names(features: tuple[str, ...]) -> tuple[str, ...]:
    """What the first layer sees: x1, x2, then the chosen extras."""
    return (*BASE_INPUTS, *(FEATURES[f] for f in canonical(features)))


def _column(name: str, x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x[:, 0], x[:, 1]
    return {"x1sq": lambda: x1 * x1, "x2sq": lambda: x2 * x2, "x1x2": lambda: x1 * x2,
            "sin1": lambda: torch.sin(x1), "sin2": lambda: torch.sin(x2)}[name]()


class FeatureMap(nn.Module):
    """The model's first stage: appends the chosen features to the raw (x1, x2).

    Inside the model, not the data: augmentation jitters the raw points and the boundary
    view evaluates raw grid points, and both stay right.
    """

    def __init__(self, features: tuple[str, ...]):
        super().__init__()
        self.features = canonical(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.features:
            return x
        return torch.cat([x, *(_column(f, x)[:, None] for f in self.features)], dim=1)

    def extra_repr(self) -> str:
        return ", ".join(self.features)
