import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diffad import DataValidationError
from diffad.metrics import (
    HONEST_KEYS,
    PAPER_KEYS,
    affiliation_f,
    affiliation_pr,
    auc_pr,
    average_detection_delay,
    evaluate,
    event_f1,
    f1_score,
    pa_f1,
    pa_k_f1,
    range_auc,
    range_f1,
    vus,
)


@st.composite
def labelled(draw, min_n=30, max_n=300):
    n = draw(st.integers(min_n, max_n))
    y = np.zeros(n, dtype=np.int8)
    for _ in range(draw(st.integers(1, 4))):
        s = draw(st.integers(0, n - 2))
        y[s : s + draw(st.integers(1, max(1, n // 6)))] = 1
    if y.all():
        y[0] = 0
    seed = draw(st.integers(0, 2**32 - 1))
    scores = np.random.default_rng(seed).random(n) + draw(st.floats(0, 1)) * y
    return y, scores


SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(labelled())
def test_values_in_unit_interval(case):
    y, s = case
    preds = (s > np.quantile(s, 0.9)).astype(int)
    for k, v in evaluate(y, s, preds, window=10).items():
        if k == "ADD":
            assert v >= 0
        else:
            assert 0.0 <= v <= 1.0 + 1e-12, k


@SETTINGS
@given(labelled())
def test_threshold_free_metrics_invariant_under_increasing_transforms(case):
    y, s = case
    a = evaluate(y, s, window=10, oracle=False)
    b = evaluate(y, np.exp(3 * s) + 7, window=10, oracle=False)
    for k in ("AUC-PR", "AUC-ROC", "VUS-PR", "VUS-ROC", "R-AUC-PR", "R-AUC-ROC"):
        assert a[k] == pytest.approx(b[k], abs=1e-12), k


@SETTINGS
@given(labelled())
def test_pa_f1_at_least_standard_f1(case):
    y, s = case
    preds = (s > np.quantile(s, 0.8)).astype(int)
    assert pa_f1(y, preds) >= f1_score(y, preds) - 1e-12
    assert pa_f1(y, preds) >= pa_k_f1(y, preds, 50) - 1e-12 >= f1_score(y, preds) - 2e-12


def test_perfect_scores_give_one():
    y = np.zeros(500, dtype=np.int8)
    y[100:120] = 1
    y[300:360] = 1
    s = y.astype(float)
    r = evaluate(y, s, preds=y, window=20)
    for k in (
        "AUC-PR",
        "AUC-ROC",
        "Standard-F1",
        "PA-F1",
        "R-based-F1",
        "Event-based-F1",
        "Standard-F1 (oracle)",
        "PA-F1 (oracle)",
    ):
        assert r[k] == pytest.approx(1.0, abs=1e-4), k
    assert r["Affiliation-F"] == pytest.approx(1.0, abs=1e-9)
    assert r["ADD"] == 0
    assert r["VUS-PR"] > 0.9 and r["VUS-ROC"] > 0.9


def test_key_names_and_order():
    y = np.r_[np.zeros(50), np.ones(5), np.zeros(45)].astype(int)
    s = np.random.default_rng(0).random(100)
    r = evaluate(y, s, preds=(s > 0.5).astype(int), window=10)
    assert list(r) == [k for k in (*HONEST_KEYS, *PAPER_KEYS) if k in r]
    assert set(r) == set(HONEST_KEYS) | set(PAPER_KEYS)
    assert set(evaluate(y, s, window=10, oracle=False)) == {
        "AUC-PR",
        "AUC-ROC",
        "VUS-PR",
        "VUS-ROC",
        "R-AUC-PR",
        "R-AUC-ROC",
    }


def test_degenerate_inputs_give_clear_errors_or_defined_values():
    s = np.random.default_rng(0).random(50)
    with pytest.raises(DataValidationError, match="got no anomalies"):
        evaluate(np.zeros(50), s)
    with pytest.raises(DataValidationError, match="got only anomalies"):
        evaluate(np.ones(50), s)
    y = np.r_[np.zeros(40), np.ones(10)].astype(int)
    with pytest.raises(DataValidationError, match="NaN or infinite"):
        evaluate(y, np.r_[s[:-1], np.nan])
    with pytest.raises(DataValidationError, match="expected 50"):
        evaluate(y[:-1], s)
    r = evaluate(y, np.ones(50), preds=np.zeros(50, dtype=int), window=5)  # constant scores, no predictions
    assert all(np.isfinite(v) for v in r.values())
    assert r["AUC-ROC"] == 0.5 and r["Standard-F1"] == 0 and r["Affiliation-F"] == 0 and r["ADD"] == 10
    assert np.isnan(affiliation_pr(y, np.zeros(50, dtype=int))[0])


def test_random_scores_look_good_under_point_adjustment():
    """The reason PA is always tagged: random predictions get a high PA-F1 on long segments."""
    rng = np.random.default_rng(0)
    y = np.zeros(5000, dtype=np.int8)
    for s in range(200, 5000, 1000):
        y[s : s + 150] = 1
    preds = (rng.random(5000) > 0.95).astype(int)
    assert pa_f1(y, preds) > 0.8 and f1_score(y, preds) < 0.2


def test_add_and_event_and_range_f1_by_hand():
    y = np.zeros(30, dtype=int)
    y[5:10] = 1
    y[20:25] = 1
    p = np.zeros(30, dtype=int)
    p[7] = 1  # 2 points late on the first segment, second segment missed
    assert average_detection_delay(y, p) == (2 + 5) / 2
    assert event_f1(y, p) == pytest.approx(2 * 0.5 * 1.0 / 1.5)
    # range recall: segment 1 = 0.2 * 1 + 0.8 * (1/5) ; segment 2 = 0 -> mean 0.18; precision 1
    assert range_f1(y, p) == pytest.approx(2 * 0.18 / 1.18)
    assert 0 < affiliation_f(y, p) < 1


def test_pa_k_endpoints():
    y = np.zeros(20, dtype=int)
    y[5:15] = 1
    p = np.zeros(20, dtype=int)
    p[6:8] = 1  # 20% of the segment
    assert pa_k_f1(y, p, 0) == pa_f1(y, p) == 1.0
    assert pa_k_f1(y, p, 10) == 1.0 and pa_k_f1(y, p, 20) == pytest.approx(f1_score(y, p))
    assert pa_k_f1(y, p, 100) == pytest.approx(f1_score(y, p))


def test_vus_and_range_auc_window_zero_agree_with_each_other():
    rng = np.random.default_rng(1)
    y = np.zeros(400, dtype=int)
    y[100:130] = 1
    s = rng.random(400) + y
    assert range_auc(y, s, 0) == pytest.approx(vus(y, s, 0))
    assert auc_pr(y, s) > 0.5
