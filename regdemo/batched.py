"""Train many configs to the end and return their summaries (the sweep's unit of work)."""

from __future__ import annotations

from typing import Any

from regdemo.config import Config


def train_many(configs: list[Config]) -> list[dict[str, Any]]:
    """`Trainer(c).fit()` then `summary()` for each config, in order."""
    from regdemo.engine import Trainer

    results = []
    for config in configs:
        trainer = Trainer(config)
        trainer.fit()
        results.append(trainer.summary())
    return results
