"""Networks built from a Config: MLP, residual MLP with stochastic depth, small CNN."""

from __future__ import annotations

import math

import torch
from torch import nn

from regdemo.features import FeatureMap

ACTIVATION_MODULES = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
}


class SeededDropout(nn.Dropout):
    """nn.Dropout drawing its mask from the run's own generator (reproducible, no global RNG)."""

    generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.p >= 1.0:
            return torch.zeros_like(x)
        keep = torch.empty_like(x).bernoulli_(1.0 - self.p, generator=self.generator)
        return x * keep * (1.0 / (1.0 - self.p))


class DropPath(nn.Module):
    """Stochastic depth: in train mode, skip a residual branch per sample with rate `p`."""

    generator: torch.Generator | None = None

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.empty((x.shape[0], 1), dtype=x.dtype).bernoulli_(
            1.0 - self.p, generator=self.generator
        )
        return x * keep * (1.0 / (1.0 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}"


def _dense(width_in: int, width_out: int, activation: str, batch_norm: bool, dropout: float):
    layers = [nn.Linear(width_in, width_out)]
    if batch_norm:
        layers.append(nn.BatchNorm1d(width_out))
    layers += [ACTIVATION_MODULES[activation](), SeededDropout(dropout)]
    return layers


class ResidualBlock(nn.Module):
    """x + drop_path(dense(x)): the branch that stochastic depth skips."""

    def __init__(self, width: int, activation: str, batch_norm: bool, dropout: float):
        super().__init__()
        self.branch = nn.Sequential(*_dense(width, width, activation, batch_norm, dropout))
        self.drop_path = DropPath()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop_path(self.branch(x))


class ConvFeatures(nn.Module):
    """Two 3x3 conv layers with pooling: 8x8 digits -> 32*2*2 features."""

    out_features = 128

    def __init__(self, activation: str, image_shape: tuple[int, int]):
        super().__init__()
        self.image_shape = image_shape
        act = ACTIVATION_MODULES[activation]
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), act(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), act(), nn.MaxPool2d(2),
            nn.Flatten(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.view(-1, 1, *self.image_shape))


def build_model(config, n_inputs: int, n_outputs: int, image_shape=None) -> nn.Sequential:
    """The network a config describes; stochastic-depth rates are set by `set_drop_path`."""
    layers: list[nn.Module] = []
    width = n_inputs
    if config.features:
        layers.append(FeatureMap(config.features))
        width += len(config.features)
    if config.arch == "cnn":
        layers += [ConvFeatures(config.activation, image_shape), SeededDropout(config.dropout)]
        width = ConvFeatures.out_features
    if config.residual:
        # A stem to the block width, then one residual block per entry of `hidden`.
        layers += _dense(width, config.hidden[0], config.activation, config.batch_norm, 0.0)
        width = config.hidden[0]
        layers += [
            ResidualBlock(width, config.activation, config.batch_norm, config.dropout)
            for _ in config.hidden
        ]
    else:
        for h in config.hidden:
            layers += _dense(width, h, config.activation, config.batch_norm, config.dropout)
            width = h
    layers.append(nn.Linear(width, n_outputs))
    model = nn.Sequential(*layers)
    set_drop_path(model, config.stochastic_depth)
    return model


def init_weights(model: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default init, drawn from `generator` instead of the global RNG."""
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
            if module.bias is not None:
                fan_in = module.weight[0].numel()
                bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
                nn.init.uniform_(module.bias, -bound, bound, generator=generator)


def set_dropout(model: nn.Module, p: float) -> None:
    """Change every dropout layer's probability in place (a live knob)."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = p


def set_drop_path(model: nn.Module, rate: float) -> None:
    """Block i of L drops with rate * i / L: deeper blocks are skipped more often."""
    paths = [m for m in model.modules() if isinstance(m, DropPath)]
    for i, module in enumerate(paths, start=1):
        module.p = rate * i / len(paths)


def attach_generator(model: nn.Module, generator: torch.Generator) -> None:
    """Point every random layer at the run's training generator."""
    for module in model.modules():
        if isinstance(module, (SeededDropout, DropPath)):
            module.generator = generator


def is_mode_sensitive(model: nn.Module) -> bool:
    """True when train and eval mode compute different things right now."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            return True
        if isinstance(module, (nn.Dropout, DropPath)) and module.p > 0:
            return True
    return False
