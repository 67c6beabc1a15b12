"""The analyst's entry point: ``city = cim.open(url)``; layers come back as GeoDataFrames."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import geopandas as gpd

from cim.crs import parse_crs, srid_of, transform_bbox
from cim.errors import InvalidQuery
from cim.store import LayerInfo, ReleaseInfo, Store, open_store

if TYPE_CHECKING:
    from cim.impact import Impact


class City:
    """A city's base map in a store: its current release's layers, readable as GeoDataFrames."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def layers(self) -> list[str]:
        """Names of the layers in the current release, in drawing order."""
        return self.store.layer_names()

    def info(self, layer: str) -> LayerInfo:
        return self.store.layer(layer)

    @property
    def release(self) -> ReleaseInfo | None:
        return self.store.current_release()

    def read(
        self,
        layer: str,
        bbox: Sequence[float] | None = None,
        crs: str | int | None = None,
        bbox_crs: str | int = "OGC:CRS84",
        limit: int | None = None,
    ) -> gpd.GeoDataFrame:
        """Features of ``layer`` as a GeoDataFrame indexed by feature id.

        ``bbox`` (minx, miny, maxx, maxy) is in ``bbox_crs`` — lon/lat (CRS84) unless told, always
        x/y order; ``crs`` is the CRS of the result (default: the storage CRS), e.g. ``"EPSG:4490"``.
        """
        info = self.store.layer(layer)
        if info.spec.kind == "raster":
            raise InvalidQuery(
                f"layer {layer!r} is a raster layer: it has no features; its Cloud-Optimised GeoTIFF is "
                f"city.info({layer!r}).raster_path (open it with rasterio)"
            )
        store_bbox = None
        if bbox is not None:
            store_bbox = transform_bbox(tuple(bbox), parse_crs(bbox_crs), parse_crs(info.srid))
        out_srid = srid_of(parse_crs(crs)) if crs is not None else None
        return self.store.read_frame(layer, bbox=store_bbox, out_srid=out_srid, limit=limit)

    def impact(self, area: Any, **kw: Any) -> Impact:
        """What lies inside ``area`` (a polygon: shapely, GeoJSON or WKT; lon/lat unless ``area_crs``):
        buildings, floor area, people, POIs, parcels and roads, by administrative division.
        Keywords and definitions: :func:`cim.impact.impact` (docs/warnings/impact.md)."""
        from cim.impact import impact

        return impact(self.store, area, **kw)

    # -- CIM+ analyses (cim/analysis; each is also an OGC API process: docs/processes.md) ----------
    def building_at_point(self, point: Any, **kw: Any) -> Any:
        """The building at ``point`` with its parcel and district: :func:`cim.analysis.housing.building_at_point`."""
        from cim.analysis.housing import building_at_point

        return building_at_point(self.store, point, **kw)

    def buildings_in_area(self, area: Any, **kw: Any) -> Any:
        """Buildings in ``area``, counts and floor area by use: :func:`cim.analysis.housing.buildings_in_area`."""
        from cim.analysis.housing import buildings_in_area

        return buildings_in_area(self.store, area, **kw)

    def building_history(self, building: Any, **kw: Any) -> Any:
        """One building across releases: :func:`cim.analysis.history.building_history`."""
        from cim.analysis.history import building_history

        return building_history(self.store, building, **kw)

    def parcel_at_point(self, point: Any, **kw: Any) -> Any:
        """The parcel at ``point`` with its zoning: :func:`cim.analysis.planning.parcel_at_point`."""
        from cim.analysis.planning import parcel_at_point

        return parcel_at_point(self.store, point, **kw)

    def zoning_compliance(self, area: Any = None, **kw: Any) -> Any:
        """Buildings and parcels breaking their zone's limits: :func:`cim.analysis.planning.zoning_compliance`."""
        from cim.analysis.planning import zoning_compliance

        return zoning_compliance(self.store, area, **kw)

    def landuse_by_district(self, **kw: Any) -> Any:
        """Land use per district: :func:`cim.analysis.planning.landuse_by_district`."""
        from cim.analysis.planning import landuse_by_district

        return landuse_by_district(self.store, **kw)

    def release_diff(self, from_release: int, to_release: int, **kw: Any) -> Any:
        """Features added, removed and changed between two releases: :func:`cim.analysis.history.release_diff`."""
        from cim.analysis.history import release_diff

        return release_diff(self.store, from_release, to_release, **kw)

    def district_statistics(self, **kw: Any) -> Any:
        """Counts, areas and lengths per district: :func:`cim.analysis.statistics.district_statistics`."""
        from cim.analysis.statistics import district_statistics

        return district_statistics(self.store, **kw)

    def measure(self, geometry: Any, **kw: Any) -> Any:
        """Area, length or distance in metres, geodesic on CGCS2000: :func:`cim.analysis.measure.measure`."""
        from cim.analysis.measure import measure

        return measure(geometry, **kw)

    def catalog(
        self,
        q: str | None = None,
        bbox: Sequence[float] | None = None,
        datetime: Any = None,
        external_ids: Sequence[str] = (),
        ids: Sequence[str] = (),
        sortby: str | None = None,
        release: int | None = None,
        all_releases: bool = False,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """The layer catalog's records (OGC API – Records GeoJSON, with lineage: cim/sharing/records.py)
        of the current release (``release``: that one; ``all_releases``: every kept one), searched as
        ``/collections/catalog/items`` searches them: ``q`` terms, a CRS84 ``bbox``, a ``datetime``
        (date, datetime, (start, end) or TimeInterval), the sha256 of a source file in ``external_ids``,
        record ``ids`` (``buildings@r3``), ``sortby`` (``-release,title``)."""
        from cim.sharing.records_search import RecordQuery, instant_or_interval, select_records, sort_keys, terms

        query = RecordQuery(
            terms=terms(q or ""),
            bbox=tuple(bbox) if bbox is not None else None,  # type: ignore[arg-type]
            interval=instant_or_interval(datetime),
            external_ids=tuple(external_ids),
            ids=tuple(ids),
            sortby=sort_keys(sortby) if sortby else (),
            limit=limit,
        )
        return select_records(self.store, query, release, all_releases)[0]

    def export_features(self, layer: str, fmt: str, path: Any, release: int | None = None) -> Any:
        """Write ``layer`` of the current release (with its edits) or of ``release`` to ``path`` as
        ``fmt`` (gpkg, parquet, fgb): the bytes /collections/{layer}/downloads/{fmt} serves
        (:func:`cim.sharing.download_cache.export_features`); returns the ``Download`` (sha256, size)."""
        from cim.sharing.download_cache import export_features

        return export_features(self.store, layer, fmt, path, release)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> City:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"City({self.store.url!r}, layers={self.layers})"

    def releases(self, base: str = "") -> list[dict[str, Any]]:
        """The kept releases, oldest first, as ``GET /releases`` lists them (links below ``base``):
        :func:`cim.sharing.releases.describe_releases`."""
        from cim.sharing.releases import describe_releases

        return describe_releases(self.store, base)


def open(url: str | None = None) -> City:  # noqa: A001 - mirrors the builtin, as in `cim.open(...)`
    """Open the city base map in store ``url`` (default: ``$CIM_STORE`` or ``./cim.duckdb``)."""
    return City(open_store(url))
