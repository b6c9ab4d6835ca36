"""Every model, found by name: the single models and the ensemble built on them.

Importing this module registers every model. Adding a model is one class with ``@register`` in
one module of :mod:`forecast.models`; ``tests/test_models.py`` then checks it against the
contract. Code that looks models up by name (experiments, jobs, the CLI) imports from here.
"""

from __future__ import annotations

import forecast.ensemble  # noqa: F401  (registration)
import forecast.models  # noqa: F401  (registration)
from forecast.models import base
from forecast.models.base import MODELS, Forecaster, ModelError, NotFittedError

#: The field's standard benchmarks: skill is measured against the best of them.
BENCHMARKS = ("zero", "locf_poisson", "locf_negbin", "seasonal_naive", "moving_average", "hist_bootstrap")

#: The model ``forecast predict --model default`` uses, chosen by the worst window of
#: ``benchmarks/skill.py`` over four real panels (``docs/models.md``): the combination of the
#: smoothed level, its trend, the benchmarks and the long-run mean, whose weights move with
#: every origin (worst window 1.081 of the best benchmark against 1.312 for ``ses_negbin``).
DEFAULT_MODEL = "combination"


def make_model(name: str, **params) -> Forecaster:
    """A new, unfitted model by registry name (see :func:`forecast.models.base.make_model`).

    Defined here, not re-exported, so that a factory pickled into a worker process
    (``lambda: make_model("ensemble")``) refers to this module, and loading it there registers
    every model, the ensemble included.
    """
    return base.make_model(name, **params)


__all__ = ["BENCHMARKS", "DEFAULT_MODEL", "MODELS", "Forecaster", "ModelError", "NotFittedError", "make_model"]
