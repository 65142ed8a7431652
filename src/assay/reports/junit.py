"""junit.xml: one test case per check plus one for the verdict, so CI systems show it natively.

A check that decides the verdict (``blocks``: a failure, or a headline check that could not tell
while the policy blocks on inconclusive) is a <failure>; a too_few check that does not decide it
is <skipped>; pass and warn pass, with the reason in <system-out>. The verdict's own test case
fails whenever the verdict blocks a release, so no CI shows green for a gate that said no.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from assay.core.results import ValidationResult
from assay.core.verdict import verdict_blocks


def render_junit(result: ValidationResult) -> str:
    verdict = result.verdict or {"status": "fail", "checks": [], "policy": {}, "summary": ""}
    strict_too_few = verdict.get("policy", {}).get("on_too_few") == "fail"
    checks = verdict["checks"]

    def blocks(c: dict[str, object]) -> bool:
        if "blocks" in c:
            return bool(c["blocks"])
        return c["status"] == "fail" or (strict_too_few and c["status"] == "too_few")

    gate = verdict_blocks(verdict)
    failures = sum(1 for c in checks if blocks(c)) + int(gate)
    skipped = sum(1 for c in checks if c["status"] == "too_few" and not blocks(c))
    n_tests = str(len(checks) + 1)
    suites = ET.Element("testsuites", name="assay", tests=n_tests, failures=str(failures))
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"assay.{result.model.name}@{result.model.number}.{result.dataset.name}@{result.dataset.number}",
        tests=n_tests,
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
        timestamp=result.finished_at[:19],
    )
    summary = f"{str(verdict['status']).upper()}: {verdict.get('summary', '')}"
    case = ET.SubElement(suite, "testcase", classname="assay.verdict", name="verdict")
    if gate:
        failure = ET.SubElement(case, "failure", message=summary, type=str(verdict["status"]))
        failure.text = summary
    else:
        ET.SubElement(case, "system-out").text = summary
    for c in checks:
        case = ET.SubElement(
            suite, "testcase", classname=f"assay.checks.{c['metric']}", name=c["name"]
        )
        if blocks(c):
            failure = ET.SubElement(case, "failure", message=c["reason"], type=c["status"])
            failure.text = c["reason"]
        elif c["status"] == "too_few":
            ET.SubElement(case, "skipped", message=c["reason"])
        else:
            out = ET.SubElement(case, "system-out")
            out.text = f"{c['status']}: {c['reason']}"
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )
