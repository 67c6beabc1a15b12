"""OGC API – Processes – Part 1: Core over HTTP (docs/processes.md).

- ``GET /processes``: the process list (``processList``), JSON or HTML;
- ``GET /processes/{processId}``: the process description (ogc-process-description), JSON or HTML (with a
  form that executes it);
- ``POST /processes/{processId}/execution``: an execute request (cim/processes/validate.py). Synchronous
  by default — run in a worker thread within the request budget (``limits().request_seconds``; 503 past
  it) and answered 200 with the results: ``response: raw`` (the default of 1.0) the one output's value with
  its media type, ``response: document`` (or several outputs) ``{outputId: value}``. With ``Prefer:
  respond-async``, or for a process that is not ``sync``, a job (:func:`cim.processes.runner.submit`): 201,
  ``Location: /jobs/{jobId}``, the job's ``statusInfo``.

Who may execute what (docs/security.md): a process whose ``role`` is ``analyst`` needs a bearer token with
the role ``$CIM_JWT_ANALYST_ROLE`` (default ``analyst``); ``$CIM_PROCESS_ROLES`` (``id=role,id=`` — empty:
open) overrides per process. Without token 401, with another role 403; when the server has no key
configured every protected process answers 401 (as every other protected route). Lists and descriptions
are public. Errors are OGC exception JSON: 404 ``no-such-process``, 400 ``InvalidParameterValue`` naming
the input, 413 for a body over ``max_body_bytes``, 415 for a body not sent as JSON.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cim.errors import CIMError, ConfigError, InvalidQuery
from cim.limits import limits
from cim.processes import Process, get_process, processes
from cim.processes.execute import run
from cim.processes.request import ExecuteRequest
from cim.processes.validate import load_body, parse_execute
from cim.store import Store, TooLarge
from cim.store.budget import timeout_error
from ogcapi import auth as auth_module
from ogcapi.auth import AuthError, JWTAuth
from ogcapi.bodies import media_type, read_at_most
from ogcapi.errors import ogc_exception
from ogcapi.jobs_routes import status_info
from ogcapi.processes_html import description_page, list_page

REL_EXECUTE = "http://www.opengis.net/def/rel/ogc/1.0/execute"
REL_JOB_LIST = "http://www.opengis.net/def/rel/ogc/1.0/job-list"
JSON_TYPES = ("application/json",)
#: the role the processes' ``analyst`` stands for
ANALYST = "analyst"


def process_roles(env: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """The role each process needs (None: open): its own (``analyst`` as ``$CIM_JWT_ANALYST_ROLE``),
    overridden by ``$CIM_PROCESS_ROLES`` (``zoning-compliance=planner,measure=``). ConfigError for an
    entry without ``=`` or naming no process."""
    env = os.environ if env is None else env
    analyst = (env.get("CIM_JWT_ANALYST_ROLE") or "").strip() or ANALYST
    known = processes()
    roles = {pid: (analyst if p.role == ANALYST else p.role) for pid, p in known.items()}
    for entry in (env.get("CIM_PROCESS_ROLES") or "").split(","):
        if not entry.strip():
            continue
        pid, sep, role = (part.strip() for part in entry.partition("="))
        if not sep:
            raise ConfigError(f"CIM_PROCESS_ROLES: {entry.strip()[:60]!r} is not process-id=role (empty role: open)")
        if pid not in known:
            raise ConfigError(f"CIM_PROCESS_ROLES names no process {pid[:60]!r} (processes: {', '.join(known)})")
        roles[pid] = role or None
    return roles


def wants_async(prefer: str | None) -> bool:
    """Whether a ``Prefer`` header (RFC 7240) asks ``respond-async``."""
    return any(part.split(";", 1)[0].strip().lower() == "respond-async" for part in (prefer or "").split(","))


def wants_html(request: Request) -> bool:
    """``f=html``/``f=json`` (400 for another), else the ``Accept`` header preferring text/html."""
    fmt = request.query_params.get("f")
    if fmt is not None:
        if fmt not in ("json", "html"):
            raise InvalidQuery(f"unsupported format f={fmt[:40]!r}: processes are served as f=json or f=html")
        return fmt == "html"
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "application/json" not in accept.split("text/html", 1)[0]


def results_response(process: Process, request: ExecuteRequest, outputs: dict[str, Any]) -> Response:
    """The results of a synchronous execution (or of a job): ``raw`` with one output, its value with its
    media type; else the results document ``{outputId: value}``."""
    if request.response == "raw" and len(outputs) == 1:
        ((name, value),) = outputs.items()
        kind = process.outputs.get(name, {}).get("schema", {}).get("contentMediaType", "application/json")
        return Response(orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY), media_type=kind)
    return Response(orjson.dumps(outputs, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json")


class ProcessesAPI:
    """The endpoints, over ``store``, for the public base URL ``server_url``."""

    def __init__(self, store: Store, server_url: str, auth: JWTAuth | None) -> None:
        self.store = store
        self.base = server_url.rstrip("/")
        self.auth = auth
        self.roles = process_roles()
        self.analyst = (os.environ.get("CIM_JWT_ANALYST_ROLE") or "").strip() or ANALYST

    def role(self, process: Process) -> str | None:
        """The role executing ``process`` needs (None: open)."""
        if process.id in self.roles:
            return self.roles[process.id]
        # a process the catalog did not have when the app started (a test's plug-in): its own role
        return self.analyst if process.role == ANALYST else process.role

    # -- documents -----------------------------------------------------------------------------
    def process_links(self, pid: str) -> list[dict[str, str]]:
        url = f"{self.base}/processes/{pid}"
        return [
            {"rel": "self", "type": "application/json", "title": "Process description", "href": f"{url}?f=json"},
            {"rel": "alternate", "type": "text/html", "title": "This process as HTML", "href": f"{url}?f=html"},
            {"rel": REL_EXECUTE, "type": "application/json", "title": "Execute the process", "href": f"{url}/execution"},
        ]

    def process_list(self) -> dict[str, Any]:
        summaries = []
        for pid, process in processes().items():
            summary = process.summary()
            summary["links"] = self.process_links(pid)
            summaries.append(summary)
        url = f"{self.base}/processes"
        return {
            "processes": summaries,
            "links": [
                {"rel": "self", "type": "application/json", "title": "Processes", "href": f"{url}?f=json"},
                {"rel": "alternate", "type": "text/html", "title": "Processes as HTML", "href": f"{url}?f=html"},
                {"rel": REL_JOB_LIST, "type": "application/json", "title": "Jobs", "href": f"{self.base}/jobs"},
            ],
        }

    def description(self, process: Process) -> dict[str, Any]:
        doc = process.description_document()
        doc["links"] = self.process_links(process.id)
        role = self.role(process)
        if role:
            doc["x-cim-role"] = role  # who may execute it: a bearer token with this role
        return doc

    # -- routes --------------------------------------------------------------------------------
    async def list(self, request: Request) -> Response:
        try:
            html = wants_html(request)
            doc = self.process_list()
        except CIMError as exc:
            return ogc_exception(exc.status, str(exc), exc.code)
        if html:
            return Response(list_page(doc, self.base), media_type="text/html")
        return _json(doc)

    async def describe(self, request: Request) -> Response:
        try:
            html = wants_html(request)
            process = get_process(request.path_params["processId"])
            doc = self.description(process)
        except CIMError as exc:
            return ogc_exception(exc.status, str(exc), exc.code)
        if html:
            return Response(description_page(doc, process.example, self.base), media_type="text/html")
        return _json(doc)

    async def execute(self, request: Request) -> Response:
        try:
            process = get_process(request.path_params["processId"])
            subject = await self._subject(request, process)
            media_type(request, JSON_TYPES, "the execute request")
            most = limits().max_body_bytes
            raw = await read_at_most(request, most, TooLarge(f"the execute request is larger than {most} bytes (CIM_LIMIT_MAX_BODY_BYTES)"))
            execute = parse_execute(process, load_body(raw))
            if wants_async(request.headers.get("prefer")) or not process.sync:
                return await self._submit(request, process, execute, subject)
            outputs = await self._run(process, execute)
        except AuthError as exc:
            return exc.response()
        except CIMError as exc:
            return ogc_exception(exc.status, str(exc), exc.code)
        return results_response(process, execute, outputs)

    async def _subject(self, request: Request, process: Process) -> str | None:
        """Who executes: the token's ``sub``; AuthError (401/403) when the process needs a role the
        request's token lacks (or no key is configured)."""
        header = request.headers.get("authorization")
        role = self.role(process)
        if role is None:
            return None if self.auth is None else await run_in_threadpool(self.auth.subject, header)
        verifier = auth_module.configured(self.auth, f"executing process {process.id!r}")
        # a JWKS may be fetched to verify the token: never on the event loop
        return await run_in_threadpool(verifier.require, header, role, f"execute process {process.id!r}")

    async def _run(self, process: Process, execute: ExecuteRequest) -> dict[str, Any]:
        seconds = limits().request_seconds
        work = run_in_threadpool(run, self.store, process, execute)
        if seconds <= 0:
            return await work
        try:
            return await asyncio.wait_for(work, timeout=seconds)
        except TimeoutError:
            raise timeout_error(seconds) from None

    async def _submit(self, request: Request, process: Process, execute: ExecuteRequest, subject: str | None) -> Response:
        from cim.processes.runner import submit  # the job runner (jobs kept in the store)

        job = await run_in_threadpool(submit, self.store, process, execute, subject)
        location = f"{self.base}/jobs/{job.job_id}"
        info = status_info(job, self.base)
        headers = {"Location": location}
        if wants_async(request.headers.get("prefer")):
            headers["Preference-Applied"] = "respond-async"
        return Response(orjson.dumps(info), status_code=201, media_type="application/json", headers=headers)


def _json(doc: dict[str, Any]) -> Response:
    return Response(orjson.dumps(doc), media_type="application/json")


def processes_routes(store: Store, server_url: str, auth: JWTAuth | None) -> list[Route]:
    """The process routes (mount them before pygeoapi's, which has its own /processes)."""
    api = ProcessesAPI(store, server_url, auth)
    return [
        Route("/processes", api.list, methods=["GET"], name="processes"),
        Route("/processes/{processId}", api.describe, methods=["GET"], name="process"),
        Route("/processes/{processId}/execution", api.execute, methods=["POST"], name="execute"),
    ]
