"""The training sections of a generated script: regularizer steps, epoch, measuring, main.

Each function takes the codegen Plan and returns lines, mirroring the lab's eager path
(engine.Trainer._eager_epoch and regularizers.py) step for step, so the numbers match.
"""

from __future__ import annotations

from textwrap import dedent

from regdemo.codegen_parts import AUGMENT_CODE, WARP

OPTIMIZERS = {  # as the lab builds them (foreach SGD, fused Adam): the same numbers
    "sgd": 'torch.optim.SGD(groups, lr=KNOBS["lr"], foreach=True)',
    "momentum": 'torch.optim.SGD(groups, lr=KNOBS["lr"], momentum=0.9, foreach=True)',
    "adam": 'torch.optim.Adam(groups, lr=KNOBS["lr"], fused=True)',
    "adamw": 'torch.optim.AdamW(groups, lr=KNOBS["lr"], fused=True)',
}


def _code(text: str, indent: int = 0) -> list[str]:
    return [" " * indent + line if line else line
            for line in dedent(text).strip("\n").splitlines()]


def regularizer_section(p) -> list[str]:
    """The penalty steps the run uses: L2's gradient, L1's proximal step, max-norm."""
    out = []
    if p.uses("l2"):
        out += _code('''
            def add_l2_grad(weights, lam):
                """L2 penalty: adds lambda/2 x sum of squared weights to the loss. Here its
                gradient, lambda x w, goes straight into each weight's gradient: the same
                update without an autograd graph for the penalty."""
                for w in weights:
                    w.grad.add_(w, alpha=lam)
            ''') + ["", ""]
    if p.uses("l1"):
        adam = p.config.optimizer in ("adam", "adamw")
        out += _code('''
            @torch.no_grad()
            def l1_step(weights, optimizer, lam):
                """L1 penalty: pushes weights to exact zeros. A proximal soft-threshold after
                each step, w <- sign(w) * max(|w| - t, 0), with t = lr x lambda in the
                optimizer's own step geometry."""
                group = optimizer.param_groups[0]
                for w in weights:
            ''')
        if adam:
            out += _code('''
                # Adam scales each coordinate's step by 1 / (sqrt(v_hat) + eps): so is t.
                state, beta2 = optimizer.state[w], group["betas"][1]
                v_hat = state["exp_avg_sq"] / (1 - beta2 ** float(state["step"]))
                t = group["lr"] * lam / (v_hat.sqrt() + group["eps"])
                ''', 8)
        else:
            out.append('        t = group["lr"] * lam')
        out += ["        w.copy_(w.sign() * (w.abs() - t).clamp_min(0))", "", ""]
    if p.uses("max_norm"):
        out += _code('''
            @torch.no_grad()
            def max_norm(weights, radius):
                """Max-norm: caps the length of each hidden unit's incoming weights (a row
                of W) after every step, projecting it back onto the ball of `radius`."""
                for w in weights:
                    norms = torch.linalg.vector_norm(w, dim=-1, keepdim=True)
                    w.mul_((radius / norms.clamp_min(1e-12)).clamp(max=1.0))
            ''') + ["", ""]
    if out:
        out = ["# ----------------------------------------------------------------- regularizers",
               *out[:-2]]
    return out


def _augment(p) -> list[str]:
    out = []
    if {"shift", "rotate"} & set(p.augments):
        out += _code(WARP) + ["", ""]
    out += _code('''
        def augment(x, y, knobs, gen):
            """Augmentation: transforms training inputs each epoch, drawing from `gen`."""
            kind, strength = knobs["augment"], knobs["augment_strength"]
        ''')
    target = "F.one_hot(y, N_CLASSES).to(x.dtype)" if p.classification else "y"
    for name in p.augments:
        out += _code(AUGMENT_CODE[name].replace("TARGET(y)", target), 4)
    return out + ["    return x, y", "", ""]


