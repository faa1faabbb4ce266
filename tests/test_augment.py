"""Augmentations: shapes, identities at strength 0, noise scales, mixup, shifts, seeding."""

import pytest
import torch

from regdemo.augment import ALL_KINDS, AUGMENTATIONS, DataInfo, fits
from regdemo.datasets import KIND_IMAGE

IMAGE = DataInfo(n_classes=10, image_shape=(8, 8), background=-0.5)
TABLE = DataInfo(n_classes=3)
REGRESSION = DataInfo(n_classes=0)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _batch(info, n=16, seed=1):
    g = _gen(seed)
    n_features = 64 if info.image_shape else 5
    x = torch.randn(n, n_features, generator=g)
    if info.n_classes:
        y = torch.randint(0, info.n_classes, (n,), generator=g)
    else:
        y = torch.randn(n, 1, generator=g)
    return x, y


def _apply(name, x, y, strength, info, seed=0):
    return AUGMENTATIONS[name].apply(x, y, strength, _gen(seed), info)


def _cases():
    for name, aug in AUGMENTATIONS.items():
        infos = [IMAGE] if aug.kinds == {KIND_IMAGE} else [IMAGE, TABLE, REGRESSION]
        for info in infos:
            label = "image" if info.image_shape else ("cls" if info.n_classes else "reg")
            yield pytest.param(name, info, id=f"{name}-{label}")


@pytest.mark.parametrize(("name", "info"), list(_cases()))
def test_keeps_shapes_and_dtypes(name, info):
    """x keeps shape and dtype; y too, except mixup's soft one-hot classification targets."""
    x, y = _batch(info)
    x2, y2 = _apply(name, x, y, 0.7, info)
    assert x2.shape == x.shape and x2.dtype == x.dtype
    assert torch.isfinite(x2).all()
    if name == "mixup" and info.n_classes:
        assert y2.shape == (len(y), info.n_classes) and y2.dtype == x.dtype
    else:
        assert y2.shape == y.shape and y2.dtype == y.dtype
    if name != "mixup":
        assert torch.equal(y2, y)  # labels never change outside mixup


