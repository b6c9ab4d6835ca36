"""The statistical models' shared pieces (``forecast/models/common.py``): the censored normal
summary against simulation."""

from __future__ import annotations

import numpy as np
import pytest

from forecast.models.common import censored_normal_summary
from forecast.schema import QUANTILES


@pytest.mark.parametrize("log1p", [True, False])
def test_censored_normal_summary_matches_simulation(log1p):
    m, v = np.array([0.3, 1.5, -0.5]), np.array([0.8, 0.2, 1.0])
    mean, quantiles = censored_normal_summary(m, v, log1p)
    draws = np.random.default_rng(0).normal(m, np.sqrt(v), size=(400_000, 3))
    draws = np.maximum(np.expm1(draws) if log1p else draws, 0.0)
    np.testing.assert_allclose(mean, draws.mean(axis=0), rtol=0.01)
    np.testing.assert_allclose(quantiles, np.quantile(draws, QUANTILES, axis=0).T, rtol=0.02, atol=0.01)
