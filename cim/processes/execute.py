"""Running a checked execute request: the process's outputs, only those asked for. The same function
runs a synchronous execution (in the server) and a job (in the runner's child process)."""

from __future__ import annotations

from typing import Any

from cim.processes.process import InvalidInput, Process, Progress, no_progress
from cim.processes.request import ExecuteRequest


def run(store: Any, process: Process, request: ExecuteRequest, progress: Progress = no_progress) -> dict[str, Any]:
    """Outputs (JSON values by output id) of ``process`` run on ``store`` with ``request``'s inputs,
    restricted to ``request.outputs`` when it names any."""
    outputs = process.run(store, request.inputs, progress)
    if not request.outputs:
        return outputs
    unknown = [name for name in request.outputs if name not in process.outputs]
    if unknown:
        raise InvalidInput(f"process {process.id!r} has no output {unknown[0]!r} (outputs: {', '.join(process.outputs)})")
    return {name: value for name, value in outputs.items() if name in request.outputs}
