"""Which autocast precision a run trains in: ``train.precision = "auto"`` resolved for this device.

bf16 halves the matmul cost only where the hardware runs it: CUDA GPUs with bf16, and CPUs with
AVX512-BF16 or AMX. Elsewhere (AVX2-only CPUs are common) PyTorch emulates it: a GPT's training
step measured 13x slower than in float32, its matmuls alone 50-140x. So "auto" picks bf16 only
where it is native, and an explicit "bf16" on a CPU that emulates it trains as asked, with a
one-line warning that gives the measured slowdown of its matmuls.

The CPU flags say where bf16 cannot be native; where they say it may be, a short timing (a few
milliseconds, once per process) confirms it, since a flag alone does not make a kernel fast.
"""

from __future__ import annotations

import sys
import time
from functools import lru_cache

from .cpu import cpu_flags
from .threads import torch_threads

NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")  # x86 (AVX512-BF16, AMX); Arm (FEAT_BF16)
TIMING_SIDE = 256  # matrix side of the check: large enough to reach the blocked kernels; emulated, ~80 ms a call


def autocast_for(device, precision: str):
    """The autocast context a resolved ``train.precision`` runs forward passes in (none for "32")."""
    import contextlib

    import torch

    if precision == "32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def resolve_precision(precision: str, device, warn: bool = True) -> str:
    """The precision to train in: "auto" as this device runs best, anything else as given.

    Args:
        precision: ``train.precision`` ("auto", "32", "bf16" or "fp16").
        device: the torch device the run trains on.
        warn: whether to print the warning (one rank of several says it).

    Returns:
        "32", "bf16" or "fp16". An explicit "bf16" on a CPU without native bf16 is kept, after a
        warning on stderr with the measured slowdown.
    """
    if precision == "auto":
        return "bf16" if native_bf16(str(device)) else "32"
    if warn and precision == "bf16" and str(device).startswith("cpu") and not native_bf16("cpu"):
        print(f"warning: train.precision 'bf16' is emulated on this CPU (no AVX512-BF16 or AMX): its bf16 matmuls "
              f"measured {bf16_slowdown():.0f}x slower than float32 ones; train.precision = 'auto' or '32' avoids that",
              file=sys.stderr, flush=True)
    return precision


@lru_cache(maxsize=None)
def native_bf16(device: str) -> bool:
    """Whether `device` runs bf16 matmuls natively (for a CPU: its flags allow it, and a timing confirms)."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    flags = cpu_flags()
    if flags is not None and not flags & set(NATIVE_BF16_FLAGS):
        return False
    return bf16_slowdown() <= 1.0


@lru_cache(maxsize=None)
def bf16_slowdown() -> float:
    """Time of a bf16 matmul over a float32 one on the CPU, best of a few calls each (1: as fast).

    Uses a generator of its own: a run's global random state must not move (see train/peak.py).
    """
    import torch

    gen = torch.Generator().manual_seed(0)
    a = torch.randn(TIMING_SIDE, TIMING_SIDE, generator=gen)
    b = torch.randn(TIMING_SIDE, TIMING_SIDE, generator=gen)
    best = {}
    # One thread (two can be many times slower beside other work), best of several calls: the
    # float32 one is short, so it gets more tries on a busy machine.
    with torch_threads(1):
        for dtype, calls in ((torch.float32, 10), (torch.bfloat16, 2)):
            best[dtype] = _best_time(a.to(dtype), b.to(dtype), calls)
    return best[torch.bfloat16] / max(best[torch.float32], 1e-9)


def _best_time(x, y, calls: int) -> float:
    x @ y  # warm-up
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        x @ y
        times.append(time.perf_counter() - t)
    return min(times)
