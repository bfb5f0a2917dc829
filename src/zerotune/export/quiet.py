"""One way to silence a converter while it runs: its loggers, warnings, stdout and C++ log levels.

The exporters and quantizers report progress and advice through Python's loggers (the root
logger included), `print` and their own C++ loggers; a failure is turned into one UserError line by
the caller, so none of it is the user's business.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def quiet(loggers: tuple[str, ...] = (), env: dict[str, str] | None = None, drop: int = logging.WARNING,
          stdout: bool = True) -> Iterator[None]:
    """Within the block: every logger's records up to `drop` dropped, `loggers` silenced, warnings ignored.

    Args:
        loggers: named loggers silenced outright (their own level, restored afterwards).
        env: environment variables set for the block, e.g. a C++ library's log level read when it loads.
        drop: records of this level and below are dropped, whatever their logger (``logging.disable``).
        stdout: also swallow what is printed to stdout.
    """
    named = [logging.getLogger(n) for n in loggers]
    levels = [lg.level for lg in named]
    previous = {k: os.environ.get(k) for k in env or {}}
    disabled = logging.root.manager.disable
    for lg in named:
        lg.setLevel(logging.CRITICAL)
    os.environ.update(env or {})
    logging.disable(drop)
    try:
        with warnings.catch_warnings(), (contextlib.redirect_stdout(io.StringIO()) if stdout
                                         else contextlib.nullcontext()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(disabled)
        for lg, level in zip(named, levels):
            lg.setLevel(level)
        for k, v in previous.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
