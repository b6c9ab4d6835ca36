"""The model registry: the rule that promotes a version to ``champion``, listing versions, and
loading one back as a fitted forecaster (registering one is :mod:`forecast.tracking.model`).

Promotion rule (:func:`promote`)
--------------------------------
Every version registered by :meth:`forecast.tracking.ChildRun.log_model` carries the version
tags ``forecast.crps`` (overall backtest CRPS of its run) and ``forecast.eval_window`` (origins
and horizons of that backtest). A candidate version

1. becomes ``champion`` when there is no champion yet;
2. is refused (no alias changes) when it lacks those tags, or when its evaluation window differs
   from the champion's: CRPS over different windows is not comparable;
3. becomes ``champion`` when its CRPS is strictly lower than the champion's (the alias moves;
   the former champion keeps its tags and stays loadable by version);
4. otherwise becomes ``challenger``.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from forecast.evaluation.leaderboard import decimals
from forecast.models.base import Forecaster
from forecast.tracking.model import ForecasterModel
from forecast.tracking.store import (
    SERVER_ERRORS,
    TrackingError,
    connect,
    describe,
    not_mlflow,
    server_errors,
    sqlite_path,
)
from forecast.errors import NoSuchModel

__all__ = ["CHALLENGER", "CHAMPION", "Decision", "ForecasterModel", "NoSuchModel", "RegisteredForecaster",
           "list_models", "list_versions", "load_registered", "parse_model_ref", "promote"]

CHAMPION = "champion"
CHALLENGER = "challenger"
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


_VERSION_COLUMNS = ["version", "aliases", "crps", "eval_window", "model", "target", "vintage", "run_id",
                    "backtest_run_id", "created"]


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
        "target": v.tags.get("forecast.target"), "vintage": v.tags.get("forecast.vintage"),
        "run_id": v.tags.get("forecast.final_run_id", v.run_id),
        "backtest_run_id": v.tags.get("forecast.backtest_run_id"),
        "created": pd.to_datetime(v.creation_timestamp, unit="ms", utc=True),
    } for v in versions]


def list_versions(registered_name: str, tracking_uri: str) -> pd.DataFrame:
    """The versions of a registered model: version, aliases, crps, eval_window, model, target,
    vintage, run_id (the final run, which holds the model), backtest_run_id, created."""
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
    #: The panel column it was trained on (``target.name`` of its experiment run), None when not recorded.
    target: str | None = None

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


def _absent(err: BaseException) -> bool:
    """True when MLflow itself says the model, version or alias does not exist (a JSON error of
    the REST API, or the SQL store's own): not an error page of some other server."""
    if not isinstance(err, MlflowException) or not_mlflow(err):
        return False
    if err.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
        return True
    text = str(err).lower()
    return err.error_code == "INVALID_PARAMETER_VALUE" and "alias" in text and "not found" in text


def _trained_target(client: MlflowClient, run_id: str | None) -> str | None:
    """The target an experiment trained the model on: ``target.name`` of its run or its parent run."""
    seen = 0
    while run_id and seen < 3:  # the final run, then the experiment's parent run
        try:
            run = client.get_run(run_id)
        except MlflowException:
            return None
        target = run.data.params.get("target.name")
        if target:
            return target
        run_id, seen = run.data.tags.get("mlflow.parentRunId"), seen + 1
    return None


def load_registered(ref: str, tracking_uri: str) -> RegisteredForecaster:
    """Load ``NAME@alias`` or ``NAME/version`` from the registry at ``tracking_uri``.

    Raises
    ------
    NoSuchModel
        Only when the model, version or alias truly does not exist: MLflow says so, or the
        ``sqlite:///`` store does not exist yet (the message says which, and what exists).
    TrackingError
        Anything else: a server that cannot be reached or does not answer in time, one that
        is not MLflow, a store that cannot be read, an error from MLflow (the message says which).
    """
    name, version, alias = parse_model_ref(ref)
    database = sqlite_path(tracking_uri)
    if database is not None and not database.is_file():
        raise NoSuchModel(f"no registered model {name!r}: there is no MLflow store at {tracking_uri} ({database} does "
                          f"not exist yet); run an experiment with --register {name} first, or pass the store with "
                          f"--tracking-uri / MLFLOW_TRACKING_URI")
    doing = f"looking up models:/{ref}"
    client = connect(tracking_uri, existing=True, doing=doing)
    try:
        info = (client.get_model_version_by_alias(name, alias) if alias
                else client.get_model_version(name, version))
    except SERVER_ERRORS as err:
        if not _absent(err):
            raise describe(err, tracking_uri, doing) from None
        try:
            existing = client.get_registered_model(name)
        except SERVER_ERRORS as err2:
            if not _absent(err2):
                raise describe(err2, tracking_uri, doing) from None
            raise NoSuchModel(f"no registered model {name!r} at {tracking_uri}: run an experiment with "
                              f"--register {name} first") from None
        have = ", ".join(f"@{a}" for a in sorted(existing.aliases or {})) or "no aliases"
        raise NoSuchModel(f"registered model {name!r} at {tracking_uri} has no "
                          f"{'alias @' + alias if alias else 'version ' + str(version)} ({have}): "
                          f"{err.message}") from None
    with server_errors(tracking_uri, f"loading models:/{name}/{info.version}"):
        model = _load_pyfunc(f"models:/{name}/{info.version}", tracking_uri)
        aliases = tuple(sorted(a for a, v in (client.get_registered_model(name).aliases or {}).items()
                               if str(v) == str(info.version)))
    wrapper = model.unwrap_python_model()
    if not isinstance(wrapper, ForecasterModel):
        raise NoSuchModel(f"models:/{name}/{info.version} is not a forecast model (it is a "
                          f"{type(wrapper).__name__})")
    return RegisteredForecaster(
        forecaster=wrapper.forecaster, name=name, version=str(info.version), aliases=aliases,
        run_id=info.tags.get("forecast.final_run_id", info.run_id), crps=_crps(info),
        eval_window=info.tags.get("forecast.eval_window"),
        target=info.tags.get("forecast.target") or _trained_target(client, info.tags.get("forecast.final_run_id",
                                                                                          info.run_id)))
