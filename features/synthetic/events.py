"""Event expansion: the simulated panel as one UCDP GED-style row per incident.

Dyads by period, spellings of ``adm_1``, the split of a unit-month's deaths among its events
(:func:`allocate`) and :func:`simulate_events`. The rules are in the docstring of
:mod:`features.synthetic.config` ("Event expansion").
"""

from __future__ import annotations

import difflib
import os
import re

import numpy as np
import pandas as pd

from features.gazetteer import Gazetteer, normalise_name, split_list
from features.synthetic.config import SyntheticConfig
from features.synthetic.process import (
    STREAM_EVENTS,
    Simulation,
    covariates_frame,
    simulate,
    stream_rng,
)

#: Column layout of the events frame and of ``ucdp_ged_demo.csv`` (a subset of the GED
#: codebook columns, in codebook order).
UCDP_GED_COLUMNS = (
    "id",
    "year",
    "active_year",
    "type_of_violence",
    "conflict_new_id",
    "conflict_name",
    "dyad_new_id",
    "dyad_name",
    "side_a_new_id",
    "side_a",
    "side_b_new_id",
    "side_b",
    "number_of_sources",
    "source_article",
    "where_prec",
    "where_coordinates",
    "adm_1",
    "adm_2",
    "latitude",
    "longitude",
    "geom_wkt",
    "priogrid_gid",
    "country",
    "country_id",
    "iso3",
    "region",
    "event_clarity",
    "date_prec",
    "date_start",
    "date_end",
    "deaths_a",
    "deaths_b",
    "deaths_civilians",
    "deaths_unknown",
    "low",
    "best",
    "high",
)


# (type_of_violence, first year, last year, weight, conflict_new_id, conflict_name, dyad_new_id,
#  dyad_name, side_a_new_id, side_a, side_b_new_id, side_b). Ids are UCDP's where the actor
# exists; UCDP codes al-Qaida in Iraq and IS as one actor (234), named here by period.
_DYADS = (
    (1, None, 2012, 0.70, 259, "Iraq: Government", 524, "Government of Iraq - al-Qaida in Iraq",
     116, "Government of Iraq", 234, "al-Qaida in Iraq"),
    (1, None, 2008, 0.20, 259, "Iraq: Government", 13891, "Government of Iraq - al-Mahdi Army",
     116, "Government of Iraq", 5659, "al-Mahdi Army"),
    (1, None, 2014, 0.10, 259, "Iraq: Government", 523, "Government of Iraq - Ansar al-Islam",
     116, "Government of Iraq", 233, "Ansar al-Islam"),
    (1, 2013, None, 0.95, 259, "Iraq: Government", 524, "Government of Iraq - IS",
     116, "Government of Iraq", 234, "IS"),
    (2, None, 2012, 1.00, 4580, "Ansar al-Islam - PUK", 5190, "Ansar al-Islam - PUK",
     233, "Ansar al-Islam", 261, "PUK"),
    (2, 2013, None, 1.00, 13265, "IS - JRTN", 14152, "IS - JRTN", 234, "IS", 4359, "JRTN"),
    (3, None, 2012, 0.80, 506, "al-Qaida in Iraq - Civilians", 973, "al-Qaida in Iraq - Civilians",
     234, "al-Qaida in Iraq", 1, "Civilians"),
    (3, None, 2008, 0.20, 13132, "al-Mahdi Army - Civilians", 13943, "al-Mahdi Army - Civilians",
     5659, "al-Mahdi Army", 1, "Civilians"),
    (3, 2013, None, 1.00, 506, "IS - Civilians", 973, "IS - Civilians", 234, "IS", 1, "Civilians"),
)
_DYAD_FIELDS = (
    "conflict_new_id", "conflict_name", "dyad_new_id", "dyad_name",
    "side_a_new_id", "side_a", "side_b_new_id", "side_b",
)
# Share of an event's deaths that are (side a, side b, civilians, unknown), by type.
_DEATH_SHARES = {1: (0.30, 0.40, 0.15, 0.15), 2: (0.45, 0.45, 0.0, 0.10), 3: (0.0, 0.0, 0.90, 0.10)}
# Country -> (iso3, country_id as Gleditsch-Ward code, region), as in the GED.
_COUNTRIES = {"Iraq": ("IRQ", 645, "Middle East")}
_OTHER_COUNTRY = ("SYN", 999, "Middle East")
_CODE = re.compile(r"[A-Z]+-?[0-9][A-Z0-9-]*")


