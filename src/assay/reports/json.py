"""result.json: the machine-readable snapshot of a run."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from assay.core.errors import InputError
from assay.core.results import ValidationResult
from assay.store.files import temp_file


def _finite(value: Any) -> Any:
    """JSON has no nan/inf: they become null, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def result_json(result: ValidationResult) -> str:
    return json.dumps(_finite(result.to_dict()), indent=2, allow_nan=False)


def write_result_json(result: ValidationResult, path: Path) -> None:
    """Write atomically: readers never see a half-written result."""
    fd, tmp = temp_file(path.parent, prefix=".result-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(result_json(result))
    os.replace(tmp, path)


def read_result_json(path: Path) -> ValidationResult:
    return parse_result_json(path.read_bytes(), path)


def parse_result_json(data: bytes, path: Path) -> ValidationResult:
    """The result in ``data``, read from ``path``; InputError naming the file when it is not a
    result Assay wrote (damaged, truncated, from another tool)."""
    try:
        return ValidationResult.from_dict(json.loads(data.decode("utf-8")))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"{path} is not a readable result.json ({type(exc).__name__})") from None
