"""The one side channel: typed request values carried past pygeoapi to the provider.

pygeoapi calls :class:`ogcapi.pygeoapi.provider.CIMFeatureProvider` with the arguments it derives
itself from the query string; what it has no argument for — the parsed CQL2 filter, the
``datetime`` interval, the keyset ``cursor``, the feature id, whether geometries may stay encoded,
the request's own URL for paging links — travels in :data:`CURRENT`, a context variable set by
:mod:`ogcapi.pygeoapi.mount` for each items and item request (pygeoapi runs the provider in a
worker thread: the endpoint runs it in a copy of its context, so a value never leaks to another
request). Every value in it was made by :mod:`ogcapi.parameters`. There is no other channel.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from urllib.parse import urlencode

from ogcapi.parameters import ItemsParameters


@dataclass(frozen=True)
class ItemsRequest:
    """An items request: its typed parameters and what the provider needs for links."""

    #: ``{server}/collections/{id}/items``
    items_url: str
    #: the query parameters as received
    params: tuple[tuple[str, str], ...]
    values: ItemsParameters
    #: the response is GeoJSON encoded by ogcapi.pygeoapi.json_patch (geometries may stay encoded)
    geojson_output: bool = False

    def link(self, rel: str, title: str, **replace: str | int | None) -> dict[str, str]:
        """A link to this request with parameters replaced (None removes one)."""
        params = [(k, v) for k, v in self.params if k not in replace]
        params += [(k, str(v)) for k, v in replace.items() if v is not None]
        return {"rel": rel, "type": "application/geo+json", "title": title, "href": f"{self.items_url}?{urlencode(params)}"}


@dataclass(frozen=True)
class ItemRequest:
    """A single-feature request."""

    #: the ``featureId`` path value as a feature id (:func:`ogcapi.parameters.feature_id`); None
    #: when it cannot be one: no such feature
    feature_id: int | None


#: the typed values of the items or item request being answered (None outside one)
CURRENT: ContextVar[ItemsRequest | ItemRequest | None] = ContextVar("cim_features_request", default=None)
