"""diffad.report (the run folder of a detection) and diffad.plotting."""

import json

import numpy as np
import pytest

from diffad import DataValidationError, ImDiffusionDetector, PCADetector, PersistenceError
from diffad.data.synthetic import make_series
from diffad.plotting import plot_detection
from diffad.report import write_run


def test_write_run_from_python_is_one_unit_and_refuses_foreign_folders(tmp_path):
    X = np.random.default_rng(0).normal(size=(300, 3))
    det = PCADetector().fit(X)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "a.txt").write_text("x")
    with pytest.raises(PersistenceError, match="did not write"):
        write_run(tmp_path / "mine", det, X)
    with pytest.raises(DataValidationError, match="labels length"):
        write_run(tmp_path / "r", det, X, labels=np.zeros(5))
    assert not (tmp_path / "r").exists()
    result = write_run(tmp_path / "r", det, X, labels=(X[:, 0] > 2).astype(int))
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == [
        "events.csv",
        "events.json",
        "metrics.json",
        "plot.png",
        "report.html",
        "run.json",
        "scores.csv",
    ]
    assert all(f.parent == tmp_path / "r" and f.is_file() for f in result["files"])
    run = json.loads((tmp_path / "r" / "run.json").read_text())
    assert (
        run["format"] == "diffad-run" and run["detector"] == "PCADetector" and "report.html" in run["files"]
    )
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert "AUC-PR" in metrics["honest"] and "PA-F1" not in metrics["honest"]


def test_the_report_names_the_channels_to_blame_and_tags_the_paper_protocol(tmp_path):
    data = make_series(n_train=400, n_test=200, n_channels=3, n_anomalies=3, seed=0)
    det = ImDiffusionDetector(**ImDiffusionDetector._test_params()).fit(data.train)
    write_run(tmp_path / "r", det, data.test, channels=["cpu", "mem", "disk"], labels=data.labels)
    text = (tmp_path / "r" / "report.html").read_text()
    assert "Channels to blame" in text and any(f"<td>{c}</td>" in text for c in ("cpu", "mem", "disk"))
    paper = json.loads((tmp_path / "r" / "metrics.json").read_text())["paper-protocol (uses test labels)"]
    assert "paper protocol: PA-F1" in paper and "paper protocol: xi" in paper


def test_plot_detection_writes_a_png(tmp_path):
    rng = np.random.default_rng(0)
    plot_detection(
        rng.normal(size=(100, 2)),
        rng.random(100),
        (rng.random(100) > 0.9).astype(int),
        tmp_path / "p.png",
        labels=(rng.random(100) > 0.95).astype(int),
        threshold=0.9,
        channels=["a", "b"],
        title="t",
    )
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