def training_section(p) -> list[str]:
    """The optimizer, the batches, the augmentation and one epoch of training."""
    c = p.config
    decay = 'KNOBS["weight_decay"]' if p.uses("weight_decay") else "0.0"
    out = ["# ----------------------------------------------------------------- training"]
    out += _code(f'''
        def make_optimizer(model, weights):
            """{c.optimizer}; weight decay (the optimizer's own, decoupled from the gradient
            under AdamW) acts on the weights only, never on biases or batch-norm parameters."""
            ids = {{id(w) for w in weights}}
            others = [q for q in model.parameters() if id(q) not in ids]
            groups = [{{"params": weights, "weight_decay": {decay}}},
                      {{"params": others, "weight_decay": 0.0}}]
            return {OPTIMIZERS[c.optimizer]}


        def batches(x, y, size, gen):
            """The training set as one batch (size 0), or in shuffled mini-batches."""
            n = len(x)
            if size == 0 or size >= n:
                yield x, y
                return
            perm = torch.randperm(n, generator=gen)
            for start in range(0, n, size):
                idx = perm[start : start + size]
        ''')
    if c.batch_norm:
        out += ["        if len(idx) == 1:  # batch norm cannot normalise one sample: skip it",
                "            return"]
    out += ["        yield x[idx], y[idx]", "", ""]
    if p.augments:
        out += _augment(p)
    if p.classification and p.uses("label_smoothing"):
        loss = 'F.cross_entropy(model(xb), yb, label_smoothing=knobs["label_smoothing"])'
    else:
        loss = "F.cross_entropy(model(xb), yb)" if p.classification else \
            "F.mse_loss(model(xb), yb)"
    out += _code('''
        def train_epoch(model, weights, optimizer, knobs, x_train, y_train, gen):
            """One epoch as the lab's eager path trains it."""
            for xb, yb in batches(x_train, y_train, knobs["batch_size"], gen):
        ''')
    if p.augments:
        out += ['        if knobs["augment"] != "none":',
                "            xb, yb = augment(xb, yb, knobs, gen)"]
    if p.uses("label_smoothing"):
        out.append("        # Label smoothing: aims for 1 - epsilon/2 confidence instead of 100%.")
    out += [f"        loss = {loss}",
            "        optimizer.zero_grad(set_to_none=True)",
            "        loss.backward()"]
    if p.uses("l2"):
        out += ['        if knobs["l2"] > 0:', '            add_l2_grad(weights, knobs["l2"])']
    out.append("        optimizer.step()")
    if p.uses("l1"):
        out += ['        if knobs["l1"] > 0:',
                '            l1_step(weights, optimizer, knobs["l1"])']
    if p.uses("max_norm"):
        out += ['        if knobs["max_norm"] > 0:  # every layer\'s but the output\'s',
                '            max_norm(weights[:-1], knobs["max_norm"])']
    return out + ["", ""] + _measure(p)


def _measure(p) -> list[str]:
    what = "accuracy" if p.classification else "R^2"
    out = _code(f'''
        @torch.no_grad()
        def measure(model, x_all, y_train, y_val):
            """(train loss, val loss, train {what}, val {what}) in eval mode: no dropout, batch
            norm on its running statistics, no penalty. One pass over train and val."""
            model.eval()
            out = model(x_all)
            model.train()
            n = len(y_train)
            tr, va = out[:n], out[n:]
        ''')
    if p.classification:
        out += _code('''
            return (
                float(F.cross_entropy(tr, y_train)),
                float(F.cross_entropy(va, y_val)),
                float((tr.argmax(1) == y_train).float().mean()),
                float((va.argmax(1) == y_val).float().mean()),
            )
            ''', 4)
    else:
        out += _code('''
            sse_tr = float(((tr - y_train) ** 2).sum())
            sse_va = float(((va - y_val) ** 2).sum())
            return (sse_tr / tr.numel(), sse_va / va.numel(),
                    r_squared(sse_tr, y_train), r_squared(sse_va, y_val))
            ''', 4)
        out += ["", ""] + _code('''
            def r_squared(sse, y):
                """1 - SSE / SST (0 when the targets do not vary)."""
                sst = float(((y - y.mean()) ** 2).sum())
                return 1 - sse / sst if sst else 0.0
            ''')
    return out + ["", ""] + _code('''
        def diverged(train_loss, val_loss, weights):
            """NaN or infinite losses, or weights past norm 1e6: the lab stops such a run."""
            norm = float(torch.linalg.vector_norm(torch.cat([w.reshape(-1) for w in weights])))
            return not all(math.isfinite(v) for v in (train_loss, val_loss, norm)) or norm > 1e6
        ''')


def _early_stopping() -> list[str]:
    return _code('''
        class EarlyStopping:
            """Early stopping: stop when validation loss has not improved for `patience`
            epochs; keeps the best epoch's weights to restore."""

            def __init__(self):
                self.loss, self.epoch, self.state = math.inf, None, None

            def update(self, epoch, val_loss, model, min_delta):
                """Record an epoch; copies the weights when `model` is given."""
                if val_loss < self.loss - min_delta:
                    self.loss, self.epoch = val_loss, epoch
                    if model is not None:
                        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

            def should_stop(self, epoch, patience):
                return self.epoch is not None and epoch - self.epoch >= patience

            def restore(self, model):
                """Back to the best weights (the optimizer keeps its state, as in the lab)."""
                if self.state is None:
                    return False
                model.load_state_dict(self.state)
                return True
        ''') + ["", ""]


