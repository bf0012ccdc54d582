"""Results that PCs in pull mode queued: read from their files, recorded once (an apply
uploaded or collected twice is one row, one host result in the run of its serial), and
their evidence judged at the PC's own collection time."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from provision.access import keys
from provision.errors import InputError
from provision.infra.store import open_store
from provision.infra.store.pull_records import Apply, PullRecords
from provision.model.pull import (
    BadResult,
    is_pull_mode,
    keep_window,
    new_results,
    parse_result,
    result_key,
)
from provision.pull.collect import collect_files, plan_collect
from provision.settings import Settings
from tests.helpers.bundles import pull_workspace
from tests.helpers.pulled import file_name, result_file

NOW = datetime.now(UTC).replace(microsecond=123456)


def test_a_result_file_reads_as_the_agent_wrote_it() -> None:
    collected = NOW - timedelta(hours=3)
    result = parse_result(
        result_file("pc1", 4, collected, changed=1, offline=True), host="pc1", name="a.json"
    )
    assert result.host == "pc1" and result.serial == 4 and result.bundle == "lab_pc.khu_014"
    assert result.collected_at == collected  # the PC's time, to the microsecond
    assert result.offline is True and result.status == "ok" and result.changed == 1
    assert result.standard_id == "bd-ict-baseline" and result.standard_version == "1.0"
    assert result.evidence is not None and result.evidence["os_release"]["id"] == "debian"
    assert result.counts()["changed"] == 1 and result.counts()["ok"] == 2
    failed = parse_result(result_file("pc1", 4, collected, status="failed"), host="pc1", name="b")
    assert failed.failed_task is not None and failed.failed_task.task == "Ensure the lab packages"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (result_file("pc2", 1, NOW), "names host 'pc2' but came from pc1's outbox"),
        (result_file("pc1", 1, NOW, format=2), "format 2 is not 1"),
        (result_file("pc1", 0, NOW), "'serial' 0 is not a bundle serial"),
        (result_file("pc1", 1, NOW).replace(b'"serial": 1', b'"serial": "7"'), "not a whole"),
        (result_file("pc1", 1, NOW, collected_at="soon"), "'collected_at' is not a time"),
        (result_file("pc1", 1, NOW, status="great"), "neither ok nor failed"),
        (result_file("pc1", 1, NOW, evidence=[1]), "'evidence' is not an object"),
    ],
)
def test_a_file_that_is_not_a_result_is_refused_saying_why(data: bytes, reason: str) -> None:
    with pytest.raises(BadResult, match=reason.replace("(", r"\(")):
        parse_result(data, host="pc1", name="x.json")


def test_new_results_keeps_each_apply_once_oldest_first() -> None:
    early, late = NOW - timedelta(days=2), NOW - timedelta(days=1)
    one = parse_result(result_file("pc1", 2, late), host="pc1", name=file_name(late, 2))
    # The same apply uploaded again under another name is the same apply.
    again = parse_result(result_file("pc1", 2, late), host="pc1", name="copy.json")
    older = parse_result(result_file("pc1", 1, early), host="pc1", name=file_name(early, 1))
    known = parse_result(result_file("pc2", 1, early), host="pc2", name="k.json")
    fresh = new_results([one, again, known, older], {result_key("pc2", 1, early)})
    assert [(r.host, r.serial) for r in fresh] == [("pc1", 1), ("pc1", 2)]


def test_pull_mode_and_its_keep_last_window_come_from_inventory_vars() -> None:
    assert is_pull_mode({"provision_pull_mode": True})
    assert is_pull_mode({"provision_pull_mode": "yes"})
    assert not is_pull_mode({}) and not is_pull_mode({"provision_pull_mode": False})
    assert keep_window({}) == timedelta(days=14)
    assert keep_window({"provision_pull_keep_days": 3}) == timedelta(days=3)
    assert keep_window({"provision_pull_keep_days": "1.5"}) == timedelta(hours=36)
    for bad in (0, -2, "soon", True, [3], "nan"):
        with pytest.raises(ValueError, match="provision_pull_keep_days"):
            keep_window({"provision_pull_keep_days": bad})


def _apply(host: str, serial: int, when: datetime, **over: object) -> Apply:
    data = result_file(host, serial, when, **over)  # type: ignore[arg-type]
    return Apply(parse_result(data, host=host, name=file_name(when, serial)), server="fs1")


def test_the_store_records_each_apply_once_in_the_run_of_its_serial(tmp_path: Path) -> None:
    settings, _ = pull_workspace(tmp_path)
    first, second, third = (NOW - timedelta(hours=h) for h in (30, 20, 10))
    with open_store(settings) as store:
        records = PullRecords(store)
        kwargs = {"env": "lab", "user": "ops", "node": "control"}
        assert records.record([_apply("pc1", 1, first), _apply("pc2", 1, first)], **kwargs) == 2
        # Collected again (and once more in the same batch): nothing new.
        assert records.record([_apply("pc1", 1, first), _apply("pc1", 1, first)], **kwargs) == 0
        assert (
            records.record(
                [_apply("pc1", 1, second, status="failed"), _apply("pc1", 2, third, changed=3)],
                **kwargs,
            )
            == 2
        )
        run1, run2 = records.run_for_serial(1), records.run_for_serial(2)
        assert run1 is not None and run2 is not None and run1 != run2
        results1 = store.host_results(run1)
        # pc1's result in serial 1's run is its newest apply of serial 1, recorded once.
        assert sorted(results1) == ["pc1", "pc2"]
        assert results1["pc1"].outcome == "failed" and results1["pc1"].finished_at == second
        assert results1["pc1"].failed_task == "Ensure the lab packages"
        assert results1["pc1"].message == "no package matched"
        assert results1["pc1"].node == "pc1"  # the host ran its own apply
        assert store.get_run(run1).kind == "pull" and store.get_run(run1).status == "failed"
        assert store.host_results(run2)["pc1"].outcome == "changed"
        assert store.get_run(run2).status == "succeeded"
        applies = records.applies("pc1")
        assert [(a.serial, a.collected_at) for a in applies] == [
            (1, first),
            (1, second),
            (2, third),
        ]
        assert records.newest(["pc1", "pc2", "pc3"]).keys() == {"pc1", "pc2"}
        assert records.newest(["pc1"])["pc1"].collected_at == third
        assert records.newest(["pc1"], before=first)["pc1"].collected_at == first


def _serve(settings: Settings) -> None:
    hosts = settings.inventory_path / "hosts.yml"
    data = yaml.safe_load(hosts.read_text())
    data["all"]["children"]["role_field_server"] = {
        "hosts": {
            "fs1": {
                "ansible_host": "10.0.0.2",
                "provision_role": "field_server",
                "bundle_server_name": "fs1.gazipur.example.bd",
            }
        }
    }
    for host in ("pc1", "pc2", "pc3"):
        values = data["all"]["children"]["role_lab_pc"]["hosts"][host]
        values["provision_pull_mode"] = True
        values["pull_agent_server"] = "https://fs1.gazipur.example.bd:8443"
    hosts.write_text(yaml.safe_dump(data))
    keys.generate(settings)


def test_collecting_judges_the_evidence_at_the_pcs_time_and_records_once(
    tmp_path: Path,
) -> None:
    settings, _ = pull_workspace(tmp_path)
    _serve(settings)
    plan = plan_collect(settings, "role:lab_pc")
    assert [(s.server, s.hosts) for s in plan.servers] == [("fs1", ("pc1", "pc2", "pc3"))]
    assert plan.servers[0].root == "/srv/provision-bundles" and plan.unserved == ()
    collected = NOW - timedelta(hours=5)
    files = [
        ("pc1", file_name(collected, 3), result_file("pc1", 3, collected)),
        ("pc1", "again.json", result_file("pc1", 3, collected)),  # uploaded twice
        ("pc2", "bad.json", b"{"),
        ("pc3", "other.json", result_file("pc1", 3, collected)),  # pc3 writing as pc1
    ]
    line = collect_files(settings, plan, files, server="fs1")
    assert line.recorded == 1 and line.already == 1
    assert [(r.host, r.name) for r in line.refused] == [("pc2", "bad.json"), ("pc3", "other.json")]
    assert collect_files(settings, plan, files[:1], server="fs1").recorded == 0
    with open_store(settings) as store:
        (apply,) = PullRecords(store).applies("pc1")
    assert apply.collected_at == collected  # not the upload's time, nor the collect's
    assert apply.received_at > collected and apply.server == "fs1"
    assert apply.results is not None and apply.os_release == "debian-12"
    by_id = {r.control: r for r in apply.results}
    assert by_id["OS-001"].status == "pass" and by_id["TIME-001"].status == "pass"
    assert by_id["PKG-001"].status == "no_report"  # evidence it did not bring
    assert apply.compliant is False and apply.score == 1.0


def test_plan_collect_refuses_a_selection_without_pulled_hosts(tmp_path: Path) -> None:
    settings, _ = pull_workspace(tmp_path)
    with pytest.raises(InputError, match="names no host in pull mode") as error:
        plan_collect(settings, "role:lab_pc")
    assert "provision_pull_mode" in (error.value.hint or "")
    _serve(settings)
    hosts = settings.inventory_path / "hosts.yml"
    data = yaml.safe_load(hosts.read_text())
    data["all"]["children"]["role_lab_pc"]["hosts"]["pc3"]["pull_agent_server"] = "https://x:8443"
    hosts.write_text(yaml.safe_dump(data))
    assert plan_collect(settings).unserved == ("pc3",)


def test_the_result_files_json_is_what_the_agent_writes() -> None:
    # The agent's own result (see provision_pull_agent.py) has these keys: keep them in step.
    body = json.loads(result_file("pc1", 1, NOW))
    agent = Path("playbooks/roles/pull_agent/files/provision_pull_agent.py")
    text = (Path(__file__).resolve().parents[2] / agent).read_text()
    for key in body:
        assert f'"{key}":' in text, key


def test_the_field_servers_commands_list_and_fetch_only_the_asked_outboxes(
    tmp_path: Path,
) -> None:
    import subprocess

    from provision.pull.collect import _fetch_command, _list_command, _members

    outbox = tmp_path / "outbox"
    for host, name in (("pc1", "a.json"), ("pc1", "b.json"), ("pc2", "c.json"), ("px", "d.json")):
        (outbox / host).mkdir(parents=True, exist_ok=True)
        (outbox / host / name).write_bytes(b'{"host": "%s"}' % host.encode())
    (outbox / "pc1" / "notes.txt").write_text("not a result")

    def run(command: str) -> str:
        return subprocess.run(
            ["sh", "-c", command], check=True, capture_output=True, text=True
        ).stdout

    listed = run(_list_command(str(tmp_path), ["pc1", "pc2", "pc3"])).split()
    assert sorted(listed) == ["pc1/a.json", "pc1/b.json", "pc2/c.json"]
    fetched = list(
        _members(run(_fetch_command(str(tmp_path), [("pc1", "b.json"), ("pc2", "c.json")])))
    )
    assert fetched == [("pc1", "b.json", b'{"host": "pc1"}'), ("pc2", "c.json", b'{"host": "pc2"}')]
    assert run(_list_command(str(tmp_path / "nowhere"), ["pc1"])) == ""


def test_cli_collect_says_what_it_could_not_reach_and_refuses_bad_input(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from provision.cli.main import cli

    settings, _ = pull_workspace(tmp_path)
    base = ["--workspace", str(settings.workspace), "reports", "collect"]
    runner = CliRunner()
    none = runner.invoke(cli, [*base, "role:lab_pc"])
    assert none.exit_code == 3 and "names no host in pull mode" in none.output
    _serve(settings)
    hosts = settings.inventory_path / "hosts.yml"
    data = yaml.safe_load(hosts.read_text())
    # A field server nobody answers for: a closed port on this machine.
    data["all"]["children"]["role_field_server"]["hosts"]["fs1"].update(
        ansible_host="127.0.0.1", ansible_port=1
    )
    hosts.write_text(yaml.safe_dump(data))
    keys.key_path(settings).unlink()
    nokey = runner.invoke(cli, [*base, "role:lab_pc"])
    assert nokey.exit_code == 3 and "provision keys generate" in nokey.output
    keys.generate(settings, force=True)
    down = runner.invoke(cli, [*base, "role:lab_pc", "--json"])
    assert down.exit_code == 5, down.output
    body = json.loads(down.stdout)
    assert body["recorded"] == 0 and body["servers"][0]["reachable"] is False
    assert body["servers"][0]["server"] == "fs1" and body["servers"][0]["message"]


def test_the_planner_resolves_checks_once_per_role_and_values_and_plans_as_plan_host() -> None:
    from provision.compliance.service import HostPlanner, plan_host
    from provision.standards import load_standard
    from tests.helpers.workspace import REPO

    standard = load_standard(REPO / "standards" / "bd-ict-baseline.yml")
    planner = HostPlanner(standard)
    base = {"provision_role": "lab_pc", "provision_pull_mode": True}
    one = {**base, "provision_district": "Gazipur", "provision_site_code": "S1"}
    two = {**base, "provision_district": "Khulna", "provision_pull_keep_days": 3}
    other = {**base, "hardware_pc_min_cpu_cores": 1}
    for host, values, groups in (("pc1", one, {"a"}), ("pc2", two, {"b"}), ("pc3", other, set())):
        assert planner.plan(host, values, groups) == plan_host(standard, host, values, groups)
    assert len(planner._plans) == 2  # pc1 and pc2 share one resolution
