"""`provision reports collect`: the results pulled hosts queued, brought into the store.

    plan = plan_collect(settings, "site:DHK-KAL-NAG-S01")   # reads only
    result = collect(settings, plan)

A PC in pull mode uploads one JSON file per apply to its field server, which
keeps them under ``BUNDLE_SERVER_ROOT/outbox/HOST/`` (the `bundle_server` role;
a PC can write only under its own name). For each field server that serves a
selected pulled host, `collect` lists those folders over SSH, fetches the files
the store does not hold yet (as one tar stream per batch), reads each with
`provision.model.pull.parse_result`, judges its evidence against the
workspace's standard as a pushed audit would (`compliance.service.judge_host`),
and records every apply once (`infra.store.pull_records`): as the host's
result in the rollout run of its bundle serial, and as a compliance report
with the PC's own collection time. The files stay on the field server: a
second collect, or a file uploaded twice, records nothing new.

A host's field server is the one whose `bundle_server_name` (else its
inventory name) is the host part of the host's `pull_agent_server`.
"""

from __future__ import annotations

import base64
import binascii
import io
import shlex
import socket
import tarfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from provision.access import keys
from provision.compliance.service import HostPlan, HostPlanner, judge_host, plan_host_keep
from provision.errors import ExitStatus, InputError, StateError, exit_status_for
from provision.infra import ssh
from provision.infra.identity import current_user
from provision.infra.store import open_store
from provision.infra.store.pull_records import Apply, PullRecords
from provision.inventory import slice_inventory
from provision.inventory.files import LoadedInventory
from provision.inventory.targets import load_environment
from provision.model.compliance.model import HostReport
from provision.model.inventory.select import select_hosts
from provision.model.inventory.targets import Target
from provision.model.pull import (
    BadResult,
    PulledResult,
    is_pull_mode,
    parse_result,
)
from provision.model.standards.model import Standard
from provision.model.waivers import WaiverSet
from provision.settings import Settings
from provision.standards.hostvars import host_layers
from provision.standards.service import pick_standard
from provision.standards.waivers import load_waivers

#: Where the bundle_server role keeps uploads unless `bundle_server_root` says otherwise.
DEFAULT_ROOT = "/srv/provision-bundles"
#: Files fetched in one SSH command (one tar stream), and the command's time limit.
BATCH = 200
TIMEOUT = 300.0
#: What a file name in an outbox may be (the role's nginx location takes only these).
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")


def _safe(name: str) -> bool:
    return bool(name) and not name.startswith(".") and set(name) <= _SAFE


@dataclass(frozen=True)
class ServerPlan:
    """One field server and the pulled hosts whose results it holds."""

    server: str
    target: Target
    root: str
    hosts: tuple[str, ...]


@dataclass(frozen=True)
class CollectPlan:
    env: str
    selection: str
    servers: tuple[ServerPlan, ...]
    #: Pulled hosts of the selection that no field server of the inventory serves.
    unserved: tuple[str, ...]
    standard: Standard
    waivers: WaiverSet
    loaded: LoadedInventory = field(repr=False)
    #: Every pulled host of the selection: its resolved variables and its groups.
    hostvars: Mapping[str, Mapping[str, Any]] = field(repr=False)
    groups: Mapping[str, set[str]] = field(repr=False)
    planner: HostPlanner = field(repr=False)
    _plans: dict[str, HostPlan] = field(default_factory=dict, repr=False, compare=False)

    @property
    def hosts(self) -> list[str]:
        return sorted(h for s in self.servers for h in s.hosts)

    def host_plan(self, host: str) -> HostPlan:
        """What `host`'s evidence is judged for, as an audit would plan it (made once,
        when the host's first new result arrives)."""
        found = self._plans.get(host)
        if found is None:
            found = self._plans[host] = self.planner.plan(
                host,
                self.hostvars[host],
                self.groups.get(host, set()),
                layers=lambda: host_layers(self.loaded, host),
            )
        return found


@dataclass(frozen=True)
class Refusal:
    """A file in an outbox that is not a result of that host's agent."""

    server: str
    host: str
    name: str
    reason: str


@dataclass(frozen=True)
class ServerCollect:
    """What one field server gave."""

    server: str
    reachable: bool
    message: str = ""
    #: Result files in the selected hosts' outboxes, and those not fetched before.
    listed: int = 0
    fetched: int = 0
    #: Applies recorded now; fetched files that were applies already recorded.
    recorded: int = 0
    already: int = 0
    refused: tuple[Refusal, ...] = ()


@dataclass(frozen=True)
class CollectResult:
    servers: tuple[ServerCollect, ...]
    unserved: tuple[str, ...] = ()

    @property
    def recorded(self) -> int:
        return sum(s.recorded for s in self.servers)

    @property
    def refused(self) -> list[Refusal]:
        return [r for s in self.servers for r in s.refused]

    @property
    def exit_status(self) -> ExitStatus:
        """5 when a field server could not be reached, else 0 (refused files are warnings)."""
        return exit_status_for(failed=False, unreachable=any(not s.reachable for s in self.servers))


