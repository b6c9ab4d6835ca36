"""Monthly covariates (troop levels, operations tempo, ...) joined onto the panel.

The covariate file is a CSV with a ``month`` column (``YYYY-MM`` or a date inside the month),
an optional ``unit`` column, and one column per covariate. Without ``unit`` every series is
national and is broadcast to all units; with ``unit`` the names are matched through the
gazetteer like event names.

A covariate with months missing inside the panel's range is an error unless a fill policy is
chosen explicitly (:data:`FILL_POLICIES`). No policy looks ahead: interpolation between two
observations would hand a forecast at origin T a value that is only known after T.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from features.errors import DataError
from features.gazetteer import Gazetteer
from features.sources.base import read_table

#: How to treat months without a value.
FILL_POLICIES = {
    "error": "missing months are an error (default)",
    "ffill": "carry the last known value forward; months before the first value are an error",
    "ffill-zero": "carry the last known value forward; months before the first value are 0",
    "zero": "missing months are 0",
    "keep": "leave missing months empty (NaN) in the panel: the covariate as recorded",
    "linear": ("a straight line between two recorded values, the last value carried after the last one, "
               "empty before the first; a forecast at origin T never sees the line towards a value recorded "
               "after T (it is carried from the last value up to T instead)"),
}
#: Key of a per-covariate fill mapping that applies to the covariates it does not name.
EVERY_COVARIATE = "*"
#: Key of a panel's ``attrs``: covariate -> months with a recorded value, for ``linear`` fills.
OBSERVED_KEY = "covariate_observed"


def fill_policy(fill: str | Mapping[str, str], name: str) -> str:
    """The fill policy of covariate ``name``: ``fill`` itself, or its entry (else ``*``, else ``error``)."""
    if isinstance(fill, str):
        return fill
    return fill.get(name, fill.get(EVERY_COVARIATE, "error"))


def describe_fill(fill: str | Mapping[str, str]) -> str:
    """``keep`` or ``keep; us_troops: linear``: the fill as the panel metadata records it."""
    if isinstance(fill, str):
        return fill
    default = fill.get(EVERY_COVARIATE, "error")
    return "; ".join([default, *(f"{k}: {v}" for k, v in fill.items() if k != EVERY_COVARIATE)])


def parse_fill(values: Sequence[str], where: str = "--fill") -> str | dict[str, str]:
    """``--fill`` values: ``POLICY`` (every covariate) and ``NAME=POLICY`` (one covariate), in any mix."""
    out: dict[str, str] = {}
    for value in values:
        name, _, policy = value.rpartition("=")
        name = name.strip() or EVERY_COVARIATE
        policy = policy.strip()
        if policy not in FILL_POLICIES:
            raise DataError(f"{where} {value!r}: unknown fill policy {policy!r}; choose one of {', '.join(FILL_POLICIES)}"
                            " (as POLICY for every covariate, or NAME=POLICY for one)")
        out[name] = policy
    if not out:
        return "error"
    return out[EVERY_COVARIATE] if list(out) == [EVERY_COVARIATE] else out

_RESERVED = {"unit", "month", "incidents", "deaths"}
#: Largest absolute covariate value accepted: far above any troop level or count, far below overflow.
COVARIATE_BOUND = 1e12


def parse_months(text: pd.Series) -> pd.Series:
    """Parse ``YYYY-MM`` or ``YYYY-MM-DD`` text into monthly periods (NaT where unparseable)."""
    text = text.astype(str).str.strip()
    out = pd.to_datetime(text, format="%Y-%m", errors="coerce")
    day = out.isna()
    out[day] = pd.to_datetime(text[day].str[:10], format="%Y-%m-%d", errors="coerce")
    return out.dt.to_period("M")


def read_covariates(path: str | Path, gazetteer: Gazetteer, encoding: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Read a covariate CSV into ``month[, unit], <covariates...>`` with float values.

    Returns the frame and notes for the build summary (e.g. ignored text columns).

    Raises
    ------
    DataError
        Naming the file, row, column and value: unparseable month, unknown unit,
        non-numeric value in a numeric column, duplicate month (and unit).
    """
    path = Path(path)
    table = read_table(path, encoding)
    frame = table.frame.set_axis(table.rownum)
    frame.columns = [c.strip() for c in frame.columns]
    lower = {c.lower(): c for c in frame.columns}
    if "month" not in lower:
        raise DataError(
            f"{path}: covariate file has no 'month' column; columns are {', '.join(frame.columns)}"
        )
    frame = frame.rename(columns={lower["month"]: "month", **({lower["unit"]: "unit"} if "unit" in lower else {})})
    broken = table.broken.set_axis(table.rownum)
    if (broken != "").any():
        n = broken.index[broken != ""][0]
        raise DataError(f"{path}, row {n}: {broken[n]}")

    months = parse_months(frame["month"])
    if months.isna().any():
        n = months.index[months.isna()][0]
        raise DataError(
            f"{path}, row {n}, column 'month': unparseable month {frame.at[n, 'month']!r} "
            "(expected YYYY-MM)"
        )
    out = pd.DataFrame({"month": months}, index=frame.index)
    keys = ["month"]
    if "unit" in frame:
        units = frame["unit"].map(gazetteer.match)
        if units.isna().any():
            n = units.index[units.isna()][0]
            raw = frame.at[n, "unit"]
            raise DataError(
                f"{path}, row {n}, column 'unit': unknown {gazetteer.unit_word} {raw!r}; "
                f"{gazetteer.suggest(raw)}"
            )
        out["unit"] = units
        keys.append("unit")

    notes: list[str] = []
    for col in frame.columns:
        if col in ("month", "unit"):
            continue
        if col.lower() in _RESERVED:
            raise DataError(f"{path}: covariate column {col!r} clashes with a panel column; rename it")
        text = frame[col].str.strip()
        values = pd.to_numeric(text.str.replace(",", "", regex=False), errors="coerce")
        filled = text != ""
        bad = filled & values.isna()
        # A column that is mostly text (e.g. a source label) is not a covariate; a column
        # that is mostly numbers with a few bad cells is a covariate with typos.
        if filled.any() and bad.sum() > filled.sum() / 2:
            notes.append(f"covariate file column {col!r} is text, not numbers: not used")
            continue
        if bad.any():
            n = bad.index[bad][0]
            raise DataError(
                f"{path}, row {n}, column {col!r}: {frame.at[n, col]!r} is not a number"
            )
        huge = filled & values.notna() & ~(values.abs() <= COVARIATE_BOUND)
        if huge.any():
            n = huge.index[huge][0]
            raise DataError(
                f"{path}, row {n}, column {col!r}: {frame.at[n, col]!r} is not a finite number within "
                f"+/-{COVARIATE_BOUND:.0e} (covariates are levels and counts; inf would move every forecast)"
            )
        out[col] = values.astype(float)

    dup = out.duplicated(keys, keep=False)
    if dup.any():
        rows = list(out.index[dup][:2])
        raise DataError(
            f"{path}, rows {rows[0]} and {rows[1]}: the same {' and '.join(keys)} appears twice"
        )
    if len(out.columns) == len(keys):
        raise DataError(f"{path}: no numeric covariate columns besides {', '.join(keys)}")
    return out.reset_index(drop=True), notes


