"""User-facing errors.

Anything the user can fix (a config value, a missing file, a name that does not exist) raises
`UserError`. The CLI turns it into one line on stderr and exit code 2; other exceptions are bugs
and keep their traceback.
"""


class UserError(Exception):
    """An error caused by the user's input; its message is shown as one line, without traceback."""
