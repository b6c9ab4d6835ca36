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

import contextlib
import copy
import importlib.metadata
import logging
from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models.model import ModelInfo

from forecast.evaluation.backtest import forecast_at
from forecast.models.base import Forecaster, ModelError, check_history
from forecast.tracking.signature import forecaster_signature
from forecast.tracking.store import TrackingError, connect, decimals, mlflow_deprecations_silenced, server_errors

__all__ = ["CHALLENGER", "CHAMPION", "Decision", "ForecasterModel", "ModelRef", "NoSuchModel",
           "RegisteredForecaster", "list_models", "list_versions", "load_registered", "log_forecaster", "promote",
           "tag_version"]

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
                   registered_name: str | None = None, name: str = "model") -> ModelInfo:
    """Log a fitted forecaster to the active MLflow run (registering it when a name is given).

    ``history`` is the history it was fitted on (Period months); it becomes the input example,
    so the example's prediction is the model's own forecast, and with it the signature
    (declared from the dtypes: :func:`forecaster_signature`).

    The project's code is not shipped with the model (``code_paths``): loading a model with
    code paths puts the copied packages first on ``sys.path`` in the loading process, where
    they would shadow the installed project (and lack its data files, such as the bundled
    gazetteer). A registered model is loaded where the project is installed.
    """
    wrapper = ForecasterModel(forecaster)
    example = to_strings(history[wrapper.columns()], ("month",)).reset_index(drop=True)
    output = wrapper.predict(None, example, {"horizon": horizon})
    signature = forecaster_signature(example, output, horizon)
    with _quiet_mlflow():
        return mlflow.pyfunc.log_model(
            name=name, python_model=wrapper, signature=signature, input_example=example,
            registered_model_name=registered_name, pip_requirements=_requirements())


def version_description(label: str, forecaster: Forecaster, scores: pd.DataFrame | None, window: str | None,
                        run_id: str, backtest_run_id: str) -> str:
    """The registered version's description: what it is, its backtest scores, its two runs."""
    lines = [f"{label} ({forecaster.name}) fitted on the data up to {forecaster.origin_}."]
    if scores is not None:
        pooled = scores.loc[scores["horizon"].astype(str) == "all"]
        shown = [c for c in ("crps", "crps_skill", "mae", "coverage90", "brier") if c in pooled]
        if len(pooled) and shown:
            row = pooled.iloc[0]
            lines.append(f"Backtest over {window or 'its window'}: "
                         + ", ".join(f"{c} {float(row[c]):.5f}" for c in shown) + ".")
    lines.append(f"Backtest scores: run {backtest_run_id}. This model: run {run_id}.")
    return "\n\n".join(lines)


def tag_version(client: MlflowClient, name: str, version: str, *, forecaster: Forecaster, label: str, run_id: str,
                backtest_run_id: str, scores: pd.DataFrame | None, crps: float | None, window: str | None) -> None:
    """Tag and describe a registered version: its model, origin, CRPS and evaluation window
    (what :func:`promote` compares) and the ids of its final and backtest runs."""
    tags = {"forecast.model": forecaster.name, "forecast.label": label,
            "forecast.origin": str(forecaster.origin_), "forecast.run_id": run_id,
            "forecast.final_run_id": run_id, "forecast.backtest_run_id": backtest_run_id}
    if crps is not None:
        tags["forecast.crps"] = repr(crps)
    if window:
        tags["forecast.eval_window"] = window
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    client.update_model_version(name, version, description=version_description(
        label, forecaster, scores, window, run_id, backtest_run_id))


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
    """Apply the promotion rule of the module docstring to one model version.

    CRPS values in the reason are printed with as many decimals as it takes to tell the
    candidate's from the champion's.
    """
    client = connect(tracking_uri, existing=True)
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
    with server_errors(tracking_uri, f"promoting {registered_name} version {version}"):
        champion = _champion(client, registered_name)
        if champion is None:
            client.set_registered_model_alias(registered_name, CHAMPION, version)
            return Decision(True, f"version {version} is the first champion (CRPS {crps:.5f} over {window})")
        if str(champion.version) == version:
            return Decision(True, f"version {version} is already champion")
        champion_window = champion.tags.get("forecast.eval_window")
        if champion_window != window:
            return Decision(False, f"version {version} was evaluated over {window!r} but champion "
                                   f"version {champion.version} over {champion_window!r}; CRPS over different "
                                   f"windows is not comparable: re-run the backtest over the champion's window")
        champion_crps = _crps(champion)
        n = decimals([crps] + ([champion_crps] if champion_crps is not None else []), start=5)
        shown = f"{champion_crps:.{n}f}" if champion_crps is not None else "none"
        if champion_crps is None or crps < champion_crps:
            client.set_registered_model_alias(registered_name, CHAMPION, version)
            if CHALLENGER in candidate.aliases:
                client.delete_registered_model_alias(registered_name, CHALLENGER)
            return Decision(True, f"version {version} (CRPS {crps:.{n}f}) beats champion version "
                                  f"{champion.version} (CRPS {shown}) over {window}")
        client.set_registered_model_alias(registered_name, CHALLENGER, version)
        return Decision(False, f"version {version} (CRPS {crps:.{n}f}) does not beat champion version "
                               f"{champion.version} (CRPS {shown}) over {window}; it is the challenger")


_VERSION_COLUMNS = ["version", "aliases", "crps", "eval_window", "model", "run_id", "backtest_run_id", "created"]


def _version_rows(client: MlflowClient, model) -> list[dict]:
    # search_model_versions leaves aliases empty (MLflow 3.x): take them from the model.
    aliases: dict[str, list[str]] = {}
    for alias, version in (model.aliases or {}).items():
        aliases.setdefault(str(version), []).append(alias)
    versions = client.search_model_versions(f"name = '{model.name}'")
    return [{
        "name": model.name, "version": int(v.version),
        "aliases": ", ".join(sorted(aliases.get(str(v.version), []))), "crps": _crps(v),
        "eval_window": v.tags.get("forecast.eval_window"), "model": v.tags.get("forecast.model"),
        "run_id": v.run_id, "backtest_run_id": v.tags.get("forecast.backtest_run_id"),
        "created": pd.to_datetime(v.creation_timestamp, unit="ms", utc=True),
    } for v in versions]


def list_versions(registered_name: str, tracking_uri: str) -> pd.DataFrame:
    """The versions of a registered model: version, aliases, crps, eval_window, model, run_id
    (the final run), backtest_run_id, created."""
    client = connect(tracking_uri, existing=True)
    try:
        model = client.get_registered_model(registered_name)
    except MlflowException as err:
        raise TrackingError(f"no registered model {registered_name!r} at {tracking_uri}: {err.message}") from None
    with server_errors(tracking_uri, f"listing the versions of {registered_name!r}"):
        rows = _version_rows(client, model)
    return pd.DataFrame(rows, columns=_VERSION_COLUMNS).sort_values("version").reset_index(drop=True)


def list_models(tracking_uri: str) -> pd.DataFrame:
    """Every version of every registered model: ``name`` and the :func:`list_versions` columns."""
    client = connect(tracking_uri, existing=True)
    with server_errors(tracking_uri, "listing the registered models"):
        rows = [row for model in client.search_registered_models(max_results=1000)
                for row in _version_rows(client, model)]
    out = pd.DataFrame(rows, columns=["name", *_VERSION_COLUMNS])
    return out.sort_values(["name", "version"]).reset_index(drop=True)


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
    client = connect(tracking_uri, existing=True)
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