def _apply_changes(p) -> list[str]:
    changed = p.changed
    out = _code('''
        def apply_changes(changes, knobs, model, optimizer):
            """A live change of the lab's run, between two epochs: the knobs take new values."""
            knobs.update(changes)
        ''')
    if "lr" in changed:
        out += _code('''
            if "lr" in changes:
                for group in optimizer.param_groups:
                    group["lr"] = changes["lr"]
            ''', 4)
    if "weight_decay" in changed:
        out += _code('''
            if "weight_decay" in changes:  # the weights' group: biases are never decayed
                optimizer.param_groups[0]["weight_decay"] = changes["weight_decay"]
            ''', 4)
    if "dropout" in changed:
        out += ['    if "dropout" in changes:',
                '        set_dropout(model, changes["dropout"])']
    if "stochastic_depth" in changed:
        out += ['    if "stochastic_depth" in changes:',
                '        set_drop_path(model, changes["stochastic_depth"])']
    return out + ["", ""]


def main_section(p) -> list[str]:
    """Early stopping, the live changes and `main()`: the epoch loop that prints losses."""
    es = p.uses("early_stopping")
    score = "accuracy" if p.classification else "r2"
    out = ["# ----------------------------------------------------------------- the run"]
    if es:
        out += _early_stopping()
    if p.changes:
        out += _apply_changes(p)
    out += _code('''
        def main() -> None:
            torch.set_flush_denormal(True)  # as the lab trains (speed; denormals are dust)
            x_train, y_train, x_val, y_val = load_data()
            x_all = torch.cat([x_train, x_val])
            train_gen = generator(TRAIN)  # batch order, dropout masks, augmentation noise
            model = build_model(train_gen)
            init_weights(model, generator(INIT))
            weights = [m.weight for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
            optimizer = make_optimizer(model, weights)
            knobs = dict(KNOBS)
        ''')
    if es:
        out.append("    best = EarlyStopping()")
    if 0 in p.changes:
        out.append("    apply_changes(CHANGES[0], knobs, model, optimizer)")
    out += _code('''
            model.train()
            print("epoch, train_loss, val_loss")
            epoch, stop = 0, None
            while stop is None:
                train_epoch(model, weights, optimizer, knobs, x_train, y_train, train_gen)
                epoch += 1
                train_loss, val_loss, _, _ = measure(model, x_all, y_train, y_val)
                if diverged(train_loss, val_loss, weights):
                    print(f"diverged at epoch {epoch}: lower the learning rate or the decay")
                    return
                print(f"{epoch}, {train_loss:.6g}, {val_loss:.6g}")
        ''', 4)
    if es:
        out += _code('''
                keep = knobs["early_stopping"] and knobs["restore_best"]
                best.update(epoch, val_loss, model if keep else None, knobs["min_delta"])
                if knobs["early_stopping"] and best.should_stop(epoch, knobs["patience"]):
                    stop = (f"early stopping: no val-loss gain for {knobs['patience']} epochs"
                            f" (best epoch {best.epoch})")
                    if knobs["restore_best"] and best.restore(model):
                        stop += f"; weights of epoch {best.epoch} restored"
                elif epoch >= knobs["epochs"]:
                    stop = f"finished: reached {knobs['epochs']} epochs"
            ''', 8)
    else:
        out += ['        if epoch >= knobs["epochs"]:',
                "            stop = f\"finished: reached {knobs['epochs']} epochs\""]
    if p.changes:
        out += ["        if epoch in CHANGES:",
                "            apply_changes(CHANGES[epoch], knobs, model, optimizer)",
                "            # A change can lift a stop: more epochs, or more patience.",
                '            if stop is not None and epoch < knobs["epochs"]:']
        if es:
            out += _code('''
                    early = stop.startswith("early")
                    if not (early and knobs["early_stopping"]
                            and best.should_stop(epoch, knobs["patience"])):
                        stop = None
                ''', 16)
        else:
            out.append("                stop = None")
    out += _code(f'''
            train_loss, val_loss, train_score, val_score = measure(model, x_all, y_train, y_val)
            print(f"final: train_loss {{train_loss:.6g}}, val_loss {{val_loss:.6g}}, "
                  f"train_{score} {{train_score:.4f}}, val_{score} {{val_score:.4f}} "
                  f"after {{epoch}} epochs ({{stop}})")
        ''', 4)
    return out
