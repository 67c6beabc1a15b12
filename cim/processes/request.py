"""An execute request (``POST /processes/{id}/execution`` body, Processes Part 1 ``execute.yaml``)
once checked: inputs valid against the process's schemas, the outputs asked for, raw or document.

:func:`cim.processes.execute.parse_execute` makes one from a JSON body (400s naming the input);
jobs store it (:meth:`ExecuteRequest.to_json`) so the runner can run it in another process."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Response = Literal["raw", "document"]


@dataclass(frozen=True)
class ExecuteRequest:
    process_id: str
    #: input id -> JSON value, valid against the input's schema (defaults filled in)
    inputs: Mapping[str, Any]
    #: output id -> {"format": {...}, "transmissionMode": "value"}; empty: every output
    outputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: Processes 1.0: ``raw`` (default) answers the one output's value itself; ``document`` a
    #: results object {output id: value}
    response: Response = "raw"

    def to_json(self) -> dict[str, Any]:
        return {"process_id": self.process_id, "inputs": dict(self.inputs), "outputs": dict(self.outputs), "response": self.response}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ExecuteRequest:
        return cls(data["process_id"], dict(data["inputs"]), dict(data.get("outputs") or {}), data.get("response", "raw"))
