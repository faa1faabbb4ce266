"""Seeded dataset generators: each returns a standardised train/val `Split` (no downloads)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

TEST_SHARE = 0.2  # of a bundled set's rows, held out as the test set
DEFAULT_TEST = 1000  # test points drawn for a generated set (Config.n_test)
# Independent random streams per part: the validation set depends on the seed and n_val
# only, never on n_train; the test set on the seed and n_test only.
_TRAIN, _VAL, _TEST, _LABELS = range(4)

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
    # Held out: nothing trains or chooses on it (early stopping and sweeps use validation).
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None

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
        return None if self.rows is None else self.rows - self.test_rows

    @property
    def test_rows(self) -> int:
        """A bundled set's held-out test rows: a fixed share, the same for every run."""
        return 0 if self.rows is None else round(self.rows * TEST_SHARE)

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


# The class centres along the informative columns: fixed, so every part of a split (and
# every seed) samples the same law, as with moons. (make_classification drew a new law per
# call, so a train and a validation set drawn apart would not have matched.)
_SPARSE_SIGNS = np.array([1.0, -1.0, 1.0, 1.0, -1.0])
_SPARSE_SHIFT = 0.65  # per column: the centres are 2 * 0.65 * sqrt(5) = 2.9 std apart


def _sparse(n, noise, rng):
    y = rng.integers(0, 2, size=n)
    x = rng.normal(0.0, 1.0 + noise, size=(n, N_SPARSE_FEATURES))
    x[:, :N_SPARSE_INFORMATIVE] += np.outer(2 * y - 1, _SPARSE_SHIFT * _SPARSE_SIGNS)
    return x, y


def _bundled(name, regression: bool = False):
    def load():
        import sklearn.datasets as sd

        bunch = getattr(sd, f"load_{name}")()
        names = tuple(str(n) for n in getattr(bunch, "feature_names", ()))
        y = bunch.target.astype(np.float64 if regression else np.int64)
        return bunch.data.astype(np.float64), y, names

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
    "iris": DatasetSpec("Iris (3 species)", KIND_TABULAR, 3, load=_bundled("iris"), rows=150),
    "diabetes": DatasetSpec("Diabetes progression (regression)", KIND_TABULAR, 0,
                            load=_bundled("diabetes", regression=True), rows=442),
    "sparse": DatasetSpec(
        "Few samples, many noise features",
        KIND_TABULAR,
        2,
        draw=_sparse,
        informative=tuple(range(N_SPARSE_INFORMATIVE)),
    ),
}


class UnknownDataset(LookupError):
    """A dataset name that is not registered, or uploaded data this server does not have."""


def spec_for(name: str) -> DatasetSpec:
    """The registry entry of a bundled or generated set, or of uploaded data (upload:<hash>,
    read from the runs file); UnknownDataset if there is none."""
    spec = DATASETS.get(name) if isinstance(name, str) else None
    if spec is not None:
        return spec
    from regdemo.uploads import hash_of

    digest = hash_of(name)
    if digest is None:
        raise UnknownDataset(f"no dataset named {str(name)[:60]!r}")
    from regdemo.dataset_shelf import lookup  # lazily: bundled sets never open the file

    table = lookup(digest)
    if table is None:
        raise UnknownDataset(f"this server does not have that uploaded data ({name}); "
                             "upload the file again")
    return upload_spec(table)


def upload_spec(table) -> DatasetSpec:
    """A registry entry for an uploaded table (uploads.Table): two number columns of a
    two-class set are 2-D points, one number column with a numeric target a 1-D curve."""
    n_classes = table.n_classes
    if table.numeric and table.n_features == 2 and n_classes == 2:
        kind = KIND_2D  # the boundary view draws P(class 1): two classes only
    elif table.numeric and table.n_features == 1 and n_classes == 0:
        kind = KIND_1D
    else:
        kind = KIND_TABULAR
    what = f"{n_classes} classes" if n_classes else "regression"
    return DatasetSpec(f"Your data: {table.target} ({table.rows:,} rows, {what})", kind,
                       n_classes, load=lambda: (table.x, table.y, table.features),
                       rows=table.rows)


def preload() -> None:
    """Import the scikit-learn parts make_split uses now (1.3 s), e.g. while a page is read."""
    import sklearn.datasets  # noqa: F401
    import sklearn.model_selection  # noqa: F401


def _flip_labels(y, rate, n_classes, rng):
    flip = rng.random(len(y)) < rate
    # A flipped label moves to a different class, never back to itself.
    shift = rng.integers(1, n_classes, size=len(y))
    return np.where(flip, (y + shift) % n_classes, y), flip


def split_for(config) -> Split:
    """The split a Config trains on (its data settings and seed)."""
    return make_split(config.dataset, config.n_train, config.n_val, config.noise,
                      config.label_noise, seed=config.seed, n_test=config.n_test)


def _stream(seed: int, part: int) -> np.random.Generator:
    return np.random.default_rng([seed, 0xDA7A, part])


