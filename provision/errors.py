"""The errors core code raises and the exit codes every command shares.

Core code never prints or exits: it raises a `ProvisionError` carrying a message,
where it happened and what to do. The command line turns it into one line and the
exit code below. Scripts and timers rely on these numbers, so they never change.
"""

from __future__ import annotations

from enum import IntEnum
from pathlib import Path


class ExitStatus(IntEnum):
    """The exit codes of every provision command."""

    SUCCESS = 0
    INTERNAL_ERROR = 1
    USAGE_ERROR = 2
    BAD_INPUT = 3
    HOSTS_FAILED = 4
    HOSTS_UNREACHABLE = 5
    BELOW_THRESHOLD = 6
    INTERRUPTED = 130


def exit_status_for(*, failed: bool, unreachable: bool, interrupted: bool = False) -> ExitStatus:
    """The one ladder from a run's outcome to its exit status, for every result object.

    Interrupted (Ctrl-C) is 130 whatever the hosts did; else 4 when a host failed,
    5 when one was unreachable (none failed), 0 otherwise.
    """
    if interrupted:
        return ExitStatus.INTERRUPTED
    if failed:
        return ExitStatus.HOSTS_FAILED
    if unreachable:
        return ExitStatus.HOSTS_UNREACHABLE
    return ExitStatus.SUCCESS


class ProvisionError(Exception):
    """A problem the user can act on: bad input, bad configuration, a missing tool."""

    exit_status: ExitStatus = ExitStatus.BAD_INPUT

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        path: Path | str | None = None,
        line: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.path = path
        self.line = line

    @property
    def where(self) -> str | None:
        """`file:line` (or just the file) the problem was found in, if known."""
        if self.path is None:
            return None
        return f"{self.path}:{self.line}" if self.line is not None else str(self.path)

    def __str__(self) -> str:
        where = self.where
        return f"{where}: {self.message}" if where else self.message


class ConfigError(ProvisionError):
    """A configuration file, setting or flag value is wrong."""


class InputError(ProvisionError):
    """A file or argument the user gave cannot be used as it is."""


class PrerequisiteError(ProvisionError):
    """Something this machine needs is missing (a package, root, a kernel feature)."""


class StateError(ProvisionError):
    """The request does not fit the current state (a lab already running, say)."""


class RunnerError(ProvisionError):
    """Ansible could not be started at all (not: some hosts failed)."""

    exit_status = ExitStatus.INTERNAL_ERROR


class HostsFailedError(ProvisionError):
    """The work ran, and some hosts failed."""

    exit_status = ExitStatus.HOSTS_FAILED
