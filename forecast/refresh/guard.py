"""What keeps the refresh safe: the lock, the bounded retries against the tracking server, and
the testing hook that pauses the job at a named step."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import requests
from filelock import FileLock, Timeout
from mlflow.exceptions import MlflowException
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from forecast.refresh.config import TrackingSection
from forecast.refresh.errors import log
from forecast.tracking import TrackingError, check_reachable
from forecast.errors import ExitCode, NoSuchModel, NotMlflowServer, RefreshError, ServerTimeout

PAUSE_ENV = "FORECAST_REFRESH_PAUSE_AT"
PAUSE_SECONDS_ENV = "FORECAST_REFRESH_PAUSE_SECONDS"
STEPS = ("locked", "panel-built", "model-loaded", "files-written", "report-written", "tracked",
         "ledger-transaction", "committed")


def checkpoint(step: str) -> None:
    """The testing hook of the module docstring."""
    wanted = {s.strip() for s in os.environ.get(PAUSE_ENV, "").split(",") if s.strip()}
    if step in wanted:
        log.warning("paused at %s (%s is set: a testing hook)", step, PAUSE_ENV)
        for handler in logging.getLogger().handlers + log.handlers:
            handler.flush()
        time.sleep(float(os.environ.get(PAUSE_SECONDS_ENV, "600")))


@contextlib.contextmanager
def hold_lock(path: Path) -> Iterator[None]:
    """Hold the refresh lock at ``path``, or raise :attr:`ExitCode.LOCKED` at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # No soft-lock fallback: a lock file left by a killed process must never block the next run.
    lock = FileLock(str(path), timeout=0, fallback_to_soft=False)
    try:
        lock.acquire()
    except Timeout:
        raise RefreshError(ExitCode.LOCKED, f"another refresh is running (lock {path} held); "
                                            f"this run did nothing") from None
    try:
        yield
    finally:
        lock.release()


def is_transient(exc: BaseException) -> bool:
    """Errors worth retrying: an unreachable server or a server-side failure; not a missing
    model, a server that is not MLflow, or one that took a request and never answered (each
    attempt would wait out the whole request deadline again)."""
    if isinstance(exc, NoSuchModel | NotMlflowServer | ServerTimeout):
        return False
    if isinstance(exc, TrackingError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, MlflowException):
        return exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS",
                                      "PERMISSION_DENIED", "UNAUTHENTICATED", "BAD_REQUEST", "INVALID_STATE",
                                      "FEATURE_DISABLED")
    return isinstance(exc, requests.exceptions.RequestException)


def with_retries(what: str, fn: Callable[[], Any], tracking: TrackingSection, uri: str) -> Any:
    """Call ``fn``; on a transient tracking error of a tracking *server* wait ``retry_wait``
    (doubling) and try again (a local store has no server to come back).

    Back-off and stopping are tenacity's; what counts as transient is :func:`is_transient`.
    Any tracking failure but a missing model ends as :attr:`ExitCode.TRACKING`, saying which
    it is; a missing model (:class:`NoSuchModel`) goes to the caller, which may fall back.
    """
    remote = uri.startswith(("http://", "https://"))
    attempts = tracking.retries + 1 if remote else 1

    def call() -> Any:
        check_reachable(uri, timeout=tracking.timeout)
        return fn()

    def announce(state) -> None:
        exc = state.outcome.exception()
        log.warning("%s: tracking server error (%s); retry %d of %d in %.1f s", what,
                    str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__,
                    state.attempt_number, attempts - 1, state.next_action.sleep)

    retrying = Retrying(stop=stop_after_attempt(attempts), wait=wait_exponential(multiplier=tracking.retry_wait),
                        retry=retry_if_exception(is_transient), before_sleep=announce, reraise=True)
    try:
        return retrying(call)
    except NoSuchModel:
        raise
    except TrackingError as exc:
        if not is_transient(exc) or not remote:
            raise RefreshError(ExitCode.TRACKING, f"{what}: {exc}; nothing was issued (the ledger is unchanged)") from None
        raise RefreshError(
            ExitCode.TRACKING,
            f"{what}: the MLflow tracking server {uri} failed {attempts} time(s) ({exc}); nothing was issued (the "
            f"ledger is unchanged). Check the server, or set [tracking] uri / MLFLOW_TRACKING_URI, and run "
            f"again") from None
    except Exception as exc:  # noqa: BLE001 - classified right below
        if not is_transient(exc):
            raise
        raise RefreshError(
            ExitCode.TRACKING,
            f"{what}: the MLflow tracking server {uri} failed {attempts} time(s) "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}); nothing was issued "
            f"(the ledger is unchanged). Check the server, or set [tracking] uri / MLFLOW_TRACKING_URI, "
            f"and run again") from None
