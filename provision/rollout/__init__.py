"""Rollouts in waves from the control node, recorded in the state store.

The public surface:

* `RolloutOptions(playbook, selection, canary=, batch=, by=, max_fail=, …)`
* `plan_rollout(settings, options)` -> RolloutPlan (the waves; touches nothing)
* `run_rollout(settings, plan, on_progress=, stop=)` -> RolloutResult
* `resume_rollout(settings, run_id, ...)`, `plan_retry(settings, run_id, which)`
* `StopSignal` (Ctrl-C: stop after this wave; twice: now), `Progress`
"""

from provision.rollout.plan import Size, Wave, parse_percent, parse_size, plan_waves
from provision.rollout.revision import git_revision
from provision.rollout.service import (
    Progress,
    ProgressCallback,
    RolloutOptions,
    RolloutPlan,
    RolloutResult,
    StopSignal,
    plan_retry,
    plan_rollout,
    resume_rollout,
    run_rollout,
)

__all__ = [
    "Progress",
    "ProgressCallback",
    "RolloutOptions",
    "RolloutPlan",
    "RolloutResult",
    "Size",
    "StopSignal",
    "Wave",
    "git_revision",
    "parse_percent",
    "parse_size",
    "plan_retry",
    "plan_rollout",
    "plan_waves",
    "resume_rollout",
    "run_rollout",
]
