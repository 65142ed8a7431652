"""junit.xml: one test case per check plus one for the verdict, so CI systems show it natively.

A check that decides the verdict (``blocks``: a failure, or a headline check that could not tell
while the policy blocks on inconclusive) is a <failure>; a too_few check that does not decide it
is <skipped>; pass and warn pass, with the reason in <system-out>. The verdict's own test case
fails whenever the verdict blocks a release, so no CI shows green for a gate that said no.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from assay.core.results import ValidationResult
from assay.reports.views.verdict import VerdictView


def render_junit(result: ValidationResult) -> str:
    view = VerdictView.of(result)
    failures = sum(1 for c in view.checks if c.blocks) + int(view.blocking)
    skipped = sum(1 for c in view.checks if c.status == "too_few" and not c.blocks)
    n_tests = str(len(view.checks) + 1)
    suites = ET.Element("testsuites", name="assay", tests=n_tests, failures=str(failures))
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"assay.{view.model}.{view.dataset}",
        tests=n_tests,
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
        timestamp=view.finished_at[:19],
    )
    summary = f"{view.status.upper()}: {view.summary}"
    case = ET.SubElement(suite, "testcase", classname="assay.verdict", name="verdict")
    if view.blocking:
        failure = ET.SubElement(case, "failure", message=summary, type=view.status)
        failure.text = summary
    else:
        ET.SubElement(case, "system-out").text = summary
    for c in view.checks:
        case = ET.SubElement(suite, "testcase", classname=f"assay.checks.{c.metric}", name=c.name)
        if c.blocks:
            failure = ET.SubElement(case, "failure", message=c.reason, type=c.status)
            failure.text = c.reason
        elif c.status == "too_few":
            ET.SubElement(case, "skipped", message=c.reason)
        else:
            out = ET.SubElement(case, "system-out")
            out.text = f"{c.status}: {c.reason}"
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )
