"""Land use and zoning (土地利用/控制性详细规划) with planning limits."""

from __future__ import annotations

from cim.layerspec import FieldSpec, LayerSpec

LAYER = LayerSpec(
    name="landuse",
    title="Land use and zoning",
    description=(
        "Land use and zoning areas (用地/控规): current or planned use with the zoning code and the "
        "regulatory height limit (限高) and floor-area-ratio limit (容积率上限) of the detailed plan (控制性详细规划)."
    ),
    geometry_type="MultiPolygon",
    fields=(
        FieldSpec("use", "string", "Land use (用地性质), e.g. residential, commercial, industrial", required=True),
        FieldSpec("zoning_code", "string", "Zoning / land-use class code of the plan (用地代码)"),
        FieldSpec("height_limit_m", "number", "Maximum building height allowed (建筑限高)", unit="m"),
        FieldSpec("far_limit", "number", "Maximum floor area ratio allowed (容积率上限)"),
    ),
    category="规划管控",
    minzoom=10,
    maxzoom=22,
    tile_attributes=("use", "zoning_code"),
    editable=True,
    color="#e6d9b8",
    order=10,
    keywords=("land use", "zoning", "用地", "控规", "height limit", "FAR"),
)