def attach_covariates(
    panel: pd.DataFrame, covariates: pd.DataFrame, *, fill: str | Mapping[str, str] = "error",
    source: str = "covariates",
) -> pd.DataFrame:
    """Join covariates onto a panel (``unit, month, ...``), applying the fill policy (one for all,
    or per covariate: :func:`fill_policy`).

    Raises
    ------
    DataError
        When a covariate has missing months under the ``error`` policy (or before its first
        value under ``ffill``), naming the covariate and the first missing months.
    """
    names = [c for c in covariates.columns if c not in ("month", "unit")]
    for policy in {fill_policy(fill, n) for n in names}:
        if policy not in FILL_POLICIES:
            raise DataError(f"unknown fill policy {policy!r}; choose one of {', '.join(FILL_POLICIES)}")
    clash = [c for c in names if c in panel.columns]
    if clash:
        raise DataError(f"{source}: covariate(s) {', '.join(clash)} already in the panel")
    keys = ["unit", "month"] if "unit" in covariates else ["month"]
    merged = panel.merge(covariates, on=keys, how="left", validate="many_to_one")
    merged = merged.sort_values(["unit", "month"]).reset_index(drop=True)
    for name in names:
        series = merged[name]
        policy = fill_policy(fill, name)
        if policy == "linear":
            series = series.groupby(merged["unit"]).transform(lambda s: s.interpolate(limit_area="inside"))
        if policy in ("ffill", "ffill-zero", "linear"):
            series = series.groupby(merged["unit"]).ffill()
        if policy in ("zero", "ffill-zero"):
            series = series.fillna(0.0)
        merged[name] = series
        missing = merged.loc[series.isna(), "month"].drop_duplicates().sort_values()
        if len(missing) and policy not in ("keep", "linear"):
            shown = ", ".join(str(m) for m in missing[:6]) + (" ..." if len(missing) > 6 else "")
            hint = (
                "months before its first value cannot be forward-filled; "
                "use --fill ffill-zero or --fill keep"
                if policy == "ffill"
                else "choose a fill policy with --fill (" + ", ".join(FILL_POLICIES) + ")"
            )
            raise DataError(
                f"{source}, column {name!r}: no value for {len(missing)} panel month(s): "
                f"{shown}; {hint}"
            )
    return merged


