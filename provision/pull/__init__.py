"""Hosts in pull mode: bringing home what they reported (docs/pull.md).

The public surface:

* `plan_collect(settings, selection)` -> CollectPlan: which field servers hold the
  queued results of which pulled hosts (reads only)
* `collect(settings, plan)` -> CollectResult: fetch the new results over SSH and
  record each apply once, with its evidence judged
"""

from provision.pull.collect import (
    CollectPlan,
    CollectResult,
    Refusal,
    ServerCollect,
    collect,
    plan_collect,
)

__all__ = [
    "CollectPlan",
    "CollectResult",
    "Refusal",
    "ServerCollect",
    "collect",
    "plan_collect",
]
