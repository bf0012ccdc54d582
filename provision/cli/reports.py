"""`provision reports`: results that hosts in pull mode queued, brought home (docs/pull.md)."""

from __future__ import annotations

from typing import Any

import click

from provision.cli import console
from provision.cli.context import AppContext, pass_app
from provision.cli.options import env_option, selection_argument


@click.group()
def reports() -> None:
    """Results that PCs in pull mode uploaded to their field servers.

    \b
    Example:
      provision reports collect
      provision reports collect site:DHK-KAL-NAG-S01 --json
    """


@reports.command()
@selection_argument()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@env_option
@pass_app
def collect(app: AppContext, selection: str, as_json: bool) -> None:
    """Bring the queued results of the pulled hosts SELECTION names into the store.

    Each field server that serves them is asked over SSH for the result files
    the store does not hold yet; each apply is recorded once, as the host's
    result in the run of its bundle serial (see provision runs) and with its
    evidence judged at the PC's own collection time. Exit status 5 when a
    field server could not be reached.

    \b
    Example:
      provision reports collect
      provision reports collect district:gazipur --json
    """
    from provision.pull import collect as run_collect
    from provision.pull import plan_collect

    plan = plan_collect(app.settings, selection or None)
    result = run_collect(app.settings, plan)
    if as_json:
        console.print_json(_data(result))
    else:
        for line in result.servers:
            if not line.reachable:
                console.err.print(f"{line.server}: {line.message}", markup=False, style="red")
                continue
            console.out.print(
                f"{line.server}: {line.listed} results queued, {line.fetched} new files, "
                f"{line.recorded} applies recorded, {line.already} recorded before",
                markup=False,
            )
        for refusal in result.refused:
            console.err.print(
                f"warning: {refusal.server}: outbox/{refusal.host}/{refusal.name} "
                f"refused: {refusal.reason}",
                markup=False,
            )
        if result.unserved:
            console.err.print(
                f"warning: no field server serves {', '.join(result.unserved)} "
                "(their pull_agent_server names none of the inventory's field servers)",
                markup=False,
            )
    if result.exit_status != 0:
        raise click.exceptions.Exit(int(result.exit_status))


def _data(result: Any) -> dict[str, Any]:
    return {
        "recorded": result.recorded,
        "servers": [
            {
                "server": s.server,
                "reachable": s.reachable,
                "message": s.message,
                "listed": s.listed,
                "fetched": s.fetched,
                "recorded": s.recorded,
                "already": s.already,
                "refused": [
                    {"host": r.host, "file": r.name, "reason": r.reason} for r in s.refused
                ],
            }
            for s in result.servers
        ],
        "unserved": list(result.unserved),
    }
