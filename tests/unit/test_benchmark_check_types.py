"""The audit benchmark's per-control side knows every check type the standard uses.

benchmarks/compliance_audit.py measures the one-pass audit against the same
controls written as per-control tasks; a check type it does not know would stop
that measurement (it did, when WEB-001 brought portal_https).
"""

from __future__ import annotations

import pytest

from benchmarks.compliance_audit import CHECK_KINDS, check_tasks
from provision.model.standards.checks import CHECK_TYPES
from provision.model.standards.model import Check
from provision.standards.files import load_standard
from tests.helpers.workspace import REPO


def test_every_check_of_the_published_standard_has_per_control_tasks() -> None:
    standard = load_standard(REPO / "standards" / "bd-ict-baseline.yml")
    seen = set()
    for control in standard.controls:
        for check in control.checks:
            check_tasks(control.id, check)  # raises for a type it does not know
            seen.add(check.type)
    assert seen  # the standard has checks at all


def test_every_check_type_provision_knows_is_in_the_benchmark() -> None:
    unknown = []
    for kind in CHECK_TYPES:
        try:
            check_tasks("X-001", Check(kind, _SAMPLE_FIELDS))
        except ValueError:
            unknown.append(kind)
        except KeyError:
            pass  # known to the benchmark, only the sample fields do not fit it
    assert unknown == []


def test_the_benchmarks_check_type_table_is_the_standards() -> None:
    # Both ways: a type the standard gained (WEB-001's portal_https once) and a
    # type it dropped both show here, by name.
    assert sorted(CHECK_KINDS - set(CHECK_TYPES)) == []
    assert sorted(set(CHECK_TYPES) - CHECK_KINDS) == []


def test_a_check_type_outside_the_table_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'no_such_type'"):
        check_tasks("X-001", Check("no_such_type", {}))


_SAMPLE_FIELDS = {"packages": ["sudo"], "name": "x", "setting": "x", "values": {}, "path": "/x"}
