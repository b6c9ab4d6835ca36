"""The single models: one module per family, each class registered by name with ``@register``.

``base`` holds the interface (:class:`Forecaster`), the registry dict and the quantile helpers;
``baselines``, ``smoothing``, ``ets``, ``sarimax``, ``counts``, ``intermittent``, ``conditional`` and ``ml``
hold the families. Importing this package registers all of them. The ensemble, which is built
on the backtest, lives above the evaluation layer; :mod:`forecast.catalog` is the full registry.
"""

from __future__ import annotations

from forecast.models import (  # noqa: F401  (registration)
    baselines,
    conditional,
    counts,
    ets,
    global_model,
    intermittent,
    levels,
    ml,
    sarimax,
    smoothing,
)
