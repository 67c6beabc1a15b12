"""The production store (PostGIS): release schemas (:mod:`.store`, :mod:`.releases`, :mod:`.schema`,
:mod:`.copy`), the edits overlay (:mod:`.live`), its SQL spellings (:mod:`.dialect`) and TLS
(:mod:`.tls`). Registered as the ``postgresql`` store backend (entry point group ``cim.stores``):
``postgresql://``, ``postgres://`` and ``postgresql+psycopg://`` URLs."""

from cim.store.postgis.store import PostgisStore

__all__ = ["PostgisStore"]
