"""Device choice, seeding and deterministic mode."""

from __future__ import annotations

import os
import random
import sys

import numpy as np
import torch

from ..errors import UserError


def resolve_device(name: str) -> torch.device:
    """"auto" is CUDA when present, else CPU; an explicit CUDA device must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"train.device {name!r}: no CUDA device is available; use 'auto' or 'cpu'")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise UserError(f"train.device {name!r}: only {torch.cuda.device_count()} CUDA device(s) present")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_deterministic(enabled: bool) -> None:
    """Ask torch for deterministic kernels, so a resumed run repeats an uninterrupted one bit for bit."""
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if torch.are_deterministic_algorithms_enabled() != enabled:
        _use_deterministic_algorithms(enabled)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = not enabled


def _use_deterministic_algorithms(enabled: bool) -> None:
    """torch.use_deterministic_algorithms, whose import of torch._inductor for the compiler's own flag costs
    2.4 s of CPU at each run's start: while no compiler is loaded, torch's flag alone; `compile_module` copies
    it to the compiler's."""
    if "torch._inductor.config" in sys.modules:
        torch.use_deterministic_algorithms(enabled)
    else:
        torch._C._set_deterministic_algorithms(enabled)


def compile_module(module: torch.nn.Module):
    """torch.compile(module), the compiler deterministic as torch is (see `set_deterministic`)."""
    import torch._inductor.config as inductor_config

    inductor_config.deterministic = torch.are_deterministic_algorithms_enabled()
    return torch.compile(module)


def rng_state() -> tuple[dict, dict[str, torch.Tensor]]:
    """The global RNG states: JSON-ready parts and tensor parts."""
    np_state = np.random.get_state()
    json_part = {
        "python": _tuples_to_lists(random.getstate()),
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
    }
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda{i}"] = s
    return json_part, tensors


def set_rng_state(json_part: dict, tensors: dict[str, torch.Tensor]) -> None:
    random.setstate(_lists_to_tuples(json_part["python"]))
    name, keys, pos, has_gauss, cached = json_part["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("cuda"))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


def _tuples_to_lists(x):
    return [_tuples_to_lists(v) for v in x] if isinstance(x, (tuple, list)) else x


def _lists_to_tuples(x):
    return tuple(_lists_to_tuples(v) for v in x) if isinstance(x, list) else x
