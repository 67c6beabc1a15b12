"""pygeoapi behind one boundary: everything in the web layer that knows pygeoapi exists.

pygeoapi answers the OGC API - Features requests (landing page, collections, items, queryables,
schema, OpenAPI, HTML). This package builds its configuration from the store's current release
(:mod:`.config`), mounts its endpoint functions as Starlette routes (:mod:`.mount`), provides the
features (:mod:`.provider`: ``CIMFeatureProvider``, named in the configuration by its dotted path
``ogcapi.pygeoapi.provider.CIMFeatureProvider``), answers ``/conformance`` from our own list
(:mod:`.conformance`), and replaces three functions of pygeoapi's internals, installed by
:func:`routes` (which is why pyproject.toml pins pygeoapi to the minor version the tests cover):

- :mod:`.items_patch`: the items module's CQL2 parse returns the filter already parsed by
  :mod:`ogcapi.parameters` (pygeofilter cannot parse valid CQL2);
- :mod:`.crs_patch`: the bbox transformer and CRS lookups, cached;
- :mod:`.json_patch`: the items module's JSON encoding, with orjson.

**The one side channel.** pygeoapi stands between the request and the provider and hands the
provider only what it derives itself. What the provider needs beyond that — the typed values of
:mod:`ogcapi.parameters` (CQL2 filter, ``datetime`` interval, keyset ``cursor``, feature id) and the
request's URL for paging links — travels in one context variable,
:data:`ogcapi.pygeoapi.request.CURRENT` (an :class:`~ogcapi.pygeoapi.request.ItemsRequest` or
:class:`~ogcapi.pygeoapi.request.ItemRequest`), set by the mount for each items and item request
and read by the provider and the items patch. No other value goes past pygeoapi by another way.

The rest of the web layer uses only the names exported here (app.py: :class:`PygeoapiService`,
:func:`routes`, :func:`load_base_config`; the service's ``store``, ``server_url``,
``collections_url()`` and ``supported_crs()`` for the edit routes).
"""

from ogcapi.pygeoapi.config import load_base_config
from ogcapi.pygeoapi.mount import PygeoapiService, routes

__all__ = ["PygeoapiService", "load_base_config", "routes"]
