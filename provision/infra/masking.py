"""Mask secret values in whatever Ansible says, before anything records or prints it.

A run knows two kinds of secret: every value it decrypted from the vault (whatever
the variable is called), and every value of a variable whose name says it is
secret (`db_password`, `api_token`, `ansible_become_password`, …, nested values
under such a name too). A `Masker` holds those values and replaces them with
`MASK` in a text or, in place, in an event's data. `provision.infra.runner` applies it
to every event before anyone sees it (callbacks, the store, the terminal) and
before ansible-runner writes the event or its stdout into the run's artifacts.

Plain data and pure functions: no I/O (the vault is opened in `provision.access.secrets`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Variables whose values are masked wherever they appear.
SECRET_NAME = re.compile(r"pass|secret|token|key|credential", re.IGNORECASE)
MASK = "********"
#: Shorter values are not masked: masking "yes" or "22" everywhere would garble every
#: message while hiding nothing worth hiding.
MIN_LENGTH = 4


def _forms(value: str) -> Iterator[str]:
    """The ways a value shows up in Ansible's output: as it is, JSON-escaped (inside a
    result printed as JSON), and line by line for a multi-line value (a key file)."""
    yield value
    escaped = json.dumps(value)[1:-1]
    if escaped != value:
        yield escaped
    for line in value.splitlines():
        if len(line.strip()) >= 8:
            yield line.strip()


@dataclass(frozen=True)
class Masker:
    """The secret values of one run; `text` and `scrub` replace them with MASK."""

    values: tuple[str, ...] = ()
    _pattern: re.Pattern[str] | None = field(default=None, repr=False, compare=False)
    #: The values as they read inside a JSON text: one search over an event's JSON
    #: says whether any string in it holds one, before the event is walked.
    _in_json: re.Pattern[str] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, values: Iterable[str]) -> Masker:
        found = {form for v in values for form in _forms(str(v)) if len(form) >= MIN_LENGTH}
        # Longest first: a value that contains another is replaced whole.
        ordered = tuple(sorted(found, key=lambda v: (-len(v), v)))
        if not ordered:
            return cls()
        # JSON escapes character by character, so a value inside any string of an
        # event shows, escaped, inside the event's JSON text.
        in_json = {json.dumps(v, ensure_ascii=False)[1:-1] for v in ordered}
        return cls(
            ordered,
            re.compile("|".join(map(re.escape, ordered))),
            re.compile("|".join(map(re.escape, sorted(in_json)))),
        )

    def __bool__(self) -> bool:
        return bool(self.values)

    def __add__(self, other: Masker) -> Masker:
        return Masker.of((*self.values, *other.values))

    def text(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

    def data(self, value: Any) -> Any:
        """`value` with every string in it (keys too) masked; other values as they are.

        Dicts and lists are masked in place and returned; a string is returned
        masked. Nothing is copied where nothing matches: this runs on every event.
        """
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self._pattern.sub(MASK, value) if self._pattern.search(value) else value
        if isinstance(value, dict):
            for key, item in list(value.items()):
                masked = self.data(item)
                if isinstance(key, str) and self._pattern.search(key):
                    del value[key]
                    value[self.text(key)] = masked
                elif masked is not item:
                    value[key] = masked
            return value
        if isinstance(value, list):
            for index, item in enumerate(value):
                masked = self.data(item)
                if masked is not item:
                    value[index] = masked
            return value
        if isinstance(value, Mapping | tuple):
            return self.data(dict(value) if isinstance(value, Mapping) else list(value))
        return value

    def scrub(self, event: dict[str, Any]) -> None:
        """Mask an event dict in place (ansible-runner writes the very same dict out).

        Most events hold no secret: one search over the event's JSON text (C speed)
        skips the walk over every string of them.
        """
        if self._in_json is None:
            return
        try:
            text = json.dumps(event, ensure_ascii=False, default=str)
        except (TypeError, ValueError):  # not JSON-shaped: walk it
            text = None
        if text is None or self._in_json.search(text):
            self.data(event)


NO_MASKER = Masker()


def named_secrets(variables: Mapping[str, Any]) -> Iterator[str]:
    """Every plain value under a secret-looking name, at any depth of `variables`."""

    def walk(value: Any, secret: bool) -> Iterator[str]:
        if isinstance(value, Mapping):
            if set(value) == {"__ansible_vault"}:
                return  # still encrypted: the vault's own values are added decrypted
            for name, item in value.items():
                yield from walk(item, secret or bool(SECRET_NAME.search(str(name))))
        elif isinstance(value, list | tuple):
            for item in value:
                yield from walk(item, secret)
        elif secret and isinstance(value, str | int) and not isinstance(value, bool):
            yield str(value)

    yield from walk(variables, False)
