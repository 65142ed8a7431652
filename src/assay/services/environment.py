"""describe_environment: what a run ran on, for reproducibility."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from typing import Any

PACKAGES = (
    "assay",
    "numpy",
    "pyarrow",
    "onnxruntime",
    "onnx",
    "pillow",
    "scikit-learn",
    "skops",
    "sqlalchemy",
)


def describe_environment() -> dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "packages": versions,
    }
