"""Errors that reach the user.

``InputError`` is a problem with what the user gave us (a path, a spec, a column, a file). The CLI
turns it into one line on stderr and exit code 2; the web API into a 4xx. Anything else is a bug.
"""

from __future__ import annotations

from collections.abc import Iterable


class AssayError(Exception):
    """Base class of every error Assay raises on purpose."""


class InputError(AssayError):
    """Bad input from the user: the message is one line that names the problem."""


class NotFoundError(InputError):
    """A named dataset, model or run does not exist in the catalog."""


def one_line(text: str, limit: int = 300) -> str:
    """The first non-empty line of a message, cut to ``limit`` characters: error texts quoted
    inside other messages (inference failures, invalid files) never spill over several lines."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first if len(first) <= limit else first[: limit - 1] + "…"


def describe_exception(exc: BaseException, limit: int = 300) -> str:
    """``TypeError: message`` on one line (the type alone when the message is empty)."""
    message = one_line(str(exc), limit)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the choice closest to a mistyped ``word`` (case and
    spelling), or ``""`` when none is close enough to be worth saying."""
    import difflib

    options = {c.lower(): c for c in choices if isinstance(c, str)}
    close = difflib.get_close_matches(word.lower(), list(options), n=1, cutoff=0.6)
    return f" (did you mean {options[close[0]]!r}?)" if close else ""


def check_text(text: str, what: str) -> str:
    """``text`` as given, when it is valid Unicode without NUL (JSON can carry a lone surrogate,
    which no database or file can store, and a NUL, which PostgreSQL's text cannot)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{what}: the text holds characters that are not valid Unicode") from None
    if "\x00" in text:  # PostgreSQL's text cannot hold it: a 500 there, stored on SQLite
        raise InputError(f"{what}: the text holds a NUL character")
    return text
