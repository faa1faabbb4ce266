"""regdemo: watch overfitting and regularization happen, live."""

from regdemo import cpu_paths

cpu_paths.pin()  # before torch loads: the same curves on AVX2 and AVX-512 machines

from regdemo.augment import AUGMENTATIONS  # noqa: E402
from regdemo.config import Config, ConfigError  # noqa: E402
from regdemo.datasets import DATASETS  # noqa: E402

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
