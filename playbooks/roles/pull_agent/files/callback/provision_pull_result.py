# Copyright: provision contributors
# Installed by the pull_agent role beside the agent; see docs/pull.md.
"""Write each task's outcome on this host as one JSON line (for the agent's result)."""

from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
---
name: provision_pull_result
type: aggregate
short_description: The pull agent's record of each task's outcome
description:
  - Appends one JSON line per task result to the file PROVISION_PULL_EVENTS names.
    Only the evidence module's result is kept whole; other results keep their
    status and message only, so that no variable a task saw is written out.
requirements: []
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "provision_pull_result"
    CALLBACK_NEEDS_ENABLED = True

    def _write(self, result, status):  # type: ignore[no-untyped-def]
        path = os.environ.get("PROVISION_PULL_EVENTS")
        if not path:
            return
        task = result._task
        body = result._result
        action = task.action
        line = {
            "host": result._host.get_name(),
            "task": task.get_name(),
            "action": action,
            "tags": sorted(task.tags or []),
            "status": "changed" if status == "ok" and body.get("changed") else status,
            "msg": str(body.get("msg", ""))[:500],
        }
        if action.endswith("provision_evidence") and status == "ok":
            line["evidence"] = True
            line["result"] = body.get("evidence", body)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line, default=str) + "\n")

    def v2_runner_on_ok(self, result):  # type: ignore[no-untyped-def]
        self._write(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):  # type: ignore[no-untyped-def]
        self._write(result, "ignored" if ignore_errors else "failed")

    def v2_runner_on_skipped(self, result):  # type: ignore[no-untyped-def]
        self._write(result, "skipped")

    def v2_runner_on_unreachable(self, result):  # type: ignore[no-untyped-def]
        self._write(result, "unreachable")
