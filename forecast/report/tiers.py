"""Threat tiers on the source's own recent scale.

Sources count very differently: UCDP GED records a few dozen events a month in Iraq, IBC or
ACLED hundreds. Fixed bounds (say "Severe from 15 a month") would make nearly every
governorate Severe on one source and Minimal on another. The bounds are therefore read from
the panel itself: percentiles (:data:`TIER_PERCENTILES`) of its monthly counts per unit over
a recent window (:data:`DEFAULT_TIER_YEARS` years up to the forecast origin, configurable),
rounded to whole counts. A tier then means the same on every source: "Severe" is a month as
violent as the worst 2.5% of the unit-months the source recorded in those years. The window
is recent on purpose: over decades of mostly quiet months (UCDP's Iraq before 2003) the
percentiles squeeze every bound below two events a month.

A unit's tier compares its expected count per month (the forecast means averaged over the
forecast months) with these bounds; a bound belongs to the tier it starts. Escalation
probabilities do not move the tier: the tier says how much violence is expected, nothing else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecast.errors import ReportError


__all__ = ["DEFAULT_TIER_YEARS", "MIN_BOUND", "TIER_MEANINGS", "TIER_NAMES", "TIER_PERCENTILES", "TREND_WINDOW",
           "TierScale", "tier_scale", "trend", "trend_definition"]

#: Threat tiers, lowest first; a unit's tier is an index into this tuple.
TIER_NAMES = ("Minimal", "Low", "Moderate", "High", "Severe")
#: Months of recent history the trend compares the forecast with.
TREND_WINDOW = 3
#: The forecast must differ from the recent level by at least this share of it ...
TREND_RELATIVE = 0.25
#: ... and by at least this count per month, so that 0 -> 1 incident is not called a surge.
TREND_ABSOLUTE = 1.0

#: Percentiles of the panel's unit-month counts at which tiers 1..4 start.
TIER_PERCENTILES = (50.0, 75.0, 90.0, 97.5)
#: Years of unit-months up to the origin the percentiles are read from.
DEFAULT_TIER_YEARS = 5
#: The lowest bound: below one event a month a unit is Minimal whatever the percentiles say.
MIN_BOUND = 1
#: What each tier means, in plain words (lowest first); ``{window}`` is the months the bounds come from.
TIER_MEANINGS = (
    "as quiet as the quieter half of the months of {window}",
    "busier than half of the months of {window}",
    "busier than 3 in every 4 months of {window}",
    "busier than 9 in every 10 months of {window}",
    "as violent as the worst 1 in 40 months of {window}",
)


def _whole(value: float) -> int:
    return int(math.floor(value + 0.5))


@dataclass(frozen=True)
class TierScale:
    """Tier bounds read from one panel (see the module docstring)."""

    bounds: tuple[int, ...]          # expected count per month at which tiers 1..4 start (whole counts)
    percentiles: tuple[float, ...]   # the percentile each bound was read at
    raw: tuple[float, ...]           # the percentiles before rounding and MIN_BOUND
    first: pd.Period                 # the window's first month
    last: pd.Period
    unit_months: int
    target: str
    years: int

    @property
    def window(self) -> str:
        """The window in words, ``Jan 2012–Dec 2016`` (months joined to the dash: never broken at it)."""
        return f"{self.first.strftime('%b %Y')}\u2060–\u2060{self.last.strftime('%b %Y')}"

    def tier(self, expected) -> np.ndarray:
        """Tier index (into :data:`TIER_NAMES`) of expected counts per month."""
        values = np.asarray(expected, dtype=float)
        if np.isnan(values).any():
            raise ValueError("tier: expected count is NaN")
        return np.searchsorted(np.asarray(self.bounds, dtype=float), values, side="right").astype(int)

    def ranges(self) -> list[tuple[str, str]]:
        """(tier name, the counts it covers and what it means) for the legend, lowest tier first."""
        b, t = self.bounds, self.target
        one = t[:-1] if t.endswith("s") else t
        span = [f"fewer than {b[0]:,} {one if b[0] == 1 else t} a month expected"]
        span += [f"{b[k - 1]:,} to under {b[k]:,} {t} a month expected" for k in range(1, len(b))]
        span.append(f"{b[-1]:,} or more {t} a month expected")
        return [(name, f"{s}: {meaning.format(window=self.window)}")
                for name, s, meaning in zip(TIER_NAMES, span, TIER_MEANINGS)]

    def definition(self, unit_word: str) -> str:
        """The rule in plain words, with the numbers it was read from."""
        pct = ", ".join(f"{p:g}th" for p in self.percentiles)
        return (
            f"A {unit_word}'s threat tier compares the {self.target} it is expected to have per month (the "
            f"forecast means averaged over the forecast months) with the source's own recent scale: the {pct} "
            f"percentiles of the {self.unit_months:,} monthly counts of every {unit_word} in the last "
            f"{self.years} year{'s' if self.years != 1 else ''} of the panel ({self.first} to {self.last}; read as "
            f"{', '.join(f'{v:.3g}' for v in self.raw)}), rounded to whole counts. Each bound is at least "
            f"{MIN_BOUND} and above the one before (else one more than it). So a tier means the same on any source, "
            f"whatever its overall level: Severe is as violent as the worst {100 - self.percentiles[-1]:g}% of the "
            f"{unit_word}-months of those years. The escalation probability does not change the tier."
        )


def tier_scale(panel: pd.DataFrame, origin: pd.Period, target: str = "incidents", *,
               years: int = DEFAULT_TIER_YEARS) -> TierScale:
    """Tier bounds from the panel's unit-month counts of ``target`` in the ``years`` up to ``origin``."""
    start = origin - (12 * int(years) - 1)
    inside = (panel["month"] <= origin) & (panel["month"] >= start)
    values = panel.loc[inside, target].to_numpy(float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        raise ValueError(f"tier_scale: no recorded {target} from {start} to {origin}")
    raw = np.percentile(values, TIER_PERCENTILES)
    bounds: list[int] = []
    for value in map(float, raw):
        whole = max(_whole(value), MIN_BOUND)
        bounds.append(whole if not bounds or whole > bounds[-1] else bounds[-1] + 1)
    months = panel.loc[inside, "month"]
    return TierScale(bounds=tuple(bounds), percentiles=TIER_PERCENTILES, raw=tuple(float(v) for v in raw),
                     first=months.min(), last=months.max(), unit_months=int(len(values)), target=target,
                     years=int(years))


def _finite(values, what: str) -> np.ndarray:
    out = np.asarray(values, dtype=float)
    if np.isnan(out).any():
        raise ReportError(f"{what}: NaN at position {int(np.flatnonzero(np.isnan(out).ravel())[0])}")
    return out


def trend(recent, projected) -> np.ndarray:
    """``'rising'``, ``'stable'`` or ``'falling'``: the forecast against the recent level.

    Parameters
    ----------
    recent : array_like, shape (n,)
        Mean count per month over the last :data:`TREND_WINDOW` months up to the origin.
    projected : array_like, shape (n,)
        The forecast medians averaged over the forecast months.

    Returns
    -------
    numpy.ndarray of str, shape (n,)
        Rising (falling) when ``projected`` is above (below) ``recent`` by at least
        ``max(TREND_ABSOLUTE, TREND_RELATIVE * recent)``; stable otherwise.
    """
    recent = _finite(recent, "trend recent")
    projected = _finite(projected, "trend projected")
    band = np.maximum(TREND_ABSOLUTE, TREND_RELATIVE * recent)
    diff = projected - recent
    return np.where(diff >= band, "rising", np.where(diff <= -band, "falling", "stable"))


def trend_definition(target: str = "incidents") -> str:
    """The rule of :func:`trend` in plain words."""
    return (
        f"The trend compares the median forecast, averaged over the forecast months, with the average "
        f"of the last {TREND_WINDOW} months of recorded {target}: rising when the forecast is higher by at "
        f"least {TREND_ABSOLUTE:g} a month and by at least {TREND_RELATIVE:.0%} of the recent average, "
        f"falling when it is lower by as much, stable otherwise."
    )
