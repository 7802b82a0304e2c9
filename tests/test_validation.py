import numpy as np
import pandas as pd
import pytest
import torch

from diffad import DataValidationError, NotFittedError, PCADetector
from diffad.validation import check_array, check_labels, check_n_features, check_option, check_window


def test_accepts_numpy_pandas_torch_and_lists():
    X = np.arange(12.0).reshape(6, 2)
    for obj in (X, pd.DataFrame(X), torch.tensor(X), X.tolist()):
        arr, _ = check_array(obj)
        assert arr.dtype == np.float64 and arr.shape == (6, 2)


def test_datetime_index_is_returned():
    idx = pd.date_range("2024-01-01", periods=4, freq="min")
    arr, index = check_array(pd.DataFrame({"a": [1.0, 2, 3, 4]}, index=idx))
    assert index.equals(idx)


def test_wrong_rank():
    with pytest.raises(
        DataValidationError, match=r"expected a 2-D array.*got a 3-D array of shape \(2, 3, 4\)"
    ):
        check_array(np.zeros((2, 3, 4)))


def test_empty():
    with pytest.raises(DataValidationError, match=r"expected at least one row.*got shape \(0, 3\)"):
        check_array(np.zeros((0, 3)))


def test_shorter_than_window():
    with pytest.raises(DataValidationError, match=r"expected at least window=100 time points, got 50"):
        check_window(50, 100)


def test_feature_count_differs_from_fit():
    with pytest.raises(DataValidationError, match=r"expected 5 channel\(s\), as seen in fit, got 3"):
        check_n_features(3, 5)
    det = PCADetector().fit(np.random.default_rng(0).normal(size=(50, 4)))
    with pytest.raises(DataValidationError, match="expected 4 channel"):
        det.decision_function(np.zeros((10, 3)))


def test_non_numeric_columns():
    df = pd.DataFrame({"a": [1.0, 2.0], "host": ["x", "y"]})
    with pytest.raises(
        DataValidationError, match=r"expected numeric columns only, got non-numeric column\(s\) \['host'\]"
    ):
        check_array(df)
    with pytest.raises(DataValidationError, match="expected numeric data"):
        check_array(np.array([["a", "b"], ["c", "d"]]))


def test_infinities():
    X = np.ones((5, 2))
    X[2, 1] = np.inf
    with pytest.raises(DataValidationError, match=r"expected finite values.*got infinities at \[\[2, 1\]\]"):
        check_array(X)


def test_nan_rejected_unless_allowed_and_all_nan_channel_always_rejected():
    X = np.random.default_rng(0).normal(size=(5, 3))
    X[1, 0] = np.nan
    with pytest.raises(DataValidationError, match=r"expected no missing values.*got 1 NaN"):
        check_array(X)
    arr, _ = check_array(X, allow_nan=True)
    assert np.isnan(arr[1, 0])
    X[:, 2] = np.nan
    with pytest.raises(
        DataValidationError,
        match=r"expected every channel to have at least one observed value, got all-NaN channel\(s\) at column index \[2\]",
    ):
        check_array(X, allow_nan=True)


def test_all_constant_data():
    with pytest.raises(
        DataValidationError, match="expected at least one channel that varies, got all channels constant"
    ):
        check_array(np.ones((10, 3)), reject_constant=True)
    check_array(np.c_[np.ones(10), np.arange(10.0)], reject_constant=True)  # one constant channel is fine


def test_labels_wrong_length_and_values():
    with pytest.raises(DataValidationError, match=r"expected 10 \(one per row of the data\), got 9"):
        check_labels(np.zeros(9), 10)
    with pytest.raises(DataValidationError, match=r"expected only 0 and 1, got values \[0.0, 2.0\]"):
        check_labels(np.array([0, 2, 0]), 3)


def test_unknown_option_lists_valid_ones():
    with pytest.raises(DataValidationError, match=r"expected one of \['mean', 'central'\], got 'median'"):
        check_option("median", ["mean", "central"], name="rule")


def test_not_fitted():
    with pytest.raises(NotFittedError, match="not fitted yet"):
        PCADetector().decision_function(np.zeros((3, 2)))
    assert issubclass(NotFittedError, ValueError)
