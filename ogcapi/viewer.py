"""The map viewer: ``GET /viewer``, a full-page MapLibre GL JS map of ``/styles/basemap``.

- ``/viewer``: the HTML page (``ogcapi/templates/viewer.html``); its script
  (``ogcapi/static/viewer.js``) adds navigation and scale controls, a legend of the style's layers
  (titles and colours from the catalog, with show/hide), a popup listing the properties of the
  clicked features, and fills ``<pre id="status">`` with JSON at every ``idle`` of the map (rendered
  features per source layer, map errors) — what tests/test_viewer_maplibre.py reads in headless Chromium.
- Event warnings (``ogcapi/static/warnings.js``): when the style has warnings layers, the page draws
  them from a GeoJSON copy of ``/collections/warnings/items`` kept current from ``GET /warnings/stream``
  (Server-Sent Events: created, updated, cancelled, expired) — redrawn without a reload; a legend
  entry with the four warning colours (红/橙/黄/蓝) and a popup with the warning's headline, event,
  severity/colour, effective/expires and areas (docs/warnings/viewer.md).
  The map starts at the style's ``center``/``zoom``; ``#zoom/lat/lon`` in the URL overrides them.
- The planner's tools (docs/viewer.md): ``planner.js`` (the feature popup completed from
  ``/collections/{layer}/items/{id}``, buildings extruded in 3D, the result layer), ``search.js`` (name or
  address through a CQL2 ``LIKE`` filter), ``draw.js``, ``processes_panel.js`` (forms from the process
  descriptions, results drawn) and ``inspector.js`` (parcel-at-point + zoning-compliance at a click).
- ``/viewer/<script>.js`` (:data:`SCRIPTS`), ``/viewer/viewer.css``: the page's own files.
- ``/viewer/vendor/maplibre-gl.js`` (``.css``, ``LICENSE.txt``): MapLibre GL JS, installed from the
  npm registry by scripts/demo and scripts/test (``ensure_maplibre`` in scripts/lib.sh) into the
  git-ignored ``ogcapi/static/vendor/maplibre/``. Nothing is loaded from a CDN: the page works
  offline. Without the files the page says how to install them (still 200) and the vendor URLs are
  404 OGC exceptions saying the same.

URLs in the page are absolute, from the server's configured public URL (like the style's).
"""

from __future__ import annotations

import hashlib
import html
import json
from functools import lru_cache
from pathlib import Path
from string import Template

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from cim.errors import NotFound
from ogcapi import parameters

PACKAGE_DIR = Path(__file__).resolve().parent
STATIC_DIR = PACKAGE_DIR / "static"
TEMPLATE = PACKAGE_DIR / "templates" / "viewer.html"
#: where ``ensure_maplibre`` (scripts/lib.sh) puts MapLibre GL JS
VENDOR_DIR = STATIC_DIR / "vendor" / "maplibre"
VENDOR_FILES = {"maplibre-gl.js": "text/javascript", "maplibre-gl.css": "text/css", "LICENSE.txt": "text/plain"}
#: the page's own scripts, in loading order (viewer.js last: it starts the map and the tools)
SCRIPTS = ("warnings.js", "planner.js", "search.js", "draw.js", "processes_panel.js", "inspector.js", "viewer.js")
OWN_FILES = {**{name: "text/javascript" for name in SCRIPTS}, "viewer.css": "text/css"}
#: what the search box looks in (layers of the style that have them) and which fields it matches
SEARCH_LAYERS = ("buildings", "pois")
SEARCH_FIELDS = ("name", "address")
ASSET_CACHE = "public, max-age=3600"
INSTALL_HINT = (
    "MapLibre GL JS is not installed. Run ./scripts/demo or ./scripts/test, which install it from the "
    "npm registry into ogcapi/static/vendor/maplibre/, or: source scripts/lib.sh && ensure_maplibre"
)
TITLE = "CIM base map"


def maplibre_version(vendor_dir: Path = VENDOR_DIR) -> str | None:
    """The installed MapLibre GL JS version, or None when its files are missing."""
    if not all((vendor_dir / name).is_file() for name in ("maplibre-gl.js", "maplibre-gl.css")):
        return None
    try:
        return (vendor_dir / "VERSION").read_text().strip() or "unknown"
    except OSError:
        return "unknown"


