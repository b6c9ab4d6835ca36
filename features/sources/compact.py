"""Text columns of millions of events kept small: categoricals, and work done once per distinct value.

An event export repeats a few thousand values in each column (dates, unit spellings, sides,
event types) over millions of rows. Held as categoricals, a column costs one or two bytes a
row; a check or a clean-up of its text (strip, parse a date or a number) runs once per
distinct value (:func:`per_value`) and is spread to the rows by their codes. Event ids,
different in every row, stay pyarrow-backed strings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api.types import union_categoricals

__all__ = ["compact_text", "concat_compact", "first_occurrence", "per_value", "sorted_categories", "spread"]


def per_value(values: pd.Series, fn: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """``fn(values)`` for a categorical column, computed once per category and spread to the rows.

    ``fn`` must treat each value on its own (strip, parse, look up). Text results come back
    categorical; other results as the arrays ``fn`` made. A column that is not categorical is
    given to ``fn`` as it is.
    """
    if not isinstance(values.dtype, pd.CategoricalDtype):
        return fn(values)
    return spread(fn(pd.Series(values.cat.categories)), values)


def spread(per_category: pd.Series, values: pd.Series) -> pd.Series:
    """Results per category of ``values`` (in category order) as one result per row of ``values``."""
    codes = values.cat.codes.to_numpy()
    if per_category.dtype == object or pd.api.types.is_string_dtype(per_category.dtype):
        new, uniques = pd.factorize(per_category, use_na_sentinel=True)
        rows = np.where(codes >= 0, new[np.maximum(codes, 0)], -1) if len(new) else np.full(len(codes), -1)
        return pd.Series(pd.Categorical.from_codes(rows, categories=pd.Index(uniques, dtype=per_category.dtype)),
                         index=values.index)
    # A fill (for rows of no category) would turn booleans into objects: only asked for when needed.
    return pd.Series(per_category.array.take(codes, allow_fill=bool(len(codes)) and codes.min() < 0),
                     index=values.index)


def first_occurrence(values: pd.Series) -> np.ndarray | None:
    """For each row, the position of the first row with the same value; None when no value repeats.

    By a stable sort (pyarrow's), not a hash table of millions of strings.
    """
    if len(values) < 2:
        return None
    array = pa.array(values.array)
    order = pc.sort_indices(array)
    ordered = array.take(order)
    same = pc.equal(ordered[1:], ordered[:-1]).to_numpy(zero_copy_only=False)
    if not same.any():
        return None
    starts = np.concatenate([[True], ~same])
    order = order.to_numpy()
    first = np.empty(len(values), dtype=np.int64)
    # Within a run of equal values the stable sort keeps file order: its first is the first row.
    first[order] = order[starts][np.cumsum(starts) - 1]
    return first


def compact_text(frame: pd.DataFrame, keep: Sequence[str] = ()) -> pd.DataFrame:
    """``frame`` with every text column categorical, except those in ``keep``."""
    return frame.assign(**{c: frame[c].astype("category") for c in frame.columns if c not in keep})


def concat_compact(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Stack frames of :func:`compact_text` (the same columns); categoricals are united, not widened to text.

    Empties ``frames`` as it goes, a column at a time, so that the parts and the whole are not
    all in memory at once.
    """
    if len(frames) == 1:
        return frames.pop()
    index = frames[0].index.append([f.index for f in frames[1:]])
    names = list(frames[0].columns)
    columns = {}
    for c in names:
        parts = [f.pop(c) for f in frames]
        columns[c] = pd.Series(union_categoricals(parts) if isinstance(parts[0].dtype, pd.CategoricalDtype)
                               else pd.concat(parts, ignore_index=True).array, index=index)
        del parts
    frames.clear()
    return pd.DataFrame(columns, index=index, copy=False)


def sorted_categories(frame: pd.DataFrame) -> pd.DataFrame:
    """Every categorical column with only the categories it uses, in sorted order.

    Two reads of the same events then give equal frames, whatever rows the files held besides
    them and in whatever chunks they were read.
    """
    out = {}
    for c in frame.columns:
        s = frame[c]
        if isinstance(s.dtype, pd.CategoricalDtype):
            used = s.cat.remove_unused_categories()
            out[c] = used.cat.reorder_categories(sorted(used.cat.categories))
    return frame.assign(**out) if out else frame
