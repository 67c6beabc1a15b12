"""The Tianjin example city built twice into one store, for the layer catalog's tests: release 1 from
tests/support/tianjin.py's sources (buildings from an authoritative survey Shapefile verified by a
cadastre GeoPackage whose CRS the config declares), release 2 after one more POI was added to the POI
source (only its sha256 changes)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml
from support.tianjin import write_city

from cim.build import build, load_config
from cim.store import open_store

SURVEY, CADASTRE, POIS = "data/buildings_survey.shp", "data/buildings_cadastre.gpkg", "data/pois_amap.csv"
#: a POI added to the source before the second build (GCJ-02 lon/lat, near the others)
NEW_POI = "POI-4,书店,shop,books,117.1870,39.1420\n"


@dataclass(frozen=True)
class CatalogCity:
    url: str
    root: Path
    config: Path
    #: sha256 of the source files: name (config-relative) -> hex, before and after the POI change
    first: dict[str, str]
    second: dict[str, str]
    created: tuple[datetime, datetime]


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_catalog_city(url: str, root: Path) -> CatalogCity:
    config = write_city(root)
    doc = yaml.safe_load(config.read_text(encoding="utf-8"))
    doc["layers"]["buildings"]["sources"][1]["crs"] = "EPSG:4527"  # declared; the file says the same
    config.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    names = (SURVEY, CADASTRE, POIS)
    first = {name: file_sha256(root / name) for name in names}
    with open_store(url) as store:
        build(load_config(config), store)
        pois = root / POIS
        pois.write_text(pois.read_text(encoding="utf-8") + NEW_POI, encoding="utf-8")
        second = {name: file_sha256(root / name) for name in names}
        # every layer built again (an incremental build would carry all but the POIs over from release 1)
        build(load_config(config), store, full=True)
        releases = store.releases()
    return CatalogCity(url, root, config, first, second, (releases[0].created, releases[1].created))
