"""Cut a selection of hosts into waves: an optional canary, then batches.

Pure functions over host names and their places; no I/O. The plan is what the
user confirms and what the store records, so it is computed once, up front, and
never recomputed on resume (the inventory may have changed since).

* canary `N` takes the first N hosts; canary `SITE` (a site code, or any
  selection such as `upazila:gazipur/kaliganj`) takes the hosts it selects.
  The canary must succeed entirely or the rollout stops.
* `--by LEVEL` keeps each place of that level (district, upazila, …) together:
  waves follow the administrative tree, one place after another, in inventory
  order. Hosts that do not stand at that level (a district server, for
  `--by upazila`) form a wave of their own per parent place.
* `--batch N` or `--batch P%` caps the size of each wave (P% of the hosts
  after the canary, rounded up); a place bigger than a batch is split.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from provision.errors import InputError
from provision.model.places import LEVELS

_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
_COUNT = re.compile(r"^\s*(\d+)\s*$")


@dataclass(frozen=True)
class Wave:
    number: int  # 0 is the canary when there is one
    label: str
    hosts: tuple[str, ...]
    canary: bool = False


@dataclass(frozen=True)
class Size:
    """A count (`10`) or a share (`25%`)."""

    count: int | None = None
    percent: float | None = None

    def of(self, total: int) -> int:
        if self.count is not None:
            return self.count
        assert self.percent is not None
        return max(1, math.ceil(total * self.percent / 100))

    def __str__(self) -> str:
        return str(self.count) if self.count is not None else f"{self.percent:g}%"


def parse_size(text: str, option: str) -> Size:
    """`10` or `25%`; zero or nonsense is an InputError naming the option."""
    count = _COUNT.match(text)
    if count and int(count.group(1)) > 0:
        return Size(count=int(count.group(1)))
    share = _PERCENT.match(text)
    if share and 0 < float(share.group(1)) <= 100:
        return Size(percent=float(share.group(1)))
    raise InputError(
        f"{option} {text!r} is neither a number of hosts nor a percentage",
        hint=f"write {option} 10 (hosts) or {option} 25% (of the hosts)",
    )


def parse_percent(text: str, option: str) -> float:
    """`10%` (or `10`): a share from 0 to 100."""
    match = _PERCENT.match(text) or _COUNT.match(text)
    if match and 0 <= float(match.group(1)) <= 100:
        return float(match.group(1))
    raise InputError(
        f"{option} {text!r} is not a percentage from 0 to 100",
        hint=f"write {option} 10% to stop once more than a tenth of the hosts failed",
    )


def check_level(level: str) -> str:
    if level not in LEVELS:
        raise InputError(
            f"--by {level!r} is not a level of the administrative tree",
            hint="use one of: " + ", ".join(LEVELS),
        )
    return level


def plan_waves(
    hosts: Sequence[str],
    *,
    places: Mapping[str, Mapping[str, str]],
    canary: str | None = None,
    batch: Size | None = None,
    by: str | None = None,
    select: Callable[[str], Sequence[str]] | None = None,
) -> list[Wave]:
    """The waves for `hosts` (in inventory order).

    `places[host]` maps levels (division, district, upazila, union) to the
    host's place names. `select(text)` resolves a canary selection to host names.
    """
    if not hosts:
        raise InputError("the selection matches no hosts", hint="check it with inventory show")
    remaining = list(hosts)
    waves: list[Wave] = []
    if canary:
        chosen = _canary_hosts(remaining, canary, select)
        waves.append(Wave(0, f"canary ({canary})", tuple(chosen), canary=True))
        picked = set(chosen)
        remaining = [h for h in remaining if h not in picked]
    groups: list[tuple[str, list[str]]]
    if by:
        groups = _by_place(remaining, places, check_level(by))
    else:
        groups = [("", remaining)] if remaining else []
    size = batch.of(len(remaining)) if batch else None
    for label, members in groups:
        step = size or len(members)
        parts = [members[i : i + step] for i in range(0, len(members), step)]
        for index, part in enumerate(parts):
            number = len(waves) + (0 if canary else 1)
            name = f"wave {number}"
            if label:
                name += f": {label}" + (f" ({index + 1}/{len(parts)})" if len(parts) > 1 else "")
            waves.append(Wave(number, name, tuple(part)))
    return waves


def _canary_hosts(
    hosts: list[str], canary: str, select: Callable[[str], Sequence[str]] | None
) -> list[str]:
    count = _COUNT.match(canary)
    if count:
        n = int(count.group(1))
        if n < 1:
            raise InputError("--canary 0 makes no canary", hint="leave --canary out instead")
        if n >= len(hosts):
            raise InputError(
                f"--canary {n} would take all {len(hosts)} selected hosts",
                hint="a canary is a small part of the rollout; choose fewer hosts",
            )
        return hosts[:n]
    if select is None:
        raise InputError(f"--canary {canary!r} needs the inventory to resolve it")
    # A bare word is a site code first; failing that, a host or group name.
    picked = set(select(canary if ":" in canary else f"site:{canary}"))
    if not picked and ":" not in canary:
        picked = set(select(canary))
    chosen = [h for h in hosts if h in picked]
    if not chosen:
        raise InputError(
            f"--canary {canary!r} matches none of the selected hosts",
            hint="give a site code of the selection (--canary GAZ-001), "
            "a selection (--canary upazila:gazipur/kaliganj) or a number of hosts",
        )
    if len(chosen) == len(hosts):
        raise InputError(
            f"--canary {canary!r} matches every selected host",
            hint="a canary is a small part of the rollout; choose a smaller one",
        )
    return chosen


def _by_place(
    hosts: list[str], places: Mapping[str, Mapping[str, str]], level: str
) -> list[tuple[str, list[str]]]:
    """Hosts grouped by their place at `level`, in order of first appearance."""
    depth = LEVELS.index(level)
    groups: dict[str, list[str]] = {}
    for host in hosts:
        place = places.get(host, {})
        name = place.get(level)
        if not name:
            # Not at this level: keep it with its nearest place above.
            above = next((place[lv] for lv in reversed(LEVELS[:depth]) if place.get(lv)), None)
            name = f"{above}, no {level}" if above else f"no {level}"
        groups.setdefault(name, []).append(host)
    return list(groups.items())
