"""The report's compiled templates are cached between processes, and a damaged, unreadable or
unwritable cache only costs the compile again: the report never fails because of it."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from jinja2 import Environment, bccache

from assay.reports import html


@pytest.fixture
def fresh_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    compiled: list[str] = []
    real = Environment.compile

    def counting(self: Environment, source: Any, *args: Any, **kwargs: Any) -> Any:
        compiled.append(str(kwargs.get("name") or (args[0] if args else "")))
        return real(self, source, *args, **kwargs)

    monkeypatch.setattr(Environment, "compile", counting)

    def load() -> Any:
        html._env.cache_clear()
        return html._env().get_template("report.html.j2")

    yield load, compiled
    html._env.cache_clear()


def cache_files(tmp_path: Path) -> list[Path]:
    return sorted(tmp_path.glob("_jinja2-cache-*/*.cache"))


def test_a_second_process_loads_the_compiled_template(fresh_env: Any, tmp_path: Path) -> None:
    load, compiled = fresh_env
    first = load()
    assert len(compiled) == 1 and len(cache_files(tmp_path)) == 1
    second = load()
    assert len(compiled) == 1  # loaded, not compiled again
    assert second.render.__code__.co_code is not None and first.name == second.name


@pytest.mark.parametrize("damage", ["empty", "garbage", "bad checksum", "truncated code"])
def test_a_damaged_cache_is_compiled_again(fresh_env: Any, tmp_path: Path, damage: str) -> None:
    load, compiled = fresh_env
    load()
    (cached,) = cache_files(tmp_path)
    whole = cached.read_bytes()
    magic = len(bccache.bc_magic)
    cached.write_bytes(
        {
            "empty": b"",
            "garbage": b"garbage",
            "bad checksum": whole[:magic] + b"\xff" * 64,
            "truncated code": whole[: len(whole) // 2],
        }[damage]
    )
    template = load()
    assert len(compiled) == 2 and template.name == "report.html.j2"
    assert cached.stat().st_size > 1000  # written again, whole


def test_a_full_disk_skips_the_cache(
    fresh_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load, compiled = fresh_env

    def full(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(bccache.tempfile, "NamedTemporaryFile", full)
    load()
    load()
    assert len(compiled) == 2 and cache_files(tmp_path) == []


def test_a_cache_folder_that_is_not_a_private_folder_is_refused(
    fresh_env: Any, tmp_path: Path
) -> None:
    load, compiled = fresh_env
    (tmp_path / f"_jinja2-cache-{os.getuid()}").write_text("planted")
    assert html._bytecode_cache() is None
    load()
    load()
    assert len(compiled) == 2
