"""Administration routes, for bearer tokens with the admin role (``$CIM_JWT_ADMIN_ROLE``, ``admin``).

``GET /admin/audit?who=&layer=&since=&limit=``: the audit log (cim/store/audit.py), newest first, as
``{"records": [{"when", "who", "method", "path", "layer", "feature", "status"}, ...], "numberReturned"}``.
``who``: a token subject; ``layer``: a layer name; ``since``: an RFC 3339 date-time (UTC when it has no
offset) or a date; ``limit``: 1..10,000 (default 100). Other parameters or bad values: 400
(:func:`ogcapi.parameters.audit_parameters`).
No token / a bad one: 401, a token without the role: 403 (ogcapi/auth.py). These requests are audited
themselves (ogcapi/access.py).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cim.errors import CIMError
from cim.store import Store
from ogcapi import parameters
from ogcapi.auth import AuthError, JWTAuth, configured
from ogcapi.errors import ogc_exception


def admin_routes(store: Store, auth: JWTAuth | None) -> list[Route]:
    async def audit(request: Request) -> Response:
        try:
            admin = configured(auth, "the audit log")
            authorization = request.headers.get("authorization")
            if admin.jwks_url is None:
                admin.require(authorization, admin.admin_role, "read the audit log")
            else:
                await run_in_threadpool(admin.require, authorization, admin.admin_role, "read the audit log")
            query = parameters.audit_parameters(request.query_params)
            records = await run_in_threadpool(store.audit_log().query, query.who, query.layer, query.since, query.limit)
        except AuthError as exc:
            return exc.response()
        except CIMError as exc:
            return ogc_exception(exc.status, str(exc), exc.code)
        body = {"records": [r.to_dict() for r in records], "numberReturned": len(records)}
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    return [Route("/admin/audit", audit, methods=["GET"], name="admin_audit")]
