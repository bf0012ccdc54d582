"""JUnit XML: one <testsuite> per host, one <testcase> per control.

pass -> a plain testcase; fail -> <failure>; error, unreachable and no_report ->
<error>; waived and not_applicable -> <skipped> with the reason. A host that was
not reached and has no control results gets one testcase, "reachability", with
an <error>. CI servers (Jenkins, GitLab) read this to show a run's failures.
Written host by host; the root carries no totals, which are optional there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from provision.model.compliance.model import (
    ERROR,
    FAIL,
    NO_REPORT,
    NOT_APPLICABLE,
    UNREACHABLE,
    WAIVED,
    ControlResult,
    HostReport,
)
from provision.model.scoring import RollupBuilder
from provision.reports.common import ReportInput, atomic_text, value_text

#: Characters XML 1.0 cannot hold at all; evidence from a host may contain them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

_ERRORS = (ERROR, UNREACHABLE, NO_REPORT)
_SKIPPED = (WAIVED, NOT_APPLICABLE)


def _text(value: str) -> str:
    return escape(_NOT_XML.sub("\ufffd", value))


def _attr(value: str) -> str:
    return quoteattr(_NOT_XML.sub("\ufffd", value))


def _testcase(data: ReportInput, host: str, result: ControlResult) -> str:
    title = data.title(result.control)
    name = f"{result.control} {title}".strip()
    open_tag = f'    <testcase classname={_attr(host)} name={_attr(name)} time="0">'
    detail = (
        f"severity: {result.severity}\n"
        f"expected: {value_text(result.expected)}\n"
        f"actual: {value_text(result.actual)}"
    )
    if result.waiver:
        state = "expired" if result.waiver_expired else "active"
        detail += f"\nwaiver: {result.waiver} ({state})"
    message = result.message or result.status
    if result.status == FAIL:
        body = f'<failure message={_attr(message)} type="fail">{_text(detail)}</failure>'
    elif result.status in _ERRORS:
        body = (
            f"<error message={_attr(message)} type={_attr(result.status)}>{_text(detail)}</error>"
        )
    elif result.status in _SKIPPED:
        reason = f"{result.status}: waiver {result.waiver}" if result.waiver else result.status
        if result.message:
            reason += f": {result.message}"
        body = f"<skipped message={_attr(reason)}/>"
    else:
        return open_tag[:-1] + "/>\n"
    return f"{open_tag}\n      {body}\n    </testcase>\n"


def _suite(data: ReportInput, report: HostReport, score: float | None) -> str:
    counts = report.counts()
    results = list(report.results)
    cases = [_testcase(data, report.host, r) for r in results]
    errors = sum(counts[s] for s in _ERRORS)
    if not results and report.status != "reported":
        message = report.message or f"host {report.status}"
        cases.append(
            f'    <testcase classname={_attr(report.host)} name="reachability" time="0">\n'
            f"      <error message={_attr(message)} type={_attr(report.status)}/>\n"
            "    </testcase>\n"
        )
        errors += 1
    timestamp = "" if report.collected_at is None else report.collected_at.isoformat()
    properties = [("status", report.status), ("score", "" if score is None else f"{score:.4f}")]
    properties += [(level, name) for level, name in report.place.items()]
    if report.role:
        properties.append(("role", report.role))
    if report.node:
        properties.append(("node", report.node))  # the execution node that ran the audit
    props = "".join(
        f"      <property name={_attr(k)} value={_attr(str(v))}/>\n" for k, v in properties
    )
    return (
        f"  <testsuite name={_attr(report.host)} hostname={_attr(report.host)} "
        f'tests="{len(cases)}" failures="{counts[FAIL]}" errors="{errors}" '
        f'skipped="{counts[WAIVED] + counts[NOT_APPLICABLE]}" time="0" '
        f"timestamp={_attr(timestamp)}>\n"
        f"    <properties>\n{props}    </properties>\n" + "".join(cases) + "  </testsuite>\n"
    )


def write_junit(data: ReportInput, reports: Iterable[HostReport], out: Path) -> None:
    run = data.run
    builder = RollupBuilder(run, now=data.now, freshness=data.freshness, levels=("all",))
    name = f"provision compliance run {run.id} ({run.standard_id} {run.standard_version})"
    with atomic_text(out, compress=data.compress) as handle:
        handle.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        handle.write(f"<testsuites name={_attr(name)}>\n")
        for report in reports:
            scored = builder.add(report)
            handle.write(_suite(data, report, scored.score))
        handle.write("</testsuites>\n")
