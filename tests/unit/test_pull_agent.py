"""The pull agent on this machine: it applies only bundles that verify, keeps the last
good one in force, queues results offline and uploads them over HTTPS to a server the
department CA vouches for. Real ssh-keygen, real ansible-playbook -c local."""

from __future__ import annotations

import base64
import http.server
import importlib.util
import json
import os
import shutil
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from provision.bundles import build_bundles, init_key, key_info
from provision.bundles.archive import pack, unpack
from provision.infra import crypto
from provision.settings import Settings
from tests.helpers.bundles import debian_ansible_playbook, demo_workspace, pull_workspace, set_demo
from tests.helpers.workspace import REPO

AGENT_DIR = REPO / "playbooks" / "roles" / "pull_agent" / "files"
PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")


def _load_agent() -> ModuleType:
    path = AGENT_DIR / "provision_pull_agent.py"
    spec = importlib.util.spec_from_file_location("pull_agent", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


agent_module = _load_agent()


@pytest.fixture
def demo(tmp_path: Path) -> tuple[Settings, Path]:
    target = tmp_path / "demo.txt"
    settings = demo_workspace(tmp_path, target)
    init_key(settings)
    return settings, target


def _agent(settings: Settings, tmp_path: Path, **over: Any) -> Any:
    config = {
        "host": "pc1",
        "bundle": "lab_pc.khu_014",
        "server": "",
        "allowed_signers": str(key_info(settings).allowed_signers_path),
        "state_dir": str(tmp_path / "agent-state"),
        "ansible_playbook": str(PLAYBOOK),
        "callback_dir": str(AGENT_DIR / "callback"),
        **over,
    }
    return agent_module.Agent(config)


def _bundle(settings: Settings, **kwargs: Any) -> bytes:
    result = build_bundles(settings, "pc1", **kwargs)
    return result.bundles[0].path.read_bytes()


def _results(agent: Any) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(agent.outbox.glob("*.json"))]


def test_a_good_bundle_is_applied_and_its_result_queued(
    demo: tuple[Settings, Path], tmp_path: Path
) -> None:
    settings, target = demo
    agent = _agent(settings, tmp_path)
    assert agent.apply(datetime.now(UTC), offline=True) == 2  # nothing held yet
    assert agent.accept(_bundle(settings), datetime.now(UTC))
    assert agent.apply(datetime.now(UTC), offline=True) == 0
    assert target.read_text() == "one\n"
    (result,) = _results(agent)
    assert result["host"] == "pc1" and result["serial"] == 1 and result["status"] == "ok"
    assert result["changed"] == 1 and result["failed"] == 0 and result["offline"] is True
    (task,) = [t for t in result["tasks"] if t["action"].endswith("copy")]
    assert task["status"] == "changed" and task["tags"] == ["pull_demo"]
    evidence = result["evidence"]
    assert evidence["os_release"]["id"] and result["collected_at"] == evidence["collected_at"]
    assert json.loads(agent.applied.read_text())["serial"] == 1
    # Applied again: nothing to change (the role is idempotent), a second result queued.
    assert agent.apply(datetime.now(UTC), offline=True) == 0
    assert [r["changed"] for r in _results(agent)] == [1, 0]


def test_every_bad_bundle_is_refused_and_the_good_one_stays(
    demo: tuple[Settings, Path], tmp_path: Path
) -> None:
    settings, target = demo
    agent = _agent(settings, tmp_path)
    now = datetime.now(UTC)
    assert agent.accept(_bundle(settings), now)
    agent.apply(now, offline=True)
    held = agent.held.read_bytes()

    set_demo(settings, target, "two")
    newer = _bundle(settings)  # serial 2
    members = unpack(newer)
    name = "content/inventory.json"
    members[name] = members[name].replace(b'"two"', b'"evil"')
    tampered = pack(members, 0)
    other, _ = pull_workspace(tmp_path / "other")
    init_key(other)
    (other.workspace / "playbooks").unlink()
    shutil.copytree(settings.workspace / "playbooks", other.workspace / "playbooks")
    shutil.copytree(settings.inventory_path / "group_vars", other.inventory_path / "group_vars")
    foreign = _bundle(other, serial=5)
    expired = _bundle(settings, now=now - timedelta(days=3), valid_days=1)
    for bad, why in (
        (tampered, "does not match its checksum"),
        (foreign, "signature"),
        (expired, "expired"),
        (b"not a bundle", "not a whole .tar.gz"),
    ):
        assert not agent.accept(bad, now), why
        assert why in agent.refusals.read_text().splitlines()[-1]
        assert agent.held.read_bytes() == held
    agent.apply(now, offline=True)
    assert target.read_text() == "one\n"  # the last good bundle is still enforced

    assert agent.accept(newer, now)
    agent.apply(now, offline=True)
    assert target.read_text() == "two\n"
    assert not agent.accept(held, now)  # serial 1 after 2: a rollback
    assert "older than 2" in agent.refusals.read_text().splitlines()[-1]
    assert json.loads(agent.applied.read_text())["serial"] == 2


# -- over HTTPS, as from a field server --------------------------------------------------


class _Server:
    def __init__(self, root: Path, token: str) -> None:
        self.root = root
        self.token = token
        self.uploads: dict[str, bytes] = {}


def _handler(state: _Server) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            path = state.root / self.path.lstrip("/")
            if not path.is_file():
                self.send_error(404)
                return
            body = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_PUT(self) -> None:
            parts = self.path.strip("/").split("/")
            expected = "Basic " + base64.b64encode(f"{parts[1]}:{state.token}".encode()).decode()
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Authorization") != expected:
                self.send_error(401)
                return
            state.uploads[self.path] = body
            self.send_response(201)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


