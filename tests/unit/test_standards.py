"""The standard's format: loading, every class of mistake with its line, selection, parameters."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.errors import InputError
from provision.model.inventory.problems import ProblemsError
from provision.standards import (
    CHECK_TYPES,
    VarLayer,
    control_parameters,
    load_standard,
    normalise_sshd,
    parse_standard,
    resolve_check,
    resolve_control_checks,
    resolve_parameters,
)
from tests.helpers.workspace import FIXTURES, REPO

STANDARD = REPO / "standards" / "bd-ict-baseline.yml"
MINIMAL = FIXTURES / "standards" / "minimal.yml"


def _problems(text: str, tmp_path: Path) -> ProblemsError:
    path = tmp_path / "standard.yml"
    path.write_text(text)
    with pytest.raises(ProblemsError) as caught:
        load_standard(path)
    return caught.value


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


# -- the department's standard -------------------------------------------------------


def test_the_department_standard_loads_whole() -> None:
    standard = load_standard(STANDARD)
    ids = [c.id for c in standard.controls]
    assert len(ids) == len(set(ids)) >= 20
    assert standard.os_releases == ("debian-12", "ubuntu-22.04", "ubuntu-24.04")
    assert set(standard.roles) == {"field_server", "lab_pc", "digital_centre_pc", "portal_host"}
    assert len(standard.digest) == 64
    for control in standard.controls:
        assert control.rationale and control.title and control.checks, control.id
        # Only equipment cannot be enforced by a role.
        assert control.enforce is not None or control.id.startswith("HW-"), control.id
        if control.enforce is not None:
            assert control.enforce.tag == control.id


def test_the_issue_topics_are_all_covered() -> None:
    standard = load_standard(STANDARD)
    types = {c.type for control in standard.controls for c in control.checks}
    assert {"os_release", "sshd_setting", "timezone", "firewall", "hardware"} <= types
    assert {
        "package_installed",
        "package_absent",
        "service",
        "sysctl",
        "file",
        "user",
        "port",
    } <= types
    forbidden = standard.parameters["baseline_forbidden_packages"].default
    assert {"telnetd", "rsh-server", "vsftpd"} <= set(forbidden)
    assert standard.parameters["time_sync_timezone"].default == "Asia/Dhaka"
    # Each role has its own firewall openings, and equipment minimums.
    for role in standard.roles:
        mine = {c.id for c in standard.applicable(role)}
        assert any(i.startswith("FW-00") and i != "FW-001" for i in mine), role
        assert any(i.startswith("HW-") for i in mine), role


def test_applicable_controls_follow_role_and_os() -> None:
    standard = load_standard(MINIMAL)
    assert [c.id for c in standard.applicable("lab_pc")] == ["SSH-001", "HW-001"]
    assert [c.id for c in standard.applicable("field_server", "debian-12")] == [
        "SSH-001",
        "PKG-001",
    ]
    assert [c.id for c in standard.applicable("field_server", "ubuntu-24.04")] == ["SSH-001"]
    assert len(standard.applicable()) == 3


def test_enforce_tag_defaults_to_the_control_id() -> None:
    control = load_standard(MINIMAL).control("PKG-001")
    assert control.enforce is not None
    assert (control.enforce.role, control.enforce.tag) == ("baseline", "PKG-001")
    assert load_standard(MINIMAL).control("HW-001").enforce is None


# -- parameters ----------------------------------------------------------------------


def test_parameters_resolve_from_defaults_then_layers_in_order() -> None:
    standard = load_standard(MINIMAL)
    layers = [
        VarLayer("group_vars/all.yml", {"baseline_retention_days": 30}),
        VarLayer("group_vars/district_gazipur.yml", {"baseline_retention_days": 60}),
        VarLayer("host_vars/h.yml", {"unrelated": 1}),
    ]
    resolved = resolve_parameters(standard, layers)
    assert resolved["baseline_retention_days"].value == 60
    assert resolved["baseline_retention_days"].source == "group_vars/district_gazipur.yml"
    assert resolved["hardware_min_memory_mb"].value == 3500
    assert resolved["hardware_min_memory_mb"].source == "default"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"baseline_retention_days": "ninety"}, "must be int"),
        ({"baseline_reboot": "yes"}, "must be bool"),
        ({"ssh_hardening_permit_root_login": "yes"}, "not one of"),
        ({"baseline_account": "{{ other }}"}, "Jinja expression"),
    ],
)
def test_a_bad_override_names_the_file_that_set_it(
    override: dict[str, object], message: str
) -> None:
    standard = load_standard(MINIMAL)
    with pytest.raises(InputError) as caught:
        resolve_parameters(standard, [VarLayer("group_vars/role_lab_pc.yml", override)])
    assert "group_vars/role_lab_pc.yml" in str(caught.value)
    assert message in str(caught.value)


def test_checks_are_filled_with_a_hosts_values() -> None:
    standard = load_standard(MINIMAL)
    control = standard.control("PKG-001")
    assert control_parameters(control) == [
        "baseline_sudo_min_version",
        "baseline_account",
        "baseline_retention_days",
        "baseline_reboot",
    ]
    values = {n: r.value for n, r in resolve_parameters(standard, []).items()}
    values["baseline_retention_days"] = 30
    package, sudoers = resolve_control_checks(control, values)
    assert package.fields == {"packages": ["sudo"], "min_version": "1.9.13"}
    assert sudoers.fields["path"] == "/etc/sudoers.d/provision-provision"
    # A bool inside a text is written the way config files write it.
    assert sudoers.fields["contains"] == "^keep 30 days, reboot false$"
    # A whole-value reference keeps its type.
    hardware = resolve_check(standard.control("HW-001").checks[0], values)
    assert hardware.fields == {"memory_mb": 3500}


def test_the_department_standard_resolves_every_check() -> None:
    standard = load_standard(STANDARD)
    values = {n: r.value for n, r in resolve_parameters(standard, []).items()}
    for control in standard.controls:
        for check in resolve_control_checks(control, values):
            assert "${" not in repr(check.fields), (control.id, check)
    ssh = resolve_control_checks(standard.control("SSH-003"), values)
    assert ssh[0].fields["subset_of"][0] == "chacha20-poly1305@openssh.com"
    fw = resolve_control_checks(standard.control("FW-002"), values)
    assert fw[0].fields == {"allowed_tcp_ports": [22, 80, 443, 3142]}


def test_sshd_aliases_compare_equal() -> None:
    assert normalise_sshd("PermitRootLogin", "without-password") == "prohibit-password"
    assert normalise_sshd("permitrootlogin", "no") == "no"
    assert normalise_sshd("x11forwarding", "no") == "no"


# -- mistakes, each named with its line -------------------------------------------------


def test_many_mistakes_are_all_reported_with_their_lines() -> None:
    path = FIXTURES / "standards" / "bad-many.yml"
    text = path.read_text()
    with pytest.raises(ProblemsError) as caught:
        load_standard(path)
    found = {(p.line, p.message.split(" ")[0]) for p in caught.value.problems}
    lines = {p.line: p.message for p in caught.value.problems}
    assert "duplicate control id 'SSH-001'" in lines[_line_of(text, "title: duplicate id") - 1]
    assert "severity 'severe'" in lines[_line_of(text, "severity: severe")]
    assert "unknown check type 'sshd_settings'" in lines[_line_of(text, "sshd_settings")]
    assert "is list[str] but its default 3" in lines[_line_of(text, "default: 3")]
    assert len(found) == 4
    assert str(caught.value).startswith(f"{path}: 4 problems in the standard")


def _minimal() -> str:
    return MINIMAL.read_text()


@pytest.mark.parametrize(
    ("old", "new", "needle", "message"),
    [
        ("type: hardware", "type: ram", "type: ram", "unknown check type 'ram'"),
        ("id: PKG-001", "id: SSH-001", "id: SSH-001\n    title: sudo", "duplicate control id"),
        ("severity: low", "severity: urgent", "severity: urgent", "not one of low, medium"),
        ("default: 3500", "default: lots", "default: lots", "is int but its default 'lots'"),
        (
            "type: str\n        default: provision",
            "type: string\n        default: provision",
            "type: string",
            "has type 'string'",
        ),
        (
            "memory_mb: ${hardware_min_memory_mb}",
            "memory_mb: ${baseline_account}",
            "memory_mb: ${baseline_account}",
            "parameter 'baseline_account' is str",
        ),
        (
            "memory_mb: ${hardware_min_memory_mb}",
            "memory_mb: ${nowhere}",
            "memory_mb: ${nowhere}",
            "which no control declares",
        ),
        ("      setting: permitrootlogin\n", "", "check:\n      type: sshd", "needs 'setting'"),
        ("    references:", "    referenses:", "referenses:", "unknown key 'referenses'"),
        (
            "applies_to: {roles: [lab_pc]}",
            "applies_to: {roles: [laptop]}",
            "laptop",
            "role 'laptop' is not one of",
        ),
        ('mode: "0440"', 'mode: "440"', 'mode: "440"', "'mode' of check 'file' must be mode"),
        (
            "    severity: low\n",
            "    severity: low\n    severity: medium\n",
            "severity: medium",
            "appears twice",
        ),
        ("id: HW-001", "id: hw-1", "id: hw-1", "must look like SSH-001"),
        ("format: 1", "format: 2", "format: 2", "'format' must be 1"),
    ],
)
def test_one_mistake_is_named_at_its_line(
    tmp_path: Path, old: str, new: str, needle: str, message: str
) -> None:
    text = _minimal()
    assert old in text
    broken = text.replace(old, new, 1)
    error = _problems(broken, tmp_path)
    assert len(error.problems) == 1, error.problems
    problem = error.problems[0]
    assert message in problem.message
    assert problem.line == broken.count("\n", 0, broken.index(needle)) + 1
    assert str(error).startswith(f"{tmp_path / 'standard.yml'}:{problem.line}: ")


def test_invalid_yaml_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "s.yml"
    path.write_text("---\nformat: 1\ncontrols:\n  - id: [unclosed\n")
    with pytest.raises(InputError) as caught:
        load_standard(path)
    assert caught.value.line is not None and "not valid YAML" in caught.value.message


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("severity: high", "severity high"),  # a key without its ':'
        ("roles: [lab_pc, field_server]", "roles: [lab_pc, field_server"),  # '[' not closed
        ("    title: sudo is recent enough", "    title sudo is recent enough"),
    ],
)
def test_a_yaml_syntax_error_in_a_standard_is_reported_at_its_line(
    tmp_path: Path, old: str, new: str
) -> None:
    text = MINIMAL.read_text()
    broken = text.replace(old, new, 1)
    assert broken != text
    path = tmp_path / "s.yml"
    path.write_text(broken)
    with pytest.raises(InputError) as caught:
        load_standard(path)
    wanted = _line_of(broken, new)
    assert caught.value.line == wanted, caught.value
    assert broken.splitlines()[wanted - 1].strip() in caught.value.message


def test_a_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_standard(tmp_path / "nope.yml")


def test_every_check_type_is_documented() -> None:
    docs = (REPO / "docs" / "standards.md").read_text()
    for name, spec in CHECK_TYPES.items():
        assert f"`{name}`" in docs, name
        assert spec.summary and spec.evidence


def test_parse_from_text_equals_parse_from_file() -> None:
    from_text = parse_standard(MINIMAL.read_text(), MINIMAL)
    assert [c.as_dict() for c in from_text.controls] == [
        c.as_dict() for c in load_standard(MINIMAL).controls
    ]


def test_an_impossible_date_is_named_at_its_line(tmp_path: Path) -> None:
    from provision.infra.yamlfile import load_located

    path = tmp_path / "dates.yml"
    path.write_text("---\nwhen:\n  from: 2027-01-31\n  until: 2027-02-31\n")
    with pytest.raises(InputError, match=r"dates\.yml:4: '2027-02-31' is not a valid value"):
        load_located(path)
