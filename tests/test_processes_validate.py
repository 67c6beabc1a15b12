"""Execute requests checked against a process (cim/processes/validate.py), without a store: what the
HTTP tests (tests/test_processes_api.py) do not reach — several occurrences, qualified values with a
media type, remote references never fetched, the CLI's reading of bodies."""

from __future__ import annotations

from typing import Any

import pytest
from referencing.exceptions import Unresolvable

from cim.processes.process import InvalidInput, Process
from cim.processes.schemas import POINT, input_description
from cim.processes.validate import load_body, parse_execute


def process(**inputs: dict[str, Any]) -> Process:
    return Process(id="t", title="T", description="test", inputs=inputs, outputs={}, run=lambda s, i, p: {}, domain="planning")


def test_several_occurrences() -> None:
    points = {**input_description("Points", "up to 3", POINT), "maxOccurs": 3}
    p = process(points=points)
    one = {"type": "Point", "coordinates": [117.2, 39.1]}
    assert parse_execute(p, {"inputs": {"points": [one, {"value": one}]}}).inputs == {"points": [one, one]}
    assert parse_execute(p, {"inputs": {"points": one}}).inputs == {"points": one}
    with pytest.raises(InvalidInput, match="takes 1 to 3 values, not 4"):
        parse_execute(p, {"inputs": {"points": [one] * 4}})
    with pytest.raises(InvalidInput, match=r"input 'points\[1\].coordinates' .*minItems: 2"):
        parse_execute(p, {"inputs": {"points": [one, {"type": "Point", "coordinates": [1]}]}})


def test_qualified_values_and_defaults() -> None:
    p = process(
        level=input_description("Level", "", {"type": "string", "enum": ["district", "street"], "default": "district"}, optional=True),
        note=input_description("Note", "", {"type": "string"}, optional=True),
    )
    assert parse_execute(p, {}).inputs == {"level": "district"}  # no default for note: left out
    given = {"level": {"value": "street", "mediaType": "text/plain"}}
    assert parse_execute(p, {"inputs": given}).inputs == {"level": "street"}
    with pytest.raises(InvalidInput, match=r"input 'level' of process 't' fails the schema \(enum: \[\"district\",\"street\"\]\)"):
        parse_execute(p, {"inputs": {"level": "city"}})


def test_a_remote_reference_is_never_fetched() -> None:
    # descriptions are inline (tests/test_processes_api.py checks there is no remote $ref); were one
    # there, it is unresolvable at once — no connection is tried (port 9 would hang or refuse)
    p = process(a={"schema": {"$ref": "http://127.0.0.1:9/schema.json"}, "minOccurs": 1, "maxOccurs": 1})
    with pytest.raises(Unresolvable):
        parse_execute(p, {"inputs": {"a": 1}})


def test_load_body() -> None:
    assert load_body(b' {"inputs": {}} ') == {"inputs": {}}
    for raw, words in ((b"", "no body"), (b"{", "not JSON"), (b"[" * 2000 + b"]" * 2000, "nested more than 32"),
                       (b"[" * 40 + b"]" * 40, "nested more than 32")):  # fmt: skip
        with pytest.raises(InvalidInput, match=words):
            load_body(raw)
