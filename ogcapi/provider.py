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
from cim.errors import CIMError, InvalidQuery, NotFound, RequestTimeout, StoreError
from cim.store import FeatureQuery, LayerInfo, Store, parse_datetime, shared_store
from ogcapi import parameters
from ogcapi.errors import INVALID_VALUES, caused_by_values, log_server_error, server_error_description
from ogcapi.items_request import CURRENT, ItemsRequest, ParsedFilter
from ogcapi.openapi_features import JSON_TYPES


class StoreUnavailable(ProviderConnectionError):
    """The store cannot answer now (database down, file unreadable): 503, not pygeoapi's 500."""

    http_status_code = HTTPStatus.SERVICE_UNAVAILABLE
    ogc_exception_code = "StoreUnavailable"


class InvalidParameter(ProviderInvalidQueryError):
    """A 400 with the OGC API exception code for invalid parameters."""

    ogc_exception_code = "InvalidParameterValue"


def _translate(exc: CIMError) -> Exception:
    """Our error as the pygeoapi error that carries its status; ``user_msg`` is what the client
    reads: the reason for client errors, only a request id for server errors (logged here with
    the traceback) — database text never reaches the client."""
    if isinstance(exc, RequestTimeout):  # passes pygeoapi (not a provider error): ogcapi/errors.py answers it
        return RequestTimeout(str(exc))
    if isinstance(exc, NotFound):
        return ProviderItemNotFoundError(user_msg=str(exc))
    if isinstance(exc, InvalidQuery) or (exc.status < 500 and exc.status != 404):
        return InvalidParameter(user_msg=str(exc))
    if caused_by_values(exc):
        return InvalidParameter(user_msg=INVALID_VALUES)
    log_server_error(exc.status, f"{type(exc).__name__}: {exc}", exc)
    if isinstance(exc, StoreError):
        return StoreUnavailable(user_msg=server_error_description(StoreUnavailable.http_status_code))
    return ProviderQueryError(user_msg=server_error_description(500))


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
        self.time_field = self.info.spec.temporal_field
        self._fields = self.get_fields()

    def get_fields(self) -> dict[str, dict[str, Any]]:
        """JSON Schema of each property (pygeoapi's queryables and schema are made from it)."""
        fields = {}
        for f in self.info.fields:
            fields[f.name] = {**JSON_TYPES[f.type], "title": f.name, "description": f.description}
            if f.enum:
                fields[f.name]["values"] = list(f.enum)
        return fields

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
        request = CURRENT.get()
        if filterq is not None and not isinstance(filterq, ParsedFilter):
            raise InvalidParameter(
                user_msg="a CQL2 filter goes in the filter parameter (with filter-lang=cql2-json for CQL2 JSON)"
            )
        out_srid, flip = self._output(crs_transform_spec)
        hits_only = resulttype == "hits"
        try:
            interval = request.datetime if request is not None else (parse_datetime(datetime_) if datetime_ else None)
        except CIMError as exc:
            raise _translate(exc) from exc
        query = FeatureQuery(
            layer=self.layer_name,
            limit=0 if hits_only else limit,
            offset=offset,
            filter=filterq.filter if filterq is not None else None,
            datetime=interval,
            cursor=request.cursor if request is not None else None,
            bbox=self._storage_bbox(bbox or []),
            equals=tuple(properties or ()),
            sortby=tuple((s["property"], s["order"] != "-") for s in sortby or ()),
            properties=tuple(select_properties) if select_properties else None,
            skip_geometry=skip_geometry,
            out_srid=out_srid,
            flip_axes=flip,
            encoded_geometry=request is not None and request.geojson_output,
        )
        try:
            page = self.store.query(query)
        except CIMError as exc:
            raise _translate(exc) from exc
        result: dict[str, Any] = {"type": "FeatureCollection", "features": page.features}
        if page.number_matched is not None:
            result["numberMatched"] = page.number_matched
        result["numberReturned"] = len(page.features)
        if request is not None and page.next_cursor is not None:
            result["links"] = _paging_links(request, page.next_cursor, limit)
        return result

    def get(self, identifier: Any, crs_transform_spec: Any = None, **kwargs: Any) -> dict[str, Any]:
        fid = parameters.feature_id(str(identifier))
        if fid is None:
            raise ProviderItemNotFoundError(user_msg=f"no feature {str(identifier)[:40]!r} in {self.layer_name!r}")
        out_srid, flip = self._output(crs_transform_spec)
        try:
            return self.store.get_feature(self.layer_name, fid, out_srid=out_srid, flip_axes=flip)
        except CIMError as exc:
            raise _translate(exc) from exc


def _paging_links(request: ItemsRequest, next_cursor: Any, limit: int) -> list[dict[str, str]]:
    """``next`` with the cursor of the page's last row; ``prev`` by offset (pygeoapi adds neither
    once the provider gives a ``next``)."""
    links = [request.link("next", "Items (next)", offset=None, cursor=next_cursor.encode())]
    position = next_cursor.position - limit
    if position > 0:
        links.append(request.link("prev", "Items (prev)", offset=max(0, position - limit), cursor=None))
    return links
