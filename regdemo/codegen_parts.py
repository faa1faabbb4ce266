"""The code sections of a generated script: model, regularizers, training, main loop.

Each function takes the codegen Plan and returns lines; a section names a regularizer the
way the page's help text does, and appears only when the run uses it.
"""

from __future__ import annotations

from textwrap import dedent

ACTIVATIONS = {"relu": "nn.ReLU()", "tanh": "nn.Tanh()", "sigmoid": "nn.Sigmoid()",
               "gelu": "nn.GELU()", "elu": "nn.ELU()", "leaky_relu": "nn.LeakyReLU()"}

# Augmentation code, as regdemo/augment.py transforms a batch (x, y); each draws from `gen`.
AUGMENT_CODE = {
    "jitter": """
        if kind == "jitter":  # input jitter: Gaussian noise, std 0.5 x strength
            return x + 0.5 * strength * torch.randn(x.shape, generator=gen), y""",
    "pixel_noise": """
        if kind == "pixel_noise":  # pixel noise: std = strength
            return x + strength * torch.randn(x.shape, generator=gen), y""",
    "mixup": """
        if kind == "mixup" and strength > 0:  # mixup: weights ~ Beta(strength, strength)
            # torch's Beta sampler takes no generator: numpy's, seeded from ours.
            seed = int(torch.randint(0, 2**62, (1,), generator=gen))
            w = np.random.default_rng(seed).beta(strength, strength, size=(x.shape[0], 1))
            w = torch.from_numpy(w).to(x.dtype)
            perm = torch.randperm(x.shape[0], generator=gen)
            target = TARGET(y)
            return w * x + (1 - w) * x[perm], w * target + (1 - w) * target[perm]""",
    "shift": """
        if kind == "shift" and round(2 * strength) > 0:  # random shifts: 2 x strength px
            k, n = round(2 * strength), x.shape[0]
            d = torch.randint(-k, k + 1, (2, n), generator=gen).to(x.dtype)
            return warp(x, torch.zeros(n), d[0], d[1]), y""",
    "rotate": """
        if kind == "rotate":  # small rotations: up to 30 x strength degrees
            n = x.shape[0]
            angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(30 * strength)
            return warp(x, angle, torch.zeros(n), torch.zeros(n)), y""",
}

WARP = '''
def warp(x, angle, dx, dy):
    """Rotate by `angle` radians and shift by (dx, dy) pixels, one value per image."""
    h, w = IMAGE_SHAPE
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([cos, -sin, dx * 2 / w], dim=1),
                         torch.stack([sin, cos, dy * 2 / h], dim=1)], dim=1)
    images = x.view(-1, 1, h, w) - BACKGROUND
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    out = F.grid_sample(images, grid, align_corners=False, padding_mode="zeros")
    return out.reshape(x.shape) + BACKGROUND
'''


def _code(text: str) -> list[str]:
    return dedent(text).strip("\n").splitlines()


def _seeded_modules(p) -> list[str]:
    out = []
    if p.uses("dropout"):
        out += _code('''
            class SeededDropout(nn.Module):
                """Dropout: randomly silences this share of hidden units while training. Its
                masks come from the run's training generator, as the lab's do."""

                def __init__(self, p, gen):
                    super().__init__()
                    self.p, self.gen = p, gen

                def forward(self, x):
                    if not self.training or self.p == 0.0:
                        return x
                    keep = torch.empty_like(x).bernoulli_(1.0 - self.p, generator=self.gen)
                    return x * keep * (1.0 / (1.0 - self.p))
            ''') + ["", ""]
    if p.uses("stochastic_depth"):
        out += _code('''
            class DropPath(nn.Module):
                """Stochastic depth: skips a residual block per sample at random while
                training (rate `p`, set by set_drop_path)."""

                def __init__(self, gen):
                    super().__init__()
                    self.p, self.gen = 0.0, gen

                def forward(self, x):
                    if not self.training or self.p == 0.0:
                        return x
                    keep = torch.empty((x.shape[0], 1), dtype=x.dtype).bernoulli_(
                        1.0 - self.p, generator=self.gen)
                    return x * keep * (1.0 / (1.0 - self.p))


            def set_drop_path(model, rate):
                """Block i of L drops with rate * i / L: deeper blocks are skipped more often."""
                paths = [m for m in model.modules() if isinstance(m, DropPath)]
                for i, module in enumerate(paths, start=1):
                    module.p = rate * i / len(paths)
            ''') + ["", ""]
    if p.uses("dropout") and "dropout" in p.changed:
        out += _code('''
            def set_dropout(model, p):
                """A live change of dropout: every dropout layer takes the new rate."""
                for module in model.modules():
                    if isinstance(module, SeededDropout):
                        module.p = p
            ''') + ["", ""]
    return out


