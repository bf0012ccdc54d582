"""The one atomic write: content, modes, and what a failure leaves behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from unittest import mock

import pytest

from provision.infra import atomic
from provision.infra.atomic import atomic_output, write_atomic


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_writes_text_and_bytes(tmp_path: Path) -> None:
    text, binary = tmp_path / "a.yml", tmp_path / "b.bin"
    write_atomic(text, "één\nline\n")
    write_atomic(binary, b"\x00\xff")
    assert text.read_bytes() == "één\nline\n".encode()
    assert binary.read_bytes() == b"\x00\xff"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.yml", "b.bin"]


def test_a_new_file_gets_0644_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o077)
    try:
        write_atomic(tmp_path / "new", "x")
    finally:
        os.umask(previous)
    assert _mode(tmp_path / "new") == 0o644


def test_an_existing_files_mode_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "hosts.yml"
    path.write_text("old")
    path.chmod(0o640)
    write_atomic(path, "new")
    assert path.read_text() == "new"
    assert _mode(path) == 0o640


def test_a_given_mode_wins_over_the_existing_one(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text("old")
    path.chmod(0o644)
    write_atomic(path, b"secret", mode=0o600)
    assert _mode(path) == 0o600


def test_new_mode_is_for_new_files_only(tmp_path: Path) -> None:
    new, old = tmp_path / "new.yml", tmp_path / "old.yml"
    old.write_text("old")
    old.chmod(0o640)
    write_atomic(new, "x", new_mode=0o600)
    write_atomic(old, "x", new_mode=0o600)
    assert (_mode(new), _mode(old)) == (0o600, 0o640)


def test_the_temporary_is_private_while_it_is_written(tmp_path: Path) -> None:
    with atomic_output(tmp_path / "secret", mode=0o644) as handle:
        handle.write("x")
        (temporary,) = [p for p in tmp_path.iterdir()]
        assert _mode(temporary) == 0o600
        assert not (tmp_path / "secret").exists()


def test_encoding_and_newline_are_open_s(tmp_path: Path) -> None:
    path = tmp_path / "report.csv"
    with atomic_output(path, encoding="utf-8-sig") as handle:
        handle.write("a\r\nb\n")
    assert path.read_bytes() == b"\xef\xbb\xbfa\r\nb\n"


def test_an_error_in_the_block_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_output(path) as handle:
        handle.write("half of the new")
        raise RuntimeError("disk full")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_a_failed_rename_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("old")
    with (
        mock.patch.object(Path, "replace", side_effect=OSError("read-only")),
        pytest.raises(OSError, match="read-only"),
    ):
        write_atomic(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_the_folder_is_synced_after_the_rename(tmp_path: Path) -> None:
    """Without the folder's fsync a power cut can bring the old file back."""
    synced: list[Path] = []
    real = atomic._sync_folder
    with mock.patch.object(
        atomic, "_sync_folder", side_effect=lambda f: synced.append(f) or real(f)
    ):
        write_atomic(tmp_path / "x", "x")
    assert synced == [tmp_path]
