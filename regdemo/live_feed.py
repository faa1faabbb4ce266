"""The live board's data: what a page lacks of its runs, as compact numbers (no figures).

A board tells what it has of each run (`Have`: run id, last epoch, events, views version);
the reply carries only the rest: new epochs (thinned to MAX_DELTA), the events and views
when they changed, and everything once for a run the board does not know yet. The browser
builds and extends the charts itself, so a tick's cost here depends on what is new, never
on how long the run is.
"""

from __future__ import annotations

import base64
import functools
import math
import threading
import weakref
from dataclasses import dataclass

import numpy as np

from regdemo.datasets import KIND_1D, KIND_2D, KIND_IMAGE, Split, make_split
from regdemo.features import input_names
from regdemo.regularizers import ZERO_TOL

MAX_DELTA = 400  # new records in one reply at most; a longer stretch is thinned evenly
MAX_FULL = 2000  # a new board gets the run's whole kept history (the runner keeps 2,000)
# Record fields as the board names them (short: they are repeated in every reply).
COLUMNS = (("tl", "train_loss"), ("vl", "val_loss"), ("ts", "train_score"),
           ("vs", "val_score"), ("wn", "weight_norm"), ("sp", "sparsity"))
HIST_BINS = 60
STRIP = 24  # digits shown in an image strip
NET_UNITS = 16  # units per layer the network diagram draws ("+N more" for the rest)


@dataclass(frozen=True)
class Have:
    """What a board already holds of one run."""

    run_id: int
    epoch: int
    events: int
    views: int


def parse_have(text: str, slots: int = 2) -> list[Have | None]:
    """'id.epoch.events.views' per slot, ';'-separated; anything unreadable means 'nothing'."""
    out: list[Have | None] = []
    for part in (text or "").split(";")[:slots]:
        try:
            run_id, epoch, events, views = (int(v) for v in part.split("."))
        except ValueError:
            out.append(None)
            continue
        ok = all(0 <= v < 2**53 for v in (run_id, epoch, events, views))
        out.append(Have(run_id, epoch, events, views) if ok else None)
    return out + [None] * (slots - len(out))


class _Encoded:
    """Per run, what was encoded once and is shared by every board that shows it."""

    def __init__(self):
        self.data = None
        self.views: tuple[int, dict] | None = None
        self.best: tuple[int, list | None] | None = None


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # handle -> _Encoded
_CACHE_LOCK = threading.Lock()


def _encoded(handle) -> _Encoded:
    with _CACHE_LOCK:
        entry = _CACHE.get(handle)
        if entry is None:
            entry = _CACHE[handle] = _Encoded()
        return entry


def _finite(values) -> list:
    """Floats for JSON: NaN and infinities (a diverged run) become null."""
    return [v if math.isfinite(v) else None for v in values]


def _thin(records: list, limit: int = MAX_DELTA) -> list:
    if len(records) <= limit:
        return records
    step = len(records) / limit
    return [records[int(i * step)] for i in range(limit - 1)] + [records[-1]]


def encode_records(records: list) -> dict:
    """Columns of the records: {'e': epochs, 'tl': train losses, ...}."""
    out = {"e": [r.epoch for r in records]}
    for short, name in COLUMNS:
        out[short] = _finite([getattr(r, name) for r in records])
    return out


def _bytes(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=np.uint8).tobytes()).decode()


def _grey(images: np.ndarray, shape) -> dict:
    """Images as one base64 uint8 block, each scaled to its own range."""
    flat = np.asarray(images, dtype=np.float32).reshape(len(images), -1)
    flat = np.nan_to_num(flat)
    lo, hi = flat.min(1, keepdims=True), flat.max(1, keepdims=True)
    scaled = (flat - lo) / np.where(hi > lo, hi - lo, 1.0) * 255
    return {"n": len(images), "shape": list(shape), "pixels": _bytes(np.round(scaled))}


def _points(x: np.ndarray, y: np.ndarray) -> dict:
    return {"x": np.round(x[:, 0].astype(float), 4).tolist(),
            "y": np.round(x[:, 1].astype(float), 4).tolist() if x.shape[1] > 1 else
            np.round(np.asarray(y, dtype=float).reshape(-1), 4).tolist(),
            "c": np.asarray(y).reshape(-1).astype(int).tolist() if x.shape[1] > 1 else None}


def encode_data(split: Split) -> dict:
    """What a run's data view needs of its data, once per run (it never changes)."""
    out = {"kind": split.kind, "task": split.task}
    if split.kind in (KIND_2D, KIND_1D):
        out["train"] = _points(split.x_train, split.y_train)
        out["val"] = _points(split.x_val, split.y_val)
    elif split.kind == KIND_IMAGE:
        n = min(STRIP, len(split.x_train))
        out["strip"] = _grey(split.x_train[:n], split.image_shape or (8, 8))
        out["strip"]["labels"] = [str(int(v)) for v in split.y_train[:n]]
    else:
        out["features"] = list(split.feature_names)
        out["informative"] = list(split.informative)
    return out


