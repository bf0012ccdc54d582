"""Signed policy bundles for hosts that pull their configuration (docs/pull.md).

The public surface:

* `init_key(settings)`, `key_info(settings)` -> KeyInfo: the department's bundle
  signing key, kept beside the CA
* `build_bundles(settings, selection, ...)` -> BuildResult: one signed bundle per
  role and site of the selected hosts
* `verify_bundle(path, allowed_signers, ...)` -> Manifest: the checks a PC makes,
  made on the control node
"""

from provision.bundles.build import BuildResult, BuiltBundle, build_bundles
from provision.bundles.manifest import Manifest
from provision.bundles.signing import KeyInfo, init_key, key_info
from provision.bundles.verify import verify_bundle

__all__ = [
    "BuildResult",
    "BuiltBundle",
    "KeyInfo",
    "Manifest",
    "build_bundles",
    "init_key",
    "key_info",
    "verify_bundle",
]
