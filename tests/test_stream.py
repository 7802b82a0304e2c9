"""diffad.stream: streamed final scores equal the batch scores of the whole series, for every detector
that streams; events open and close live as find_events finds them; thresholds adapt."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from diffad import ConfigError, DataValidationError, ImDiffusionDetector
from diffad.data.synthetic import make_series
from diffad.detectors.base import registry
from diffad.events import EventRules, find_events
from diffad.stream import StreamScorer, update_many

STREAMING = sorted((c for c in registry().values() if c._stream), key=lambda c: c.__name__)


@pytest.fixture(scope="module")
def series():
    return make_series(n_train=400, n_test=300, n_channels=4, n_anomalies=3, seed=1)


# every streaming detector with its tiny test settings, and ImDiffusion whose score reads past points
CASES = [(c, {}) for c in STREAMING] + [(ImDiffusionDetector, {"error_smoothing": 6, "error_reduce": "sum"})]


@pytest.fixture(scope="module", params=CASES, ids=lambda c: c[0].__name__ + ("-smoothed" if c[1] else ""))
def fitted(request, series):
    cls, extra = request.param
    return cls(**{**cls._test_params(), **extra}).fit(series.train)


def _chunks(n: int, seed: int) -> list[slice]:
    rng = np.random.default_rng(seed)
    cuts = np.unique(np.concatenate([[0], rng.integers(1, n, size=25), [n]]))
    return [slice(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]


def _stream(det, X, seed=0, **kw):
    scorer = StreamScorer(det, **kw)
    results = [scorer.update(X[part]) for part in _chunks(len(X), seed)]
    scores = np.concatenate([r.scores for r in results])
    flags = np.concatenate([r.flags for r in results])
    starts = [r.start for r in results]
    assert starts == sorted(starts) and all(
        r.start + len(r.scores) == q.start for r, q in zip(results, results[1:], strict=False)
    )
    return scorer, results, scores, flags


def _exact_part(det, n: int) -> int:
    """Points a batch call of n points scores like a stream: all but the last window's."""
    return n - det._stream_grid()[0] if det._stream == "window" else n


