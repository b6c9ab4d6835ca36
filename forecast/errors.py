"""Every error type of :mod:`forecast`, in one light module, and the helpers that word them.

Each is raised by the room that owns it: a model by :mod:`forecast.models`, the tracking
server by :mod:`forecast.tracking`, the ledger by :mod:`forecast.ledger`, the report by
:mod:`forecast.report`, the refresh by :mod:`forecast.refresh` (with its exit codes), a job
stopped part-way by :mod:`forecast.jobs`. Bad data and configuration are
:class:`features.errors.DataError` (configuration, scoring, report and forecast-frame errors
subclass it; the data layer's own live in :mod:`features.errors`). They live here so that the
command line can name them without importing what raises them.
"""

from __future__ import annotations

import errno
from enum import IntEnum

from features.errors import DataError

__all__ = [
    "USER_ERRORS",
    "BackendError",
    "ConfigError",
    "DataError",
    "ExitCode",
    "ForecastError",
    "JobError",
    "LedgerError",
    "ModelError",
    "NoSuchModel",
    "NotFittedError",
    "NotMlflowServer",
    "RefreshError",
    "ReportError",
    "ScoringError",
    "ServerTimeout",
    "TrackingError",
    "describe_os_error",
    "first_line",
]


class ModelError(ValueError):
    """Unknown model, unknown or invalid hyperparameter, or a history a model cannot use."""


class TrackingError(RuntimeError):
    """The tracking server cannot be used, or what is logged breaks the tracking conventions."""


class LedgerError(RuntimeError):
    """The ledger cannot be opened or written (bad URL, unreachable server, refused change)."""


class JobError(RuntimeError):
    """A job that stopped part-way; the message says what was done and what was not."""


class ScoringError(DataError):
    """An input that cannot be scored as given (missing columns, unknown models, bad levels)."""


class BackendError(ModelError):
    """A parallel backend cannot be used (unknown, not installed, scheduler unreachable)."""


class ConfigError(DataError):
    """An experiment file that cannot be run as written; the message names file, section and key."""


class ReportError(DataError):
    """Inputs a report cannot be made from (the message says which input and what is wrong)."""


class ForecastError(DataError):
    """A forecast frame that breaks the contract (a model bug, or a corrupted file)."""


class NotFittedError(ValueError, AttributeError):
    """``predict`` or ``update`` called before ``fit``."""


class NoSuchModel(TrackingError):
    """The registry has no such model, version or alias (e.g. no ``champion`` yet)."""


class NotMlflowServer(TrackingError):
    """The tracking URI answers HTTP, but not as an MLflow tracking server (a web page, a proxy)."""


class ServerTimeout(TrackingError):
    """The tracking server took a request and gave no answer within the request deadline."""


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


#: What the CLI turns into a message and exit code 1: bad data or configuration, a model that
#: cannot be made or fitted, an unusable tracking server or ledger, a job stopped part-way.
USER_ERRORS: tuple[type[Exception], ...] = (DataError, ModelError, TrackingError, LedgerError, JobError)


#: What an operating-system error means for the user, by errno.
_OS_REASONS = {
    errno.ENOTDIR: "a part of this path is a file, not a folder: choose another output location",
    errno.EEXIST: "a file is there where a folder is needed: choose another output location",
    errno.EACCES: "permission denied: this user cannot write there (choose another location or fix its permissions)",
    errno.EPERM: "operation not permitted: this user cannot write there",
    errno.EROFS: "the file system is read-only: choose another output location",
    errno.ENOSPC: "no space left on the device: free some space and run again (nothing was half-written)",
    errno.EDQUOT: "the disk quota is exceeded: free some space and run again (nothing was half-written)",
    errno.EISDIR: "is a folder where a file is needed",
    errno.ENOENT: "no such file or folder",
}


def describe_os_error(exc: OSError) -> str:
    """An operating-system error as one line naming the path and what to do (read-only folder, full disk, ...)."""
    paths = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p)
    text = str(exc).strip()
    reason = _OS_REASONS.get(exc.errno) or exc.strerror or (text.splitlines()[0][:300] if text else type(exc).__name__)
    return f"{paths}: {reason}" if paths else f"{reason} ({type(exc).__name__})"


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none), at most 300 characters."""
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
