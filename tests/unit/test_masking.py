"""Masking secret values: which values, in which forms, in texts and in events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provision.access import secrets
from provision.errors import InputError
from provision.infra import crypto
from provision.infra.masking import MASK, Masker, named_secrets
from provision.settings import load_settings

PASSWORD = "vault-pass-unit-5c1e"


def test_values_of_secret_named_variables_are_masked_at_any_depth() -> None:
    hostvars = {
        "h1": {"db_password": "hunter22", "api_token": 12345678, "provision_role": "lab_pc"},
        "h2": {"ssh_key_passphrase": "abc", "ansible_host": "10.0.0.1"},  # too short to mask
        "h3": {"portal": {"mysql": {"root_password": "deep-one"}}, "credentials": ["in-a-list"]},
        "h4": {"become_pass": {"__ansible_vault": "$ANSIBLE_VAULT;1.1;AES256\n00"}},
    }
    masker = Masker.of(named_secrets(hostvars))
    assert set(masker.values) == {"hunter22", "12345678", "deep-one", "in-a-list"}
    assert masker.text("login hunter22 with 12345678 on lab_pc, deep-one") == (
        f"login {MASK} with {MASK} on lab_pc, {MASK}"
    )


def test_a_value_is_masked_as_printed_json_escaped_and_line_by_line() -> None:
    masker = Masker.of(['pa"ss\\word', "-----BEGIN KEY-----\nAAAABBBBCCCCDDDD\n-----END KEY-----"])
    printed = json.dumps({"cmd": 'echo pa"ss\\word'})
    assert masker.text(printed) == json.dumps({"cmd": f"echo {MASK}"})
    assert masker.text("a line AAAABBBBCCCCDDDD of the key") == f"a line {MASK} of the key"


def test_scrub_masks_an_event_in_place_keys_and_nested_values() -> None:
    masker = Masker.of(["s3cr3t-value"])
    event = {
        "event": "runner_on_failed",
        "stdout": "fatal: [h]: FAILED! => s3cr3t-value",
        "event_data": {"res": {"cmd": ["echo", "s3cr3t-value"], "rc": 3}, "task": "x"},
    }
    same = event
    masker.scrub(event)
    assert same is event
    assert "s3cr3t-value" not in json.dumps(event)
    assert event["event_data"]["res"]["rc"] == 3
    assert not Masker.of(["abc"])  # nothing long enough: nothing to mask, no work


def test_run_masker_opens_vaulted_values_of_inventory_and_playbook(tmp_path: Path) -> None:
    """Vaulted values are masked decrypted whatever their variable is called; a value
    the password does not open adds nothing (Ansible cannot open it either)."""
    sealed = crypto.vault_encrypt(b"canary-inventory-1", PASSWORD).decode()
    other = crypto.vault_encrypt(b"not-this-one", "another-password").decode()
    whole = crypto.vault_encrypt(b"---\napi_url: https://canary-whole-file/\n", PASSWORD)
    (tmp_path / "vault.yml").write_bytes(whole)
    inline = crypto.vault_encrypt(b"canary-play-var", PASSWORD).decode()
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        "- name: A play\n  hosts: all\n  vars_files: [vault.yml]\n  vars:\n"
        "    greeting: !vault |\n"
        + "".join(f"      {line}\n" for line in inline.splitlines())
        + "  tasks: []\n"
    )
    client = tmp_path / "client"
    client.write_text(f"#!/bin/sh\necho {PASSWORD}\n")
    client.chmod(0o700)
    inventory = {
        "all": {
            "hosts": {
                "h1": {"motd": {"__ansible_vault": sealed}, "x": {"__ansible_vault": other}},
                # A host whose *name* looks secret: its plain variables are not.
                "passport-office-01": {"ansible_host": "10.9.8.7"},
            }
        }
    }
    masker = secrets.inventory_masker(client, inventory, {"smtp_password": "plain-extra"}, playbook)
    assert "10.9.8.7" not in masker.values
    shown = masker.text(
        "canary-inventory-1 canary-play-var https://canary-whole-file/ plain-extra not-this-one"
    )
    assert shown == f"{MASK} {MASK} {MASK} {MASK} not-this-one"
    # Without a vault password only the secret-named plain values are known.
    assert secrets.inventory_masker(None, inventory, {}, playbook).values == ()


def test_vaulted_playbook_without_a_vault_password_is_refused(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    (workspace / "inventories" / "lab").mkdir(parents=True)
    (workspace / "inventories" / "lab" / "hosts.yml").write_text("all:\n  hosts:\n    h1: {}\n")
    settings = load_settings(workspace=workspace, environ={}, flags={})
    sealed = crypto.vault_encrypt(b"x-canary", PASSWORD)
    (tmp_path / "secret.yml").write_bytes(sealed)
    playbook = tmp_path / "play.yml"
    playbook.write_text("- name: A play\n  hosts: all\n  vars_files: secret.yml\n  tasks: []\n")
    with pytest.raises(InputError) as refused:
        secrets.require_vault(settings, ["h1"], playbook)
    assert "secret.yml (the whole file) is encrypted with the vault" in refused.value.message
    assert "--ask-vault-pass" in (refused.value.hint or "")
    playbook.write_text("- name: A play\n  hosts: all\n  tasks: []\n")
    secrets.require_vault(settings, ["h1"], playbook)  # nothing vaulted: nothing to refuse


def test_an_event_is_walked_only_when_its_json_holds_a_secret() -> None:
    """The quick check over the event's JSON never lets a secret through: values with
    quotes, backslashes, newlines and non-ASCII letters, deep in lists and keys."""
    secrets = ['pa"ss\\word', "ধানমন্ডি-secret", "line one of a key\nline two of a key"]
    masker = Masker.of(secrets)
    event = {
        "event_data": {
            "res": {"stdout_lines": ["x", f"before {secrets[0]} after"]},
            "nested": [{"deep": [f"…{secrets[1]}…"]}],
            f"key {secrets[0]}": 1,
            "msg": "line two of a key",
        }
    }
    masker.scrub(event)
    text = json.dumps(event, ensure_ascii=False)
    for secret in secrets:
        assert secret not in text
    assert "line two of a key" not in text
    assert MASK in event["event_data"]["res"]["stdout_lines"][1]
    assert event["event_data"]["nested"][0]["deep"][0] == f"…{MASK}…"


def test_an_event_without_a_secret_is_left_as_it_is_and_not_walked(monkeypatch) -> None:
    masker = Masker.of(["s3cret-value"])
    data = {"res": {"changed": False, "msg": "all fine", "n": [1, 2.5, None, True]}}
    before = json.dumps(data)
    walked: list[object] = []
    monkeypatch.setattr(Masker, "data", lambda self, value: walked.append(value) or value)
    masker.scrub(data)
    assert json.dumps(data) == before
    assert walked == []  # the JSON search found nothing, so no string was visited
    masker.scrub({"msg": "it is s3cret-value"})
    assert walked == [{"msg": "it is s3cret-value"}]
