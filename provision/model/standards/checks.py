"""The check types a control may use, and the fields each one takes.

This table is the contract with the compliance service: for every type here it
collects the evidence named in `evidence` and evaluates the fields. Adding a
type means adding it here and teaching compliance to evaluate it.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Field kinds. "scalar" is a str or an int (sshd prints both); "mode" is an
#: octal string such as "0440"; "port" an int from 1 to 65535.
KINDS = ("str", "int", "bool", "list[str]", "list[int]", "map", "scalar", "mode", "port")


@dataclass(frozen=True)
class Field:
    kind: str
    required: bool = False
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckType:
    name: str
    fields: dict[str, Field]
    #: What the check means, for `provision standards show` and the docs.
    summary: str
    #: The evidence the compliance run collects for it.
    evidence: str
    #: Groups of fields of which at least one must be given.
    one_of: tuple[tuple[str, ...], ...] = ()
    #: Groups of fields of which at most one may be given.
    exclusive: tuple[tuple[str, ...], ...] = ()


def _type(
    type_name: str,
    summary: str,
    evidence: str,
    /,
    need: tuple[tuple[str, ...], ...] = (),
    only: tuple[tuple[str, ...], ...] = (),
    **fields: Field,
) -> CheckType:
    return CheckType(type_name, fields, summary, evidence, need, only)


CHECK_TYPES: dict[str, CheckType] = {
    t.name: t
    for t in (
        _type(
            "os_release",
            "the OS release (ID-VERSION_ID of /etc/os-release, e.g. debian-12) is one of",
            "os-release",
            releases=Field("list[str]", required=True),
        ),
        _type(
            "package_installed",
            "every package is installed (the one package at least at min_version)",
            "installed packages and versions",
            packages=Field("list[str]", required=True),
            min_version=Field("str"),
        ),
        _type(
            "package_absent",
            "none of the packages is installed",
            "installed packages",
            packages=Field("list[str]", required=True),
        ),
        _type(
            "service",
            "the systemd unit is enabled and/or running as stated",
            "systemd unit states",
            need=(("enabled", "running"),),
            name=Field("str", required=True),
            enabled=Field("bool"),
            running=Field("bool"),
        ),
        _type(
            "sshd_setting",
            "the effective sshd setting (`sshd -T`, lower-case name) equals, is one of, "
            "or lists only values from",
            "sshd -T",
            need=(("equals", "one_of", "subset_of"),),
            only=(("equals", "one_of", "subset_of"),),
            setting=Field("str", required=True),
            equals=Field("scalar"),
            one_of=Field("list[str]"),
            subset_of=Field("list[str]"),
        ),
        _type(
            "sysctl",
            "each kernel parameter has the value",
            "sysctl -a",
            values=Field("map", required=True),
        ),
        _type(
            "file",
            "the file exists (or not) with the mode, owner, group, and a line matching a regex",
            "stat and content of the named files",
            path=Field("str", required=True),
            exists=Field("bool"),
            mode=Field("mode"),
            owner=Field("str"),
            group=Field("str"),
            contains=Field("str"),
        ),
        _type(
            "user",
            "the local account exists (present: true) or not",
            "passwd entries",
            name=Field("str", required=True),
            present=Field("bool", required=True),
        ),
        _type(
            "port",
            "something is listening on the port (listening: true) or nothing is",
            "listening sockets (ss -ltnu)",
            port=Field("port", required=True),
            protocol=Field("str", choices=("tcp", "udp")),
            listening=Field("bool", required=True),
        ),
        _type(
            "hardware",
            "the machine has at least this many CPU cores, MiB of memory, GB of disk",
            "hardware facts",
            need=(("cpu_cores", "memory_mb", "disk_gb"),),
            cpu_cores=Field("int"),
            memory_mb=Field("int"),
            disk_gb=Field("int"),
        ),
        _type(
            "timezone",
            "the system time zone is",
            "/etc/localtime",
            name=Field("str", required=True),
        ),
        _type(
            "firewall",
            "the nftables input chain has this policy and opens exactly these TCP ports",
            "nft -j list ruleset",
            need=(("input_policy", "allowed_tcp_ports"),),
            input_policy=Field("str", choices=("accept", "drop")),
            allowed_tcp_ports=Field("list[int]"),
        ),
        _type(
            "portal_https",
            "every portal the register gives the host answers over HTTPS with a certificate "
            "that verifies (department CA, or the system store for an external one) and has "
            "at least min_days_left days left",
            "HTTPS to each registered portal, from the control node",
            min_days_left=Field("int", required=True),
        ),
    )
}

#: Which parameter types may fill a field of each kind through `${param}`.
KIND_ACCEPTS: dict[str, tuple[str, ...]] = {
    "str": ("str",),
    "int": ("int",),
    "bool": ("bool",),
    "list[str]": ("list[str]",),
    "list[int]": ("list[int]",),
    "map": ("map",),
    "scalar": ("str", "int"),
    "mode": ("str",),
    "port": ("int",),
}

#: Values `sshd -T` prints under another name than the one people write:
#: compare both sides through `normalise_sshd` (`prohibit-password` is printed
#: as `without-password` by OpenSSH 9).
SSHD_ALIASES: dict[str, dict[str, str]] = {
    "permitrootlogin": {"without-password": "prohibit-password"},
}


def normalise_sshd(setting: str, value: str) -> str:
    """A `sshd_setting` value in one canonical spelling, for comparison."""
    text = str(value).strip()
    return SSHD_ALIASES.get(setting.lower(), {}).get(text.lower(), text)
