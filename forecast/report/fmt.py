"""How the report writes numbers, probabilities and months, and reads month columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
from forecast.errors import ReportError


__all__ = ["JOINED_DASH", "as_periods", "counted", "fmt_count", "fmt_interval", "fmt_mean", "fmt_month", "fmt_prob",
           "fmt_range", "fmt_signed", "round_count", "round_mean"]


def round_count(value):
    """Counts as the report shows them: whole numbers, halves rounded away from zero (2.5 -> 3), not to even.

    Takes a number or an array; the report's CSV holds these values, so it equals the page.
    """
    value = np.asarray(value, dtype=float)
    out = np.sign(value) * np.floor(np.abs(value) + 0.5) + 0.0  # + 0.0: no -0
    return float(out) if out.ndim == 0 else out


def round_mean(value):
    """Expected counts and averages as the report shows them: one decimal (see :func:`round_count`)."""
    value = np.asarray(value, dtype=float)
    out = np.sign(value) * np.floor(np.abs(value) * 10 + 0.5 + 1e-9) / 10 + 0.0
    return float(out) if out.ndim == 0 else out


def fmt_count(value: float) -> str:
    """A count as a whole number with thousands separators: recorded counts and quantiles."""
    if value is None or not np.isfinite(value):
        return "–"
    return f"{round_count(value):,.0f}"


def fmt_mean(value: float) -> str:
    """An expected count or an average of counts: one decimal, thousands separators."""
    if value is None or not np.isfinite(value):
        return "–"
    return f"{round_mean(value):,.1f}"


def fmt_signed(value: float, decimals: int = 0) -> str:
    """A change with its sign (``+3``, ``−1.5``, ``±0``): whole counts, or ``decimals=1`` for means."""
    if value is None or not np.isfinite(value):
        return "–"
    text = fmt_mean(abs(value)) if decimals else fmt_count(abs(value))
    if text in ("0", "0.0"):
        return "±0"
    return ("+" if value > 0 else "−") + text


def counted(value: float, noun: str) -> str:
    """``"1.0 incidents"``, ``"2.5 incidents"``: an expected count (one decimal) and its noun (plural)."""
    return f"{fmt_mean(value)} {noun}"


#: Joins the ends of an interval to its dash (U+2060 WORD JOINER): "13–62" never breaks across lines.
JOINED_DASH = "\u2060–\u2060"


def fmt_interval(lo: float, hi: float) -> str:
    return f"{fmt_count(lo)}{JOINED_DASH}{fmt_count(hi)}"


def fmt_prob(p: float) -> str:
    """A probability in words a reader cannot over-read: never 0% or 100%."""
    if p is None or not np.isfinite(p):
        return "–"
    if p < 0.01:
        return "<1%"
    if p > 0.99:
        return ">99%"
    return f"{p:.0%}"


def fmt_month(month: pd.Period, *, long: bool = False) -> str:
    return month.strftime("%B %Y" if long else "%b %Y")


def fmt_range(first: pd.Period, last: pd.Period) -> str:
    if first == last:
        return fmt_month(first, long=True)
    if first.year == last.year:
        return f"{first.strftime('%B')}–{fmt_month(last, long=True)}"
    return f"{fmt_month(first, long=True)}–{fmt_month(last, long=True)}"


def as_periods(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    """``frame`` with ``origin`` and ``month`` as monthly periods; the frame itself (no copy) when they are."""
    if all(isinstance(frame[col].dtype, pd.PeriodDtype) for col in ("origin", "month")):
        return frame
    out = frame.copy()
    for col in ("origin", "month"):
        if not isinstance(out[col].dtype, pd.PeriodDtype):
            try:
                out[col] = pd.PeriodIndex(out[col].astype(str), freq="M")
            except (ValueError, TypeError) as exc:
                raise ReportError(f"{what}: column {col!r} does not hold months (YYYY-MM): {exc}") from None
    return out
