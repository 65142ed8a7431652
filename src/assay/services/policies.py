"""Reading policy files: YAML with line numbers, so that every error names its line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from assay.core.errors import InputError
from assay.core.policy import Policy, default_policy, parse_policy
from assay.core.spec import ModelSpec


class _LineDict(dict[str, Any]):
    line: int | None = None


class _LineList(list[Any]):
    line: int | None = None
    item_lines: list[int] = []  # noqa: RUF012 - set per instance by the loader


class _LineLoader(yaml.SafeLoader):
    """A safe loader whose mappings and lists remember the line they start on (1-based)."""


def _mapping(loader: _LineLoader, node: yaml.MappingNode) -> _LineDict:
    out = _LineDict({str(k): v for k, v in loader.construct_mapping(node, deep=True).items()})
    out.line = node.start_mark.line + 1
    return out


def _sequence(loader: _LineLoader, node: yaml.SequenceNode) -> _LineList:
    out = _LineList(loader.construct_sequence(node, deep=True))
    out.line = node.start_mark.line + 1
    out.item_lines = [item.start_mark.line + 1 for item in node.value]
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)


def load_policy(
    source: Path | str | dict[str, Any] | None,
    spec: ModelSpec,
    has_baseline: bool,
) -> Policy:
    """The policy to judge a run by: a file, a mapping, or the default (source None)."""
    if source is None:
        return default_policy(has_baseline)
    if isinstance(source, dict):
        raw: Any = source
        name = "policy"
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise InputError(f"policy file does not exist: {path}")
        name = path.name
        try:
            raw = yaml.load(
                path.read_text(encoding="utf-8"), Loader=_LineLoader
            )  # a SafeLoader subclass: no object construction
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or "malformed YAML"
            raise InputError(f"{name}: not valid YAML{where}: {problem}") from None
    policy = parse_policy(
        raw,
        spec.labels,
        spec.negative
        if spec.negative
        else (None if spec.negative_index is None else spec.labels[spec.negative_index]),
        name,
    )
    if policy.needs_baseline and not has_baseline:
        raise InputError(f"{name}: the policy compares with a baseline; pass --baseline MODEL")
    return policy
