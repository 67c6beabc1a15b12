"""Processes for the job and API tests, plugged in as ``CIM_PROCESS_MODULES=support.sample_processes``
(the runner's child process imports them too: the tests put ``tests/`` on its ``PYTHONPATH``).

- ``sample-echo``: sync; returns its inputs and the number of layers of the current release.
- ``sample-countdown``: runs ``seconds`` seconds in 0.1 s steps reporting progress (to see a job
  ``running``, dismiss it, kill its server); role ``analyst``.
- ``sample-fail``: raises a ``BadInput`` with ``message`` (a job that fails with a reason).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from cim.errors import BadInput
from cim.processes.process import Process, Progress
from cim.processes.schemas import input_description, output_description


def _echo(store: Any, inputs: Mapping[str, Any], progress: Progress) -> dict[str, Any]:
    return {"echo": dict(inputs), "layers": len(store.layer_names())}


def _countdown(store: Any, inputs: Mapping[str, Any], progress: Progress) -> dict[str, Any]:
    seconds = float(inputs["seconds"])
    steps = max(1, int(seconds * 10))
    for step in range(steps):
        progress(int(100 * step / steps), f"step {step + 1} of {steps}")
        time.sleep(seconds / steps)
    return {"steps": steps}


def _fail(store: Any, inputs: Mapping[str, Any], progress: Progress) -> dict[str, Any]:
    raise BadInput(str(inputs.get("message", "sample failure")))


PROCESSES = (
    Process(
        id="sample-echo",
        title="Echo (test)",
        description="Returns its inputs and the number of layers in the current release.",
        inputs={
            "text": input_description("Text", "Any text", {"type": "string", "maxLength": 100}),
            "count": input_description("Count", "A small integer", {"type": "integer", "minimum": 0, "maximum": 10, "default": 1}, optional=True),
        },
        outputs={
            "echo": output_description("Echo", "The inputs as received", {"type": "object"}),
            "layers": output_description("Layers", "Number of layers", {"type": "integer"}),
        },
        run=_echo,
        domain="city-management",
        example={"text": "hello"},
    ),
    Process(
        id="sample-countdown",
        title="Countdown (test)",
        description="Waits `seconds`, reporting progress every 0.1 s.",
        inputs={"seconds": input_description("Seconds", "How long to run", {"type": "number", "minimum": 0, "maximum": 600})},
        outputs={"steps": output_description("Steps", "Steps taken", {"type": "integer"})},
        run=_countdown,
        domain="city-management",
        role="analyst",
        example={"seconds": 1},
    ),
    Process(
        id="sample-fail",
        title="Fail (test)",
        description="Fails with `message`.",
        inputs={"message": input_description("Message", "Why it fails", {"type": "string"}, optional=True)},
        outputs={"never": output_description("Never", "Not produced", {"type": "null"})},
        run=_fail,
        domain="city-management",
    ),
)
