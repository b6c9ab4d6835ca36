"""Threat tiers on the source's own scale.

Sources count very differently: UCDP GED records a few dozen events a month in Iraq, IBC or
ACLED hundreds. Fixed bounds (say "Severe from 15 a month") would make nearly every
governorate Severe on one source and Minimal on another. The bounds are therefore read from
the panel itself: percentiles (:data:`TIER_PERCENTILES`) of all its monthly counts per unit
up to the forecast origin. A tier then means the same on every source: "Severe" is a month
as violent as the worst 2.5% of the unit-months the source has recorded.

A unit's tier compares its expected count per month (the forecast means averaged over the
forecast months) with these bounds; a bound belongs to the tier it starts. Escalation
probabilities do not move the tier: the tier says how much violence is expected, nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecast.evaluation.escalation import TIER_NAMES

__all__ = ["MIN_BOUND", "TIER_PERCENTILES", "TierScale", "tier_scale"]

#: Percentiles of the panel's unit-month counts at which tiers 1..4 start.
TIER_PERCENTILES = (50.0, 75.0, 90.0, 97.5)
#: The lowest bound: below half an event a month a unit is Minimal whatever the percentiles say.
MIN_BOUND = 0.5
#: A bound that would not be above the one before is set to this multiple of it.
STEP = 1.5


def _fmt(value: float) -> str:
    if value >= 9.95:
        return f"{value:,.0f}"
    return f"{value:.3g}"  # 0.75, 1.12, 8.1: a bound is not rounded onto its neighbour


@dataclass(frozen=True)
class TierScale:
    """Tier bounds read from one panel (see the module docstring)."""

    bounds: tuple[float, ...]        # expected count per month at which tiers 1..4 start
    percentiles: tuple[float, ...]   # the percentile each bound was read at
    raw: tuple[float, ...]           # the percentiles before MIN_BOUND / STEP were applied
    first: pd.Period
    last: pd.Period
    unit_months: int
    target: str

    def tier(self, expected) -> np.ndarray:
        """Tier index (into :data:`~forecast.evaluation.escalation.TIER_NAMES`) of expected counts per month."""
        values = np.asarray(expected, dtype=float)
        if np.isnan(values).any():
            raise ValueError("tier: expected count is NaN")
        return np.searchsorted(np.asarray(self.bounds), values, side="right").astype(int)

    def ranges(self) -> list[tuple[str, str]]:
        """(tier name, what it covers) for the legend, lowest tier first."""
        b, p, t = self.bounds, self.percentiles, self.target
        out = [(TIER_NAMES[0], f"fewer than {_fmt(b[0])} {t} a month expected")]
        for k, name in enumerate(TIER_NAMES[1:-1], start=1):
            out.append((name, f"{_fmt(b[k - 1])} to under {_fmt(b[k])} {t} a month expected"))
        out.append((TIER_NAMES[-1], f"{_fmt(b[-1])} or more {t} a month expected "
                                    f"(the top {100 - p[-1]:g}% of months)"))
        return out

    def definition(self, unit_word: str) -> str:
        """The rule in plain words, with the numbers it was read from."""
        pct = ", ".join(f"{p:g}th" for p in self.percentiles)
        return (
            f"A {unit_word}'s threat tier compares the {self.target} it is expected to have per month (the "
            f"forecast means averaged over the forecast months) with the source's own scale: the {pct} "
            f"percentiles of all {self.unit_months:,} monthly counts of every {unit_word} in the panel from "
            f"{self.first} to {self.last} (read as {', '.join(_fmt(v) for v in self.raw)}). Each bound is at "
            f"least {MIN_BOUND:g} and above the one before (else {STEP:g} times it). So a tier means the same on "
            f"any source, whatever its overall level: Severe is as violent as the worst "
            f"{100 - self.percentiles[-1]:g}% of the {unit_word}-months on record. The escalation probability "
            f"does not change the tier."
        )


def tier_scale(panel: pd.DataFrame, origin: pd.Period, target: str = "incidents") -> TierScale:
    """Tier bounds from the panel's unit-month counts of ``target`` up to ``origin``."""
    upto = panel.loc[panel["month"] <= origin, target].to_numpy(float)
    upto = upto[np.isfinite(upto)]
    if len(upto) == 0:
        raise ValueError(f"tier_scale: no recorded {target} up to {origin}")
    raw = np.percentile(upto, TIER_PERCENTILES)
    bounds = []
    for value in map(float, raw):
        if not bounds:
            bounds.append(max(value, MIN_BOUND))
        else:
            bounds.append(value if value > bounds[-1] else bounds[-1] * STEP)
    months = panel.loc[panel["month"] <= origin, "month"]
    return TierScale(bounds=tuple(bounds), percentiles=TIER_PERCENTILES, raw=tuple(float(v) for v in raw),
                     first=months.min(), last=months.max(), unit_months=int(len(upto)), target=target)
