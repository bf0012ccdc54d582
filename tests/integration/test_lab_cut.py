"""`lab cut` takes only one host off the network, and `lab restore` gives it back: the
host keeps running all the while (what a PC without a link is)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from provision.errors import InputError
from provision.lab import service
from tests.helpers.lab import (
    Lab,
    claim_test_subnet,
    lab_settings,
    lab_unavailable_reason,
    release_test_subnet,
)

pytestmark = [pytest.mark.lab, pytest.mark.timeout(900)]

PC = "dhk-kal-lab01"
SERVER = "dhk-kal-fs01"


@pytest.fixture(scope="module")
def two_hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    reason = lab_unavailable_reason()
    if reason:
        pytest.skip(reason)
    subnet = claim_test_subnet()
    settings = lab_settings(tmp_path_factory.mktemp("cut") / "workspace", subnet)
    try:
        result = service.up(settings, f"{SERVER},{PC}")
        yield Lab(settings, result.hosts)
    finally:
        service.down(settings)
        release_test_subnet(subnet)


def _answers(address: str) -> bool:
    try:
        with socket.create_connection((address, 22), timeout=3):
            return True
    except OSError:
        return False


def test_cut_takes_one_host_off_and_restore_brings_it_back(two_hosts: Lab) -> None:
    lab = two_hosts
    assert _answers(lab.address(PC)) and _answers(lab.address(SERVER))
    service.cut_host(lab.settings, PC)
    assert not _answers(lab.address(PC))
    assert _answers(lab.address(SERVER))  # only that host lost its link
    assert {h.name: h.state for h in service.status(lab.settings)}[PC] == "up"  # still running
    service.restore_host(lab.settings, PC)
    # The bridge port forwards again once it is up; the first SYN may race it.
    deadline = time.monotonic() + 60
    while not _answers(lab.address(PC)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert "ok" in lab.ssh(PC, "echo ok")
    with pytest.raises(InputError, match="no lab host named"):
        service.cut_host(lab.settings, "nosuch")
