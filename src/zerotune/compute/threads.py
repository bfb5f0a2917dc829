"""How many CPU threads torch uses, for one block of work: training, `export --compare`, `serve`.

Setting the count for the whole process would leak into whatever runs next in it (a notebook, a
test, the next `train` call), so the one way to set it is `torch_threads`, which puts it back.
"""

from __future__ import annotations

import os

from ..errors import UserError


def available_cpus() -> int:
    """The CPUs this process may run on: its affinity mask where the system has one (a container or
    ``taskset`` narrows it), else every CPU of the machine."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # macOS and Windows have no affinity mask
        return os.cpu_count() or 1


def check_threads(n, name: str = "threads") -> int | None:
    """Validate a thread count: 1 up to the CPUs this process may use, or None or 0 for the library's own choice.

    More threads than CPUs only wait for each other (and torch starts a pool of each size asked for), so
    they are refused rather than capped without a word.

    Args:
        n: the count.
        name: how the message names it, e.g. ``"train.threads"``.

    Returns:
        The count, or None when it is left as it is.

    Raises:
        UserError: for anything else, in one line naming the allowed range.
    """
    cpus = available_cpus()
    if n is None or (isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= cpus):
        return n or None
    raise UserError(f"{name} must be a positive integer up to {cpus}, the CPUs this process may use "
                    f"(0 or none: the default), got {n!r}")


class torch_threads:  # noqa: N801  (used like a function: ``with torch_threads(2): ...``)
    """Run a block with ``n`` torch CPU threads, then restore the count it had before.

    The count is validated when the object is made, so a bad value is refused before any work
    starts. None or 0 leaves the count as it is.

    Example::

        with torch_threads(2):
            fit(...)
    """

    def __init__(self, n: int | None, name: str = "threads"):
        self.n = check_threads(n, name)
        self._before: int | None = None

    def __enter__(self) -> "torch_threads":
        if self.n is not None:
            import torch  # here, not above: compute/ is imported before torch loads (see omp.py)

            self._before = torch.get_num_threads()
            torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc) -> None:
        if self._before is not None:
            import torch

            torch.set_num_threads(self._before)
            self._before = None
