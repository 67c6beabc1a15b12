"""The process catalog: the nine process ids of issue 13, each described completely and offline."""

from __future__ import annotations

import json

import pytest

from cim.processes import PROCESS_IDS, get_process, processes
from cim.processes.process import DOMAINS, NoSuchProcess


def test_every_process_of_the_issue_is_there_in_order() -> None:
    assert list(processes())[: len(PROCESS_IDS)] == list(PROCESS_IDS)


@pytest.mark.parametrize("process_id", PROCESS_IDS)
def test_description_is_complete_and_inline(process_id: str) -> None:
    process = get_process(process_id)
    doc = process.description_document()
    assert doc["id"] == process_id and doc["title"] and doc["description"]
    assert process.domain in DOMAINS and doc["keywords"][0] == process.domain
    assert doc["inputs"] and doc["outputs"]
    for name, description in doc["inputs"].items():
        assert description["title"] and description["schema"], name
        assert description["minOccurs"] in (0, 1) and description["maxOccurs"] == 1, name
    for name, description in doc["outputs"].items():
        assert description["title"] and description["schema"], name
    text = json.dumps(doc)
    assert '"$ref"' not in text  # no document the server serves may depend on an external URL
    assert "async-execute" in doc["jobControlOptions"] and "dismiss" in doc["jobControlOptions"]


@pytest.mark.parametrize("process_id", PROCESS_IDS)
def test_example_inputs_are_valid_against_the_schemas(process_id: str) -> None:
    from cim.processes.validate import parse_execute

    process = get_process(process_id)
    request = parse_execute(process, {"inputs": dict(process.example)})
    assert request.process_id == process_id


def test_heavy_city_wide_processes_need_the_analyst_role_and_lookups_are_open() -> None:
    roles = {pid: get_process(pid).role for pid in PROCESS_IDS}
    assert {pid for pid, role in roles.items() if role == "analyst"} >= {"zoning-compliance", "release-diff", "district-statistics"}
    for lookup in ("building-at-point", "parcel-at-point", "measure"):
        assert roles[lookup] is None


def test_unknown_process_is_a_404_naming_the_known_ones() -> None:
    with pytest.raises(NoSuchProcess) as caught:
        get_process("no-such")
    assert caught.value.status == 404 and "building-at-point" in str(caught.value)
