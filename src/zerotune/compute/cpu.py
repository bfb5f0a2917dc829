"""What the CPU can do, read once from the operating system: the flags that change speed or results."""

from __future__ import annotations

import platform
from functools import lru_cache

VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")  # x86 int8 dot products without intermediate saturation


@lru_cache(maxsize=None)
def cpu_flags() -> frozenset[str] | None:
    """The CPU's feature flags from /proc/cpuinfo (Linux: x86 ``flags``, Arm ``Features``); None where unreadable."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip().lower() in ("flags", "features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return None


def x86_without_vnni() -> bool:
    """An x86 CPU whose int8 kernels multiply u8 by s8 with VPMADDUBSW, whose 16-bit sums can saturate."""
    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686"):
        return False
    flags = cpu_flags()
    return flags is not None and not flags & set(VNNI_FLAGS)
