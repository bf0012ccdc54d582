"""Cutting a selection into waves: canary, batches, the administrative tree."""

from __future__ import annotations

import pytest

from provision.errors import InputError
from provision.rollout import Size, parse_percent, parse_size, plan_waves

HOSTS = [f"h{i}" for i in range(1, 11)]
PLACES = {
    h: {"division": "Dhaka", "district": "Gazipur" if i <= 6 else "Narsingdi"}
    | ({"upazila": "Kaliganj"} if i in (2, 3) else {})
    for i, h in enumerate(HOSTS, 1)
}


def _shape(waves: list) -> list[tuple[int, str, tuple[str, ...]]]:
    return [(w.number, w.label, w.hosts) for w in waves]


def test_no_options_is_one_wave_of_everything() -> None:
    assert _shape(plan_waves(HOSTS, places={})) == [(1, "wave 1", tuple(HOSTS))]


def test_canary_then_batches_of_a_count() -> None:
    waves = plan_waves(HOSTS, places={}, canary="2", batch=Size(count=4))
    assert [w.hosts for w in waves] == [
        ("h1", "h2"),
        ("h3", "h4", "h5", "h6"),
        ("h7", "h8", "h9", "h10"),
    ]
    assert waves[0].canary and waves[0].number == 0 and waves[1].number == 1


def test_batch_percent_is_of_the_hosts_after_the_canary_rounded_up() -> None:
    waves = plan_waves(HOSTS, places={}, canary="1", batch=parse_size("25%", "--batch"))
    assert [len(w.hosts) for w in waves] == [1, 3, 3, 3]


def test_canary_by_site_or_selection() -> None:
    def select(text: str) -> list[str]:
        return ["h5", "h9"] if text == "site:GAZ-001" else []

    waves = plan_waves(HOSTS, places={}, canary="GAZ-001", select=select)
    assert waves[0].hosts == ("h5", "h9") and waves[0].label == "canary (GAZ-001)"
    assert "h5" not in waves[1].hosts and len(waves[1].hosts) == 8


def test_by_district_keeps_each_district_together_and_splits_by_batch() -> None:
    waves = plan_waves(HOSTS, places=PLACES, by="district", batch=Size(count=4))
    assert _shape(waves) == [
        (1, "wave 1: Gazipur (1/2)", ("h1", "h2", "h3", "h4")),
        (2, "wave 2: Gazipur (2/2)", ("h5", "h6")),
        (3, "wave 3: Narsingdi", ("h7", "h8", "h9", "h10")),
    ]


def test_by_upazila_puts_hosts_above_that_level_with_their_district() -> None:
    waves = plan_waves(HOSTS, places=PLACES, by="upazila")
    assert [(w.label, len(w.hosts)) for w in waves] == [
        ("wave 1: Gazipur, no upazila", 4),
        ("wave 2: Kaliganj", 2),
        ("wave 3: Narsingdi, no upazila", 4),
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"canary": "10"}, "would take all 10"),
        ({"canary": "0"}, "no canary"),
        ({"canary": "NOPE-1", "select": lambda _t: []}, "matches none"),
        ({"by": "village"}, "not a level"),
    ],
)
def test_bad_plans_are_input_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        plan_waves(HOSTS, places=PLACES, **kwargs)


def test_sizes_and_percentages() -> None:
    assert parse_size("10", "--batch") == Size(count=10)
    assert parse_size("12.5%", "--batch").of(80) == 10
    assert parse_percent("10%", "--max-fail") == 10.0
    assert parse_percent("0", "--max-fail") == 0.0
    for bad in ("0", "-1", "ten", "150%", ""):
        with pytest.raises(InputError, match="--batch"):
            parse_size(bad, "--batch")
    with pytest.raises(InputError, match="--max-fail"):
        parse_percent("101%", "--max-fail")
