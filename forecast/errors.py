"""The errors a user can get wrong or put right, in one light module.

Each is raised by the room that owns it (and importable from there too): a model by
:mod:`forecast.models`, the tracking server by :mod:`forecast.tracking`, the ledger by
:mod:`forecast.ledger`, a job stopped part-way by :mod:`forecast.jobs`. Bad data and
configuration are :class:`features.errors.DataError` (configuration errors subclass it). They
live here so that the command line can name them without importing what raises them.
"""

from __future__ import annotations

import errno

from features.errors import DataError

__all__ = ["USER_ERRORS", "DataError", "JobError", "LedgerError", "ModelError", "TrackingError", "describe_os_error"]


class ModelError(ValueError):
    """Unknown model, unknown or invalid hyperparameter, or a history a model cannot use."""


class TrackingError(RuntimeError):
    """The tracking server cannot be used, or what is logged breaks the tracking conventions."""


class LedgerError(RuntimeError):
    """The ledger cannot be opened or written (bad URL, unreachable server, refused change)."""


class JobError(RuntimeError):
    """A job that stopped part-way; the message says what was done and what was not."""


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