def _bundled_parts(spec: DatasetSpec, n_train, n_val, noise, seed):
    """Rows of a bundled set: a fixed test share (by seed), then validation (by seed and
    n_val), then training rows from the rest; each pick stratified by class."""
    x_all, y_all, names = spec.load()
    idx = np.arange(len(y_all))
    labels = y_all if spec.task == "classification" else None  # targets: no strata
    rest, test = _stratified(idx, labels, spec.test_rows, _stream(seed, _TEST))
    rest, val = _stratified(rest, labels, n_val, _stream(seed, _VAL))
    train = _stratified(rest, labels, n_train, _stream(seed, _TRAIN))[1]
    parts = [(x_all[i], y_all[i]) for i in (train, val, test)]
    if noise > 0:  # bundled sets have no noise knob of their own: add it in std units
        scale = x_all.std(axis=0, keepdims=True) + 1e-12  # of the whole set: fixed
        parts = [(x + _stream(seed, part).normal(0, noise, size=x.shape) * scale, y)
                 for (x, y), part in zip(parts, (_TRAIN, _VAL, _TEST))]
    return parts, names


def _stratified(idx: np.ndarray, y: np.ndarray | None, n: int, rng: np.random.Generator):
    """(rest, n rows of idx) with the classes in proportion where that is possible (y None:
    a regression target, a random pick)."""
    from sklearn.model_selection import train_test_split

    if n >= len(idx):
        return idx[:0], rng.permutation(idx)
    counts = np.unique(y[idx], return_counts=True)[1] if y is not None else np.zeros(0)
    n_classes = len(counts)
    # A class with one row left cannot be split in proportion (small uploaded sets).
    if y is None or n < n_classes or len(idx) - n < n_classes or counts.min() < 2:
        picked = rng.permutation(idx)  # too few rows to stratify: a random pick is as good
        return np.sort(picked[n:]), picked[:n]
    rest, chosen = train_test_split(idx, test_size=n, stratify=y[idx],
                                    random_state=_seed(rng))
    return np.sort(rest), chosen


def make_split(
    dataset: str,
    n_train: int,
    n_val: int,
    noise: float = 0.0,
    label_noise: float = 0.0,
    seed: int = 0,
    n_test: int = DEFAULT_TEST,
) -> Split:
    """Draw a dataset's train, validation and test parts, each from its own stream; label
    noise hits train only, so validation and test measure the true task."""
    spec = spec_for(dataset)
    names: tuple[str, ...] = ()
    if spec.draw is not None:
        parts = [spec.draw(n, noise, _stream(seed, part))
                 for n, part in ((n_train, _TRAIN), (n_val, _VAL), (n_test, _TEST))]
    else:
        parts, names = _bundled_parts(spec, n_train, n_val, noise, seed)
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = parts

    flipped = None
    # Standardised with the training points' statistics, as a model in use would be.
    if spec.kind == KIND_IMAGE:
        # One scalar mean/std keeps pixels comparable, so shifts and rotations stay images.
        mean, std = x_tr.mean(), x_tr.std() + 1e-12
    else:
        mean, std = x_tr.mean(axis=0), x_tr.std(axis=0) + 1e-12
    x_tr, x_va, x_te = ((x - mean) / std for x in (x_tr, x_va, x_te))

    rng = _stream(seed, _LABELS)
    if spec.task == "classification":
        y_tr, y_va, y_te = (y.astype(np.int64) for y in (y_tr, y_va, y_te))
        if label_noise > 0:
            y_tr, flipped = _flip_labels(y_tr, label_noise, spec.n_classes, rng)
    else:
        if spec.load is not None:
            # Loaded targets come in their own units (hundreds, or prices): in std units of
            # the training targets, losses read as for the generated sets and stay in float32.
            y_mean, y_std = float(np.mean(y_tr)), float(np.std(y_tr)) + 1e-12
            y_tr, y_va, y_te = ((np.asarray(y, np.float64) - y_mean) / y_std
                                for y in (y_tr, y_va, y_te))
        y_tr, y_va, y_te = (y.astype(np.float32).reshape(-1, 1) for y in (y_tr, y_va, y_te))
        if label_noise > 0:  # corrupted targets: replaced by draws from the target range
            flipped = rng.random(len(y_tr)) < label_noise
            lo, hi = float(y_tr.min()), float(y_tr.max())
            y_tr = np.where(flipped[:, None], rng.uniform(lo, hi, size=y_tr.shape), y_tr)
            y_tr = y_tr.astype(np.float32)

    n_features = x_tr.shape[1]
    names = names or tuple(f"x{i}" for i in range(n_features))
    as_x = lambda x: np.ascontiguousarray(x, dtype=np.float32)  # noqa: E731
    return Split(
        x_train=as_x(x_tr),
        y_train=y_tr,
        x_val=as_x(x_va),
        y_val=y_va,
        kind=spec.kind,
        n_classes=spec.n_classes,
        feature_names=names,
        informative=spec.informative,
        image_shape=(8, 8) if spec.kind == KIND_IMAGE else None,
        background=float(-mean / std) if spec.kind == KIND_IMAGE else 0.0,
        flipped=flipped,
        x_test=as_x(x_te),
        y_test=y_te,
    )
