"""Land use per administrative division (the ``landuse-by-district`` process's analysis, usable as
``city.landuse_by_district``): how much of each division each land use covers, in m² on the ellipsoid
(the metric CRS of :func:`cim.impact_area.metric_crs`) and as a share of the division's area."""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from cim.analysis.lookup import areas_m2, metric_for, read_layer, require, valid
from cim.errors import BadInput
from cim.impact import DIVISION_LEVELS
from cim.store import Store


def landuse_by_district(store: Store, level: str = "district") -> pd.DataFrame:
    """Per administrative division of ``level``: the area (m²) of each land use (the zones' ``use``;
    zones of one use dissolved, so overlaps within a use count once) inside it and its ``share`` of
    the division's area. Columns: code, name, use, area_m2, share, division_area_m2; by code, then
    largest area first. BadInput when no division has that level."""
    if level not in DIVISION_LEVELS:
        raise BadInput(f"unknown division level {str(level)[:40]!r}: choose from {', '.join(DIVISION_LEVELS)}")
    d_info = require(store, "admin_divisions", "landuse-by-district")
    zones_info = require(store, "landuse", "landuse-by-district")
    divisions = store.read_frame(d_info.name, columns=("code", "name", "level"))
    present = sorted(set(divisions["level"].dropna()), key=lambda v: DIVISION_LEVELS.index(v) if v in DIVISION_LEVELS else 99)
    divisions = divisions[divisions["level"] == level]
    if not len(divisions):
        raise BadInput(f"the city has no division of level {level!r} (levels present: {', '.join(present) or 'none'})")
    srid = d_info.srid
    bounds = tuple(divisions.total_bounds)
    zones = read_layer(store, zones_info, bounds, ("use",), srid)
    metric = metric_for(d_info, bounds)
    d_geoms = valid(divisions.geometry.to_numpy())
    d_area = areas_m2(d_geoms, srid, metric)
    z_geoms = valid(zones.geometry.to_numpy())
    d_idx, z_idx = shapely.STRtree(z_geoms).query(d_geoms, predicate="intersects")
    pieces = shapely.intersection(d_geoms[d_idx], z_geoms[z_idx])
    uses = zones["use"].astype(object).where(zones["use"].notna(), None).to_numpy()[z_idx]
    rows = []
    frame = pd.DataFrame({"d": d_idx, "use": [u if u is not None else "\0" for u in uses], "piece": pieces})
    for (d, use), group in frame.groupby(["d", "use"], sort=False):
        merged = shapely.union_all(group["piece"].to_numpy()) if len(group) > 1 else group["piece"].iat[0]
        rows.append((d, None if use == "\0" else use, float(areas_m2(np.array([merged]), srid, metric)[0])))
    table = pd.DataFrame(rows, columns=["d", "use", "area_m2"])
    table = table[table["area_m2"] > 0]
    table["code"] = divisions["code"].to_numpy()[table["d"].to_numpy()]
    table["name"] = divisions["name"].to_numpy()[table["d"].to_numpy()]
    table["division_area_m2"] = d_area[table["d"].to_numpy()]
    table["share"] = table["area_m2"] / table["division_area_m2"]
    table = table.sort_values(["code", "area_m2"], ascending=[True, False])
    return table[["code", "name", "use", "area_m2", "share", "division_area_m2"]].reset_index(drop=True)
