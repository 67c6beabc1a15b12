"""A process (OGC API – Processes Part 1): one analysis of the base map with a JSON-Schema
description of its inputs and outputs.

Every process is one core function in :mod:`cim.analysis` (usable as ``city.<name>(...)``) plus a
:class:`Process` that describes it and adapts JSON inputs to that function. The web layer (ogcapi/)
lists, describes and executes them; the job runner (:mod:`cim.processes.runner`) executes them
asynchronously. Nothing here knows HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from cim.errors import BadInput, NotFound

#: process ids clients rely on (issue 13): also the order of ``GET /processes``
PROCESS_IDS: tuple[str, ...] = (
    "building-at-point",
    "buildings-in-area",
    "building-history",
    "parcel-at-point",
    "zoning-compliance",
    "landuse-by-district",
    "release-diff",
    "district-statistics",
    "measure",
)

#: the CIM+ application a process serves (its ``keywords`` start with it)
DOMAINS = ("housing", "planning", "city-management")


class Progress(Protocol):
    """What a running process reports: ``progress(percent, message)``; percent in 0..100."""

    def __call__(self, percent: int, message: str = "") -> None: ...


def no_progress(percent: int, message: str = "") -> None:
    """The progress callback of a synchronous run: nothing listens."""


class InvalidInput(BadInput):
    """An execute request's input is missing, unknown, or fails the process's schema (400,
    ``InvalidParameterValue``); the message names the input and what is wrong."""


class NoSuchProcess(NotFound):
    """Unknown process id (404, ``http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/no-such-process``)."""

    code = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/no-such-process"


#: run(store, inputs, progress) -> outputs; inputs are the validated JSON values by input id, outputs the
#: JSON values (GeoJSON FeatureCollections, summary objects, numbers) by output id
Run = Callable[[Any, Mapping[str, Any], Progress], dict[str, Any]]


@dataclass(frozen=True)
class Process:
    """One process: its description (OGC process-description, JSON Schema for each input and output)
    and how to run it on a store."""

    id: str
    title: str
    description: str
    #: input id -> {"title", "description", "schema": {...JSON Schema...}, "minOccurs", "maxOccurs"}
    #: (OGC ``inputDescription``; ``minOccurs`` 0 = optional). Schemas are inline: no external $ref.
    inputs: Mapping[str, Mapping[str, Any]]
    #: output id -> {"title", "description", "schema": {...}}
    outputs: Mapping[str, Mapping[str, Any]]
    run: Run
    #: "housing", "planning" or "city-management" (DOMAINS)
    domain: str
    keywords: tuple[str, ...] = ()
    version: str = "1.0.0"
    #: role a bearer token needs to execute it (None: open to anyone); heavy city-wide processes
    #: name "analyst" here, the server maps it to $CIM_JWT_ANALYST_ROLE; $CIM_PROCESS_ROLES overrides
    role: str | None = None
    #: whether a synchronous execution is allowed; False: only ``Prefer: respond-async`` (jobs)
    sync: bool = True
    #: one example execute request body's "inputs" (for docs, OpenAPI examples and tests)
    example: Mapping[str, Any] = field(default_factory=dict)

    def job_control_options(self) -> list[str]:
        return ["sync-execute", "async-execute", "dismiss"] if self.sync else ["async-execute", "dismiss"]

    def summary(self) -> dict[str, Any]:
        """The ``processSummary`` of ``GET /processes`` (without links: the web layer adds them)."""
        return {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "version": self.version,
            "keywords": [self.domain, *self.keywords],
            "jobControlOptions": self.job_control_options(),
            "outputTransmission": ["value"],
        }

    def description_document(self) -> dict[str, Any]:
        """The ``process`` description of ``GET /processes/{id}`` (ogc-process-description), without links."""
        return {**self.summary(), "inputs": dict(self.inputs), "outputs": dict(self.outputs)}
