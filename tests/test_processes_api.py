"""OGC API – Processes over HTTP (ogcapi/processes_routes.py): list, description, execution (sync raw and
document, async as a job), bad input, roles, HTML pages, OpenAPI and conformance — on both stores, over the
planned city (tests/support/planning_city.py), with the sample processes (tests/support/sample_processes.py:
``sample-echo`` answers its inputs and the number of layers, ``sample-countdown`` needs ``analyst``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient

from cim.errors import ConfigError
from cim.processes import processes
from support.jobs import use_sample_processes, wait_until
from support.planning_city import publish_planning_city, release_layers
from support.postgis import BACKENDS, backend_store
from test_auth_access import KEY, bearer

PEM = KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
SAMPLES = ("sample-echo", "sample-countdown", "sample-fail")
#: the planned city's 6 layers (landuse, parcels, roads, admin_divisions, buildings, pois) and the live
#: layer every store lists beside a release (warnings)
LAYERS = len(release_layers()) + 1
EXECUTE = "/processes/sample-echo/execution"


@pytest.fixture(scope="module", params=BACKENDS)
def city(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A store (each back-end) holding release 1 of the planned city; the sample processes plugged in."""
    with pytest.MonkeyPatch.context() as mp, backend_store(request, "processes", tmp_path_factory.mktemp("processes")) as url:
        use_sample_processes(mp)  # here and in the job runner's children
        publish_planning_city(url)
        yield url
    processes.cache_clear()


def make_client(url: str, mp: pytest.MonkeyPatch, key: bool = True) -> TestClient:
    from ogcapi.app import create_app

    if key:
        mp.setenv("CIM_JWT_PUBLIC_KEY", PEM)
    else:
        mp.delenv("CIM_JWT_PUBLIC_KEY", raising=False)
    return TestClient(create_app(url, server_url="http://testserver"))


@pytest.fixture(scope="module")
def api(city: str) -> Iterator[TestClient]:
    from cim.processes import runner

    with pytest.MonkeyPatch.context() as mp, make_client(city, mp) as client:
        yield client
        # the jobs started here end quickly: let the runner finish before the store closes
        wait_until(runner.runner(client.app.state.store).idle, "the runner to stop")


def post(api: TestClient, body: Any, path: str = EXECUTE, **headers: str) -> Any:
    return api.post(path, content=json.dumps(body), headers={"Content-Type": "application/json", **headers})