@pytest.mark.parametrize(("name", "info"), list(_cases()))
def test_same_seed_same_output_and_global_rng_untouched(name, info):
    """Outputs depend only on the generator; torch's global RNG state is not consumed."""
    x, y = _batch(info)
    state = torch.get_rng_state()
    a = _apply(name, x, y, 0.8, info, seed=7)
    b = _apply(name, x, y, 0.8, info, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    if name != "none":
        c = _apply(name, x, y, 0.8, info, seed=8)
        assert not torch.equal(a[0], c[0])


@pytest.mark.parametrize("name", ["none", "jitter", "shift", "pixel_noise", "mixup"])
def test_strength_zero_is_identity(name):
    """At strength 0 these return x and y exactly (mixup does not even one-hot y)."""
    info = IMAGE
    x, y = _batch(info)
    x2, y2 = _apply(name, x, y, 0.0, info)
    assert torch.equal(x2, x) and torch.equal(y2, y)


def test_rotate_strength_zero_is_near_identity():
    """Rotation by 0 resamples on the pixel grid, equal up to float rounding."""
    x, y = _batch(IMAGE)
    x2, _ = _apply("rotate", x, y, 0.0, IMAGE)
    torch.testing.assert_close(x2, x, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("name", "scale"), [("jitter", 0.5), ("pixel_noise", 1.0)])
@pytest.mark.parametrize("strength", [0.2, 0.6])
def test_noise_std_matches_strength(name, scale, strength):
    """jitter adds N(0, (0.5 s)^2) noise, pixel noise N(0, s^2)."""
    x = torch.full((4000, 64), 0.25)
    x2, _ = _apply(name, x, torch.zeros(4000, dtype=torch.long), strength, IMAGE)
    delta = x2 - x
    assert delta.mean().item() == pytest.approx(0.0, abs=0.01)
    assert delta.std().item() == pytest.approx(scale * strength, rel=0.02)


def test_mixup_classification_targets_are_convex():
    """Soft targets lie in [0, 1], sum to 1 per row and mix at most two classes."""
    x, y = _batch(TABLE, n=200)
    x2, y2 = _apply("mixup", x, y, 0.4, TABLE)
    assert (y2 >= 0).all() and (y2 <= 1).all()
    torch.testing.assert_close(y2.sum(dim=1), torch.ones(200))
    assert ((y2 > 0).sum(dim=1) <= 2).all()
    assert ((y2 > 0.01) & (y2 < 0.99)).any()  # some rows really are mixed
    # Inputs are mixed with the same weights: inside each feature's range.
    assert (x2 >= x.min(dim=0).values - 1e-6).all() and (x2 <= x.max(dim=0).values + 1e-6).all()


def test_mixup_mixes_targets_with_the_input_weights():
    """Row i is w*x_i + (1-w)*x_j and its target is w*onehot(y_i) + (1-w)*onehot(y_j)."""
    n = 12
    x = torch.eye(n)  # row i is e_i, so w and the partner j can be read off the output
    y = torch.arange(n) % 3
    x2, y2 = _apply("mixup", x, y, 0.5, TABLE, seed=3)
    onehot = torch.nn.functional.one_hot(y, 3).float()
    assert ((x2 > 1e-6).sum(dim=1) <= 2).all()
    for i in range(n):
        w = x2[i, i].item()
        others = [j for j in range(n) if j != i and x2[i, j] > 1e-6]
        j = others[0] if others else i
        if others:
            assert x2[i, j].item() == pytest.approx(1 - w, abs=1e-6)
        expected = w * onehot[i] + (1 - w) * onehot[j] if others else onehot[i]
        torch.testing.assert_close(y2[i], expected, atol=1e-6, rtol=0)


def test_mixup_regression_targets_inside_range():
    """Regression targets are mixed values within [min, max] of the batch."""
    x, y = _batch(REGRESSION, n=200)
    _, y2 = _apply("mixup", x, y, 0.4, REGRESSION)
    assert y2.shape == (200, 1)
    assert (y2 >= y.min() - 1e-6).all() and (y2 <= y.max() + 1e-6).all()
    assert not torch.equal(y2, y)


def _dot_image(n, row=4, col=4, bright=1.0):
    img = torch.full((n, 8, 8), IMAGE.background)
    img[:, row, col] += bright
    return img.reshape(n, 64)


def test_shift_moves_a_dot_by_whole_pixels():
    """Strength 0.5 (k=1): a middle dot lands exactly on itself or a neighbour pixel."""
    n = 200
    x = _dot_image(n)
    x2, _ = _apply("shift", x, torch.zeros(n, dtype=torch.long), 0.5, IMAGE)
    mass = (x2 - IMAGE.background).reshape(n, 8, 8)
    torch.testing.assert_close(mass.sum(dim=(1, 2)), torch.ones(n), atol=1e-5, rtol=0)
    offsets = set()
    for img in mass:
        peak = int(img.argmax())
        r, c = divmod(peak, 8)
        assert img[r, c].item() == pytest.approx(1.0, abs=1e-5)  # not smeared
        assert (img.abs() > 1e-5).sum().item() == 1
        assert abs(r - 4) <= 1 and abs(c - 4) <= 1
        offsets.add((r - 4, c - 4))
    assert len(offsets) == 9  # every shift in {-1, 0, 1}^2 occurs


def test_shift_strength_one_reaches_two_pixels():
    """Strength 1 (k=2) moves a dot up to two pixels, never further."""
    n = 300
    x = _dot_image(n)
    x2, _ = _apply("shift", x, torch.zeros(n, dtype=torch.long), 1.0, IMAGE)
    peaks = (x2 - IMAGE.background).argmax(dim=1)
    rows, cols = peaks // 8, peaks % 8
    dist = torch.maximum((rows - 4).abs(), (cols - 4).abs())
    assert dist.max().item() == 2


def _blob(n, center=3.5, sigma=1.2):
    ii = torch.arange(8, dtype=torch.float32)
    r2 = (ii[:, None] - center) ** 2 + (ii[None, :] - center) ** 2
    img = torch.exp(-r2 / (2 * sigma**2)) + IMAGE.background
    return img.reshape(1, 64).repeat(n, 1)


def test_rotate_small_angle_keeps_centered_blob():
    """A centred round blob rotated by up to 6 degrees stays where it is."""
    n = 20
    x = _blob(n)
    x2, _ = _apply("rotate", x, torch.zeros(n, dtype=torch.long), 0.2, IMAGE)
    assert (x2 - x).abs().max().item() < 0.05
    ii = torch.arange(8, dtype=torch.float32)
    mass = (x2 - IMAGE.background).reshape(n, 8, 8)
    total = mass.sum(dim=(1, 2))
    com_r = (mass.sum(dim=2) * ii).sum(dim=1) / total
    com_c = (mass.sum(dim=1) * ii).sum(dim=1) / total
    assert (com_r - 3.5).abs().max().item() < 0.05
    assert (com_c - 3.5).abs().max().item() < 0.05


def test_rotate_turns_an_off_centre_dot():
    """At strength 1 (up to 30 degrees) an off-centre dot's mass moves."""
    n = 50
    x = _dot_image(n, row=1, col=3)
    x2, _ = _apply("rotate", x, torch.zeros(n, dtype=torch.long), 1.0, IMAGE)
    moved = (x2 - x).abs().amax(dim=1)
    assert (moved > 0.1).float().mean().item() > 0.5


def test_fits_matches_kinds_table():
    """fits(name, kind) is `kind in kinds`; image-only augmentations are exactly these."""
    for name, aug in AUGMENTATIONS.items():
        for kind in ALL_KINDS:
            assert fits(name, kind) == (kind in aug.kinds)
    image_only = {n for n, a in AUGMENTATIONS.items() if a.kinds == {KIND_IMAGE}}
    assert image_only == {"shift", "rotate", "pixel_noise"}
    for name in ("none", "jitter", "mixup"):
        assert all(fits(name, kind) for kind in ALL_KINDS)
    assert fits("shift", KIND_IMAGE) and not fits("shift", "2d") and not fits("shift", "1d")
    assert not fits("shift", "tabular")
