"""Device: where a model runs, as ``--device`` names it (cpu, cuda, cuda:1, or a runtime's own
device name such as OpenVINO's GPU or NPU)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from assay.core.errors import InputError

_NAME = re.compile(r"(?P<kind>[A-Za-z][A-Za-z0-9_.]*)(?::(?P<index>\d+))?")


@dataclass(frozen=True)
class Device:
    kind: str  # "cpu", "cuda", or another runtime's name (lower case)
    index: int = 0
    name: str = "cpu"  # as given

    @classmethod
    def parse(cls, text: str) -> Device:
        match = _NAME.fullmatch(text.strip())
        if match is None:
            raise InputError(f"--device {text!r}: expected cpu, cuda or cuda:N")
        kind = match["kind"].lower()
        if kind == "cpu" and match["index"] is not None:
            raise InputError(f"--device {text!r}: cpu takes no index (it uses every core)")
        return cls(kind, int(match["index"] or 0), text.strip())
