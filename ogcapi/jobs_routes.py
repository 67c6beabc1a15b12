"""OGC API – Processes Part 1 jobs: the job list, a job's status, its results, dismissal.

- ``GET /jobs``: the job list (conformance class job-list): filters ``type`` (``process``), ``processID``,
  ``status``, ``datetime`` (when created), ``minDuration``/``maxDuration`` (seconds), ``limit``, and
  ``offset`` (what the ``next``/``prev`` links carry); newest first; a ``statusInfo`` per job with its
  links (``self``, ``results`` once successful, ``up``).
- ``GET /jobs/{jobId}``: the ``statusInfo`` with links.
- ``GET /jobs/{jobId}/results``: the outputs as a results document ``{output id: value}``; 404
  ``result-not-ready`` while accepted/running, and a failed or dismissed job's message.
- ``DELETE /jobs/{jobId}`` (dismiss): an accepted/running job is stopped (the server running it kills it
  at once) and answers its ``statusInfo`` with status ``dismissed``; a finished one is deleted.
Unknown jobs: 404 ``no-such-job``. JSON, or HTML with ``f=html`` / a browser's ``Accept``.

Who sees a job: a job executed with a bearer token belongs to the token's ``sub``; only that subject
(or a token with the admin role, ``$CIM_JWT_ADMIN_ROLE``) lists, reads, fetches the results of, or
dismisses it — to anyone else it does not exist (404 ``no-such-job``). Jobs executed anonymously are
everyone's. Without a key configured no token is verified, so every job is everyone's.
The jobs are the store's (:meth:`cim.store.Store.jobs`), run by :mod:`cim.processes.runner`."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cim.processes import Job, JobQuery, NoSuchJob
from cim.processes import runner
from cim.store import Store
from ogcapi import parameters
from ogcapi.auth import JWTAuth
from ogcapi.jobs_html import job_page, jobs_page, results_page

RESULTS_REL = "http://www.opengis.net/def/rel/ogc/1.0/results"
JSON = "application/json"
HTML = "text/html"
#: jobs change: never cached
NO_STORE = {"Cache-Control": "no-store"}


def status_info(job: Job, base: str) -> dict[str, Any]:
    """A job's ``statusInfo`` with its links."""
    info = job.status_info()
    url = f"{base}/jobs/{job.job_id}"
    links = [
        {"rel": "self", "type": JSON, "title": "This job", "href": url},
        {"rel": "alternate", "type": HTML, "title": "This job as HTML", "href": f"{url}?f=html"},
        {"rel": "up", "type": JSON, "title": "The job list", "href": f"{base}/jobs"},
    ]
    if job.status == "successful":
        links.append({"rel": RESULTS_REL, "type": JSON, "title": "The job's results", "href": f"{url}/results"})
    info["links"] = links
    return info


def _page_url(base: str, request: Request, offset: int) -> str:
    pairs = [(k, v) for k, v in request.query_params.multi_items() if k not in ("offset", "f")]
    pairs.append(("offset", str(offset)))

    return f"{base}/jobs?{urlencode(pairs)}"


def jobs_routes(store: Store, server_url: str, auth: JWTAuth | None = None) -> list[Route]:
    base = server_url.rstrip("/")

    async def visible_to(request: Request) -> tuple[str, ...] | None:
        """The subjects whose jobs the caller sees besides anonymous ones; None: every job (admin, or
        no key configured)."""
        if auth is None:
            return None
        # a JWKS may be fetched to verify the token: never on the event loop
        subject, roles = await run_in_threadpool(auth.caller, request.headers.get("authorization"))
        if auth.admin_role in roles:
            return None
        return () if subject is None else (subject,)

    async def own_job(request: Request) -> Job:
        """The job of the path, if the caller may see it; NoSuchJob otherwise (as if it did not exist)."""
        job_id = request.path_params["jobId"]
        found = await run_in_threadpool(store.jobs().get, job_id)
        if not JobQuery(visible_to=await visible_to(request)).shows(found.subject):
            raise NoSuchJob(f"no job {job_id!r}")
        return found

    def html(request: Request, what: str) -> bool:
        return parameters.wants_html(request.query_params.get("f"), request.headers.get("accept"), what)

    async def job_list(request: Request) -> Response:
        query = parameters.job_parameters(request.query_params.multi_items())
        as_html = html(request, "jobs")
        if query.type_ok:
            found, total = await run_in_threadpool(
                store.jobs().list,
                JobQuery(
                    process_ids=query.process_ids, statuses=query.statuses, created_from=query.created_from,
                    created_until=query.created_until, min_duration=query.min_duration,
                    max_duration=query.max_duration, limit=query.limit, offset=query.offset,
                    visible_to=await visible_to(request),
                ),
            )  # fmt: skip
        else:
            found, total = [], 0
        links = [
            {"rel": "self", "type": JSON, "title": "This page", "href": _page_url(base, request, query.offset)},
            {"rel": "alternate", "type": HTML, "title": "This page as HTML", "href": _page_url(base, request, query.offset) + "&f=html"},
        ]  # fmt: skip
        if query.offset + len(found) < total:
            links.append({"rel": "next", "type": JSON, "title": "Next page", "href": _page_url(base, request, query.offset + query.limit)})
        if query.offset > 0:
            links.append({"rel": "prev", "type": JSON, "title": "Previous page", "href": _page_url(base, request, max(0, query.offset - query.limit))})
        doc = {"jobs": [status_info(job, base) for job in found], "links": links, "numberMatched": total}
        if as_html:
            return Response(jobs_page(doc, base), media_type=HTML, headers=NO_STORE)
        return JSONResponse(doc, headers=NO_STORE)

    async def job(request: Request) -> Response:
        as_html = html(request, "jobs")
        info = status_info(await own_job(request), base)
        if as_html:
            return Response(job_page(info, base), media_type=HTML, headers=NO_STORE)
        return JSONResponse(info, headers=NO_STORE)

    async def results(request: Request) -> Response:
        as_html = html(request, "results")
        job_id = (await own_job(request)).job_id
        outputs = await run_in_threadpool(store.jobs().results, job_id)
        if as_html:
            return Response(results_page(job_id, outputs, base), media_type=HTML, headers=NO_STORE)
        return JSONResponse(outputs, headers=NO_STORE)

    async def dismiss(request: Request) -> Response:
        dismissed = await run_in_threadpool(runner.dismiss, store, (await own_job(request)).job_id)
        return JSONResponse(status_info(dismissed, base), headers=NO_STORE)

    return [
        Route("/jobs", job_list, methods=["GET"], name="jobs"),
        Route("/jobs/{jobId}", job, methods=["GET"], name="job"),
        Route("/jobs/{jobId}", dismiss, methods=["DELETE"], name="dismiss_job"),
        Route("/jobs/{jobId}/results", results, methods=["GET"], name="job_results"),
    ]
