"""A real qcow2 image of a lab PC: built once for the module through a one-host build
lab and a rollout, then checked against its manifest, for leftovers on the build
machine, and booted under QEMU (KVM, else the emulator: `qemu_boot`), where the
automation account logs in with the control node's key through a user-mode port
forward on 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pytest

from provision.access import keys
from provision.compliance.service import audit
from provision.images import BuildRequest, BuildResult, build_image, verify_image
from provision.images.manifest import manifest_path
from provision.images.output import TEMP_PREFIX
from provision.infra.store import open_store
from provision.infra.store.compliance_records import ComplianceRecords
from provision.inventory import build_inventory, files, parse_register
from provision.lab.inventory import register_text
from provision.lab.machine import mounted_paths
from provision.lab.spec import NAGARI_SCHOOL
from provision.lab.state import HostRecord
from provision.settings import Settings, load_settings
from tests.helpers import qemu_boot
from tests.helpers.lab import lab_unavailable_reason
from tests.helpers.workspace import REPO, make_workspace

#: The build (a few minutes; a bound for a loaded machine) and every boot attempt
#: fall within the timeout of whichever test comes first.
BUILD_BOUND_S = 1800
pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(BUILD_BOUND_S + qemu_boot.worst_case_s(kvm=True)),
]

ROLE = "lab_pc"


@dataclass
class Built:
    settings: Settings
    result: BuildResult

    @property
    def image(self) -> Path:
        return self.result.image


def _unavailable() -> str | None:
    reason = lab_unavailable_reason()
    if reason:
        return reason
    for tool in ("qemu-img", "sfdisk", "mkfs.ext4"):
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            return f"{tool} is not installed (scripts/setup.sh installs it)"
    return None


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    reason = _unavailable()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("image")
    workspace = make_workspace(root / "workspace")
    shutil.copy(REPO / "standards" / "bd-ict-baseline.yml", workspace / "standards")
    settings = load_settings(
        workspace=workspace, environ={}, flags={"state_dir": str(root / ".provision")}
    )
    keys.generate(settings)
    result = build_image(
        settings, BuildRequest(role=ROLE, format="qcow2", out=root / "lab_pc.qcow2")
    )
    yield Built(settings, result)


def test_manifest_describes_the_image_and_verifies(built: Built) -> None:
    manifest = built.result.manifest
    assert manifest_path(built.image).is_file()
    assert manifest["role"] == ROLE and manifest["format"] == "qcow2"
    assert manifest["standard"]["id"] == "bd-ict-baseline" and manifest["standard"]["digest"]
    names = {p["name"]: p["version"] for p in manifest["packages"]}
    # The disk's own kernel and boot loader, and what the role's standard installs.
    for package in ("linux-image-amd64", "grub-pc", "openssh-server", "chrony", "nftables"):
        assert package in names, package
    for package in ("fonts-beng", "hunspell-bn", "unattended-upgrades"):
        assert package in names, package
    assert manifest["rollout"]["status"] == "succeeded"
    assert verify_image(built.image).sha256 == manifest["sha256"]
    out = subprocess.run(
        ["qemu-img", "info", "--output=json", str(built.image)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert '"format": "qcow2"' in out


def test_the_build_leaves_nothing_behind(built: Built) -> None:
    images = built.settings.state_path / "images"
    assert list(images.iterdir()) == []
    assert not [p for p in mounted_paths() if images in p.parents]
    loops = subprocess.run(["losetup", "-a"], capture_output=True, text=True, check=False).stdout
    assert str(images) not in loops
    leftovers = [p.name for p in built.image.parent.iterdir() if p.name.startswith(TEMP_PREFIX)]
    assert leftovers == []
    nspawn = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=False)
    assert str(images) not in nspawn.stdout


def _kvm_reason() -> str | None:
    """Why KVM cannot be used here, or None."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError as exc:
        return f"/dev/kvm cannot be used here ({exc.strerror})"
    os.close(fd)
    return None


