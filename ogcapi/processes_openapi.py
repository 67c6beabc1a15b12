"""The processes' and jobs' paths in the OpenAPI document (OGC API – Processes – Part 1; oas30).

Added to pygeoapi's document by ogcapi/document_additions.py, self-contained: the schemas are inline
(only ``#/components/...`` references, never an external one). The execution path has an example
execute request per process (its ``example`` inputs)."""

from __future__ import annotations

from typing import Any

from cim.processes import processes

TAG = "processes"
_EXCEPTION = {"$ref": "#/components/schemas/exception"}
_LINK = {"type": "object", "required": ["href"],
         "properties": {"href": {"type": "string"}, "rel": {"type": "string"}, "type": {"type": "string"},
                        "title": {"type": "string"}}}  # fmt: skip
_LINKS = {"type": "array", "items": _LINK}
_SUMMARY = {
    "type": "object",
    "required": ["id", "version"],
    "properties": {
        "id": {"type": "string"}, "title": {"type": "string"}, "description": {"type": "string"},
        "version": {"type": "string"}, "keywords": {"type": "array", "items": {"type": "string"}},
        "jobControlOptions": {"type": "array", "items": {"type": "string", "enum": ["sync-execute", "async-execute", "dismiss"]}},
        "outputTransmission": {"type": "array", "items": {"type": "string", "enum": ["value", "reference"]}},
        "links": _LINKS,
    },
}  # fmt: skip
_DESCRIPTION = {
    "allOf": [
        _SUMMARY,
        {"type": "object", "properties": {
            "inputs": {"type": "object", "additionalProperties": {"type": "object", "properties": {
                "title": {"type": "string"}, "description": {"type": "string"}, "schema": {"type": "object"},
                "minOccurs": {"type": "integer"}, "maxOccurs": {"oneOf": [{"type": "integer"}, {"type": "string", "enum": ["unbounded"]}]}}}},
            "outputs": {"type": "object", "additionalProperties": {"type": "object", "properties": {
                "title": {"type": "string"}, "description": {"type": "string"}, "schema": {"type": "object"}}}},
        }},
    ]
}  # fmt: skip
_EXECUTE = {
    "type": "object",
    "properties": {
        "inputs": {"type": "object", "additionalProperties": True,
                   "description": "input id -> value (or {\"value\": ...}); checked against the process's schema"},
        "outputs": {"type": "object", "additionalProperties": {"type": "object", "properties": {
            "transmissionMode": {"type": "string", "enum": ["value"]}, "format": {"type": "object"}}}},
        "response": {"type": "string", "enum": ["raw", "document"], "default": "raw"},
    },
    "additionalProperties": False,
}  # fmt: skip
_STATUS_INFO = {
    "type": "object",
    "required": ["jobID", "status", "type"],
    "properties": {
        "type": {"type": "string", "enum": ["process"]}, "processID": {"type": "string"}, "jobID": {"type": "string"},
        "status": {"type": "string", "enum": ["accepted", "running", "successful", "failed", "dismissed"]},
        "message": {"type": "string"}, "created": {"type": "string", "format": "date-time"},
        "started": {"type": "string", "format": "date-time"}, "finished": {"type": "string", "format": "date-time"},
        "updated": {"type": "string", "format": "date-time"}, "progress": {"type": "integer", "minimum": 0, "maximum": 100},
        "links": _LINKS,
    },
}  # fmt: skip
_RESULTS = {"type": "object", "additionalProperties": True, "description": "output id -> value"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": _json(_EXCEPTION)}


def _param(name: str, where: str, description: str, schema: dict[str, Any] | None = None, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "description": description, "required": required or where == "path",
            "schema": schema or {"type": "string"}}  # fmt: skip


_F = _param("f", "query", "json (default) or html", {"type": "string", "enum": ["json", "html"]})
_PROCESS_ID = _param("processId", "path", "a process id (GET /processes)")
_JOB_ID = _param("jobId", "path", "a job id (GET /jobs)")
_HTML = {"text/html": {"schema": {"type": "string"}}}


def processes_paths() -> dict[str, Any]:
    examples = {pid: {"summary": p.title, "value": {"inputs": dict(p.example)}} for pid, p in processes().items()}
    return {
        "/processes": {"get": {
            "tags": [TAG], "summary": "The processes", "operationId": "getProcesses", "parameters": [_F],
            "responses": {"200": {"description": "processList", "content": {
                **_json({"type": "object", "required": ["processes", "links"],
                         "properties": {"processes": {"type": "array", "items": _SUMMARY}, "links": _LINKS}}), **_HTML}},
                "400": _error("an unknown f")},
        }},
        "/processes/{processId}": {"get": {
            "tags": [TAG], "summary": "A process's description (inputs and outputs as JSON Schema)",
            "operationId": "getProcessDescription", "parameters": [_PROCESS_ID, _F],
            "responses": {"200": {"description": "process (ogc-process-description)", "content": {**_json(_DESCRIPTION), **_HTML}},
                          "404": _error("no-such-process")},
        }},
        "/processes/{processId}/execution": {"post": {
            "tags": [TAG], "summary": "Execute a process",
            "description": ("Synchronous: 200 with the results (response raw: the one output's value; document: "
                            "{outputId: value}). With `Prefer: respond-async` (or for a process without sync-execute): "
                            "201, a job (Location /jobs/{jobId}). Heavy processes need a bearer token with a role "
                            "(docs/security.md)."),
            "operationId": "execute", "security": [{}, {"bearerAuth": []}],
            "parameters": [_PROCESS_ID, _param("Prefer", "header", "respond-async: execute as a job")],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _EXECUTE, "examples": examples}}},
            "responses": {
                "200": {"description": "the results", "content": {"application/json": {"schema": _RESULTS},
                                                                  "application/geo+json": {"schema": {"type": "object"}}}},
                "201": {"description": "the job (statusInfo)", "content": _json(_STATUS_INFO),
                        "headers": {"Location": {"schema": {"type": "string"}, "description": "the job's URL"},
                                    "Preference-Applied": {"schema": {"type": "string"}}}},
                "400": _error("an input is missing, unknown or fails its schema (the message names it)"),
                "401": _error("the process needs a bearer token"), "403": _error("the token lacks the process's role"),
                "404": _error("no-such-process"), "413": _error("the request is larger than the limit"),
                "415": _error("not sent as application/json"), "503": _error("past the request's time budget"),
            },
        }},
        "/jobs": {"get": {
            "tags": [TAG], "summary": "The jobs (job-list)", "operationId": "getJobs",
            "parameters": [
                _param("processID", "query", "only jobs of these processes (comma separated)"),
                _param("status", "query", "only jobs in these statuses (comma separated)"),
                _param("datetime", "query", "created at this instant or within this interval"),
                _param("minDuration", "query", "at least this many seconds", {"type": "number", "minimum": 0}),
                _param("maxDuration", "query", "at most this many seconds", {"type": "number", "minimum": 0}),
                _param("type", "query", "process", {"type": "string", "enum": ["process"]}),
                _param("limit", "query", "jobs per page", {"type": "integer", "minimum": 1, "maximum": 10000, "default": 10}),
                _F,
            ],
            "responses": {"200": {"description": "jobList", "content": {
                **_json({"type": "object", "required": ["jobs", "links"],
                         "properties": {"jobs": {"type": "array", "items": _STATUS_INFO}, "links": _LINKS}}), **_HTML}},
                "400": _error("a bad filter")},
        }},
        "/jobs/{jobId}": {
            "get": {"tags": [TAG], "summary": "A job's status", "operationId": "getStatus", "parameters": [_JOB_ID, _F],
                    "responses": {"200": {"description": "statusInfo", "content": {**_json(_STATUS_INFO), **_HTML}},
                                  "404": _error("no-such-job")}},
            "delete": {"tags": [TAG], "summary": "Dismiss a job (stops it if running; deletes a finished one)",
                       "operationId": "dismiss", "parameters": [_JOB_ID],
                       "responses": {"200": {"description": "statusInfo (dismissed)", "content": _json(_STATUS_INFO)},
                                     "404": _error("no-such-job")}},
        },
        "/jobs/{jobId}/results": {"get": {
            "tags": [TAG], "summary": "A successful job's results", "operationId": "getResult", "parameters": [_JOB_ID],
            "responses": {"200": {"description": "the results", "content": _json(_RESULTS)},
                          "404": _error("no-such-job, or result-not-ready"), "500": _error("the job failed")},
        }},
    }  # fmt: skip


def add_processes_paths(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with the processes' and jobs' paths (and the bearer scheme they use)."""
    if not isinstance(doc.get("paths"), dict):
        return doc
    doc["paths"].update(processes_paths())
    components = doc.setdefault("components", {})
    components.setdefault("securitySchemes", {}).setdefault("bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    tags = doc.setdefault("tags", [])
    if not any(t.get("name") == TAG for t in tags):
        tags.append({"name": TAG, "description": "OGC API - Processes: CIM+ analyses (docs/processes.md) and their jobs"})
    return doc
