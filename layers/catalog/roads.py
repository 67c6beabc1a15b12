"""Road centre lines (道路中心线) classed by road type."""

from __future__ import annotations

from cim.layerspec import FieldSpec, LayerSpec

LAYER = LayerSpec(
    name="roads",
    title="Roads",
    description=(
        "Road centre lines (道路中心线) of the transport network (道路网), with road class (道路等级), "
        "lanes, direction and surface."
    ),
    geometry_type="MultiLineString",
    fields=(
        FieldSpec("name", "string", "Road name (道路名称)"),
        FieldSpec("road_class", "string", "Road class (道路等级), e.g. motorway, primary, residential, footway"),
        FieldSpec("lanes", "integer", "Number of traffic lanes (车道数)"),
        FieldSpec("oneway", "boolean", "Whether traffic flows in one direction only (单行)"),
        FieldSpec("surface", "string", "Road surface (路面材质), e.g. asphalt, paved, gravel"),
    ),
    category="时空基础",
    minzoom=8,
    maxzoom=22,
    tile_attributes=("name", "road_class", "oneway"),
    color="#f2a65a",
    order=40,
    keywords=("road", "道路", "street", "transport"),
)
