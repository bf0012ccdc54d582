"""The domain: plain data and pure functions, no I/O.

Places of the admin tree, the inventory model and host selection, standards,
the compliance model and its evaluation, scoring and waivers. Everything above
(infrastructure, services, the command line) may import from here; nothing
here imports from them, and the import contract in pyproject.toml keeps it so.
"""
