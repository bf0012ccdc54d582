"""The execution_node role and provision agree on where a node keeps everything."""

from __future__ import annotations

from pathlib import Path

import yaml

from provision.infra import strategy
from provision.infra.streaming import sweep_script
from provision.nodes import layout

ROLE = Path(__file__).parents[2] / "playbooks" / "roles" / "execution_node"


def test_the_role_defaults_are_the_layout() -> None:
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    assert defaults["execution_node_user"] == layout.USER
    assert defaults["execution_node_home"] == str(layout.HOME)
    assert defaults["execution_node_venv"] == str(layout.VENV)
    assert defaults["execution_node_wheelhouse"] == str(layout.WHEELHOUSE)
    assert defaults["execution_node_work_dir"] == str(layout.WORK_DIR)
    assert defaults["execution_node_key"] == str(layout.KEY)
    assert defaults["execution_node_known_hosts"] == str(layout.KNOWN_HOSTS)
    assert defaults["execution_node_cleanup_calendar"] == layout.CLEANUP_CALENDAR
    assert defaults["execution_node_cleanup_grace_hours"] == layout.CLEANUP_GRACE_HOURS
    assert defaults["execution_node_sweep"] == str(layout.SWEEP)
    # The runner the control node starts is the one the venv holds.
    assert layout.RUNNER == layout.VENV / "bin" / "ansible-runner"


def test_the_timer_s_sweep_is_the_script_provision_runs() -> None:
    template = ROLE / "templates" / "opt" / "provision-node" / "sweep-secrets.j2"
    lines = (
        template.read_text()
        .replace("{{ execution_node_work_dir }}", str(layout.WORK_DIR))
        .replace("{{ execution_node_home }}", str(layout.HOME))
    )
    body = "".join(line for line in lines.splitlines(keepends=True) if not line.startswith("#"))
    assert body == sweep_script(layout.WORK_DIR)
    units = ROLE / "templates" / "etc" / "systemd" / "system"
    service = units / "provision-node-cleanup.service.j2"
    starts = [line for line in service.read_text().splitlines() if line.startswith("ExecStart=")]
    assert starts[0] == "ExecStart={{ execution_node_sweep }}"  # first: before the cleanup


def test_every_default_is_documented_in_the_readme() -> None:
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    readme = (ROLE / "README.md").read_text()
    assert [name for name in defaults if f"`{name}`" not in readme] == []


def test_the_wheelhouse_pins_the_control_node_s_own_versions() -> None:
    from importlib import metadata

    from provision.nodes.setup import Platform, _platforms, requirements

    pins = dict(line.split("==") for line in requirements())
    for name in ("ansible-core", "ansible-runner", "pip", "jinja2", "pyyaml"):
        assert pins[name] == metadata.version(name), name
    # mitogen too, where the control node has it: the node's shards then run fast.
    for name in layout.FAST_PACKAGES:
        assert pins.get(name) == strategy.installed(name), name
    tags = _platforms(Platform("3.11", "x86_64", "2.36"))
    assert "manylinux_2_17_x86_64" in tags and "manylinux_2_36_x86_64" in tags
    assert "manylinux_2_37_x86_64" not in tags
