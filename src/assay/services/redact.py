"""for_clients: an error message as the web's clients may read it.

One line, and none of the server's paths: the store's root reads ``ASSAY_HOME``, the temporary
folder ``TMP``. The roots are replaced in one pass, longest first, so a store under ``/tmp``
reads ``ASSAY_HOME/...`` and not ``ASSAY_HOMETMP...`` (``/tmp`` found again inside the
replacement), and a root is replaced only where a path starts with it.
"""

from __future__ import annotations

import re
import tempfile

from assay.core.errors import one_line
from assay.services.workspace import Workspace


def redact_paths(text: str, roots: dict[str, str]) -> str:
    """``text`` with each root (a folder's path) replaced by its name, in one pass."""
    named = {str(root).rstrip("/"): name for root, name in roots.items() if str(root).strip("/")}
    if not named:
        return text
    # A root counts where a path starts (not inside another path: the store's own tmp/
    # folder is no temporary folder) and ends or goes on.
    pattern = re.compile(
        r"(?<![\w.~-])(?<![\w.~-]/)(?:"
        + "|".join(re.escape(r) for r in sorted(named, key=len, reverse=True))
        + r")(?=/|\b|$)"
    )
    return pattern.sub(lambda m: named[m.group(0)], text)


def for_clients(ws: Workspace, text: str, width: int = 500) -> str:
    roots = {str(ws.home): "ASSAY_HOME", tempfile.gettempdir(): "TMP"}
    return redact_paths(one_line(text, width), roots)
