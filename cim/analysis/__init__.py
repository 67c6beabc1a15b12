"""CIM+ analyses of the base map (issue 13): each is a core function over a :class:`cim.store.Store`
(usable as ``city.<name>(...)``) and, in the same module, its OGC API process (``PROCESSES``).

- housing.py     building-at-point, buildings-in-area
- planning.py    parcel-at-point, zoning-compliance, landuse-by-district
- history.py     building-history, release-diff (across releases)
- statistics.py  district-statistics
- measure.py     measure (geodesic on CGCS2000)
- inputs.py      points and areas from JSON/shapely/WKT, checked against the city
"""
