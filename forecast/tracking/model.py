"""Fitted forecasters as MLflow models: the pyfunc wrapper, logging one to a run, and registering it.

A registered model is a fitted :class:`~forecast.models.base.Forecaster` wrapped in
:class:`ForecasterModel` (a pyfunc model, pickled with cloudpickle by MLflow). Loaded back with
``mlflow.pyfunc.load_model("models:/NAME@champion")`` it takes a panel history (``unit``,
``month`` as ``YYYY-MM``, ``y`` and the covariates it was fitted with) and returns a forecast
frame with ``month`` and ``origin`` as ``YYYY-MM`` strings; the horizon is the ``horizon``
param (default 6).

A version describes itself (:func:`register_version`): its tags name the model, target,
sources, data vintage, backtest window and CRPS, and its description repeats them in words.
It is the model fitted on all the data in an experiment's ``final:`` run, registered with the
*backtest* run of that model as its MLflow run: the backtest run's page lists the version under
"Registered models" (and the runs table shows the model on the backtest run's row: it is logged
as an output of that run too), and the version's page links to the backtest run (the run whose
scores it was chosen on); the final run is named by the tag ``forecast.final_run_id``, and both
runs carry ``forecast.registered_model`` and ``forecast.registered_version``.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.metadata
import logging
from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import LoggedModelOutput
from mlflow.exceptions import MlflowException
from mlflow.models.model import ModelInfo

from forecast.evaluation.backtest import forecast_at
from forecast.models.base import Forecaster, ModelError, check_history
from forecast.schema import month_strings
from forecast.tracking.signature import forecaster_signature
from forecast.tracking.store import mlflow_deprecations_silenced

__all__ = ["DEFAULT_HORIZON", "ForecasterModel", "ModelRef", "log_forecaster", "register_version", "same_history",
           "to_periods", "version_description"]

DEFAULT_HORIZON = 6
#: Pinned in the logged model's requirements instead of letting MLflow infer them (which
#: loads the model in a subprocess: slow, and it misses the project's own package anyway).
_REQUIREMENTS = ("mlflow", "pandas", "numpy", "scipy", "statsmodels", "scikit-learn", "cloudpickle",
                 "scoringrules", "joblib")


def to_periods(frame: pd.DataFrame, columns=("month", "origin")) -> pd.DataFrame:
    """A copy with ``columns`` as monthly periods (as they come back from a served model: strings)."""
    out = frame.copy()
    for col in columns:
        if col in out and not isinstance(out[col].dtype, pd.PeriodDtype):
            out[col] = pd.PeriodIndex(out[col].astype(str), freq="M")
    return out


def same_history(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Same rows and values (dtypes may differ: MLflow's schema enforcement casts columns)."""
    if list(a.columns) != list(b.columns) or len(a) != len(b):
        return False
    if not (a["unit"].astype(str).to_numpy() == b["unit"].astype(str).to_numpy()).all():
        return False
    if not (a["month"].to_numpy() == b["month"].to_numpy()).all():
        return False
    values = [c for c in a.columns if c not in ("unit", "month")]
    return np.array_equal(a[values].to_numpy(dtype=float), b[values].to_numpy(dtype=float), equal_nan=True)


class ForecasterModel(mlflow.pyfunc.PythonModel):
    """A fitted forecaster as a pyfunc model.

    ``predict`` on the history the model was fitted on uses the fitted state as it is; on a
    longer (or revised) history it conditions a copy of the model on it with
    :meth:`Forecaster.update`, which keeps the fitted parameters; the loaded model itself is
    never changed, so repeated calls give the same answer.
    """

    def __init__(self, forecaster: Forecaster) -> None:
        forecaster._check_fitted()
        self.forecaster = forecaster

    def columns(self) -> list[str]:
        return ["unit", "month", "y", *self.forecaster.covariates_]

    def history(self, model_input: pd.DataFrame) -> pd.DataFrame:
        """The model input as a model history (month as Period[M], the fitted columns)."""
        missing = [c for c in self.columns() if c not in model_input]
        if missing:
            raise ModelError(f"model {self.forecaster.name!r}: input lacks column(s) {', '.join(missing)}; "
                             f"it needs {', '.join(self.columns())}")
        return check_history(to_periods(model_input[self.columns()], ("month",)), self.forecaster.name)

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        horizon = int((params or {}).get("horizon", DEFAULT_HORIZON))
        history = self.history(pd.DataFrame(model_input))
        model = self.forecaster
        if not same_history(history, model.history_[self.columns()]):
            model = copy.deepcopy(model).update(history)
        return month_strings(forecast_at(model, history, horizon), ("month", "origin"))


