"""Strategy `provision_linear`: Ansible's linear strategy, through mitogen when asked and able.

mitogen (PyPI `mitogen`) keeps one Python interpreter per host over one SSH
connection for the whole run, instead of Ansible's per-task module upload and
interpreter start. provision's ansible.cfg names this strategy; it is the plain
`linear` strategy unless:

* PROVISION_MITOGEN is 1/true/yes/on in the environment, and
* mitogen is installed beside Ansible and supports this ansible-core version.

Any failure to load mitogen falls back to `linear` silently (a control node
without mitogen works exactly as before). Host keys stay strict under mitogen:
its SSH transport honours the inventory's `ansible_ssh_common_args`
(UserKnownHostsFile=..., StrictHostKeyChecking=yes) and refuses a changed key.
"""

from __future__ import annotations

import os

from ansible.plugins.strategy.linear import StrategyModule as _Linear

_ON = {"1", "true", "yes", "on"}


def _mitogen_base() -> type | None:
    if os.environ.get("PROVISION_MITOGEN", "").strip().lower() not in _ON:
        return None
    try:
        import ansible_mitogen.loaders  # noqa: F401  (checks the ansible-core version)
        import ansible_mitogen.strategy
    except Exception:  # not installed, or refuses this ansible-core: plain linear
        return None
    return ansible_mitogen.strategy.StrategyMixin


_MIXIN = _mitogen_base()

if _MIXIN is not None:

    class StrategyModule(_MIXIN, _Linear):  # type: ignore[misc,valid-type]
        """linear, with mitogen's connection and module execution."""

else:

    class StrategyModule(_Linear):  # type: ignore[no-redef]
        """Ansible's own linear strategy."""
