"""Preflight without hosts: minimums from the standard, the store, `show` and `list`.

SSH itself is replaced by a fake `ssh.connect` that answers the probe as a host
would (or fails as an unreachable one does); everything after it is the real
code: parsing, the comparison with the standard's minimum, the store, the CLI.
The sweep against real hosts is tests/integration/test_preflight.py.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner

from provision.access import preflight
from provision.cli.main import cli
from provision.errors import ExitStatus, InputError, StateError
from provision.infra import ssh
from provision.infra.store import open_store
from provision.infra.store.preflight_records import PreflightRecords
from provision.infra.store.preflight_tables import preflight_results
from provision.model.preflight import HostPreflight
from provision.settings import Settings, load_settings
from tests.helpers.workspace import REPO

#: What each fake host has: cores, memory (kB), root disk (kB); None: it does not answer.
FLEET: dict[str, tuple[int, int, int] | None] = {
    "pc1": (4, 8 * 1024 * 1024, 200 * 1024**2),  # a good lab PC
    "pc2": (2, 2 * 1024 * 1024, 200 * 1024**2),  # 2 GB: below the PC minimum
    "fs1": (8, 16 * 1024 * 1024, 500 * 1024**2),  # a good field server
    "fs2": None,  # away
    "pr1": (1, 512 * 1024, 8 * 1024**2),  # a printer: no standard speaks of it
}


def _write_workspace(root: Path) -> Settings:
    folder = root / "inventories" / "t"
    (folder / "group_vars").mkdir(parents=True)
    (folder / "host_vars").mkdir()
    (root / "standards").mkdir()
    shutil.copy(REPO / "standards" / "bd-ict-baseline.yml", root / "standards")
    (root / "provision.yml").write_text("---\nenv: t\n")

    def host(n: int, role: str, district: str) -> dict[str, Any]:
        return {
            "ansible_host": f"10.9.0.{n}",
            "provision_role": role,
            "provision_district": district,
        }

    hosts = {
        "all": {
            "children": {
                "role_lab_pc": {
                    "hosts": {
                        "pc1": host(1, "lab_pc", "Gazipur"),
                        "pc2": host(2, "lab_pc", "Gazipur"),
                    }
                },
                "role_field_server": {
                    "hosts": {
                        "fs1": host(3, "field_server", "Khulna"),
                        "fs2": host(4, "field_server", "Khulna"),
                    }
                },
                "role_printer": {"hosts": {"pr1": host(5, "printer", "Khulna")}},
            }
        }
    }
    (folder / "hosts.yml").write_text(yaml.safe_dump(hosts))
    return load_settings(workspace=root, environ={})


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return _write_workspace(tmp_path / "ws")


class _FakeConnection:
    def __init__(self, figures: tuple[int, int, int]) -> None:
        self.figures = figures
        self.tcp_seconds = 0.004

    def run(self, command: str, *, timeout: float = 60) -> ssh.CommandResult:
        assert command == preflight.PROBE
        cores, mem_kb, disk_kb = self.figures
        out = (
            "os=Debian GNU/Linux 12 (bookworm)\n"
            f"cores={cores}\nmem_kb={mem_kb}\ndisk_kb={disk_kb}\n"
        )
        return ssh.CommandResult(0, out, "")


@pytest.fixture
def fake_ssh(monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[int, int, int] | None]:
    fleet = dict(FLEET)

    @contextlib.contextmanager
    def connect(address: str, *, host: str, **_: Any) -> Iterator[_FakeConnection]:
        figures = fleet[host]
        if figures is None:
            raise ssh.SshError("timeout", f"{host} ({address}): no answer within 5s")
        yield _FakeConnection(figures)

    monkeypatch.setattr(ssh, "connect", connect)
    return fleet


# -- minimums from the standard ----------------------------------------------------


def test_minimum_is_the_standards_hardware_check_of_the_role(settings: Settings) -> None:
    by_host = {t.host: t.minimum for t in preflight.targets(settings, None)}
    assert by_host["pc1"] == preflight.Minimum(2, 3500, 100, "HW-001")
    assert by_host["fs1"] == preflight.Minimum(4, 7500, 450, "HW-002")
    assert by_host["pr1"] is None  # no control speaks of printers


def test_inventory_overrides_count_group_then_host(settings: Settings) -> None:
    folder = settings.inventory_path
    (folder / "group_vars" / "role_lab_pc.yml").write_text("hardware_pc_min_memory_mb: 7000\n")
    (folder / "host_vars" / "pc2.yml").write_text("hardware_pc_min_memory_mb: 1000\n")
    by_host = {t.host: t.minimum for t in preflight.targets(settings, None)}
    assert by_host["pc1"] is not None and by_host["pc1"].memory_mb == 7000
    assert by_host["pc2"] is not None and by_host["pc2"].memory_mb == 1000


def test_a_bad_override_is_one_error_naming_its_file(settings: Settings) -> None:
    bad = settings.inventory_path / "group_vars" / "role_lab_pc.yml"
    bad.write_text("hardware_pc_min_cpu_cores: many\n")
    with pytest.raises(InputError, match=r"role_lab_pc\.yml.*hardware_pc_min_cpu_cores"):
        preflight.targets(settings, None)


def test_changing_the_standard_changes_the_minimum(settings: Settings) -> None:
    path = settings.workspace / "standards" / "bd-ict-baseline.yml"
    text = path.read_text()
    marker = "      hardware_field_server_min_cpu_cores:\n        type: int\n        default: 4\n"
    assert marker in text
    path.write_text(text.replace(marker, marker.replace("default: 4", "default: 12")))
    fs1 = next(t for t in preflight.targets(settings, "fs1"))
    assert fs1.minimum is not None and fs1.minimum.cpu_cores == 12


def test_no_standard_means_no_minimum(settings: Settings) -> None:
    shutil.rmtree(settings.workspace / "standards")
    assert all(t.minimum is None for t in preflight.targets(settings, None))


def test_strictest_figure_wins_when_two_controls_apply(settings: Settings) -> None:
    extra = settings.workspace / "standards" / "labs-extra.yml"
    extra.write_text(
        "---\nformat: 1\nid: labs-extra\nversion: '1'\ntitle: Extra for lab PCs\n"
        "roles: [lab_pc]\nos_releases: [debian-12]\ncontrols:\n"
        "  - id: LABX-001\n    title: Lab PCs have more cores\n    rationale: Video lessons.\n"
        "    severity: low\n    applies_to: {roles: [lab_pc]}\n"
        "    check: {type: hardware, cpu_cores: 6}\n"
    )
    pc1 = next(t for t in preflight.targets(settings, "pc1"))
    assert pc1.minimum == preflight.Minimum(6, 3500, 100, "HW-001,LABX-001")


# -- the sweep, recorded ---------------------------------------------------------------


def test_sweep_compares_with_the_minimum_and_records_every_host(
    settings: Settings, fake_ssh: object
) -> None:
    result = preflight.sweep(settings, None)
    by_host = {h.host: h for h in result.hosts}
    assert by_host["pc1"].meets_minimum is True and by_host["pc1"].minimum_control == "HW-001"
    assert by_host["pc2"].meets_minimum is False
    assert by_host["pc2"].shortfalls == ("memory_mb 2048 < 3500",)
    assert by_host["fs2"].status == "timeout" and by_host["fs2"].meets_minimum is None
    assert by_host["pr1"].meets_minimum is None
    assert result.exit_status == ExitStatus.HOSTS_UNREACHABLE
    districts = {d.district: d for d in result.districts}
    assert (districts["Gazipur"].hosts, districts["Gazipur"].below_minimum) == (2, 1)
    assert (districts["Khulna"].reachable, districts["Khulna"].unreachable) == (2, 1)
    # What the store holds is what the sweep saw, host by host.
    assert result.sweep is not None and result.sweep.status == "done"
    again = preflight.recorded(settings, result.sweep.id)
    assert again.hosts == result.hosts
    assert again.districts == result.districts
    assert result.sweep.hosts == 5 and result.sweep.reachable == 4


def test_results_reach_the_store_as_hosts_answer(
    settings: Settings, fake_ssh: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C in the middle keeps the answers so far, and the sweep says it was cut short."""
    monkeypatch.setattr(preflight, "SAVE_BATCH", 1)
    seen: list[str] = []

    def on_host(h: preflight.HostPreflight) -> None:
        seen.append(h.host)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        preflight.sweep(settings, None, concurrency=1, on_host=on_host)
    last = preflight.recorded(settings)
    assert last.sweep is not None and last.sweep.status == "interrupted"
    assert sorted(h.host for h in last.hosts) == sorted(seen)
    assert last.sweep.hosts == 5


