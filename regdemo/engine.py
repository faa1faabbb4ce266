"""The trainer: one epoch per `step()`, live knobs between epochs, honest train/val curves."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from regdemo import fused, models, regularizers
from regdemo.augment import AUGMENTATIONS, DataInfo
from regdemo.callbacks import EarlyStopping
from regdemo.config import Config
from regdemo.datasets import KIND_1D, KIND_2D, KIND_IMAGE, Split, split_for
from regdemo.records import EpochRecord, Event, summary_dict

# A run whose weight norm passes this has exploded even if the loss is still finite.
MAX_WEIGHT_NORM = 1e6
# Streams of the run's seed: data, initial weights, training noise (dropout, batches, ...).
_DATA, _INIT, _TRAIN = 0, 1, 2


@contextmanager
def flush_denormals() -> Iterator[None]:
    """Flush denormals to zero in this thread while training (0.1 us a call): Adam's
    moments of dead units decay into denormals, which made epochs up to 40x slower on this
    CPU. The flag covers the fused kernels too (they run in this thread)."""
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)  # the caller's thread as it was (the default)


def _generator(seed: int, stream: int) -> torch.Generator:
    state = np.random.SeedSequence([seed, stream]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


class Trainer:
    """Trains one network on one dataset; `step()` runs an epoch and returns its record."""

    def __init__(self, config: Config, split: Split | None = None, threads: int | None = None,
                 use_fused: bool | None = None):
        # `threads` caps torch's and BLAS's threads for the whole process: the server's
        # workers pass 1 (many runs share the cores); a notebook's Trainer leaves them be.
        if threads is not None:
            torch.set_num_threads(threads)
            fused.limit_blas_threads(threads)
        self.config = config
        self.split = split or split_for(config)
        s = self.split
        self.x_train = torch.from_numpy(s.x_train)
        self.y_train = torch.from_numpy(s.y_train)
        self.x_val = torch.from_numpy(s.x_val)
        self.y_val = torch.from_numpy(s.y_val)
        self.x_test = None if s.x_test is None else torch.from_numpy(s.x_test)
        self.y_test = None if s.y_test is None else torch.from_numpy(s.y_test)
        self._test_cache: tuple | None = None
        # One eval forward pass measures train and val together.
        self.x_all = torch.cat([self.x_train, self.x_val])
        self.n_train = len(self.x_train)
        self.classification = s.task == "classification"
        self._info = DataInfo(s.n_classes, s.image_shape, s.background)
        if not self.classification:  # R^2 denominators, fixed per split
            self.target_spread = [float(((y - y.mean()) ** 2).sum())
                                  for y in (self.y_train, self.y_val)]

        self.train_generator = _generator(config.seed, _TRAIN)
        with torch.random.fork_rng(devices=[]):  # module constructors draw; keep it private
            self.model_ = models.build_model(
                config, s.n_features, s.n_classes or 1, s.image_shape
            )
        models.init_weights(self.model_, _generator(config.seed, _INIT))
        models.attach_generator(self.model_, self.train_generator)
        self._weights = regularizers.penalized_weights(self.model_)
        self.optimizer_ = self._make_optimizer()
        self._toggle_modes = models.is_mode_sensitive(self.model_)
        self.model_.train()

        self.epoch = 0
        self.history: list[EpochRecord] = []
        self.events: list[Event] = []
        self.stop_reason: str | None = None
        self.diverged = False
        self.restored_epoch: int | None = None  # set when early stopping restored weights
        self._final = False  # a stop no live change can lift (divergence, halt)
        self.early_stopping_ = EarlyStopping(config.patience, config.min_delta)
        self._grid_cache: dict[int, tuple] = {}
        # Plain MLPs train through the compiled fused epoch (same results within float
        # rounding, far less overhead); what it does not cover takes the eager path, epoch
        # by epoch. The choice depends on the config alone, never on timing, so a config
        # gives the same numbers in every process (the first fused epoch in a process
        # loads the kernels: 0.4 s from numba's disk cache, ~20 s to compile the first time).
        self.use_fused = fused.enabled() if use_fused is None else use_fused
        self._fused: fused.FusedStack | None = None
        self._fused_for: tuple[Config, bool] | None = None  # (config, supported) last checked

    # ----------------------------------------------------------------- building
    def _make_optimizer(self) -> torch.optim.Optimizer:
        c = self.config
        weight_ids = {id(w) for w in self._weights}
        others = [p for p in self.model_.parameters() if id(p) not in weight_ids]
        groups = [{"params": self._weights, "weight_decay": c.weight_decay}]
        if others:  # biases and norm parameters: never decayed
            groups.append({"params": others, "weight_decay": 0.0})
        # Measured on CPU: foreach SGD beats fused SGD; fused Adam beats foreach Adam.
        if c.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=c.lr, foreach=True)
        if c.optimizer == "momentum":
            return torch.optim.SGD(groups, lr=c.lr, momentum=0.9, foreach=True)
        if c.optimizer == "adam":
            return torch.optim.Adam(groups, lr=c.lr, fused=True)
        return torch.optim.AdamW(groups, lr=c.lr, fused=True)

    # ----------------------------------------------------------------- training
    @property
    def stopped(self) -> bool:
        return self.stop_reason is not None

    @property
    def best_epoch(self) -> int | None:
        """Epoch with the lowest validation loss so far (by `min_delta` when it is set)."""
        return self.early_stopping_.best_epoch

    def _data_loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.classification:
            return F.cross_entropy(out, target, label_smoothing=self.config.label_smoothing)
        return F.mse_loss(out, target)

    def _batches(self):
        n, size = self.n_train, self.config.batch_size
        if size == 0 or size >= n:
            yield None
            return
        perm = torch.randperm(n, generator=self.train_generator)
        for start in range(0, n, size):
            idx = perm[start : start + size]
            if len(idx) == 1 and self.config.batch_norm:
                return  # batch norm cannot normalise one sample: skip the leftover
            yield idx

    def step(self) -> EpochRecord | None:
        """Train one epoch and measure it; None when the run has stopped."""
        if self.stopped:
            return None
        t0 = time.perf_counter()
        with flush_denormals():
            kernel = self.fused_kernel()
            if kernel is not None:
                mean_loss, measured = float(kernel.epoch()[0]), kernel.measure()[0]
            else:
                mean_loss = self._eager_epoch()
                measured = (*self.scores(), *regularizers.weight_stats(self._weights))
        return self.record_epoch(mean_loss, measured, time.perf_counter() - t0)

    def fused_kernel(self) -> fused.FusedStack | None:
        """The fused epoch (this run as a stack of one) when it covers the current
        settings, else None (eager)."""
        if not self.use_fused:
            return None
        if self._fused_for is None or self._fused_for[0] is not self.config:
            ok = fused.unsupported(self.config, self.model_) is None
            self._fused_for = (self.config, ok)
        if not self._fused_for[1]:
            return None
        if self._fused is None:
            self._fused = fused.FusedStack([self])
        return self._fused

    def _eager_epoch(self) -> float:
        """One epoch in plain PyTorch; the mean train-mode data loss over the batches."""
        c = self.config
        augment = AUGMENTATIONS[c.augment].apply if c.augment != "none" else None
        opt, weights = self.optimizer_, self._weights
        total, n_batches = None, 0
        for idx in self._batches():
            xb = self.x_train if idx is None else self.x_train[idx]
            yb = self.y_train if idx is None else self.y_train[idx]
            if augment is not None:
                xb, yb = augment(xb, yb, c.augment_strength, self.train_generator, self._info)
            loss = self._data_loss(self.model_(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if c.l2 > 0:
                regularizers.add_l2_grad_(weights, c.l2)
            opt.step()
            if c.l1 > 0:
                regularizers.soft_threshold_(
                    weights, regularizers.l1_thresholds(weights, opt, opt.param_groups[0], c.l1)
                )
            if c.max_norm > 0:
                regularizers.max_norm_(regularizers.hidden_weights(weights), c.max_norm)
            total = loss.detach() if total is None else total + loss.detach()
            n_batches += 1
        return float(total) / n_batches

    @torch.inference_mode()
    def _evaluate(self, x: torch.Tensor) -> torch.Tensor:
        """Eval-mode forward pass: no dropout, no drop-path, batch norm on running stats."""
        if not self._toggle_modes:
            return self.model_(x)
        self.model_.eval()
        try:
            return self.model_(x)
        finally:
            self.model_.train()

    def scores(self) -> tuple[float, float, float, float]:
        """(train loss, val loss, train score, val score) of the current weights, eval mode."""
        out = self._evaluate(self.x_all)
        n = self.n_train
        tr, va = out[:n], out[n:]
        with torch.inference_mode():
            if self.classification:
                return (
                    float(F.cross_entropy(tr, self.y_train)),
                    float(F.cross_entropy(va, self.y_val)),
                    float((tr.argmax(1) == self.y_train).float().mean()),
                    float((va.argmax(1) == self.y_val).float().mean()),
                )
            sse_tr = float(((tr - self.y_train) ** 2).sum())
            sse_va = float(((va - self.y_val) ** 2).sum())
            return (  # MSE is the mean over every output, as F.mse_loss and the kernel take it
                sse_tr / tr.numel(),
                sse_va / va.numel(),
                1 - sse_tr / self.target_spread[0] if self.target_spread[0] else 0.0,
                1 - sse_va / self.target_spread[1] if self.target_spread[1] else 0.0,
            )

    def record_epoch(self, mean_loss: float, measured, wall_time: float) -> EpochRecord | None:
        """Book one trained epoch: its mean train-mode loss and its measured figures
        (train/val loss and score, weight L2 and L1 norm, sparsity). Checks divergence,
        early stopping and the epoch budget; None when the run diverged. Every training
        path (eager, fused, stacked) ends its epoch here."""
        train_loss, val_loss, train_score, val_score, norm, l1_norm, sparsity = measured
        penalty = regularizers.penalty(self.config, l1_norm, norm)
        epoch = self.epoch + 1
        problem = self._divergence(epoch, mean_loss, train_loss, val_loss, norm)
        if problem:
            self.stop_reason, self.diverged, self._final = problem, True, True
            return None
        record = EpochRecord(
            epoch=epoch,
            train_loss=train_loss,
            val_loss=val_loss,
            train_score=train_score,
            val_score=val_score,
            objective=mean_loss + penalty,
            penalty=penalty,
            weight_norm=norm,
            sparsity=sparsity,
            lr=self.optimizer_.param_groups[0]["lr"],
            wall_time=wall_time,
        )
        self.epoch = epoch
        self.history.append(record)
        self._after_epoch(record)
        return record

    def _divergence(self, epoch, mean_loss, train_loss, val_loss, norm) -> str | None:
        if not all(math.isfinite(v) for v in (mean_loss, train_loss, val_loss, norm)):
            what = "the training loss" if not math.isfinite(mean_loss) else "a loss or weight"
            return (
                f"diverged at epoch {epoch}: {what} became NaN or infinite. "
                "Lower the learning rate or the weight decay and start a new run."
            )
        if norm > MAX_WEIGHT_NORM:
            return (
                f"diverged at epoch {epoch}: the weights exploded (norm {norm:.3g}). "
                "Lower the learning rate and start a new run."
            )
        return None

    def _after_epoch(self, record: EpochRecord) -> None:
        c = self.config
        keep = self.model_ if (c.early_stopping and c.restore_best) else None
        self.early_stopping_.update(record.epoch, record.val_loss, keep)
        if c.early_stopping and self.early_stopping_.should_stop(record.epoch):
            best = self.early_stopping_.best_epoch
            reason = f"early stopping: no val-loss gain for {c.patience} epochs (best epoch {best})"
            if c.restore_best and self.early_stopping_.restore(self.model_):
                reason += f"; weights of epoch {best} restored"
                self.restored_epoch = best
            self.stop_reason = reason
        elif self.epoch >= c.epochs:
            self.stop_reason = f"finished: reached {c.epochs} epochs"

    def fit(self, n: int | None = None) -> list[EpochRecord]:
        """Train `n` more epochs, or until the run stops (epochs reached, early stop, NaN)."""
        records = []
        while n is None or len(records) < n:
            record = self.step()
            if record is None:
                break
            records.append(record)
        return records

    # ----------------------------------------------------------------- live knobs
    def set_live(self, **knobs) -> list[Event]:
        """Change live knobs between epochs; records an event per change, resets nothing."""
        new = self.config.with_live(**knobs)  # refuses structural knobs and bad values
        old, self.config = self.config, new
        events = []
        for knob in knobs:
            before, after = getattr(old, knob), getattr(new, knob)
            if before == after:
                continue
            self._apply(knob, after)
            events.append(Event(self.epoch, knob, before, after))
        self.events.extend(events)
        self._toggle_modes = models.is_mode_sensitive(self.model_)
        self._maybe_resume()
        return events

    def _apply(self, knob: str, value: Any) -> None:
        if knob == "lr":
            for group in self.optimizer_.param_groups:
                group["lr"] = value
        elif knob == "weight_decay":
            self.optimizer_.param_groups[0]["weight_decay"] = value
        elif knob == "dropout":
            models.set_dropout(self.model_, value)
        elif knob == "stochastic_depth":
            models.set_drop_path(self.model_, value)
        elif knob == "patience":
            self.early_stopping_.patience = value
        elif knob == "min_delta":
            self.early_stopping_.min_delta = value
        # The rest (l1, l2, label smoothing, augmentation, batch size, epochs, early-stopping
        # switches) are read from self.config at every epoch.

    def halt(self, reason: str) -> None:
        """Stop for good from outside (a time limit, a failure): no live change lifts it."""
        self.stop_reason, self._final = reason, True

    def _maybe_resume(self) -> None:
        """A stop whose cause a live change removed (more epochs, more patience) lifts."""
        if self.stop_reason is None or self._final or self.epoch >= self.config.epochs:
            return
        if self.stop_reason.startswith("early stopping") and (
            self.config.early_stopping and self.early_stopping_.should_stop(self.epoch)
        ):
            return
        self.stop_reason, self.restored_epoch = None, None

    # ----------------------------------------------------------------- branching
    def fork(self) -> Trainer:
        """An independent copy (weights, optimizer, RNG, history) that continues identically."""
        shared = (self.split, self.x_train, self.y_train, self.x_val, self.y_val, self.x_all)
        memo = {id(obj): obj for obj in shared}  # data is read-only: share it
        kernel, self._fused = self._fused, None  # the copy binds its own flat buffers
        try:
            return copy.deepcopy(self, memo)
        finally:
            self._fused = kernel

    # ----------------------------------------------------------------- views
    def _grid(self, resolution: int):
        if resolution not in self._grid_cache:
            both = torch.cat([self.x_train, self.x_val])
            lo, hi = both.min(0).values, both.max(0).values
            pad = 0.1 * (hi - lo) + 1e-3
            axes = [
                torch.linspace(float(a), float(b), resolution)
                for a, b in zip(lo - pad, hi + pad)
            ]
            if self.split.kind == KIND_2D:
                gx, gy = torch.meshgrid(axes[0], axes[1], indexing="xy")
                points = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)
            else:
                points = axes[0].reshape(-1, 1)
            self._grid_cache[resolution] = (axes, points)
        return self._grid_cache[resolution]

    def predict_grid(self, resolution: int = 100) -> dict | None:
        """2-D: P(class 1) on a grid; 1-D: the fitted curve; other data kinds: None."""
        if self.split.kind not in (KIND_2D, KIND_1D):
            return None
        axes, points = self._grid(resolution)
        out = self._evaluate(points)
        if self.split.kind == KIND_1D:
            return {"x": axes[0].numpy(), "y": out[:, 0].numpy().copy()}
        probs = torch.softmax(out, dim=1)[:, 1].reshape(resolution, resolution)
        return {"x": axes[0].numpy(), "y": axes[1].numpy(), "z": probs.numpy().copy()}

    def predict(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        """Eval-mode predictions: class probabilities, or regression outputs."""
        out = self._evaluate(torch.as_tensor(x, dtype=torch.float32))
        return (torch.softmax(out, 1) if self.classification else out).numpy().copy()

    def weights(self) -> dict[str, np.ndarray]:
        """Per-layer weight arrays (penalised weights only), for histograms."""
        out, counts = {}, {}
        for w in self._weights:
            kind = "conv" if w.dim() == 4 else "linear"
            counts[kind] = counts.get(kind, 0) + 1
            shape = "x".join(str(d) for d in reversed(w.shape[:2]))
            out[f"{kind} {counts[kind]} ({shape})"] = w.detach().numpy().copy()
        return out

    def feature_importance(self) -> np.ndarray | None:
        """Per-input-feature L2 norm of the first linear layer (None for the CNN)."""
        first = self._weights[0]
        if first.dim() != 2:
            return None
        return torch.linalg.vector_norm(first.detach(), dim=0).numpy().copy()

    def mistakes(self, n: int = 24) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Misclassified validation images: (inputs, true labels, predicted labels)."""
        if self.split.kind != KIND_IMAGE:
            return None
        pred = self._evaluate(self.x_val).argmax(1)
        wrong = (pred != self.y_val).nonzero().reshape(-1)[:n]
        return self.x_val[wrong].numpy().copy(), self.y_val[wrong].numpy(), pred[wrong].numpy()

    def augmented_sample(self, n: int = 64) -> tuple[np.ndarray, np.ndarray] | None:
        """A few augmented training inputs (for ghost points and preview strips)."""
        c = self.config
        if c.augment == "none":
            return None
        gen = torch.Generator().manual_seed(self.epoch)  # a preview must not shift training
        x, y = self.x_train[:n], self.y_train[:n]
        xa, ya = AUGMENTATIONS[c.augment].apply(x, y, c.augment_strength, gen, self._info)
        return xa.numpy().copy(), ya.numpy().copy()

    def views(self, resolution: int = 100) -> dict[str, Any]:
        """Everything the page's data and weight panels draw, for one refresh."""
        return {
            "view": self.predict_grid(resolution),
            "weights": self.weights(),
            "importance": self.feature_importance(),
            "augmented": self.augmented_sample(),
            "mistakes": self.mistakes(),
        }

    def summary(self) -> dict[str, Any]:
        """Figures of the current weights: the last epoch's, or the restored best epoch's."""
        last = self.history[-1] if self.history else None
        if self.restored_epoch is not None:
            last = self.history[self.restored_epoch - 1]
        best = self.best_epoch
        return summary_dict(self.epoch, last, best,
                            self.early_stopping_.best_loss if best else None, self.stop_reason,
                            self.test_scores() if last else None)

    def test_scores(self) -> tuple[float, float] | None:
        """(loss, score) of the current weights on the held-out test set, eval mode."""
        if self.x_test is None or not len(self.x_test):
            return None
        key = (self.epoch, self.restored_epoch)  # the weights change only with these
        if self._test_cache is None or self._test_cache[0] != key:
            out = self._evaluate(self.x_test)
            self._test_cache = (key, self._figures(out, self.y_test))
        return self._test_cache[1]

    @torch.inference_mode()
    def _figures(self, out: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        """(loss, score) of outputs against targets: cross-entropy and accuracy, or the
        mean squared error and R^2."""
        if self.classification:
            return float(F.cross_entropy(out, y)), float((out.argmax(1) == y).float().mean())
        sse = float(((out - y) ** 2).sum())
        sst = float(((y - y.mean()) ** 2).sum())
        return sse / out.numel(), 1 - sse / sst if sst else 0.0
