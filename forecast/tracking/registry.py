"""Fitted forecasters as MLflow models, and the rule that promotes one to ``champion``.

A registered model is a fitted :class:`~forecast.models.base.Forecaster` wrapped in
:class:`ForecasterModel` (a pyfunc model, pickled with cloudpickle by MLflow). Loaded back with
``mlflow.pyfunc.load_model("models:/NAME@champion")`` it takes a panel history (``unit``,
``month`` as ``YYYY-MM``, ``y`` and the covariates it was fitted with) and returns a forecast
frame with ``month`` and ``origin`` as ``YYYY-MM`` strings; the horizon is the ``horizon``
param (default 6).

Promotion rule (:func:`promote`)
--------------------------------
Every version logged by :meth:`forecast.tracking.ChildRun.log_model` carries the version tags
``forecast.crps`` (overall backtest CRPS of its run) and ``forecast.eval_window`` (origins and
horizons of that backtest). A candidate version

1. becomes ``champion`` when there is no champion yet;
2. is refused (no alias changes) when it lacks those tags, or when its evaluation window differs
   from the champion's: CRPS over different windows is not comparable;
3. becomes ``champion`` when its CRPS is strictly lower than the champion's (the alias moves;
   the former champion keeps its tags and stays loadable by version);
4. otherwise becomes ``challenger``.
"""

from __future__ import annotations

import copy
import importlib.metadata
from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.models.model import ModelInfo

from forecast.evaluation.backtest import forecast_at
from forecast.models.base import Forecaster, ModelError, check_history
from forecast.tracking.store import TrackingError, connect

__all__ = ["CHALLENGER", "CHAMPION", "Decision", "ForecasterModel", "NoSuchModel", "RegisteredForecaster",
           "list_versions", "load_registered", "log_forecaster", "promote"]

CHAMPION = "champion"
CHALLENGER = "challenger"
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


def to_strings(frame: pd.DataFrame, columns=("month", "origin")) -> pd.DataFrame:
    """A copy with ``columns`` as ``YYYY-MM`` strings (what a served model takes and returns)."""
    out = frame.copy()
    for col in columns:
        if col in out:
            out[col] = out[col].astype(str)
    return out


def _same_history(a: pd.DataFrame, b: pd.DataFrame) -> bool:
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
        if not _same_history(history, model.history_[self.columns()]):
            model = copy.deepcopy(model).update(history)
        return to_strings(forecast_at(model, history, horizon))


def _requirements() -> list[str]:
    out = []
    for package in _REQUIREMENTS:
        try:
            out.append(f"{package}=={importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def log_forecaster(forecaster: Forecaster, history: pd.DataFrame, *, horizon: int = DEFAULT_HORIZON,
                   registered_name: str | None = None, name: str = "model") -> ModelInfo:
    """Log a fitted forecaster to the active MLflow run (registering it when a name is given).

    ``history`` is the history it was fitted on (Period months); it becomes the input example,
    so the example's prediction is the model's own forecast, and with it the signature.
    """
    wrapper = ForecasterModel(forecaster)
    example = to_strings(history[wrapper.columns()], ("month",)).reset_index(drop=True)
    output = wrapper.predict(None, example, {"horizon": horizon})
    signature = infer_signature(example, output, params={"horizon": int(horizon)})
    return mlflow.pyfunc.log_model(
        name=name, python_model=wrapper, signature=signature, input_example=example,
        registered_model_name=registered_name, pip_requirements=_requirements())


# ----------------------------------------------------------------------------------------
# Promotion


@dataclass(frozen=True)
class Decision:
    """What :func:`promote` did: ``promoted`` is True when the candidate is now champion."""

    promoted: bool
    reason: str


def _champion(client: MlflowClient, name: str):
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException as err:
        if err.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def _crps(version) -> float | None:
    try:
        return float(version.tags["forecast.crps"])
    except (KeyError, ValueError):
        return None


def promote(registered_name: str, version: str | int, tracking_uri: str) -> Decision:
    """Apply the promotion rule of the module docstring to one model version."""
    client = connect(tracking_uri)
    version = str(version)
    try:
        candidate = client.get_model_version(registered_name, version)
    except MlflowException as err:
        raise TrackingError(f"no version {version} of registered model {registered_name!r} at "
                            f"{tracking_uri}: {err.message}") from None
    crps, window = _crps(candidate), candidate.tags.get("forecast.eval_window")
    if crps is None or not window:
        return Decision(False, f"version {version} has no forecast.crps / forecast.eval_window tags: "
                               f"log it with ChildRun.log_model after log_backtest")
    champion = _champion(client, registered_name)
    if champion is None:
        client.set_registered_model_alias(registered_name, CHAMPION, version)
        return Decision(True, f"version {version} is the first champion (CRPS {crps:.4g} over {window})")
    if str(champion.version) == version:
        return Decision(True, f"version {version} is already champion")
    champion_window = champion.tags.get("forecast.eval_window")
    if champion_window != window:
        return Decision(False, f"version {version} was evaluated over {window!r} but champion "
                               f"version {champion.version} over {champion_window!r}; CRPS over different "
                               f"windows is not comparable: re-run the backtest over the champion's window")
    champion_crps = _crps(champion)
    if champion_crps is None or crps < champion_crps:
        client.set_registered_model_alias(registered_name, CHAMPION, version)
        if CHALLENGER in candidate.aliases:
            client.delete_registered_model_alias(registered_name, CHALLENGER)
        return Decision(True, f"version {version} (CRPS {crps:.4g}) beats champion version "
                              f"{champion.version} (CRPS {champion_crps if champion_crps is not None else 'none'}) "
                              f"over {window}")
    client.set_registered_model_alias(registered_name, CHALLENGER, version)
    return Decision(False, f"version {version} (CRPS {crps:.4g}) does not beat champion version "
                           f"{champion.version} (CRPS {champion_crps:.4g}) over {window}; it is the challenger")


