"""Build a Debian 12 image of a role, brought to the standard by the same roles as a rollout.

    result = build_image(settings, BuildRequest(role="lab_pc", format="qcow2"))

1. A one-host build lab on a subnet of its own: the lab's cached Debian root
   filesystem, an overlay, systemd-nspawn, the lab's package cache
   (`provision.lab.service.up` in a private workspace).
2. For disk formats, a kernel and GRUB installed over apt through that cache.
3. The role's playbook applied over SSH by a rollout (`plan_rollout` /
   `run_rollout`), with the automation account given the control node's key.
4. The package list read with dpkg-query; the host stopped.
5. The overlay-merged tree sealed (`seal.seal_tree`) and packed
   (`pack.pack_*`) under a temporary name, the manifest written, both renamed
   into place.

Everything started is undone in `finally` (mounts, loop devices, the build
lab, the build folder), on errors and on Ctrl-C alike.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from provision.access import keys
from provision.errors import HostsFailedError, InputError, PrerequisiteError, StateError
from provision.images import pack, seal
from provision.images.manifest import FORMAT as MANIFEST_FORMAT
from provision.images.manifest import manifest_path, parse_packages, sha256_of
from provision.images.output import check_target, remove, temp_path, write_text_atomic
from provision.lab import network
from provision.lab import service as lab_service
from provision.lab.spec import ROLE_TEMPLATES
from provision.model.standards.model import Standard
from provision.rollout import RolloutOptions, plan_rollout, run_rollout
from provision.settings import Settings
from provision.standards.service import pick_standard

StepCallback = Callable[[str], None]

#: Output formats and the file name ending each gets by default.
FORMATS = {"tar": ".tar", "qcow2": ".qcow2", "vagrant-box": ".box"}
DEFAULT_SIZE_GB = 8
#: What a bootable disk needs beyond the lab's root filesystem.
DISK_PACKAGES = ("linux-image-amd64", "grub-pc", "initramfs-tools")
#: Build labs take 10.214.N.0/24 for the first free N; the bridge is named after N
#: (pvlab-N), so N stays clear of the lab (7), the benchmarks (11-14) and test labs (20+).
BUILD_SUBNETS = range(15, 20)
CLAIMS = Path("/run/provision-image-builds")
PLAYBOOK = "site.yml"


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class BuildRequest:
    role: str
    format: str
    out: Path | None = None
    force: bool = False
    size_gb: int = DEFAULT_SIZE_GB
    standard: str | None = None


@dataclass(frozen=True)
class BuildResult:
    image: Path
    manifest_path: Path
    manifest: dict[str, Any]
    seconds: float
    #: Seconds per step (lab, rollout, seal, pack…), for the benchmark.
    timings: dict[str, float]


def check_request(settings: Settings, request: BuildRequest) -> tuple[Standard, Path]:
    """Bad input is refused before anything is touched: format, role, output path."""
    if request.format not in FORMATS:
        raise InputError(
            f"unknown image format '{request.format}'", hint="formats: " + ", ".join(FORMATS)
        )
    standard = pick_standard(settings.standards_path, request.standard)
    roles = [r for r in standard.roles if r in ROLE_TEMPLATES]
    if request.role not in roles:
        raise InputError(
            f"unknown role '{request.role}'", hint=f"roles of {standard.id}: " + ", ".join(roles)
        )
    out = request.out or Path.cwd() / f"{request.role}{FORMATS[request.format]}"
    out = check_target(out, force=request.force, what="image")
    if out.is_dir():
        raise InputError(f"{out} is a folder", hint="give the image's file name with --out")
    return standard, out


def check_root() -> None:
    if os.geteuid() != 0:
        raise PrerequisiteError(
            "building an image needs root (it boots a build host, mounts and loop-mounts disks)",
            hint="run it as root, e.g. sudo provision image build …",
        )


def check_tools(fmt: str) -> None:
    needed = [("tar", "tar")]
    if fmt != "tar":
        needed += [
            ("qemu-img", "qemu-utils"),
            ("sfdisk", "fdisk"),
            ("losetup", "mount"),
            ("mkfs.ext4", "e2fsprogs"),
            ("partx", "util-linux"),
        ]
    for tool, package in needed:
        if lab_service.find_tool(tool) is None:
            raise PrerequisiteError(f"{tool} is not installed", hint=f"apt-get install {package}")


def preflight(settings: Settings, request: BuildRequest) -> tuple[Standard, Path, keys.KeyInfo]:
    """Everything that can be refused before anything is touched, in the order a user
    fixes it: the request, root, the tools, the automation key."""
    standard, out = check_request(settings, request)
    check_root()
    check_tools(request.format)
    lab_service.check_prerequisites()
    return standard, out, keys.load(settings)


def build_image(
    settings: Settings, request: BuildRequest, on_step: StepCallback = _quiet
) -> BuildResult:
    """Build, seal, pack and describe one image. Leaves nothing behind on failure."""
    started = time.monotonic()
    standard, out, control = preflight(settings, request)
    timings: dict[str, float] = {}

    base = settings.state_path / "images"
    base.mkdir(parents=True, exist_ok=True)
    build_dir = Path(tempfile.mkdtemp(prefix="build-", dir=base))
    image_temp = temp_path(out)
    manifest_temp = temp_path(manifest_path(out))
    try:
        with _build_lab(settings, build_dir, on_step) as build:
            mark = time.monotonic()
            lab_up = build.up(request.role)
            timings["lab"] = time.monotonic() - mark
            host = lab_up.hosts[0].name
            if request.format != "tar":
                mark = time.monotonic()
                on_step("installing a kernel and GRUB through the lab's package cache")
                build.ssh(host, _install_disk_packages_script(), timeout=1200)
                timings["kernel"] = time.monotonic() - mark
            mark = time.monotonic()
            build.write_build_vars(settings.automation_user, control.public_key)
            on_step(f"applying {PLAYBOOK} to {host} ({request.role}) through a rollout")
            rollout = build.rollout(on_step)
            timings["rollout"] = time.monotonic() - mark
            build.ssh(host, "systemctl enable systemd-networkd.service ssh.service", timeout=60)
            packages = parse_packages(
                build.ssh(host, "dpkg-query -W -f '${Package}\\t${Version}\\t${Architecture}\\n'")
            )
            on_step(f"stopping {host} and sealing its tree")
            mark = time.monotonic()
            root = build.stop(host)
            seal.seal_tree(
                root,
                role=request.role,
                build_key=build.control_public_key(),
                disk=request.format != "tar",
            )
            timings["seal"] = time.monotonic() - mark
            mark = time.monotonic()
            on_step(f"packing the {request.format} image")
            if request.format == "tar":
                pack.pack_tar(root, image_temp)
            elif request.format == "qcow2":
                pack.pack_qcow2(root, image_temp, build_dir / "disk", request.size_gb)
            else:
                pack.pack_vagrant_box(
                    root,
                    image_temp,
                    build_dir / "disk",
                    request.size_gb,
                    user=settings.automation_user,
                    role=request.role,
                )
            timings["pack"] = time.monotonic() - mark
        on_step("writing the manifest")
        manifest = {
            "manifest_format": MANIFEST_FORMAT,
            "image": out.name,
            "format": request.format,
            "role": request.role,
            "os": "debian-12",
            "standard": {
                "id": standard.id,
                "version": standard.version,
                "digest": standard.digest,
            },
            "automation_user": settings.automation_user,
            "automation_key_fingerprint": control.fingerprint,
            "size_gb": request.size_gb if request.format != "tar" else None,
            "built": datetime.now(UTC).isoformat(timespec="seconds"),
            "rollout": rollout,
            "packages": packages,
            "sha256": sha256_of(image_temp),
            "bytes": image_temp.stat().st_size,
        }
        write_text_atomic(manifest_temp, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        image_temp.replace(out)
        manifest_temp.replace(manifest_path(out))
    finally:
        remove(image_temp)
        remove(manifest_temp)
        shutil.rmtree(build_dir, ignore_errors=True)
    return BuildResult(out, manifest_path(out), manifest, time.monotonic() - started, timings)


def _install_disk_packages_script() -> str:
    packages = " ".join(DISK_PACKAGES)
    # GRUB goes onto the disk later, at packing time; here it must not look for one.
    return (
        "set -e; export DEBIAN_FRONTEND=noninteractive; "
        "printf '%s\\n' 'grub-pc grub-pc/install_devices multiselect' "
        "'grub-pc grub-pc/install_devices_empty boolean true' | debconf-set-selections; "
        "apt-get update -qq; "
        f"apt-get install -y -qq --no-install-recommends {packages} >/dev/null"
    )


# -- the one-host build lab ---------------------------------------------------------


class _BuildLab:
    """A lab of one host in a private workspace; `down` in any case at the end."""

    def __init__(self, settings: Settings, build_dir: Path, subnet: str, on_step: StepCallback):
        workspace = build_dir / "workspace"
        (workspace / "inventories").mkdir(parents=True)
        for name in ("ansible.cfg", "playbooks", "standards"):
            (workspace / name).symlink_to(settings.workspace / name)
        self.settings = replace(
            settings,
            workspace=workspace,
            env="lab",
            state_dir=build_dir / "state",
            db_url="",
            lab_subnet=subnet,
            vault_password_file="",
        )
        self.on_step = on_step
        self.started = False

    def up(self, role: str) -> lab_service.UpResult:
        self.started = True
        return lab_service.up(self.settings, f"{role}:1", self.on_step)

    @property
    def inventory(self) -> Path:
        return self.settings.inventory_path

    def control_public_key(self) -> str:
        from provision.infra import crypto

        return crypto.public_key_of(lab_service.LabPaths.of(self.settings).key)

    def ssh(self, host: str, command: str, timeout: float = 300) -> str:
        argv = lab_service.ssh_command(self.settings, host, [command])
        try:
            proc = subprocess.run(
                argv, capture_output=True, text=True, check=False, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            raise StateError(
                f"build host {host}: {command.split(';')[-1].strip()[:60]} took over {timeout:.0f}s"
            ) from None
        if proc.returncode != 0:
            last = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
            raise StateError(
                f"build host {host}: a build step failed (exit {proc.returncode}): "
                f"{last[-1] if last else 'no output'}",
                hint="check that the lab's package cache reaches the Debian mirror",
            )
        return proc.stdout

    def write_build_vars(self, user: str, public_key: str) -> None:
        """The automation account the image keeps, with the control node's key (ACC-001)."""
        folder = self.inventory / "group_vars" / "all"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "image_build.yml").write_text(
            "# Written by provision image build: the image's automation account.\n---\n"
            + yaml.safe_dump(
                {
                    "baseline_automation_user": user,
                    "baseline_automation_authorized_keys": [public_key.strip()],
                },
                sort_keys=False,
            )
        )

    def rollout(self, on_step: StepCallback) -> dict[str, Any]:
        plan = plan_rollout(self.settings, RolloutOptions(PLAYBOOK))
        result = run_rollout(self.settings, plan)
        outcomes = {h: r.outcome for h, r in result.results.items()}
        summary = {"status": result.status, "playbook": PLAYBOOK, "hosts": outcomes}
        if result.status != "succeeded" or any(
            o not in {"ok", "changed"} for o in outcomes.values()
        ):
            raise HostsFailedError(
                f"the build rollout did not succeed ({result.status}: "
                + ", ".join(f"{h} {o}" for h, o in outcomes.items())
                + ")",
                hint=f"see the run's artifacts under {self.settings.state_path / 'runs'}",
            )
        on_step("rollout succeeded: " + ", ".join(f"{h} {o}" for h, o in outcomes.items()))
        return summary

    def stop(self, host: str) -> Path:
        """Power the host off; its overlay stays mounted. Returns the merged tree."""
        lab_service.stop_host(self.settings, host)
        root = lab_service.LabPaths.of(self.settings).host(host).root
        if not root.is_dir():
            raise StateError(f"the build host's tree {root} is gone")
        return root

    def down(self) -> None:
        lab_service.down(self.settings, _quiet)


