"""What a rollout imports before its first step: the fixed cost of every run.

A rollout in a workspace without vaulted values or execution nodes must not pay for
cryptography (only opening a vault needs it) nor for the node stream; the imports
are checked in a fresh interpreter, as a `provision rollout` command starts.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

#: What `provision rollout` imports before it plans (benchmarks/rollout_overhead.py).
ROLLOUT_IMPORTS = "import provision.cli.main, provision.cli.rollout, provision.rollout"


def _imported_after(code: str) -> set[str]:
    probe = f"{code}; import sys; print('\\n'.join(sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    return set(done.stdout.split())


@pytest.mark.parametrize("module", ["cryptography", "provision.infra.crypto"])
def test_a_rollout_does_not_import_the_vault_cipher(module: str) -> None:
    assert module not in _imported_after(ROLLOUT_IMPORTS)


def test_opening_a_vault_imports_the_cipher() -> None:
    """The control: the probe does see cryptography where a vault is opened."""
    assert "cryptography" in _imported_after("import provision.infra.crypto")
