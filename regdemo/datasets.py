"""Seeded dataset generators: each returns a standardised train/val `Split` (no downloads)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# Data kinds decide which model, augmentations and data view fit a dataset.
KIND_2D = "2d"  # 2-D points, classification: decision-boundary view
KIND_1D = "1d"  # 1-D regression: fitted-curve view
KIND_IMAGE = "image"  # 8x8 digits: image augmentations, CNN allowed
KIND_TABULAR = "tabular"  # feature vectors: feature-weight view


@dataclass(frozen=True)
class Split:
    """Standardised train/val arrays plus what the views and models need to know."""

    x_train: np.ndarray  # float32 (n_train, n_features)
    y_train: np.ndarray  # int64 labels, or float32 (n_train, 1) targets for regression
    x_val: np.ndarray
    y_val: np.ndarray
    kind: str
    n_classes: int  # 0 for regression
    feature_names: tuple[str, ...] = ()
    informative: tuple[int, ...] = ()  # known informative feature indices (synthetic sets)
    image_shape: tuple[int, int] | None = None
    background: float = 0.0  # value of an empty pixel after standardising (images)
    flipped: np.ndarray | None = None  # bool mask of train labels changed by label noise

    @property
    def task(self) -> str:
        return "regression" if self.n_classes == 0 else "classification"

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]


@dataclass(frozen=True)
class DatasetSpec:
    """A registry entry: how to draw raw (x, y) and what kind of data it is."""

    title: str
    kind: str
    n_classes: int
    draw: Callable[[int, float, np.random.Generator], tuple[np.ndarray, np.ndarray]] | None = None
    load: Callable[[], tuple[np.ndarray, np.ndarray, tuple]] | None = None  # bundled sets
    informative: tuple[int, ...] = ()
    rows: int | None = None  # a bundled set's row count, known without loading it

    @property
    def max_samples(self) -> int | None:
        """Rows available for train + val together (None: a generator, unlimited)."""
        # Stated, not loaded: validating a Config must not import scikit-learn (1.3 s on
        # the page's first paint). A test checks each figure against the loaded set.
        return self.rows

    @property
    def task(self) -> str:
        return "regression" if self.n_classes == 0 else "classification"


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


def _moons(n, noise, rng):
    from sklearn.datasets import make_moons

    return make_moons(n, noise=noise, random_state=_seed(rng))


def _circles(n, noise, rng):
    from sklearn.datasets import make_circles

    return make_circles(n, noise=noise, factor=0.5, random_state=_seed(rng))


def _xor(n, noise, rng):
    x = rng.uniform(-1, 1, size=(n, 2))
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
    return x + rng.normal(0, noise, size=x.shape), y


def _spiral(n, noise, rng):
    # Two interleaved arms, 1.75 turns each, as in TensorFlow Playground.
    y = rng.integers(0, 2, size=n)
    t = rng.uniform(0.05, 1.0, size=n) * 1.75 * 2 * np.pi
    angle = t + np.pi * y
    x = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1) / (1.75 * 2 * np.pi)
    return x + rng.normal(0, noise * 0.5, size=x.shape), y


def _gaussians(n, noise, rng):
    from sklearn.datasets import make_blobs

    return make_blobs(
        n, centers=[(-1, -1), (1, 1)], cluster_std=0.4 + 2 * noise, random_state=_seed(rng)
    )


def _sine(n, noise, rng):
    x = rng.uniform(-3, 3, size=(n, 1))
    return x, np.sin(x[:, 0]) + rng.normal(0, noise, size=n)


def _polynomial(n, noise, rng):
    x = rng.uniform(-2, 2, size=(n, 1))
    t = x[:, 0]
    return x, 0.5 * t**3 - 1.5 * t + rng.normal(0, noise, size=n)


# Many noise features, few samples: the first 5 columns carry the signal (L1 finds them).
N_SPARSE_FEATURES, N_SPARSE_INFORMATIVE = 40, 5


def _sparse(n, noise, rng):
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n,
        n_features=N_SPARSE_FEATURES,
        n_informative=N_SPARSE_INFORMATIVE,
        n_redundant=0,
        n_repeated=0,
        n_clusters_per_class=1,
        class_sep=1.5,
        flip_y=0.0,
        shuffle=False,  # keeps the informative features in the first columns...
        random_state=_seed(rng),
    )
    rows = rng.permutation(n)  # ...but it also sorts rows by class: shuffle those
    return x[rows], y[rows]


def _bundled(name):
    def load():
        import sklearn.datasets as sd

        bunch = getattr(sd, f"load_{name}")()
        names = tuple(str(n) for n in getattr(bunch, "feature_names", ()))
        return bunch.data.astype(np.float64), bunch.target.astype(np.int64), names

    return _cached(load)


def _cached(fn):
    cache = {}

    def wrapper():
        if "v" not in cache:
            cache["v"] = fn()
        return cache["v"]

    return wrapper


DATASETS: dict[str, DatasetSpec] = {
    "moons": DatasetSpec("Two moons", KIND_2D, 2, draw=_moons),
    "circles": DatasetSpec("Circles", KIND_2D, 2, draw=_circles),
    "xor": DatasetSpec("XOR", KIND_2D, 2, draw=_xor),
    "spiral": DatasetSpec("Spiral", KIND_2D, 2, draw=_spiral),
    "gaussians": DatasetSpec("Two Gaussians", KIND_2D, 2, draw=_gaussians),
    "sine": DatasetSpec("Noisy sine (regression)", KIND_1D, 0, draw=_sine),
    "polynomial": DatasetSpec("Cubic polynomial (regression)", KIND_1D, 0, draw=_polynomial),
    "digits": DatasetSpec("Digits 8x8", KIND_IMAGE, 10, load=_bundled("digits"), rows=1797),
    "breast_cancer": DatasetSpec(
        "Breast cancer", KIND_TABULAR, 2, load=_bundled("breast_cancer"), rows=569
    ),
    "wine": DatasetSpec("Wine", KIND_TABULAR, 3, load=_bundled("wine"), rows=178),
    "sparse": DatasetSpec(
        "Few samples, many noise features",
        KIND_TABULAR,
        2,
        draw=_sparse,
        informative=tuple(range(N_SPARSE_INFORMATIVE)),
    ),
}


def preload() -> None:
    """Import the scikit-learn parts make_split uses now (1.3 s), e.g. while a page is read."""
    import sklearn.datasets  # noqa: F401
    import sklearn.model_selection  # noqa: F401


def _stratified_pick(y: np.ndarray, n_train: int, n_val: int, rng: np.random.Generator):
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    rest, val = train_test_split(idx, test_size=n_val, stratify=y, random_state=_seed(rng))
    n_classes = len(np.unique(y))
    if len(rest) - n_train < n_classes:
        # Too few rows would be left over to stratify the rest: a random pick is as good.
        return rng.permutation(rest)[:n_train], val
    train, _ = train_test_split(
        rest, train_size=n_train, stratify=y[rest], random_state=_seed(rng)
    )
    return train, val


def _flip_labels(y, rate, n_classes, rng):
    flip = rng.random(len(y)) < rate
    # A flipped label moves to a different class, never back to itself.
    shift = rng.integers(1, n_classes, size=len(y))
    return np.where(flip, (y + shift) % n_classes, y), flip


def make_split(
    dataset: str,
    n_train: int,
    n_val: int,
    noise: float = 0.0,
    label_noise: float = 0.0,
    seed: int = 0,
) -> Split:
    """Draw a dataset and split it; label noise hits train only, so val measures truth."""
    spec = DATASETS[dataset]
    rng = np.random.default_rng([seed, 0xDA7A])
    names: tuple[str, ...] = ()
    if spec.draw is not None:
        x, y = spec.draw(n_train + n_val, noise, rng)
        x_tr, y_tr, x_va, y_va = x[:n_train], y[:n_train], x[n_train:], y[n_train:]
    else:
        x_all, y_all, names = spec.load()
        tr, va = _stratified_pick(y_all, n_train, n_val, rng)
        x_tr, y_tr, x_va, y_va = x_all[tr], y_all[tr], x_all[va], y_all[va]
        if noise > 0:  # bundled sets have no noise knob of their own: add it in std units
            scale = x_tr.std(axis=0, keepdims=True) + 1e-12
            x_tr = x_tr + rng.normal(0, noise, size=x_tr.shape) * scale
            x_va = x_va + rng.normal(0, noise, size=x_va.shape) * scale

    flipped = None
    if spec.kind == KIND_IMAGE:
        # One scalar mean/std keeps pixels comparable, so shifts and rotations stay images.
        mean, std = x_tr.mean(), x_tr.std() + 1e-12
    else:
        mean, std = x_tr.mean(axis=0), x_tr.std(axis=0) + 1e-12
    x_tr, x_va = (x_tr - mean) / std, (x_va - mean) / std

    if spec.task == "classification":
        y_tr, y_va = y_tr.astype(np.int64), y_va.astype(np.int64)
        if label_noise > 0:
            y_tr, flipped = _flip_labels(y_tr, label_noise, spec.n_classes, rng)
    else:
        y_tr = y_tr.astype(np.float32).reshape(-1, 1)
        y_va = y_va.astype(np.float32).reshape(-1, 1)
        if label_noise > 0:  # corrupted targets: replaced by draws from the target range
            flipped = rng.random(len(y_tr)) < label_noise
            lo, hi = float(y_tr.min()), float(y_tr.max())
            y_tr = np.where(flipped[:, None], rng.uniform(lo, hi, size=y_tr.shape), y_tr)
            y_tr = y_tr.astype(np.float32)

    n_features = x_tr.shape[1]
    names = names or tuple(f"x{i}" for i in range(n_features))
    return Split(
        x_train=np.ascontiguousarray(x_tr, dtype=np.float32),
        y_train=y_tr,
        x_val=np.ascontiguousarray(x_va, dtype=np.float32),
        y_val=y_va,
        kind=spec.kind,
        n_classes=spec.n_classes,
        feature_names=names,
        informative=spec.informative,
        image_shape=(8, 8) if spec.kind == KIND_IMAGE else None,
        background=float(-mean / std) if spec.kind == KIND_IMAGE else 0.0,
        flipped=flipped,
    )
