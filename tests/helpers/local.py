"""Hosts that are this machine: Ansible runs on them over the local connection."""

from __future__ import annotations

from typing import Any

#: The host variables of a host that is the control node itself. The interpreter
#: is the control node's own Python (the one running ansible-playbook), not
#: whatever `python3` is on PATH.
LOCAL_HOST: dict[str, str] = {
    "ansible_connection": "local",
    "ansible_python_interpreter": "{{ ansible_playbook_python }}",
}

#: An inventory (as a dict) of one host, localhost, over the local connection.
LOCAL: dict[str, Any] = {"all": {"hosts": {"localhost": dict(LOCAL_HOST)}}}
