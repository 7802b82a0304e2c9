import numpy as np
import pytest
from scipy import integrate
from scipy.stats import invgamma
from sklearn.metrics import roc_auc_score

import diffad
from diffad import DataValidationError, DTENonParametric, KNNDetector
from diffad.data.synthetic import make_tabular
from diffad.detectors.dte import diffusion_sigmas, inverse_gamma_logpdf


def test_inverse_gamma_density_against_scipy_and_numerics():
    s = np.linspace(0.01, 3.0, 50)
    alpha, beta = 3.5, np.array([0.2, 1.3])
    got = inverse_gamma_logpdf(s, alpha, beta)
    for i, b in enumerate(beta):
        np.testing.assert_allclose(got[i], invgamma.logpdf(s, alpha, scale=b), rtol=1e-10)
        total, _ = integrate.quad(lambda x, b=b: np.exp(inverse_gamma_logpdf(np.array([x]), alpha, np.array([b]))[0, 0]), 0, np.inf)
        assert total == pytest.approx(1.0, abs=1e-6)
        grid = np.linspace(1e-3, 5, 200_001)
        mode = grid[np.argmax(inverse_gamma_logpdf(grid, alpha, np.array([b]))[0])]
        assert mode == pytest.approx(b / (alpha + 1), abs=1e-4)  # = ||x - x0||^2 / d with alpha = d/2 - 1


def test_sigmas_closed_form():
    s = diffusion_sigmas(300, 1e-4, 0.01)
    betas = np.linspace(1e-4, 0.01, 300)
    np.testing.assert_allclose(s, 1 - np.cumprod(1 - betas))
    assert np.all(np.diff(s) > 0)


@pytest.fixture(scope="module")
def data():
    X, y = make_tabular(800, 6, kind="global", contamination=0.05, seed=0)
    return X[y == 0][:500], X, y


def test_anomalies_need_more_diffusion_time(data):
    train, X, y = data
    for score in ("mode", "mean"):
        s = DTENonParametric(score=score).fit(train).decision_function(X)
        assert roc_auc_score(y, s) > 0.9
        assert s[y == 1].mean() > s[y == 0].mean()
    knn = roc_auc_score(y, KNNDetector().fit(train).decision_function(X))
    assert roc_auc_score(y, DTENonParametric(score="mean").fit(train).decision_function(X)) == pytest.approx(knn, abs=0.02)


def test_determinism_and_save_load(data, tmp_path):
    train, X, _ = data
    a = DTENonParametric().fit(train)
    np.testing.assert_array_equal(a.decision_function(X), DTENonParametric().fit(train).decision_function(X))
    a.save(tmp_path / "m")
    np.testing.assert_array_equal(diffad.load(tmp_path / "m").decision_function(X), a.decision_function(X))


def test_bad_input(data):
    train, X, _ = data
    with pytest.raises(DataValidationError, match="at least 3"):
        DTENonParametric().fit(train[:, :2])
    with pytest.raises(DataValidationError, match="one of"):
        DTENonParametric(score="median").fit(train)
    with pytest.raises(DataValidationError, match="expected 6 channel"):
        DTENonParametric().fit(train).decision_function(X[:, :4])