@pytest.fixture
def field_server(tmp_path: Path) -> Iterator[tuple[_Server, int, Path]]:
    ca = crypto.new_root_ca("Test CA", "Test", 2)
    leaf = crypto.issue_server_certificate(ca, ["localhost"], 2)
    (tmp_path / "ca.crt").write_bytes(ca.cert_pem)
    (tmp_path / "chain.pem").write_bytes(leaf.cert_pem + ca.cert_pem)
    (tmp_path / "key.pem").write_bytes(leaf.key_pem)
    state = _Server(tmp_path / "www", "s3cret-token")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "chain.pem", tmp_path / "key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, server.server_address[1], tmp_path / "ca.crt"
    finally:
        server.shutdown()
        server.server_close()


def _publish(state: _Server, data: bytes, serial: int) -> None:
    folder = state.root / "bundles" / "lab_pc.khu_014"
    folder.mkdir(parents=True, exist_ok=True)
    name = f"lab_pc.khu_014.{serial:06d}.tar.gz"
    (folder / name).write_bytes(data)
    (folder / "latest.json").write_text(json.dumps({"serial": serial, "file": name}))


def test_fetch_apply_upload_and_offline_queue(
    demo: tuple[Settings, Path], tmp_path: Path, field_server: tuple[_Server, int, Path]
) -> None:
    settings, target = demo
    state, port, ca_file = field_server
    token = tmp_path / "token"
    token.write_text("s3cret-token\n")
    agent = _agent(
        settings,
        tmp_path,
        server=f"https://localhost:{port}",
        ca_file=str(ca_file),
        upload_token_file=str(token),
    )
    _publish(state, _bundle(settings), 1)
    assert agent.run() == 0
    assert target.read_text() == "one\n"
    (uploaded,) = state.uploads.values()
    assert json.loads(uploaded)["serial"] == 1 and json.loads(uploaded)["offline"] is False
    assert not list(agent.outbox.glob("*.json"))  # sent, not queued

    # A server the department CA does not vouch for is no server: offline, held applied.
    untrusted = _agent(
        settings, tmp_path, server=f"https://localhost:{port}", upload_token_file=str(token)
    )
    assert untrusted.fetch() is None

    # A wrong token: the result stays queued.
    token.write_text("guess\n")
    set_demo(settings, target, "two")
    _publish(state, _bundle(settings), 2)
    assert agent.run() == 0 and target.read_text() == "two\n"
    assert len(list(agent.outbox.glob("*.json"))) == 1 and len(state.uploads) == 1
    token.write_text("s3cret-token\n")
    assert agent.upload() == 1 and len(state.uploads) == 2


def test_fetch_alone_holds_a_good_bundle_and_refuses_a_bad_one_applying_nothing(
    demo: tuple[Settings, Path], tmp_path: Path, field_server: tuple[_Server, int, Path]
) -> None:
    settings, target = demo
    state, port, ca_file = field_server
    agent = _agent(settings, tmp_path, server=f"https://localhost:{port}", ca_file=str(ca_file))
    config = tmp_path / "agent.json"
    config.write_text(
        json.dumps({**_config(agent), "server": agent.server, "ca_file": str(ca_file)})
    )

    def fetch() -> int:
        return int(agent_module.main(["--config", str(config), "fetch"]))

    good = _bundle(settings)
    _publish(state, good, 1)
    assert fetch() == 0
    assert agent.held.read_bytes() == good
    assert not target.exists() and not agent.applied.exists()  # fetched, nothing applied
    members = unpack(_bundle(settings))
    members["content/inventory.json"] += b" "
    _publish(state, pack(members, 0), 2)
    assert fetch() == 1
    assert "refused fetched bundle" in agent.refusals.read_text().splitlines()[-1]
    assert agent.held.read_bytes() == good
    (state.root / "bundles" / "lab_pc.khu_014" / "latest.json").unlink()
    assert fetch() == 2  # nothing to fetch: as offline


def _config(agent: Any) -> dict[str, Any]:
    return {
        "host": agent.host,
        "bundle": agent.bundle,
        "allowed_signers": str(agent.allowed_signers),
        "state_dir": str(agent.state),
    }


def test_the_agent_and_the_lab_pc_content_work_with_debian_12s_ansible_core(
    demo: tuple[Settings, Path], tmp_path: Path
) -> None:
    """A PC applies bundles with the ansible-core its field server's package cache
    gives it (Debian 12's 2.14): the agent's callback and the roles must work there."""
    playbook = debian_ansible_playbook()
    if playbook is None:
        pytest.skip("Debian 12's ansible-core could not be fetched with apt-get download")
    version = subprocess.run([str(playbook), "--version"], capture_output=True, text=True)
    assert "core 2.14." in version.stdout
    for name in ("lab_pcs.yml", "pull_agents.yml", "compliance.yml"):
        check = subprocess.run(
            [str(playbook), "-i", "localhost,", "--syntax-check", f"playbooks/{name}"],
            cwd=REPO,
            env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")},
            capture_output=True,
            text=True,
            check=False,
        )
        assert check.returncode == 0, check.stderr
    settings, target = demo
    agent = _agent(settings, tmp_path, ansible_playbook=str(playbook))
    assert agent.accept(_bundle(settings), datetime.now(UTC))
    assert agent.apply(datetime.now(UTC), offline=True) == 0
    assert target.read_text() == "one\n"
    (result,) = _results(agent)
    assert result["changed"] == 1 and result["evidence"]["os_release"]["id"]
