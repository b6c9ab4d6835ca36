"""The single models, found by name: :data:`MODELS` maps each name to the module that defines
it and a one-line summary, and imports that module only when the model is made.

One module per family holds the classes (``baselines``, ``smoothing``, ``ets``, ``sarimax``,
``counts``, ``intermittent``, ``conditional``, ``ml``); ``base`` holds the interface
(:class:`~forecast.models.base.Forecaster`) and the helpers every model shares. Listing the
models (``forecast models``) imports none of them, and making one imports its own module only:
``ses_negbin`` needs neither statsmodels nor scikit-learn. The ensemble, which is built on the
backtest, lives above the evaluation layer; :mod:`forecast.catalog` adds its line and is the
full registry.

Adding a model is one class with ``@register`` (copy one from ``baselines.py``) and one line in
:data:`MODELS`; ``tests/test_models.py`` checks that the lines and the classes agree, name by
name, and runs the contract on every model.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, NamedTuple

from forecast.errors import ModelError

if TYPE_CHECKING:
    from forecast.models.base import Forecaster

__all__ = ["MODELS", "Registry", "make_model"]


class Entry(NamedTuple):
    """Where a model is defined, and what it is in one line (its class's ``summary``)."""

    module: str
    summary: str


class Registry(Mapping[str, "type[Forecaster]"]):
    """name -> model class, importing a model's module on first look-up.

    Names, membership and summaries (:meth:`summary`) need no import; ``MODELS[name]`` imports
    the module the name's line points to, whose ``@register`` puts the class here.
    """

    def __init__(self, entries: Mapping[str, tuple[str, str]]):
        self._entries = {name: Entry(*entry) for name, entry in entries.items()}
        self._classes: dict[str, type[Forecaster]] = {}

    def add(self, name: str, module: str, summary: str) -> None:
        """One more line: ``name`` is defined in ``module``."""
        if name in self._entries and self._entries[name].module != module:
            raise TypeError(f"model name {name!r} is in the registry twice ({self._entries[name].module}, {module})")
        self._entries[name] = Entry(module, summary)

    def record(self, cls: type[Forecaster]) -> None:
        """What ``@register`` does when a model's module is imported."""
        known = self._classes.get(cls.name)
        if known is not None and known is not cls:
            raise TypeError(f"model name {cls.name!r} is registered twice")
        self._classes[cls.name] = cls

    def summary(self, name: str) -> str:
        """The model's one-line description, without importing it."""
        return self._entries[name].summary

    def module(self, name: str) -> str:
        """The module that defines the model."""
        return self._entries[name].module

    def registered(self) -> dict[str, type[Forecaster]]:
        """The classes registered so far (those whose modules have been imported), by name."""
        return dict(self._classes)

    def __getitem__(self, name: str) -> type[Forecaster]:
        entry = self._entries[name]  # KeyError for an unknown name, as a Mapping does
        if name not in self._classes:
            importlib.import_module(entry.module)
        try:
            return self._classes[name]
        except KeyError:
            raise TypeError(f"{entry.module} registers no model {name!r}: its class needs name = {name!r} "
                            "and @register") from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


#: Every single model: name -> (module, summary). The summary is the class's own ``summary``,
#: repeated here so that listing the models imports none of them (a test keeps them equal).
MODELS = Registry({
    "zero": ("forecast.models.baselines", "No events: mean and every quantile are 0."),
    "locf_poisson": ("forecast.models.baselines",
                     "Last observed count as the mean at every horizon, Poisson distribution."),
    "locf_negbin": ("forecast.models.baselines", "Last observed count as the mean, negative binomial with "
                    "per-unit dispersion from recent changes."),
    "seasonal_naive": ("forecast.models.baselines", "Count in the same month one season earlier, Poisson or "
                       "negative binomial distribution."),
    "moving_average": ("forecast.models.baselines",
                       "Mean of the last months, negative binomial with method-of-moments dispersion."),
    "hist_bootstrap": ("forecast.models.baselines",
                       "Empirical distribution of the last 12 months of each unit (ViEWS benchmark)."),
    "ses_negbin": ("forecast.models.smoothing", "Exponential smoothing of the counts, one constant pooled across "
                   "units; NB per unit and horizon."),
    "croston": ("forecast.models.intermittent",
                "Croston / SBA / TSB smoothing of event size and frequency, negative binomial intervals."),
    "ets": ("forecast.models.ets",
            "Damped-trend exponential smoothing per unit on log1p counts, residual-bootstrap intervals."),
    "sarimax": ("forecast.models.sarimax",
                "SARIMAX per unit on log1p counts with standardised covariates at the target month."),
    "nb_glm": ("forecast.models.counts", "Pooled negative binomial regression per horizon on lagged counts, "
               "neighbours, season and covariates."),
    "hurdle": ("forecast.models.counts", "Pooled hurdle model per horizon: logit for any event, truncated "
               "negative binomial for the count."),
    "nb_glmx": ("forecast.models.conditional", "Pooled negative binomial regression per horizon with covariates "
                "at the target months (distributed lags); responds to scenarios."),
    "hgb": ("forecast.models.ml", "Gradient-boosted trees (Poisson loss) pooled across units, one per horizon; "
            "NB quantiles calibrated on the last 24 months"),
    "random_forest": ("forecast.models.ml", "Random forest pooled across units, one per horizon; "
                      "NB quantiles calibrated on the last 24 months"),
    "long_run_mean": ("forecast.models.levels", "Mean of each unit's last 60 months, negative binomial with its "
                      "maximum-likelihood dispersion."),
    "ses_trend": ("forecast.models.levels", "Exponential smoothing level moved by the damped national trend of the "
                  "last 6 months; NB."),
    "global_boost": ("forecast.models.global_model", "Gradient-boosted trees for all units at once, counts relative "
                     "to each unit's 12-month mean; NB."),
})


def make_model(name: str, **params) -> Forecaster:
    """Instantiate a registered model, with clear errors for unknown names and parameters."""
    if name not in MODELS:
        close = difflib.get_close_matches(name, list(MODELS), n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ModelError(f"unknown model {name!r}; {hint}known models: {', '.join(sorted(MODELS))}")
    cls = MODELS[name]
    valid = cls.param_names()
    unknown = [p for p in params if p not in valid]
    if unknown:
        close = difflib.get_close_matches(unknown[0], valid, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ModelError(
            f"model {name!r} has no parameter {unknown[0]!r}{hint}; its parameters are "
            f"{', '.join(valid) or 'none'}"
        )
    model = cls(**params)
    # Every command makes its models before it runs any: a bad value stops it here.
    model.check_params()
    return model
