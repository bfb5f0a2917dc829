"""zerotune: from zero to a trained, fine-tuned and served model, every step visible in TensorBoard."""

from .compute.omp import choose_wait_policy

choose_wait_policy()  # first, before anything loads torch: every zerotune entry point runs this file first

import importlib
import sys
import types

__version__ = "0.1.0"

# The public API, imported on first use: `zerotune --help` must not pay for torch.
_EXPORTS = {
    "evaluate": "pipeline.train", "train": "pipeline.train", "Config": "config", "load_config": "config",
    "build_data": "data", "UserError": "errors", "create_model": "models", "list_models": "models", "register_model": "models",
    "load_run": "runload.load",
}
__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value) -> None:
        # Importing the subpackage `zerotune.train` binds it on this package; `zerotune.train` stays the
        # function, as `from zerotune.train import ...` finds the subpackage through sys.modules anyway.
        if name in _EXPORTS and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