def _dense(p, width_in, width_out, dropout: float) -> str:
    """One hidden layer as the lab builds it: linear, [batch norm], activation, [dropout]."""
    c = p.config
    layer = [f"nn.Linear({width_in}, {width_out})"]
    if c.batch_norm:
        layer.append(f"nn.BatchNorm1d({width_out})")
    layer.append(ACTIVATIONS[c.activation])
    if p.uses("dropout"):
        layer.append(f"SeededDropout({dropout!r}, gen)")
    return ", ".join(layer)


def model_section(p) -> list[str]:
    """The network's modules, `build_model`, and the seeded initialisation."""
    c = p.config
    out = ["# ----------------------------------------------------------------- model"]
    out += _seeded_modules(p)
    if c.features:
        columns = {"x1sq": "x1 * x1", "x2sq": "x2 * x2", "x1x2": "x1 * x2",
                   "sin1": "torch.sin(x1)", "sin2": "torch.sin(x2)"}
        extra = ", ".join(f"({columns[f]})[:, None]" for f in c.features)
        out += _code(f'''
            class ExtraFeatures(nn.Module):
                """Extra inputs {", ".join(c.features)} appended to (x1, x2), inside the model."""

                def forward(self, x):
                    x1, x2 = x[:, 0], x[:, 1]
                    return torch.cat([x, {extra}], dim=1)
            ''') + ["", ""]
    if c.arch == "cnn":
        act = ACTIVATIONS[c.activation]
        h, w = p.split.image_shape
        out += _code(f'''
            class ConvFeatures(nn.Module):
                """Two 3x3 conv layers with pooling: {h}x{w} images -> 32*2*2 features."""

                def __init__(self):
                    super().__init__()
                    self.net = nn.Sequential(
                        nn.Conv2d(1, 16, 3, padding=1), {act}, nn.MaxPool2d(2),
                        nn.Conv2d(16, 32, 3, padding=1), {act}, nn.MaxPool2d(2),
                        nn.Flatten(),
                    )

                def forward(self, x):
                    return self.net(x.view(-1, 1, {h}, {w}))
            ''') + ["", ""]
    if c.residual:
        path = "self.drop_path(self.branch(x))" if p.uses("stochastic_depth") else "self.branch(x)"
        branch = _dense(p, "width", "width", c.dropout)
        out += _code(f'''
            class ResidualBlock(nn.Module):
                """x + branch(x): a hidden layer with a skip connection around it."""

                def __init__(self, width, gen):
                    super().__init__()
                    self.branch = nn.Sequential(
                        {branch},
                    )
            ''')
        if p.uses("stochastic_depth"):
            out.append("        self.drop_path = DropPath(gen)")
        out += ["", "    def forward(self, x):", f"        return x + {path}", "", ""]
    layers = []
    width = p.split.n_features
    if c.features:
        layers.append("ExtraFeatures(),")
        width += len(c.features)
    if c.arch == "cnn":
        layers.append("ConvFeatures(),")
        if p.uses("dropout"):
            layers.append(f"SeededDropout({c.dropout!r}, gen),")
        width = 128
    if c.residual:
        stem = _dense(p, width, c.hidden[0], 0.0)
        layers += ["# the stem: to the blocks' width", f"{stem},"]
        layers += [f"ResidualBlock({c.hidden[0]}, gen)," for _ in c.hidden]
        width = c.hidden[0]
    else:
        for h in c.hidden:
            layers.append(_dense(p, width, h, c.dropout) + ",")
            width = h
    layers.append(f"nn.Linear({width}, {p.split.n_classes or 1}),")
    out += ["def build_model(gen):",
            '    """The lab\'s network for these settings; `gen` drives its random layers."""',
            "    model = nn.Sequential("]
    out += [f"        {layer}" for layer in layers]
    out.append("    )")
    if p.uses("stochastic_depth"):
        out.append('    set_drop_path(model, KNOBS["stochastic_depth"])')
    out.append("    return model")
    out += ["", ""] + _code('''
        def generator(stream):
            """A torch generator for one stream of the seed, derived as the lab derives it."""
            state = np.random.SeedSequence([SEED, stream]).generate_state(1, np.uint64)[0]
            return torch.Generator().manual_seed(int(state))


        def init_weights(model, gen):
            """PyTorch's default initialisation, drawn from `gen` instead of the global RNG."""
            for module in model.modules():
                if isinstance(module, (nn.Linear, nn.Conv2d)):
                    nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=gen)
                    bound = 1 / math.sqrt(module.weight[0].numel())
                    nn.init.uniform_(module.bias, -bound, bound, generator=gen)
        ''')
    return out
