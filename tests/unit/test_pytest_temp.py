"""The suite's own set-up: each pytest run works in a temporary folder of its own."""

from __future__ import annotations

import getpass
from pathlib import Path

import pytest


def test_each_run_has_a_base_temp_folder_of_its_own(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    """Not pytest's shared /tmp/pytest-of-USER, where a run deletes other runs' folders.

    tests/conftest.py explains why. A run given --basetemp uses that one instead.
    """
    if any(arg.startswith("--basetemp") for arg in pytestconfig.invocation_params.args):
        pytest.skip("this run was given its --basetemp")
    base = tmp_path_factory.getbasetemp()
    assert base.parent.name != f"pytest-of-{getpass.getuser()}", base
    assert base.name.startswith("pytest-run-"), base
    assert tmp_path.is_relative_to(base)
