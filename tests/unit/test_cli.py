"""The error boundary: one line and the documented exit code, tracebacks only with --debug."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from provision.cli.main import cli
from provision.errors import ExitStatus, InputError


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def failing_commands() -> None:
    """Temporary commands that fail in each way the boundary must handle."""

    @click.command("fail-input")
    def fail_input() -> None:
        raise InputError("register.csv: bad row", hint="fix the row", path="register.csv", line=4)

    @click.command("fail-bug")
    def fail_bug() -> None:
        raise ZeroDivisionError("boom")

    @click.command("fail-interrupt")
    def fail_interrupt() -> None:
        raise KeyboardInterrupt

    for command in (fail_input, fail_bug, fail_interrupt):
        cli.add_command(command)
    yield
    for name in ("fail-input", "fail-bug", "fail-interrupt"):
        cli.commands.pop(name)


@pytest.mark.usefixtures("failing_commands")
def test_user_mistake_is_one_line_with_hint_and_exit_3(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["fail-input"])
    assert result.exit_code == ExitStatus.BAD_INPUT
    lines = result.stderr.strip().splitlines()
    assert lines == ["error: register.csv:4: register.csv: bad row", "hint: fix the row"]
    assert "Traceback" not in result.output


@pytest.mark.usefixtures("failing_commands")
def test_unexpected_error_is_internal_without_traceback(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["fail-bug"])
    assert result.exit_code == ExitStatus.INTERNAL_ERROR
    assert "internal error: ZeroDivisionError: boom" in result.stderr
    assert "--debug" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.usefixtures("failing_commands")
def test_debug_shows_the_traceback(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--debug", "fail-bug"])
    assert result.exit_code == ExitStatus.INTERNAL_ERROR
    assert "Traceback" in result.stderr
    assert "ZeroDivisionError" in result.stderr


@pytest.mark.usefixtures("failing_commands")
def test_interrupt_exits_130(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["fail-interrupt"])
    assert result.exit_code == ExitStatus.INTERRUPTED
    assert result.stderr == "interrupted\n"


def test_usage_error_exits_2(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["no-such-command"])
    assert result.exit_code == ExitStatus.USAGE_ERROR
    assert "Error: No such command 'no-such-command'." in result.stderr


def test_bad_workspace_file_is_reported_by_a_real_command(
    runner: CliRunner, tmp_path: Path
) -> None:
    (tmp_path / "provision.yml").write_text("---\nforks: lots\n")
    result = runner.invoke(cli, ["--workspace", str(tmp_path), "doctor"])
    assert result.exit_code == ExitStatus.BAD_INPUT
    assert "forks" in result.stderr
    assert "Traceback" not in result.output


def _all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, f"provision {' '.join((*prefix, name))} does not load"
        path = (*prefix, name)
        found.append(path)
        if isinstance(command, click.Group):
            found += _all_commands(command, path)
    return found


@pytest.mark.parametrize("path", _all_commands(cli), ids=" ".join)
def test_every_command_help_teaches_with_an_example(
    runner: CliRunner, path: tuple[str, ...]
) -> None:
    result = runner.invoke(cli, [*path, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output, f"provision {' '.join(path)} --help has no example"


#: Every command that reads an environment (its inventory, its portals, its runs).
ENV_COMMANDS = {
    ("bootstrap",),
    ("compliance", "run"),
    ("compliance", "drift"),
    ("compliance", "runs"),
    ("compliance", "report"),
    ("inventory", "import"),
    ("inventory", "validate"),
    ("inventory", "show"),
    ("inventory", "tree"),
    *(("portal", verb) for verb in ("add", "list", "show", "remove", "deploy")),
    *(("portal", verb) for verb in ("backup", "restore", "health")),
    ("preflight", "sweep"),
    ("preflight", "show"),
    ("preflight", "list"),
    ("rollout", "run"),
    ("schedule", "install"),
    ("standards", "show"),
    ("waivers", "validate"),
    ("waivers", "list"),
    ("waivers", "add"),
}


def test_every_command_that_reads_an_environment_takes_env_the_same_way() -> None:
    from provision.cli.options import env_option

    shared = env_option(lambda: None).__click_params__[0]  # type: ignore[attr-defined]
    missing = []
    ctx = click.Context(cli)
    for path in sorted(ENV_COMMANDS):
        command: click.Command | None = cli
        for name in path:
            assert isinstance(command, click.Group)
            command = command.get_command(ctx, name)
        assert command is not None, path
        option = next((p for p in command.params if "--env" in p.opts), None)
        if option is None or option.to_info_dict() != shared.to_info_dict():
            missing.append(" ".join(path))
    assert missing == []


def test_a_commands_env_overrides_the_global_one(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "provision.yml").write_text("env: production\n")
    standards = tmp_path / "standards"
    standards.mkdir()
    repo = Path(__file__).resolve().parents[2]
    (standards / "s.yml").write_text((repo / "standards" / "bd-ict-baseline.yml").read_text())
    from tests.helpers.inventory import write

    register = write(tmp_path / "r.csv")
    args = ["--workspace", str(tmp_path), "--env", "production"]
    imported = runner.invoke(cli, [*args, "inventory", "import", str(register), "--env", "x"])
    assert imported.exit_code == 0, imported.output
    shown = runner.invoke(
        cli, [*args, "standards", "show", "--host", "gaz-003-lab01", "--env", "x", "--json"]
    )
    assert shown.exit_code == 0, shown.output
    assert "gaz-003-lab01" in shown.stdout


def test_top_level_help_and_version(runner: CliRunner) -> None:
    assert "Examples" in runner.invoke(cli, ["--help"]).output
    version = runner.invoke(cli, ["--version"])
    assert version.exit_code == 0 and "provision" in version.output


def test_python_dash_m_works(repo_root: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "provision", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0
    assert proc.stdout.startswith("provision")


def test_public_surface_resolves() -> None:
    import provision

    for name in provision.__all__:
        assert getattr(provision, name) is not None, name
    with pytest.raises(AttributeError):
        _ = provision.no_such_thing  # type: ignore[attr-defined]
