"""Compliance with the published standards: audit, evaluation, scoring, drift, reports.

`model` holds the result data every other part reads (the service that audits
hosts, the store, scoring, drift and the report writers).
"""
