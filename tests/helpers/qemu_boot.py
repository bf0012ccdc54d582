"""Boot a disk image under QEMU, and tell a hypervisor that hangs from an image that is broken.

The guest's kernel, systemd and getty write to the first serial port, which QEMU
writes to a file. A boot attempt reads that file as it grows and knows how far
the guest got (`MILESTONES`). One accelerator after another is tried
(`accelerators`): KVM with the host's CPU model, which cures the hangs seen
under nested virtualisation, KVM with QEMU's default model, then QEMU's
emulator (TCG), slow but the same on every machine.

An attempt ends in one of these ways:

- ``login``: the automation account logged in over SSH;
- ``stalled``, ``exited``, ``slow``: the console stopped growing for the
  accelerator's stall bound, QEMU exited by itself, or the attempt's budget ran
  out while the guest was still printing. These are the hypervisor's failings:
  the next accelerator is tried, and where none is left the caller skips;
- ``refused``: the guest is up (a login prompt on its console, or sshd
  answering on the forwarded port) but SSH did not let the account in within
  a grace period: the image's fault, the caller fails;
- ``broken``: the console shows a kernel panic, an initramfs shell or
  systemd's emergency mode. Under KVM the next accelerator is tried (a CPU
  model can make a kernel panic); under the emulator it is the image's fault.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

#: What the console shows as a boot gets further, in order.
MILESTONES: tuple[tuple[str, str], ...] = (
    ("BIOS", "Booting from Hard Disk"),
    ("GRUB", "Booting `"),
    ("kernel", "Linux version"),
    ("systemd", "Reached target"),
    ("sshd", "OpenBSD Secure Shell server"),
    ("login prompt", " login:"),
)
#: Console text that means the guest will go no further by itself.
BROKEN = (
    "grub> ",
    "grub rescue> ",
    "Kernel panic",
    "(initramfs)",
    "You are in emergency mode",
    "Give root password for maintenance",
)
#: Seconds between two looks at the console (and two SSH tries).
POLL_S = 2.0

HYPERVISOR = frozenset({"stalled", "exited", "slow"})


@dataclass(frozen=True)
class Accelerator:
    """One way to run the guest, with the bounds that fit its speed."""

    name: str
    argv: tuple[str, ...]
    #: Console silence (before the guest is up) taken for a hang.
    stall_s: float
    #: The whole attempt, from QEMU's start to an SSH login.
    budget_s: float
    #: The emulator: what the image does here is the image's doing, not a hypervisor's.
    emulated: bool = False
    #: How long a guest that is up may take to let the account in over SSH (an
    #: emulated CPU needs seconds for each key exchange on a loaded machine).
    login_grace_s: float = 120.0


def accelerators(kvm: bool) -> list[Accelerator]:
    """The accelerators to try, best first; KVM only where /dev/kvm can be opened.

    The bounds: under KVM the console is never silent for more than a few seconds
    on a sound host (60 s leaves room for a loaded machine); the emulator can be
    silent for a minute or two while the kernel unpacks its initramfs, and needs
    several minutes for the whole boot on a shared 2-core machine.
    """
    found = []
    if kvm:
        found += [
            Accelerator("kvm -cpu host", ("-accel", "kvm", "-cpu", "host"), 60, 300),
            Accelerator("kvm -cpu qemu64", ("-accel", "kvm"), 60, 300),
        ]
    found.append(
        Accelerator("tcg -cpu max", ("-accel", "tcg", "-cpu", "max"), 240, 1200, True, 360)
    )
    return found


def worst_case_s(kvm: bool) -> float:
    """The longest all attempts can take together (for a test's timeout): every
    budget, and the grace of the one that got the guest up."""
    tried = accelerators(kvm)
    return sum(a.budget_s + POLL_S + 60 for a in tried) + max(a.login_grace_s for a in tried)


def milestone(text: str) -> str | None:
    """The furthest milestone the console shows, or None before GRUB."""
    reached = None
    for name, marker in MILESTONES:
        if marker in text:
            reached = name
    return reached


def broken(text: str) -> str | None:
    return next((marker for marker in BROKEN if marker in text), None)


#: Terminal control sequences (systemd's colours, GRUB's cursor moves).
ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _lines(text: str) -> list[str]:
    plain = ESCAPES.sub("", text).replace("\r", "\n")
    return [line.rstrip() for line in plain.splitlines() if line.strip()]


def last_line(text: str) -> str:
    lines = _lines(text)
    return lines[-1].strip()[-120:] if lines else "(nothing)"


def tail(text: str, lines: int = 12) -> str:
    return "\n".join(_lines(text)[-lines:])


@dataclass
class ConsoleWatch:
    """How far one boot got and when its console last grew, on a clock given to it."""

    stall_s: float
    started: float
    size: int = 0
    grew: float = 0.0
    text: str = ""
    #: The longest silence so far (how close a boot came to a stall).
    longest: float = 0.0

    def __post_init__(self) -> None:
        self.grew = self.started

    def update(self, text: str, now: float) -> None:
        self.longest = max(self.longest, now - self.grew)
        if len(text) != self.size:
            self.size = len(text)
            self.grew = now
        self.text = text

    @property
    def milestone(self) -> str | None:
        return milestone(self.text)

    def silent_for(self, now: float) -> float:
        return now - self.grew

    def stalled(self, now: float) -> bool:
        return self.silent_for(now) >= self.stall_s


@dataclass(frozen=True)
class Attempt:
    accelerator: Accelerator
    outcome: str
    detail: str
    seconds: float
    console: str

    @property
    def hypervisor_failed(self) -> bool:
        """The attempt says nothing about the image (try another accelerator or skip)."""
        return self.outcome in HYPERVISOR or (
            self.outcome == "broken" and not self.accelerator.emulated
        )

    def summary(self) -> str:
        return f"{self.accelerator.name}: {self.outcome} after {self.seconds:.0f}s, {self.detail}"


@dataclass(frozen=True)
class Probe:
    """What the guest's forwarded SSH port says: login works, sshd answers, or neither."""

    logged_in: bool
    sshd_answers: bool
    error: str


def sshd_answers(port: int, timeout: float = 5) -> bool:
    """An SSH banner on the forwarded port: sshd runs in the guest.

    QEMU's user-mode forward accepts every connection itself and closes it when
    nothing listens in the guest, so a connection alone proves nothing.
    """
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            return sock.recv(8).startswith(b"SSH-")
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Guest:
    """A booted guest, reached over SSH through QEMU's forward on 127.0.0.1."""

    port: int
    key: Path
    known_hosts: Path
    user: str
    accelerator: str
    console: Path

    def ssh(self, command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                "ssh",
                *("-i", str(self.key), "-p", str(self.port)),
                *("-o", f"UserKnownHostsFile={self.known_hosts}"),
                *("-o", "StrictHostKeyChecking=accept-new", "-o", "BatchMode=yes"),
                *("-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR"),
                f"{self.user}@127.0.0.1",
                command,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )

    def probe(self) -> Probe:
        try:
            proc = self.ssh("true", timeout=60)
        except subprocess.TimeoutExpired:
            return Probe(False, sshd_answers(self.port), "ssh took over 60s")
        if proc.returncode == 0:
            return Probe(True, True, "")
        return Probe(False, sshd_answers(self.port), last_line(proc.stderr))


@dataclass
class Boot:
    """The outcome of booting an image: the running guest where an attempt logged in."""

    attempts: list[Attempt] = field(default_factory=list)
    guest: Guest | None = None
    qemu: subprocess.Popen[bytes] | None = None

    @property
    def image_failed(self) -> Attempt | None:
        """The attempt that showed the image itself at fault, if one did."""
        return next(
            (a for a in self.attempts if a.outcome != "login" and not a.hypervisor_failed), None
        )

    def report(self) -> str:
        """Each accelerator tried and where it stopped, with the last console's tail."""
        lines = [a.summary() for a in self.attempts]
        if self.attempts:
            lines += [f"console of {self.attempts[-1].accelerator.name}, last lines:"]
            lines += ["  " + line for line in tail(self.attempts[-1].console).splitlines()]
        return "\n".join(lines)


def start_qemu(
    accelerator: Accelerator, disk: Path, port: int, folder: Path
) -> subprocess.Popen[bytes]:
    """QEMU writing the serial port to `folder`/console.log and SeaBIOS's debug port
    (the firmware's progress, before GRUB) to `folder`/firmware.log."""
    with (folder / "qemu.err").open("wb") as err:
        return subprocess.Popen(
            [
                "qemu-system-x86_64",
                *accelerator.argv,
                # The lab PC equipment minimum (HW-001): 2 cores, 4 GB.
                *("-m", "4096", "-smp", "2"),
                *("-drive", f"file={disk},if=virtio,format=qcow2"),
                *("-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:22"),
                *("-device", "virtio-net-pci,netdev=n0", "-device", "virtio-rng-pci"),
                *("-display", "none", "-monitor", "none"),
                *("-serial", f"file:{folder / 'console.log'}"),
                *("-chardev", f"file,id=firmware,path={folder / 'firmware.log'}"),
                *("-device", "isa-debugcon,iobase=0x402,chardev=firmware"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def stop_qemu(qemu: subprocess.Popen[bytes]) -> None:
    if qemu.poll() is not None:
        return
    qemu.terminate()
    try:
        qemu.wait(timeout=20)
    except subprocess.TimeoutExpired:
        qemu.kill()
        qemu.wait()


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def watch(
    accelerator: Accelerator,
    console: Callable[[], str],
    exited: Callable[[], str | None],
    probe: Callable[[], Probe],
    clock: Callable[[], float] = time.monotonic,
    pause: Callable[[float], None] = time.sleep,
) -> Attempt:
    """Follow one boot until it logs in or ends one of the other ways (module docstring).

    `console` returns the console text so far, `exited` why QEMU stopped (None
    while it runs), `probe` tries an SSH login.
    """
    started = clock()
    seen = ConsoleWatch(accelerator.stall_s, started)
    up_since: float | None = None
    error = ""

    def attempt(outcome: str, detail: str) -> Attempt:
        return Attempt(accelerator, outcome, detail, clock() - started, seen.text)

    while True:
        now = clock()
        seen.update(console(), now)
        stopped = exited()
        if stopped is not None:
            return attempt("exited", f"QEMU exited by itself ({stopped})")
        marker = broken(seen.text)
        if marker:
            return attempt("broken", f"the console shows {marker!r}")
        result = probe()
        if result.logged_in:
            return attempt(
                "login", f"past {seen.milestone}, console silent {seen.longest:.0f}s at most"
            )
        error = result.error or error
        if up_since is None and (result.sshd_answers or seen.milestone == "login prompt"):
            up_since = now
        if up_since is not None:
            # The guest is up: from here on only the image can keep the account out.
            if now - up_since >= accelerator.login_grace_s:
                return attempt(
                    "refused",
                    f"the guest is up ({seen.milestone}, sshd "
                    f"{'answers' if result.sshd_answers else 'silent'}) but SSH did not "
                    f"let the account in within {accelerator.login_grace_s:.0f}s: {error}",
                )
        elif seen.stalled(now):
            return attempt(
                "stalled",
                f"no console output for {seen.silent_for(now):.0f}s "
                f"(reached: {seen.milestone or 'nothing'}; last line: {last_line(seen.text)})",
            )
        elif now - started >= accelerator.budget_s:
            return attempt(
                "slow",
                f"no login within {accelerator.budget_s:.0f}s while still booting "
                f"(reached: {seen.milestone or 'nothing'}; last line: {last_line(seen.text)})",
            )
        pause(POLL_S)


def _overlay(image: Path, overlay: Path) -> None:
    """A copy-on-write overlay with a 100 GB virtual disk: the image stays as built."""
    subprocess.run(
        [
            *("qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2"),
            *("-b", str(image), str(overlay), "100G"),
        ],
        check=True,
    )


def boot(image: Path, work: Path, *, kvm: bool, key: Path, user: str) -> Iterator[Boot]:
    """Try each accelerator in turn; yield the Boot (QEMU running where one logged in).

    Every attempt boots a fresh overlay of the image, so each is a first boot.
    A generator, so that a fixture stops QEMU after its tests whatever happened.
    """
    result = Boot()
    try:
        for accelerator in accelerators(kvm):
            folder = work / accelerator.name.replace(" ", "_").replace("-", "")
            folder.mkdir(parents=True)
            overlay = folder / "overlay.qcow2"
            _overlay(image, overlay)
            guest = Guest(
                free_port(),
                key,
                folder / "known_hosts",
                user,
                accelerator.name,
                folder / "console.log",
            )
            qemu = start_qemu(accelerator, overlay, guest.port, folder)
            result.qemu = qemu

            def exited(qemu: subprocess.Popen[bytes] = qemu, folder: Path = folder) -> str | None:
                if qemu.poll() is None:
                    return None
                return f"exit {qemu.returncode}: {last_line(_read(folder / 'qemu.err'))}"

            def read(folder: Path = folder) -> str:
                # The firmware's lines, then the guest's: one text that grows as it boots.
                return _read(folder / "firmware.log") + "\n" + _read(folder / "console.log")

            attempt = watch(accelerator, read, exited, guest.probe)
            result.attempts.append(attempt)
            if attempt.outcome == "login":
                result.guest = guest
                break
            stop_qemu(qemu)
            result.qemu = None
            if not attempt.hypervisor_failed:
                break
        yield result
    finally:
        if result.qemu is not None:
            stop_qemu(result.qemu)
