"""How many processes a model may use for its per-unit fits.

Per-unit models (``ets``) fit every unit on its own, so on many units they can spread the
units over processes without changing a number. How many:

* inside :func:`per_unit_jobs` (a backtest sets 1 in each of its worker processes, so that
  two backtest workers do not each start two more on a 2-core machine), that number;
* else the environment variable ``FORECAST_JOBS`` (a whole number >= 1), when set;
* else the cores this process may run on.

A serial backtest (``--jobs 1``) and ``forecast predict`` therefore use every core for
the per-unit fits, and a parallel backtest uses its workers instead.

A ``FORECAST_JOBS`` that is not a whole number >= 1 (``abc``, ``0``) is refused with a message
whenever a model is made (:func:`check_jobs_env`, called by :func:`forecast.catalog.make_model`),
whether or not that model would spread its fits: a setting that is silently ignored on one
panel and fatal on a larger one is worse than one refused at once.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator

from forecast.errors import ModelError

#: Environment variable setting the processes of per-unit fits (default: the cores).
JOBS_ENV = "FORECAST_JOBS"

_PER_UNIT_JOBS: contextvars.ContextVar[int | None] = contextvars.ContextVar("per_unit_jobs", default=None)


def cores() -> int:
    """Cores this process may run on (its CPU affinity where the system has one)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return max(os.cpu_count() or 1, 1)


def check_jobs_env() -> int | None:
    """The processes ``FORECAST_JOBS`` asks for (None when unset or empty).

    Raises
    ------
    ModelError
        When it is set to anything but a whole number >= 1.
    """
    text = os.environ.get(JOBS_ENV, "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ModelError(f"{JOBS_ENV}={text[:40]!r} must be a whole number >= 1 (processes for per-unit fits); "
                         f"set it to e.g. 2, or unset it to use the cores ({cores()})")
    return value


def unit_jobs() -> int:
    """Processes a per-unit fit may use now (see the module docstring)."""
    forced = _PER_UNIT_JOBS.get()
    if forced is not None:
        return forced
    from_env = check_jobs_env()
    return cores() if from_env is None else from_env


@contextlib.contextmanager
def per_unit_jobs(n_jobs: int | None) -> Iterator[None]:
    """Per-unit fits inside the block use ``n_jobs`` processes (None: the default rules)."""
    token = _PER_UNIT_JOBS.set(None if n_jobs is None else max(int(n_jobs), 1))
    try:
        yield
    finally:
        _PER_UNIT_JOBS.reset(token)
