"""Every model, found by name: the single models and the ensemble built on them.

:data:`MODELS` is the registry of :mod:`forecast.models` with the ensemble's line added here; a
model's module is imported when the model is made, so naming and listing models costs no
import. Adding a model is one class with ``@register`` and one line in :data:`MODELS`;
``tests/test_models.py`` then checks it against the contract. Code that looks models up by
name (experiments, jobs, the CLI) imports from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from forecast import models
from forecast.errors import ModelError
from forecast.models import MODELS
from forecast.models.workers import check_jobs_env

if TYPE_CHECKING:
    from forecast.models.base import Forecaster

MODELS.add("ensemble", "forecast.ensemble",
           "weighted quantile average of members, weights per horizon from their recent backtest CRPS")
MODELS.add("combination", "forecast.ensemble",
           "mixture of the smoothed level, its trend, the benchmarks and the long-run mean, "
           "weights per horizon from the last 36 months' in-history CRPS")

#: The field's standard benchmarks: skill is measured against the best of them.
BENCHMARKS = ("zero", "locf_poisson", "locf_negbin", "seasonal_naive", "moving_average", "hist_bootstrap")

#: The model ``forecast predict --model default`` uses, chosen by the worst window of
#: ``benchmarks/skill.py`` over four real panels (``docs/models.md``): the combination of the
#: smoothed level, its trend, the benchmarks and the long-run mean, whose weights move with
#: every origin (worst window 1.081 of the best benchmark against 1.312 for ``ses_negbin``).
DEFAULT_MODEL = "combination"


def make_model(name: str, **params) -> Forecaster:
    """A new, unfitted model by registry name (see :func:`forecast.models.make_model`).

    Defined here, not re-exported, so that a factory pickled into a worker process
    (``lambda: make_model("ensemble")``) refers to this module, and loading it there adds the
    ensemble's line to the registry.
    """
    check_jobs_env()
    return models.make_model(name, **params)


__all__ = ["BENCHMARKS", "DEFAULT_MODEL", "MODELS", "ModelError", "make_model"]