def _histograms(weights: dict) -> dict:
    """Shared-bin counts of every layer's finite weights (60 bins over ±max |w|)."""
    values = [v[np.isfinite(v)] for v in (np.asarray(w).reshape(-1) for w in weights.values())]
    top = max((float(np.abs(v).max()) for v in values if v.size), default=1.0) or 1.0
    edges = np.linspace(-top, top, HIST_BINS + 1)
    layers = [[name, np.histogram(v, bins=edges)[0].tolist()]
              for name, v in zip(weights, values)]
    return {"lo": -top, "hi": top, "layers": layers,
            "zeros": [int((v == 0).sum()) for v in values]}


def _dense_chain(weights: dict) -> list[np.ndarray]:
    """The 2-D weight matrices ([out, in]) that feed one another, in order; NaN and
    infinities (a diverged run) become 0, so they count as no connection."""
    chain: list[np.ndarray] = []
    for w in weights.values():
        w = np.asarray(w, dtype=np.float64)
        if w.ndim != 2 or (chain and w.shape[1] != chain[-1].shape[0]):
            continue  # conv kernels (the cnn's features) are not drawn
        chain.append(np.where(np.isfinite(w), w, 0.0))
    return chain


def _alive(chain: list[np.ndarray], skips: set[int]) -> list[np.ndarray]:
    """Per layer of units, which carry something from the inputs to the outputs: linked to
    an input by a path of non-zero weights, and to an output by one. A unit L1 cut off on
    either side is dead (no incoming weight: a constant; no outgoing one: no effect).
    Matrices in `skips` are residual branches: the identity path keeps their units linked."""
    links = [np.abs(w) > ZERO_TOL for w in chain]
    reach = [np.ones(chain[0].shape[1], dtype=bool)]
    for m, link in enumerate(links):
        nxt = (link & reach[-1]).any(axis=1)
        reach.append(nxt | reach[-1] if m in skips else nxt)
    back = [np.ones(chain[-1].shape[0], dtype=bool)]
    for m in range(len(links) - 1, -1, -1):
        prev = (links[m] & back[0][:, None]).any(axis=0)
        back.insert(0, prev | back[0] if m in skips else prev)
    return [r & b for r, b in zip(reach, back)]


def encode_net(weights: dict, config) -> dict | None:
    """The network diagram's numbers: the dense layers' real widths, and per weight matrix
    the signed weights of the first NET_UNITS x NET_UNITS units as int8 (base64, row-major
    [out, in]) relative to the largest |w| of the whole net (`top`): 127 is the largest,
    an exact zero stays 0, any other weight is at least ±1. `dead` lists the shown units
    that carry nothing from inputs to outputs (L1's exact zeros), `ndead` counts them over
    the whole layer; `drop` is the dropout rate of the layers in `dropped`, `sd` the
    residual blocks' stochastic depth."""
    chain = _dense_chain(weights)
    if not chain:
        return None
    residual, cnn = bool(config.residual), config.arch == "cnn"
    # Residual: the stem is matrix 0, the blocks' branches follow, the output layer last.
    skips = set(range(1, len(chain) - 1)) if residual else set()
    alive = _alive(chain, skips)
    top = max(float(np.abs(w).max()) for w in chain)
    blocks = []
    for w in chain:
        part = w[:NET_UNITS, :NET_UNITS]
        q = np.round(part / top * 127) if top > 0 else np.zeros_like(part)
        q = np.where(np.abs(part) > ZERO_TOL, np.sign(part) * np.maximum(np.abs(q), 1), 0)
        blocks.append(base64.b64encode(q.astype(np.int8).tobytes()).decode())
    sizes = [chain[0].shape[1]] + [w.shape[0] for w in chain]
    last = len(sizes) - 1
    # Dropout follows every hidden activation (and the cnn's conv features); a residual
    # net's stem has none.
    dropped = [i for i in range(last) if (i > 0 or cnn) and not (residual and i == 1)]
    drop = float(config.dropout) if dropped else 0.0
    return {
        "sizes": sizes,
        "w": blocks,
        "top": float(f"{top:.3g}"),
        "dead": [np.flatnonzero(~a[:NET_UNITS]).tolist() for a in alive],
        "ndead": [int((~a).sum()) for a in alive],
        "drop": drop,
        "dropped": dropped if drop > 0 else [],
        "kind": "cnn" if cnn else "residual" if residual else "mlp",
        "sd": float(config.stochastic_depth) if residual else 0.0,
        **({"inputs": list(input_names(config.features))} if config.features else {}),
    }


