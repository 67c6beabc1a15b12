"""Building footprints (建筑物) with height and floors for LOD1 (CIM2) extrusion."""

from __future__ import annotations

from cim.layerspec import FieldSpec, LayerSpec

LAYER = LayerSpec(
    name="buildings",
    title="Buildings",
    description=(
        "Building footprints (建筑物基底) with height, number of floors (层数), use, structure and year "
        "built; extruded by height they form the CIM2 frame model (白模, about LOD1)."
    ),
    geometry_type="MultiPolygon",
    fields=(
        FieldSpec("name", "string", "Building name (建筑名称)"),
        FieldSpec("use", "string", "Building use (建筑用途), e.g. residential, office, retail"),
        FieldSpec("height_m", "number", "Building height above ground (建筑高度)", unit="m"),
        FieldSpec("floors", "integer", "Number of above-ground floors (地上层数)"),
        FieldSpec("structure", "string", "Structure or main material (建筑结构), e.g. concrete, brick"),
        FieldSpec("year_built", "integer", "Year of completion (建成年份)"),
        FieldSpec("address", "string", "Street address (门牌地址)"),
    ),
    category="时空基础",
    minzoom=13,
    maxzoom=22,
    tile_attributes=("name", "use", "height_m", "floors"),
    color="#d9d0c9",
    order=60,
    keywords=("building", "建筑物", "footprint", "LOD1", "白模"),
    lod1=True,
)
