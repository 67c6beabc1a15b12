"""The Khronos glTF validator (npm ``gltf-validator``) on GLB bytes, run with node.

scripts/test installs it with ``ensure_gltf_validator`` (scripts/lib.sh) into the git-ignored
``.cache/gltf-validator/`` when the browser tier is wanted; nothing is fetched here. Tests that use
it carry the ``browser`` marker (node and npm packages, as the MapLibre tests).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
VALIDATOR_DIR = ROOT / ".cache" / "gltf-validator"
INSTALL_HINT = (
    "the Khronos glTF validator is not installed: ./scripts/test installs it "
    "(or: bash -c 'source scripts/lib.sh && ensure_gltf_validator')"
)
SKIP_BROWSER = os.environ.get("CIM_TEST_SKIP_BROWSER") == "1"

#: node reads the GLB from stdin and prints the validator's report (every issue: maxIssues 0)
_SCRIPT = """
const validator = require(process.argv[1]);
const chunks = [];
process.stdin.on('data', (c) => chunks.push(c));
process.stdin.on('end', () => {
  const data = new Uint8Array(Buffer.concat(chunks));
  validator.validateBytes(data, {maxIssues: 0, format: 'glb'}).then(
    (report) => process.stdout.write(JSON.stringify(report)),
    (error) => { process.stderr.write(String(error)); process.exit(2); });
});
"""

#: severities in the report's messages
ERROR, WARNING, INFO, HINT = 0, 1, 2, 3


def installed() -> str | None:
    """The installed validator's version, None when it is not installed (or node is missing)."""
    version = VALIDATOR_DIR / "VERSION"
    if shutil.which("node") is None or not (VALIDATOR_DIR / "index.js").is_file() or not version.is_file():
        return None
    return version.read_text().strip()


def validate(glb: bytes) -> dict[str, Any]:
    """The validator's report on ``glb``: ``issues`` has numErrors, numWarnings, numInfos and
    ``messages`` (code, message, severity, pointer)."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node not found")
    done = subprocess.run(
        [node, "-e", _SCRIPT, str(VALIDATOR_DIR / "index.js")],
        input=glb,
        capture_output=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"gltf-validator failed ({done.returncode}): {done.stderr.decode(errors='replace')[-2000:]}")
    return json.loads(done.stdout)
