"""Property-based fuzzing of the API from its own OpenAPI document (schemathesis 4), on both stores.

Every READ operation of ``/openapi`` (Features, Tiles, map tiles) over the demo city; every WRITE
operation (Features Part 4 on the editable layers) over a fresh store with a valid editor token.
Bounded and reproducible: ``max_examples`` per operation, derandomized (fixed seed). Checked: no
5xx (``not_a_server_error``) and, for the reads, responses that conform to the document.
"""

from __future__ import annotations

import os
from typing import Any, Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from test_api_edits import auth, pem, publish
from test_tiles_rasters import client, raster_store_url  # noqa: F401 - fixtures: a store with raster layers

#: examples per operation and generation mode (valid data, then invalid data); a wider run:
#: CIM_FUZZ_EXAMPLES=60 ./scripts/test tests/test_api_fuzz.py
pytestmark = pytest.mark.slow  # schemathesis over the whole OpenAPI document (~20 s)


READ_EXAMPLES = int(os.environ.get("CIM_FUZZ_EXAMPLES", "10"))
WRITE_EXAMPLES = int(os.environ.get("CIM_FUZZ_EXAMPLES", "15"))
#: the demo's other collections' paths: the same routes as buildings' and landuse's (which have
#: every field type and an editable layer), fuzzed there
SAME_ROUTES = r"^/collections/(water|roads|pois)(/|$)"
READ_CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
WRITE_CHECKS = [not_a_server_error]


def fuzz(schema: Any, examples: int, checks: list[Any], headers: dict[str, str] | None = None) -> list[str]:
    """Run every operation of ``schema`` on ``examples`` valid and ``examples`` invalid cases
    (derandomized: the same cases each run); the failures, one line each (operation: reason)."""
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            # valid cases of one feature name one that exists (random ids all miss: 404 only)
            fixed = {"featureId": "1"} if mode == GenerationMode.POSITIVE and "{featureId}" in operation.path else None

            @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed))
            @settings(
                max_examples=examples, derandomize=True, deadline=None, database=None,
                suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate],
            )  # fmt: skip
            def run(case: Any) -> None:
                case.call_and_validate(headers=headers, checks=checks)

            try:
                run()
            except Unsatisfiable:
                pass  # no invalid request exists for an operation without parameters
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collected, reported below
                first = " ".join(str(exc).split())[:400]
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {first}")
    assert operations > 0, "the OpenAPI document lists no operation to fuzz"
    return failures


def test_read_operations_never_fail_on_the_server(api_client: Any) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi?f=json", api_client.app).include(method="GET")
    # the event streams never end (Server-Sent Events): their parameters are tested in
    # tests/test_warnings_push_sse.py and tests/test_sharing_releases_api.py
    schema = schema.exclude(path_regex=SAME_ROUTES).exclude(path="/warnings/stream").exclude(path="/releases/stream")
    failures = fuzz(schema, READ_EXAMPLES, READ_CHECKS)
    assert not failures, "\n".join(failures)


def test_map_tile_operations_never_fail_on_the_server(client: Any) -> None:  # noqa: F811 - the fixture
    """The map tile routes of raster collections (the demo city has none: a DEM and imagery here)."""
    schema = schemathesis.openapi.from_asgi("/openapi?f=json", client.app).include(method="GET", path_regex="/map/")
    failures = fuzz(schema, READ_EXAMPLES, READ_CHECKS)
    assert not failures, "\n".join(failures)


@pytest.fixture(scope="module")
def editor_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def write_app(store_url: str, editor_key: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from ogcapi.app import create_app

    publish(store_url)
    monkeypatch.setenv("CIM_JWT_PUBLIC_KEY", pem(editor_key))
    app = create_app(store_url, server_url="http://testserver")
    with TestClient(app):
        yield app
    from cim.store import _shared

    shared = _shared.pop(store_url, None)
    if shared is not None:
        shared.close()


def test_write_operations_never_fail_on_the_server(write_app: Any, editor_key: Any) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi?f=json", write_app)
    schema = schema.include(method=["POST", "PUT", "PATCH", "DELETE"])
    failures = fuzz(schema, WRITE_EXAMPLES, WRITE_CHECKS, headers=auth(editor_key))
    assert not failures, "\n".join(failures)
