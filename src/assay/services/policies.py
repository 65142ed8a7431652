"""Reading policy files: YAML with line numbers, so that every error names its line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from assay.core.errors import InputError
from assay.core.policy import Policy, check_task_metrics, default_policy, parse_policy
from assay.core.spec import ModelSpec
from assay.core.tasks import item_spec
from assay.services.yaml_input import read_yaml_file


def policy_mapping(source: Path | str | dict[str, Any] | None) -> dict[str, Any] | None:
    """The policy as plain data, to be kept with a run (None: the default policy)."""
    if source is None:
        return None
    raw = (
        source if isinstance(source, dict) else read_yaml_file(Path(source).expanduser(), "policy")
    )
    plain: dict[str, Any] = json.loads(json.dumps(raw, default=str))
    return plain


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
        name = path.name
        raw = read_yaml_file(path, "policy")
    # Vision tasks: the item-level classes (recall[defect]) and the task's own (ap[scratch]).
    item = item_spec(spec)
    labels = (*item.labels, *(label for label in spec.labels if label not in item.labels))
    policy = parse_policy(
        raw,
        labels,
        item.negative
        if item.negative
        else (None if item.negative_index is None else item.labels[item.negative_index]),
        name,
    )
    check_task_metrics(policy, spec.task, spec.has_scores)
    if policy.needs_baseline and not has_baseline:
        raise InputError(f"{name}: the policy compares with a baseline; pass --baseline MODEL")
    return policy
