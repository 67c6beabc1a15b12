"""The execute request's body checked against the process (OGC API – Processes Part 1, ``execute.yaml``):
an :class:`~cim.processes.request.ExecuteRequest`, or a 400 (:class:`InvalidInput`) naming the input and
the rule it fails.

- the body is a JSON object with ``inputs`` (an object; may be left out when no input is required),
  optional ``outputs`` (output id -> ``{"format": ..., "transmissionMode": "value"}``) and ``response``
  (``raw``, the default in 1.0, or ``document``); nothing else;
- each input is given as its value or as a qualified value ``{"value": ...}`` (``mediaType``/``encoding``/
  ``schema`` beside it are allowed); by reference (``{"href": ...}``) is refused — this server fetches
  nothing;
- each value is checked with ``jsonschema`` (Draft 2020-12) against the input's schema; references are
  local only (the descriptions have none: no remote ``$ref`` is ever fetched); an input with
  ``maxOccurs`` > 1 may be an array of values, each checked;
- unknown inputs and missing required ones (``minOccurs`` >= 1) are refused; missing optional ones take
  their schema's ``default`` when it has one;
- depth first: a body nested deeper than ``max_json_depth`` is refused before any schema sees it
  (:func:`load_body` reads the bytes; the routes read no more than ``max_body_bytes``).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry

from cim.limits import limits, value_depth
from cim.processes.process import InvalidInput, Process
from cim.processes.request import ExecuteRequest

#: the members an execute request may have (``subscriber``: callbacks are not offered)
BODY_KEYS = ("inputs", "outputs", "response")
RESPONSES = ("raw", "document")
#: the members of a ``qualifiedInputValue`` besides ``value``
QUALIFIED_KEYS = frozenset({"value", "mediaType", "encoding", "schema"})
#: the members of a ``link`` (an input by reference)
LINK_KEYS = frozenset({"href", "rel", "type", "hreflang", "title"})
#: characters of a value quoted in a message
SHOWN = 60


def load_body(raw: bytes) -> Any:
    """The parsed JSON of an execute request's body; InvalidInput when it is empty, not JSON, or nested
    deeper than ``max_json_depth``."""
    if not raw.strip():
        raise InvalidInput("the request has no body: send an execute request, e.g. {\"inputs\": {...}}")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:  # orjson stops at 1024 levels itself: never a RecursionError
        deepest = limits().max_json_depth
        if "depth limit" in str(exc):
            raise InvalidInput(f"the body is nested more than {deepest} levels deep (arrays and objects; CIM_LIMIT_MAX_JSON_DEPTH)") from None
        raise InvalidInput(f"the body is not JSON: {str(exc)[:200]}") from None
    deepest = limits().max_json_depth
    if value_depth(body, stop_at=deepest) > deepest:
        raise InvalidInput(f"the body is nested more than {deepest} levels deep (arrays and objects; CIM_LIMIT_MAX_JSON_DEPTH)")
    return body


def parse_execute(process: Process, body: Any) -> ExecuteRequest:
    """``body`` (parsed JSON) as a checked execute request for ``process``; InvalidInput otherwise."""
    if not isinstance(body, dict):
        raise InvalidInput(f"the execute request must be a JSON object with 'inputs', not {_kind(body)}")
    unknown = [key for key in body if key not in BODY_KEYS]
    if unknown:
        raise InvalidInput(f"unknown member {_short(unknown[0])} in the execute request (it takes {', '.join(BODY_KEYS)})")
    deepest = limits().max_json_depth
    if value_depth(body, stop_at=deepest) > deepest:
        raise InvalidInput(f"the execute request is nested more than {deepest} levels deep (arrays and objects)")
    inputs = body.get("inputs", {})
    if not isinstance(inputs, dict):
        raise InvalidInput(f"'inputs' must be an object (input id -> value), not {_kind(inputs)}")
    return ExecuteRequest(
        process_id=process.id,
        inputs=check_inputs(process, inputs),
        outputs=_outputs(process, body.get("outputs")),
        response=_response(body.get("response", "raw")),
    )


def check_inputs(process: Process, given: Mapping[str, Any]) -> dict[str, Any]:
    """The inputs of ``process`` from ``given`` (input id -> value), checked, defaults filled in."""
    unknown = [name for name in given if name not in process.inputs]
    if unknown:
        known = ", ".join(process.inputs) or "none"
        raise InvalidInput(f"process {process.id!r} has no input {_short(unknown[0])} (inputs: {known})")
    checked: dict[str, Any] = {}
    for name, description in process.inputs.items():
        schema = description.get("schema", {})
        if name not in given:
            if "default" in schema:
                checked[name] = schema["default"]
            elif int(description.get("minOccurs", 1)) >= 1:
                raise InvalidInput(f"input {name!r} of process {process.id!r} is required")
            continue
        checked[name] = _check_input(process.id, name, description, _unqualified(name, given[name]))
    return checked


def _check_input(process_id: str, name: str, description: Mapping[str, Any], value: Any) -> Any:
    schema = description.get("schema", {})
    most = description.get("maxOccurs", 1)
    many = most == "unbounded" or (isinstance(most, int) and most > 1)
    if many and isinstance(value, list) and not _schema_takes_array(schema):
        least = int(description.get("minOccurs", 1))
        if len(value) < least or (isinstance(most, int) and len(value) > most):
            raise InvalidInput(f"input {name!r} takes {least} to {most} values, not {len(value)}")
        values = [_unqualified(name, item) for item in value]
        for index, item in enumerate(values):
            _validate(process_id, f"{name}[{index}]", schema, item)
        return values
    _validate(process_id, name, schema, value)
    return value


def _unqualified(name: str, value: Any) -> Any:
    """The value of a ``qualifiedInputValue``; InvalidInput for an input by reference."""
    if isinstance(value, dict):
        keys = set(value)
        if "href" in keys and keys <= LINK_KEYS:
            raise InvalidInput(f"input {name!r} is given by reference (href): inputs by reference are not supported; give the value")
        if "value" in keys and keys <= QUALIFIED_KEYS:
            return value["value"]
    return value


def _schema_takes_array(schema: Mapping[str, Any]) -> bool:
    kind = schema.get("type")
    return kind == "array" or (isinstance(kind, list) and "array" in kind)


def _validate(process_id: str, name: str, schema: Mapping[str, Any], value: Any) -> None:
    error = best_match(_validator(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)).iter_errors(value))
    if error is None:
        return
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    rule = str(error.validator)
    if error.validator in ("type", "enum", "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                           "minLength", "maxLength", "minItems", "maxItems", "pattern", "required"):  # fmt: skip
        rule += f": {_short(error.validator_value)}"
    raise InvalidInput(f"input '{name}{where}' of process {process_id!r} fails the schema ({rule}): {_short_text(error.message)}")


@lru_cache(maxsize=256)
def _validator(schema_json: bytes) -> Draft202012Validator:
    """A Draft 2020-12 validator of the schema (JSON bytes, so it can be cached); an empty registry:
    a ``$ref`` outside the schema is unresolvable, never fetched."""
    schema = orjson.loads(schema_json)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=Registry())


def _outputs(process: Process, outputs: Any) -> dict[str, dict[str, Any]]:
    if outputs is None:
        return {}
    if not isinstance(outputs, dict):
        raise InvalidInput(f"'outputs' must be an object (output id -> {{\"transmissionMode\": \"value\"}}), not {_kind(outputs)}")
    checked: dict[str, dict[str, Any]] = {}
    for name, wanted in outputs.items():
        if name not in process.outputs:
            raise InvalidInput(f"process {process.id!r} has no output {_short(name)} (outputs: {', '.join(process.outputs)})")
        if wanted is None:
            wanted = {}
        if not isinstance(wanted, dict):
            raise InvalidInput(f"output {name!r} must be an object such as {{\"transmissionMode\": \"value\"}}, not {_kind(wanted)}")
        mode = wanted.get("transmissionMode", "value")
        if mode != "value":
            raise InvalidInput(f"output {name!r}: transmissionMode {_short(mode)} is not supported (outputs are sent by value)")
        checked[name] = dict(wanted)
    return checked


def _response(value: Any) -> Any:
    if value not in RESPONSES:
        raise InvalidInput(f"'response' must be raw or document, not {_short(value)}")
    return value


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _short(value: Any) -> str:
    text = orjson.dumps(value, default=str).decode() if not isinstance(value, str) else repr(value)
    return text if len(text) <= SHOWN else text[: SHOWN - 3] + "..."


def _short_text(text: str) -> str:
    return text if len(text) <= SHOWN else text[: SHOWN - 3] + "..."
