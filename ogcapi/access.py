"""Read access by layer, and the audit log of what is read and written: one ASGI middleware.

A layer the catalog marks ``restricted`` (``cim.layerspec.LayerSpec.restricted``: important data,
重要数据) is served only to bearer tokens carrying its ``read_role`` (default ``$CIM_JWT_READER_ROLE``,
``reader``; ogcapi/auth.py verifies the token). :class:`LayerAccess` maps each request path to the
layers whose data it returns and checks them all in one place, before any route runs:

============================================================  =========================================
path                                                          reads
============================================================  =========================================
``/collections/{id}/items``, ``.../items/{featureId}``         layer ``id`` (every method: a write to a
                                                              restricted layer needs its role too)
``/collections/{id}/changes`` (the change feed)                layer ``id``
``/collections/{id}/tiles/{tms}/{z}/{row}/{col}``              layer ``id``
``/collections/{id}/map/tiles/{tms}/{z}/{row}/{col}``          layer ``id`` (raster layers)
``/collections/{id}/terrain/{z}/{x}/{y}.terrain``              layer ``id`` (the DEM's terrain tiles)
``/collections/{id}/downloads/{format}``                       layer ``id`` (bulk downloads)
``/collections/{id}/3dtiles`` and ``.../{level}/{x}/{y}.glb``   layer ``id`` (3D Tiles; the tileset too:
                                                              its leaves' regions map the blocks)
``/tiles/{tms}/{z}/{row}/{col}`` (the composite base map)      every vector layer: while the current
                                                              release has a restricted layer, the
                                                              composite needs the roles of all of them
``/map/tiles/{tms}/{z}/{row}/{col}`` (its PNG map tiles)       as the composite base map
============================================================  =========================================

Metadata stays public: the collection list and descriptions, queryables, schemas, tileset metadata,
TileJSON and the style name restricted layers and their extents, as ``/collections`` does anyway.
No token, or one that does not verify: 401 with ``WWW-Authenticate: Bearer``; a valid token without
the role: 403 — OGC exception JSON either way. A restricted response is sent ``Cache-Control:
private, no-cache`` with ``Vary: Authorization`` (no shared cache may keep it) and is marked private for
the tile fast path (ogcapi/tiles_fastpath.py :func:`mark_private`), which therefore never keeps it: a
repeated restricted tile always comes through this check.

Audit (cim/store/audit.py, the store's ``audit_log()``): every write (POST/PUT/PATCH/DELETE on items),
every request for a restricted layer's data and every request under ``/admin`` is recorded once its
response has been sent — who (the token's ``sub``, None without a valid token), method, path, layer,
feature id, status, when (UTC) — refusals (401/403) included. A record that cannot be written is
logged, never turned into an error of a response already sent.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cim.errors import CIMError
from cim.store import WRITE_METHODS, AuditRecord, LayerInfo, Store
from ogcapi.auth import AuthError, JWTAuth, configured
from ogcapi.tiles_fastpath import mark_private

log = logging.getLogger(__name__)

_COLLECTION_DATA = re.compile(
    r"^/collections/(?P<layer>[^/]+)/(?:items(?:/(?P<feature>[^/]+))?|changes|(?:map/)?tiles/[^/]+/[^/]+/[^/]+/[^/]+|downloads/[^/]+|terrain/[^/]+/[^/]+/[^/]+|3dtiles(?:/[^/]+/[^/]+/[^/]+)?)/?$"
)
_COMPOSITE_TILE = re.compile(r"^(?:/map)?/tiles/[^/]+/[^/]+/[^/]+/[^/]+/?$")
#: impact analyses read every vector layer (buildings, POIs, parcels, roads, divisions, population)
_IMPACT = re.compile(r"^(?:/impact|/collections/[^/]+/items/[^/]+/impact)/?$")
_WARNINGS_STREAM = re.compile(r"^/warnings/stream/?$")
_ITEMS = re.compile(r"^/collections/[^/]+/items(?:/[^/]+)?/?$")
PRIVATE = b"private, no-cache"


@dataclass(frozen=True)
class Target:
    """What a request reads: a layer (None: the composite base map) and a feature id, if any."""

    layer: str | None
    feature: str | None


def target(path: str) -> Target | None:
    """The layer data ``path`` asks for; None for anything else (metadata, documents, the viewer)."""
    path = re.sub("/{2,}", "/", path)
    match = _COLLECTION_DATA.match(path)
    if match is not None:
        return Target(match["layer"], match["feature"])
    if _COMPOSITE_TILE.match(path) or _IMPACT.match(path):
        return Target(None, None)
    if _WARNINGS_STREAM.match(path):
        return Target("warnings", None)
    return None


def read_roles(infos: list[LayerInfo], layer: str | None, default_role: str) -> tuple[str, ...]:
    """The roles a token needs to read ``layer`` (None: the composite of every vector layer); ()
    when it is public."""
    chosen = [i for i in infos if (i.name == layer if layer is not None else i.spec.kind == "vector")]
    return tuple(sorted({i.spec.read_role or default_role for i in chosen if i.spec.restricted}))


class LayerAccess:
    """ASGI middleware: the access check and the audit records (see the module's doc)."""

    def __init__(self, app: ASGIApp, store: Store, auth: JWTAuth | None) -> None:
        self.app = app
        self.store = store
        self.auth = auth
        self.default_role = auth.reader_role if auth is not None else "reader"
        #: release number -> its layers (the restriction of a layer is part of its release)
        self._layers: tuple[int, list[LayerInfo]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = _route_path(scope)
        method = scope["method"]
        wanted = target(path)
        roles: tuple[str, ...] = ()
        if wanted is not None:
            try:
                roles = read_roles(await self._current_layers(), wanted.layer, self.default_role)
            except CIMError:
                roles = ()  # no release, store down: the route answers that itself
        write = method in WRITE_METHODS and _ITEMS.match(re.sub("/{2,}", "/", path)) is not None
        write = write or (method == "POST" and re.sub("/{2,}", "/", path).rstrip("/") == "/warnings")
        audited = bool(roles) or write or path == "/admin" or path.startswith("/admin/")
        if not audited:
            await self.app(scope, receive, send)
            return
        authorization = _header(scope, b"authorization")
        who: str | None = None
        status = 500
        if roles:
            try:
                who = await self._require(authorization, roles, wanted.layer if wanted else None)
            except AuthError as exc:
                await exc.response()(scope, receive, send)
                await self._record(who or await self._subject(authorization), method, path, wanted, exc.status)
                return
            mark_private(scope)
        else:
            who = await self._subject(authorization)

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if roles:
                    message["headers"] = _private(message.get("headers", []))
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            await self._record(who, method, path, wanted, status)

    async def _current_layers(self) -> list[LayerInfo]:
        known = self.store.known_current_number()
        cached = self._layers
        if known is not None and cached is not None and cached[0] == known:
            return cached[1]

        def read() -> tuple[int | None, list[LayerInfo]]:
            before = self.store.current_number()
            infos = self.store.layers()
            return (before if self.store.current_number() == before else None), infos

        number, infos = await run_in_threadpool(read)
        if number is not None:
            self._layers = (number, infos)
        return infos

    async def _require(self, authorization: str | None, roles: tuple[str, ...], layer: str | None) -> str:
        what = f"read layer {layer!r}" if layer is not None else "read the base map (it has restricted layers)"
        auth = configured(self.auth, f"reading {'layer ' + repr(layer) if layer else 'the base map'}")

        def check() -> str:
            who = ""
            for role in roles:
                who = auth.require(authorization, role, what)
            return who

        return check() if auth.jwks_url is None else await run_in_threadpool(check)

    async def _subject(self, authorization: str | None) -> str | None:
        if self.auth is None or not authorization:
            return None
        if self.auth.jwks_url is None:
            return self.auth.subject(authorization)
        return await run_in_threadpool(self.auth.subject, authorization)

    async def _record(self, who: str | None, method: str, path: str, wanted: Target | None, status: int) -> None:
        layer = wanted.layer if wanted is not None else None
        feature = wanted.feature if wanted is not None else None
        record = AuditRecord(datetime.now(timezone.utc), who, method, path, layer, feature, status)
        try:
            await run_in_threadpool(self.store.audit_log().record, record)
        except Exception:  # the response is gone: the failure is the operator's to see
            log.exception("audit record not written: %s", record)


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root = scope.get("root_path") or ""
    return path[len(root):] if root and path.startswith(root) else path


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _private(headers: Any) -> list[tuple[bytes, bytes]]:
    kept = [(bytes(k), bytes(v)) for k, v in headers if bytes(k).lower() not in (b"cache-control", b"vary")]
    vary = [bytes(v) for k, v in headers if bytes(k).lower() == b"vary"]
    return [*kept, (b"cache-control", PRIVATE), (b"vary", b", ".join([*vary, b"Authorization"]))]
