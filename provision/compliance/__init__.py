"""Compliance with the published standards: audit, fix, drift, notices, the timer.

`service` plans and runs an audit (evidence collected read-only over SSH, judged
on the control node by the domain's `provision.model.compliance.evaluate`);
`fix` plans and runs the rollout that repairs a run's failures, then audits
again; `drift` compares runs; `notice` and `notify` send webhook and mail
notices; `schedule` writes and installs the systemd service and timer. The
result data lives in the domain (`provision.model.compliance.model`), the
reports in `provision.reports`. See docs/compliance.md and docs/architecture.md.

    from provision.compliance.service import audit
    result = audit(settings, "district:gazipur")
"""
