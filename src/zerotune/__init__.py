"""zerotune: from zero to a trained, fine-tuned and served model, every step visible in TensorBoard."""

from .omp import choose_wait_policy

choose_wait_policy()  # first, before anything loads torch: every zerotune entry point runs this file first

__version__ = "0.1.0"

from .api import evaluate, train  # noqa: E402
from .config import Config, load_config  # noqa: E402
from .data import build_data  # noqa: E402
from .errors import UserError  # noqa: E402
from .models import create_model, list_models, register_model  # noqa: E402
from .runs import load_run  # noqa: E402

__all__ = ["Config", "UserError", "build_data", "create_model", "evaluate", "list_models", "load_config",
           "load_run", "register_model", "train", "__version__"]
