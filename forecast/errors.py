"""The errors a user can get wrong or put right, in one light module.

Each is raised by the room that owns it (and importable from there too): a model by
:mod:`forecast.models`, the tracking server by :mod:`forecast.tracking`, the ledger by
:mod:`forecast.ledger`, a job stopped part-way by :mod:`forecast.jobs`. Bad data and
configuration are :class:`features.errors.DataError` (configuration errors subclass it). They
live here so that the command line can name them without importing what raises them.
"""

from __future__ import annotations

from features.errors import DataError

__all__ = ["USER_ERRORS", "DataError", "JobError", "LedgerError", "ModelError", "TrackingError"]


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
