"""OpenMP's wait policy, chosen before torch loads it: OpenMP reads its settings once, at that moment.

Left to itself, OpenMP (libgomp in torch's Linux wheels) lets a thread that waits for the others spin
for a few milliseconds before it sleeps. On an idle machine that makes a multi-thread run fastest;
beside other busy processes the spinning threads hold the cores the working ones need, and a 2-thread
run on 2 cores becomes several times slower (docs/benchmarks.md, "Training beside other work").
So when other processes are running as zerotune starts, waiting threads sleep at once
(OMP_WAIT_POLICY=PASSIVE); on an idle machine nothing changes. A value the user set always wins.
No import here may load torch.
"""

from __future__ import annotations

import os


def others_running() -> int | None:
    """Tasks running or waiting for a CPU on this machine right now, besides this one (None where unknown)."""
    try:
        with open("/proc/loadavg") as f:  # "0.52 0.31 0.20 3/250 4242": the fourth field is running/total
            return max(0, int(f.read().split()[3].split("/")[0]) - 1)
    except (OSError, IndexError, ValueError):
        return None


def choose_wait_policy(environ=os.environ) -> None:
    """Set OMP_WAIT_POLICY=PASSIVE unless the user set it or the machine is idle (unknown load counts as busy).

    Child processes (torchrun workers, DataLoader workers) inherit a passive policy through the environment.

    Args:
        environ: the environment to read and change (the process's own by default).
    """
    if "OMP_WAIT_POLICY" not in environ and others_running() != 0:
        environ["OMP_WAIT_POLICY"] = "PASSIVE"
