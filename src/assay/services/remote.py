"""Files behind URLs (``s3://``, ``abfs://``, ``gs://``, ...) through fsspec.

Datasets and models given as URLs are fetched into the store's cache, streaming and in full (never
sampled), and then registered like local files: a dataset's manifest is a full normalised copy
anyway, and models are stored content-addressed. Run artifacts go the other way with ``--out URL``.
Per-protocol options (endpoint, credentials profile) come from ``ASSAY_FSSPEC_OPTIONS``, a JSON
mapping such as ``{"s3": {"endpoint_url": "http://minio:9000"}}``; credentials themselves come from
each library's usual environment.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from assay.core.errors import InputError

_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def is_url(value: str | Path) -> bool:
    return isinstance(value, str) and bool(_URL.match(value)) and not value.startswith("file://")


def _filesystem(url: str) -> tuple[Any, str]:
    try:
        import fsspec
    except ImportError:
        raise InputError(f"{url}: reading URLs needs fsspec (pip install 'assay[s3]')") from None
    protocol = url.split("://", 1)[0].lower()
    raw = os.environ.get("ASSAY_FSSPEC_OPTIONS", "{}")
    try:
        options = json.loads(raw).get(protocol, {})
    except (json.JSONDecodeError, AttributeError):
        raise InputError(
            "ASSAY_FSSPEC_OPTIONS must be a JSON mapping of protocol to options"
        ) from None
    try:
        fs, path = fsspec.core.url_to_fs(url, **options)
    except (ImportError, ValueError) as exc:
        raise InputError(f"{url}: no file system for {protocol}:// ({exc})") from None
    return fs, path


def fetch(url: str, cache: Path) -> Path:
    """Copy the file or folder at ``url`` into ``cache`` (once per URL); the local path."""
    fs, path = _filesystem(url)
    try:
        exists, is_dir = fs.exists(path), fs.isdir(path)
    except Exception as exc:  # each backend raises its own errors (credentials, network)
        raise InputError(
            f"{url}: cannot reach it ({type(exc).__name__}: {str(exc)[:200]})"
        ) from None
    if not exists:
        raise InputError(f"{url} does not exist")
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    name = Path(path.rstrip("/")).name or "root"
    target = cache / key / name
    tmp = cache / key / f".{name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    if is_dir:
        fs.get(path.rstrip("/") + "/", str(tmp), recursive=True)
    else:
        fs.get(path, str(tmp))
    # Re-fetching replaces the copy whole: content changes are then seen by the version digest.
    shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
    tmp.rename(target)
    return target


def upload(folder: Path, url: str) -> None:
    """Copy every file of ``folder`` to the URL (a prefix), result.json last: a copy stopped
    half-way must not leave a finished result.json without its verdict (a review)."""
    fs, path = _filesystem(url)
    for file in sorted(folder.iterdir(), key=lambda f: (f.name == "result.json", f.name)):
        if file.is_file():
            fs.put(str(file), f"{path.rstrip('/')}/{file.name}")
