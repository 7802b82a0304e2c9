import json

import numpy as np
import pytest

import diffad
from diffad.data.synthetic import make_series
from diffad.report import write_run
from diffad.sanity import check_run, default_event_budget


@pytest.fixture(scope="module")
def data():
    return make_series(n_train=2000, n_test=1000, n_channels=4, n_anomalies=4, seed=0)


@pytest.fixture(scope="module")
def pca(data):
    return diffad.PCADetector().fit(data.train)


def codes(det, X, budget=None):
    s, p = det.decision_function(X), det.predict(X)
    return [w.code for w in check_run(det, s, p, len(det.events(X)), budget)]


def test_a_plain_run_raises_no_warning(pca, data):
    # 4 labelled anomalies come out as 14 events: under a budget of 50 nothing else may fire
    assert codes(pca, data.test, budget=50) == []


def test_shifted_test_data_flag_far_more_than_training(pca, data):
    shifted = data.test + 3 * data.train.std(axis=0)
    assert "flag-rate" in codes(pca, shifted)


def test_a_constant_test_series_has_a_flat_score(pca, data):
    flat = np.tile(data.train.mean(axis=0), (300, 1))
    assert "flat-score" in codes(pca, flat)


def test_more_events_than_the_budget(pca, data):
    n = len(pca.events(data.test))
    assert n >= 1
    assert "event-budget" in codes(pca, data.test, budget=n - 1)
    assert "event-budget" not in codes(pca, data.test, budget=n)
    assert default_event_budget(500) == 10 and default_event_budget(28_000) == 28


def test_training_that_ran_one_epoch(data):
    det = diffad.SelfDistilledMAEDetector(
        **{**diffad.SelfDistilledMAEDetector._test_params(), "max_epochs": 1}
    ).fit(data.train)
    assert "first-epoch" in codes(det, data.test)


def test_warnings_reach_the_report_and_run_json(pca, data, tmp_path):
    shifted = data.test + 3 * data.train.std(axis=0)
    result = write_run(tmp_path / "run", pca, shifted, event_budget=0)
    got = {w.code for w in result["warnings"]}
    assert {"flag-rate", "event-budget"} <= got
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert {w["code"] for w in run["warnings"]} == got
    page = (tmp_path / "run" / "report.html").read_text()
    assert "id=warnings" in page and "flag-rate" in page
    clean = write_run(tmp_path / "clean", pca, data.test, event_budget=50)
    assert clean["warnings"] == [] and "id=warnings" not in (tmp_path / "clean" / "report.html").read_text()