@lru_cache(maxsize=8)
def _digest(path: Path, mtime_ns: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def _version_tag(path: Path) -> str:
    """A short content hash for ``?v=`` (a changed file gets a new URL past browser caches)."""
    try:
        return _digest(path, path.stat().st_mtime_ns)
    except OSError:
        return "missing"


def _json_script(value: object) -> str:
    """JSON safe inside ``<script type="application/json">``."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class Viewer:
    """The viewer's endpoints for the public base URL ``server_url``."""

    def __init__(self, server_url: str, vendor_dir: Path = VENDOR_DIR) -> None:
        self.base = server_url.rstrip("/")
        self.vendor_dir = vendor_dir

    def render(self) -> str:
        version = maplibre_version(self.vendor_dir)
        style_url = f"{self.base}/styles/basemap"
        own = {name: f"{self.base}/viewer/{name}?v={_version_tag(STATIC_DIR / name)}" for name in OWN_FILES}
        if version is None:
            head = scripts = ""
            state, message = "error", INSTALL_HINT
            status = json.dumps({"state": "error", "errors": [INSTALL_HINT]}, indent=1)
        else:
            vendor = f"{self.base}/viewer/vendor"
            tag = f"?v={html.escape(version)}"
            head = f'<link rel="stylesheet" href="{vendor}/maplibre-gl.css{tag}">'
            scripts = "\n".join(
                [f'<script src="{vendor}/maplibre-gl.js{tag}"></script>']
                + [f'<script src="{html.escape(own[name])}"></script>' for name in SCRIPTS]
            )
            state, message = "loading", ""
            status = json.dumps({"state": "loading", "errors": []})
        config = {
            "style": style_url,
            "maplibre": f"{self.base}/viewer/vendor/maplibre-gl.js",
            "maplibreVersion": version,
            "warnings": {"items": f"{self.base}/collections/warnings/items?f=json&limit=1000", "stream": f"{self.base}/warnings/stream"},
            "collections": f"{self.base}/collections",
            "search": {"layers": list(SEARCH_LAYERS), "fields": list(SEARCH_FIELDS), "limit": 10},
            "processes": f"{self.base}/processes",
            "inspector": {"parcel": "parcel-at-point", "compliance": "zoning-compliance"},
        }
        return Template(TEMPLATE.read_text(encoding="utf-8")).substitute(
            title=html.escape(TITLE),
            base=html.escape(self.base),
            style_url=html.escape(style_url),
            head=head,
            viewer_css=html.escape(own["viewer.css"]),
            message=html.escape(message),
            state=state,
            status=html.escape(status),
            config=_json_script(config),
            scripts=scripts,
        )

    async def page(self, request: Request) -> Response:
        parameters.only_format(request.query_params.get("f"), "html", "the map viewer is an HTML page")
        return HTMLResponse(self.render(), headers={"Cache-Control": "no-cache"})

    async def asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in OWN_FILES:
            raise NotFound(f"no viewer file {name!r}")
        return FileResponse(STATIC_DIR / name, media_type=OWN_FILES[name], headers={"Cache-Control": ASSET_CACHE})

    async def vendor(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in VENDOR_FILES:
            raise NotFound(f"no vendor file {name!r}")
        path = self.vendor_dir / name
        if not path.is_file():
            raise NotFound(f"{name} is missing. {INSTALL_HINT}")
        return FileResponse(path, media_type=VENDOR_FILES[name], headers={"Cache-Control": ASSET_CACHE})


def viewer_routes(server_url: str, vendor_dir: Path = VENDOR_DIR) -> list[BaseRoute]:
    """The viewer routes (mount them before pygeoapi's)."""
    viewer = Viewer(server_url, vendor_dir)
    return [
        Route("/viewer", viewer.page, name="viewer"),
        Route("/viewer/vendor/{name}", viewer.vendor, name="viewer_vendor"),
        Route("/viewer/{name}", viewer.asset, name="viewer_asset"),
    ]
