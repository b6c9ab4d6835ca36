"""Hyperparameters checked against the types their model declares, before any data is seen.

A model's ``__init__`` annotations are its parameter declaration (``n_jobs: int | None = 1``):
:func:`check_declared_types` checks every value against them, so ``--param n_jobs="x"`` is an
error naming the model, the parameter, what it must be and what it got, when the model is
made, not minutes into a backtest. The ranges a type cannot say (``window >= 1``) are each
model's own checks, run at the same time (:meth:`forecast.models.base.Forecaster.check_params`),
with the helpers here (:func:`check_int`, :func:`is_real`, :func:`check_choice`).
"""

from __future__ import annotations

import inspect
import math
import types
import typing

import numpy as np

from forecast.errors import ModelError

__all__ = ["check_choice", "check_declared_types", "check_int", "describe_type", "is_real"]


def _matches(value, annotation) -> bool:
    """Whether ``value`` is of the declared ``annotation`` (unions, ``tuple[X, ...]``, scalars)."""
    if annotation is inspect.Parameter.empty or annotation is typing.Any:
        return True
    if annotation is None or annotation is type(None):
        return value is None
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arm) for arm in typing.get_args(annotation))
    if origin is tuple:
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        item = args[0] if args else typing.Any
        if isinstance(value, (tuple, list)):
            return all(_matches(v, item) for v in value)
        # One value where a sequence is declared: the models read it as a one-item list
        # (``lags = 3``, ``members = "zero, ets"``); their own checks say more.
        return _matches(value, item)
    if annotation is bool:
        return isinstance(value, (bool, np.bool_))
    if annotation is int:
        return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if annotation is float:
        return (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
                and math.isfinite(float(value)))
    if annotation is str:
        return isinstance(value, str)
    return isinstance(value, annotation) if isinstance(annotation, type) else True


def describe_type(annotation) -> str:
    """``int | None`` -> "a whole number or none"; for messages."""
    if annotation is None or annotation is type(None):
        return "none"
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe_type(a) for a in typing.get_args(annotation))
    if origin is tuple:
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        return f"a list of {describe_type(args[0]).removeprefix('a ')}s" if args else "a list"
    return {bool: "true or false", int: "a whole number", float: "a finite number", str: "a text"}.get(
        annotation, getattr(annotation, "__name__", str(annotation)))


def check_declared_types(cls: type, params: dict, model: str) -> None:
    """Raise :class:`ModelError` for the first value not of the type ``cls.__init__`` declares for it."""
    try:
        hints = typing.get_type_hints(cls.__init__)
    except (NameError, TypeError):  # an annotation that cannot be resolved: nothing to check against
        return
    for name, value in params.items():
        annotation = hints.get(name, inspect.Parameter.empty)
        if not _matches(value, annotation):
            shown = repr(value)
            shown = shown if len(shown) <= 60 else shown[:60] + "..."
            raise ModelError(f"model {model!r}: parameter {name!r} must be {describe_type(annotation)}, got {shown}")


def check_int(model: str, name: str, value, minimum: int) -> int:
    """``value`` as an int, or :class:`ModelError` unless it is a whole number >= ``minimum``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ModelError(f"{model}: {name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def is_real(value, low: float = -np.inf, high: float = np.inf) -> bool:
    """A real number (not a bool) in [low, high]."""
    return (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
            and low <= value <= high)


def check_choice(model: str, name: str, value, choices: tuple) -> None:
    """:class:`ModelError` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ModelError(f"{model}: {name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
