"""The lab as a pytest fixture: booted once per test session, taken down at the end.

Tests that need real hosts take the `lab` fixture (and are marked `lab`). Where
this machine cannot run the lab (not root, no systemd-nspawn, …) they are
skipped with the reason; they never pass without hosts. The test lab uses its
own workspace and its own subnet, so it never touches a lab a person has
running from the repository.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from provision.lab import service
from tests.helpers.lab import (
    Lab,
    claim_test_subnet,
    lab_settings,
    lab_unavailable_reason,
    release_test_subnet,
)


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    reason = lab_unavailable_reason()
    if reason:
        pytest.skip(reason)
    subnet = claim_test_subnet()
    settings = lab_settings(tmp_path_factory.mktemp("lab") / "workspace", subnet)
    try:
        result = service.up(settings)
        yield Lab(settings, result.hosts)
    finally:
        # Runs on failures and on Ctrl-C too (pytest tears fixtures down then).
        service.down(settings)
        release_test_subnet(subnet)
