"""User-facing errors.

Anything the user can fix (a config value, a missing file, a name that does not exist) raises
`UserError`. The CLI turns it into one line on stderr and exit code 2; other exceptions are bugs
and keep their traceback. `format_validation_error` makes that line from a pydantic report, for the
config, a model's options, a checkpoint's state or an export's sidecar. `disk_error` turns a full or
read-only disk into a UserError too: the user frees space or writes elsewhere, nothing is a bug.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pydantic loads only with a config, so that `zerotune --help` stays fast
    from pydantic import BaseModel, ValidationError


class UserError(Exception):
    """An error caused by the user's input; its message is shown as one line, without traceback."""


# errno -> what the user reads; EACCES too, though root (tests, containers) never sees it
_DISK_ERRORS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
                errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied"}


def disk_error(e: OSError) -> UserError | None:
    """A UserError naming the path and the cause of a full disk, a quota, a read-only file system or a
    permission refused; None for any other OSError (a bug, shown as one)."""
    cause = _DISK_ERRORS.get(e.errno)
    if cause is None:
        return None
    where = f" {e.filename}" if e.filename is not None else ""
    verb = "access" if e.errno == errno.EACCES else "write"  # a permission refused may be a read's
    return UserError(f"cannot {verb}{where}: {cause}")


def require_file(path: str | os.PathLike, what: str = "") -> None:
    """Refuse a path that is not an existing regular file, saying what it is instead.

    A directory, a device such as /dev/zero or a pipe would otherwise be reported as missing, or be
    read without end.

    Args:
        path: the path to check.
        what: how the message names it, e.g. ``"recipe"``; the path follows.

    Raises:
        UserError: when the path is missing, a directory or not a regular file.
    """
    name = f"{what} {os.fspath(path)}" if what else os.fspath(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise UserError(f"{name} does not exist") from None
    except OSError as e:
        raise UserError(f"{name} cannot be read: {e.strerror or e}") from None
    if stat.S_ISDIR(mode):
        raise UserError(f"{name} is a directory, not a file")
    if not stat.S_ISREG(mode):
        raise UserError(f"{name} is not a regular file (a device, pipe or socket)")


def format_validation_error(err: ValidationError, prefix: str = "", schema: type[BaseModel] | None = None) -> str:
    """Turn pydantic's report into one line: ``optim.lr: must be > 0 (got -1)``.

    Args:
        err: the error pydantic raised.
        prefix: prepended to every field path, e.g. ``"model."``; an unknown field is then
            reported as an unknown option.
        schema: the model that was validated; an unknown key is reported with the keys it allows.

    Returns:
        One line, the problems separated by ``"; "``.
    """
    parts = []
    for e in err.errors():
        # a union's member or a validator's wrapper shows in the path as its type, e.g. "list[...]": left out
        loc = ".".join(str(p) for p in e["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function-"))))
        loc = f"{prefix}{loc}" if loc else prefix.rstrip(".")
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown option" if prefix else _unknown_key(schema, e["loc"])
        elif "input" in e and e["type"] not in ("missing",) and not isinstance(e["input"], dict):
            msg = f"{msg} (got {e['input']!r})"
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def _unknown_key(schema: type[BaseModel] | None, loc: tuple) -> str:
    if schema is None:
        return "unknown key"
    from pydantic import BaseModel

    model = schema
    for part in loc[:-1]:  # walk down to the group that holds the unknown key
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None)
        for cand in getattr(ann, "__args__", (ann,)):
            if isinstance(cand, type) and issubclass(cand, BaseModel):
                model = cand
                break
    return f"unknown key; allowed: {', '.join(model.model_fields)}"