ProgressCallback = Callable[[ServerCollect], None]


# -- planning ---------------------------------------------------------------------------


def _server_host(url: object) -> str:
    try:
        return (urlsplit(str(url or "")).hostname or "").lower()
    except ValueError:
        return ""


def plan_collect(settings: Settings, selection: str | None = None) -> CollectPlan:
    """Which field servers to ask for which pulled hosts' results. Touches no host.

    The selection (default: all) names hosts; its hosts in pull mode are
    collected. One naming no such host is bad input.
    """
    loaded = load_environment(settings.inventory_path)
    chosen = select_hosts(loaded.inventory, selection or "all")
    if not chosen:
        raise InputError(
            f"the selection {selection!r} matches no host in {settings.inventory_path}",
            hint="check it with provision inventory show SELECTION",
        )
    everyone = sorted(loaded.inventory.hosts)
    hostvars = slice_inventory(loaded.inventory, everyone, loaded.folder)["all"]["hosts"]
    pulled = [h for h in chosen if is_pull_mode(hostvars[h])]
    if not pulled:
        raise InputError(
            f"the selection {selection or 'all'!r} names no host in pull mode",
            hint="a host is pulled when its inventory sets provision_pull_mode: true "
            "(docs/pull.md)",
        )
    by_name: dict[str, str] = {}
    for host in everyone:
        values = hostvars[host]
        if values.get("provision_role") == "field_server":
            by_name.setdefault(host.lower(), host)
            if values.get("bundle_server_name"):
                by_name[str(values["bundle_server_name"]).lower()] = host
    served: dict[str, list[str]] = {}
    unserved = []
    for host in pulled:
        server = by_name.get(_server_host(hostvars[host].get("pull_agent_server")))
        if server is None:
            unserved.append(host)
        else:
            served.setdefault(server, []).append(host)
    key = keys.key_path(settings)
    servers = tuple(
        ServerPlan(
            server,
            Target.from_hostvars(server, hostvars[server], user=settings.automation_user, key=key),
            str(hostvars[server].get("bundle_server_root") or DEFAULT_ROOT),
            tuple(sorted(hosts)),
        )
        for server, hosts in sorted(served.items())
    )
    for planned in servers:
        if not planned.target.key.is_file():
            raise StateError(
                f"the SSH key {planned.target.key} that reaches field server "
                f"{planned.server} does not exist",
                hint="make the control node's key with provision keys generate, "
                "or set ansible_ssh_private_key_file for the server",
            )
    standard = pick_standard(settings.standards_path, None)
    today = datetime.now(UTC).date()
    waivers = load_waivers(
        settings.waivers_path,
        standard,
        known_hosts=set(loaded.inventory.hosts),
        known_groups=set(loaded.inventory.groups),
        today=today,
    )
    # A bad override is refused while planning, before any field server is asked.
    for host in pulled:
        plan_host_keep(host, hostvars[host])
    return CollectPlan(
        env=settings.env,
        selection=selection or "",
        servers=servers,
        unserved=tuple(sorted(unserved)),
        standard=standard,
        waivers=waivers,
        loaded=loaded,
        hostvars={h: hostvars[h] for h in pulled},
        groups=loaded.inventory.memberships(pulled),
        planner=HostPlanner(standard),
    )


# -- collecting --------------------------------------------------------------------------


def judge_result(plan: CollectPlan, result: PulledResult) -> HostReport | None:
    """The result's evidence judged as a pushed audit would (None: it brought none)."""
    report = None
    if result.evidence is not None:
        evidence = dict(result.evidence)
        # The PC's collection time, whatever the evidence itself says.
        evidence["collected_at"] = result.collected_at.timestamp()
        report = judge_host(
            plan.host_plan(result.host),
            evidence,
            waivers=plan.waivers,
            today=result.collected_at.date(),
        )
    return report


def _list_command(root: str, hosts: Sequence[str]) -> str:
    outbox = shlex.quote(f"{root.rstrip('/')}/outbox")
    names = " ".join(shlex.quote(h) for h in hosts)
    return (
        f"cd {outbox} 2>/dev/null || exit 0; "
        f'for h in {names}; do [ -d "$h" ] && (cd "$h" && for f in *.json; do '
        '[ -f "$f" ] && printf "%s/%s\\n" "$h" "$f"; done); done; true'
    )


def _fetch_command(root: str, files: Sequence[tuple[str, str]]) -> str:
    outbox = shlex.quote(f"{root.rstrip('/')}/outbox")
    members = " ".join(shlex.quote(f"{h}/{n}") for h, n in files)
    return f"tar -C {outbox} -cf - -- {members} | base64"


