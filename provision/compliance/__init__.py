"""Compliance with the published standards: audit, evaluation, scoring, drift, reports.

`model` holds the result data every other part reads (the service that audits
hosts, the store, scoring, drift and the report writers). `evaluate` judges the
checks over collected evidence (pure); `service` plans and runs an audit;
`drift` compares two runs; `fix` plans the rollout that repairs a run's
failures; `report` writes JSON, JUnit, CSV and HTML. See docs/compliance.md.

    from provision.compliance.service import audit
    result = audit(settings, "district:gazipur")
"""
