"""Errors that reach the user.

``InputError`` is a problem with what the user gave us (a path, a spec, a column, a file). The CLI
turns it into one line on stderr and exit code 2; the web API into a 4xx. Anything else is a bug.
"""


class AssayError(Exception):
    """Base class of every error Assay raises on purpose."""


class InputError(AssayError):
    """Bad input from the user: the message is one line that names the problem."""


class NotFoundError(InputError):
    """A named dataset, model or run does not exist in the catalog."""
