"""Administration routes, for bearer tokens with the admin role (``$CIM_JWT_ADMIN_ROLE``, ``admin``).

``GET /admin/audit?who=&layer=&since=&limit=``: the audit log (cim/store/audit.py), newest first, as
``{"records": [{"when", "who", "method", "path", "layer", "feature", "status"}, ...], "numberReturned"}``.
``who``: a token subject; ``layer``: a layer name; ``since``: an RFC 3339 date-time (UTC when it has no
offset) or a date; ``limit``: 1..``MAX_LIMIT`` (default 100). Other parameters or bad values: 400.
No token / a bad one: 401, a token without the role: 403 (ogcapi/auth.py). These requests are audited
themselves (ogcapi/access.py).
"""

from __future__ import annotations

from datetime import date, datetime, time, timezone

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cim.errors import CIMError, InvalidQuery
from cim.store import Store
from ogcapi.auth import AuthError, JWTAuth, configured
from ogcapi.errors import ogc_exception

MAX_LIMIT = 10_000
PARAMETERS = frozenset(("who", "layer", "since", "limit", "f"))


def admin_routes(store: Store, auth: JWTAuth | None) -> list[Route]:
    async def audit(request: Request) -> Response:
        try:
            admin = configured(auth, "the audit log")
            authorization = request.headers.get("authorization")
            if admin.jwks_url is None:
                admin.require(authorization, admin.admin_role, "read the audit log")
            else:
                await run_in_threadpool(admin.require, authorization, admin.admin_role, "read the audit log")
            params = request.query_params
            unknown = sorted(set(params) - PARAMETERS)
            if unknown:
                raise InvalidQuery(f"unknown parameter(s) {', '.join(unknown)}: use who, layer, since, limit")
            if params.get("f") not in (None, "json"):
                raise InvalidQuery("the audit log is available as JSON only (f=json)")
            since = _since(params["since"]) if "since" in params else None
            limit = _limit(params.get("limit"))
            records = await run_in_threadpool(
                store.audit_log().query, params.get("who") or None, params.get("layer") or None, since, limit
            )
        except AuthError as exc:
            response = ogc_exception(exc.status, str(exc))
            response.headers["WWW-Authenticate"] = exc.challenge
            return response
        except CIMError as exc:
            return ogc_exception(exc.status, str(exc), exc.code)
        body = {"records": [r.to_dict() for r in records], "numberReturned": len(records)}
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    return [Route("/admin/audit", audit, methods=["GET"], name="admin_audit")]


def _since(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            value = datetime.combine(date.fromisoformat(text), time())
        except ValueError:
            raise InvalidQuery(f"since must be an RFC 3339 date-time or a date; got {text[:40]!r}") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def _limit(text: str | None) -> int:
    if text is None:
        return 100
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LIMIT:
        raise InvalidQuery(f"limit must be an integer from 1 to {MAX_LIMIT}; got {text[:40]!r}")
    return int(text)