#: Longest run of filled months (after the last observation, or between two) before the build warns.
FILL_WARN_MONTHS = 3


def _runs(months: list[pd.Period]) -> list[tuple[pd.Period, pd.Period]]:
    """Consecutive stretches ``(first, last)`` of sorted months."""
    runs: list[list[pd.Period]] = []
    for m in months:
        if runs and m == runs[-1][1] + 1:
            runs[-1][1] = m
        else:
            runs.append([m, m])
    return [(a, b) for a, b in runs]


def covariate_staleness(covariates: pd.DataFrame, months: pd.PeriodIndex, *,
                        fill: str | Mapping[str, str]) -> dict[str, dict]:
    """Per covariate: its last observed month and the panel months that have no observation.

    ``covariates`` is :func:`read_covariates` output; ``months`` the panel's months. A month
    counts as observed when the file gives a value for it (for every unit, when the file has
    a ``unit`` column). The other months are filled by the fill policy (or left empty under
    ``keep``): recorded as stretches ``[first, last]`` so a report can mark them, and so that
    a value carried forward for years is never mistaken for data.

    Returns
    -------
    dict
        ``{column: {"last_observed": "YYYY-MM" | None, "filled": [["YYYY-MM", "YYYY-MM"], ...],
        "filled_months": int, "longest_fill": int, "fill": policy}}``
    """
    names = [c for c in covariates.columns if c not in ("month", "unit")]
    out: dict[str, dict] = {}
    n_units = covariates["unit"].nunique() if "unit" in covariates else 1
    for name in names:
        have = covariates.loc[covariates[name].notna()]
        counts = have.groupby("month").size() if len(have) else pd.Series(dtype=int)
        observed = set(counts.index[counts >= n_units]) & set(months)
        missing = [m for m in months if m not in observed]
        runs = _runs(missing)
        out[name] = {
            "last_observed": str(max(observed)) if observed else None,
            "filled": [[str(a), str(b)] for a, b in runs],
            "filled_months": len(missing),
            "longest_fill": max((len(pd.period_range(a, b, freq="M")) for a, b in runs), default=0),
            "fill": "left empty" if fill_policy(fill, name) == "keep" else fill_policy(fill, name),
        }
    return out


def observed_months(staleness: dict[str, dict], months: pd.PeriodIndex) -> dict[str, list[str]]:
    """Covariate -> its months with a recorded value, for the covariates filled ``linear`` (a forecast
    at origin T must not see the line towards a value recorded after T: see
    ``forecast.evaluation.backtest.history_at``)."""
    out = {}
    for name, info in staleness.items():
        if info.get("fill") != "linear":
            continue
        filled = {m for a, b in info["filled"] for m in pd.period_range(a, b, freq="M")}
        out[name] = [str(m) for m in months if m not in filled]
    return out


def staleness_warnings(staleness: dict[str, dict], *, limit: int = FILL_WARN_MONTHS) -> list[str]:
    """A warning for every covariate filled for more than ``limit`` months in a row.

    The stretch after the last observation comes first: it is what a forecast at the end of
    the panel is given as the covariate's current value.
    """
    out = []
    for name, info in staleness.items():
        if info["fill"] == "left empty" or info["longest_fill"] <= limit:
            continue
        runs = [(a, b, len(pd.period_range(a, b, freq="M"))) for a, b in info["filled"]]
        long = [r for r in runs if r[2] > limit]
        last = info["last_observed"]
        trailing = [r for r in long if last is None or pd.Period(r[0], freq="M") > pd.Period(last, freq="M")]
        parts = []
        if trailing:
            a, b, n = trailing[-1]
            parts.append(f"for the last {n} months of the panel, {a}..{b}, after its last observation "
                         f"({last or 'none'})")
        earlier = [r for r in long if r not in trailing[-1:]]
        if earlier:
            a, b, n = max(earlier, key=lambda r: r[2])
            parts.append(f"for {n} months in a row earlier, {a}..{b}"
                         + (f" (and {len(earlier) - 1} more stretch(es) over {limit} months)" if len(earlier) > 1 else ""))
        out.append(
            f"warning: covariate {name!r} is filled ({info['fill']}) " + "; and ".join(parts) + f", past the limit of "
            f"{limit} months. Filled values are not data: a model sees the same value carried on (or 0), and a "
            "scenario that moves it moves a number nobody recorded"
        )
    return out
