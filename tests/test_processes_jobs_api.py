"""The /jobs routes over HTTP (OGC API – Processes job-list, dismiss), on both stores: the list with its
filters and paging links, a job's statusInfo and links, results, dismissal (which stops a running job),
HTML, and 4xx answers naming what is wrong. Jobs are made directly in the store, or run by the runner
(the execution route is ogcapi/processes_routes.py's)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from cim.processes import Job, JobQuery, get_process
from cim.processes import runner
from cim.processes.request import ExecuteRequest
from support.jobs import pid_gone, use_sample_processes, wait_status, wait_until
from support.planning_city import publish_planning_city
from support.server import app_client

RESULTS = "http://www.opengis.net/def/rel/ogc/1.0/results"
NO_SUCH_JOB = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/no-such-job"
NOT_READY = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/result-not-ready"


def _at(minutes: float) -> datetime:
    return datetime(2026, 5, 1, 8, 0, tzinfo=timezone.utc) + timedelta(minutes=minutes)


def _job(job_id: str, process_id: str, status: str, created: float, ran: float | None = None, message: str = "") -> Job:
    started = _at(created + 1) if ran is not None else None
    finished = _at(created + 1 + ran) if ran is not None else None
    return Job(job_id=job_id, process_id=process_id, status=status, created=_at(created), started=started, finished=finished, message=message)  # type: ignore[arg-type]


#: five finished jobs of the planned city's processes (durations 120, 30, 600, 0 and 60 s)
JOBS = (
    _job("j1", "measure", "successful", 0, ran=2),
    _job("j2", "measure", "failed", 10, ran=0.5, message="no feature 99 in layer buildings"),
    _job("j3", "zoning-compliance", "successful", 20, ran=10),
    replace(_job("j4", "zoning-compliance", "dismissed", 30), message="dismissed"),
    _job("j5", "release-diff", "successful", 40, ran=1),
)


@pytest.fixture
def api(store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    use_sample_processes(monkeypatch)
    publish_planning_city(store_url)
    with app_client(store_url) as client:
        store = client.app.state.store
        jobs = store.jobs()
        for job in JOBS:
            jobs.create(job)
        jobs.put_results("j1", {"length_m": 141.42})
        jobs.put_results("j3", {"violations": 2, "parcels": ["P2", "P4"]})
        client.store = store  # type: ignore[attr-defined]
        yield client
        for job in jobs.list(JobQuery(statuses=("accepted", "running"), limit=1000))[0]:
            runner.dismiss(store, job.job_id)
        wait_until(runner.runner(store).idle, "the runner to stop")


def _ids(doc: dict[str, Any]) -> list[str]:
    return [info["jobID"] for info in doc["jobs"]]


def _get(api: Any, url: str, status: int = 200) -> dict[str, Any]:
    response = api.get(url)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def test_job_list_newest_first_with_links(api: Any) -> None:
    doc = _get(api, "/jobs")
    assert _ids(doc) == ["j5", "j4", "j3", "j2", "j1"] and doc["numberMatched"] == 5
    assert [link["rel"] for link in doc["links"]] == ["self", "alternate"]
    j3 = doc["jobs"][2]
    assert j3 == {
        "type": "process", "processID": "zoning-compliance", "jobID": "j3", "status": "successful", "message": "",
        "created": "2026-05-01T08:20:00Z", "started": "2026-05-01T08:21:00Z", "finished": "2026-05-01T08:31:00Z",
        "progress": 0,
        "links": [
            {"rel": "self", "type": "application/json", "title": "This job", "href": "http://testserver/jobs/j3"},
            {"rel": "alternate", "type": "text/html", "title": "This job as HTML", "href": "http://testserver/jobs/j3?f=html"},
            {"rel": "up", "type": "application/json", "title": "The job list", "href": "http://testserver/jobs"},
            {"rel": RESULTS, "type": "application/json", "title": "The job's results", "href": "http://testserver/jobs/j3/results"},
        ],
    }  # fmt: skip
    # no results link but for a successful job
    assert [link["rel"] for link in doc["jobs"][1]["links"]] == ["self", "alternate", "up"]


def test_job_list_pages(api: Any) -> None:
    first = _get(api, "/jobs?limit=2&status=successful,failed")
    assert _ids(first) == ["j5", "j3"] and first["numberMatched"] == 4
    links = {link["rel"]: link["href"] for link in first["links"]}
    assert "prev" not in links
    assert links["next"] == "http://testserver/jobs?limit=2&status=successful%2Cfailed&offset=2"
    second = _get(api, links["next"].removeprefix("http://testserver"))
    assert _ids(second) == ["j2", "j1"]
    links = {link["rel"]: link["href"] for link in second["links"]}
    assert "next" not in links
    assert links["prev"] == "http://testserver/jobs?limit=2&status=successful%2Cfailed&offset=0"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("type=process", ["j5", "j4", "j3", "j2", "j1"]),
        ("type=wps", []),
        ("processID=measure", ["j2", "j1"]),
        ("processID=measure&processID=release-diff", ["j5", "j2", "j1"]),
        ("processID=measure,release-diff&status=successful", ["j5", "j1"]),
        ("status=dismissed&status=failed", ["j4", "j2"]),
        ("status=running", []),
        ("datetime=2026-05-01T08:10:00Z/2026-05-01T08:30:00Z", ["j4", "j3", "j2"]),
        ("datetime=2026-05-01T08:25:00Z/..", ["j5", "j4"]),
        ("datetime=../2026-05-01T08:09:00Z", ["j1"]),
        ("datetime=2026-05-01T08:20:00Z", ["j3"]),
        ("datetime=2026-05-01", ["j5", "j4", "j3", "j2", "j1"]),
        ("datetime=2026-05-02", []),
        ("minDuration=60", ["j5", "j3", "j1"]),
        ("maxDuration=60", ["j5", "j4", "j2"]),
        ("minDuration=100&maxDuration=200", ["j1"]),
        ("minDuration=30.5&maxDuration=120", ["j5", "j1"]),
    ],
)
def test_job_list_filters(api: Any, query: str, expected: list[str]) -> None:
    assert _ids(_get(api, f"/jobs?{query}")) == expected


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("status=done", "status 'done' is no job status"),
        ("limit=0", "limit must be between 1 and 10000"),
        ("limit=10001", "limit must be between 1 and 10000"),
        ("limit=ten", "limit must be an integer"),
        ("minDuration=-5", "minDuration must not be negative"),
        ("maxDuration=soon", "maxDuration must be a decimal number"),
        ("maxDuration=nan", "maxDuration must be a decimal number"),
        ("datetime=yesterday", "invalid datetime 'yesterday'"),
        ("datetime=2026-05-02/2026-05-01", "the start is after the end"),
        ("offset=-1", "offset must be an integer"),
        ("f=xml", "unsupported format f='xml'"),
        ("colour=red", "unknown parameter(s) colour"),
        ("limit=1&limit=2", "limit is given more than once"),
    ],
)
def test_job_list_bad_parameters_are_400_naming_them(api: Any, query: str, named: str) -> None:
    doc = _get(api, f"/jobs?{query}", 400)
    assert doc["code"] == "InvalidParameterValue" and named in doc["description"]


def test_a_job_and_its_results(api: Any) -> None:
    info = _get(api, "/jobs/j1")
    assert (info["jobID"], info["status"], info["processID"]) == ("j1", "successful", "measure")
    assert _get(api, "/jobs/j1/results") == {"length_m": 141.42}
    assert _get(api, "/jobs/j3/results") == {"violations": 2, "parcels": ["P2", "P4"]}
    failed = _get(api, "/jobs/j2/results", 404)
    assert failed["code"] == NOT_READY and failed["description"] == "job 'j2' failed: no feature 99 in layer buildings"
    dismissed = _get(api, "/jobs/j4/results", 404)
    assert dismissed["description"] == "job 'j4' dismissed: dismissed"


@pytest.mark.parametrize("path", ["/jobs/nope", "/jobs/nope/results", "/jobs/a%20b%3Bc", "/jobs/%2E%2E", "/jobs/" + "x" * 500])
def test_unknown_jobs_are_404_no_such_job(api: Any, path: str) -> None:
    doc = _get(api, path, 404)
    assert doc["code"] == NO_SUCH_JOB and "no job" in doc["description"]
    response = api.delete(path.removesuffix("/results"))
    assert response.status_code == 404 and response.json()["code"] == NO_SUCH_JOB


def test_running_job_over_http_then_dismissed(api: Any) -> None:
    job = runner.submit(api.store, get_process("sample-countdown"), ExecuteRequest("sample-countdown", {"seconds": 120}))
    wait_status(api.store.jobs(), job.job_id, "running")
    pid = runner.runner(api.store).running()[job.job_id]
    info = _get(api, f"/jobs/{job.job_id}")
    assert info["status"] == "running" and "started" in info and "finished" not in info
    assert RESULTS not in [link["rel"] for link in info["links"]]
    not_ready = _get(api, f"/jobs/{job.job_id}/results", 404)
    assert not_ready["code"] == NOT_READY and "is running" in not_ready["description"]
    assert _ids(_get(api, "/jobs?status=running")) == [job.job_id]
    response = api.delete(f"/jobs/{job.job_id}")
    assert response.status_code == 200, response.text
    dismissed = response.json()
    assert (dismissed["jobID"], dismissed["status"], dismissed["message"]) == (job.job_id, "dismissed", "dismissed")
    wait_until(lambda: pid_gone(pid), f"worker {pid} to be killed")
    assert _get(api, f"/jobs/{job.job_id}")["status"] == "dismissed"


def test_job_run_to_success_over_http(api: Any) -> None:
    job = runner.submit(api.store, get_process("sample-echo"), ExecuteRequest("sample-echo", {"text": "ping", "count": 2}))
    wait_status(api.store.jobs(), job.job_id, "successful", "failed")
    info = _get(api, f"/jobs/{job.job_id}")
    assert info["status"] == "successful" and info["progress"] == 100
    results = next(link["href"] for link in info["links"] if link["rel"] == RESULTS)
    assert _get(api, results.removeprefix("http://testserver")) == {"echo": {"text": "ping", "count": 2}, "layers": 7}


def test_dismissing_a_finished_job_deletes_it(api: Any) -> None:
    response = api.delete("/jobs/j3")
    assert response.status_code == 200 and response.json()["status"] == "dismissed"
    assert _get(api, "/jobs/j3", 404)["code"] == NO_SUCH_JOB
    assert _get(api, "/jobs/j3/results", 404)["code"] == NO_SUCH_JOB
    assert _ids(_get(api, "/jobs")) == ["j5", "j4", "j2", "j1"]


def test_html_pages(api: Any) -> None:
    api.store.jobs().create(_job("j6", "measure", "failed", 50, ran=1, message="<script>alert(1)</script>"))
    page = api.get("/jobs?limit=2", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'href="http://testserver/jobs/j6?f=html"' in page.text and "j5" in page.text and "j4" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>" not in page.text
    assert 'rel="next" href="http://testserver/jobs?limit=2&amp;offset=2&amp;f=html"' in page.text
    assert "2 of 6 jobs" in page.text
    job = api.get("/jobs/j1?f=html")
    assert job.headers["content-type"].startswith("text/html") and "<code>j1</code>" in job.text
    assert 'href="http://testserver/jobs/j1/results?f=html"' in job.text
    results = api.get("/jobs/j1/results?f=html")
    assert results.status_code == 200 and "length_m" in results.text and "141.42" in results.text
    # JSON unless a browser asks for HTML first
    assert api.get("/jobs", headers={"Accept": "application/json, text/html"}).headers["content-type"].startswith("application/json")


def test_server_start_fails_jobs_a_dead_server_left(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    from cim.store import open_store

    use_sample_processes(monkeypatch)
    publish_planning_city(store_url)
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    with open_store(store_url) as store:
        store.jobs().create(replace(_job("left", "measure", "running", 0), owner=f"{runner.host()}:{ended.stdout.strip()}"))
        store.jobs().create(replace(_job("ancient", "measure", "successful", 0, ran=1), created=datetime.now(timezone.utc) - timedelta(days=30), finished=datetime.now(timezone.utc) - timedelta(days=30)))
    with app_client(store_url) as client:
        info = _get(client, "/jobs/left")
        assert (info["status"], info["message"]) == ("failed", "the server running it stopped")
        assert _get(client, "/jobs/ancient", 404)["code"] == NO_SUCH_JOB
