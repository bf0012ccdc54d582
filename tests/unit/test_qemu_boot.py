"""How the image boot test reads a guest's console: a hypervisor that hangs at any stage
is given up on (and the next accelerator tried), an image that is up but keeps the
account out is the image's fault. Pure logic on a fake clock; the real boots are in
tests/integration/test_image_qcow2.py."""

from __future__ import annotations

from collections.abc import Callable

from tests.helpers import qemu_boot
from tests.helpers.qemu_boot import Accelerator, Attempt, Boot, Probe

KVM = Accelerator("kvm -cpu qemu64", ("-accel", "kvm"), stall_s=60, budget_s=300)
TCG = Accelerator("tcg -cpu max", ("-accel", "tcg"), stall_s=240, budget_s=900, emulated=True)

FIRMWARE = "Booting from Hard Disk...\nBooting from 0000:7c00\n"
GRUB = FIRMWARE + "Booting `Debian GNU/Linux'\nLoading Linux 6.1.0-50-amd64 ...\n"
GRUB += "Loading initial ramdisk ...\n"
KERNEL = GRUB + "[    0.000000] Linux version 6.1.0-50-amd64\n"
SYSTEMD = KERNEL + "[  OK  ] Reached target basic.target - Basic System.\n"
SSHD = SYSTEMD + "         Starting ssh.service - OpenBSD Secure Shell server...\n"
LOGIN = SSHD + "Debian GNU/Linux 12 lab-pc ttyS0\n\nlab-pc login: "

NOT_UP = Probe(False, False, "kex_exchange_identification: Connection reset by peer")


class Guest:
    """A scripted guest: the console text and the SSH answer at each moment."""

    def __init__(
        self,
        console: Callable[[float], str],
        probe: Callable[[float], Probe] = lambda _: NOT_UP,
        exits_at: float | None = None,
    ) -> None:
        self.now = 0.0
        self._console = console
        self._probe = probe
        self.exits_at = exits_at

    def watch(self, accelerator: Accelerator) -> Attempt:
        return qemu_boot.watch(
            accelerator,
            console=lambda: self._console(self.now),
            exited=self.exited,
            probe=lambda: self._probe(self.now),
            clock=lambda: self.now,
            pause=self.pause,
        )

    def exited(self) -> str | None:
        if self.exits_at is not None and self.now >= self.exits_at:
            return "exit -6: kvm_buf_set_msrs: Assertion failed"
        return None

    def pause(self, seconds: float) -> None:
        self.now += seconds


def growing(stages: list[tuple[float, str]]) -> Callable[[float], str]:
    """The console as it was at each moment: the last stage begun by then."""

    def console(now: float) -> str:
        text = ""
        for start, stage in stages:
            if now >= start:
                text = stage
        return text

    return console


def test_a_guest_that_hangs_after_grub_is_a_hypervisor_stall() -> None:
    guest = Guest(growing([(5, FIRMWARE), (8, GRUB)]))
    attempt = guest.watch(KVM)
    assert attempt.outcome == "stalled"
    assert attempt.hypervisor_failed
    # Given up on one stall bound after the console last grew, not at the budget.
    assert 68 <= attempt.seconds < 75
    assert "reached: GRUB" in attempt.detail and "Loading initial ramdisk" in attempt.detail


def test_a_stall_is_seen_at_any_stage_before_the_guest_is_up() -> None:
    for stage, name in ((KERNEL, "kernel"), (SYSTEMD, "systemd"), ("", "nothing")):
        attempt = Guest(growing([(3, stage)])).watch(KVM)
        assert (attempt.outcome, f"reached: {name}" in attempt.detail) == ("stalled", True)


