"""A refused host key reads the same whichever strategy carried SSH's words."""

from __future__ import annotations

import pytest

from provision.rollout.hostkey import host_key_refused

#: As Ansible reports them (ansible-core 2.19): its ssh connection passes
#: OpenSSH's own words on; under mitogen Ansible's summary comes instead.
REFUSED = [
    "Task failed: Failed to connect to the host via ssh: "
    "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
    "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @",
    "Task failed: Host key checking is enabled, and SSH reported an unrecognized or "
    "mismatching host key.",
    "Failed to connect to the host via ssh: No ED25519 host key is known for 10.0.0.5 "
    "and you have requested strict checking.\r\nHost key verification failed.",
]
OTHER = [
    None,
    "",
    "Task failed: Failed to connect to the host via ssh: ssh: connect to host 10.0.0.5 "
    "port 22: No route to host",
    "Failed to connect to the host via ssh: root@10.0.0.5: Permission denied (publickey).",
    "Data could not be sent to remote host. Make sure this host can be reached over ssh",
]


@pytest.mark.parametrize("message", REFUSED)
def test_each_wording_of_a_refused_host_key_is_recognised(message: str) -> None:
    assert host_key_refused(message)


@pytest.mark.parametrize("message", OTHER)
def test_other_reasons_for_unreachable_are_not(message: str | None) -> None:
    assert not host_key_refused(message)
