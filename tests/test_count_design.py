"""The direct count models' design (``forecast/models/count_design.py``): features computed by
hand and prefix invariant, neighbour weights from the unit graph."""

from __future__ import annotations

import numpy as np

from features.gazetteer import load_gazetteer
from forecast.models.count_design import DIRECT_FEATURES, direct_features, neighbour_weights


def test_direct_features_hand_computed():
    counts = np.array([[0, 4], [2, 0], [1, 3], [5, 1]], dtype=float)  # 4 months x 2 units
    weights = np.array([[0.0, 1.0], [1.0, 0.0]])  # each unit's neighbour is the other
    covariates = np.arange(8, dtype=float).reshape(4, 2, 1)
    features = direct_features(counts, weights, covariates)
    assert features.shape == (4, 2, len(DIRECT_FEATURES) + 1)
    t, unit = 3, 0  # month 3 of unit 0: y = 5, previous 1, 2, 0
    np.testing.assert_allclose(
        features[t, unit],
        np.log1p([5, (1 + 5 + 2) / 3, (0 + 2 + 1 + 5) / 4, 1, 6]).tolist() + [6.0],
    )
    np.testing.assert_allclose(features[0, 1, :3], np.log1p([4, 4, 4]))  # short windows at the start


def test_direct_features_are_prefix_invariant(history):
    counts = history.pivot(index="month", columns="unit", values="y").to_numpy(dtype=float)
    weights, _ = neighbour_weights(sorted(history["unit"].unique()), load_gazetteer().neighbours())
    covariates = np.zeros((len(counts), counts.shape[1], 0))
    full = direct_features(counts, weights, covariates)
    cut = direct_features(counts[:40], weights, covariates[:40])
    np.testing.assert_array_equal(full[:40], cut)


def test_neighbours_come_from_the_unit_graph_or_fall_back_to_the_national_mean():
    weights, source = neighbour_weights(["Duhok", "Erbil", "Ninewa", "Atlantis"], load_gazetteer().neighbours())
    assert source == {"Duhok": "neighbours", "Erbil": "neighbours", "Ninewa": "neighbours",
                      "Atlantis": "national mean"}
    _, alone = neighbour_weights(["Duhok", "Erbil"])
    assert alone == {"Duhok": "national mean", "Erbil": "national mean"}
    np.testing.assert_allclose(weights[0], [0, 0.5, 0.5, 0])  # Duhok borders Erbil and Ninewa
    np.testing.assert_allclose(weights[3], [0.25] * 4)
