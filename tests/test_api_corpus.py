"""The bad-input corpus, on both stores: hostile READ requests (tests/corpus/requests.yml), hostile
WRITE bodies (tests/corpus/bodies/cases.yml, plus huge ones generated here) and broken build inputs
(tests/support/corpus_builds.py). Each case has the one status (or build outcome) it must get; a 4xx is an
OGC exception document without database internals, and nothing gets a 5xx.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from cim.limits import limits
from support.postgis import BACKENDS, backend_store
from support.corpus_builds import CASES as BUILD_CASES
from support.corpus_builds import run_case
from test_api_edits import auth, pem, publish

CORPUS = Path(__file__).parent / "corpus"
PARCELS = "/collections/parcels/items"
#: text a client must never read in an error
INTERNALS = ("Traceback", "Exception", "duckdb", "psycopg", "SQLSTATE", "Binder Error", "Conversion Error")
RING = [[117.170, 39.140], [117.171, 39.140], [117.171, 39.141], [117.170, 39.141], [117.170, 39.140]]


@dataclass(frozen=True)
class RequestCase:
    name: str
    path: str
    status: int
    method: str = "GET"


@dataclass(frozen=True)
class BodyCase:
    name: str
    body: bytes
    status: int
    content_type: str = "application/geo+json"
    headers: dict[str, str] = field(default_factory=dict)


def _feature_text(geometry: str, properties: str = '{"parcel_id": "120101-991", "land_use": "R2"}') -> bytes:
    return f'{{"type": "Feature", "geometry": {geometry}, "properties": {properties}}}'.encode()


def generated_requests() -> list[RequestCase]:
    """Requests too large to write into requests.yml."""
    lim = limits()
    deep = "(" * 2000 + "floors>1" + ")" * 2000
    too_long = "floors = 1" + " OR floors = 1" * (lim.max_filter_bytes // 14 + 1)
    return [
        RequestCase("filter-2000-nested-parentheses", f"/collections/buildings/items?filter={deep}", 400),
        RequestCase("filter-json-2000-nested-arrays", "/collections/buildings/items?filter-lang=cql2-json&filter="
                    + "[" * 2000 + "]" * 2000, 400),  # fmt: skip
        RequestCase("filter-longer-than-max-filter-bytes", f"/collections/buildings/items?filter={too_long}", 414),
        RequestCase("query-longer-than-max-query-bytes", "/collections/buildings/items?name=" + "x" * (lim.max_query_bytes + 1), 414),
        RequestCase("path-of-10000-characters", "/collections/" + "a" * 10_000 + "/items", 404),
    ]


def request_cases() -> list[RequestCase]:
    entries = yaml.safe_load((CORPUS / "requests.yml").read_text(encoding="utf-8"))
    return [RequestCase(**entry) for entry in entries] + generated_requests()


def generated_bodies() -> list[BodyCase]:
    """Bodies too large (or too deep) to keep as files."""
    lim = limits()
    deep_coordinates = "[" * 900 + "117.17, 39.14" + "]" * 900
    vertices = 200_000
    ring = [[117.17 + 0.001 * (i % 1000) / 1000, 39.14 + 0.001 * (i // 1000) / 1000] for i in range(vertices)]
    ring.append(ring[0])
    big_polygon = json.dumps({"type": "Polygon", "coordinates": [ring]})
    padding = "x" * (20 * 1024 * 1024)
    return [
        BodyCase("json-100000-deep", b"[" * 100_000 + b"]" * 100_000, 400),
        BodyCase("coordinates-900-deep", _feature_text(f'{{"type": "Polygon", "coordinates": {deep_coordinates}}}'), 400),
        BodyCase("body-of-20-mb", _feature_text(json.dumps({"type": "Polygon", "coordinates": [RING]}),
                                                json.dumps({"parcel_id": padding, "land_use": "R2"})), 413),  # fmt: skip
        BodyCase(f"polygon-of-{vertices}-vertices", _feature_text(big_polygon), 413),
        BodyCase("json-depth-just-past-the-limit", b"[" * (lim.max_json_depth + 1) + b"]" * (lim.max_json_depth + 1), 400),
    ]


def body_cases() -> list[BodyCase]:
    entries = yaml.safe_load((CORPUS / "bodies" / "cases.yml").read_text(encoding="utf-8"))
    files = [
        BodyCase(e["name"], (CORPUS / "bodies" / e["file"]).read_bytes(), e["status"],
                 e.get("content_type", "application/geo+json"), dict(e.get("headers") or {}))
        for e in entries
    ]  # fmt: skip
    return files + generated_bodies()


def assert_answer(response: Any, status: int) -> None:
    assert response.status_code == status, (response.status_code, response.text[:400])
    if status >= 400:
        doc = response.json()
        assert {"code", "description"} <= set(doc), doc
        for secret in INTERNALS:
            assert secret not in doc["description"], (secret, doc)


REQUESTS = request_cases()


@pytest.mark.parametrize("case", REQUESTS, ids=[c.name for c in REQUESTS])
def test_read_requests(api_client: Any, case: RequestCase) -> None:
    assert_answer(api_client.request(case.method, case.path), case.status)


@pytest.fixture(scope="module")
def editor_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module", params=BACKENDS)
def edit_client(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, editor_key: Any) -> Iterator[Any]:
    """The app over a fresh store (parcels editable) with an editor key configured, per backend."""
    from fastapi.testclient import TestClient

    from ogcapi.app import create_app

    with backend_store(request, "h1corpus", tmp_path_factory.mktemp("h1corpus")) as url:
        publish(url)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("CIM_JWT_PUBLIC_KEY", pem(editor_key))
            with TestClient(create_app(url, server_url="http://testserver")) as client:
                yield client
        if not url.startswith("postgresql"):
            from cim.store import _shared

            shared = _shared.pop(url, None)
            if shared is not None:
                shared.close()


BODIES = body_cases()


@pytest.mark.parametrize("case", BODIES, ids=[c.name for c in BODIES])
def test_write_bodies(edit_client: Any, editor_key: Any, case: BodyCase) -> None:
    headers = {**auth(editor_key), "Content-Type": case.content_type, **case.headers}
    assert_answer(edit_client.post(PARCELS, content=case.body, headers=headers), case.status)


@pytest.mark.parametrize("case", BUILD_CASES, ids=[c.name for c in BUILD_CASES])
@pytest.mark.slow  # a build per case (25 cases, ~70 s)
def test_build_inputs(case: Any, store_url: str, tmp_path: Path) -> None:
    run_case(case, store_url, tmp_path)


def test_corpus_is_not_empty() -> None:
    assert len(REQUESTS) >= 40 and len(BODIES) >= 15 and len(BUILD_CASES) >= 1
    assert all(os.path.exists(CORPUS / "bodies" / e["file"])
               for e in yaml.safe_load((CORPUS / "bodies" / "cases.yml").read_text(encoding="utf-8")))  # fmt: skip
