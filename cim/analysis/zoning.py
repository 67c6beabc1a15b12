"""The zoning rules the planning analyses apply (cim/analysis/planning.py), on frames already read:

- **zone of a feature**: the zone (layer ``landuse``) holding the feature's point — a building's
  centroid, a parcel's point on surface; where zones overlap, the smallest governs (a zone drawn
  inside another refines it);
- **height**: a building is too tall when ``height_m`` > its zone's ``height_limit_m`` (buildings
  without a height, or in a zone without a limit, are not checked);
- **floor-area ratio (FAR, 容积率)** of a parcel: Σ footprint × floors of the buildings whose
  centroid lies in the parcel, ÷ the parcel's area; areas in m² in the metric CRS of
  :func:`cim.impact_area.metric_crs` (the storage CRS when it is projected in metres, else an
  equal-area projection on the ellipsoid); floors as an impact analysis counts them
  (:func:`cim.impact._floors`: ``floors`` when > 0, else round(height / 3 m), else 1). Too dense when
  FAR > the zone's ``far_limit``;
- **use**: a building's ``use`` is classed as for impact analysis (:func:`cim.impact_people.use_class`:
  residential, office, retail, education, health, hotel, public, industrial, warehouse, other) and
  must be among :data:`ALLOWED_USES` of its zone's ``use`` (lower case) — the class or the raw use
  itself. A zone use the table does not name, and a building of class ``other`` (no or an unknown
  use), is not checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from cim.analysis.lookup import first_match, small_areas_m2
from cim.errors import BadInput
from cim.impact import _floors as floors_counted  # the impact analysis's rule, shared on purpose
from cim.impact_people import use_class

_HOUSING = ("residential",)
_SERVICES = ("education", "health", "public")
_BUSINESS = ("office", "retail", "hotel")
_WORKS = ("industrial", "warehouse")

#: zone use (layer ``landuse``, lower case) → building use classes (or raw uses) allowed in it. After
#: GB 50137-2011's classes: residential land (R) takes homes and their services (schools, clinics, shops);
#: commercial land (B) business and mixed commercial-residential buildings; industrial land (M) and
#: warehouses (W) works and their offices; land for public services (A) those services. Other zone
#: uses (green, farmland, water, ...) are not checked: the table names what it knows.
ALLOWED_USES: dict[str, frozenset[str]] = {
    "residential": frozenset(_HOUSING + _SERVICES + ("retail",)),
    "commercial": frozenset(_BUSINESS + _HOUSING + _SERVICES),
    "retail": frozenset(_BUSINESS + _HOUSING + _SERVICES),
    "mixed": frozenset(_BUSINESS + _HOUSING + _SERVICES),
    "industrial": frozenset(_WORKS + ("office",)),
    "warehouse": frozenset(_WORKS + ("office",)),
    "education": frozenset(_SERVICES + _HOUSING),
    "居住用地": frozenset(_HOUSING + _SERVICES + ("retail",)),
    "商业服务业设施用地": frozenset(_BUSINESS + _HOUSING + _SERVICES),
    "工业用地": frozenset(_WORKS + ("office",)),
    "物流仓储用地": frozenset(_WORKS + ("office",)),
}

KINDS = ("height", "far", "use")


def allowed_uses(override: Mapping[str, Iterable[str]] | None = None) -> dict[str, frozenset[str]]:
    """The table in force: :data:`ALLOWED_USES` with the zone uses of ``override`` replaced (lower case);
    BadInput naming a zone use whose value is not a list of strings."""
    table = dict(ALLOWED_USES)
    for zone_use, uses in (override or {}).items():
        if not isinstance(zone_use, str) or isinstance(uses, (str, bytes)) or not isinstance(uses, Iterable):
            raise BadInput(f"allowed_uses: {str(zone_use)[:40]!r} must map to a list of building uses, not {str(uses)[:60]!r}")
        values = list(uses)
        if not all(isinstance(u, str) for u in values):
            raise BadInput(f"allowed_uses: {zone_use[:40]!r}: every building use must be a string")
        table[zone_use.strip().lower()] = frozenset(u.strip().lower() for u in values)
    return table


def zone_of(points: np.ndarray, zone_geoms: np.ndarray) -> np.ndarray:
    """Index of the zone governing each point (-1: none): the smallest zone holding it."""
    return first_match(points, zone_geoms, shapely.area(zone_geoms))


def too_tall(height_m: np.ndarray, limit_m: np.ndarray) -> np.ndarray:
    """Mask of heights above their limit (unknown height or limit: not above)."""
    height = numbers(height_m)
    limit = numbers(limit_m)
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(height, nan=-np.inf) > np.nan_to_num(limit, nan=np.inf)


def forbidden_uses(building_uses: np.ndarray, zone_uses: np.ndarray, table: Mapping[str, frozenset[str]]) -> np.ndarray:
    """Mask of buildings whose use (class or raw value) the table forbids in their zone's use."""
    b_codes, b_values = pd.factorize(pd.Series(building_uses, dtype=object))  # missing: -1
    z_codes, z_values = pd.factorize(pd.Series(zone_uses, dtype=object))
    if not len(b_values) or not len(z_values):
        return np.zeros(len(building_uses), dtype=bool)
    raw = [v.strip().lower() if isinstance(v, str) else "" for v in b_values]
    classes = use_class(np.asarray(b_values, dtype=object))
    allowed = [table.get(v.strip().lower()) if isinstance(v, str) else None for v in z_values]
    # forbidden[building use, zone use], computed once per pair of distinct values
    forbidden = np.array(
        [[rule is not None and cls != "other" and cls not in rule and name not in rule for rule in allowed]
         for name, cls in zip(raw, classes)],
        dtype=bool,
    )
    known = (b_codes >= 0) & (z_codes >= 0)
    out = np.zeros(len(building_uses), dtype=bool)
    out[known] = forbidden[b_codes[known], z_codes[known]]
    return out


def floor_areas(geoms: np.ndarray, floors: np.ndarray, height_m: np.ndarray, srid: int, metric: CRS,
                centroids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Footprint areas (m²) and floor areas (footprint × floors counted) of buildings stored in ``srid``
    (``centroids``: theirs, when already known)."""
    footprint = small_areas_m2(geoms, srid, metric, centroids)
    return footprint, footprint * floors_counted(np.asarray(floors), np.asarray(height_m))


def parcel_floor_area(parcel_geoms: np.ndarray, centroids: np.ndarray, floor_area: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per parcel: Σ floor area and number of the buildings whose centroid it holds (a centroid in
    several overlapping parcels counts in the first, by position)."""
    parcel = first_match(centroids, parcel_geoms)
    inside = parcel >= 0
    n = len(parcel_geoms)
    total = np.bincount(parcel[inside], weights=floor_area[inside], minlength=n) if n else np.zeros(0)
    count = np.bincount(parcel[inside], minlength=n) if n else np.zeros(0, dtype=np.int64)
    return total.astype(float), count.astype(np.int64)


def numbers(values: np.ndarray) -> np.ndarray:
    """Values as floats (missing: NaN)."""
    return np.array(pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float, na_value=np.nan))
