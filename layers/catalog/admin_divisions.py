"""Administrative divisions (行政区划): province, city, district and street boundaries."""

from __future__ import annotations

from cim.layerspec import FieldSpec, LayerSpec

LEVELS: tuple[str, ...] = ("province", "city", "district", "street")

LAYER = LayerSpec(
    name="admin_divisions",
    title="Administrative divisions",
    description=(
        "Administrative division boundaries (行政区划) from province to street (街道/乡镇) level, "
        "identified by GB/T 2260 six-digit division codes."
    ),
    geometry_type="MultiPolygon",
    fields=(
        FieldSpec("code", "string", "GB/T 2260 six-digit administrative division code (行政区划代码), e.g. 120101", required=True),
        FieldSpec("name", "string", "Official name of the division (名称)", required=True),
        FieldSpec("level", "string", "Administrative level (级别)", enum=LEVELS),
        FieldSpec("parent_code", "string", "GB/T 2260 code of the enclosing division (上级行政区划代码)"),
    ),
    category="时空基础",
    minzoom=4,
    maxzoom=22,
    tile_attributes=("code", "name", "level"),
    color="#7b3294",
    order=50,
    outline=True,
    keywords=("administrative division", "行政区划", "GB/T 2260", "boundary"),
)
