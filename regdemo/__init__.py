"""regdemo: watch overfitting and regularization happen, live."""

from regdemo.augment import AUGMENTATIONS
from regdemo.config import Config, ConfigError
from regdemo.datasets import DATASETS

__all__ = ["AUGMENTATIONS", "DATASETS", "PRESETS", "Config", "ConfigError", "Trainer"]


def __getattr__(name):
    # The engine and presets load on first use, so `import regdemo` stays light for the page.
    if name == "Trainer":
        from regdemo.engine import Trainer

        return Trainer
    if name == "PRESETS":
        from regdemo.presets import PRESETS

        return PRESETS
    raise AttributeError(f"module 'regdemo' has no attribute {name!r}")
