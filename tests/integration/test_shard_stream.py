"""One shard through ansible-runner's real transmit | worker streaming, on this machine.

The shard's transmit stream is built by `runner.transmit_job`, run by the real
`ansible-runner worker` (the node's half, here with local connections instead
of SSH to sites), and its output stream read by `StreamParser` in cut-up
chunks, as a follow over a bad link would deliver it. The vault password
reaches the worker as a file apart from the private data dir (on a tmpfs on a
node), never inside the stream; the decrypted canary is masked before anything on the control node
sees it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from provision.infra import node_mask, runner, streaming
from provision.infra.masking import MASK, Masker
from provision.infra.streaming import StreamParser

PASSWORD = "shard-vault-password-7Q2"
CANARY = "canary-value-9F3K-never-on-disk"

PLAYBOOK = """\
- name: Shard
  hosts: all
  gather_facts: false
  vars_files: [canary.yml]
  tasks:
    - name: Say the canary
      ansible.builtin.debug:
        msg: "{{ canary }}"
    - name: Do a thing
      ansible.builtin.command: "true"
      changed_when: false
"""


def _bin(name: str) -> Path:
    path = Path(sys.executable).parent / name
    if not path.is_file():
        pytest.skip(f"{name} is not installed beside this Python")
    return path


def _workspace(tmp_path: Path) -> Path:
    workspace = tmp_path / "ws"
    playbooks = workspace / "playbooks"
    playbooks.mkdir(parents=True)
    (playbooks / "shard.yml").write_text(PLAYBOOK, encoding="utf-8")
    secret = tmp_path / "password"
    secret.write_text(PASSWORD, encoding="utf-8")
    vaulted = subprocess.run(
        [
            str(_bin("ansible-vault")),
            "encrypt_string",
            "--vault-password-file",
            str(secret),
            CANARY,
            "--name",
            "canary",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (playbooks / "canary.yml").write_text(vaulted, encoding="utf-8")
    secret.unlink()
    return workspace


def _inventory(hosts: list[str]) -> dict[str, Any]:
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    return {"all": {"hosts": {h: dict(local) for h in hosts}}}


def test_a_shard_streams_through_the_real_worker_and_no_secret_travels(tmp_path: Path) -> None:
    worker_bin = _bin("ansible-runner")
    workspace = _workspace(tmp_path)
    job_dir = tmp_path / "node" / "job"
    job_dir.mkdir(parents=True)
    control = tmp_path / "control"
    control.mkdir()
    hosts = ["site-a", "site-b", "site-c"]
    stream = runner.transmit_job(
        workspace / "playbooks" / "shard.yml",
        workspace=workspace,
        folder=control,
        inventory=_inventory(hosts),
        node_job_dir=PurePosixPath(job_dir),
        node_home=PurePosixPath(Path.home()),
        node_bin=PurePosixPath(worker_bin.parent),
        vault=True,
    )
    sent = stream.read_bytes()
    assert PASSWORD.encode() not in sent and CANARY.encode() not in sent
    assert list(control.iterdir()) == [stream]  # only the stream is left behind

    # The node's half: the secret apart, the worker reading the stream from a file.
    secret = Path(streaming.secret_file(PurePosixPath(job_dir)))
    secret.write_text(PASSWORD + "\n", encoding="utf-8")
    out = job_dir / "out"
    try:
        with stream.open("rb") as job_in, out.open("wb") as job_out:
            subprocess.run(
                [
                    str(worker_bin),
                    "worker",
                    "--private-data-dir",
                    str(job_dir / "pdd"),
                    "--keepalive-seconds",
                    "1",
                ],
                stdin=job_in,
                stdout=job_out,
                check=True,
                timeout=300,
            )
    finally:
        secret.unlink(missing_ok=True)
    data = out.read_bytes()
    # What the worker wrote holds the canary a task said, in clear; nothing else of
    # the job's folder does (the worker keeps no event files of its own).
    assert CANARY.encode() in data
    held = [
        p for p in (job_dir / "pdd").rglob("*") if p.is_file() and CANARY.encode() in p.read_bytes()
    ]
    assert held == []
    # On a node the output goes through the job's filter: masked, and the same stream.
    values = tmp_path / "mask"
    values.write_text(json.dumps(list(Masker.of([CANARY]).values)))
    filtered = subprocess.run(
        [sys.executable, "-c", Path(node_mask.__file__).read_text(), str(values)],
        input=data,
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout
    assert CANARY.encode() not in filtered and MASK.encode() in filtered
    keys: dict[str, list[tuple[int, str]]] = {}
    for name, stream_bytes in (("raw", data), ("filtered", filtered)):
        seen: list[tuple[int, str]] = []
        check = StreamParser(on_event=lambda e, seen=seen: seen.append((e["counter"], e["uuid"])))
        check.feed(stream_bytes)
        assert check.eof and check.status == "successful", name
        keys[name] = seen
    assert keys["raw"] == keys["filtered"] and keys["raw"]

    masker = Masker.of([CANARY])
    events: list[dict[str, Any]] = []

    def on_event(raw: dict[str, Any]) -> None:
        masker.scrub(raw)
        events.append(raw)

    parser = StreamParser(on_event=on_event)
    half = len(data) // 2
    parser.feed(data[:half])  # the link drops here, mid-line most likely
    replay = StreamParser(on_event=on_event, seen=set(parser.seen))
    replay.feed(data[parser.offset :])  # follow again from the last whole line
    assert replay.eof and replay.status == "successful"

    keys = [(e["counter"], e["uuid"]) for e in events]
    assert len(keys) == len(set(keys))
    recap = [e for e in events if e["event"] == "playbook_on_stats"]
    assert len(recap) == 1
    stats = runner.stats_of(recap[0]["event_data"])
    assert sorted(stats) == hosts and all(s.ok == 2 for s in stats.values())
    per_host = {
        h: sum(1 for e in events if e.get("event_data", {}).get("host") == h) for h in hosts
    }
    assert len(set(per_host.values())) == 1 and per_host["site-a"] > 0
    said = [e for e in events if e["event"] == "runner_on_ok" and "canary" in str(e).lower()]
    assert said and all(CANARY not in str(e) for e in events)
    assert any(MASK in str(e) for e in said)
