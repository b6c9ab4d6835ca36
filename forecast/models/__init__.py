"""The model registry: every model, statistical or ML, found by name.

Importing this package registers the models of ``baselines``, ``statistical``, ``ml`` and
``ensemble``. Adding a model is one class with ``@register`` in one of those files.
"""

from __future__ import annotations

from forecast.models import baselines, ensemble, ml, statistical  # noqa: F401  (registration)
from forecast.models import conditional  # noqa: F401  (registration; imports statistical)
from forecast.models.base import MODELS, Forecaster, ModelError, NotFittedError, make_model

#: The field's standard benchmarks: skill is measured against the best of them.
BENCHMARKS = ("zero", "locf_poisson", "locf_negbin", "seasonal_naive", "moving_average", "hist_bootstrap")

#: The model ``forecast predict --model default`` uses (chosen from the real-data backtests
#: reported in the README).
DEFAULT_MODEL = "ensemble"

__all__ = ["BENCHMARKS", "DEFAULT_MODEL", "MODELS", "Forecaster", "ModelError", "NotFittedError", "make_model"]