def test_a_console_that_keeps_growing_is_no_stall_until_the_budget() -> None:
    # A new line every 50 s (under the 60 s bound): slow, never stalled.
    stages = [(t, KERNEL + "x\n" * (t // 50)) for t in range(0, 1000, 50)]
    attempt = Guest(growing(stages)).watch(KVM)
    assert attempt.outcome == "slow"
    assert attempt.hypervisor_failed
    assert 300 <= attempt.seconds < 305


def test_the_emulator_waits_longer_through_a_quiet_spell() -> None:
    attempt = Guest(
        growing([(0, GRUB), (200, KERNEL), (400, LOGIN)]),
        probe=lambda now: Probe(now >= 420, now >= 410, ""),
    ).watch(TCG)
    assert attempt.outcome == "login"


def test_qemu_exiting_by_itself_is_the_hypervisor() -> None:
    attempt = Guest(growing([]), exits_at=2).watch(KVM)
    assert attempt.outcome == "exited" and attempt.hypervisor_failed
    assert "kvm_buf_set_msrs" in attempt.detail


def test_a_guest_up_that_rejects_the_key_is_the_image_at_fault() -> None:
    """A login prompt and sshd answering, but no login: never a skip, whatever the
    accelerator, and no stall is declared however quiet the console stays."""
    denied = Probe(False, True, "provision@127.0.0.1: Permission denied (publickey).")
    for accelerator in (KVM, TCG):
        guest = Guest(growing([(0, SSHD), (20, LOGIN)]), probe=lambda now: denied)
        attempt = guest.watch(accelerator)
        assert attempt.outcome == "refused"
        assert not attempt.hypervisor_failed
        assert "Permission denied" in attempt.detail
        assert accelerator.login_grace_s <= attempt.seconds < accelerator.login_grace_s + 25


def test_sshd_answering_without_a_prompt_on_the_console_counts_as_up() -> None:
    denied = Probe(False, True, "Permission denied (publickey).")
    attempt = Guest(growing([(0, SYSTEMD)]), probe=lambda now: denied).watch(KVM)
    assert attempt.outcome == "refused"


def test_a_panic_is_retried_under_kvm_and_the_image_at_fault_under_the_emulator() -> None:
    panic = KERNEL + "Kernel panic - not syncing: VFS: Unable to mount root fs\n"
    under_kvm = Guest(growing([(3, panic)])).watch(KVM)
    under_tcg = Guest(growing([(3, panic)])).watch(TCG)
    assert under_kvm.outcome == under_tcg.outcome == "broken"
    assert under_kvm.hypervisor_failed and not under_tcg.hypervisor_failed


def test_a_grub_prompt_means_the_disk_has_no_boot_menu() -> None:
    attempt = Guest(growing([(3, FIRMWARE + "GNU GRUB  version 2.06\ngrub> ")])).watch(TCG)
    assert attempt.outcome == "broken" and not attempt.hypervisor_failed


def test_a_login_ends_the_attempt() -> None:
    attempt = Guest(
        growing([(0, GRUB), (10, SSHD)]), probe=lambda now: Probe(now >= 14, now >= 12, "")
    ).watch(KVM)
    assert attempt.outcome == "login" and attempt.seconds < 20


def test_the_report_names_each_accelerator_where_it_stopped_and_the_console_tail() -> None:
    boot = Boot(
        [
            Attempt(KVM, "stalled", "no console output for 60s (reached: GRUB)", 70, GRUB),
            Attempt(TCG, "slow", "no login within 900s while still booting", 900, KERNEL),
        ]
    )
    assert boot.image_failed is None
    report = boot.report()
    assert "kvm -cpu qemu64: stalled after 70s" in report
    assert "tcg -cpu max: slow after 900s" in report
    assert "Linux version 6.1.0-50-amd64" in report.splitlines()[-1]
    coloured = "[\x1b[0;32m  OK  \x1b[0m] Reached target \x1b[0;1;39mgetty.target\x1b[0m\n"
    assert qemu_boot.last_line(coloured) == "[  OK  ] Reached target getty.target"
    refused = Attempt(TCG, "refused", "Permission denied", 130, LOGIN)
    assert Boot([boot.attempts[0], refused]).image_failed == refused


def test_kvm_is_tried_first_with_the_host_cpu_and_the_emulator_last() -> None:
    names = [a.name for a in qemu_boot.accelerators(kvm=True)]
    assert names[0] == "kvm -cpu host" and names[-1].startswith("tcg")
    assert [a.name for a in qemu_boot.accelerators(kvm=False)] == [names[-1]]
    assert qemu_boot.milestone(LOGIN) == "login prompt"
    assert qemu_boot.milestone(FIRMWARE) == "BIOS"