def encode_views(snap) -> dict:
    """The data and weight panels' numbers (boundary grid, curve, ghosts, digits, ...)."""
    out: dict = {}
    view = snap.view
    if view is not None and "z" in view:
        z = np.nan_to_num(np.asarray(view["z"], dtype=np.float32), nan=0.5)
        out["grid"] = {"x": np.round(view["x"].astype(float), 4).tolist(),
                       "y": np.round(view["y"].astype(float), 4).tolist(),
                       "z": _bytes(np.round(np.clip(z, 0, 1) * 255))}
    elif view is not None:
        out["curve"] = {"x": np.round(view["x"].astype(float), 4).tolist(),
                        "y": _finite(np.asarray(view["y"], dtype=float).round(4).tolist())}
    if snap.weights:
        out["hist"] = _histograms(snap.weights)
        out["net"] = encode_net(snap.weights, snap.config)
    if snap.feature_importance is not None:
        out["importance"] = _finite(np.asarray(snap.feature_importance, dtype=float).tolist())
    split = snap.split
    if snap.augmented is not None:
        xa, ya = snap.augmented
        labels = ya.argmax(1) if np.ndim(ya) == 2 else np.asarray(ya)
        if split is not None and split.kind == KIND_IMAGE:
            n = min(STRIP, len(xa))
            out["strip"] = _grey(xa[:n], split.image_shape or (8, 8))
            out["strip"]["labels"] = [str(int(v)) for v in labels[:n]]
            out["strip"]["title"] = f"Training digits as the net sees them ({snap.config.augment})"
        elif split is not None and split.kind == KIND_2D:
            out["ghosts"] = _points(np.asarray(xa), labels)
    if snap.mistakes is not None and len(snap.mistakes[0]) and split is not None:
        x, true, pred = snap.mistakes
        out["mistakes"] = _grey(x, split.image_shape or (8, 8))
        out["mistakes"]["labels"] = [f"{int(t)}→{int(p)}" for t, p in zip(true, pred)]
    return out


def _best(handle, snap, cache: _Encoded) -> list | None:
    """[epoch, train loss, val loss, train score, val score] of the best epoch, if any."""
    epoch = snap.best_epoch
    if not epoch:
        return None
    if cache.best is None or cache.best[0] != epoch:
        tail = snap.history if snap.history and snap.history[0].epoch <= epoch else \
            handle.snapshot(touch=False, since=epoch - 1).history
        record = next((r for r in tail if r.epoch == epoch), None)
        # None if thinned away long ago: the figures stay unknown
        cache.best = (epoch, None if record is None else [epoch, *_finite(
            [record.train_loss, record.val_loss, record.train_score, record.val_score])])
    return cache.best[1]


def _test(summary: dict | None) -> list | None:
    """[test loss, test score] of a run at rest (the test set is measured only then)."""
    if not summary or summary.get("test_loss") is None:
        return None
    return _finite([summary["test_loss"], summary["test_score"]])


def run_update(handle, have: Have | None) -> dict:
    """One run's reply: its state, and what the board lacks of its history and views."""
    full = have is None or have.run_id != handle.id
    since = None if full else have.epoch
    snap = handle.snapshot(since=since)
    if not full and since > snap.epoch:  # the board is ahead of the run: start over
        full, snap = True, handle.snapshot()
    config, cache = snap.config, _encoded(handle)
    out = {
        "id": snap.run_id, "full": full, "status": snap.status, "busy": snap.busy,
        "epoch": snap.epoch, "epochs": config.epochs, "rate": round(snap.epochs_per_second, 1),
        "stop": snap.stop_reason, "diverged": snap.diverged, "error": snap.error,
        "best": _best(handle, snap, cache), "restored": snap.restored_epoch,
        "test": _test(snap.summary),
        "patience": config.patience if config.early_stopping else None,
        "rec": encode_records(_thin(snap.history, MAX_FULL if full else MAX_DELTA)),
        "vv": snap.views_version,
    }
    if full or have.events != len(snap.events):
        out["events"] = [[e.epoch, e.label, e.knob] for e in snap.events]
    if full or have.views != snap.views_version:
        if cache.views is None or cache.views[0] != snap.views_version:
            cache.views = (snap.views_version, encode_views(snap))
        out["views"] = cache.views[1]
    if full and snap.split is not None:
        if cache.data is None:
            cache.data = encode_data(snap.split)
        out["data"] = cache.data
    return out


@functools.lru_cache(maxsize=64)
def _preview(dataset: str, n_train: int, n_val: int, noise: float, label_noise: float,
             seed: int) -> dict:
    split = make_split(dataset, n_train, n_val, noise, label_noise, seed=seed)
    return encode_data(split)


def preview(config) -> dict:
    """The data a run of `config` would train on (shown before Train, like TensorFlow
    Playground shows its dataset): {'key': what identifies it, 'data': encode_data()}."""
    fields = (config.dataset, config.n_train, config.n_val, config.noise, config.label_noise,
              config.seed)
    return {"key": ".".join(str(f) for f in fields), "data": _preview(*fields)}


def strict(value):
    """`value` with every non-finite float replaced by None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict(v) for v in value]
    return value


def board_update(runner, run_ids, haves: list[Have | None]) -> list[dict | None]:
    """Replies for a board's runs (A, and B when forked); a forgotten run gives None."""
    out = []
    for run_id, have in zip(run_ids, haves):
        handle = runner.get(run_id) if run_id is not None else None
        out.append(run_update(handle, have) if handle is not None else None)
    return out
