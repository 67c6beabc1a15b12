"""Where a build stages its raster layers' COGs until the store installs them: a temporary directory
named with the build's process id, ``cim-raster-<pid>-<random>``.

A build removes its staging directory when it ends, whatever the outcome; a build that was killed
(SIGKILL, the OOM killer, a power cut) cannot, and a city's COGs are gigabytes. So every build first
removes the staging directories of builds that no longer run (:func:`remove_stale`).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

PREFIX = "cim-raster-"
_NAME = re.compile(rf"^{PREFIX}(\d+)-")


def make() -> Path:
    """A new staging directory of this process."""
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's process (or not a pid we can ask about): leave its directory
    return True


def remove_stale() -> list[Path]:
    """Remove the staging directories of builds that no longer run; the ones removed."""
    removed = []
    for path in Path(tempfile.gettempdir()).glob(f"{PREFIX}*-*"):
        match = _NAME.match(path.name)
        if match and path.is_dir() and not _running(int(match.group(1))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed
