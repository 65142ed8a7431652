"""Reading the YAML people give Assay (specs, policies): bounded, line-numbered, one-line errors.

A spec or a policy never needs YAML anchors and aliases, and aliases are how a 300-byte "billion
laughs" file expands into gigabytes once something walks it, so aliases are refused outright, and
so are documents over ``MAX_BYTES``. Mappings and lists remember the line they start on, so every
later error can name its line. Errors quote at most a line of the input.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from assay.core.errors import InputError, one_line

MAX_BYTES = 1 << 20  # a spec with 10,000 column names is about 200 KB


class LineDict(dict[str, Any]):
    """A mapping that knows the YAML line it starts on, and each key's."""

    line: int | None = None
    key_lines: dict[str, int] = {}  # noqa: RUF012 - set per instance by the loader


class LineList(list[Any]):
    """A list that knows the YAML line it starts on, and each item's."""

    line: int | None = None
    item_lines: list[int] = []  # noqa: RUF012 - set per instance by the loader


class _Loader(yaml.SafeLoader):
    """A safe loader (no object construction) that refuses aliases and records lines."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise InputError(
                f"line {event.start_mark.line + 1}: YAML aliases (*{event.anchor}) are not "
                "accepted in specs and policies; write the value out"
            )
        return super().compose_node(parent, index)


def _mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    # A key given twice: YAML keeps the last, so a reviewer read one threshold and the gate
    # applied another (a policy's second 'checks:' replaced the first; a review).
    seen: dict[str, int] = {}
    for key, _ in node.value:
        name = str(key.value)
        if name in seen:
            raise InputError(
                f"line {key.start_mark.line + 1}: duplicate key {one_line(name, 60)!r} (first "
                f"at line {seen[name]}): give each key once"
            )
        seen[name] = key.start_mark.line + 1
    out = LineDict({str(k): v for k, v in loader.construct_mapping(node, deep=True).items()})
    out.line = node.start_mark.line + 1
    out.key_lines = {str(k.value): k.start_mark.line + 1 for k, _ in node.value}
    return out


def _sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    out = LineList(loader.construct_sequence(node, deep=True))
    out.line = node.start_mark.line + 1
    out.item_lines = [item.start_mark.line + 1 for item in node.value]
    return out


def _float(loader: _Loader, node: yaml.ScalarNode) -> Any:
    """YAML 1.1 floats need a dot (``1e308`` would be a string); any float literal is a float."""
    text = str(loader.construct_scalar(node))
    try:
        return float(text.replace("_", ""))
    except ValueError:
        return loader.construct_yaml_float(node)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)
# Plain scalars such as 1e308, 1e-5 or 2E3 resolve as floats, as in YAML 1.2 and JSON.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)
_Loader.add_constructor("tag:yaml.org,2002:float", _float)


def parse_yaml(text: str | bytes, source: str) -> Any:
    """Parse a spec or policy document; raises InputError naming ``source`` on any problem."""
    if len(text) > MAX_BYTES:
        raise InputError(f"{source}: {len(text):,} bytes is over the {MAX_BYTES:,}-byte limit")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{source}: not UTF-8 text (byte {exc.start}); save it as UTF-8"
            ) from None
    try:
        return yaml.load(text, Loader=_Loader)
    except InputError as exc:
        raise InputError(f"{source} {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = one_line(str(getattr(exc, "problem", None) or "malformed YAML"), 120)
        raise InputError(f"{source}: not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise InputError(f"{source}: nested too deeply") from None


def read_yaml_file(path: Path, what: str) -> Any:
    """A spec or policy file: it must exist, fit the size limit and parse."""
    if not path.is_file():
        raise InputError(f"{what} file {missing_file(path)}: {path}")
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise InputError(f"{path.name}: {size:,} bytes is over the {MAX_BYTES:,}-byte limit")
    return parse_yaml(path.read_bytes(), path.name)


def missing_file(path: Path) -> str:
    """Why ``path`` is no file to read, in a few words (a folder given as a policy was said
    not to exist)."""
    if path.is_dir():
        return "is a folder, not a file"
    if path.exists():
        return "is not a regular file"
    return "does not exist"
