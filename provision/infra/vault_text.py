"""What tells an ansible-vault text from plain text, without the cipher.

Scans for vaulted values (every rollout looks at its playbooks and inventory)
need only the header. Keeping it here spares those commands the import of
cryptography (`provision.infra.crypto` opens and writes vaults).
"""

from __future__ import annotations

VAULT_HEADER = "$ANSIBLE_VAULT"


class VaultError(ValueError):
    """A vault file that is not one, or a password that does not open it."""


def is_vault(data: bytes) -> bool:
    return data.lstrip().startswith(VAULT_HEADER.encode())
