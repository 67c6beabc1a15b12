"""Helpers of the change-feed tests: the planned city's release 3 (made from release 2 with features
added, removed, changed and moved, identity kept) and a department's copy that applies a feed."""

from __future__ import annotations

import math
from typing import Any

import geopandas as gpd
import shapely
import shapely.geometry
from shapely import affinity

from cim.store import LayerData, ReleaseDraft, open_store
from support.planning_city import publish_planning_city, release_layers


def release_three(srid: int = 4326) -> list[LayerData]:
    """Release 2's layers with buildings: B1 moved, B4's address and height changed, B5 and B6
    removed, B9..B11 added (B11 without a height); parcels: P2's land use changed."""
    layers = release_layers(srid, 2)
    out = []
    for data in layers:
        frame = data.frame.copy()
        if data.spec.name == "buildings":
            frame = frame.set_index("name", drop=False)
            frame.loc["B1", "geometry"] = affinity.translate(frame.loc["B1", "geometry"], 0.0001, 0.00005)
            frame.loc["B4", "address"] = "B4 新地址"
            frame.loc["B4", "height_m"] = 91.5
            frame = frame.drop(index=["B5", "B6"])
            template = frame.loc["B7"]
            new = []
            for i, bid in enumerate(("B9", "B10", "B11")):
                row = template.copy()
                row["name"], row["source_id"] = bid, bid
                row["height_m"] = None if bid == "B11" else 10.0 + i
                row["geometry"] = affinity.translate(template["geometry"], 0.0002 * (i + 1), 0)
                new.append(row)
            frame = gpd.GeoDataFrame(
                [*frame.to_dict("records"), *(r.to_dict() for r in new)], geometry="geometry", crs=frame.crs
            )
            frame["floors"] = frame["floors"].astype("Int64")
            frame["year_built"] = frame["year_built"].astype("Int64")
        elif data.spec.name == "parcels":
            frame.loc[frame["parcel_id"] == "P2", "land_use"] = "B1"
        out.append(LayerData(data.spec, frame))
    return out


def publish_three_releases(url: str) -> None:
    publish_planning_city(url, releases=2)
    with open_store(url) as store:
        store.publish(ReleaseDraft(layers=release_three(), srid=4326))


def plain(value: Any) -> Any:
    """A value as compared: missing values (None, NaN, pandas NA) as None, numbers as float."""
    if value is None:
        return None
    try:
        if value != value or (isinstance(value, float) and math.isnan(value)):
            return None
    except TypeError:  # pandas NA
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def copy_of(frame: gpd.GeoDataFrame) -> dict[tuple[Any, Any], dict[str, Any]]:
    """A department's copy: each feature's properties and geometry, by (source, source_id)."""
    copy = {}
    for _, row in frame.iterrows():
        values = {k: plain(v) for k, v in row.items() if k != "geometry"}
        values["geometry"] = row["geometry"]
        copy[(row["source"], row["source_id"])] = values
    return copy


def apply_feature(copy: dict, feature: dict[str, Any]) -> None:
    """Apply one feature of a change feed to ``copy``."""
    props = feature["properties"]
    key = (props["source"], props["source_id"])
    if feature["change"]["type"] == "removed":
        del copy[key]
        return
    values = {k: plain(v) for k, v in props.items()}
    values["geometry"] = shapely.geometry.shape(feature["geometry"]) if feature["geometry"] else None
    copy[key] = values


def assert_same_copy(mine: dict, theirs: dict, tolerance: float = 1e-8) -> None:
    assert sorted(mine, key=str) == sorted(theirs, key=str)
    for key, values in theirs.items():
        got = mine[key]
        for name, value in values.items():
            if name == "geometry":
                assert shapely.equals_exact(got["geometry"], value, tolerance=tolerance), key
            else:
                assert got.get(name) == value, (key, name, got.get(name), value)
