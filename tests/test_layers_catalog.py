"""The layer catalog: every layer module loads, specs are complete and consistent."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from cim.catalog import load_catalog
from cim.layerspec import LayerSpec
from cim.store.base import LayerInfo, spec_from_dict, spec_to_dict
from layers.catalog import CATALOG
from layers.registry import LayerRegistry, discover

EXPECTED = {"admin_divisions", "parcels", "buildings", "roads", "water", "landuse", "pois", "dem", "imagery", "warnings"}
CATEGORIES = {"时空基础", "资源调查", "规划管控", "工程建设项目", "物联感知", "公共专题"}
CJK = re.compile(r"[\u4e00-\u9fff]")


def test_catalog_holds_every_layer_module() -> None:
    assert set(CATALOG.names()) == EXPECTED
    assert len(CATALOG) == len(EXPECTED)
    modules = {p.stem for p in (Path(__file__).parents[1] / "layers" / "catalog").glob("*.py")} - {"__init__"}
    assert modules == EXPECTED


def test_iteration_is_in_drawing_order() -> None:
    specs = list(CATALOG)
    assert [s.name for s in specs] == CATALOG.names()
    orders = [s.order for s in specs]
    assert orders == sorted(orders)
    position = {name: i for i, name in enumerate(CATALOG.names())}
    assert position["landuse"] < position["buildings"] and position["water"] < position["buildings"]
    assert position["roads"] < position["buildings"] < position["pois"]
    assert position["imagery"] < position["landuse"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_spec_is_complete(name: str) -> None:
    spec = CATALOG[name]
    assert isinstance(spec, LayerSpec) and spec.name == name
    assert spec.title and spec.description
    assert CJK.search(spec.description), "description names the Chinese term"
    assert spec.category in CATEGORIES
    assert re.fullmatch(r"#[0-9a-fA-F]{6}", spec.color)
    assert 0 <= spec.minzoom < spec.maxzoom <= 22
    assert set(spec.tile_attributes) <= {f.name for f in spec.fields}
    for field in spec.fields:
        assert field.description, f"{name}.{field.name} has a description"
    # specs survive the store's JSON round trip unchanged
    assert spec_from_dict(spec_to_dict(spec)) == spec
    LayerInfo.from_json(LayerInfo(spec, 4326, 0, None).to_json())


def test_vector_and_raster_kinds() -> None:
    assert {s.name for s in CATALOG.raster()} == {"dem", "imagery"}
    for spec in CATALOG.raster():
        assert spec.kind == "raster" and spec.geometry_type is None and spec.fields == ()
    geometry = {s.name: s.geometry_type for s in CATALOG.vector()}
    assert geometry == {
        "admin_divisions": "MultiPolygon",
        "parcels": "MultiPolygon",
        "buildings": "MultiPolygon",
        "roads": "MultiLineString",
        "water": "MultiPolygon",
        "landuse": "MultiPolygon",
        "pois": "Point",
        "warnings": "MultiPolygon",
    }
    for spec in CATALOG.vector():
        assert spec.tile_attributes, f"{spec.name} keeps some attributes in tiles"


def test_field_schemas() -> None:
    def types(name: str) -> dict[str, str]:
        return CATALOG[name].field_types

    assert types("admin_divisions") == {"code": "string", "name": "string", "level": "string", "parent_code": "string"}
    assert CATALOG["admin_divisions"].field("code").required and CATALOG["admin_divisions"].field("name").required
    assert CATALOG["admin_divisions"].field("level").enum == ("province", "city", "district", "street")
    assert types("parcels") == {"parcel_id": "string", "land_use": "string", "area_m2": "number", "plot_ratio": "number"}
    assert CATALOG["parcels"].field("parcel_id").required
    assert types("buildings") == {
        "name": "string",
        "use": "string",
        "height_m": "number",
        "floors": "integer",
        "structure": "string",
        "year_built": "integer",
        "address": "string",
    }
    assert CATALOG["buildings"].field("height_m").unit == "m"
    assert types("roads") == {
        "name": "string",
        "road_class": "string",
        "lanes": "integer",
        "oneway": "boolean",
        "surface": "string",
    }
    assert types("water") == {"name": "string", "water_type": "string"}
    assert types("landuse") == {"use": "string", "zoning_code": "string", "height_limit_m": "number", "far_limit": "number"}
    assert CATALOG["landuse"].field("use").required
    assert types("pois") == {"name": "string", "category": "string", "subcategory": "string", "address": "string"}


def test_editable_and_zooms() -> None:
    assert {s.name for s in CATALOG if s.editable} == {"parcels", "landuse"}
    assert (CATALOG["buildings"].minzoom, CATALOG["buildings"].maxzoom) == (13, 22)
    assert (CATALOG["roads"].minzoom, CATALOG["roads"].maxzoom) == (8, 22)
    assert CATALOG["admin_divisions"].minzoom < CATALOG["roads"].minzoom < CATALOG["buildings"].minzoom


def test_unknown_layer_names_the_known_ones() -> None:
    with pytest.raises(KeyError) as err:
        CATALOG["bridges"]
    message = str(err.value)
    assert "bridges" in message
    for name in EXPECTED:
        assert name in message
    assert "bridges" not in CATALOG and "roads" in CATALOG
    assert CATALOG.get("bridges") is None


def test_entry_point_exposes_the_catalog() -> None:
    assert load_catalog("base") is CATALOG


def _write_package(root: Path, package: str, modules: dict[str, str]) -> None:
    folder = root / package
    folder.mkdir()
    (folder / "__init__.py").write_text('"""A test catalog."""\n')
    for name, body in modules.items():
        (folder / f"{name}.py").write_text(body)


_RIVERS = 'from cim.layerspec import LayerSpec\nLAYER = LayerSpec(name="{name}", title="t", description="d", geometry_type="MultiLineString", order={order})\n'


def test_adding_a_file_adds_a_layer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    _write_package(
        tmp_path,
        "extra_catalog",
        {
            "rivers": _RIVERS.format(name="rivers", order=2),
            "canals": _RIVERS.format(name="canals", order=1),
            "_helpers": "X = 1\n",
        },
    )
    import extra_catalog

    try:
        catalog = discover(extra_catalog)
        assert catalog.names() == ["canals", "rivers"]
        assert catalog["rivers"].geometry_type == "MultiLineString"
    finally:
        for name in [m for m in sys.modules if m.startswith("extra_catalog")]:
            del sys.modules[name]


def test_discovery_rejects_bad_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    _write_package(tmp_path, "misnamed_catalog", {"lakes": _RIVERS.format(name="rivers", order=0)})
    _write_package(tmp_path, "bare_catalog", {"lakes": "LAYER = None\n"})
    import bare_catalog
    import misnamed_catalog

    try:
        with pytest.raises(ValueError, match="rivers"):
            discover(misnamed_catalog)
        with pytest.raises(TypeError, match="LAYER"):
            discover(bare_catalog)
    finally:
        for name in [m for m in sys.modules if m.split(".")[0] in ("misnamed_catalog", "bare_catalog")]:
            del sys.modules[name]


def test_catalog_rejects_duplicate_names() -> None:
    with pytest.raises(ValueError, match="buildings"):
        LayerRegistry([CATALOG["buildings"], CATALOG["buildings"]])
