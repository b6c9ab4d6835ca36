"""Time bounds every command keeps to against a server that is slow, sick or gone.

MLflow's own HTTP client retries a failing request for minutes by default (a request waits 120 s
for an answer and is tried 8 times). These settings bound each request: it waits at most
``MLFLOW_HTTP_REQUEST_TIMEOUT`` seconds for an answer and is tried once more, so a tracking
server that takes requests and never answers stops a command after about 30 s, with one
message. The command line sets them for every command unless the environment already does,
and the experiment and refresh jobs set them around their run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

__all__ = ["MLFLOW_HTTP_DEFAULTS", "bound_mlflow_http", "mlflow_http_bounded"]

#: MLflow's per-request HTTP retries and timeout (seconds), where the environment leaves them unset.
MLFLOW_HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                        "MLFLOW_HTTP_REQUEST_TIMEOUT": "15"}


def bound_mlflow_http() -> dict[str, str]:
    """Set the :data:`MLFLOW_HTTP_DEFAULTS` the environment does not set; returns those it set."""
    added = {k: v for k, v in MLFLOW_HTTP_DEFAULTS.items() if k not in os.environ}
    os.environ.update(added)
    return added


@contextlib.contextmanager
def mlflow_http_bounded() -> Iterator[None]:
    """:func:`bound_mlflow_http` for the duration: what it set is removed again afterwards.

    A job that tracks in MLflow (an experiment, the refresh) runs inside it, so that a tracking
    server that dies mid-run stops the job in seconds, not minutes, whoever called it.
    """
    added = bound_mlflow_http()
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)
