import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from diffad import IsolationForestDetector, KNNDetector, LOFDetector, PCADetector, RandomDetector
from diffad.data.scaling import standard_scale
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


def test_standard_scale_treats_a_channel_constant_up_to_rounding_as_constant():
    X = np.random.default_rng(0).normal(2.0, 3.0, size=(1000, 4))
    X[:, 1] = 0.1  # np.nanstd gives 1.4e-17 here, not 0: the mean of 1000 copies of 0.1 is not 0.1
    X[:, 2] = np.nan
    X[:5, 3] = np.nan
    assert np.nanstd(X[:, 1]) > 0
    mean, scale = standard_scale(X)
    np.testing.assert_array_equal(scale[1:3], [1.0, 1.0])
    np.testing.assert_allclose(scale[[0, 3]], np.nanstd(X[:, [0, 3]], axis=0))
    np.testing.assert_allclose(mean[[0, 1, 3]], np.nanmean(X[:, [0, 1, 3]], axis=0))


@pytest.mark.parametrize("cls", [KNNDetector, LOFDetector])
def test_a_reading_off_a_constant_channel_does_not_outweigh_every_other_channel(cls):
    """A sensor that read 0.1 throughout training and 0 once in the test: a small change in raw units, not
    a deviation of 1e15 that ranks it above a row five standard deviations off in a varying channel."""
    rng = np.random.default_rng(0)
    train = rng.normal(size=(1000, 4))
    train[:, 1] = 0.1
    test = np.zeros((2, 4))
    test[:, 1] = 0.1
    test[0, 1] = 0.0  # off the constant channel by 0.1
    test[1, 0] = 5.0  # five standard deviations off in channel 0
    s = cls().fit(train).decision_function(test)
    assert np.isfinite(s).all() and s[1] > s[0]
