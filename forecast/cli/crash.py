"""The command line's last resort: a bug's traceback goes to a log file, never to the console.

Standard library only, so that ``forecast --help`` stays light.
"""

from __future__ import annotations

import datetime
import os
import tempfile
import traceback
from pathlib import Path

__all__ = ["crash_log"]


def crash_log() -> Path:
    """Write the current exception's traceback to a new file in the temporary folder; returns its path."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = Path(tempfile.gettempdir()) / f"forecast-error-{stamp}-{os.getpid()}.log"
    try:
        path.write_text(traceback.format_exc(), encoding="utf-8")
    except OSError:
        return Path("(the log could not be written either)")
    return path
