"""What the command modules share: option parsers, and the one place API errors become messages.

Imports nothing heavy at the top (pandas is imported by the parsers that make pandas values),
so that a command module importing it keeps ``forecast COMMAND --help`` fast.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click

from features.errors import shorten
from forecast.errors import USER_ERRORS

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MESSAGE_LENGTH", "TRACKING_HELP", "covariate_list", "date_option", "month_option", "parse_params", "user_errors"]

#: The longest message printed: whatever a file holds, an error stays a few lines.
MESSAGE_LENGTH = 2000

TRACKING_HELP = "MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else MLflow's local SQLite store)."
CONFIG_HELP = "Refresh configuration (TOML); see deploy/refresh.toml."
GAZETTEER_HELP = ("Gazetteer CSV: the units' names and neighbours (default: the one the panel was built with, "
                  "while its file is there, else Iraq's 18 governorates).")


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn the API's user errors into a clean message and exit code 1 (never a traceback)."""
    try:
        yield
    except USER_ERRORS as exc:
        raise click.ClickException(shorten(str(exc), MESSAGE_LENGTH)) from None


def date_option(text: str | None, *, end: bool = False) -> pd.Timestamp | None:
    """Parse YYYY-MM or YYYY-MM-DD; a month as an end bound means its last day."""
    if text is None:
        return None
    import pandas as pd

    try:
        if len(text.strip()) == 7:
            period = pd.Period(text.strip(), freq="M")
            return period.end_time.normalize() if end else period.start_time
        return pd.Timestamp(pd.to_datetime(text.strip(), format="%Y-%m-%d"))
    except (ValueError, TypeError):
        raise click.BadParameter(f"{text!r} is not a date (YYYY-MM or YYYY-MM-DD)") from None


def month_option(text: str | None, option: str) -> pd.Period | None:
    """Parse a ``YYYY-MM`` option value; a usage error naming ``option`` otherwise."""
    if text is None:
        return None
    import pandas as pd

    try:
        if len(text.strip()) != 7:
            raise ValueError
        return pd.Period(text.strip(), freq="M")
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a month (YYYY-MM)", param_hint=option) from None


def covariate_list(text: str | None) -> list[str] | None:
    """``--covariates``: None (every covariate), ``none`` ([]), or comma-separated names."""
    if text is None:
        return None
    if text.strip().lower() == "none":
        return []
    return [c.strip() for c in text.split(",") if c.strip()]


def parse_params(items: tuple[str, ...], *, qualified: bool) -> dict:
    """``key=value`` (or ``model.key=value``) pairs; values read as JSON when they parse."""
    params: dict = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--param")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        if isinstance(value, list):
            value = tuple(value)
        key = key.strip()
        if qualified:
            model, dot, name = key.partition(".")
            if not dot:
                raise click.BadParameter(f"{item!r}: write MODEL.KEY=VALUE", param_hint="--param")
            params.setdefault(model, {})[name] = value
        else:
            params[key] = value
    return params
