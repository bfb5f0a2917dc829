"""How many CPU threads torch uses, for one block of work: training, `export --compare`, `serve`.

Setting the count for the whole process would leak into whatever runs next in it (a notebook, a
test, the next `train` call), so the one way to set it is `torch_threads`, which puts it back.
"""

from __future__ import annotations

from ..errors import UserError


def check_threads(n) -> int | None:
    """Validate a thread count: a positive integer, or None or 0 for the library's own choice.

    Returns:
        The count, or None when it is left as it is.

    Raises:
        UserError: for anything else, in one line.
    """
    if n is None or (isinstance(n, int) and not isinstance(n, bool) and n >= 0):
        return n or None
    raise UserError(f"threads must be a positive integer (or 0 for the default), got {n!r}")


class torch_threads:  # noqa: N801  (used like a function: ``with torch_threads(2): ...``)
    """Run a block with ``n`` torch CPU threads, then restore the count it had before.

    The count is validated when the object is made, so a bad value is refused before any work
    starts. None or 0 leaves the count as it is.

    Example::

        with torch_threads(2):
            fit(...)
    """

    def __init__(self, n: int | None):
        self.n = check_threads(n)
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
