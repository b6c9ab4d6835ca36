"""The refresh job's log: timestamped lines on stderr. Its exit codes and error (:class:`~forecast.errors.ExitCode`,
:class:`~forecast.errors.RefreshError`) are in :mod:`forecast.errors` with every other error type."""

from __future__ import annotations

import logging
import sys
import time
from forecast.errors import ExitCode, RefreshError

__all__ = ["ExitCode", "RefreshError", "configure_logging", "log"]

log = logging.getLogger("forecast.refresh")


class _UTCFormatter(logging.Formatter):
    converter = time.gmtime

    def formatTime(self, record, datefmt=None):  # noqa: N802 - logging's name
        return time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(record.created)) + f".{int(record.msecs):03d}Z"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (it may be swapped, e.g. by click's test runner)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def configure_logging(level: int = logging.INFO) -> None:
    """Timestamped lines (``2026-11-23T23:59:01.123Z INFO refresh: ...``) on stderr."""
    logger = logging.getLogger("forecast.refresh")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(_UTCFormatter("%(asctime)s %(levelname)s refresh: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
