"""Settings precedence: defaults < provision.yml < PROVISION_* < flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.errors import ConfigError
from provision.settings import Settings, find_workspace, load_settings


def test_defaults_apply_when_nothing_is_set(tmp_path: Path) -> None:
    settings = load_settings(workspace=tmp_path, environ={})
    assert settings.env == Settings.env
    assert settings.forks == 20
    assert settings.state_path == tmp_path.resolve() / ".provision"
    assert settings.database_url == f"sqlite:///{tmp_path.resolve() / '.provision' / 'state.db'}"


def test_the_workspace_layout_is_named_on_settings(tmp_path: Path) -> None:
    settings = load_settings(workspace=tmp_path, environ={}, flags={"env": "production"})
    root = tmp_path.resolve()
    assert settings.inventories_path == root / "inventories"
    assert settings.inventory_path == root / "inventories" / "production"
    assert settings.playbooks_path == root / "playbooks"
    assert settings.standards_path == root / "standards"
    assert settings.waivers_path == root / "waivers.yml"
    assert settings.portal_register_path == root / "portals" / "production.yml"


def test_each_layer_overrides_the_one_below(tmp_path: Path) -> None:
    (tmp_path / "provision.yml").write_text(
        "---\nenv: staging\nforks: 7\nlab_subnet: 10.9.9.0/24\n"
    )
    from_file = load_settings(workspace=tmp_path, environ={})
    assert (from_file.env, from_file.forks, from_file.lab_subnet) == ("staging", 7, "10.9.9.0/24")

    environ = {"PROVISION_ENV": "production", "PROVISION_FORKS": "11"}
    from_env = load_settings(workspace=tmp_path, environ=environ)
    assert (from_env.env, from_env.forks) == ("production", 11)
    assert from_env.lab_subnet == "10.9.9.0/24"  # untouched by the environment

    from_flags = load_settings(
        workspace=tmp_path, environ=environ, flags={"env": "lab", "forks": None}
    )
    assert from_flags.env == "lab"
    assert from_flags.forks == 11  # a flag that was not given overrides nothing


def test_workspace_is_found_above_the_current_folder(tmp_path: Path) -> None:
    (tmp_path / "provision.yml").write_text("---\n")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_workspace(deep) == tmp_path.resolve()
    assert load_settings(cwd=deep, environ={}).workspace == tmp_path.resolve()


def test_workspace_from_the_environment(tmp_path: Path) -> None:
    settings = load_settings(environ={"PROVISION_WORKSPACE": str(tmp_path)})
    assert settings.workspace == tmp_path.resolve()


def test_unknown_key_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "provision.yml").write_text("---\nforkz: 3\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(workspace=tmp_path, environ={})
    assert "forkz" in caught.value.message
    assert caught.value.path == tmp_path.resolve() / "provision.yml"
    assert caught.value.hint and "forks" in caught.value.hint


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "provision.yml").write_text("---\nenv: lab\nforks: [1\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(workspace=tmp_path, environ={})
    assert caught.value.line is not None
    assert str(caught.value).startswith(f"{tmp_path.resolve() / 'provision.yml'}:")


@pytest.mark.parametrize(
    ("environ", "needle"),
    [
        ({"PROVISION_FORKS": "many"}, "PROVISION_FORKS"),
        ({"PROVISION_FORKS": "0"}, "PROVISION_FORKS"),
        ({"PROVISION_DEBUG": "perhaps"}, "PROVISION_DEBUG"),
    ],
)
def test_bad_environment_values_are_named(
    tmp_path: Path, environ: dict[str, str], needle: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(workspace=tmp_path, environ=environ)
    assert needle in caught.value.message


def test_environment_name_cannot_escape_inventories(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'\.\./etc' is not an environment name"):
        load_settings(workspace=tmp_path, environ={}, flags={"env": "../etc"})


def test_missing_workspace_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope is not a folder"):
        load_settings(workspace=tmp_path / "nope", environ={})


def test_a_bad_value_names_its_kind_with_the_right_article(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(workspace=tmp_path, environ={"PROVISION_FORKS": "many"})
    assert "which is not a valid int" in caught.value.message
    assert caught.value.hint == "give 'forks' an int value"
