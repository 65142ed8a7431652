"""Assay: validate industrial machine-learning models before they ship.

The public names load on first use (PEP 562), so that ``import assay.<module>`` stays light: the
model profile's measuring process, for one, imports only the runtime it measures.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from assay.api import (
        History,
        Validation,
        add_dataset,
        add_model,
        compare,
        history,
        list_datasets,
        list_models,
        list_runs,
        validate,
    )
    from assay.core.config import ValidationConfig
    from assay.core.errors import AssayError, InputError
    from assay.core.results import ValidationResult

_WHERE = {
    "AssayError": "assay.core.errors",
    "InputError": "assay.core.errors",
    "History": "assay.api",
    "Validation": "assay.api",
    "ValidationConfig": "assay.core.config",
    "ValidationResult": "assay.core.results",
    "add_dataset": "assay.api",
    "add_model": "assay.api",
    "compare": "assay.api",
    "list_datasets": "assay.api",
    "history": "assay.api",
    "list_models": "assay.api",
    "list_runs": "assay.api",
    "validate": "assay.api",
}
__all__ = [
    "AssayError",
    "History",
    "InputError",
    "Validation",
    "ValidationConfig",
    "ValidationResult",
    "add_dataset",
    "add_model",
    "compare",
    "history",
    "list_datasets",
    "list_models",
    "list_runs",
    "validate",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'assay' has no attribute {name!r}")
    return getattr(import_module(_WHERE[name]), name)


def __dir__() -> list[str]:
    """The public API first-class in ``dir(assay)`` and tab completion, though it loads lazily."""
    return sorted(set(globals()) | set(__all__))
