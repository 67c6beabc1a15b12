"""pygeoapi feature provider over a cim store (either backend).

pygeoapi builds a provider per request, so construction only looks up the process-wide store. The
store does the work in SQL: filtering, paging, reprojection and axis order; this class translates
pygeoapi's arguments and exceptions.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from pygeoapi.provider.base import (
    BaseProvider,
    ProviderConnectionError,
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
    ProviderQueryError,
)

from cim.crs import axis_order_is_yx, parse_crs, srid_of
from cim.errors import CIMError, InvalidQuery, NotFound, StoreError
from cim.store import FeatureQuery, LayerInfo, Store, shared_store

#: JSON Schema types of the layer field types
JSON_TYPES = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
}


class StoreUnavailable(ProviderConnectionError):
    """The store cannot answer now (database down, file unreadable): 503, not pygeoapi's 500."""

    http_status_code = HTTPStatus.SERVICE_UNAVAILABLE
    ogc_exception_code = "StoreUnavailable"


def _translate(exc: CIMError) -> Exception:
    """Our error as the pygeoapi error that carries its status; ``user_msg`` is what the client reads."""
    if isinstance(exc, NotFound):
        return ProviderItemNotFoundError(user_msg=str(exc))
    if isinstance(exc, InvalidQuery):
        return ProviderInvalidQueryError(user_msg=str(exc))
    if isinstance(exc, StoreError):
        return StoreUnavailable(user_msg=str(exc))
    return ProviderQueryError(user_msg=str(exc))


class CIMFeatureProvider(BaseProvider):
    """``providers: [{type: feature, name: ogcapi.provider.CIMFeatureProvider, data: STORE_URL, layer: NAME}]``"""

    def __init__(self, provider_def: dict[str, Any]) -> None:
        super().__init__(provider_def)
        self.layer_name: str = provider_def["layer"]
        self.id_field = "fid"
        try:
            self.store: Store = shared_store(self.data)
            self.info: LayerInfo = self.store.layer(self.layer_name)
        except CIMError as exc:
            raise _translate(exc) from exc
        self._fields = self.get_fields()

    def get_fields(self) -> dict[str, dict[str, Any]]:
        return {f.name: {**JSON_TYPES[f.type], "title": f.name, "description": f.description} for f in self.info.fields}

    def _output(self, crs_transform_spec: Any) -> tuple[int | None, bool]:
        """(EPSG code to reproject to, whether to flip to the authority's lat/lon or northing/easting order)."""
        if crs_transform_spec is None:  # the requested CRS is the storage CRS
            return None, axis_order_is_yx(self.storage_crs)
        target = parse_crs(crs_transform_spec.target_crs_uri)
        return srid_of(target), axis_order_is_yx(target)

    def _storage_bbox(self, bbox: list[float]) -> tuple[float, float, float, float] | None:
        """pygeoapi hands the bbox in the storage CRS's authority axis order; the store wants x/y."""
        if not bbox:
            return None
        if len(bbox) == 6:
            bbox = [bbox[0], bbox[1], bbox[3], bbox[4]]
        minx, miny, maxx, maxy = (float(v) for v in bbox)
        if axis_order_is_yx(self.storage_crs):
            minx, miny, maxx, maxy = miny, minx, maxy, maxx
        return minx, miny, maxx, maxy

    def query(
        self,
        offset: int = 0,
        limit: int = 10,
        resulttype: str = "results",
        bbox: list[float] | None = None,
        datetime_: str | None = None,
        properties: list[tuple[str, Any]] | None = None,
        sortby: list[dict[str, str]] | None = None,
        select_properties: list[str] | None = None,
        skip_geometry: bool = False,
        q: str | None = None,
        filterq: Any = None,
        crs_transform_spec: Any = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        if filterq is not None:
            raise ProviderInvalidQueryError(user_msg="CQL2 filters are not supported by this server yet (see /conformance)")
        out_srid, flip = self._output(crs_transform_spec)
        hits_only = resulttype == "hits"
        query = FeatureQuery(
            layer=self.layer_name,
            limit=0 if hits_only else limit,
            offset=offset,
            bbox=self._storage_bbox(bbox or []),
            equals=tuple(properties or ()),
            sortby=tuple((s["property"], s["order"] != "-") for s in sortby or ()),
            properties=tuple(select_properties) if select_properties else None,
            skip_geometry=skip_geometry,
            out_srid=out_srid,
            flip_axes=flip,
        )
        try:
            page = self.store.query(query)
        except CIMError as exc:
            raise _translate(exc) from exc
        return {
            "type": "FeatureCollection",
            "features": page.features,
            "numberMatched": page.number_matched,
            "numberReturned": len(page.features),
        }

    def get(self, identifier: Any, crs_transform_spec: Any = None, **kwargs: Any) -> dict[str, Any]:
        try:
            fid = int(identifier)
        except (TypeError, ValueError):
            raise ProviderItemNotFoundError(user_msg=f"no feature {identifier!r} in {self.layer_name!r}") from None
        out_srid, flip = self._output(crs_transform_spec)
        try:
            return self.store.get_feature(self.layer_name, fid, out_srid=out_srid, flip_axes=flip)
        except CIMError as exc:
            raise _translate(exc) from exc
