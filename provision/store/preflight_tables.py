"""Preflight sweeps and their per-host results (migration 3).

Tables are defined on the store's one `metadata`; `TABLES` lists them in the
order their migration creates them. A released migration is never edited.
"""

from __future__ import annotations

import sqlalchemy as sa

from provision.store.schema import metadata

#: Created, in this order, by their migration in provision/store/schema.py.
TABLES: tuple[sa.Table, ...] = ()

__all__ = ["TABLES", "metadata"]
