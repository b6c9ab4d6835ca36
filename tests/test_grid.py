"""The unit x month grid by positions (features/grid.py): events placed by unit code and month ordinal,
summed exactly, and the same panel whether the events' units are text or categorical."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.grid import grid_sums, month_positions, unit_positions
from features.panel import events_to_panel
from features.sources.base import MAX_COUNT

UNITS = ["Anbar", "Basra", "Ninewa"]
MONTHS = pd.period_range("2020-01", "2020-03", freq="M")


def _events(unit_dtype) -> pd.DataFrame:
    return pd.DataFrame({
        "unit": pd.Series(["Basra", "Anbar", "Basra", "Atlantis", "Ninewa", "Basra"], dtype=unit_dtype),
        "date": pd.to_datetime(["2020-01-31", "2020-03-01", "2020-01-02", "2020-02-02", "2019-12-31", "2020-03-31"]),
        "count": [1, 2, 3, 4, 5, 6],
        "deaths": [10, 0, 1, 7, 9, MAX_COUNT],
    })


def test_events_fall_in_the_cell_of_their_unit_and_month_and_the_rest_is_zero():
    panel = events_to_panel(_events(str), UNITS, MONTHS)
    assert panel["unit"].tolist() == [u for u in UNITS for _ in MONTHS]
    assert panel["month"].tolist() == list(MONTHS) * len(UNITS)
    assert panel["incidents"].tolist() == [0, 0, 2, 4, 0, 6, 0, 0, 0]  # Atlantis and 2019-12 are outside
    assert panel["deaths"].tolist() == [0, 0, 0, 11, 0, MAX_COUNT, 0, 0, 0]
    assert panel["incidents"].dtype == "int64" and panel["month"].dtype == "period[M]"


def test_categorical_units_give_the_panel_of_text_units():
    categorical = pd.CategoricalDtype(["Ninewa", "Basra", "Atlantis", "Anbar", "Kirkuk"])
    pd.testing.assert_frame_equal(events_to_panel(_events(categorical), UNITS, MONTHS),
                                  events_to_panel(_events(str), UNITS, MONTHS))


def test_positions_are_minus_one_outside_the_grid():
    events = _events(str)
    assert unit_positions(events["unit"], UNITS).tolist() == [1, 0, 1, -1, 2, 1]
    assert month_positions(events["date"], MONTHS).tolist() == [0, 2, 0, 1, -1, 2]
    assert month_positions(pd.Series(pd.to_datetime([None, "2020-02-29"])), MONTHS).tolist() == [-1, 1]


def test_integer_sums_are_exact_beyond_float_precision():
    rows = np.zeros(3, dtype=np.int64)
    big = np.array([2**53, 1, 1], dtype=np.int64)
    assert grid_sums(rows, rows, big, (1, 1))[0, 0] == 2**53 + 2
