"""The filter a node's job writes its worker's output through: secrets masked on the node.

ansible-runner's worker writes each event as one JSON line, with what Ansible
said in full (a task that prints a vaulted value prints it in clear). The
job's shell pipes that output through this filter into the `out` file the
control node follows, so the file on the node's disk holds no value the run's
`Masker` knows: every string of an event that holds one has it replaced with
`********`, as the control node's masker does. What is not an event (status
lines, keepalives, the artifacts zip that ends a job) passes unchanged, byte
for byte.

It runs on the node with the node's own Python (`python3 -c SOURCE FILE`), so it
imports nothing but the standard library. FILE, on the node's tmpfs, holds the
values (a JSON list, the `Masker`'s forms); the filter reads it and removes it
before the first line, so the values live only in the filter's memory.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import IO, Any

MASK = "********"


def _walk(value: Any, pattern: re.Pattern[str]) -> Any:
    """`value` with every string in it (keys too) masked."""
    if isinstance(value, str):
        return pattern.sub(MASK, value)
    if isinstance(value, dict):
        return {_walk(k, pattern): _walk(v, pattern) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, pattern) for v in value]
    return value


def filter_stream(source: IO[bytes], target: IO[bytes], values: list[str]) -> None:
    """Copy the worker's stream from `source` to `target`, its events masked."""
    ordered = sorted({v for v in values if v}, key=lambda v: (-len(v), v))
    pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
    in_json = (
        re.compile(
            "|".join(map(re.escape, {json.dumps(v, ensure_ascii=False)[1:-1] for v in ordered}))
        )
        if ordered
        else None
    )
    skip = 0
    while True:
        if skip:
            chunk = source.read(min(skip, 65536))
            if not chunk:
                break
            target.write(chunk)
            skip -= len(chunk)
            if not skip:
                target.flush()
            continue
        line = source.readline()
        if not line:
            break
        try:
            data = json.loads(line)
        except ValueError:
            data = None
        if isinstance(data, dict):
            if "zipfile" in data:
                # The artifacts zip follows, base64 of that many bytes, no newline after.
                skip = 4 * ((int(data["zipfile"]) + 2) // 3)
            elif (
                pattern is not None
                and in_json is not None
                and in_json.search(json.dumps(data, ensure_ascii=False))
            ):
                line = json.dumps(_walk(data, pattern)).encode() + b"\n"
        target.write(line)
        target.flush()


def main(argv: list[str]) -> int:
    path = Path(argv[1])
    values = [str(v) for v in json.loads(path.read_bytes())]
    path.unlink()
    filter_stream(sys.stdin.buffer, sys.stdout.buffer, values)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
