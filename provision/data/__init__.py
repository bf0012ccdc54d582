"""Reference data shipped with provision (read through importlib.resources)."""