class _DropPickleNotice(logging.Filter):
    """Drops the one notice MLflow logs for every model given as a Python object: that it is
    pickled with cloudpickle. That is deliberate here (a fitted forecaster is data, not code
    to keep in a file), and the notice would be printed on every run."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Passing a Python object as `python_model`")


@contextlib.contextmanager
def _quiet_mlflow():
    logger, notice = logging.getLogger("mlflow.pyfunc"), _DropPickleNotice()
    logger.addFilter(notice)
    try:
        with mlflow_deprecations_silenced():
            yield
    finally:
        logger.removeFilter(notice)


def _requirements() -> list[str]:
    out = []
    for package in _REQUIREMENTS:
        try:
            out.append(f"{package}=={importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


@dataclass(frozen=True)
class ModelRef:
    """A logged model: its URI, and the registered name and version when registered."""

    model_uri: str
    registered_name: str | None = None
    version: str | None = None


def log_forecaster(forecaster: Forecaster, history: pd.DataFrame, *, horizon: int = DEFAULT_HORIZON,
                   name: str = "model") -> ModelInfo:
    """Log a fitted forecaster to the active MLflow run (:func:`register_version` registers it).

    ``history`` is the history it was fitted on (Period months); it becomes the input example,
    so the example's prediction is the model's own forecast, and with it the signature
    (declared from the dtypes: :func:`forecaster_signature`).

    The project's code is not shipped with the model (``code_paths``): loading a model with
    code paths puts the copied packages first on ``sys.path`` in the loading process, where
    they would shadow the installed project (and lack its data files, such as the bundled
    gazetteer). A registered model is loaded where the project is installed.
    """
    wrapper = ForecasterModel(forecaster)
    example = month_strings(history[wrapper.columns()], ("month",)).reset_index(drop=True)
    output = wrapper.predict(None, example, {"horizon": horizon})
    signature = forecaster_signature(example, output, horizon)
    with _quiet_mlflow():
        return mlflow.pyfunc.log_model(name=name, python_model=wrapper, signature=signature, input_example=example,
                                       pip_requirements=_requirements())


def version_description(label: str, forecaster: Forecaster, tags: dict[str, str], scores: pd.DataFrame | None) -> str:
    """The registered version's description: what it is, on what data, its backtest scores, its two runs."""
    lines = [f"{label} ({forecaster.name}) forecasting {tags.get('forecast.target', 'the target')}, fitted on "
             f"{tags.get('forecast.sources', 'the panel')} up to {forecaster.origin_} "
             f"(data vintage {tags.get('forecast.vintage', 'unknown')})."]
    if scores is not None:
        pooled = scores.loc[scores["horizon"].astype(str) == "all"]
        shown = [c for c in ("crps", "crps_skill", "mae", "coverage90", "brier") if c in pooled]
        if len(pooled) and shown:
            row = pooled.iloc[0]
            lines.append(f"Backtest over {tags.get('forecast.eval_window') or 'its window'}: "
                         + ", ".join(f"{c} {float(row[c]):.5f}" for c in shown) + ".")
    lines.append(f"Backtest scores: run {tags['forecast.backtest_run_id']}. "
                 f"This model: run {tags['forecast.final_run_id']}.")
    return "\n\n".join(lines)


def register_version(client: MlflowClient, name: str, info: ModelInfo, *, forecaster: Forecaster, label: str,
                     final_run_id: str, backtest_run_id: str, scores: pd.DataFrame | None, crps: float | None,
                     facts: dict[str, str]) -> str:
    """Register the model logged in run ``final_run_id`` as a new version of ``name``, whose
    MLflow run is its backtest run, tagged and described (see the module docstring); returns
    the version. ``facts``: ``forecast.target``, ``forecast.sources``, ``forecast.vintage``,
    ``forecast.eval_window`` as known."""
    try:
        client.create_registered_model(name, description=(
            f"Forecast models registered by `forecast experiment run --register {name}`. Every version is tagged "
            f"with its model, target, sources, data vintage, backtest window and CRPS; the alias @champion marks the "
            f"one in use (`forecast registry promote`)."))
    except MlflowException as err:
        if err.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise
    tags = {"forecast.model": forecaster.name, "forecast.label": label, "forecast.origin": str(forecaster.origin_),
            **{k: v for k, v in facts.items() if v}, "forecast.run_id": final_run_id,
            "forecast.final_run_id": final_run_id, "forecast.backtest_run_id": backtest_run_id}
    if crps is not None:
        tags["forecast.crps"] = f"{crps:.10g}"
    version = client.create_model_version(
        name, info.model_uri, run_id=backtest_run_id, tags=tags, model_id=info.model_id,
        description=version_description(label, forecaster, tags, scores))
    number = str(version.version)
    for run_id in dict.fromkeys((backtest_run_id, final_run_id)):
        client.set_tag(run_id, "forecast.registered_model", name)
        client.set_tag(run_id, "forecast.registered_version", number)
    if backtest_run_id != final_run_id and info.model_id:
        # The model is an output of its backtest run too: the runs table lists it on that row.
        client.log_outputs(backtest_run_id, [LoggedModelOutput(info.model_id, step=0)])
    return number
