"""The first screen's sentences: where it may get worse next month, how sure the forecast is.

Generated from the numbers of :func:`forecast.report.content.outlook`; every sentence is
hedged ("is expected", "90% interval"), none says "will". The national total gets one
sentence per horizon group (next month, months 2-3, 4-6, ...); groups whose figures read the
same are joined, so no sentence is said twice.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecast.evaluation import escalation
from forecast.report.content import RECENT_MONTHS, WATCH_P, WATCH_RISE, Outlook
from forecast.report.fmt import fmt_count, fmt_interval, fmt_mean, fmt_month, fmt_prob, fmt_range
from forecast.report.inputs import ReportInputs

__all__ = ["HORIZON_GROUPS", "WATCH_SHOWN", "headline", "horizon_groups", "references"]

#: Horizon groups of the national sentences: next month, then months 2-3, 4-6, 7-12, ...
HORIZON_GROUPS = ((1, 1), (2, 3), (4, 6), (7, 12), (13, 24), (25, 36))
#: Watch-list units the headline describes in a sentence each (the tables mark every one).
WATCH_SHOWN = 5


def _group_figures(nat: pd.DataFrame, months: pd.PeriodIndex, a: int, b: int) -> tuple[str, str, str]:
    """(average expected a month, median, 90% interval) of the national total over horizons a..b, as shown."""
    block = nat.loc[months[a - 1:b]]
    end = nat.loc[months[b - 1]]
    return fmt_mean(block["mean"].mean()), fmt_count(end["q50"]), fmt_interval(end["q05"], end["q95"])


def horizon_groups(nat: pd.DataFrame, months: pd.PeriodIndex) -> list[tuple[int, int]]:
    """The horizon groups of :data:`HORIZON_GROUPS` up to the horizon; neighbours whose figures read alike joined."""
    horizon = len(months)
    groups = [(a, min(b, horizon)) for a, b in HORIZON_GROUPS if a <= horizon]
    joined: list[tuple[int, int]] = []
    for a, b in groups:
        if joined and _group_figures(nat, months, *joined[-1]) == _group_figures(nat, months, a, b):
            joined[-1] = (joined[-1][0], b)
        else:
            joined.append((a, b))
    return joined


def _national_sentences(out: Outlook, target: str, unit_word: str, n_units: int) -> list[str]:
    nat, months = out.national.table, out.months
    everywhere = f"all {n_units:,} {unit_word}s" if out.focus else f"the {n_units:,} {unit_word}s together"
    sentences = []
    for a, b in horizon_groups(nat, months):
        mean, median, interval = _group_figures(nat, months, a, b)
        if a == b:
            text = (f"{fmt_month(months[a - 1], long=True)}: about {mean} {target} are expected nationally "
                    f"({everywhere}), a median of {median} (90% interval {interval})")
        else:
            text = (f"{fmt_range(months[a - 1], months[b - 1])}: about {mean} {target} a month are expected "
                    f"nationally; by {fmt_month(months[b - 1], long=True)} a median of {median} "
                    f"(90% interval {interval})")
        if a == 1:
            text += (f", against {fmt_count(out.national_last)} recorded in {fmt_month(out.origin, long=True)}"
                     + (f" and {fmt_count(out.national_year_ago)} in {fmt_month(out.year_ago_month, long=True)}"
                        if np.isfinite(out.national_year_ago) else "")
                     + f" (an average of {fmt_mean(out.national_recent)} a month over the last {RECENT_MONTHS} "
                       "months)")
        sentences.append(text + ".")
    return sentences


def _watch_item(row, out: Outlook, target: str, skilful: bool) -> str:
    month = fmt_month(out.months[0])
    text = (f"{fmt_mean(row['next_mean'])} expected in {month} (median {fmt_count(row['next_q50'])}, 90% interval "
            f"{fmt_interval(row['next_q05'], row['next_q95'])}), against {fmt_count(row['last_month'])} recorded in "
            f"{fmt_month(out.origin)}")
    if np.isfinite(row["year_ago"]):
        text += f" and {fmt_count(row['year_ago'])} in {fmt_month(out.year_ago_month)}"
    text += (f"; probability of more than its recent level of {fmt_mean(row['recent'])}: "
             f"{fmt_prob(row['p_increase'])}")
    if skilful:
        text += (f"; of escalation (more than {fmt_count(np.floor(row['threshold']))}): "
                 f"{fmt_prob(row['p_next'])}")
    return text + "."


def references(out: Outlook, unit_word: str) -> str:
    """Which reference each signal is measured against (they differ, and each is named)."""
    window = fmt_range(out.origin - (RECENT_MONTHS - 1), out.origin)
    return (f"What each signal is measured against: the probability of an increase, the changes and the trend "
            f"against each {unit_word}'s recent level, its average over the last {RECENT_MONTHS} months "
            f"({window}); escalation against {escalation.ESCALATION_FACTOR:g} times the median of its last "
            f"{escalation.ESCALATION_WINDOW} months plus {escalation.ESCALATION_OFFSET:g}; threat tiers against "
            f"the months of every {unit_word} from {out.tiers.first} to {out.tiers.last}.")


def headline(out: Outlook, inputs: ReportInputs, unit_word: str, coverage90: float | None,
             skill: dict | None = None) -> dict:
    """Sentences of the first screen, generated from the numbers (each a plain string).

    ``skill`` is :func:`forecast.report.track.escalation_skill`'s summary, when a backtest
    was run: without shown skill escalation probabilities stay out of the watch sentences.
    """
    target = inputs.target
    first, last = out.months[0], out.months[-1]
    vintage = inputs.meta.get("vintage") or str(out.origin)
    n_units = len(out.units)
    intro = (f"Forecast for {fmt_range(first, last)} ({out.horizon} month{'s' if out.horizon > 1 else ''} ahead) "
             f"from data up to {fmt_month(out.origin, long=True)} (vintage {vintage}), model "
             f"{inputs.model_version or inputs.model}.")
    shown = out.shown
    if out.focus:
        intro += (f" This report focuses on {len(shown)} of the {n_units:,} {unit_word}s; the national figures are "
                  f"for all {n_units:,}.")
    skilful = bool(skill and skill.get("skilful"))
    watched = shown[shown["watch"]].sort_values(["p_increase", "next_mean"], ascending=False, kind="stable")
    focus = [{"unit": row["unit"], "tier": row["tier_name"], "tier_index": int(row["tier"]),
              "text": _watch_item(row, out, target, skilful)} for _, row in watched.head(WATCH_SHOWN).iterrows()]
    where = "of the " + f"{len(shown):,} {unit_word}s shown" if out.focus else f"of {len(shown):,} {unit_word}s"
    if len(watched) == 0:
        watch_line = (f"No {unit_word} {where} meets the watch rule for {fmt_month(first, long=True)}: none is "
                      f"both more likely than not ({WATCH_P:.0%} or more) to exceed its recent level and expected "
                      f"at least {WATCH_RISE:g} above it.")
    else:
        watch_line = (f"{len(watched):,} {where} {'is' if len(watched) == 1 else 'are'} on the watch list for "
                      f"{fmt_month(first, long=True)}: {', '.join(watched['unit'].head(WATCH_SHOWN))}"
                      + (f" and {len(watched) - WATCH_SHOWN:,} more" if len(watched) > WATCH_SHOWN else "")
                      + " (▲ in the table).")
    counts = shown["trend"].value_counts()
    rising = counts.get("rising", 0)
    trend_line = (f"Over {fmt_range(first, last)}, against their recent level, {rising} {where} "
                  f"{'is' if rising == 1 else 'are'} projected to rise, {counts.get('stable', 0)} to stay about "
                  f"level and {counts.get('falling', 0)} to fall.")
    if skill is None:
        escalation_line = ("No backtest was run, so the escalation probabilities have no track record here; they "
                           "do not set the watch list or the tiers.")
    elif skilful:
        escalation_line = (f"Escalation probabilities beat both the {unit_word}s' own historical escalation rates and "
                           f"'never escalates' in the backtest (Brier score {skill['brier']:.3f} against "
                           f"{skill['brier_rate']:.3f} and {skill['brier_zero']:.3f}).")
    else:
        escalation_line = (f"Escalation probabilities showed no skill in the backtest: their Brier score "
                           f"({skill['brier']:.3f}) was no better than that of the {unit_word}s' own historical "
                           f"escalation rates ({skill['brier_rate']:.3f}) or of 'never escalates' "
                           f"({skill['brier_zero']:.3f}). They are shown in the ranked table for reference only.")
    hedge = ("How sure: each forecast comes with a 90% interval, the range the model considers likely")
    if coverage90 is not None and np.isfinite(coverage90):
        hedge += (f"; in the backtest such intervals contained the recorded count {coverage90:.0%} of the time "
                  f"(90% would be ideal).")
    else:
        hedge += "; no backtest was run to check how often they held."
    return {"intro": intro, "national": _national_sentences(out, target, unit_word, n_units),
            "watch_line": watch_line, "focus": focus, "trend": trend_line, "hedge": hedge,
            "escalation": escalation_line, "references": references(out, unit_word)}
