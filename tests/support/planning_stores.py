"""The planned city (tests/support/planning_city.py) published into a store of each back-end, stored in
EPSG:4326 and in CGCS2000 Gauss-Krüger EPSG:4548, for the planning and housing process tests; and a
helper that checks a process's outputs against the JSON Schemas its description declares."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import jsonschema
import pytest
from support.planning_city import publish_planning_city
from support.postgis import backend_store

import cim
from cim.processes import Process

#: storage CRSs the planned city is tested in: lon/lat and the Gauss-Krüger zone it is drawn in
SRIDS = [4326, 4548]


@contextlib.contextmanager
def planning_city(request: pytest.FixtureRequest, name: str, tmp_path_factory: pytest.TempPathFactory, srid: int,
                  releases: int = 1) -> Iterator[cim.City]:
    """The planned city in ``request.param``'s back-end (a module-scoped fixture's param), stored in ``srid``."""
    with backend_store(request, f"{name}{srid}", tmp_path_factory.mktemp(name)) as url:
        publish_planning_city(url, srid=srid, releases=releases)
        with cim.open(url) as city:
            yield city


def check_outputs(process: Process, outputs: Mapping[str, Any]) -> None:
    """Every output is one the process declares and is valid against its schema."""
    assert set(outputs) == set(process.outputs)
    for name, value in outputs.items():
        jsonschema.validate(value, process.outputs[name]["schema"])
