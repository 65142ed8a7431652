"""junit.xml: one test case per check, so CI systems show the verdict natively.

fail -> <failure>; too_few -> <skipped> (not decided; a <failure> when the policy says
on_too_few: fail); warn -> passed, with the reason in <system-out>.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from assay.core.results import ValidationResult


def render_junit(result: ValidationResult) -> str:
    verdict = result.verdict or {"status": "pass", "checks": [], "policy": {}}
    strict_too_few = verdict.get("policy", {}).get("on_too_few") == "fail"
    checks = verdict["checks"]
    failures = sum(
        1 for c in checks if c["status"] == "fail" or (strict_too_few and c["status"] == "too_few")
    )
    skipped = sum(1 for c in checks if c["status"] == "too_few" and not strict_too_few)
    suites = ET.Element("testsuites", name="assay", tests=str(len(checks)), failures=str(failures))
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"assay.{result.model.name}@{result.model.number}.{result.dataset.name}@{result.dataset.number}",
        tests=str(len(checks)),
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
        timestamp=result.finished_at[:19],
    )
    for c in checks:
        case = ET.SubElement(
            suite, "testcase", classname=f"assay.checks.{c['metric']}", name=c["name"]
        )
        if c["status"] == "fail" or (strict_too_few and c["status"] == "too_few"):
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
