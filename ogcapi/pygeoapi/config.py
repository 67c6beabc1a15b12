"""The pygeoapi configuration in force: server settings from ``pygeoapi-config.yml`` plus one
collection per vector layer of the store's current release (nothing per layer is configured by hand)."""

from __future__ import annotations

import copy
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pygeoapi.util import yaml_load

from cim.crs import CGCS2000, CRS84_URI, crs_uri, gauss_kruger_zone
from cim.errors import ConfigError
from cim.limits import limits
from cim.store import LayerInfo
from ogcapi.threed_openapi import geovolumes_link

#: the root of the repository / installation, where pygeoapi-config.yml lives
DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "pygeoapi-config.yml"
#: the provider class, by the dotted path pygeoapi loads it from
PROVIDER = "ogcapi.pygeoapi.provider.CIMFeatureProvider"


def load_base_config(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Server metadata and settings (``$CIM_PYGEOAPI_CONFIG`` or the project's pygeoapi-config.yml)."""
    path = Path(path or os.environ.get("CIM_PYGEOAPI_CONFIG") or DEFAULT_CONFIG)
    try:
        with path.open(encoding="utf-8") as fh:
            config = yaml_load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read pygeoapi configuration {path}: {exc.strerror}") from None
    if not isinstance(config, dict) or "server" not in config or "metadata" not in config:
        raise ConfigError(f"{path}: not a pygeoapi configuration (needs server and metadata sections)")
    return config


def supported_crs(info: LayerInfo) -> list[str]:
    """CRS84 first (the default), then EPSG:4326, CGCS2000, Web Mercator, the storage CRS and the
    CGCS2000 Gauss-Krüger zone (with and without zone prefix) of the layer's area when in China."""
    codes: list[int] = [4326, CGCS2000, 3857, info.srid]
    if info.bbox is not None:
        centre = (info.bbox[0] + info.bbox[2]) / 2
        if 73.5 <= centre <= 136.5:
            codes += [gauss_kruger_zone(centre, with_zone_prefix=True), gauss_kruger_zone(centre)]
    uris = [CRS84_URI]
    for code in codes:
        uri = crs_uri(code)
        if uri not in uris:
            uris.append(uri)
    return uris


def storage_crs_uri(info: LayerInfo) -> str:
    # coordinates stored in EPSG:4326 are lon/lat, i.e. exactly CRS84
    return CRS84_URI if info.srid == 4326 else crs_uri(info.srid)


def collection(info: LayerInfo, store_url: str, server_url: str = "") -> dict[str, Any]:
    spec = info.spec
    bbox = list(info.bbox) if info.bbox else [-180.0, -90.0, 180.0, 90.0]
    resource: dict[str, Any] = {
        "type": "collection",
        "title": spec.title,
        "description": spec.description,
        "keywords": list(spec.keywords) or [spec.name],
        "extents": {"spatial": {"bbox": bbox, "crs": CRS84_URI}},
        "providers": [
            {
                "type": "feature",
                "name": PROVIDER,
                "data": store_url,
                "layer": spec.name,
                "id_field": "fid",
                "storage_crs": storage_crs_uri(info),
                "editable": spec.editable,
                "crs": supported_crs(info),
            }
        ],
    }
    if info.interval:
        resource["extents"]["temporal"] = temporal_extent(info.interval)
    # the GeoJSON feature schema (GDAL's OAPIF driver types fields from a "describedBy" link)
    resource["links"] = [
        {
            "type": "application/schema+json",
            "rel": "describedBy",
            "title": "JSON Schema of a feature of this collection",
            "href": f"{server_url.rstrip('/')}/collections/{spec.name}/feature-schema",
        }
    ]
    if spec.lod1:  # OGC API - 3D GeoVolumes: the 3D Tiles of its LOD1 blocks (ogcapi/threed_routes.py)
        resource["links"].append(geovolumes_link(server_url, spec.name))
    return resource


def temporal_extent(interval: tuple[str | None, str | None]) -> dict[str, datetime | None]:
    """pygeoapi's temporal extent: datetimes (it checks ``datetime`` against them); a date end is
    the end of that day."""

    def parse(text: str | None, end: bool) -> datetime | None:
        if not text:
            return None
        if len(text) == 10:
            day = datetime.fromisoformat(text).replace(tzinfo=UTC)
            return day + timedelta(days=1, seconds=-1) if end else day
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    return {"begin": parse(interval[0], False), "end": parse(interval[1], True)}


def build_config(base: dict[str, Any], layers: list[LayerInfo], store_url: str, server_url: str) -> dict[str, Any]:
    config = copy.deepcopy(base)
    config["server"]["url"] = server_url.rstrip("/")
    # pygeoapi checks `limit` again after ogcapi/parameters.py: one maximum for both
    config["server"].setdefault("limits", {})["max_items"] = limits().max_features
    config["resources"] = {
        info.name: collection(info, store_url, config["server"]["url"]) for info in layers if info.spec.kind == "vector"
    }
    # not pygeoapi's: what ogcapi/pygeoapi/conformance.py declares map tiles from
    # and the lod1 collections, served as 3D Tiles (what GeoVolumes is declared from)
    config["cim"] = {
        "raster_collections": [info.name for info in layers if info.spec.kind == "raster" and info.raster_path],
        "scene_collections": [info.name for info in layers if info.spec.kind == "vector" and info.spec.lod1],
    }
    return config
