"""Land parcels (宗地/地块) with land-use class and plot ratio."""

from __future__ import annotations

from cim.layerspec import FieldSpec, LayerSpec

LAYER = LayerSpec(
    name="parcels",
    title="Land parcels",
    description=(
        "Land parcels (宗地/地块): cadastral or planning plots with their land-use class (用地性质), "
        "area and plot ratio (容积率). Maintained by planning departments."
    ),
    geometry_type="MultiPolygon",
    fields=(
        FieldSpec("parcel_id", "string", "Parcel identifier (宗地代码/地块编号)", required=True),
        FieldSpec("land_use", "string", "Land-use class of the parcel (用地性质)"),
        FieldSpec("area_m2", "number", "Parcel area (用地面积)", unit="m2"),
        FieldSpec("plot_ratio", "number", "Plot ratio / floor area ratio (容积率): floor area over parcel area"),
    ),
    category="规划管控",
    minzoom=13,
    maxzoom=22,
    tile_attributes=("parcel_id", "land_use", "plot_ratio"),
    editable=True,
    color="#d7b5d8",
    order=30,
    keywords=("parcel", "宗地", "地块", "plot ratio", "容积率"),
)
