"""Recognise SSH's refusal of a host key in what Ansible says, whatever carried it.

Under Ansible's own ssh connection, OpenSSH's banner comes through ("WARNING:
REMOTE HOST IDENTIFICATION HAS CHANGED!", "Host key verification failed.", "No
ED25519 host key is known for …"); under mitogen (the fast strategy) Ansible's
own summary does ("Host key checking is enabled, and SSH reported an
unrecognized or mismatching host key."), which cannot tell a changed key from
one never recorded. Either way the user gets the one message below, so that a
host key problem reads the same under both strategies and is never taken for a
host that is merely down.
"""

from __future__ import annotations

import re

#: What a rollout records for a host whose key SSH refused.
HOST_KEY_REFUSED = (
    "host key refused: the host's SSH key is not the one recorded in the environment's "
    "known_hosts (REMOTE HOST IDENTIFICATION HAS CHANGED, or no key is recorded for it); "
    "if the host was reinstalled, remove its old key and run provision bootstrap for it, "
    "otherwise treat it as another machine answering at its address (a possible "
    "man-in-the-middle) and do not trust it"
)

_SIGNS = re.compile(
    r"REMOTE HOST IDENTIFICATION HAS CHANGED"
    r"|Host key verification failed"
    r"|No \S+ host key is known for"
    r"|Host key checking is enabled, and SSH reported an unrecognized or mismatching host key",
    re.IGNORECASE,
)


def host_key_refused(message: str | None) -> bool:
    """Whether an unreachable host's message says SSH refused its host key."""
    return bool(message) and _SIGNS.search(message or "") is not None