def test_answers_are_stored_while_a_slow_host_is_still_awaited(
    settings: Settings, fake_ssh: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four hosts answer at once, the fifth only when the test lets it: the four are in
    the store before then, though no new answer arrives to trigger a save."""
    released = threading.Event()
    fake = ssh.connect

    @contextlib.contextmanager
    def connect(address: str, *, host: str, **kwargs: Any) -> Iterator[object]:
        if host == "fs1":
            assert released.wait(120), "never released"
        with fake(address, host=host, **kwargs) as conn:
            yield conn

    monkeypatch.setattr(ssh, "connect", connect)
    # The store made first: its creation is not raced by the test's reads below.
    with open_store(settings):
        pass
    done: list[preflight.PreflightResult] = []
    sweeping = threading.Thread(target=lambda: done.append(preflight.sweep(settings, None)))
    sweeping.start()
    try:

        def stored() -> set[str]:
            try:
                return {h.host for h in preflight.recorded(settings).hosts}
            except StateError:
                return set()

        deadline = time.monotonic() + 60
        while stored() != {"pc1", "pc2", "fs2", "pr1"} and time.monotonic() < deadline:
            time.sleep(0.1)
        assert stored() == {"pc1", "pc2", "fs2", "pr1"}
        running = preflight.recorded(settings).sweep
        assert running is not None and running.status == "running"
    finally:
        released.set()
        sweeping.join(120)
    assert done and done[0].sweep is not None and done[0].sweep.status == "done"
    assert len(preflight.recorded(settings).hosts) == 5


def test_sweep_without_save_writes_nothing(settings: Settings, fake_ssh: object) -> None:
    preflight.sweep(settings, None, save=False)
    assert not (settings.state_path / "state.db").exists()


def test_latest_sweep_is_per_env_and_unknown_ones_are_clear(
    settings: Settings, fake_ssh: object
) -> None:
    with pytest.raises(StateError, match="no preflight sweep has been recorded"):
        preflight.recorded(settings)
    first = preflight.sweep(settings, "role_lab_pc")
    second = preflight.sweep(settings, "fs1")
    assert first.sweep and second.sweep and second.sweep.id > first.sweep.id
    latest = preflight.recorded(settings)
    assert latest.sweep is not None and latest.sweep.id == second.sweep.id
    assert [h.host for h in latest.hosts] == ["fs1"]
    assert [s.id for s in preflight.history(settings)] == [second.sweep.id, first.sweep.id]
    with pytest.raises(StateError, match="no preflight sweep 999"):
        preflight.recorded(settings, 999)


def test_records_keep_the_last_answer_of_a_host(settings: Settings) -> None:
    with open_store(settings) as store:
        records = PreflightRecords(store)
        sweep_id = records.add_sweep(env="t", selection="", user="u", node="n", hosts=1)
        base = HostPreflight("pc1", "10.9.0.1", "lab_pc", "Gazipur", "timeout", "slow")
        records.add_results(sweep_id, [base])
        answer = HostPreflight("pc1", "10.9.0.1", "lab_pc", "Gazipur", "reachable", cpu_cores=4)
        records.add_results(sweep_id, [answer])
        (only,) = records.sweep_results(sweep_id)
        assert (only.status, only.cpu_cores) == ("reachable", 4)
        with store.engine.connect() as conn:
            assert (
                conn.execute(sa.select(sa.func.count()).select_from(preflight_results)).scalar()
                == 1
            )
        with pytest.raises(ValueError):
            records.finish_sweep(sweep_id, "exploded")


# -- the command line ---------------------------------------------------------------


def test_cli_sweeps_by_default_then_shows_and_lists(settings: Settings, fake_ssh: object) -> None:
    base = ["--workspace", str(settings.workspace)]
    runner = CliRunner()
    swept = runner.invoke(cli, [*base, "preflight", "role_lab_pc", "--hosts"])
    assert swept.exit_code == 0, swept.output
    assert "memory_mb 2048 < 3500" in swept.output and "sweep 1 (t" in swept.output
    down = runner.invoke(cli, [*base, "preflight", "--timeout", "1"])
    assert down.exit_code == ExitStatus.HOSTS_UNREACHABLE, down.output
    assert "fs2" in down.output and "Khulna" in down.output

    shown = runner.invoke(cli, [*base, "preflight", "show", "--json"])
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    assert data["sweep"]["id"] == 2 and len(data["hosts"]) == 5
    assert {d["district"] for d in data["districts"]} == {"Gazipur", "Khulna"}
    first = runner.invoke(cli, [*base, "preflight", "show", "1"])
    assert first.exit_code == 0 and "Gazipur" in first.output and "Khulna" not in first.output
    listed = runner.invoke(cli, [*base, "preflight", "list", "--json"])
    assert [s["id"] for s in json.loads(listed.stdout)] == [2, 1]
    assert json.loads(listed.stdout)[0]["reachable"] == 4
    missing = runner.invoke(cli, [*base, "preflight", "show", "7"])
    assert missing.exit_code == ExitStatus.BAD_INPUT
    assert "no preflight sweep 7" in missing.output and "Traceback" not in missing.output


def test_merged_host_variables_agree_with_the_layers_read_one_by_one(settings: Settings) -> None:
    """The sweep resolves parameters from the inventory slice (fast); the standards'
    own `host_layers` read file by file must give every host the same minimum."""
    from provision.inventory.targets import select_targets
    from provision.standards import control_parameters, host_layers, resolve_parameters

    folder = settings.inventory_path
    (folder / "group_vars" / "all.yml").write_text("hardware_field_server_min_disk_gb: 300\n")
    (folder / "group_vars" / "role_lab_pc.yml").write_text("hardware_pc_min_memory_mb: 7000\n")
    (folder / "host_vars" / "pc2.yml").write_text("hardware_pc_min_memory_mb: 1000\n")
    standards = preflight.workspace_standards(settings)
    loaded, _ = select_targets(folder, None)
    for target in preflight.targets(settings, None):
        expected: dict[str, int] = {}
        for standard in standards:
            for control in standard.applicable(target.role):
                if any(c.type == "hardware" for c in control.checks):
                    names = control_parameters(control)
                    layers = host_layers(loaded, target.host)
                    for name, p in resolve_parameters(standard, layers, names).items():
                        expected[name.rsplit("_min_", 1)[1]] = p.value
        got = target.minimum
        if not expected:
            assert got is None, target
            continue
        assert got is not None
        assert (got.cpu_cores, got.memory_mb, got.disk_gb) == (
            expected["cpu_cores"],
            expected["memory_mb"],
            expected["disk_gb"],
        ), target.host


def test_a_host_without_a_role_has_no_minimum(settings: Settings) -> None:
    hosts = settings.inventory_path / "hosts.yml"
    data = yaml.safe_load(hosts.read_text())
    del data["all"]["children"]["role_printer"]["hosts"]["pr1"]["provision_role"]
    hosts.write_text(yaml.safe_dump(data))
    pr1 = next(t for t in preflight.targets(settings, "pr1"))
    assert pr1.role == "" and pr1.minimum is None
