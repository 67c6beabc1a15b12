"""The SQL both backends share: feature reads (:mod:`.features`), CQL2 (:mod:`.cql2`), keyset
paging (:mod:`.keyset`), datetime conditions (:mod:`.temporal`), vector tiles (:mod:`.tiles`,
:mod:`.tile_geometry`) and the edits overlay (:mod:`.overlay`). None of it asks which backend it
runs on: each function takes the backend's :class:`~cim.store.sql.dialect.Dialect` (or
:class:`~cim.store.sql.tiles.TileDialect`), defined in the backend's own package. Identifiers
come only from the layers' schemas, always through :func:`quote_ident`."""


def quote_ident(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'
