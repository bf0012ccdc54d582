"""Execution nodes: field servers that run their sites' share of a run (docs/nodes.md)."""
