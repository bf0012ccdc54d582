"""The worker-stream parser: partial lines, keepalives, the artifacts zip, replays; the
sweep of the secrets of jobs no longer alive."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from provision.errors import RunnerError
from provision.infra import node_mask
from provision.infra.streaming import SECRETS_LOCK, StreamParser, sweep_script


def _line(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode() + b"\n"


def _stream() -> bytes:
    zipped = b"PK\x03\x04 not really a zip but bytes all the same"
    return b"".join(
        [
            _line({"status": "starting"}),
            _line({"event": "playbook_on_start", "counter": 1, "uuid": "a"}),
            _line({"event": "keepalive", "counter": 0, "uuid": 0}),
            _line({"event": "runner_on_ok", "counter": 2, "uuid": "b"}),
            _line({"status": "successful"}),
            _line({"zipfile": len(zipped)}),
            base64.b64encode(zipped),
            _line({"eof": True}),
        ]
    )


def test_events_come_once_each_whatever_the_cuts() -> None:
    data = _stream()
    for size in (1, 7, 64, len(data)):
        got: list[int] = []
        parser = StreamParser(on_event=lambda e, got=got: got.append(e["counter"]))
        for start in range(0, len(data), size):
            parser.feed(data[start : start + size])
        assert got == [1, 2]
        assert parser.eof
        assert parser.status == "successful"
        assert parser.offset == len(data)


def test_a_replay_from_an_earlier_offset_skips_what_was_seen() -> None:
    data = _stream()
    got: list[int] = []
    parser = StreamParser(on_event=lambda e: got.append(e["counter"]))
    cut = data.index(b"runner_on_ok") + 5  # the link drops in the middle of an event
    parser.feed(data[:cut])
    assert got == [1]
    replay = StreamParser(on_event=lambda e: got.append(e["counter"]), seen=set(parser.seen))
    replay.feed(data)
    assert got == [1, 2]


def test_a_line_that_is_not_json_is_an_error() -> None:
    parser = StreamParser(on_event=lambda e: None)
    with pytest.raises(RunnerError, match="not JSON"):
        parser.feed(b"Traceback (most recent call last)\n")


def test_the_sweep_removes_the_secrets_of_jobs_no_longer_alive(tmp_path: Path) -> None:
    """Alive: the job's pid names its shell and it has no exit status. Any other
    secret goes: the shell killed (its pid dead, or another process's now), the job
    finished, the job's folder gone."""
    work, shm = tmp_path / "jobs", tmp_path / "shm"
    work.mkdir()
    shm.mkdir()
    alive = work / "alive"
    alive.mkdir()
    shell = subprocess.Popen(["sh", "-c", f"cd {alive} && sleep 600; true"], start_new_session=True)
    try:
        jobs = {"alive": shell.pid, "reused": os.getpid(), "finished": shell.pid}
        for job, pid in jobs.items():
            (work / job).mkdir(exist_ok=True)
            (work / job / "pid").write_text(f"{pid}\n")
        (work / "finished" / "rc").write_text("0\n")
        for job in [*jobs, "gone"]:
            (shm / f"provision-node-{job}.secret").write_text("pw\n")
        (shm / "provision-node-alive.mask").write_text("[]")
        (shm / "provision-node-gone.mask").write_text("[]")
        for job in ("alive", "gone"):  # the events folders, one with an event in it
            (shm / f"provision-node-{job}.events").mkdir()
            (shm / f"provision-node-{job}.events" / "e-partial.json").write_text("{}")
        (shm / "other.secret").write_text("not a job's\n")
        script = sweep_script(PurePosixPath(work), PurePosixPath(shm))
        subprocess.run(["sh", "-c", script], check=True, timeout=60)
        assert sorted(p.name for p in shm.iterdir()) == [
            "other.secret",
            "provision-node-alive.events",
            "provision-node-alive.mask",
            "provision-node-alive.secret",
        ]
        assert (tmp_path / SECRETS_LOCK).exists()  # beside the work dir, not in it
    finally:
        os.killpg(shell.pid, signal.SIGKILL)  # the shell and its sleep
        shell.wait()
    subprocess.run(["sh", "-c", script], check=True, timeout=60)
    assert sorted(p.name for p in shm.iterdir()) == ["other.secret"]


def test_the_node_s_output_filter_masks_events_and_passes_the_rest_byte_for_byte(
    tmp_path: Path,
) -> None:
    secret = 'canary "quoted" é'
    zipped = b"PK\x03\x04 the artifacts, " + secret.encode()  # not an event: passed as it is
    said = {
        "event": "runner_on_ok",
        "counter": 2,
        "uuid": "b",
        "stdout": f"ok: [a] => {json.dumps({'msg': secret})}",
        "event_data": {"res": {"msg": f"the canary is {secret}", secret: [secret]}},
    }
    quiet = {"event": "runner_on_ok", "counter": 3, "uuid": "c", "event_data": {"res": {}}}
    keepalive = _line({"event": "keepalive", "counter": 0, "uuid": 0})
    before = _line({"status": "starting"}) + _line(said) + keepalive + _line(quiet)
    end = _line({"zipfile": len(zipped)}) + base64.b64encode(zipped) + _line({"eof": True})
    values = tmp_path / "mask"
    values.write_text(json.dumps([secret, json.dumps(secret)[1:-1]]))
    filtered = subprocess.run(
        [sys.executable, "-c", Path(node_mask.__file__).read_text(), str(values)],
        input=before + end,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    assert not values.exists()  # read, then removed: the values live in its memory only
    lines = filtered.split(b"\n")
    masked = json.loads(lines[1])
    assert (
        secret not in json.dumps(masked, ensure_ascii=False)
        and secret.encode() not in filtered[: -len(end)]
    )
    assert masked["event_data"]["res"] == {
        "msg": f"the canary is {node_mask.MASK}",
        node_mask.MASK: [node_mask.MASK],
    }
    assert node_mask.MASK in masked["stdout"] and (masked["counter"], masked["uuid"]) == (2, "b")
    # Everything else unchanged, the zip (no newline after it) and the eof line too.
    assert lines[0] + b"\n" == _line({"status": "starting"})
    assert b"\n".join(lines[2:4]) + b"\n" == keepalive + _line(quiet)
    assert filtered.endswith(end)
    parser = StreamParser(on_event=lambda e: None)
    parser.feed(filtered)
    assert parser.eof