@pytest.fixture(scope="module")
def boot(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[qemu_boot.Boot]:
    """The image booted under QEMU: KVM where it boots, else emulated (slower).

    Each accelerator is given up on when the guest's serial console stops
    growing, at any stage of the boot (`qemu_boot`); the tests are skipped only
    where no accelerator got the guest up, and fail where it came up and the
    image kept the account out.
    """
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
    yield from qemu_boot.boot(
        built.image,
        tmp_path_factory.mktemp("boot"),
        kvm=_kvm_reason() is None,
        key=keys.key_path(built.settings),
        user=built.settings.automation_user,
    )


def _logged_in(boot: qemu_boot.Boot) -> qemu_boot.Guest:
    """The logged-in guest. Called in each test, not in a fixture, so that an image
    at fault makes the tests fail (a fixture's failure would be an error)."""
    if boot.guest is not None:
        return boot.guest
    failed = boot.image_failed
    if failed is not None:
        pytest.fail(f"the image booted but is at fault: {failed.summary()}\n{boot.report()}")
    pytest.skip(
        "no accelerator got the guest up (the hypervisor, not the image):\n" + boot.report()
    )


def test_the_boot_shows_on_the_serial_console(boot: qemu_boot.Boot) -> None:
    """GRUB, the kernel, systemd and sshd, in that order, on the first serial port."""
    booted = _logged_in(boot)
    proc = booted.ssh("cat /proc/cmdline")
    assert proc.returncode == 0, proc.stderr
    assert "console=tty0 console=ttyS0,115200n8" in proc.stdout
    text = booted.console.read_text(errors="replace")
    # Not the login prompt: sshd lets the account in before getty writes it.
    shown = [(name, text.find(marker)) for name, marker in qemu_boot.MILESTONES[1:4]]
    places = [place for _, place in shown]
    assert -1 not in places and places == sorted(places), shown


def test_image_boots_and_lets_the_automation_account_in(boot: qemu_boot.Boot) -> None:
    booted = _logged_in(boot)
    proc = booted.ssh("sudo -n true && id -un && cat /etc/timezone && hostname")
    assert proc.returncode == 0, proc.stderr
    user, timezone, hostname = proc.stdout.split()
    assert (user, timezone, hostname) == ("provision", "Asia/Dhaka", "lab-pc")


def test_first_boot_made_the_machine_its_own(boot: qemu_boot.Boot) -> None:
    booted = _logged_in(boot)
    # A fresh machine-id and fresh host keys, not the build host's.
    proc = booted.ssh("cat /etc/machine-id; ls /etc/ssh/ | grep -c '^ssh_host_.*_key$'")
    assert proc.returncode == 0, proc.stderr
    machine_id, host_keys = proc.stdout.split()
    assert len(machine_id) == 32 and int(host_keys) >= 1
    # The build key is gone: root has no authorized key.
    proc = booted.ssh("sudo -n test -e /root/.ssh/authorized_keys && echo present || echo absent")
    assert proc.stdout.strip() == "absent"


def test_the_image_was_not_changed_by_booting_it(built: Built, boot: qemu_boot.Boot) -> None:
    _logged_in(boot)
    assert verify_image(built.image).ok


def test_a_compliance_run_scores_100_percent_with_no_rollout_in_between(
    built: Built, boot: qemu_boot.Boot
) -> None:
    """The machine as it boots from the image, audited through an inventory of its own."""
    booted = _logged_in(boot)
    settings = replace(built.settings, env="image")
    folder = settings.inventory_path
    host = HostRecord("dhk-kal-lab01", ROLE, "127.0.0.1", asdict(NAGARI_SCHOOL))
    fleet = build_inventory(parse_register(register_text([host]), "image test register"))
    files.write_inventory(fleet, folder, source="image test")
    (folder / "group_vars" / "all").mkdir(parents=True, exist_ok=True)
    (folder / "group_vars" / "all" / "connection.yml").write_text(
        "---\n"
        f"ansible_user: {booted.user}\n"
        f"ansible_port: {booted.port}\n"
        f"ansible_ssh_private_key_file: {booted.key}\n"
        f"ansible_ssh_common_args: -o UserKnownHostsFile={booted.known_hosts} "
        "-o StrictHostKeyChecking=yes\n"
        "ansible_become: true\n"
    )
    result = audit(settings)
    (row,) = result.hosts
    with open_store(settings) as store:
        (report,) = list(ComplianceRecords(store).host_reports(result.run_id))
    failing = {r.control: (r.status, r.message) for r in report.results if r.status != "pass"}
    failing = {c: v for c, v in failing.items() if v[0] != "not_applicable"}
    assert row.status == "reported", row.message
    assert failing == {}, f"under {booted.accelerator}: {failing}"
    assert row.score == 1.0 and row.compliant
