"""Options and arguments that many commands share, defined once so they behave alike."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from provision.cli.context import AppContext
from provision.errors import InputError
from provision.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


def _use_env(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    app = ctx.find_object(AppContext)
    if value is not None and app is not None:
        app.use_env(value)


def env_option(function: F) -> F:
    """`--env ENV` after the verb, as before it (`provision --env ENV NOUN VERB`).

    The value goes into the settings the command reads (`app.settings`), so a
    command behaves the same whichever way the user wrote it; given both ways,
    this one wins.
    """
    return click.option(
        "--env",
        metavar="ENV",
        expose_value=False,
        callback=_use_env,
        help="Inventory environment: inventories/ENV/ (as the global --env, which it "
        "overrides). [env var: PROVISION_ENV; default: lab]",
    )(function)


def _use_strategy(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    app = ctx.find_object(AppContext)
    if value is not None and app is not None:
        app.use_flag("strategy", value)


def strategy_option(function: F) -> F:
    """`--strategy plain|fast`: the `strategy` setting for this one command."""
    return click.option(
        "--strategy",
        type=click.Choice(["fast", "plain"]),
        expose_value=False,
        callback=_use_strategy,
        help="Ansible's strategy: fast (mitogen where the installed versions allow it, "
        "else plain with a warning) or plain (Ansible's own linear). "
        "[setting: strategy; env var: PROVISION_STRATEGY; default: fast]",
    )(function)


def _check_selection(missing: str | None) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def check(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
        if value is None:
            return missing
        if not value.strip():
            # `provision rollout site.yml "$SEL"` with SEL unset: never "every host".
            raise InputError(
                f"the selection {value!r} is empty",
                hint="leave SELECTION out, or write 'all', to mean every host",
            )
        from provision.model.inventory.select import parse_selection

        parse_selection(value)  # a bad term is refused before anything is loaded
        return value

    return check


def selection_argument(missing: str | None = "") -> Callable[[F], F]:
    """The SELECTION argument: left out, it is `missing` (every host); given, never empty."""

    def decorate(function: F) -> F:
        return click.argument(
            "selection", required=False, default=None, callback=_check_selection(missing)
        )(function)

    return decorate


local_option = click.option(
    "--local",
    is_flag=True,
    help="Run every host from the control node, even hosts an execution node serves.",
)


def execution_nodes(
    settings: Settings, hosts: Sequence[str], local: bool, *, down_ok: bool = False
) -> Any:
    """The nodes that take shards of a run over `hosts`, checked ready; None to run locally.

    A node that does not answer is refused, unless `down_ok` (a resumed rollout,
    an audit): then its hosts stay not run with the reason (provision.nodes.links).
    """
    if local:
        return None
    from provision.nodes import registry

    if not registry.nodes_path(settings).exists():
        return None
    # Only a workspace with nodes pays for importing SSH keys and the stream.
    from provision.nodes.links import for_run

    return for_run(settings, hosts, down_ok=down_ok)
