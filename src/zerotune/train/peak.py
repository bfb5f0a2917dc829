"""The machine's measured matmul peak, the denominator of model FLOPs utilisation (MFU).

A datasheet peak says little on a CPU (it depends on the thread count, the BLAS library and the
clock under load), so the peak is measured: square matmuls of the training dtype, timed after a
warm-up, at the start of a run.
"""

from __future__ import annotations

import time

import torch

_CACHE: dict[tuple, float] = {}


def matmul_peak_flops(device: torch.device, dtype: torch.dtype = torch.float32, size: int | None = None,
                      seconds: float = 0.25) -> float:
    """Floating-point operations per second of large square matmuls on `device`.

    Args:
        device: where to measure.
        dtype: the dtype the training matmuls run in (the autocast dtype, else float32).
        size: matrix side (default 2048 on a CPU, 4096 on a GPU).
        seconds: about how long to time, after one warm-up call.

    Returns:
        The best FLOP/s over the timed calls (cached per device, dtype and thread count).
    """
    device = torch.device(device)
    key = (str(device), dtype, torch.get_num_threads(), size)
    if key in _CACHE:
        return _CACHE[key]
    n = size or (4096 if device.type == "cuda" else 2048)
    # A generator of its own: drawing from the global one would shift every later dropout mask of the run.
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=gen).to(device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    a @ b
    sync()
    best, start = 0.0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        t = time.perf_counter()
        a @ b
        sync()
        best = max(best, 2 * n ** 3 / (time.perf_counter() - t))
    _CACHE[key] = best
    return best
