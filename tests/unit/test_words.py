"""The small English of messages: counts and articles."""

from __future__ import annotations

import pytest

from provision.model.words import plural, with_article


def test_plural() -> None:
    assert plural(1, "error") == "1 error"
    assert plural(0, "error") == "0 errors"
    assert plural(41000, "error") == "41,000 errors"
    assert plural(2, "sweep", "sweeps") == "2 sweeps"


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("address", "an address"),
        ("asset_tag", "an asset_tag"),
        ("upazila_office", "an upazila_office"),
        ("upazila", "an upazila"),
        ("union", "a union"),
        ("union_digital_centre", "a union_digital_centre"),
        ("district", "a district"),
        ("hostname", "a hostname"),
        ("hour", "an hour"),
    ],
)
def test_with_article(word: str, expected: str) -> None:
    assert with_article(word) == expected
