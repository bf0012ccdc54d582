"""Who runs provision, asked of the system in one place.

Two answers, for two readers:

* `account_name` is the account this process runs as, the name systemd's
  `User=` wants. A uid without a name (a container's, with no passwd entry and
  no USER or LOGNAME) gives the uid as text: a schedule then refuses it as an
  unknown user and asks for `--user`, instead of failing on a KeyError.
* `current_user` is who started a run, for its record: under sudo the person
  behind it too (`alice (as root)`), since "root" alone names nobody.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping


def account_name() -> str:
    """The name of the account this process runs as; its uid as text when it has none."""
    try:
        # USER, LOGNAME… then the passwd entry: getpass tries them all.
        return getpass.getuser()
    except (KeyError, OSError):  # OSError from Python 3.13 on
        return str(os.getuid())


def current_user(environ: Mapping[str, str] | None = None) -> str:
    """Who runs this command, as a run records it: `alice (as root)` under sudo."""
    environ = os.environ if environ is None else environ
    user = account_name()
    sudo = environ.get("SUDO_USER")
    return f"{sudo} (as {user})" if sudo and sudo != user else user
