"""Compliance results as data, and the pure evaluation of evidence against a standard."""
