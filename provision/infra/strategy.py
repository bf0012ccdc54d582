"""Which Ansible strategy a run uses: "fast" (mitogen) where it is safe, else "plain".

"fast" runs mitogen's own strategy `mitogen_linear` (Ansible's linear strategy
with mitogen's connection and module execution, loaded from the installed
ansible_mitogen package, so any workspace has it): one SSH connection and one
Python interpreter per host for the whole run instead of a module upload and an
interpreter start per task. It is chosen only when the installed mitogen is
one provision is tested with and it supports the installed ansible-core;
otherwise the run uses "plain" (Ansible's own `linear`) and says so in exactly
one warning per process, never an error. docs/speed.md has the measurements.

The choice is the `strategy` setting (provision.yml, PROVISION_STRATEGY,
`--strategy`); the runner turns it into Ansible's environment (`Choice.environment`).
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

PLAIN = "plain"
FAST = "fast"
STRATEGIES = (PLAIN, FAST)

#: The mitogen releases provision's tests run with, and the ansible-core
#: releases (major, minor; both ends included) each supports. The lower end is
#: mitogen's own (ansible_mitogen.loaders.ANSIBLE_VERSION_MIN); the upper end is
#: the newest ansible-core mitogen's changelog names for that release and our
#: lab suite covers. A newer mitogen of the same series is taken to support at
#: least what the newest listed one does; an older one is not used.
TESTED_MITOGEN: dict[tuple[int, ...], tuple[tuple[int, int], tuple[int, int]]] = {
    (0, 3, 54): ((2, 10), (2, 19)),
}

log = logging.getLogger("provision.strategy")


@dataclass(frozen=True)
class Choice:
    """What a run asked for, what it gets, and why."""

    asked: str
    #: "fast" or "plain": what Ansible really runs with.
    used: str
    #: How the strategy is named in output: "fast: mitogen 0.3.54 (mitogen_linear)".
    label: str
    #: Why "fast" was asked for and "plain" is used; empty when it is as asked.
    fallback: str = ""
    environment: dict[str, str] = field(default_factory=dict)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def installed(package: str) -> str | None:
    """The installed version of a distribution, or None when it is not installed."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def mitogen_strategies() -> Path | None:
    """The folder of mitogen's strategy plugins, found without importing mitogen."""
    try:
        spec = importlib.util.find_spec("ansible_mitogen")
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(location) / "plugins" / "strategy"
        if (folder / "mitogen_linear.py").is_file():
            return folder
    return None


def unsupported(mitogen: str | None, ansible_core: str) -> str:
    """Why this pairing cannot run fast; empty when it can."""
    if mitogen is None:
        return "mitogen is not installed"
    ours = _version(mitogen)
    series = [v for v in TESTED_MITOGEN if v[:2] == ours[:2] and v <= ours]
    if not series:
        tested = ", ".join(".".join(map(str, v)) for v in sorted(TESTED_MITOGEN))
        return f"mitogen {mitogen} is not a release provision is tested with ({tested})"
    lowest, highest = TESTED_MITOGEN[max(series)]
    core = _version(ansible_core)[:2]
    if not lowest <= core <= highest:
        span = f"{lowest[0]}.{lowest[1]} to {highest[0]}.{highest[1]}"
        return f"mitogen {mitogen} supports ansible-core {span}, not {ansible_core}"
    return ""


def choose(asked: str, *, mitogen: str | None, ansible_core: str, plugins: Path | None) -> Choice:
    """The strategy for `asked` ("plain" or "fast") with these installed versions.

    `plugins` is the folder holding mitogen's `mitogen_linear` (`mitogen_strategies`).
    """
    if asked not in STRATEGIES:
        raise ValueError(f"strategy is one of {', '.join(STRATEGIES)}, not {asked!r}")
    plain = {"ANSIBLE_STRATEGY": "linear", "PROVISION_MITOGEN": "0"}
    if asked == PLAIN:
        return Choice(asked, PLAIN, "plain (linear)", environment=plain)
    why = unsupported(mitogen, ansible_core)
    if not why and plugins is None:
        why = f"mitogen {mitogen} is installed without its Ansible strategy plugins"
    if why or plugins is None:
        return Choice(asked, PLAIN, "plain (linear)", fallback=why, environment=plain)
    return Choice(
        asked,
        FAST,
        f"fast: mitogen {mitogen} (mitogen_linear)",
        # Instead of ansible.cfg's strategy_plugins: the workspace's own plugins
        # are not needed for linear or mitogen_linear.
        environment={
            "ANSIBLE_STRATEGY": "mitogen_linear",
            "ANSIBLE_STRATEGY_PLUGINS": str(plugins),
        },
    )


def node_environment(asked: str, *, node_fast: bool) -> dict[str, str]:
    """The strategy variables of a shard on an execution node.

    The node runs the workspace's own `provision_linear` (its playbooks folder
    travels with the shard), through mitogen when the run asks for the fast
    strategy, this control node may run it (`resolve`) and the node has the
    same mitogen (`node_fast`); else Ansible's linear strategy.
    """
    fast = node_fast and asked == FAST and resolve(asked).used == FAST
    return {"ANSIBLE_STRATEGY": "provision_linear", "PROVISION_MITOGEN": "1" if fast else "0"}


@functools.cache
def resolve(asked: str) -> Choice:
    """`choose` for what is installed here; a fallback is logged once per process."""
    choice = choose(
        asked,
        mitogen=installed("mitogen"),
        ansible_core=installed("ansible-core") or "0",
        plugins=mitogen_strategies(),
    )
    if choice.fallback:
        log.warning(
            "warning: the fast strategy is off for this run (%s); running plain "
            "Ansible. Set strategy: plain to silence this, see docs/speed.md",
            choice.fallback,
        )
    return choice
