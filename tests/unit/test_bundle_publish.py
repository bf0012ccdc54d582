"""Publishing: only verified bundles, the newest per name as latest.json, hashed
per-PC upload secrets, a department certificate per field server, a rollout plan."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
import yaml

from provision.bundles import build_bundles, init_key
from provision.bundles.archive import pack, unpack
from provision.bundles.publish import htpasswd_line, plan_publish, prepare_publish, tokens_dir
from provision.bundles.verify import BundleRefused
from provision.errors import InputError, StateError
from provision.portal import ca
from provision.settings import Settings
from tests.helpers.bundles import pull_workspace


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings, _ = pull_workspace(tmp_path)
    hosts = settings.inventory_path / "hosts.yml"
    data = yaml.safe_load(hosts.read_text())
    data["all"]["children"]["role_field_server"] = {
        "hosts": {
            "fs1": {
                "ansible_host": "10.0.0.2",
                "provision_role": "field_server",
                "bundle_server_name": "fs1.gazipur.example.bd",
            }
        }
    }
    data["all"]["children"]["role_lab_pc"]["hosts"]["pc1"]["provision_pull_mode"] = True
    hosts.write_text(yaml.safe_dump(data))
    init_key(settings)
    return settings


def test_nothing_built_or_no_ca_is_a_clear_error(settings: Settings) -> None:
    with pytest.raises(StateError, match="no bundles have been built") as none:
        plan_publish(settings)
    assert none.value.hint == "build them first with provision bundle build SELECTION"
    build_bundles(settings, "role:lab_pc")
    with pytest.raises(StateError, match="no certificate authority"):
        plan_publish(settings)


def test_publish_lays_out_the_tree_secrets_and_certificates(settings: Settings) -> None:
    ca.init_ca(settings)
    build_bundles(settings, "role:lab_pc")
    second = build_bundles(settings, "role:lab_pc")
    planned = plan_publish(settings)
    assert planned.plan.hosts == ["fs1"] and planned.pull_hosts == ("pc1",)
    assert planned.source == second.out_dir
    assert not planned.vars_file.exists()  # planning writes nothing
    prepare_publish(settings, planned)
    latest = json.loads((planned.tree / "bundles" / "lab_pc.khu_014" / "latest.json").read_text())
    assert latest == {"serial": 2, "file": "lab_pc.khu_014.000002.tar.gz"}
    assert (planned.tree / "bundles" / "lab_pc.khu_014" / latest["file"]).is_file()
    token = (tokens_dir(settings) / "pc1").read_text().strip()
    assert (tokens_dir(settings) / "pc1").stat().st_mode & 0o777 == 0o600
    line = (planned.vars_file.parent / "htpasswd").read_text()
    assert token not in line
    user, hashed = line.strip().split(":", 1)
    raw = base64.b64decode(hashed.removeprefix("{SSHA}"))
    assert user == "pc1" and hashlib.sha1(token.encode() + raw[20:]).digest() == raw[:20]  # noqa: S324
    variables = yaml.safe_load(planned.vars_file.read_text())
    assert variables["bundle_server_publish_src"] == str(planned.tree)
    assert ca.cert_status(settings, "fs1.gazipur.example.bd") is not None
    # The same secret on the next publish: the PC keeps the one it was given.
    prepare_publish(settings, plan_publish(settings))
    assert (tokens_dir(settings) / "pc1").read_text().strip() == token


def test_a_bad_bundle_is_never_published(settings: Settings) -> None:
    ca.init_ca(settings)
    built = build_bundles(settings, "pc3").bundles[0].path
    members = unpack(built.read_bytes())
    members["content/inventory.json"] += b" "
    built.write_bytes(pack(members, 0))
    with pytest.raises(BundleRefused, match="checksum"):
        plan_publish(settings)


def test_a_field_server_without_a_name_is_refused(settings: Settings) -> None:
    ca.init_ca(settings)
    build_bundles(settings, "pc3")
    hosts = settings.inventory_path / "hosts.yml"
    hosts.write_text(hosts.read_text().replace("bundle_server_name: fs1.gazipur.example.bd", ""))
    with pytest.raises(InputError, match="fs1 has no bundle_server_name"):
        plan_publish(settings)


def test_htpasswd_line_is_nginx_ssha() -> None:
    line = htpasswd_line("pc9", "secret", salt=b"12345678")
    digest = hashlib.sha1(b"secret12345678").digest()  # noqa: S324
    assert line == "pc9:{SSHA}" + base64.b64encode(digest + b"12345678").decode() + "\n"
