#!/usr/bin/python3
# Copyright: provision contributors
# Installed by the pull_agent role; see docs/pull.md. Python standard library only:
# a PC in pull mode needs nothing from a package index to trust and apply a bundle.
"""Fetch, verify and apply this PC's newest signed bundle; queue and upload the result.

One run (the systemd timer starts it, with a random splay and at network-online):

1. fetch the newest bundle for this PC from its field server over HTTPS (the
   department CA is the only one trusted);
2. verify it: the manifest's signature with `ssh-keygen -Y verify` and the
   allowed-signers file the role installed, every file's sha256, nothing extra,
   not expired, serial not lower than the last applied, this PC among its hosts.
   A bundle that fails is refused, logged, and the one in force stays;
3. apply the bundle in force (the new one, or offline the last verified one held)
   with `ansible-playbook -c local`, then collect its evidence;
4. write the result (per-task outcome, changed/failed, evidence, serial, the
   PC's collection time) to the outbox, and upload every queued result.

Exit status: 0 applied, 1 applied with failed tasks, 2 nothing to apply (no
bundle held yet), 3 bad configuration.

`fetch` does steps 1 and 2 only: the newest bundle is held if it verifies (the
next run applies it), refused and logged as in a run if not. Exit status: 0
held, 1 refused, 2 nothing fetched (offline), 3 bad configuration.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import ssl
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

VERSION = "1"
NAMESPACE = "provision-bundle"
IDENTITY = "provision-bundle"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"
CONTENT = "content/"
MAX_BYTES = 256 * 1024 * 1024
CONFIG = "/etc/provision-pull/agent.json"


class Refused(Exception):
    """A bundle that must not be applied, and why."""


def log(message: str) -> None:
    # stderr goes to the journal under the service's name.
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def parse_stamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def write_whole(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write `path` whole or not at all: a power cut leaves the old file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name + ".")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# -- verifying ---------------------------------------------------------------------------


def unpack(data: bytes) -> dict[str, bytes]:
    try:
        raw = gzip.decompress(data)
    except (OSError, EOFError, ValueError) as exc:
        raise Refused(f"not a whole .tar.gz ({exc})") from None
    found: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            for member in tar:
                path = PurePosixPath(member.name)
                if not member.isfile():
                    raise Refused(f"member {member.name!r} is not a regular file")
                if not member.name or path.is_absolute() or ".." in path.parts:
                    raise Refused(f"member {member.name!r} has an unsafe path")
                if member.name in found:
                    raise Refused(f"member {member.name!r} is in it twice")
                total += member.size
                if total > MAX_BYTES:
                    raise Refused(f"it unpacks to more than {MAX_BYTES} bytes")
                handle = tar.extractfile(member)
                found[member.name] = handle.read() if handle else b""
    except tarfile.TarError as exc:
        raise Refused(f"not a readable archive ({exc})") from None
    return found


def check_signature(allowed_signers: Path, data: bytes, signature: bytes) -> None:
    with tempfile.TemporaryDirectory(prefix="provision-pull-") as tmp:
        sig = Path(tmp) / SIGNATURE
        sig.write_bytes(signature)
        command = ["ssh-keygen", "-Y", "verify", "-f", str(allowed_signers)]
        command += ["-I", IDENTITY, "-n", NAMESPACE, "-s", str(sig)]
        proc = subprocess.run(command, input=data, capture_output=True, check=False, timeout=60)
    if proc.returncode != 0:
        reason = (proc.stderr or proc.stdout).decode(errors="replace").strip().splitlines()
        raise Refused("signature not by the department's bundle key: " + (reason or ["?"])[-1])


def verify(
    data: bytes,
    allowed_signers: Path,
    *,
    host: str,
    last_serial: int,
    moment: datetime,
    check_expiry: bool = True,
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The manifest and content files of a bundle this PC may apply; Refused if not."""
    members = unpack(data)
    if MANIFEST not in members:
        raise Refused("no manifest.json")
    if SIGNATURE not in members:
        raise Refused("not signed (no manifest.json.sig)")
    check_signature(allowed_signers, members[MANIFEST], members[SIGNATURE])
    try:
        manifest = json.loads(members[MANIFEST])
        files = dict(manifest["files"])
        serial = int(manifest["serial"])
        not_after = parse_stamp(str(manifest["not_after"]))
        hosts = list(manifest["hosts"])
    except (ValueError, KeyError, TypeError) as exc:
        raise Refused(f"the manifest is not a bundle's ({exc})") from None
    content = {n: d for n, d in members.items() if n not in (MANIFEST, SIGNATURE)}
    for name in sorted(content):
        if not name.startswith(CONTENT) or name not in files:
            raise Refused(f"holds {name}, which its manifest does not list")
    for name, digest in sorted(files.items()):
        if name not in content:
            raise Refused(f"its manifest lists {name}, which it does not hold")
        if hashlib.sha256(content[name]).hexdigest() != digest:
            raise Refused(f"{name} does not match its checksum")
    if check_expiry and not_after <= moment:
        raise Refused(f"serial {serial} expired at {manifest['not_after']}")
    if serial < last_serial:
        raise Refused(f"serial {serial} is older than {last_serial}, the last applied (rollback)")
    if host not in hosts:
        raise Refused(f"it is not for this host ({host}); it is for {', '.join(hosts)}")
    return manifest, content


