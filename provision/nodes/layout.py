"""Where everything of an execution node lives, on the node and on the control node.

One place for the paths: the `execution_node` role's defaults repeat these
values (a unit test holds them equal), `nodes check` reads them, and the
sharding code reaches the worker through them.

On the node::

    provision-node                      the system account the worker runs as
    /var/lib/provision-node             its home
      .ssh/id_ed25519                   the node's own automation key (reaches its sites)
      .ssh/known_hosts                  its sites' host keys
      jobs/                             ansible-runner worker's private data dirs
    /opt/provision-node/venv            ansible-core and ansible-runner (and mitogen, when the
                                        control node has it), the control node's versions
    /opt/provision-node/wheelhouse      the wheels they were installed from
    /opt/provision-node/sweep-secrets   removes the tmpfs secrets of jobs no longer alive

On the control node (under the state directory)::

    nodes/wheelhouse/                   the wheels built for the nodes
    nodes/<name>/id_ed25519(.pub)       the node's automation key, made by `nodes setup`
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

#: The system account the worker runs as on the node.
USER = "provision-node"
GROUP = USER
HOME = PurePosixPath("/var/lib/provision-node")
#: The node's own key to its sites (never the control node's key).
KEY = HOME / ".ssh" / "id_ed25519"
KNOWN_HOSTS = HOME / ".ssh" / "known_hosts"
#: ansible-runner worker's private data dirs; `ansible-runner worker cleanup` prunes it.
WORK_DIR = HOME / "jobs"
PREFIX = PurePosixPath("/opt/provision-node")
VENV = PREFIX / "venv"
WHEELHOUSE = PREFIX / "wheelhouse"
RUNNER = VENV / "bin" / "ansible-runner"
PYTHON = VENV / "bin" / "python3"
#: How often the timer runs `ansible-runner worker cleanup`, and what it keeps.
CLEANUP_CALENDAR = "hourly"
CLEANUP_GRACE_HOURS = 24
#: What the cleanup timer runs first: `infra.streaming.sweep_script`, as a file.
SWEEP = PREFIX / "sweep-secrets"

#: The packages the node's virtualenv holds, at the control node's exact versions.
PACKAGES: tuple[str, ...] = ("ansible-core", "ansible-runner")
#: Installed on the node at the control node's version when the control node has
#: them: mitogen lets a shard run the fast strategy (docs/speed.md) on the node. A
#: node without them is not refused; its shards run plain Ansible.
FAST_PACKAGES: tuple[str, ...] = ("mitogen",)


def shard_connection_vars() -> dict[str, str]:
    """Connection variables a host run from a node needs in its shard's inventory.

    The inventory names the control node's key and known_hosts (e.g. the lab's
    `ansible_ssh_common_args`); on the node, the node's own key and the host keys
    the role recorded are the ones to use. Set these over the host's own.
    """
    return {
        "ansible_ssh_private_key_file": str(KEY),
        "ansible_ssh_common_args": (
            f"-o UserKnownHostsFile={KNOWN_HOSTS} -o StrictHostKeyChecking=yes"
        ),
    }


def control_dir(state_path: Path) -> Path:
    """The control node's folder for everything it keeps about nodes."""
    return state_path / "nodes"


def wheelhouse_dir(state_path: Path) -> Path:
    """Where the control node builds the wheels the nodes install from."""
    return control_dir(state_path) / "wheelhouse"


def node_key(state_path: Path, name: str) -> Path:
    """The private half of node `name`'s automation key, as the control node keeps it."""
    return control_dir(state_path) / name / "id_ed25519"
