"""Which strategy a run gets: fast (mitogen) where supported, else plain with one warning."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from provision.cli.context import AppContext
from provision.cli.main import cli
from provision.errors import ConfigError
from provision.infra import runner, strategy
from provision.settings import load_settings
from tests.helpers.local import LOCAL
from tests.helpers.workspace import FIXTURES

CORE = "2.19.14"
PLUGINS = Path("/opt/mitogen/ansible_mitogen/plugins/strategy")


def test_fast_with_a_tested_mitogen_on_a_supported_ansible_core_uses_mitogen() -> None:
    choice = strategy.choose("fast", mitogen="0.3.54", ansible_core=CORE, plugins=PLUGINS)
    assert (choice.used, choice.fallback) == ("fast", "")
    assert choice.environment == {
        "ANSIBLE_STRATEGY": "mitogen_linear",
        "ANSIBLE_STRATEGY_PLUGINS": str(PLUGINS),
    }
    assert "mitogen 0.3.54" in choice.label


def test_a_newer_mitogen_of_the_tested_series_is_used() -> None:
    assert (
        strategy.choose("fast", mitogen="0.3.60", ansible_core=CORE, plugins=PLUGINS).used == "fast"
    )


@pytest.mark.parametrize(
    ("mitogen", "core", "reason"),
    [
        (None, CORE, "mitogen is not installed"),
        ("0.3.54", "2.20.0", "supports ansible-core 2.10 to 2.19, not 2.20.0"),
        ("0.3.54", "2.9.27", "not 2.9.27"),
        ("0.3.20", CORE, "mitogen 0.3.20 is not a release provision is tested with (0.3.54)"),
        ("0.4.0", CORE, "mitogen 0.4.0 is not a release"),
    ],
)
def test_an_unsupported_pairing_falls_back_to_plain_and_says_why(
    mitogen: str | None, core: str, reason: str
) -> None:
    choice = strategy.choose("fast", mitogen=mitogen, ansible_core=core, plugins=PLUGINS)
    assert choice.used == "plain"
    assert reason in choice.fallback
    # Plain is written out, so an ANSIBLE_STRATEGY or PROVISION_MITOGEN in the
    # caller's environment cannot turn mitogen back on.
    assert choice.environment == {"ANSIBLE_STRATEGY": "linear", "PROVISION_MITOGEN": "0"}


def test_a_mitogen_without_its_strategy_plugins_falls_back() -> None:
    choice = strategy.choose("fast", mitogen="0.3.54", ansible_core=CORE, plugins=None)
    assert choice.used == "plain"
    assert "without its Ansible strategy plugins" in choice.fallback


def test_plain_is_plain_whatever_is_installed() -> None:
    choice = strategy.choose("plain", mitogen="0.3.54", ansible_core=CORE, plugins=PLUGINS)
    assert (choice.used, choice.fallback) == ("plain", "")
    assert choice.environment["ANSIBLE_STRATEGY"] == "linear"


def test_an_unknown_strategy_is_refused() -> None:
    with pytest.raises(ValueError, match="'quick'"):
        strategy.choose("quick", mitogen=None, ansible_core=CORE, plugins=PLUGINS)


def test_a_fallback_is_warned_about_exactly_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    strategy.resolve.cache_clear()
    monkeypatch.setattr(strategy, "installed", lambda p: None if p == "mitogen" else CORE)
    try:
        with caplog.at_level(logging.WARNING, logger="provision.strategy"):
            for _ in range(3):  # three waves, or three playbook runs of one command
                assert strategy.resolve("fast").used == "plain"
            strategy.resolve("plain")
        warnings = [r.getMessage() for r in caplog.records]
        assert len(warnings) == 1, warnings
        assert "mitogen is not installed" in warnings[0]
        assert "docs/speed.md" in warnings[0]
    finally:
        strategy.resolve.cache_clear()


def test_no_warning_when_fast_is_supported_or_plain_is_asked_for(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    strategy.resolve.cache_clear()
    monkeypatch.setattr(strategy, "installed", lambda p: "0.3.54" if p == "mitogen" else CORE)
    try:
        with caplog.at_level(logging.WARNING, logger="provision.strategy"):
            assert strategy.resolve("fast").used == "fast"
            assert strategy.resolve("plain").used == "plain"
        assert caplog.records == []
    finally:
        strategy.resolve.cache_clear()


def test_this_machine_runs_fast_by_default() -> None:
    # The pinned mitogen on the pinned ansible-core: what the lab suite runs with.
    mitogen = strategy.installed("mitogen")
    if mitogen is None:
        pytest.skip("mitogen is not installed here")
    core = strategy.installed("ansible-core")
    assert core is not None
    assert strategy.unsupported(mitogen, core) == ""
    assert strategy.mitogen_strategies() is not None


def test_a_node_shard_runs_mitogen_only_when_asked_allowed_here_and_on_the_node() -> None:
    here = strategy.resolve("fast").used == strategy.FAST
    fast = strategy.node_environment("fast", node_fast=True)
    # The workspace's own strategy, which travels with the shard's playbooks.
    assert fast["ANSIBLE_STRATEGY"] == "provision_linear"
    assert fast["PROVISION_MITOGEN"] == ("1" if here else "0")
    assert strategy.node_environment("fast", node_fast=False)["PROVISION_MITOGEN"] == "0"
    assert strategy.node_environment("plain", node_fast=True)["PROVISION_MITOGEN"] == "0"


# -- the setting and the flag --------------------------------------------------------


def test_the_setting_defaults_to_fast_and_the_file_env_and_flag_override_it(
    tmp_path: Path,
) -> None:
    assert load_settings(workspace=tmp_path, environ={}).strategy == "fast"
    (tmp_path / "provision.yml").write_text("strategy: plain\n")
    assert load_settings(workspace=tmp_path, environ={}).strategy == "plain"
    env = {"PROVISION_STRATEGY": "fast"}
    assert load_settings(workspace=tmp_path, environ=env).strategy == "fast"
    flags = {"strategy": "plain"}
    assert load_settings(workspace=tmp_path, environ=env, flags=flags).strategy == "plain"


def test_a_bad_strategy_setting_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "provision.yml").write_text("strategy: mitogen\n")
    with pytest.raises(ConfigError, match="'strategy' has the value 'mitogen'") as err:
        load_settings(workspace=tmp_path, environ={})
    assert "fast, plain" in (err.value.hint or "")


@pytest.mark.parametrize(
    "command",
    [
        ["rollout", "run"],
        ["rollout", "resume"],
        ["rollout", "retry"],
        ["compliance", "fix"],
        ["portal", "deploy"],
        ["image", "build"],
    ],
)
def test_the_commands_that_run_playbooks_take_strategy(command: list[str]) -> None:
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "--strategy [fast|plain]" in result.output


def test_the_flag_overrides_the_setting(tmp_path: Path) -> None:
    (tmp_path / "provision.yml").write_text("strategy: fast\n")
    app = AppContext(workspace=tmp_path)
    assert app.settings.strategy == "fast"
    app.use_flag("strategy", "plain")
    assert app.settings.strategy == "plain"
    app.use_env("lab")  # a later --env keeps the command's --strategy
    assert app.settings.strategy == "plain"


def test_a_bad_flag_value_is_refused_by_the_command_line() -> None:
    result = CliRunner().invoke(cli, ["rollout", "run", "site.yml", "--strategy", "turbo"])
    assert result.exit_code == 2
    assert "'turbo' is not one of 'fast', 'plain'" in result.output


# -- through the runner, on localhost ---------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("asked", ["fast", "plain"])
def test_the_runner_hands_ansible_the_chosen_strategy(workspace: Path, asked: str) -> None:
    choice = strategy.resolve(asked)
    result = runner.run_playbook(
        FIXTURES / "playbooks" / "local_file.yml",
        workspace=workspace,
        private_data_dir=runner.new_run_dir(workspace / ".provision", "test"),
        inventory=LOCAL,
        check=True,
        strategy=asked,
    )
    assert result.ok, result.hosts
    command = next(result.private_data_dir.glob("artifacts/*/command")).read_text()
    for name, value in choice.environment.items():
        assert f'"{name}": "{value}"' in command
