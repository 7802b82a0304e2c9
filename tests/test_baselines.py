import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from diffad import IsolationForestDetector, KNNDetector, LOFDetector, PCADetector, RandomDetector
from diffad.data.synthetic import make_series

ALL = [RandomDetector, PCADetector, IsolationForestDetector, KNNDetector, LOFDetector]


@pytest.fixture(scope="module")
def series():
    return make_series(
        n_train=1500, n_test=1500, n_channels=5, n_anomalies=8, kinds=("spike", "level_shift"), seed=0
    )


@pytest.mark.parametrize("cls", ALL)
def test_contract(cls, series):
    det = cls()
    assert clone(det).get_params() == det.get_params()
    assert det.fit(series.train) is det
    for attr in ("n_features_in_", "decision_scores_", "threshold_", "labels_", "history_", "device_"):
        assert hasattr(det, attr), attr
    s = det.decision_function(series.test)
    assert s.dtype == np.float64 and s.shape == (1500,)
    p = det.predict(series.test)
    assert set(np.unique(p)) <= {0, 1}
    np.testing.assert_array_equal(p, (s > det.threshold_).astype(int))
    assert abs(det.labels_.mean() - 0.01) < 0.02  # contamination on the training data


@pytest.mark.parametrize("cls", [PCADetector, IsolationForestDetector, KNNDetector, LOFDetector])
def test_baselines_find_obvious_anomalies(cls, series):
    s = cls().fit(series.train).decision_function(series.test)
    assert roc_auc_score(series.labels, s) > 0.7