def list_versions(registered_name: str, tracking_uri: str) -> pd.DataFrame:
    """The versions of a registered model: version, aliases, crps, eval_window, run_id, created."""
    client = connect(tracking_uri)
    try:
        model = client.get_registered_model(registered_name)
    except MlflowException as err:
        raise TrackingError(f"no registered model {registered_name!r} at {tracking_uri}: {err.message}") from None
    # search_model_versions leaves aliases empty (MLflow 3.x): take them from the model.
    aliases: dict[str, list[str]] = {}
    for alias, version in (model.aliases or {}).items():
        aliases.setdefault(str(version), []).append(alias)
    versions = client.search_model_versions(f"name = '{registered_name}'")
    rows = [{
        "version": int(v.version), "aliases": ", ".join(sorted(aliases.get(str(v.version), []))),
        "crps": _crps(v),
        "eval_window": v.tags.get("forecast.eval_window"), "model": v.tags.get("forecast.model"),
        "run_id": v.run_id, "created": pd.to_datetime(v.creation_timestamp, unit="ms", utc=True),
    } for v in versions]
    columns = ["version", "aliases", "crps", "eval_window", "model", "run_id", "created"]
    return pd.DataFrame(rows, columns=columns).sort_values("version").reset_index(drop=True)


# ----------------------------------------------------------------------------------------
# Loading


class NoSuchModel(TrackingError):
    """The registry has no such model, version or alias (e.g. no ``champion`` yet)."""


@dataclass(frozen=True)
class RegisteredForecaster:
    """A fitted forecaster loaded from the registry, with where it came from."""

    forecaster: Forecaster
    name: str
    version: str
    aliases: tuple[str, ...]
    run_id: str | None
    crps: float | None
    eval_window: str | None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    @property
    def label(self) -> str:
        """``demo-incidents version 3 (champion)``: how reports and logs name it."""
        alias = f" ({', '.join(self.aliases)})" if self.aliases else ""
        return f"{self.name} version {self.version}{alias}"


def parse_model_ref(text: str) -> tuple[str, str | None, str | None]:
    """``NAME@alias`` / ``NAME/version`` / ``models:/NAME@alias`` -> (name, version, alias)."""
    ref = text.removeprefix("models:/")
    if "@" in ref:
        name, alias = ref.split("@", 1)
        if not name or not alias:
            raise NoSuchModel(f"model reference {text!r}: expected NAME@ALIAS, e.g. demo-incidents@champion")
        return name, None, alias
    if "/" in ref:
        name, version = ref.rsplit("/", 1)
        if not name or not version.isdigit():
            raise NoSuchModel(f"model reference {text!r}: expected NAME/VERSION, e.g. demo-incidents/3")
        return name, version, None
    raise NoSuchModel(f"model reference {text!r}: expected NAME@ALIAS (e.g. demo-incidents@champion) "
                      f"or NAME/VERSION")


def _load_pyfunc(model_uri: str, tracking_uri: str):
    # load_model resolves models:/ URIs with the process-wide URIs: point them at this store
    # for the call only, so loading never changes where the caller's later runs are logged.
    saved = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        return mlflow.pyfunc.load_model(model_uri)
    finally:
        mlflow.set_tracking_uri(saved[0])
        mlflow.set_registry_uri(saved[1])


def load_registered(ref: str, tracking_uri: str) -> RegisteredForecaster:
    """Load ``NAME@alias`` or ``NAME/version`` from the registry at ``tracking_uri``.

    Raises
    ------
    NoSuchModel
        When the model, version or alias does not exist (the message says which, and what exists).
    TrackingError
        When the tracking server cannot be reached.
    """
    name, version, alias = parse_model_ref(ref)
    client = connect(tracking_uri)
    try:
        info = (client.get_model_version_by_alias(name, alias) if alias
                else client.get_model_version(name, version))
    except MlflowException as err:
        try:
            existing = client.get_registered_model(name)
        except MlflowException:
            raise NoSuchModel(f"no registered model {name!r} at {tracking_uri}: run an experiment with "
                              f"--register {name} first") from None
        have = ", ".join(f"@{a}" for a in sorted(existing.aliases or {})) or "no aliases"
        raise NoSuchModel(f"registered model {name!r} at {tracking_uri} has no "
                          f"{'alias @' + alias if alias else 'version ' + str(version)} ({have}): "
                          f"{err.message}") from None
    model = _load_pyfunc(f"models:/{name}/{info.version}", tracking_uri)
    wrapper = model.unwrap_python_model()
    if not isinstance(wrapper, ForecasterModel):
        raise NoSuchModel(f"models:/{name}/{info.version} is not a forecast model (it is a "
                          f"{type(wrapper).__name__})")
    aliases = tuple(sorted(a for a, v in (client.get_registered_model(name).aliases or {}).items()
                           if str(v) == str(info.version)))
    return RegisteredForecaster(
        forecaster=wrapper.forecaster, name=name, version=str(info.version), aliases=aliases,
        run_id=info.run_id, crps=_crps(info), eval_window=info.tags.get("forecast.eval_window"))
