"""Data sharing (issue #14): what departments use to find, copy and follow the base map.

- ``records``: one OGC API – Records record per layer per release, with its lineage (sources,
  checksums, which source is authoritative and which verified it, QA, cross-checks, build config);
  searched by ``q``/``bbox``/``datetime``/``type``/``externalIds``/``ids``, sorted by ``sortby``.
- ``changes``: the change feed of a layer between two releases (plus API edits when the later one
  is current), paged by cursor; feature identity across releases is (``source``, ``source_id``).
- ``downloads``: a layer of a release as GeoPackage, GeoParquet or FlatGeobuf, written in batches
  (never whole in memory) into a file cache keyed by release and edit generation, ETag = sha256.
- ``announce``: new releases as CloudEvents (MQTT and SSE, the publisher the warnings use).
- Incremental builds live in the build (cim/build/carry.py): a layer whose sources (sha256) and
  config are unchanged is carried over from the current release without being read again.

Nothing here imports the web packages; ``ogcapi`` serves these (records_routes, changes_routes,
downloads_routes, releases_stream) and the CLI has ``cim catalog``, ``cim export features``.
"""