def _members(text: str) -> Iterator[tuple[str, str, bytes]]:
    try:
        raw = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadResult(f"the field server's answer was not base64 ({exc})") from None
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            for member in tar:
                path = PurePosixPath(member.name)
                if not member.isfile() or len(path.parts) != 2:
                    continue
                handle = tar.extractfile(member)
                yield path.parts[0], path.parts[1], handle.read() if handle else b""
    except tarfile.TarError as exc:
        raise BadResult(f"the field server's answer was not a tar stream ({exc})") from None


def _collect_server(
    settings: Settings, plan: CollectPlan, server: ServerPlan, records: PullRecords
) -> ServerCollect:
    known = records.known_files(server.hosts)
    wanted = set(server.hosts)
    refused: list[Refusal] = []
    recorded = already = fetched = 0
    try:
        with ssh.connect(
            server.target.address,
            host=server.target.host,
            port=server.target.port,
            user=server.target.user,
            known_hosts=keys.known_hosts_path(settings.inventory_path),
            key_path=server.target.key,
        ) as conn:
            listing = conn.run_as_root(
                _list_command(server.root, server.hosts), password=None, timeout=TIMEOUT
            )
            if listing.rc != 0:
                why = (listing.stderr.strip().splitlines() or [f"exit {listing.rc}"])[-1]
                return ServerCollect(server.server, False, f"listing the outboxes failed: {why}")
            files = []
            for line in listing.stdout.splitlines():
                host, _, name = line.strip().partition("/")
                if host in wanted and _safe(name) and name.endswith(".json"):
                    files.append((host, name))
            todo = sorted(f for f in set(files) if f not in known)
            node = socket.gethostname()
            for start in range(0, len(todo), BATCH):
                batch = todo[start : start + BATCH]
                answer = conn.run_as_root(
                    _fetch_command(server.root, batch), password=None, timeout=TIMEOUT
                )
                if answer.rc != 0 and not answer.stdout.strip():
                    why = (answer.stderr.strip().splitlines() or [f"exit {answer.rc}"])[-1]
                    return ServerCollect(
                        server.server,
                        False,
                        f"fetching results failed: {why}",
                        len(files),
                        fetched,
                        recorded,
                        already,
                        tuple(refused),
                    )
                asked = set(batch)
                applies: list[Apply] = []
                try:
                    for host, name, data in _members(answer.stdout):
                        if (host, name) not in asked:
                            continue
                        fetched += 1
                        try:
                            result = parse_result(data, host=host, name=name)
                        except BadResult as exc:
                            refused.append(Refusal(server.server, host, name, str(exc)))
                            continue
                        judged = judge_result(plan, result)
                        applies.append(Apply(result, server.server, judged))
                except BadResult as exc:
                    return ServerCollect(
                        server.server, False, str(exc), len(files), fetched, recorded, already
                    )
                new = records.record(applies, env=plan.env, user=current_user(), node=node)
                recorded += new
                already += len(applies) - new
    except ssh.SshError as error:
        return ServerCollect(
            server.server, False, error.message, 0, fetched, recorded, already, tuple(refused)
        )
    return ServerCollect(
        server.server, True, "", len(files), fetched, recorded, already, tuple(refused)
    )


def collect(
    settings: Settings, plan: CollectPlan, *, on_server: ProgressCallback | None = None
) -> CollectResult:
    """Fetch each planned field server's new results and record them; never raises for
    a server that cannot be reached (its line says why)."""
    done: list[ServerCollect] = []
    with open_store(settings) as store:
        records = PullRecords(store)
        for server in plan.servers:
            line = _collect_server(settings, plan, server, records)
            done.append(line)
            if on_server is not None:
                on_server(line)
    return CollectResult(tuple(done), plan.unserved)


def collect_files(
    settings: Settings,
    plan: CollectPlan,
    files: Iterable[tuple[str, str, bytes]],
    *,
    server: str = "",
    batch: int = 1000,
) -> ServerCollect:
    """Record result files already in hand (host, name, data), `batch` at a time: what
    `collect` does with what it fetched, for a caller that has them another way (the
    benchmark reads them from a folder)."""
    refused: list[Refusal] = []
    listed = fetched = recorded = parsed = 0
    node, user = socket.gethostname(), current_user()
    with open_store(settings) as store:
        records = PullRecords(store)
        known = records.known_files(list(plan.hostvars))
        applies: list[Apply] = []
        for host, name, data in files:
            listed += 1
            if (host, name) in known:
                continue
            fetched += 1
            if host not in plan.hostvars:
                refused.append(Refusal(server, host, name, "not a pulled host of the selection"))
                continue
            try:
                result = parse_result(data, host=host, name=name)
            except BadResult as exc:
                refused.append(Refusal(server, host, name, str(exc)))
                continue
            applies.append(Apply(result, server, judge_result(plan, result)))
            parsed += 1
            if len(applies) >= batch:
                recorded += records.record(applies, env=plan.env, user=user, node=node)
                applies = []
        recorded += records.record(applies, env=plan.env, user=user, node=node)
    return ServerCollect(
        server, True, "", listed, fetched, recorded, parsed - recorded, tuple(refused)
    )
