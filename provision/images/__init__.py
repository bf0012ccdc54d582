"""Standard OS install seeds and images for new machines.

The public surface:

* `write_seed(settings, SeedRequest(role, os, out, site=, force=, password_hash_file=))`
  -> SeedResult: a checked Debian preseed or Ubuntu autoinstall, written atomically
* `build_image(settings, BuildRequest(role, format, out=, force=, size_gb=), on_step=)`
  -> BuildResult: a Debian 12 image of a role (tar, qcow2, vagrant-box) and its manifest
* `verify_image(path)` -> VerifyResult, or an InputError naming the image
"""

from provision.images.build import FORMATS, BuildRequest, BuildResult, build_image
from provision.images.manifest import VerifyResult, verify_image
from provision.images.seeds import OS_RELEASES, SeedRequest, SeedResult, write_seed

__all__ = [
    "FORMATS",
    "OS_RELEASES",
    "BuildRequest",
    "BuildResult",
    "SeedRequest",
    "SeedResult",
    "VerifyResult",
    "build_image",
    "verify_image",
    "write_seed",
]
