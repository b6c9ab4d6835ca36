"""The signature of a logged forecaster, declared from the frames' dtypes.

MLflow's ``infer_signature`` warns on every integer column ("integer columns cannot represent
missing values"). Counts (``y``) and ``horizon`` are whole numbers that are never missing in
a history or a forecast (a panel has every month, zeros explicit), so they are declared
``long`` outright rather than inferred. (Declaring ``y`` as ``double`` instead would make
MLflow refuse every integer history: it does not convert int64 to float64.)
"""

from __future__ import annotations

import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

__all__ = ["forecaster_signature", "frame_schema"]


def _type(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_integer_dtype(series):
        return "long"
    if pd.api.types.is_float_dtype(series):
        return "double"
    return "string"


def frame_schema(frame: pd.DataFrame) -> Schema:
    """One column spec per column, typed from its dtype (text and anything else as string)."""
    return Schema([ColSpec(_type(frame[c]), str(c)) for c in frame.columns])


def forecaster_signature(example: pd.DataFrame, output: pd.DataFrame, horizon: int) -> ModelSignature:
    """Input and output schemas of a forecaster, and its ``horizon`` parameter (default ``horizon``)."""
    return ModelSignature(inputs=frame_schema(example), outputs=frame_schema(output),
                          params=ParamSchema([ParamSpec("horizon", "long", int(horizon))]))
