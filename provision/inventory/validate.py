"""`validate`: check an environment's inventory (or a register) and list every problem."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.errors import InputError
from provision.inventory.files import HOSTS_FILE, LoadedInventory, load_inventory, read_vars
from provision.inventory.files import vars_names as _vars_names
from provision.inventory.register_file import read_register
from provision.model.inventory.problems import Problem, ProblemsError
from provision.model.inventory.register import ROLES
from provision.model.places import LEVELS, RESERVED_GROUPS

_GROUP_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HOST_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")
_KNOWN_ROLE_GROUPS = {"role_" + r for r in ROLES}


@dataclass
class ValidationReport:
    """What was checked and every problem found (errors and warnings)."""

    path: str
    #: None when the input never parsed far enough to count its hosts.
    hosts: int | None = None
    groups: int | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "valid": self.ok,
            "hosts": self.hosts,
            "groups": self.groups,
            "problems": [p.as_dict() for p in self.problems],
        }


def validate_register(path: Path) -> ValidationReport:
    """Check a register file without writing anything."""
    report = ValidationReport(str(path))
    try:
        from provision.model.inventory.register import Record

        records: list[Record] = read_register(path)
    except ProblemsError as exc:
        report.problems = exc.problems
        return report
    report.hosts = len(records)
    return report


def validate_environment(folder: Path) -> ValidationReport:
    """Check `folder` (inventories/ENV): hosts.yml, group_vars/ and host_vars/."""
    report = ValidationReport(str(folder))
    try:
        loaded = load_inventory(folder)
    except InputError as exc:
        report.problems.append(
            Problem(str(exc.path or folder / HOSTS_FILE), exc.line, exc.message, exc.hint)
        )
        return report
    report.hosts = len(loaded.inventory.hosts)
    report.groups = len(loaded.inventory.groups) - 1
    report.problems.extend(loaded.problems)
    _check_hosts(loaded, report)
    _check_vars_files(loaded, report)
    return report


def _check_hosts(loaded: LoadedInventory, report: ValidationReport) -> None:
    inventory = loaded.inventory
    path = str(loaded.hosts_path)
    members = inventory.memberships()
    addresses: dict[str, str] = {}

    def problem(host: str, message: str, hint: str) -> None:
        report.problems.append(Problem(path, loaded.line_of(host, nested=True), message, hint))

    # Ansible makes `all` and `ungrouped` in every inventory, written or not.
    reserved = [name for name in RESERVED_GROUPS if name not in inventory.groups]
    for name in [*inventory.groups, *reserved]:
        if name in inventory.hosts:
            own = " (Ansible's own group)" if name in RESERVED_GROUPS else ""
            report.problems.append(
                Problem(
                    path,
                    loaded.line_of(name, nested=True),
                    f"'{name}' is both a host and a group{own}",
                    "rename the host; Ansible cannot tell a host from a group of the same "
                    "name in patterns",
                )
            )
        elif not _GROUP_NAME.fullmatch(name):
            report.problems.append(
                Problem(
                    path,
                    loaded.line_of(name),
                    f"group name '{name}' has characters Ansible replaces or warns about",
                    "use letters, digits and '_' only",
                    "warning",
                )
            )
    for host, values in inventory.hosts.items():
        if not _HOST_NAME.fullmatch(host):
            problem(
                host,
                f"host name '{host}' has characters Ansible may read as a pattern",
                "use letters, digits, '-' and '.'",
            )
        address = values.get("ansible_host")
        if not address:
            problem(host, f"host '{host}' has no address", "add ansible_host or remove the host")
        else:
            try:
                canonical = str(ipaddress.ip_address(str(address)))
            except ValueError:
                problem(
                    host,
                    f"host '{host}' has ansible_host '{address}', not an IPv4 or IPv6 address",
                    "write the address itself, e.g. 10.20.1.15",
                )
            else:
                first = addresses.setdefault(canonical, host)
                if first != host:
                    problem(
                        host,
                        f"host '{host}' has the address {address} of host '{first}'",
                        "give each host its own address",
                    )
        groups = members.get(host, set())
        _check_place(host, groups, problem)
        roles = sorted(g for g in groups if g.startswith("role_"))
        if len(roles) != 1:
            problem(
                host,
                f"host '{host}' is in {len(roles)} role groups ({', '.join(roles) or 'none'})",
                "put it in exactly one of " + ", ".join(sorted(_KNOWN_ROLE_GROUPS)),
            )
        elif roles[0] not in _KNOWN_ROLE_GROUPS:
            problem(
                host,
                f"host '{host}' has the unknown role group '{roles[0]}'",
                "roles: " + ", ".join(ROLES),
            )


def _check_place(host: str, groups: set[str], problem: Any) -> None:
    by_level = {level: sorted(g for g in groups if g.startswith(level + "_")) for level in LEVELS}
    for level in ("division", "district"):
        if len(by_level[level]) != 1:
            found = ", ".join(by_level[level]) or "none"
            problem(
                host,
                f"host '{host}' is in {len(by_level[level])} {level} groups ({found})",
                f"a host has exactly one place in the tree: put it in one {level}",
            )
            return
    for level in ("upazila", "union"):
        if len(by_level[level]) > 1:
            problem(
                host,
                f"host '{host}' is in {len(by_level[level])} {level} groups "
                f"({', '.join(by_level[level])})",
                f"a host has exactly one place in the tree: keep one {level}",
            )
            return


def _check_vars_files(loaded: LoadedInventory, report: ValidationReport) -> None:
    inventory = loaded.inventory
    for kind, known, what in (
        ("group_vars", inventory.groups, "group"),
        ("host_vars", inventory.hosts, "host"),
    ):
        for name, entry in _vars_names(loaded.folder, kind).items():
            if name not in known:
                report.problems.append(
                    Problem(
                        str(entry),
                        None,
                        f"there is no {what} '{name}' in the inventory, so Ansible never "
                        "reads this",
                        f"rename it after an existing {what}, or remove it",
                        "warning",
                    )
                )
            files = [entry] if entry.is_file() else sorted(p for p in entry.rglob("*.y*ml"))
            for path in files:
                try:
                    read_vars(path)
                except InputError as exc:
                    report.problems.append(
                        Problem(str(exc.path or path), exc.line, exc.message, exc.hint)
                    )