def _localise(value: object, country: str) -> object:
    """A dyad field with the Iraqi government renamed to the gazetteer's country."""
    if country == "Iraq" or not isinstance(value, str):
        return value
    return value.replace("Government of Iraq", f"Government of {country}").replace(
        "Iraq: Government", f"{country}: Government"
    )


def _adm1_spellings(row) -> list[str]:
    """Spellings of a unit that a UCDP-like export could print as its province.

    The canonical name and the Latin-script aliases, without P-codes (``IQG01``) and without
    the capital city's names (``Ramadi``, ``Baquba``), which are not province names.
    """
    name_key = normalise_name(row.name)
    capital_key = normalise_name(row.capital) if str(row.capital).strip() else ""
    out: list[str] = []
    for spelling in [row.name, *split_list(row.aliases)]:
        words = str(spelling).split()
        # "Anbar province" and "Anbar" both become "Anbar"; " province" is appended later.
        while words and words[-1].lower() in ("province", "governorate"):
            words.pop()
        text = " ".join(words)
        key = normalise_name(text)
        # Only where the capital's name differs from the province's (Ramadi, not Basra).
        like_capital = (
            capital_key
            and capital_key != name_key
            and key != name_key
            and difflib.SequenceMatcher(None, key, capital_key).ratio() >= 0.85
        )
        if (
            not text
            or text in out
            or like_capital
            or _CODE.fullmatch(text)
            or any("\u0600" <= c <= "\u06ff" for c in text)  # Arabic script
        ):
            continue
        out.append(text)
    return out or [str(row.name)]


def allocate(totals: np.ndarray, group_of_event: np.ndarray, weights: np.ndarray,
              rng: np.random.Generator) -> np.ndarray:
    """Split each group's total among its events, multinomially with the given weights.

    ``group_of_event`` must be sorted and consecutive (0, 0, 1, 2, 2, 2, ...); ``totals`` has
    one entry per group. Returns one count per event; each group's counts sum to its total.
    """
    n_groups = len(totals)
    if n_groups == 0:
        return np.zeros(0, dtype=np.int64)
    group_sum = np.bincount(group_of_event, weights=weights, minlength=n_groups)
    frac = weights / group_sum[group_of_event]
    cum = np.cumsum(frac)
    first = np.searchsorted(group_of_event, np.arange(n_groups))
    before = np.concatenate([[0.0], cum])[first]
    # Position of each event's upper edge inside [g, g + 1); the last edge is exactly g + 1
    # so rounding can never hand an item to the next group.
    edge = group_of_event + (cum - before[group_of_event])
    last = np.r_[first[1:], len(group_of_event)] - 1
    edge[last] = np.arange(n_groups) + 1.0
    items = np.repeat(np.arange(n_groups), totals) + rng.random(int(totals.sum()))
    owner = np.searchsorted(edge, items, side="right")
    return np.bincount(owner, minlength=len(group_of_event)).astype(np.int64)


