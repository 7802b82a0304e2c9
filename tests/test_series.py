import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diffad import DataValidationError
from diffad.data.scaling import make_scaler
from diffad.data.series import reassemble, sliding_windows, time_split, window_starts


def test_windows_cover_every_point_and_match_slices():
    X = np.arange(23 * 2, dtype=float).reshape(23, 2)
    W, starts = sliding_windows(X, window=10, stride=4)
    assert W.shape == (len(starts), 10, 2)
    assert starts[-1] == 13  # last window aligned to the end
    for w, s in zip(W, starts, strict=True):
        np.testing.assert_array_equal(w, X[s : s + 10])


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(10, 300),
    window=st.integers(2, 10),
    stride_frac=st.floats(0.1, 1.0),
    rule=st.sampled_from(["mean", "central"]),
)
def test_reassemble_of_identity_windows_gives_back_the_series(n, window, stride_frac, rule):
    x = np.random.default_rng(n).normal(size=n)
    stride = max(1, int(window * stride_frac))
    W, starts = sliding_windows(x[:, None], window, stride)
    np.testing.assert_allclose(reassemble(W[..., 0], starts, n, rule=rule), x)


def test_central_rule_keeps_central_half_with_half_stride():
    L, n = 8, 24
    starts = window_starts(n, L, L // 2)  # 0, 4, 8, 12, 16
    vals = np.repeat(np.arange(len(starts), dtype=float)[:, None], L, axis=1)  # window id everywhere
    out = reassemble(vals, starts, n, rule="central")
    # point 7 lies at offset 7 of window 0 (centre 3.5) and offset 3 of window 1 (centre 7.5): window 1
    # window 1 keeps its central half, offsets 2..5 = points 6..9
    assert (
        out[6] == 1
        and out[9] == 1
        and out[5] == 0
        and out[10] == 2
        and out[2] == 0
        and out[23] == len(starts) - 1
    )


def test_mean_rule_averages_overlaps():
    starts = np.array([0, 2])
    vals = np.array([[1.0, 1, 1, 1], [3.0, 3, 3, 3]])
    np.testing.assert_allclose(reassemble(vals, starts, 6, rule="mean"), [1, 1, 2, 2, 3, 3])


def test_reassemble_multichannel_and_bad_rule():
    starts = np.array([0, 2])
    vals = np.ones((2, 4, 3))
    assert reassemble(vals, starts, 6).shape == (6, 3)
    with pytest.raises(DataValidationError, match="one of"):
        reassemble(vals, starts, 6, rule="median")


def test_time_split_is_ordered_and_disjoint():
    X = np.arange(100.0)[:, None]
    tr, va = time_split(X, 0.2)
    assert len(tr) == 80 and len(va) == 20 and tr[-1, 0] < va[0, 0]
    with pytest.raises(DataValidationError):
        time_split(X, 1.5)


def test_scalers_fit_on_train_and_are_safe_on_constant_channels():
    train = np.c_[np.arange(10.0), np.full(10, 3.0)]
    test = np.c_[np.arange(10.0, 20.0), np.full(10, 3.0)]
    for kind in ("minmax", "standard"):
        s = make_scaler(kind).fit(train)
        out = s.transform(test)
        assert np.isfinite(out).all() and np.all(out[:, 1] == 0)
    assert (
        make_scaler("minmax").fit(train).transform(test)[0, 0] > 1
    )  # test values beyond the training range stay beyond
    with pytest.raises(DataValidationError, match="one of"):
        make_scaler("robust")
