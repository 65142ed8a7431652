"""Assay: validate industrial machine-learning models before they ship."""

from assay.api import Validation, add_dataset, add_model, validate
from assay.core.config import ValidationConfig
from assay.core.errors import AssayError, InputError
from assay.core.results import ValidationResult

__all__ = [
    "AssayError",
    "InputError",
    "Validation",
    "ValidationConfig",
    "ValidationResult",
    "add_dataset",
    "add_model",
    "validate",
]