def test_final_scores_equal_batch_scores(fitted, series):
    det = fitted
    X = series.test
    scorer, results, scores, flags = _stream(det, X)
    batch = det.decision_function(X)
    m = _exact_part(det, len(X))
    assert len(scores) >= m and scorer.n_seen == len(X)
    np.testing.assert_allclose(scores[:m], batch[:m], rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(flags[:m], det.predict(X)[:m])
    if det._stream == "point":
        assert len(scores) == len(X)  # every point final at once
    else:  # the rest is final once the windows that cover it complete: a longer batch call agrees
        more = np.concatenate([X, series.train[:100]])
        np.testing.assert_allclose(scores, det.decision_function(more)[: len(scores)], rtol=1e-5, atol=1e-7)


def test_provisional_scores_cover_the_newest_points(fitted, series):
    det = fitted
    scorer = StreamScorer(det)
    res = scorer.update(series.test[:137])
    start, prov = scorer.provisional()
    assert start == res.start + len(res.scores)
    assert start + len(prov) == 137 and np.isfinite(prov).all()


def test_batching_across_series_gives_each_its_own_scores(fitted, series):
    det = fitted
    a, b = series.test[:200], series.test[100:300] * 1.1
    sa, sb = StreamScorer(det), StreamScorer(det)
    joint = [update_many([(sa, a[p], None), (sb, b[p], None)]) for p in _chunks(200, 3)]
    alone_a = _stream(det, a, seed=4)[2]
    alone_b = _stream(det, b, seed=5)[2]
    got_a = np.concatenate([r[0].scores for r in joint])
    got_b = np.concatenate([r[1].scores for r in joint])
    np.testing.assert_allclose(got_a, alone_a, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got_b, alone_b, rtol=1e-5, atol=1e-7)


def test_state_survives_a_round_trip(fitted, series):
    det = fitted
    X = series.test
    one = StreamScorer(det)
    first = one.update(X[:150])
    two = StreamScorer.loads(det, one.dumps())
    rest = two.update(X[150:])
    straight = _stream(det, X)[2]
    got = np.concatenate([first.scores, rest.scores])
    np.testing.assert_allclose(got, straight, rtol=1e-5, atol=1e-7)


def test_live_events_are_the_batch_events():
    from diffad.detectors import PCADetector

    data = make_series(n_train=600, n_test=800, n_channels=5, n_anomalies=6, seed=2)
    det = PCADetector(contamination=0.02).fit(data.train)
    rules = EventRules(merge_gap=2, min_duration=2)
    index = pd.date_range("2026-01-01", periods=800, freq="min")
    scorer = StreamScorer(det, rules=rules)
    opened, closed = [], []
    for part in _chunks(800, 7):
        r = scorer.update(data.test[part], labels=list(index[part]))
        opened += r.opened
        closed += r.closed
    closed += scorer.close()
    batch = det.events(pd.DataFrame(data.test, index=index), rules=rules)
    assert len(batch) > 0 and len(closed) == len(batch) and len(opened) == len(batch)
    live = pd.DataFrame(closed)
    for col in (
        "event",
        "start",
        "end",
        "start_pos",
        "end_pos",
        "duration",
        "duration_s",
        "n_flagged",
        "peak_at",
    ):
        assert live[col].tolist() == batch[col].tolist(), col
    for col in ("peak_score", "mean_score", "severity"):
        np.testing.assert_allclose(live[col], batch[col], rtol=1e-9)
    assert all(o["start_pos"] == c["start_pos"] for o, c in zip(opened, closed, strict=True))


def test_live_events_name_the_blamed_channels_like_batch():
    from diffad.detectors import ImDiffusionDetector

    data = make_series(n_train=400, n_test=300, n_channels=4, n_anomalies=3, seed=1)
    det = ImDiffusionDetector(**ImDiffusionDetector._test_params()).fit(data.train)
    scorer = StreamScorer(det, rules=EventRules(min_duration=1))
    res = [scorer.update(data.test[p]) for p in _chunks(300, 2)]
    flags = np.concatenate([r.flags for r in res])
    scores = np.concatenate([r.scores for r in res])
    attr = np.concatenate([r.attribution for r in res])
    closed = [e for r in res for e in r.closed] + scorer.close()
    batch = find_events(
        flags,
        scores,
        det._score_threshold(),
        rules=EventRules(min_duration=1),
        typical_score=float(np.median(det.decision_scores_)),
        attribution=attr,
        channels=[f"ch{k}" for k in range(4)],
    )
    assert [e["channels"] for e in closed] == batch["channels"].tolist()


def test_spot_online_equals_batch_spot(series):
    from diffad.detectors import KNNDetector

    det = KNNDetector(threshold="spot").fit(series.train)
    flags = _stream(det, series.test)[3]
    np.testing.assert_array_equal(flags, det.predict(series.test))
    assert flags.sum() > 0


def test_recalibration_moves_the_threshold_to_the_recent_scores(series):
    from diffad.detectors import PCADetector

    det = PCADetector(contamination=0.05).fit(series.train)
    scorer = StreamScorer(det, recalibrate_every=100, recalibrate_window=200)
    before = scorer.threshold
    shifted = series.test * 3.0 + 5.0  # drift: every score far above the training threshold
    results = [scorer.update(shifted[i : i + 50]) for i in range(0, 300, 50)]
    late = np.concatenate([r.flags for r in results[-2:]])
    assert scorer.threshold > before and scorer.recalibrated
    assert late.mean() < 0.5  # no longer flags everything
    assert np.concatenate([r.flags for r in results[:2]]).mean() > 0.5  # before the re-fit it did


def test_bad_input_is_refused_before_any_change(series):
    from diffad.detectors import PCADetector, RandomDetector

    det = PCADetector().fit(series.train)
    scorer = StreamScorer(det)
    with pytest.raises(DataValidationError):
        scorer.update(np.ones((3, 7)))
    with pytest.raises(DataValidationError):
        scorer.update(np.full((2, 4), np.nan))
    assert scorer.n_seen == 0
    with pytest.raises(ConfigError, match="does not stream"):
        StreamScorer(RandomDetector().fit(series.train))
    with pytest.raises(ConfigError, match="recalibrate_every"):
        StreamScorer(det, recalibrate_every=0)


def test_an_imdiffusion_model_without_fixed_clip_bounds_is_refused(series):
    from diffad.detectors import ImDiffusionDetector

    det = ImDiffusionDetector(**ImDiffusionDetector._test_params()).fit(series.train)
    del det.clip_  # as saved by a diffad before the bounds were fixed at fit
    with pytest.raises(ConfigError, match="fit it again"):
        StreamScorer(det)


def test_retraining_in_the_background_swaps_in_a_model_of_the_recent_normal_points(series):
    from diffad import ImDiffusionDetector, PCADetector

    det = PCADetector().fit(series.train)
    scorer = StreamScorer(det, retrain_every=120, retrain_window=150)
    X = series.test
    first = scorer.update(X[:130])  # 130 final points: a refit on the last 130 starts
    job = scorer._retrain_job
    assert job is not None and scorer.retrains == 0
    job.result(timeout=60)
    flags = first.flags.astype(bool)
    expected = PCADetector().fit(X[:130][~flags])  # the flagged points left out
    second = scorer.update(X[130:200])  # the new model takes over here
    assert scorer.retrains == 1 and scorer.model_points == 130 and scorer.detector is not det
    assert np.allclose(second.scores, expected.decision_function(X[130:200]))
    assert second.threshold == pytest.approx(expected.threshold_)
    # the state round trip keeps the counters, not the fit in flight
    again = StreamScorer.loads(scorer.detector, scorer.dumps())
    assert again.retrains == 1 and again._retrain_job is None
    # a detector that takes NaN keeps the flagged points as missing values, in time order
    imd = ImDiffusionDetector(**ImDiffusionDetector._test_params()).fit(series.train)
    s2 = StreamScorer(imd, retrain_every=200, retrain_window=250)
    s2.update(X[:260])
    s2._retrain_job.result(timeout=300)
    s2.update(X[260:])
    assert s2.retrains == 1 and s2.detector.n_features_in_ == X.shape[1]
    with pytest.raises(ConfigError, match="retrain_every"):
        StreamScorer(det, retrain_every=0)
