"""The detector contract (``../shared/DESIGN.md`` section 2), checked on every registered detector.

A new detector gets this battery by registering; its ``_test_params()`` keeps the battery cheap.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone

import diffad
from diffad import DataValidationError, NotFittedError
from diffad.data.synthetic import make_series
from diffad.detectors.base import registry

CLASSES = sorted(registry().values(), key=lambda c: c.__name__)


@pytest.fixture(scope="module")
def series():
    return make_series(n_train=400, n_test=200, n_channels=4, n_anomalies=3, seed=0)


def make(cls, **kw):
    return cls(**{**cls._test_params(), **kw})


@pytest.fixture(scope="module", params=CLASSES, ids=lambda c: c.__name__)
def fitted(request, series):
    cls = request.param
    return cls, make(cls).fit(series.train)


def test_fit_sets_the_fitted_attributes_and_scores_are_float64_per_point(fitted, series):
    cls, det = fitted
    for attr in ("n_features_in_", "decision_scores_", "threshold_", "labels_", "history_", "device_"):
        assert hasattr(det, attr), attr
    s, p = det.decision_function(series.test), det.predict(series.test)
    assert s.dtype == np.float64 and s.shape == (200,) and np.isfinite(s).all()
    assert p.shape == (200,) and set(np.unique(p)) <= {0, 1}
    assert det.n_features_in_ == 4


def test_clone_and_get_params(fitted):
    cls, det = fitted
    fresh = clone(det)
    assert fresh.get_params() == det.get_params() and not hasattr(fresh, "threshold_")


def test_same_seed_same_scores_bit_for_bit(fitted, series):
    cls, det = fitted
    again = make(cls).fit(series.train)
    np.testing.assert_array_equal(again.decision_function(series.test), det.decision_function(series.test))


def test_save_and_load_give_the_same_scores(fitted, series, tmp_path):
    cls, det = fitted
    det.save(tmp_path / "m")
    back = diffad.load(tmp_path / "m")
    assert type(back) is cls and back.get_params() == det.get_params()
    np.testing.assert_array_equal(back.decision_function(series.test), det.decision_function(series.test))
    np.testing.assert_array_equal(back.predict(series.test), det.predict(series.test))


def test_not_fitted_and_wrong_feature_count(fitted, series):
    cls, det = fitted
    with pytest.raises(NotFittedError):
        make(cls).decision_function(series.test)
    with pytest.raises(DataValidationError, match="channel"):
        det.decision_function(series.test[:, :3])


def test_the_callers_random_streams_are_untouched(fitted, series, tmp_path):
    cls, det = fitted
    torch.manual_seed(7)
    np.random.seed(7)
    expected_torch, expected_np = torch.rand(3), np.random.rand(3)
    torch.manual_seed(7)
    np.random.seed(7)
    make(cls).fit(series.train).decision_function(series.test)
    det.save(tmp_path / "m")
    diffad.load(tmp_path / "m")
    assert torch.equal(torch.rand(3), expected_torch) and np.array_equal(np.random.rand(3), expected_np)


def test_pandas_in_pandas_out(fitted, series):
    cls, det = fitted
    idx = pd.date_range("2024-01-01", periods=200, freq="min")
    frame = pd.DataFrame(series.test, index=idx)
    s, p = det.decision_function(frame), det.predict(frame)
    assert (
        isinstance(s, pd.Series) and s.index.equals(idx) and isinstance(p, pd.Series) and p.index.equals(idx)
    )
    np.testing.assert_array_equal(s.to_numpy(), det.decision_function(series.test))


def test_nan_is_data_where_declared_and_an_error_elsewhere(fitted, series):
    cls, det = fitted
    holed = series.test.copy()
    holed[10:20, 1] = np.nan
    if cls._allow_nan:
        assert np.isfinite(det.decision_function(holed)).all()
    else:
        with pytest.raises(DataValidationError, match="NaN"):
            det.decision_function(holed)


def test_events_cover_exactly_the_flagged_points(fitted, series):
    # with no merging and no dropping, the events are the runs of predict's flags, on the same index
    from diffad.events import EventRules

    cls, det = fitted
    idx = pd.date_range("2024-01-01", periods=200, freq="min")
    frame = pd.DataFrame(series.test, index=idx)
    ev = det.events(frame, EventRules(merge_gap=0, min_duration=1))
    flags = np.asarray(det.predict(frame))
    assert ev["n_flagged"].sum() == flags.sum() == ev["duration"].sum()
    assert all(flags[s : e + 1].all() for s, e in zip(ev["start_pos"], ev["end_pos"], strict=True))
    assert list(ev["start"]) == [idx[s] for s in ev["start_pos"]]
    if len(ev):
        assert np.isfinite(ev["severity"]).all() and set(ev["grade"]) <= {"low", "medium", "high"}


@pytest.mark.parametrize("rule", ["contamination", "pot", "spot", "dspot"])
def test_every_threshold_rule_on_the_score_scale(rule, series):
    # threshold_ is on the score scale and labels_ are the training scores above it, for every rule;
    # the streaming rules decide along the series, starting from threshold_
    for cls in CLASSES:
        if "threshold" not in cls().get_params():
            continue  # ImDiffusion decides by its step-ensemble vote (vote_ratio, vote_xi)
        det = make(cls, threshold=rule).fit(series.train)
        s = np.asarray(det.decision_scores_)
        assert np.isfinite(det.threshold_), cls.__name__
        np.testing.assert_array_equal(det.labels_, (s > det.threshold_).astype(int), err_msg=cls.__name__)
        p = np.asarray(det.predict(series.test))
        if rule in ("contamination", "pot"):
            np.testing.assert_array_equal(
                p, (det.decision_function(series.test) > det.threshold_).astype(int)
            )
        assert set(np.unique(p)) <= {0, 1}


def test_contamination_auto_and_bad_threshold_values_are_clear_errors(series):
    from diffad.thresholds import auto_threshold

    det = make(diffad.PCADetector, contamination="auto").fit(series.train)
    assert det.threshold_ == auto_threshold(det.decision_scores_)
    for kw, message in [
        (dict(threshold="otsu"), "threshold"),
        (dict(contamination="lots"), "contamination"),
        (dict(contamination=0.7), "contamination"),
    ]:
        with pytest.raises(DataValidationError, match=message):
            make(diffad.PCADetector, **kw).fit(series.train)
