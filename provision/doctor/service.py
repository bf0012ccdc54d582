"""`provision doctor`: is this machine fit to be a control node (and to run the lab)?"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from provision.infra.runner import tool_path
from provision.settings import Settings

MIN_PYTHON = (3, 11)


@dataclass(frozen=True)
class Check:
    """One line of the doctor's table."""

    name: str
    status: str  # pass, fail, warn
    detail: str
    fix: str = ""
    #: A failed required check makes the control node unusable; others only limit it.
    required: bool = True


@dataclass(frozen=True)
class DoctorReport:
    checks: list[Check]

    @property
    def healthy(self) -> bool:
        return not any(c.status == "fail" and c.required for c in self.checks)


def _version_of(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _check_python() -> Check:
    found = sys.version_info[:3]
    text = ".".join(map(str, found))
    if found[:2] >= MIN_PYTHON:
        return Check("python", "pass", f"Python {text} at {sys.executable}")
    return Check("python", "fail", f"Python {text}", "use Python 3.11 or newer")


def _check_distribution(dist: str, fix: str) -> Check:
    version = _version_of(dist)
    if version:
        return Check(dist, "pass", version)
    return Check(dist, "fail", "not installed", fix)


def _check_playbook_binary() -> Check:
    path = tool_path("ansible-playbook")
    if path is None:
        return Check(
            "ansible-playbook",
            "fail",
            "not found beside this Python nor on PATH",
            "install ansible-core in provision's environment: make setup",
        )
    return Check("ansible-playbook", "pass", str(path))


def _check_ansible_on_path() -> Check:
    # provision itself finds its own ansible-playbook; this is for people who also
    # run plain ansible-playbook on the same inventories.
    found = shutil.which("ansible-playbook")
    if found:
        return Check("ansible on PATH", "pass", found, required=False)
    return Check(
        "ansible on PATH",
        "warn",
        "ansible-playbook is not on PATH (provision still finds its own)",
        "to run plain ansible-playbook too: . .venv/bin/activate",
        required=False,
    )


def _check_ssh() -> Check:
    ssh = shutil.which("ssh")
    if not ssh:
        return Check("ssh client", "fail", "ssh not on PATH", "apt-get install openssh-client")
    proc = subprocess.run([ssh, "-V"], capture_output=True, text=True, check=False)
    return Check("ssh client", "pass", (proc.stderr or proc.stdout).strip())


def _check_workspace(settings: Settings) -> Check:
    wanted = ["playbooks", "inventories", "standards", "ansible.cfg"]
    missing = [name for name in wanted if not (settings.workspace / name).exists()]
    if missing:
        return Check(
            "workspace",
            "fail",
            f"{settings.workspace} lacks {', '.join(missing)}",
            "run provision from the project folder or pass --workspace",
        )
    return Check("workspace", "pass", str(settings.workspace))


def _check_state_dir(settings: Settings) -> Check:
    state = settings.state_path
    try:
        state.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=state, prefix=".doctor-"):
            pass
    except OSError as exc:
        return Check(
            "state directory",
            "fail",
            f"{state}: {exc.strerror}",
            "make it writable or set state_dir",
        )
    return Check("state directory", "pass", f"{state} is writable")


def _lab_checks() -> list[Check]:
    checks: list[Check] = []
    is_root = os.geteuid() == 0
    checks.append(
        Check(
            "lab: root",
            "pass" if is_root else "warn",
            "running as root" if is_root else "not root: the lab cannot boot hosts",
            "" if is_root else "run provision lab as root",
            required=False,
        )
    )
    for tool, package in (
        ("systemd-nspawn", "systemd-container"),
        ("debootstrap", "debootstrap"),
        ("apt-cacher-ng", "apt-cacher-ng"),
        ("ip", "iproute2"),
    ):
        path = shutil.which(tool) or (
            f"/usr/sbin/{tool}" if Path(f"/usr/sbin/{tool}").exists() else None
        )
        checks.append(
            Check(
                f"lab: {tool}",
                "pass" if path else "warn",
                path or "not installed: the lab cannot run",
                "" if path else f"apt-get install {package}",
                required=False,
            )
        )
    overlay = (
        "overlay" in Path("/proc/filesystems").read_text()
        if Path("/proc/filesystems").exists()
        else False
    )
    checks.append(
        Check(
            "lab: overlayfs",
            "pass" if overlay else "warn",
            "kernel supports overlay" if overlay else "no overlay filesystem in this kernel",
            "" if overlay else "modprobe overlay",
            required=False,
        )
    )
    return checks


def run_doctor(settings: Settings) -> DoctorReport:
    """Every check, in the order a person would fix them."""
    steps: list[Callable[[], Check]] = [
        _check_python,
        lambda: _check_distribution("ansible-core", "pip install ansible-core (make setup)"),
        lambda: _check_distribution("ansible-runner", "pip install ansible-runner (make setup)"),
        _check_playbook_binary,
        _check_ansible_on_path,
        _check_ssh,
        lambda: _check_workspace(settings),
        lambda: _check_state_dir(settings),
    ]
    return DoctorReport([step() for step in steps] + _lab_checks())