def assert_exception(response: Any, status: int, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text[:300]
    doc = response.json()
    assert set(doc) >= {"code", "description"}
    for word in words:
        assert word in doc["description"], doc
    return doc


# -- list and description --------------------------------------------------------------------------


def test_the_process_list(api: TestClient) -> None:
    response = api.get("/processes")
    assert response.status_code == 200
    doc = response.json()
    ids = [p["id"] for p in doc["processes"]]
    assert set(SAMPLES) <= set(ids)
    echo = next(p for p in doc["processes"] if p["id"] == "sample-echo")
    assert echo["jobControlOptions"] == ["sync-execute", "async-execute", "dismiss"]
    assert echo["keywords"][0] == "city-management"
    rels = {link["rel"]: link["href"] for link in echo["links"]}
    assert rels["self"] == "http://testserver/processes/sample-echo?f=json"
    assert rels["http://www.opengis.net/def/rel/ogc/1.0/execute"] == "http://testserver/processes/sample-echo/execution"
    top = {link["rel"]: link for link in doc["links"]}
    assert top["self"]["type"] == "application/json" and top["alternate"]["type"] == "text/html"


def test_a_process_description(api: TestClient) -> None:
    listed = [p["id"] for p in api.get("/processes").json()["processes"]]
    for pid in listed:  # the samples and every process of the catalog (cim/analysis)
        response = api.get(f"/processes/{pid}")
        assert response.status_code == 200
        doc = response.json()
        assert doc["id"] == pid and doc["version"] == "1.0.0"
        for name, description in doc["inputs"].items():
            assert isinstance(description["schema"], dict), name
            assert description["minOccurs"] in (0, 1) and (description["maxOccurs"] == "unbounded" or description["maxOccurs"] >= 1)
        for description in doc["outputs"].values():
            assert isinstance(description["schema"], dict)
        assert "http" not in json.dumps([_refs(doc)])  # inline schemas: no remote $ref anywhere
        rels = {link["rel"] for link in doc["links"]}
        assert {"self", "alternate", "http://www.opengis.net/def/rel/ogc/1.0/execute"} <= rels
    echo = api.get("/processes/sample-echo").json()
    assert echo["inputs"]["text"]["minOccurs"] == 1 and echo["inputs"]["count"]["minOccurs"] == 0
    assert "x-cim-role" not in echo
    assert api.get("/processes/sample-countdown").json()["x-cim-role"] == "analyst"


def _refs(value: Any) -> list[str]:
    found, stack = [], [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found.extend(v for k, v in item.items() if k == "$ref")
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def test_an_unknown_process_is_404(api: TestClient) -> None:
    doc = assert_exception(api.get("/processes/nope"), 404, "'nope'", "sample-echo")
    assert doc["code"] == "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/no-such-process"
    assert_exception(post(api, {"inputs": {}}, "/processes/nope/execution"), 404, "'nope'")
    assert_exception(api.get("/processes?f=xml"), 400, "f=json or f=html")


# -- execution ------------------------------------------------------------------------------------


def test_sync_raw_response(api: TestClient) -> None:
    # raw (the default) with one output asked for: that output's value itself
    response = post(api, {"inputs": {"text": "hello"}, "outputs": {"layers": {}}})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == LAYERS
    # qualified value {"value": ...}, the default of count filled in
    response = post(api, {"inputs": {"text": {"value": "hi"}}, "outputs": {"echo": {"transmissionMode": "value"}}})
    assert response.json() == {"text": "hi", "count": 1}


def test_sync_document_response(api: TestClient) -> None:
    response = post(api, {"inputs": {"text": "hello", "count": 3}, "response": "document"})
    assert response.status_code == 200
    assert response.json() == {"echo": {"text": "hello", "count": 3}, "layers": LAYERS}
    # raw with two outputs: a results document too
    assert post(api, {"inputs": {"text": "x"}}).json() == {"echo": {"text": "x", "count": 1}, "layers": LAYERS}


def test_a_failing_process_says_why(api: TestClient) -> None:
    assert_exception(post(api, {"inputs": {"message": "no parcel here"}}, "/processes/sample-fail/execution"), 400, "no parcel here")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"inputs": {}}, ["input 'text'", "required"]),
        ({}, ["input 'text'", "required"]),
        ({"inputs": {"text": "a", "colour": "red"}}, ["no input 'colour'", "inputs: text, count"]),
        ({"inputs": {"text": 5}}, ["input 'text'", "type", "string"]),
        ({"inputs": {"text": "a", "count": 11}}, ["input 'count'", "maximum: 10"]),
        ({"inputs": {"text": "x" * 5000}}, ["input 'text'", "maxLength: 100"]),
        ({"inputs": {"text": {"href": "http://example.com/t"}}}, ["input 'text'", "by reference"]),
        ({"inputs": {"text": "a"}, "response": "multipart"}, ["'response' must be raw or document"]),
        ({"inputs": {"text": "a"}, "outputs": {"colour": {}}}, ["no output 'colour'"]),
        ({"inputs": {"text": "a"}, "outputs": {"echo": {"transmissionMode": "reference"}}}, ["transmissionMode"]),
        ({"inputs": {"text": "a"}, "mode": "async"}, ["unknown member 'mode'"]),
        ({"inputs": [1, 2]}, ["'inputs' must be an object"]),
        ([], ["must be a JSON object"]),
    ],
)
def test_bad_inputs_are_400_naming_the_input(api: TestClient, body: Any, words: list[str]) -> None:
    doc = assert_exception(post(api, body), 400, *words)
    assert doc["code"] == "InvalidParameterValue"
    assert len(doc["description"]) < 300  # names the rule, does not dump the value


def test_hostile_bodies(api: TestClient) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    assert_exception(api.post(EXECUTE, content=deep, headers={"Content-Type": "application/json"}), 400, "nested")
    nested: Any = "x"
    for _ in range(40):
        nested = {"a": nested}
    assert_exception(post(api, {"inputs": {"text": nested}}), 400, "nested more than 32 levels")
    assert_exception(api.post(EXECUTE, content=b"{not json", headers={"Content-Type": "application/json"}), 400, "not JSON")
    assert_exception(api.post(EXECUTE, content=b"", headers={"Content-Type": "application/json"}), 400, "no body")
    big = json.dumps({"inputs": {"text": "x" * (5 * 1024 * 1024 + 10)}})
    assert_exception(api.post(EXECUTE, content=big, headers={"Content-Type": "application/json"}), 413)
    assert_exception(api.post(EXECUTE, content=b"text=a", headers={"Content-Type": "text/plain"}), 415, "application/json")


