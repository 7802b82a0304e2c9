import numpy as np
import pytest

from diffad import DataValidationError
from diffad.thresholds import (
    DSPOT,
    SPOT,
    apply_threshold,
    contamination_threshold,
    ensemble_vote,
    fit_vote_thresholds,
    oracle_vote_xi,
    pot,
    vote_ratios,
)


def test_contamination_threshold():
    s = np.arange(1000.0)
    t = contamination_threshold(s, 0.05)
    assert apply_threshold(s, t).mean() == pytest.approx(0.05, abs=0.002)
    assert contamination_threshold(np.r_[s, np.nan], 0.05) == t
    with pytest.raises(DataValidationError, match=r"in \(0.0, 0.5\)"):
        contamination_threshold(s, 0.7)


def test_pot_matches_exponential_tail():
    # for an exponential(1) variable P(X > z) = exp(-z): z_q = -log(q)
    s = np.random.default_rng(0).exponential(size=200_000)
    assert pot(s, q=1e-4, level=0.98) == pytest.approx(-np.log(1e-4), rel=0.05)


def test_spot_flags_outliers_and_tracks_peaks():
    rng = np.random.default_rng(1)
    spot = SPOT(q=1e-4).fit(rng.exponential(size=5000))
    stream = rng.exponential(size=2000)
    stream[[500, 1500]] = 30.0
    th, alarms = spot.run(stream)
    assert alarms[500] == 1 and alarms[1500] == 1 and alarms.sum() <= 4
    assert th.shape == (2000,) and np.isfinite(th).all()


def test_dspot_follows_drift():
    rng = np.random.default_rng(2)
    drift = np.linspace(0, 20, 7000)
    x = rng.exponential(size=7000) + drift
    x[6000] += 25
    d = DSPOT(q=1e-4, depth=30).fit(x[:4000])
    _, alarms = d.run(x[4000:])
    assert alarms[2000] == 1 and alarms.sum() <= 10
    assert (
        x[4000:] > SPOT(q=1e-4).fit(x[:4000]).threshold_
    ).mean() > 0.5  # without drift correction most later points exceed it


def test_vote_ratios_and_thresholds():
    rng = np.random.default_rng(0)
    E = np.abs(rng.normal(size=(4, 1000))) * np.array([[1.0], [1.5], [2.0], [4.0]])  # step 0 is the best
    r = vote_ratios(E, 0.02)
    assert r[0] == pytest.approx(0.02) and np.all(np.diff(r) < 0)
    th = fit_vote_thresholds(E, 0.02)
    flagged = (E > th[:, None]).mean(axis=1)
    np.testing.assert_allclose(flagged, r, atol=0.002)


def test_ensemble_vote_and_oracle():
    E = np.zeros((3, 10))
    E[:, 4] = 5.0  # all steps flag point 4
    E[0, 7] = 5.0  # only one step flags point 7
    votes, dec = ensemble_vote(E, np.full(3, 1.0), xi=1)
    assert votes.tolist()[4] == 3 and votes[7] == 1 and dec.tolist() == [0, 0, 0, 0, 1, 0, 0, 0, 0, 0]
    y = np.zeros(10, dtype=int)
    y[4] = 1
    xi, score = oracle_vote_xi(y, votes, 3)
    assert xi in (1, 2) and score == 1.0
    with pytest.raises(DataValidationError, match="xi"):
        ensemble_vote(E, np.full(3, 1.0), xi=3)
    with pytest.raises(DataValidationError, match="one per step"):
        ensemble_vote(E, np.full(2, 1.0), xi=0)
