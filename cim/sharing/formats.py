"""The formats a layer can be downloaded in (``/collections/{id}/downloads/{format}``,
``cim export features --format``), by the name used in URLs and on the command line."""

from __future__ import annotations

from dataclasses import dataclass

from cim.errors import BadInput


@dataclass(frozen=True)
class DownloadFormat:
    #: the name in URLs and on the command line
    name: str
    #: file name extension (no dot)
    extension: str
    #: the media type the download is served as (and its ``rel=enclosure`` link's ``type``)
    media_type: str
    title: str
    #: pyogrio / GDAL driver (None: written by pyarrow)
    driver: str | None


DOWNLOAD_FORMATS: dict[str, DownloadFormat] = {
    f.name: f
    for f in (
        DownloadFormat("gpkg", "gpkg", "application/geopackage+sqlite3", "GeoPackage", "GPKG"),
        DownloadFormat("parquet", "parquet", "application/vnd.apache.parquet", "GeoParquet", None),
        DownloadFormat("fgb", "fgb", "application/flatgeobuf", "FlatGeobuf", "FlatGeobuf"),
    )
}


def download_format(name: str) -> DownloadFormat:
    """The format called ``name`` (case-insensitive; ``geoparquet`` and ``flatgeobuf`` also work);
    BadInput naming the formats there are."""
    key = name.strip().lower()
    key = {"geoparquet": "parquet", "flatgeobuf": "fgb", "geopackage": "gpkg"}.get(key, key)
    if key not in DOWNLOAD_FORMATS:
        known = ", ".join(DOWNLOAD_FORMATS)
        raise BadInput(f"unknown download format {name[:40]!r} (formats: {known})")
    return DOWNLOAD_FORMATS[key]


def download_path(layer: str, fmt: str) -> str:
    """The path (below the server's root) of a layer's download; add ``?release=N`` for a past release."""
    return f"/collections/{layer}/downloads/{fmt}"


__all__ = ["DOWNLOAD_FORMATS", "DownloadFormat", "download_format", "download_path"]
