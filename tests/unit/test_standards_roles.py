"""The standard and the roles that enforce it agree, and `provision standards` shows it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from provision.cli.main import cli
from provision.errors import ExitStatus
from provision.inventory.files import load_inventory
from provision.standards import (
    check_roles,
    host_layers,
    load_standard,
    resolve_parameters,
)
from tests.helpers.workspace import FIXTURES, REPO

STANDARD = REPO / "standards" / "bd-ict-baseline.yml"
ROLES = REPO / "playbooks" / "roles"


def test_roles_defaults_and_tags_agree_with_the_standard() -> None:
    assert check_roles(load_standard(STANDARD), ROLES) == []


def _operation_entry_points(role: Path) -> set[str]:
    """Task files a role declares as entry points of their own (not main) in argument_specs.

    They are operations that playbooks run with `tasks_from` (portal_host's backup
    and restore), not enforcement: no `--tags CONTROL` run of site.yml reaches them,
    and a control id on them would claim they enforce something. Only files the
    role itself names as separate entry points are exempt, so a new enforcement
    file cannot slip through untagged.
    """
    specs = role / "meta" / "argument_specs.yml"
    if not specs.is_file():
        return set()
    entry_points = yaml.safe_load(specs.read_text())["argument_specs"]
    return {f"{name}.yml" for name in entry_points if name != "main"}


def _enforcing_roles() -> set[str]:
    """Roles the standard names as the enforcer of at least one control."""
    controls = load_standard(STANDARD).controls
    return {c.enforce.role for c in controls if c.enforce is not None}


def test_every_role_task_is_tagged_with_a_control_id() -> None:
    """A task without a control tag would run under no `--tags CONTROL`: enforcement gaps."""
    ids = {c.id for c in load_standard(STANDARD).controls}
    enforcing = _enforcing_roles()
    exempt = {(r.name, f) for r in ROLES.iterdir() for f in _operation_entry_points(r)}
    assert ("portal_host", "backup.yml") in exempt and ("portal_host", "restore.yml") in exempt
    for tasks in sorted(ROLES.glob("*/tasks/*.yml")):
        if (tasks.parent.parent.name, tasks.name) in exempt:
            continue
        if tasks.parent.parent.name not in enforcing:
            continue  # infrastructure roles: see the next test
        for task in yaml.safe_load(tasks.read_text()) or []:
            if "ansible.builtin.import_tasks" in task:
                continue
            tags = set(task.get("tags", []))
            if tags == {"always"}:  # the apt module's prerequisite, needed under any tag
                assert "python3-apt" in task["name"], task["name"]
                continue
            assert tags and tags <= ids, f"{tasks}: {task['name']} has tags {tags}"


def test_every_infrastructure_role_task_is_tagged_with_its_role() -> None:
    """Roles no control names (an execution node, say) enforce nothing of the standard.

    A control id on their tasks would claim enforcement, so each task carries the
    role's own name instead: `--tags ROLE` runs exactly that role's work.
    """
    enforcing = _enforcing_roles()
    for tasks in sorted(ROLES.glob("*/tasks/*.yml")):
        role = tasks.parent.parent.name
        if role in enforcing:
            continue
        for task in yaml.safe_load(tasks.read_text()) or []:
            if "ansible.builtin.import_tasks" in task:
                continue
            tags = set(task.get("tags", []))
            assert tags == {role}, f"{tasks}: {task['name']} has tags {tags}, expected {{{role!r}}}"


def test_every_role_has_argument_specs_for_each_default() -> None:
    for role in sorted(p for p in ROLES.iterdir() if (p / "defaults" / "main.yml").is_file()):
        defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text())
        specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())
        options = specs["argument_specs"]["main"]["options"]
        assert set(defaults) == set(options), role.name
        assert all(name.startswith(role.name + "_") for name in defaults), role.name


@pytest.fixture
def roles_copy(tmp_path: Path) -> Path:
    target = tmp_path / "roles"
    shutil.copytree(ROLES, target)
    return target


def test_a_role_default_that_differs_is_named(roles_copy: Path) -> None:
    defaults = roles_copy / "ssh_hardening" / "defaults" / "main.yml"
    defaults.write_text(
        defaults.read_text().replace(
            "ssh_hardening_max_auth_tries: 4", "ssh_hardening_max_auth_tries: 6"
        )
    )
    problems = check_roles(load_standard(STANDARD), roles_copy)
    assert len(problems) == 1
    assert "'ssh_hardening_max_auth_tries' defaults to 4 here but to 6" in problems[0].message
    text = STANDARD.read_text().splitlines()
    assert "ssh_hardening_max_auth_tries:" in text[problems[0].line - 1]


def test_a_control_whose_tag_is_on_no_task_is_named(roles_copy: Path) -> None:
    tasks = roles_copy / "time_sync" / "tasks" / "main.yml"
    tasks.write_text(tasks.read_text().replace("[TIME-001]", "[TIME-009]"))
    problems = check_roles(load_standard(STANDARD), roles_copy)
    assert [p.message for p in problems] == ["role 'time_sync' has no task tagged TIME-001"]


def test_a_missing_role_is_named(roles_copy: Path) -> None:
    shutil.rmtree(roles_copy / "updates")
    problems = check_roles(load_standard(STANDARD), roles_copy)
    assert any("enforced by role 'updates'" in p.message for p in problems)


# -- parameters from an inventory ----------------------------------------------------


def _inventory(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "hosts.yml").write_text(
        yaml.safe_dump(
            {
                "all": {
                    "children": {
                        "division_dhaka": {
                            "children": {
                                "district_gazipur": {
                                    "hosts": {"gaz-lab01": None, "gaz-fs01": None},
                                    "vars": {"ssh_hardening_max_auth_tries": 5},
                                }
                            }
                        },
                        "role_lab_pc": {"hosts": {"gaz-lab01": {"provision_role": "lab_pc"}}},
                        "role_field_server": {
                            "hosts": {"gaz-fs01": {"provision_role": "field_server"}}
                        },
                    }
                }
            }
        )
    )
    (folder / "group_vars").mkdir()
    (folder / "group_vars" / "all.yml").write_text("time_sync_timezone: Asia/Kolkata\n")
    (folder / "group_vars" / "district_gazipur.yml").write_text("ssh_hardening_max_auth_tries: 3\n")
    (folder / "group_vars" / "role_lab_pc").mkdir()
    (folder / "group_vars" / "role_lab_pc" / "fw.yml").write_text(
        "firewall_lab_pc_tcp_ports: [22, 5900]\n"
    )
    (folder / "host_vars").mkdir()
    (folder / "host_vars" / "gaz-lab01.yml").write_text("time_sync_timezone: Asia/Dhaka\n")
    return folder


def test_a_hosts_parameters_come_from_its_groups_and_host_vars(tmp_path: Path) -> None:
    folder = _inventory(tmp_path / "inventories" / "lab")
    standard = load_standard(STANDARD)
    loaded = load_inventory(folder)

    lab = resolve_parameters(standard, host_layers(loaded, "gaz-lab01"))
    # group_vars/ wins over vars in hosts.yml; host_vars over group_vars.
    assert lab["ssh_hardening_max_auth_tries"].value == 3
    assert lab["ssh_hardening_max_auth_tries"].source.endswith("group_vars/district_gazipur.yml")
    assert lab["time_sync_timezone"].value == "Asia/Dhaka"
    assert lab["time_sync_timezone"].source.endswith("host_vars/gaz-lab01.yml")
    assert lab["firewall_lab_pc_tcp_ports"].value == [22, 5900]
    assert lab["baseline_journal_retention_days"].source == "default"

    fs = resolve_parameters(standard, host_layers(loaded, "gaz-fs01"))
    assert fs["time_sync_timezone"].value == "Asia/Kolkata"
    assert fs["firewall_lab_pc_tcp_ports"].source == "default"


@pytest.mark.slow
def test_ansible_sees_the_same_parameter_values(tmp_path: Path) -> None:
    """Our reading of the layers matches Ansible's own variable precedence."""
    import subprocess

    from provision.infra.runner import tool_path

    folder = _inventory(tmp_path / "inventories" / "lab")
    binary = tool_path("ansible-inventory")
    assert binary is not None
    out = subprocess.run(
        [str(binary), "-i", str(folder), "--host", "gaz-lab01"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    ansible_vars = json.loads(out)
    ours = resolve_parameters(
        load_standard(STANDARD), host_layers(load_inventory(folder), "gaz-lab01")
    )
    for name in ("ssh_hardening_max_auth_tries", "time_sync_timezone", "firewall_lab_pc_tcp_ports"):
        assert ansible_vars[name] == ours[name].value, name


# -- the command line ------------------------------------------------------------------


def run(ws: Path, *args: str) -> Result:
    result = CliRunner().invoke(cli, ["--workspace", str(ws), *args])
    assert "Traceback" not in result.output
    return result


def test_validate_passes_on_the_department_standard(workspace: Path) -> None:
    shutil.copy(STANDARD, workspace / "standards")
    result = run(workspace, "standards", "validate")
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    standard = load_standard(STANDARD)
    assert f"bd-ict-baseline {standard.version}" in result.output and "valid" in result.output


def test_validate_names_file_and_line_of_each_problem(workspace: Path) -> None:
    bad = FIXTURES / "standards" / "bad-many.yml"
    result = run(workspace, "standards", "validate", str(bad))
    assert result.exit_code == ExitStatus.BAD_INPUT
    assert f"{bad}:17: severity 'severe'" in result.output
    assert f"{bad}:18: unknown check type 'sshd_settings'" in result.output
    as_json = run(workspace, "standards", "validate", str(bad), "--json")
    assert as_json.exit_code == ExitStatus.BAD_INPUT
    data = json.loads(as_json.stdout)
    assert data["ok"] is False and len(data["standards"][0]["problems"]) == 4


def test_validate_reports_roles_that_disagree(workspace: Path, tmp_path: Path) -> None:
    text = STANDARD.read_text().replace("default: Asia/Dhaka", "default: Asia/Thimphu")
    (workspace / "standards" / "s.yml").write_text(text)
    result = run(workspace, "standards", "validate")
    assert result.exit_code == ExitStatus.BAD_INPUT
    assert (
        "'time_sync_timezone' defaults to 'Asia/Thimphu' here but to 'Asia/Dhaka'" in result.output
    )


def test_no_standard_is_a_clear_error(workspace: Path) -> None:
    result = run(workspace, "standards", "show")
    assert result.exit_code == ExitStatus.BAD_INPUT
    assert "no standard in" in result.output


def test_show_lists_the_controls_of_a_role(workspace: Path) -> None:
    shutil.copy(STANDARD, workspace / "standards")
    result = run(workspace, "standards", "show", "--role", "lab_pc", "--json")
    assert result.exit_code == 0, result.output
    ids = [c["id"] for c in json.loads(result.stdout)["controls"]]
    assert "FW-003" in ids and "LAB-002" in ids and "HW-001" in ids
    assert "FW-002" not in ids and "FS-001" not in ids
    table = run(workspace, "standards", "show", "--role", "field_server")
    assert "FS-001" in table.output and "LAB-001" not in table.output
    unknown = run(workspace, "standards", "show", "--role", "laptop")
    assert unknown.exit_code == ExitStatus.BAD_INPUT and "not covered" in unknown.output


def test_show_for_a_host_uses_its_inventory_overrides(workspace: Path) -> None:
    shutil.copy(STANDARD, workspace / "standards")
    _inventory(workspace / "inventories" / "lab")
    result = run(workspace, "standards", "show", "--host", "gaz-lab01", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["role"] == "lab_pc"
    ssh = next(c for c in data["controls"] if c["id"] == "SSH-004")
    assert ssh["values"]["ssh_hardening_max_auth_tries"]["value"] == 3
    assert "district_gazipur" in ssh["values"]["ssh_hardening_max_auth_tries"]["source"]
    (workspace / "inventories" / "lab" / "host_vars" / "gaz-lab01.yml").write_text(
        "ssh_hardening_max_auth_tries: many\n"
    )
    bad = run(workspace, "standards", "show", "--host", "gaz-lab01")
    assert bad.exit_code == ExitStatus.BAD_INPUT
    assert "host_vars/gaz-lab01.yml: 'ssh_hardening_max_auth_tries' must be int" in bad.output


def test_help_teaches_with_examples() -> None:
    for args in (["standards"], ["standards", "validate"], ["standards", "show"]):
        result = CliRunner().invoke(cli, [*args, "--help"])
        assert result.exit_code == 0 and "Example" in result.output


# -- the provision_linear strategy ---------------------------------------------------------


def _strategy_bases(environ: dict[str, str]) -> list[str]:
    import subprocess
    import sys

    code = (
        "import importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('s', sys.argv[1])\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "print(','.join(f'{c.__module__}.{c.__name__}' for c in m.StrategyModule.__mro__))\n"
    )
    plugin = REPO / "playbooks" / "plugins" / "strategy" / "provision_linear.py"
    out = subprocess.run(
        [sys.executable, "-c", code, str(plugin)],
        env={"PATH": "/usr/bin:/bin", **environ},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.strip().split(",")


@pytest.mark.slow
def test_strategy_is_plain_linear_unless_mitogen_is_asked_for() -> None:
    for environ in ({}, {"PROVISION_MITOGEN": "0"}):
        bases = _strategy_bases(environ)
        assert "ansible.plugins.strategy.linear.StrategyModule" in bases
        assert not any("mitogen" in b for b in bases)


@pytest.mark.slow
def test_strategy_uses_mitogen_when_asked_and_installed() -> None:
    pytest.importorskip("ansible_mitogen.strategy", reason="mitogen is not installed")
    bases = _strategy_bases({"PROVISION_MITOGEN": "1"})
    assert "ansible_mitogen.strategy.StrategyMixin" in bases
    assert "ansible.plugins.strategy.linear.StrategyModule" in bases
