"""A playbook that parsed is not parsed again until what the parse reads changes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from provision.errors import InputError
from provision.infra import syntax_cache
from provision.rollout.service import check_run_inputs
from provision.settings import load_settings
from tests.helpers.workspace import FIXTURES


def _workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "playbooks").mkdir(parents=True)
    shutil.copy(FIXTURES / "playbooks" / "local_file.yml", ws / "playbooks" / "site.yml")
    (ws / "ansible.cfg").write_text("[defaults]\n")
    return ws


def test_the_fingerprint_changes_with_the_playbook_its_roles_and_the_config(
    tmp_path: Path,
) -> None:
    ws = _workspace(tmp_path)
    book = ws / "playbooks" / "site.yml"
    first = syntax_cache.fingerprint(book, workspace=ws, vault_password_file=None)
    assert syntax_cache.fingerprint(book, workspace=ws, vault_password_file=None) == first
    seen = {first}
    for path, text in [
        (book, book.read_text() + "# edited\n"),
        (ws / "playbooks" / "roles" / "r" / "tasks" / "main.yml", "---\n[]\n"),
        (ws / "ansible.cfg", "[defaults]\nforks = 5\n"),
    ]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        now = syntax_cache.fingerprint(book, workspace=ws, vault_password_file=None)
        assert now not in seen, path
        seen.add(now)


def test_the_vault_file_enters_by_name_and_date_never_by_content(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    book = ws / "playbooks" / "site.yml"
    vault = tmp_path / "vault-pass"
    vault.write_text("s3cret-canary\n")
    with_vault = syntax_cache.fingerprint(book, workspace=ws, vault_password_file=vault)
    assert with_vault != syntax_cache.fingerprint(book, workspace=ws, vault_password_file=None)
    syntax_cache.remember(ws / ".provision", with_vault)
    for path in (ws / ".provision").rglob("*"):
        assert "s3cret-canary" not in path.name
        assert not path.is_file() or path.read_bytes() == b""


@pytest.mark.slow
def test_a_rollout_checks_once_then_again_only_after_an_edit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = _workspace(tmp_path)
    (ws / "inventories" / "lab").mkdir(parents=True)
    (ws / "inventories" / "lab" / "hosts.yml").write_text("all:\n  hosts: {}\n")
    settings = load_settings(workspace=ws, environ={})
    book = ws / "playbooks" / "site.yml"
    calls: list[Path] = []
    real = syntax_cache.passed

    def counted(state: Path, known: str) -> bool:
        hit = real(state, known)
        if not hit:
            calls.append(book)
        return hit

    monkeypatch.setattr(syntax_cache, "passed", counted)
    for _ in range(2):
        check_run_inputs(settings, book, {})
    assert len(calls) == 1  # the second run found the first one's fingerprint
    book.write_text("- hosts: all\n  tasks: [\n")  # broken: must be checked, and refused
    with pytest.raises(InputError, match="does not parse"):
        check_run_inputs(settings, book, {})
    assert len(calls) == 2
    with pytest.raises(InputError, match="does not parse"):
        check_run_inputs(settings, book, {})  # a failure is never remembered
