"""`lab up` and `lab down` from the command line: down leaves nothing, twice is safe."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from provision.cli.main import cli
from provision.errors import ExitStatus
from provision.lab import machine, network, service
from provision.lab.inventory import ssh_options
from tests.helpers.lab import (
    claim_test_subnet,
    lab_settings,
    lab_unavailable_reason,
    release_test_subnet,
)

pytestmark = pytest.mark.lab


@pytest.fixture
def subnet() -> Iterator[str]:
    claimed = claim_test_subnet()
    yield claimed
    release_test_subnet(claimed)


def _invoke(workspace: Path, subnet: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli,
        ["--workspace", str(workspace), *args],
        env={"PROVISION_LAB_SUBNET": subnet, "PROVISION_STATE_DIR": str(workspace / ".provision")},
    )
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.stdout + result.stderr


def _container_namespace(nspawn_pid: int) -> str:
    """The network namespace of the host's systemd: nspawn's child, not nspawn itself."""
    children = Path(f"/proc/{nspawn_pid}/task/{nspawn_pid}/children").read_text().split()
    return str(Path(f"/proc/{children[0]}/ns/net").readlink())


def _live_network_namespaces() -> set[str]:
    live = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                live.add(str((proc / "ns" / "net").readlink()))
    return live


def test_down_leaves_no_mount_process_interface_or_namespace(tmp_path: Path, subnet: str) -> None:
    reason = lab_unavailable_reason()
    if reason:
        pytest.skip(reason)
    settings = lab_settings(tmp_path / "workspace", subnet)
    workspace = settings.workspace
    try:
        code, out = _invoke(workspace, subnet, "lab", "up", "--hosts", "dhk-kal-fs01,lab_pc:2")
        assert code == 0, out
        assert "3 hosts up" in out
        up_leftovers = service.leftovers(settings)
        assert any(item.startswith("process") for item in up_leftovers)
        assert any(item.startswith("mount") for item in up_leftovers)
        assert f"interface {network.bridge_name(service.check_subnet(subnet))}" in up_leftovers
        pids = [
            r.pid
            for r in service.state.load(service.LabPaths.of(settings).state_file).hosts.values()
        ]  # type: ignore[union-attr]
        namespaces = {_container_namespace(pid) for pid in pids if pid}
        assert len(namespaces) == 3  # one network namespace per host, none the host's own
        assert str(Path("/proc/self/ns/net").readlink()) not in namespaces
    finally:
        code, _ = _invoke(workspace, subnet, "lab", "down")
    assert code == 0
    assert service.leftovers(settings) == []
    # Independently of the lab's own bookkeeping: the kernel's view.
    bridge = network.bridge_name(service.check_subnet(subnet))
    assert (
        subprocess.run(["ip", "link", "show", bridge], capture_output=True, check=False).returncode
        != 0
    )
    mounts = Path("/proc/mounts").read_text()
    assert str(settings.state_path) not in mounts
    assert not namespaces & _live_network_namespaces()
    assert not any(
        Path(f"/proc/{p}/cmdline").exists()
        and str(settings.state_path) in Path(f"/proc/{p}/cmdline").read_text(errors="replace")
        for p in (d.name for d in Path("/proc").iterdir() if d.name.isdigit())
    )
    assert namespaces  # the hosts had network namespaces of their own …
    assert not (settings.state_path / "lab" / "hosts").exists()

    code, out = _invoke(workspace, subnet, "lab", "down")  # … and a second down is harmless
    assert code == 0
    assert "nothing was running" in out


def test_a_second_workspace_on_the_same_subnet_is_refused_and_the_first_lab_kept(
    tmp_path: Path, subnet: str
) -> None:
    """Two clones on one lab_subnet: the second `lab up` stopped the first lab's hosts."""
    reason = lab_unavailable_reason()
    if reason:
        pytest.skip(reason)
    first = lab_settings(tmp_path / "first", subnet)
    second = lab_settings(tmp_path / "second", subnet)
    try:
        service.up(first, "dhk-gaz-fs01")
        lab = service.state.load(service.LabPaths.of(first).state_file)
        assert lab is not None
        pid = lab.hosts["dhk-gaz-fs01"].pid

        code, out = _invoke(second.workspace, subnet, "lab", "up")
        assert code == ExitStatus.BAD_INPUT, out
        assert str(first.workspace) in out and "lab_subnet" in out, out
        assert not service.LabPaths.of(second).state_file.exists()
        assert not (service.LabPaths.of(second).run_dir / "hosts").exists()
        # `lab down` in the second workspace is harmless to the first lab too.
        code, out = _invoke(second.workspace, subnet, "lab", "down")
        assert code == 0, out

        assert machine.is_running(pid, "dhk-gaz-fs01")
        assert [h.state for h in service.status(first)] == ["up"]
        login = f"root@{lab.hosts['dhk-gaz-fs01'].address}"
        proc = subprocess.run(
            ["ssh", *ssh_options(first.workspace / "inventories" / "lab"), login, "hostname"],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert proc.stdout.strip() == "dhk-gaz-fs01", proc.stderr
    finally:
        service.down(second)
        service.down(first)
    assert service.leftovers(first) == []
