"""The short load run in CI (the full one: ``python -m bench.load``, docs/reliability-ops.md): 64
clients for 10 s against a real ``cim serve`` with 2 workers over each store, while releases switch
(``cim releases rollback``, a new release published by another process) and edits land with a token;
not one request may fail — no connection error (refused, reset, closed without a response), no 5xx."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.load import run
from cim.store import LayerData, ReleaseDraft, open_store


pytestmark = pytest.mark.slow  # 64 clients for 10 s against a real `cim serve` (~50 s)


@pytest.fixture
def two_releases(store_url: str, demo_layers: list[LayerData]) -> str:
    with open_store(store_url) as store:
        for _ in range(2):
            store.publish(ReleaseDraft(layers=demo_layers, srid=4326))
            store.prepare_tiles()
    return store_url


def test_64_clients_with_switches_and_edits_lose_no_request(two_releases: str, tmp_path: Path) -> None:
    report = run(two_releases, clients=64, seconds=10, workers=2, switch_every=0.5, publish_every=5,
                 edit_every=0.3, log_dir=tmp_path)  # fmt: skip
    summary = report.summary()
    assert report.requests > 0, summary
    assert report.failures == {}, summary["examples"]
    assert report.side_errors == [], report.side_errors
    assert report.worker_restarts == 0, summary
    assert report.switches > 0 and report.edits > 0, summary