# -- roles ----------------------------------------------------------------------------------------


def test_an_analyst_process_needs_the_role(api: TestClient) -> None:
    path = "/processes/sample-countdown/execution"
    body = {"inputs": {"seconds": 0}}
    refused = post(api, body, path)
    assert_exception(refused, 401, "bearer token")
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert_exception(post(api, body, path, **bearer("editor")), 403, "'analyst'")
    response = post(api, body, path, **bearer("analyst"))
    assert response.status_code == 200, response.text
    assert response.json() == 1  # one step (raw, the one output)
    # the open process needs nothing
    assert post(api, {"inputs": {"text": "a"}}).status_code == 200


def test_roles_are_configurable(city: str) -> None:
    roles = _roles({"CIM_JWT_ANALYST_ROLE": "city-analyst", "CIM_PROCESS_ROLES": "sample-echo=planner, sample-fail="})
    assert roles["sample-countdown"] == "city-analyst" and roles["sample-echo"] == "planner" and roles["sample-fail"] is None
    assert _roles({"CIM_PROCESS_ROLES": "sample-countdown="})["sample-countdown"] is None
    with pytest.raises(ConfigError, match="'planner' is not process-id=role"):
        _roles({"CIM_PROCESS_ROLES": "planner"})
    with pytest.raises(ConfigError, match="no process 'zoning'"):
        _roles({"CIM_PROCESS_ROLES": "zoning=planner"})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CIM_PROCESS_ROLES", "sample-echo=planner")
        with make_client(city, mp) as client:
            assert_exception(post(client, {"inputs": {"text": "a"}}), 401, "bearer token")
            assert_exception(post(client, {"inputs": {"text": "a"}}, **bearer("analyst")), 403, "'planner'")
            assert post(client, {"inputs": {"text": "a"}}, **bearer("planner")).status_code == 200
            assert client.get("/processes/sample-echo").json()["x-cim-role"] == "planner"


def _roles(env: dict[str, str]) -> dict[str, str | None]:
    from ogcapi.processes_routes import process_roles

    return process_roles(env)


def test_without_a_key_protected_processes_are_401(city: str) -> None:
    with pytest.MonkeyPatch.context() as mp, make_client(city, mp, key=False) as client:
        assert_exception(post(client, {"inputs": {"seconds": 0}}, "/processes/sample-countdown/execution", **bearer("analyst")),
                         401, "no key is configured")  # fmt: skip
        assert post(client, {"inputs": {"text": "a"}}).status_code == 200


# -- HTML, landing page, OpenAPI, conformance ------------------------------------------------------


def test_html_pages(api: TestClient) -> None:
    page = api.get("/processes?f=html")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'href="http://testserver/processes/sample-echo?f=html"' in page.text
    assert api.get("/processes", headers={"Accept": "text/html"}).headers["content-type"].startswith("text/html")
    page = api.get("/processes/sample-echo?f=html")
    assert page.status_code == 200
    assert '<form id="execute" method="post" action="http://testserver/processes/sample-echo/execution">' in page.text
    assert "&quot;text&quot;: &quot;hello&quot;" in page.text  # the example body, escaped, in the form
    assert "<code>text</code>" in page.text and "<code>count</code>" in page.text


def test_landing_page_links(api: TestClient) -> None:
    links = {link["rel"]: link["href"] for link in api.get("/?f=json").json()["links"]}
    assert links["http://www.opengis.net/def/rel/ogc/1.0/processes"] == "http://testserver/processes"
    assert links["http://www.opengis.net/def/rel/ogc/1.0/job-list"] == "http://testserver/jobs"