@contextlib.contextmanager
def _build_lab(settings: Settings, build_dir: Path, on_step: StepCallback) -> Iterator[_BuildLab]:
    subnet = claim_subnet()
    lab: _BuildLab | None = None
    try:
        lab = _BuildLab(settings, build_dir, subnet, on_step)
        yield lab
    finally:
        try:
            if lab is not None and lab.started:
                on_step("taking the build lab down")
                lab.down()
        finally:
            release_subnet(subnet)


def claim_subnet() -> str:
    """A subnet for one build lab, claimed by an atomic mkdir holding our pid."""
    CLAIMS.mkdir(parents=True, exist_ok=True)
    for octet in BUILD_SUBNETS:
        subnet = ipaddress.IPv4Network(f"10.214.{octet}.0/24")
        claim = CLAIMS / str(octet)
        try:
            claim.mkdir()
        except FileExistsError:
            try:
                alive = Path(f"/proc/{int((claim / 'pid').read_text())}").exists()
            except (OSError, ValueError):
                alive = True
            if alive:
                continue
        (claim / "pid").write_text(str(os.getpid()))
        if network.bridge_exists(network.bridge_name(subnet)) or _subnet_in_use(subnet):
            shutil.rmtree(claim, ignore_errors=True)
            continue
        return str(subnet)
    raise StateError("no free subnet for a build lab", hint=f"remove stale claims in {CLAIMS}")


def _subnet_in_use(subnet: ipaddress.IPv4Network) -> bool:
    shown = subprocess.run(
        ["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, check=False
    )
    for line in shown.stdout.splitlines():
        fields = line.split()
        if "inet" in fields:
            other = ipaddress.IPv4Interface(fields[fields.index("inet") + 1]).network
            if other.overlaps(subnet) and not other.is_loopback:
                return True
    return False


def release_subnet(subnet: str) -> None:
    octet = subnet.split(".")[2]
    shutil.rmtree(CLAIMS / octet, ignore_errors=True)


__all__ = [
    "DEFAULT_SIZE_GB",
    "FORMATS",
    "BuildRequest",
    "BuildResult",
    "build_image",
    "check_request",
]
