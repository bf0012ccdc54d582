"""The stored form of a host's results: current blobs, blobs of the form before, findings."""

from __future__ import annotations

import json
import zlib

from provision.infra.store.compliance_codec import decode_results, encode_results
from provision.model.compliance.model import ControlResult


def test_the_passing_majority_is_stored_without_repeating_its_value() -> None:
    results = (
        ControlResult("A", "pass", "low", {"k": [1, 2]}, {"k": [1, 2]}, ""),
        ControlResult("B", "fail", "high", "no", "yes", "differs"),
        ControlResult("C", "pass", "low", 1, True, ""),  # equal in Python, not in JSON
        ControlResult("D", "waived", "high", None, None, "", waiver="W-1", waiver_expired=True),
    )
    blob = encode_results(results)
    rows = json.loads(zlib.decompress(blob[1:]))
    assert [len(row) for row in rows] == [7, 8, 8, 7]
    assert decode_results(blob) == results
    assert decode_results(blob)[2].actual is True


def test_blobs_of_the_form_before_still_read() -> None:
    legacy = zlib.compress(
        json.dumps(
            [["A", "pass", "low", "x", "x", "", None], ["B", "fail", "high", 1, 2, "m", "W", True]]
        ).encode()
    )
    assert decode_results(legacy) == (
        ControlResult("A", "pass", "low", "x", "x", ""),
        ControlResult("B", "fail", "high", 1, 2, "m", waiver="W", waiver_expired=True),
    )