def test_openapi_has_the_paths(api: TestClient) -> None:
    doc = api.get("/openapi?f=json").json()
    for path in ("/processes", "/processes/{processId}", "/processes/{processId}/execution", "/jobs", "/jobs/{jobId}",
                 "/jobs/{jobId}/results"):  # fmt: skip
        assert path in doc["paths"], path
    execute = doc["paths"]["/processes/{processId}/execution"]["post"]
    examples = execute["requestBody"]["content"]["application/json"]["examples"]
    assert examples["sample-echo"]["value"] == {"inputs": {"text": "hello"}}
    assert set(execute["responses"]) >= {"200", "201", "400", "401", "403", "404", "413"}
    assert not [ref for ref in _refs(doc["paths"]) if not ref.startswith("#/")]
    assert "delete" in doc["paths"]["/jobs/{jobId}"]


def test_conformance_declares_processes(api: TestClient) -> None:
    conforms = set(api.get("/conformance?f=json").json()["conformsTo"])
    base = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/"
    for name in ("core", "ogc-process-description", "json", "html", "oas30", "job-list", "dismiss"):
        assert base + name in conforms
    assert base + "callback" not in conforms


# -- asynchronous: a job (needs the job runner, cim/processes/runner.py) ---------------------------


def test_async_execution_is_a_job(api: TestClient) -> None:
    response = post(api, {"inputs": {"text": "later", "count": 2}, "response": "document"}, Prefer="respond-async")
    assert response.status_code == 201, response.text
    assert response.headers["Preference-Applied"] == "respond-async"
    location = response.headers["Location"]
    info = response.json()
    assert location == f"http://testserver/jobs/{info['jobID']}"
    assert info["processID"] == "sample-echo" and info["status"] in ("accepted", "running", "successful")
    path = location.removeprefix("http://testserver")
    status = wait_until(lambda: (doc := api.get(path).json())["status"] in ("successful", "failed") and doc, f"job {path}")
    assert status["status"] == "successful", status
    links = {link["rel"]: link["href"] for link in status["links"]}
    assert links["http://www.opengis.net/def/rel/ogc/1.0/results"] == f"{location}/results"
    results = api.get(f"{path}/results")
    assert results.status_code == 200
    assert results.json() == {"echo": {"text": "later", "count": 2}, "layers": LAYERS}


def test_async_execution_needs_the_role_too(api: TestClient, city: str) -> None:
    path = "/processes/sample-countdown/execution"
    assert_exception(post(api, {"inputs": {"seconds": 0}}, path, Prefer="respond-async"), 401, "bearer token")
    assert_exception(post(api, {"inputs": {"seconds": 0}}, path, Prefer="respond-async", **bearer("editor")), 403, "'analyst'")
    response = post(api, {"inputs": {"seconds": 0}}, path, Prefer="respond-async", **bearer("analyst", sub="ana"))
    assert response.status_code == 201, response.text
    job = response.json()["jobID"]
    from cim.store import shared_store

    assert shared_store(city).jobs().get(job).subject == "ana"  # who submitted it


def test_a_job_is_seen_only_by_its_subject_and_admins(api: TestClient) -> None:
    """A job executed with a token is its subject's: to anyone else it does not exist (404), it is
    not in their job list and they cannot dismiss it; anonymous jobs are everyone's; admins see all."""
    path = "/processes/sample-countdown/execution"
    mine = post(api, {"inputs": {"seconds": 0}}, path, Prefer="respond-async", **bearer("analyst", sub="alice"))
    assert mine.status_code == 201, mine.text
    job = f"/jobs/{mine.json()['jobID']}"
    anonymous = post(api, {"inputs": {"text": "open"}}, Prefer="respond-async").json()["jobID"]
    alice, bob, admin = bearer("analyst", sub="alice"), bearer("analyst", sub="bob"), bearer("admin", sub="root")
    wait_until(lambda: api.get(job, headers=alice).json()["status"] == "successful", f"job {job}")
    for headers in ({}, bob):
        assert_exception(api.get(job, headers=headers), 404, "no job")
        assert_exception(api.get(f"{job}/results", headers=headers), 404, "no job")
        assert_exception(api.delete(job, headers=headers), 404, "no job")
        listed = {j["jobID"] for j in api.get("/jobs?limit=1000", headers=headers).json()["jobs"]}
        assert job.rsplit("/", 1)[1] not in listed and anonymous in listed
    for headers in (alice, admin):
        assert api.get(job, headers=headers).status_code == 200
        assert api.get(f"{job}/results", headers=headers).json() == {"steps": 1}
        listed = {j["jobID"] for j in api.get("/jobs?limit=1000", headers=headers).json()["jobs"]}
        assert {job.rsplit("/", 1)[1], anonymous} <= listed
    assert api.delete(job, headers=alice).status_code == 200  # finished: deleted
    assert_exception(api.get(job, headers=admin), 404, "no job")


