"""Water bodies (河湖水系): lakes, ponds, rivers and basins as areas."""

from __future__ import annotations

from cim.layerspec import FieldSpec, LayerSpec

LAYER = LayerSpec(
    name="water",
    title="Water bodies",
    description="Surface water areas (河湖水系/水域): lakes, ponds, reservoirs, river areas and basins.",
    geometry_type="MultiPolygon",
    fields=(
        FieldSpec("name", "string", "Name of the water body (水体名称)"),
        FieldSpec("water_type", "string", "Kind of water body (水体类型), e.g. lake, pond, river, basin"),
    ),
    category="资源调查",
    minzoom=6,
    maxzoom=22,
    tile_attributes=("name", "water_type"),
    color="#9cc9e8",
    order=20,
    keywords=("water", "水系", "lake", "river", "hydrography"),
)
