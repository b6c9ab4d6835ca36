"""How the report writes numbers, probabilities and months, and reads month columns."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecast.report.inputs import ReportError

__all__ = ["JOINED_DASH", "as_periods", "counted", "fmt_count", "fmt_interval", "fmt_month", "fmt_prob", "fmt_range", "fmt_signed"]


def fmt_count(value: float) -> str:
    """Counts as readers take them in: one decimal below 10, whole numbers with separators above."""
    if value is None or not np.isfinite(value):
        return "–"
    value = float(value)
    if abs(value) >= 9.95 or abs(value - round(value)) < 0.05:
        text = f"{value:,.0f}"
        return "0" if text == "-0" else text
    return f"{value:.1f}"


def fmt_signed(value: float) -> str:
    text = fmt_count(abs(value))
    if text in ("0", "0.0"):
        return "±0"
    return ("+" if value > 0 else "−") + text


def counted(value: float, noun: str) -> str:
    """``"1 incident"``, ``"2.5 incidents"``: the count and its noun (given in the plural)."""
    text = fmt_count(value)
    return f"{text} {noun[:-1] if text == '1' and noun.endswith('s') else noun}"


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
    out = frame.copy()
    for col in ("origin", "month"):
        if not isinstance(out[col].dtype, pd.PeriodDtype):
            try:
                out[col] = pd.PeriodIndex(out[col].astype(str), freq="M")
            except (ValueError, TypeError) as exc:
                raise ReportError(f"{what}: column {col!r} does not hold months (YYYY-MM): {exc}") from None
    return out
