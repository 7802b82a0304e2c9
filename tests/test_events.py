"""diffad.events: flagged points into incidents (merging, dropping, times, severity, channels), on
hand-made decisions and on detectors fitted to series with known anomalies."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from diffad import KNNDetector, PCADetector
from diffad.cli import app
from diffad.events import EventRules, event_f1, events_to_json, find_events, spans
from diffad.exceptions import DataValidationError


def test_runs_closer_than_the_gap_merge_and_short_events_drop():
    flags = np.array([1, 0, 1, 0, 0, 0, 1, 0, 0, 1, 1, 1])
    assert spans(flags, EventRules(merge_gap=0, min_duration=1)) == [(0, 0), (2, 2), (6, 6), (9, 11)]
    assert spans(flags, EventRules(merge_gap=1, min_duration=1)) == [(0, 2), (6, 6), (9, 11)]
    assert spans(flags, EventRules(merge_gap=1, min_duration=2)) == [(0, 2), (9, 11)]
    assert spans(flags, EventRules(merge_gap=3, min_duration=1)) == [(0, 11)]
    assert spans(np.zeros(5), EventRules()) == []


def test_times_durations_severity_and_channels_of_an_event():
    n = 20
    idx = pd.date_range("2026-01-01", periods=n, freq="1min")
    flags = np.zeros(n, dtype=int)
    flags[[5, 6, 8]] = 1
    scores = np.zeros(n)
    scores[[5, 6, 8]] = [1.5, 3.0, 2.0]
    attribution = np.zeros((n, 3))
    attribution[:, 2] = 1.0  # channel c carries every score ...
    attribution[6] = [0.0, 0.5, 0.5]  # ... but for one point
    ev = find_events(
        flags,
        scores,
        threshold=1.0,
        rules=EventRules(merge_gap=1, min_duration=2),
        index=idx,
        typical_score=0.0,
        attribution=attribution,
        channels=["a", "b", "c"],
    )
    assert len(ev) == 1
    e = ev.iloc[0]
    assert e["start"] == idx[5] and e["end"] == idx[8] and e["duration"] == 4 and e["duration_s"] == 180.0
    assert e["n_flagged"] == 3 and e["peak_score"] == 3.0 and e["peak_at"] == idx[6]
    assert e["mean_score"] == pytest.approx(6.5 / 3)
    assert e["severity"] == pytest.approx(2.0) and e["grade"] == "medium"  # (3 - 1) / (1 - 0)
    assert e["channels"] == "c:0.833;b:0.167"  # a has no share and is not named
    (item,) = json.loads(events_to_json(ev))
    assert item["start"] == "2026-01-01T00:05:00" and item["channels"][0] == {"name": "c", "share": 0.833}


def test_severity_grades():
    flags = np.array([0, 1, 1, 0, 1, 1])
    scores = np.array([0.0, 1.2, 1.5, 0.0, 9.0, 4.0])
    ev = find_events(flags, scores, 1.0, rules=EventRules(merge_gap=0, min_duration=1), typical_score=0.5)
    assert ev["severity"].tolist() == pytest.approx([1.0, 16.0]) and ev["grade"].tolist() == [
        "medium",
        "high",
    ]
    no_scale = find_events(flags, scores, 1.0, rules=EventRules(merge_gap=0, min_duration=1))
    assert no_scale["severity"].tolist() == pytest.approx([0.5, 8.0])  # unscaled excess


def test_event_f1_counts_overlaps():
    y = np.zeros(30, dtype=int)
    y[5:10] = 1
    y[20:25] = 1
    flags = np.zeros(30, dtype=int)
    flags[[7, 8, 9, 15]] = 1  # one event on the first segment, one false alarm, the second missed
    r = event_f1(y, flags, EventRules(merge_gap=0, min_duration=1))
    assert (r["event_precision"], r["event_recall"], r["events"]) == (0.5, 0.5, 2.0)
    assert r["one_point_share"] == 0.5
    assert r["interval_precision"] == 0.75  # 3 of the 4 points the events span are labelled
    r = event_f1(y, flags, EventRules(merge_gap=0, min_duration=2))  # the one-point alarm dropped
    assert (r["event_precision"], r["event_recall"]) == (1.0, 0.5)
    assert r["composite_F1"] == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    # one event over both segments: the overlap event-F1 is perfect, the composite F1 pays for its span
    r = event_f1(y, flags | (np.arange(30) >= 20), EventRules(merge_gap=20, min_duration=1))
    assert r["event_F1"] == 1.0 and r["interval_precision"] == pytest.approx(8 / 23)


@pytest.mark.parametrize(
    "kwargs", [dict(merge_gap=-1), dict(min_duration=0), dict(min_duration=1.5), dict(merge_gap=True)]
)
def test_bad_rules_are_clear_errors(kwargs):
    with pytest.raises(DataValidationError, match="merge_gap|min_duration"):
        EventRules(**kwargs)


def _series_with_two_incidents(seed=0):
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(2, 4))  # four channels driven by two factors, as metrics of one service are

    def series(n):
        return rng.normal(size=(n, 2)) @ mix + 0.1 * rng.normal(size=(n, 4))

    train, test = series(1500), series(600)
    test[100:130, 1] += 3.0  # a level shift in channel b
    test[400:420, 3] -= 3.0  # and one in channel d
    idx = pd.date_range("2026-03-01", periods=600, freq="30s")
    return pd.DataFrame(train, columns=list("abcd")), pd.DataFrame(test, columns=list("abcd"), index=idx)


@pytest.mark.parametrize("cls", [PCADetector, KNNDetector])
def test_a_detector_recovers_each_incident_as_one_event(cls):
    train, test = _series_with_two_incidents()
    det = cls().fit(train)
    ev = det.events(test)
    found = []
    for lo, hi in ((100, 129), (400, 419)):
        (hit,) = [e for _, e in ev.iterrows() if e["start_pos"] <= hi and e["end_pos"] >= lo]  # one event
        assert abs(hit["start_pos"] - lo) <= 2 and abs(hit["end_pos"] - hi) <= 2
        assert hit["start"] == test.index[hit["start_pos"]] and hit["duration_s"] > 0
        found.append(hit)
    others = ev[~ev["event"].isin([e["event"] for e in found])]
    # the rest are the training flag rate's false alarms: short, and less severe than the incidents
    assert (others["duration"] < 10).all()
    assert (others["severity"] < min(e["severity"] for e in found)).all()


def test_detect_writes_the_events_of_a_run(tmp_path):
    train, test = _series_with_two_incidents()
    train.to_csv(tmp_path / "train.csv", index=False)
    test.rename_axis("timestamp").reset_index().to_csv(tmp_path / "test.csv", index=False)
    r = CliRunner().invoke(
        app,
        ["detect", "--train", str(tmp_path / "train.csv"), "--test", str(tmp_path / "test.csv")]
        + ["--out", str(tmp_path / "run"), "--detector", "pca", "--quiet"],
    )
    assert r.exit_code == 0, r.output
    ev = pd.read_csv(tmp_path / "run" / "events.csv")
    assert (ev["grade"] == "high").sum() == 2 and ev["start"].iloc[0].startswith(
        "2026-03-01"
    )  # the incidents
    assert len(json.loads((tmp_path / "run" / "events.json").read_text())) == len(ev)
    assert "id=events" in (tmp_path / "run" / "report.html").read_text()
    assert {"events.csv", "events.json"} <= set(
        json.loads((tmp_path / "run" / "run.json").read_text())["files"]
    )
