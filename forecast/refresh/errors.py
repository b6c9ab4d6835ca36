"""Exit codes of the refresh job, its error, and its log (timestamped lines on stderr)."""

from __future__ import annotations

import logging
import sys
import time
from enum import IntEnum

__all__ = ["ExitCode", "RefreshError", "configure_logging", "log"]

log = logging.getLogger("forecast.refresh")


class ExitCode(IntEnum):
    """Exit status of ``forecast refresh`` (documented in the README)."""

    OK = 0              #: refreshed, or nothing new to do
    ERROR = 1           #: configuration mistake or unexpected error
    USAGE = 2           #: bad command line (click)
    BAD_DATA = 3        #: input data failed validation, download or checksum
    NO_CHAMPION = 4     #: no champion in the registry and no fallback model configured
    LOCKED = 5          #: another refresh is running (its lock is held)
    TRACKING = 6        #: MLflow store failed: unreachable after the retries, silent, not MLflow, unreadable
    LEDGER = 7          #: the ledger cannot be opened or written


class RefreshError(Exception):
    """A refresh that stopped; ``code`` is the exit code, the message says what to do."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code


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
