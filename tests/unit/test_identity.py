"""Who runs provision: one answer for run records and one for systemd's User=."""

from __future__ import annotations

import getpass
import os
import pwd

import pytest

from provision.infra import identity


def _no_name(*_args: object) -> str:
    raise OSError("No username set in the environment")


def _no_entry(_uid: int) -> pwd.struct_passwd:
    raise KeyError("getpwuid(): uid not found")


def test_the_account_is_getpass_s_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(getpass, "getuser", lambda: "alice")
    assert identity.account_name() == "alice"


def test_an_account_without_a_name_is_its_uid(monkeypatch: pytest.MonkeyPatch) -> None:
    """A container's uid with no passwd entry and no USER/LOGNAME: getpass fails."""
    monkeypatch.setattr(getpass, "getuser", _no_name)
    monkeypatch.setattr(pwd, "getpwuid", _no_entry)
    assert identity.account_name() == str(os.getuid())
    assert identity.current_user(environ={}) == str(os.getuid())


def test_a_sudo_run_names_the_person_behind_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(getpass, "getuser", lambda: "root")
    assert identity.current_user(environ={"SUDO_USER": "alice"}) == "alice (as root)"
    assert identity.current_user(environ={"SUDO_USER": "root"}) == "root"
    assert identity.current_user(environ={}) == "root"


def test_a_sudo_run_with_getpass_failing_still_names_both(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(getpass, "getuser", _no_name)
    monkeypatch.setattr(pwd, "getpwuid", _no_entry)
    uid = str(os.getuid())
    assert identity.current_user(environ={"SUDO_USER": "alice"}) == f"alice (as {uid})"
