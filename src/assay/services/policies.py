"""Reading policy files: YAML with line numbers, so that every error names its line."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from assay.core.config import DEFAULT_CONFIDENCE, ValidationConfig
from assay.core.errors import InputError
from assay.core.policy import Policy, check_task_metrics, default_policy, parse_policy
from assay.core.spec import ModelSpec
from assay.core.tasks import item_spec
from assay.services.yaml_input import MAX_BYTES, missing_file, parse_yaml


@dataclass(frozen=True)
class PolicyText:
    """A policy file as read once: its name and text. A run keeps it, so that the run resumed
    is judged by the very file, its name and line numbers in every reason, as it would have
    been uninterrupted (a mapping kept instead came back as 'policy', without lines)."""

    name: str
    text: str

    @classmethod
    def read(cls, path: Path | str) -> PolicyText:
        path = Path(path).expanduser()
        if not path.is_file():
            raise InputError(f"policy file {missing_file(path)}: {path}")
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise InputError(f"{path.name}: {size:,} bytes is over the {MAX_BYTES:,}-byte limit")
        raw = path.read_bytes()
        try:
            return cls(path.name, raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{path.name}: not UTF-8 text (byte {exc.start}); save it as UTF-8"
            ) from None

    def parsed(self) -> Any:
        return parse_yaml(self.text, self.name)

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "text": self.text}


PolicySource = PolicyText | Path | str | dict[str, Any] | None


def read_policy(source: PolicySource) -> PolicyText | dict[str, Any] | None:
    """``source`` with a file read (once: what is judged by is what the run keeps)."""
    return PolicyText.read(source) if isinstance(source, Path | str) else source


def policy_mapping(source: PolicySource) -> dict[str, Any] | None:
    """The policy as plain data, to be kept with a run (None: the default policy)."""
    source = read_policy(source)
    if source is None:
        return None
    raw = source.parsed() if isinstance(source, PolicyText) else source
    plain: dict[str, Any] = json.loads(json.dumps(raw, default=str))
    return plain


def load_policy(source: PolicySource, spec: ModelSpec, has_baseline: bool) -> Policy:
    """The policy to judge a run by: a file (its path or its text), a mapping, or the default
    (source None)."""
    source = read_policy(source)
    if source is None:
        return default_policy(has_baseline)
    if isinstance(source, dict):
        raw: Any = source
        name = "policy"
    else:
        name = source.name
        raw = source.parsed()
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


def one_confidence(
    policy: Policy, config: ValidationConfig, run: str | None = None
) -> tuple[Policy, ValidationConfig]:
    """The policy and the run at one confidence. The checks of overall and per-class metrics
    read the run's intervals, computed at ``config.confidence``: a policy's ``confidence:
    0.95`` judged them on ``--confidence 0.5`` intervals and passed, its own level on record (a
    review). A policy that names a level sets the run's (the default ``--confidence`` gives
    way); one that names none takes the run's; two levels given are refused. ``run``: a
    finished run's id, whose intervals are fixed already (``assay compare``)."""
    if not policy.confidence_stated:
        return replace(policy, confidence=config.confidence), config
    if policy.confidence == config.confidence:
        return policy, config
    if run is not None:
        raise InputError(
            f"{policy.source}: confidence {policy.confidence:g}, but run {run[:12]} computed its "
            f"intervals at {config.confidence:g}: validate again with --confidence "
            f"{policy.confidence:g}, or judge it by a policy of its level"
        )
    if config.confidence != DEFAULT_CONFIDENCE:
        raise InputError(
            f"--confidence {config.confidence:g} and {policy.source}'s confidence "
            f"{policy.confidence:g} differ: the checks are judged on the run's intervals, at one "
            "level; give one of them"
        )
    return policy, replace(config, confidence=policy.confidence)
