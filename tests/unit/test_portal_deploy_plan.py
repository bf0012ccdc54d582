"""Planning a portal deploy changes nothing: certificates are issued, content unpacked and
the run's variables written only after the plan is confirmed."""

from __future__ import annotations

import tarfile
import types
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from provision.cli.main import cli
from provision.errors import ExitStatus
from provision.portal import PortalRequest, add_portal, ca, plan_deploy
from provision.portal.service import prepare_deploy
from provision.settings import Settings
from tests.helpers.portal import portal_workspace


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = portal_workspace(tmp_path)
    ca.init_ca(settings)
    with tarfile.open(settings.workspace / "sites" / "b.tar.gz", "w:gz") as tar:
        tar.add(settings.workspace / "sites" / "b" / "index.html", "index.html")
    add_portal(
        settings,
        PortalRequest(host="portal01", kind="static", content="sites/a", domain="a.gov.bd"),
    )
    add_portal(
        settings,
        PortalRequest(host="portal01", kind="static", content="sites/b.tar.gz", domain="b.gov.bd"),
    )
    ca.issue(settings, "b.gov.bd", days=5)  # due for renewal
    return settings


def _snapshot(settings: Settings) -> dict[str, bytes | None]:
    """Every file and folder under the state directory and the portal register, by path."""
    found: dict[str, bytes | None] = {}
    for root in (settings.state_path, settings.workspace / "portals"):
        for path in sorted(root.rglob("*")):
            found[str(path)] = path.read_bytes() if path.is_file() else None
    return found


def _deploy(settings: Settings, *args: str, answer: str | None = None) -> Result:
    return CliRunner().invoke(
        cli,
        ["--workspace", str(settings.workspace), "portal", "deploy", "portal01", *args],
        input=answer,
        catch_exceptions=False,
    )


def test_answering_no_leaves_the_ca_and_portal_files_as_they_were(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _snapshot(settings)
    index = ca.index_path(settings).read_bytes()
    terminal = types.SimpleNamespace(stdin=types.SimpleNamespace(isatty=lambda: True))
    monkeypatch.setattr("provision.cli.rollout.sys", terminal)
    answered = _deploy(settings, answer="n\n")
    assert answered.exit_code == 0, answered.output
    assert "start this rollout?" in answered.stderr
    assert ca.index_path(settings).read_bytes() == index
    assert _snapshot(settings) == before


def test_a_refusal_off_a_terminal_leaves_everything_as_it_was(settings: Settings) -> None:
    before = _snapshot(settings)
    refused = _deploy(settings)
    assert refused.exit_code == ExitStatus.BAD_INPUT and "--yes" in refused.stderr
    assert _snapshot(settings) == before


def test_the_plan_says_what_it_would_issue_and_prepare_does_it(settings: Settings) -> None:
    before = _snapshot(settings)
    deploy = plan_deploy(settings, "portal01")
    assert _snapshot(settings) == before
    assert not deploy.vars_file.exists()
    assert {c.domain: c.action for c in deploy.certificates} == {
        "a.gov.bd": "issue",
        "b.gov.bd": "renew",
    }
    old_b = ca.cert_status(settings, "b.gov.bd")
    assert old_b is not None

    done = prepare_deploy(settings, deploy)

    assert {c.domain: c.action for c in done} == {"a.gov.bd": "issued", "b.gov.bd": "renewed"}
    data = yaml.safe_load(deploy.vars_file.read_text())["provision_portals"]["portal01"]
    entries = {e["domain"]: e for e in data}
    assert Path(entries["a.gov.bd"]["tls_cert"]).is_file()
    assert Path(entries["b.gov.bd"]["content"], "index.html").read_text() == "site b\n"
    renewed = ca.cert_status(settings, "b.gov.bd")
    assert renewed is not None and renewed.serial != old_b.serial
    assert str(renewed.chain_path.resolve()) == entries["b.gov.bd"]["tls_cert"]
    # A second plan finds nothing to issue.
    assert {c.action for c in plan_deploy(settings, "portal01").certificates} == {"keep"}
