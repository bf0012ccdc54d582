"""The rollout display says where each host ran: per node on the live panel, per line otherwise."""

from __future__ import annotations

import io

from rich.console import Console

from provision.cli import console, rollout
from provision.infra.store.records import HostResult
from provision.rollout import Progress


def _results(*hosts: tuple[str, str, str | None]) -> Progress:
    return Progress(
        "results",
        run_id=7,
        wave=1,
        waves=1,
        results=tuple(HostResult(host=h, wave=1, outcome=o, node=n) for h, o, n in hosts),
    )


def test_the_live_panel_counts_hosts_done_per_node() -> None:
    display = rollout.Display(4, live=False)
    display(_results(("a", "ok", None), ("b", "changed", "gazipur"), ("c", "failed", "gazipur")))
    display(_results(("d", "ok", "kaliganj")))
    assert display.node_line() == "done on: control node 1 · gazipur 2 · kaliganj 1"
    out = Console(file=io.StringIO(), width=120)
    out.print(display)
    text = out.file.getvalue()  # type: ignore[attr-defined]
    assert "4/4 hosts done" in text
    assert "done on: control node 1 · gazipur 2 · kaliganj 1" in text


def test_a_run_without_nodes_shows_no_node_line() -> None:
    display = rollout.Display(2, live=False)
    display(_results(("a", "ok", None), ("b", "ok", None)))
    out = Console(file=io.StringIO(), width=120)
    out.print(display)
    assert "done on" not in out.file.getvalue()  # type: ignore[attr-defined]


def test_plain_lines_name_the_node_that_ran_the_host(monkeypatch) -> None:
    lines: list[str] = []
    monkeypatch.setattr(console.err, "print", lambda text, **_kw: lines.append(str(text)))
    display = rollout.Display(2, live=False)
    display(_results(("a", "ok", None), ("b", "ok", "gazipur")))
    assert lines == ["  a ok", "  b ok (on node gazipur)"]