# -- the agent's state -------------------------------------------------------------------


class Agent:
    """One PC's agent: its configuration and its state directory."""

    def __init__(self, config: dict[str, Any]) -> None:
        try:
            self.host = str(config["host"])
            self.bundle = str(config["bundle"])
            self.server = str(config.get("server", "")).rstrip("/")
            self.allowed_signers = Path(config["allowed_signers"])
            self.state = Path(config.get("state_dir", "/var/lib/provision-pull"))
        except KeyError as exc:
            raise SystemExit(f"configuration: {exc} is missing") from None
        if self.server and not self.server.startswith("https://"):
            # Bundles are public policy, but results are not, and the CA is the only
            # proof that the server is the field server.
            raise SystemExit(f"configuration: server {self.server!r} is not an https:// URL")
        self.ca_file = config.get("ca_file") or None
        self.token_file = config.get("upload_token_file") or None
        self.playbook_command = str(config.get("ansible_playbook", "ansible-playbook"))
        self.timeout = float(config.get("timeout", 60))
        self.callback_dir = Path(config.get("callback_dir", Path(__file__).parent / "callback"))

    # state files
    @property
    def held(self) -> Path:
        return self.state / "held.tar.gz"

    @property
    def applied(self) -> Path:
        return self.state / "applied.json"

    @property
    def outbox(self) -> Path:
        return self.state / "outbox"

    @property
    def refusals(self) -> Path:
        return self.state / "refused.log"

    def last_serial(self) -> int:
        try:
            return int(json.loads(self.applied.read_text())["serial"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def refuse(self, where: str, why: str) -> None:
        line = f"{now_utc():%Y-%m-%dT%H:%M:%SZ} refused {where}: {why}"
        log(line)
        self.refusals.parent.mkdir(parents=True, exist_ok=True)
        with self.refusals.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    # network
    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file)
        return context

    def _get(self, url: str) -> bytes:
        request = urllib.request.Request(url, headers={"User-Agent": "provision-pull/" + VERSION})
        with urllib.request.urlopen(request, timeout=self.timeout, context=self._context()) as r:
            return bytes(r.read(MAX_BYTES + 1))

    def fetch(self) -> bytes | None:
        """The newest bundle the field server has for this PC; None when offline."""
        if not self.server:
            return None
        base = f"{self.server}/bundles/{self.bundle}"
        try:
            latest = json.loads(self._get(base + "/latest.json"))
            name = PurePosixPath(str(latest["file"])).name
            return self._get(f"{base}/{name}")
        except (OSError, urllib.error.URLError, ValueError, KeyError, TypeError) as exc:
            log(f"no bundle fetched from {self.server}: {exc}")
            return None

    def upload(self) -> int:
        """Send every queued result, oldest first; a result stays queued until accepted."""
        if not self.server or not self.token_file:
            return 0
        try:
            token = Path(self.token_file).read_text().strip()
        except OSError as exc:
            log(f"cannot read the upload token: {exc}")
            return 0
        sent = 0
        for path in sorted(self.outbox.glob("*.json")):
            request = urllib.request.Request(
                f"{self.server}/outbox/{self.host}/{path.name}",
                data=path.read_bytes(),
                method="PUT",
                headers={
                    "Content-Type": "application/json",
                    "Authorization": "Basic "
                    + base64.b64encode(f"{self.host}:{token}".encode()).decode(),
                },
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout, context=self._context()):
                    pass
            except (OSError, urllib.error.URLError) as exc:
                log(f"result {path.name} stays queued: {exc}")
                break
            sent_dir = self.state / "sent"
            sent_dir.mkdir(parents=True, exist_ok=True)
            os.replace(path, sent_dir / path.name)
            sent += 1
        return sent

    # applying
    def accept(self, data: bytes, moment: datetime) -> bool:
        """Hold `data` as the bundle in force if it verifies; refused and logged if not."""
        try:
            manifest, _ = verify(
                data,
                self.allowed_signers,
                host=self.host,
                last_serial=self.last_serial(),
                moment=moment,
            )
        except Refused as exc:
            self.refuse("fetched bundle", str(exc))
            return False
        if self.held.is_file() and self.held.read_bytes() == data:
            return True
        write_whole(self.held, data)
        log(f"holding bundle {manifest['name']} serial {manifest['serial']}")
        return True

    def _playbook(self, folder: Path, playbook: str, extra: list[str], events: Path) -> int:
        env = dict(os.environ)
        env.update(
            {
                "ANSIBLE_CONFIG": str(folder / "ansible.cfg"),
                "ANSIBLE_CALLBACK_PLUGINS": str(self.callback_dir),
                "ANSIBLE_CALLBACKS_ENABLED": "provision_pull_result",
                "ANSIBLE_CALLBACK_WHITELIST": "provision_pull_result",
                "PROVISION_PULL_EVENTS": str(events),
                "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_RETRY_FILES_ENABLED": "0",
                "ANSIBLE_LOCAL_TEMP": str(self.state / "tmp"),
            }
        )
        command = [self.playbook_command, "-c", "local", "-i", "inventory.json"]
        command += ["-l", self.host, *extra, playbook]
        proc = subprocess.run(
            command, cwd=folder, env=env, capture_output=True, text=True, check=False
        )
        if proc.returncode not in (0, 2):
            log(f"ansible-playbook {playbook} exited {proc.returncode}: {proc.stderr[-2000:]}")
        return proc.returncode

    def apply(self, moment: datetime, offline: bool) -> int:
        if not self.held.is_file():
            log("no verified bundle is held yet: nothing to apply")
            return 2
        data = self.held.read_bytes()
        try:
            # Checked again: the held file is on a disk students can boot another OS on.
            # An expired bundle held is still the last good policy, so it is applied.
            manifest, content = verify(
                data,
                self.allowed_signers,
                host=self.host,
                last_serial=self.last_serial(),
                moment=moment,
                check_expiry=False,
            )
        except Refused as exc:
            self.refuse("held bundle", str(exc))
            return 2
        work = self.state / "work"
        shutil.rmtree(work, ignore_errors=True)
        for name, body in content.items():
            target = work / name[len(CONTENT) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
        (self.state / "tmp").mkdir(parents=True, exist_ok=True)
        apply_events = self.state / "apply-events.jsonl"
        evidence_events = self.state / "evidence-events.jsonl"
        for path in (apply_events, evidence_events):
            path.unlink(missing_ok=True)
        rc = self._playbook(work, str(manifest["playbook"]), [], apply_events)
        self._playbook(work, "playbooks/compliance.yml", ["-e", "@evidence.json"], evidence_events)
        tasks = _events(apply_events)
        evidence = next(
            (t.get("result") for t in _events(evidence_events) if t.get("evidence")), None
        )
        collected = time.time()
        if isinstance(evidence, dict) and isinstance(evidence.get("collected_at"), (int, float)):
            collected = float(evidence["collected_at"])
        failed = sum(1 for t in tasks if t["status"] in ("failed", "unreachable"))
        result = {
            "format": 1,
            "host": self.host,
            "bundle": manifest["name"],
            "serial": int(manifest["serial"]),
            "standard": manifest.get("standard"),
            "revision": manifest.get("revision"),
            "started_at": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "collected_at": collected,
            "offline": offline,
            "expired": parse_stamp(str(manifest["not_after"])) <= moment,
            "rc": rc,
            "status": "failed" if failed or rc not in (0, 2) else "ok",
            "changed": sum(1 for t in tasks if t["status"] == "changed"),
            "failed": failed,
            "tasks": tasks,
            "evidence": evidence,
            "agent": VERSION,
        }
        stamp = datetime.fromtimestamp(collected, timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"{stamp}-{int(manifest['serial']):06d}.json"
        write_whole(self.outbox / name, json.dumps(result, sort_keys=True).encode())
        if int(manifest["serial"]) > self.last_serial():
            write_whole(
                self.applied,
                json.dumps({"serial": int(manifest["serial"]), "name": manifest["name"]}).encode(),
            )
        log(f"applied serial {manifest['serial']}: {result['status']}, {result['changed']} changed")
        return 1 if result["status"] == "failed" else 0

    def run(self) -> int:
        moment = now_utc()
        fetched = self.fetch()
        offline = fetched is None
        if fetched is not None:
            self.accept(fetched, moment)
        rc = self.apply(moment, offline)
        self.upload()
        return rc


def _events(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            found.append(json.loads(line))
        except ValueError:
            continue
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=CONFIG)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="fetch, verify, apply, report (what the timer runs)")
    check = sub.add_parser("verify", help="verify a bundle file as a fetched one would be")
    check.add_argument("file")
    sub.add_parser(
        "fetch", help="fetch and verify the newest bundle; hold it if good, apply nothing"
    )
    sub.add_parser("upload", help="upload the queued results only")
    args = parser.parse_args(argv)
    try:
        config = json.loads(Path(args.config).read_text())
    except (OSError, ValueError) as exc:
        log(f"cannot read {args.config}: {exc}")
        return 3
    agent = Agent(config)
    if args.command == "verify":
        try:
            manifest, _ = verify(
                Path(args.file).read_bytes(),
                agent.allowed_signers,
                host=agent.host,
                last_serial=agent.last_serial(),
                moment=now_utc(),
            )
        except (Refused, OSError) as exc:
            log(f"refused {args.file}: {exc}")
            return 1
        print(f"good: {manifest['name']} serial {manifest['serial']}")
        return 0
    if args.command == "fetch":
        fetched = agent.fetch()
        if fetched is None:
            return 2
        return 0 if agent.accept(fetched, now_utc()) else 1
    if args.command == "upload":
        agent.upload()
        return 0
    return agent.run()


if __name__ == "__main__":
    sys.exit(main())