def test_a_failing_job_says_why(api: TestClient) -> None:
    response = post(api, {"inputs": {"message": "no parcel here"}}, "/processes/sample-fail/execution", Prefer="respond-async")
    assert response.status_code == 201, response.text
    path = response.headers["Location"].removeprefix("http://testserver")
    status = wait_until(lambda: (doc := api.get(path).json())["status"] in ("successful", "failed") and doc, f"job {path}")
    assert status["status"] == "failed" and "no parcel here" in status["message"]


def test_the_example_bodies_are_valid(city: str) -> None:
    from cim.processes.validate import parse_execute

    for process in processes().values():
        assert parse_execute(process, {"inputs": dict(process.example)}).process_id == process.id


def test_html_escapes_descriptions(tmp_path: Path) -> None:
    from ogcapi.processes_html import description_page

    page = description_page({"id": "x", "title": "<script>alert(1)</script>", "inputs": {}, "outputs": {}}, {"t": "</textarea>"}, "http://h")
    assert "<script>alert(1)</script>" not in page and "&lt;/textarea&gt;" in page


def test_a_sync_execution_past_the_budget_is_503(city: str) -> None:
    from cim.limits import limits

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CIM_LIMIT_REQUEST_SECONDS", "0.5")
        limits.cache_clear()
        try:
            with make_client(city, mp) as client:
                # a 5 s countdown against a 0.5 s budget: stopped waiting for, answered 503 (ask for a job)
                response = post(client, {"inputs": {"seconds": 5}}, "/processes/sample-countdown/execution", **bearer("analyst"))
                assert_exception(response, 503, "time budget")
                assert response.headers["Retry-After"].isdigit()
        finally:
            limits.cache_clear()


def test_the_demo_opens_the_analyst_processes_only_when_nobody_could_hold_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    from layers.commands import _open_processes_without_tokens

    for name in ("CIM_JWT_PUBLIC_KEY", "CIM_JWT_PUBLIC_KEY_FILE", "CIM_JWT_JWKS_URL", "CIM_PROCESS_ROLES"):
        # (set, then deleted: monkeypatch records the value from before the test, so the roles the
        # function writes into os.environ are undone with it and leak into no other test)
        monkeypatch.setenv(name, "x")
        monkeypatch.delenv(name)
    _open_processes_without_tokens()
    opened = dict(entry.split("=") for entry in os.environ["CIM_PROCESS_ROLES"].split(","))
    assert {"zoning-compliance", "release-diff", "district-statistics", "landuse-by-district"} <= set(opened)
    assert set(opened.values()) == {""}
    assert all(role is None for role in _roles(dict(os.environ)).values())
    # a key configured (or roles given): the roles stay
    monkeypatch.delenv("CIM_PROCESS_ROLES")
    monkeypatch.setenv("CIM_JWT_PUBLIC_KEY", PEM)
    _open_processes_without_tokens()
    assert "CIM_PROCESS_ROLES" not in os.environ


def test_a_graceful_shutdown_stops_its_running_jobs_and_says_so(city: str) -> None:
    """Stopping a server (its lifespan's end: SIGTERM to `cim serve`) kills the workers of the jobs it
    runs and marks them failed at once, rather than leaving them `running` until a server starts again."""
    from cim.processes import runner
    from cim.store import shared_store

    with pytest.MonkeyPatch.context() as mp, make_client(city, mp) as client:
        path = "/processes/sample-countdown/execution"
        response = post(client, {"inputs": {"seconds": 60}}, path, Prefer="respond-async", **bearer("analyst", sub="ana"))
        assert response.status_code == 201, response.text
        job_id = response.json()["jobID"]
        pid = wait_until(lambda: runner.runner(client.app.state.store).running().get(job_id), "the job's worker to start")
    job = shared_store(city).jobs().get(job_id)
    assert job.status == "failed" and "server stopped" in job.message
    assert not Path(f"/proc/{pid}").exists()  # killed and reaped
