import numpy as np
import pytest

from diffad import DataValidationError
from diffad.data.synthetic import SERIES_ANOMALY_KINDS, TABULAR_ANOMALY_KINDS, make_series, make_tabular


def test_same_seed_same_series_bit_for_bit():
    a, b = make_series(seed=3), make_series(seed=3)
    for f in ("train", "test", "labels", "channel_labels"):
        assert np.array_equal(getattr(a, f), getattr(b, f))
    assert a.segments == b.segments
    assert not np.array_equal(a.test, make_series(seed=4).test)


def test_series_has_every_kind_labelled_with_per_channel_truth():
    s = make_series(n_train=1000, n_test=3000, n_channels=6, n_anomalies=12, seed=0)
    assert s.train.shape == (1000, 6) and s.test.shape == (3000, 6)
    assert {seg.kind for seg in s.segments} == set(SERIES_ANOMALY_KINDS)
    for seg in s.segments:
        assert s.labels[seg.start : seg.end].all()
        assert s.channel_labels[seg.start : seg.end][:, list(seg.channels)].all()
    assert s.labels.sum() == s.channel_labels.any(axis=1).sum()
    clean = make_series(n_train=1000, n_test=3000, n_channels=6, n_anomalies=12, seed=0, kinds=("spike",))
    assert np.array_equal(clean.train, s.train)


def test_anomalies_change_the_signal_only_inside_segments():
    s = make_series(n_train=500, n_test=1200, n_channels=4, n_anomalies=6, seed=1)
    base = make_series(n_train=500, n_test=1200, n_channels=4, n_anomalies=6, seed=1)
    assert np.array_equal(s.test[s.labels == 0], base.test[base.labels == 0])
    for seg in s.segments:
        if seg.kind != "spike":
            assert np.std(s.test[seg.start : seg.end, seg.channels[0]]) > 0


def test_channels_are_correlated():
    s = make_series(n_train=3000, n_test=300, n_channels=6, n_anomalies=2, seed=0)
    c = np.corrcoef(s.train.T)
    assert np.abs(c[np.triu_indices(6, 1)]).max() > 0.5


@pytest.mark.parametrize("kind", TABULAR_ANOMALY_KINDS)
def test_tabular_kinds(kind):
    X, y = make_tabular(600, 5, kind=kind, contamination=0.1, seed=0)
    X2, y2 = make_tabular(600, 5, kind=kind, contamination=0.1, seed=0)
    assert X.shape == (600, 5) and y.sum() == 60
    assert np.array_equal(X, X2) and np.array_equal(y, y2)


def test_tabular_anomalies_differ_from_normals():
    X, y = make_tabular(1000, 4, kind="clustered", contamination=0.05, seed=0)
    assert np.linalg.norm(X[y == 1].mean(0) - X[y == 0].mean(0)) > 1.0
    X, y = make_tabular(1000, 4, kind="local", contamination=0.05, seed=0)
    assert X[y == 1].std() > X[y == 0].std()


def test_bad_kind_lists_valid():
    with pytest.raises(DataValidationError, match="one of"):
        make_series(kinds=("wobble",))
    with pytest.raises(DataValidationError, match="one of"):
        make_tabular(kind="weird")