def _events_from_simulation(sim: Simulation, config: SyntheticConfig) -> pd.DataFrame:
    rng = stream_rng(config, STREAM_EVENTS)
    units = sim.units
    y = sim.incidents
    t_cell, i_cell = np.nonzero(y)  # month-major, then gazetteer order
    n_per_cell = y[t_cell, i_cell]
    deaths_cell = sim.deaths[t_cell, i_cell]
    n_events = int(n_per_cell.sum())
    cell = np.repeat(np.arange(len(t_cell)), n_per_cell)
    t_ev, i_ev = t_cell[cell], i_cell[cell]

    days_in_month = sim.months.days_in_month.to_numpy()
    day = 1 + (rng.random(n_events) * days_in_month[t_ev]).astype(np.int64)

    # Per-incident NB deaths conditioned on their sum are Dirichlet-multinomial: gamma weights,
    # then a multinomial split of the cell's total.
    weights = rng.gamma(config.deaths_dispersion, size=n_events)
    best = allocate(deaths_cell, cell, weights, rng)

    vtype = rng.choice(np.array([1, 2, 3]), size=n_events, p=np.asarray(config.violence_type_probs))
    year = sim.months.year.to_numpy()[t_ev]
    dyad = np.full(n_events, -1)
    # Years in which the set of active dyads changes; between two of them the candidates of a
    # violence type are fixed.
    cuts = sorted(
        {d[1] for d in _DYADS if d[1] is not None} | {d[2] + 1 for d in _DYADS if d[2] is not None}
    )
    bounds = [-np.inf, *cuts, np.inf]
    for v in (1, 2, 3):
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            span = (vtype == v) & (year >= lo) & (year < hi)
            if not span.any():
                continue
            cands = [
                j for j, d in enumerate(_DYADS)
                if d[0] == v and (d[1] is None or d[1] <= lo) and (d[2] is None or d[2] >= hi - 1)
            ]
            p = np.array([_DYADS[j][3] for j in cands])
            chosen = rng.choice(len(cands), size=int(span.sum()), p=p / p.sum())
            dyad[span] = np.array(cands)[chosen]

    # Deaths by side: sequential binomials with the type's shares.
    shares = np.array([_DEATH_SHARES[v] for v in (1, 2, 3)])[vtype - 1]  # (n_events, 4)
    parts = np.zeros((n_events, 4), dtype=np.int64)
    left = best.copy()
    remaining_share = np.ones(n_events)
    for k in range(3):
        p = np.divide(shares[:, k], remaining_share, out=np.zeros(n_events),
                      where=remaining_share > 1e-12)
        parts[:, k] = rng.binomial(left, np.clip(p, 0.0, 1.0))
        left -= parts[:, k]
        remaining_share -= shares[:, k]
    parts[:, 3] = left

    uncertain = rng.random(n_events) < 0.3
    low = np.where(uncertain, best - rng.binomial(best, 0.25), best)
    high = np.where(uncertain, best + rng.poisson(0.3 * best + 0.5), best)

    spellings = [_adm1_spellings(row) for row in units.itertuples(index=False)]
    n_spell = np.array([len(s) for s in spellings])
    offset = np.r_[0, np.cumsum(n_spell)[:-1]]
    flat = np.array([s for ss in spellings for s in ss], dtype=object)
    pick = offset[i_ev] + (rng.random(n_events) * n_spell[i_ev]).astype(np.int64)
    # UCDP itself writes some names with two spaces before "province" ("Maysān  province").
    sep = np.where(rng.random(n_events) < 0.1, "  ", " ").astype(object)
    adm_1 = flat[pick] + sep + "province"

    lat0 = pd.to_numeric(units["capital_lat"], errors="coerce").to_numpy(dtype=float)
    lon0 = pd.to_numeric(units["capital_lon"], errors="coerce").to_numpy(dtype=float)
    placeless = units["name"][np.isnan(lat0) | np.isnan(lon0)]
    if len(placeless):
        raise ValueError(
            "simulate_events places events around each unit's capital, but "
            f"{', '.join(map(str, placeless[:5]))} ha{'s' if len(placeless) == 1 else 've'} "
            "no capital_lat / capital_lon in the gazetteer"
        )
    lat = np.round(lat0[i_ev] + config.coordinate_jitter_deg * rng.standard_normal(n_events), 4)
    lon = np.round(lon0[i_ev] + config.coordinate_jitter_deg * rng.standard_normal(n_events), 4)
    # PRIO-GRID: 0.5-degree cells numbered row by row from (-90, -180), starting at 1.
    priogrid = (np.floor((lat + 90) / 0.5) * 720 + np.floor((lon + 180) / 0.5) + 1).astype(np.int64)
    where_prec = rng.choice(np.array([1, 2, 3]), size=n_events, p=[0.6, 0.25, 0.15])
    n_sources = 1 + rng.poisson(0.7, n_events)
    clarity = np.where(rng.random(n_events) < 0.95, 1, 2)

    country_names, country_of_unit = np.unique(units["country"].astype(str).to_numpy(),
                                               return_inverse=True)
    c_ev = country_of_unit[i_ev]
    info = [_COUNTRIES.get(c, _OTHER_COUNTRY) for c in country_names]

    # Sort by date, then unit, then draw order; ids follow that order so that "sorted by
    # date_start, then id" is the file order.
    order = np.lexsort((np.arange(n_events), i_ev, day, t_ev))
    month_str = np.asarray(sim.months.strftime("%Y-%m"), dtype=object)
    day_str = np.array([f"-{d:02d}" for d in range(32)], dtype=object)
    date = (month_str[t_ev] + day_str[day])[order]

    # (n_countries, n_dyads) per field: outside Iraq the government is the gazetteer's country.
    dyad_table = {
        f: np.array(
            [[_localise(d[4 + j], c) for d in _DYADS] for c in country_names],
            dtype=np.int64 if f.endswith("_id") else object,
        )
        for j, f in enumerate(_DYAD_FIELDS)
    }
    frame = {
        "id": config.first_event_id + np.arange(n_events, dtype=np.int64),
        "year": year[order],
        "active_year": np.ones(n_events, dtype=np.int64),
        "type_of_violence": vtype[order],
    }
    for f in _DYAD_FIELDS:
        frame[f] = dyad_table[f][c_ev, dyad][order]
    frame |= {
        "number_of_sources": n_sources[order],
        "source_article": "",
        "where_prec": where_prec[order],
        "where_coordinates": units["capital"].astype(str).to_numpy()[i_ev][order],
        "adm_1": adm_1[order],
        "adm_2": "",
        "latitude": lat[order],
        "longitude": lon[order],
        "geom_wkt": np.char.mod("POINT (%.4f ", lon[order]).astype(object)
        + np.char.mod("%.4f)", lat[order]).astype(object),
        "priogrid_gid": priogrid[order],
        "country": country_names.astype(object)[c_ev][order],
        "country_id": np.array([x[1] for x in info], dtype=np.int64)[c_ev][order],
        "iso3": np.array([x[0] for x in info], dtype=object)[c_ev][order],
        "region": np.array([x[2] for x in info], dtype=object)[c_ev][order],
        "event_clarity": clarity[order],
        "date_prec": np.ones(n_events, dtype=np.int64),
        "date_start": date,
        "date_end": date,
        "deaths_a": parts[order, 0],
        "deaths_b": parts[order, 1],
        "deaths_civilians": parts[order, 2],
        "deaths_unknown": parts[order, 3],
        "low": low[order],
        "best": best[order],
        "high": high[order],
    }
    return pd.DataFrame(frame, columns=list(UCDP_GED_COLUMNS))


def simulate_events(
    config: SyntheticConfig = SyntheticConfig(),
    gazetteer: Gazetteer | pd.DataFrame | str | os.PathLike | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate the panel and expand it into one UCDP GED-style row per incident.

    Parameters
    ----------
    config : SyntheticConfig
    gazetteer : Gazetteer, DataFrame, path or None
        As for :func:`simulate_panel`.

    Returns
    -------
    events : pandas.DataFrame
        Columns :data:`UCDP_GED_COLUMNS`, sorted by ``date_start`` then ``id``. Grouped by
        unit (``adm_1`` matched through the gazetteer) and month of ``date_start``, the event
        count and the sum of ``best`` equal ``incidents`` and ``deaths`` of
        :func:`simulate_panel` for the same arguments.
    covariates : pandas.DataFrame
        As for :func:`simulate_panel`.
    """
    sim = simulate(config, gazetteer)
    return _events_from_simulation(sim, config), covariates_frame(sim)

