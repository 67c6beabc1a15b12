"""CIM+ analyses of the base map (issue 13): each is a core function over a :class:`cim.store.Store`
(usable as ``city.<name>(...)``) and, in the same module, its OGC API process (``PROCESSES``).

- housing.py     building-at-point, buildings-in-area
- planning.py    parcel-at-point (and the planning processes' definitions); compliance.py
                 zoning-compliance, with zoning.py (the rules: ALLOWED_USES, limits in force);
                 landuse.py landuse-by-district
- lookup.py      what the point lookups and reports share (finest division, areas in metres, GeoJSON)
- history.py     building-history, release-diff (across releases)
- statistics.py  district-statistics
- measure.py     measure (geodesic on CGCS2000)
- inputs.py      points and areas from JSON/shapely/WKT, checked against the city
"""
