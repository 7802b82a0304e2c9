import numpy as np
from typer.testing import CliRunner

from diffad.cli import app

runner = CliRunner()


def test_info():
    r = runner.invoke(app, ["info"])
    assert (
        r.exit_code == 0
        and "diffad" in r.output
        and "torch" in r.output
        and "device" in r.output
        and "malloc" in r.output
    )


def test_help_on_every_command():
    for args in (
        ["--help"],
        ["info", "--help"],
        ["data", "--help"],
        ["data", "list", "--help"],
        ["data", "show", "--help"],
    ):
        r = runner.invoke(app, args)
        assert r.exit_code == 0 and "Usage" in r.output, args


def test_data_list_without_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("DIFFAD_DATA", raising=False)
    r = runner.invoke(app, ["data", "list"])
    assert r.exit_code == 0 and "SMD" in r.output and "ADBench" in r.output


def test_data_list_and_show(shared_data):
    r = runner.invoke(app, ["data", "list", "--data-dir", str(shared_data)])
    assert r.exit_code == 0
    line = next(ln for ln in r.output.splitlines() if ln.startswith("SMD "))
    assert " 14 " in line
    r = runner.invoke(app, ["data", "show", "SMD/machine-1-2", "--data-dir", str(shared_data)])
    assert (
        r.exit_code == 0
        and "23694 x 38" in r.output
        and "2.29 %" in r.output
        and "segments       10" in r.output
    )
    r = runner.invoke(app, ["data", "show", "UCR", "--data-dir", str(shared_data)])
    assert r.exit_code == 0 and r.output.count("UCR/") == 4


def test_data_show_missing_gives_clean_error(tmp_path):
    r = runner.invoke(app, ["data", "show", "SMD/machine-1-2", "--data-dir", str(tmp_path)])
    assert r.exit_code == 2 and "expected npz/machine-1-2.npz" in r.output and "Traceback" not in r.output


def _write_case(tmp_path):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    y = np.zeros(1000, dtype=int)
    y[300:340] = 1
    s = rng.random(1000) + 0.8 * y
    np.save(tmp_path / "s.npy", s)
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "p.npy", (s > 1.0).astype(int))
    pd.DataFrame({"time": range(1000), "score": s, "label": y}).to_csv(tmp_path / "run.csv", index=False)


def test_evaluate_table_puts_honest_first_and_tags_the_rest(tmp_path):
    _write_case(tmp_path)
    r = runner.invoke(
        app,
        [
            "evaluate",
            "--scores",
            str(tmp_path / "s.npy"),
            "--labels",
            str(tmp_path / "y.npy"),
            "--preds",
            str(tmp_path / "p.npy"),
            "--window",
            "20",
        ],
    )
    assert r.exit_code == 0, r.output
    out = r.output
    assert out.index("AUC-PR") < out.index("not comparable") < out.index("PA-F1")
    for line in out.splitlines():
        if "(oracle)" in line:
            assert "[paper-protocol (uses test labels)]" in line
        if line.split()[:1] == ["PA-F1"] and "(oracle)" not in line:
            assert "point-adjusted" in line


def test_evaluate_json_from_csv_columns(tmp_path):
    import json

    _write_case(tmp_path)
    csv = str(tmp_path / "run.csv")
    r = runner.invoke(app, ["evaluate", "--scores", csv, "--labels", csv, "--json", "--window", "10"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert 0 <= d["AUC-ROC"] <= 1 and d["PA-F1 (oracle)"]["tag"] == "paper-protocol (uses test labels)"


def test_evaluate_bad_input(tmp_path):
    _write_case(tmp_path)
    r = runner.invoke(
        app,
        [
            "evaluate",
            "--scores",
            str(tmp_path / "run.csv"),
            "--labels",
            str(tmp_path / "y.npy"),
            "--scores-col",
            "nope",
        ],
    )
    assert r.exit_code == 2 and "expected one of" in r.output
    r = runner.invoke(
        app, ["evaluate", "--scores", str(tmp_path / "s.npy"), "--labels", str(tmp_path / "missing.npy")]
    )
    assert r.exit_code == 2 and "existing" in r.output


def _series_files(tmp_path):
    import pandas as pd

    from diffad.data.synthetic import make_series

    d = make_series(n_train=700, n_test=400, n_channels=3, n_anomalies=4, seed=1)
    idx = pd.date_range("2024-01-01", periods=1100, freq="min")
    cols = ["cpu", "mem", "net"]
    pd.DataFrame(d.train, columns=cols).assign(timestamp=idx[:700]).to_csv(
        tmp_path / "train.csv", index=False
    )
    pd.DataFrame(d.test, columns=cols).assign(timestamp=idx[700:], label=d.labels).to_csv(
        tmp_path / "test.csv", index=False
    )
    return d


def test_detect_then_score_with_the_saved_model(tmp_path):
    import json

    import pandas as pd

    _series_files(tmp_path)
    out = tmp_path / "run"
    r = runner.invoke(
        app,
        [
            "detect",
            "--train",
            str(tmp_path / "train.csv"),
            "--test",
            str(tmp_path / "test.csv"),
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert r.exit_code == 0, r.output
    table = pd.read_csv(out / "scores.csv", parse_dates=["timestamp"])
    assert list(table.columns) == [
        "timestamp",
        "score",
        "flag",  # the decision
        "true_label",  # the test labels: the two never share a name
        "attribution_cpu",
        "attribution_mem",
        "attribution_net",
    ]
    assert len(table) == 400 and table["timestamp"].iloc[0] == pd.Timestamp("2024-01-01 11:40")
    assert set(table["flag"]) <= {0, 1} and set(table["true_label"]) == {0, 1}
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics) == ["honest", "paper-protocol (uses test labels)"]
    assert "AUC-PR" in metrics["honest"] and "PA-F1 (oracle)" in metrics["paper-protocol (uses test labels)"]
    assert (
        (out / "plot.png").stat().st_size > 10_000
        and (out / "report.html").is_file()
        and (out / "model" / "detector.json").is_file()
    )
    assert "report:" in r.output and "honest metrics" in r.output
    r = runner.invoke(
        app,
        [
            "score",
            "--model",
            str(out / "model"),
            "--test",
            str(tmp_path / "test.csv"),
            "--out",
            str(tmp_path / "again"),
        ],
    )
    assert r.exit_code == 0, r.output
    again = pd.read_csv(tmp_path / "again" / "scores.csv")
    assert np.array_equal(again["score"].to_numpy(), table["score"].to_numpy())


def test_fit_command_and_bad_preset(tmp_path):
    _series_files(tmp_path)
    r = runner.invoke(
        app,
        [
            "fit",
            "--train",
            str(tmp_path / "train.csv"),
            "--model",
            str(tmp_path / "m"),
            "--preset",
            "huge",
            "--quiet",
        ],
    )
    assert r.exit_code == 2 and "one of ['fast', 'paper']" in r.output
    r = runner.invoke(
        app,
        [
            "score",
            "--model",
            str(tmp_path / "nothing"),
            "--test",
            str(tmp_path / "test.csv"),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert r.exit_code == 2 and "not a folder" in r.output


def test_version():
    import diffad

    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.strip() == f"diffad {diffad.__version__}"


def test_any_registered_detector_from_the_command_line(tmp_path):
    import pandas as pd

    from diffad.data.synthetic import make_series

    data = make_series(n_train=400, n_test=200, n_channels=3, n_anomalies=3, seed=0)
    pd.DataFrame(data.train, columns=["a", "b", "c"]).to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame(data.test, columns=["a", "b", "c"]).assign(label=data.labels).to_csv(
        tmp_path / "test.csv", index=False
    )
    r = runner.invoke(
        app,
        [
            "detect",
            "--train",
            str(tmp_path / "train.csv"),
            "--test",
            str(tmp_path / "test.csv"),
            "--out",
            str(tmp_path / "run"),
            "--detector",
            "knn",
            "--set",
            "n_neighbors=3",
            "--quiet",
        ],
    )
    assert r.exit_code == 0, r.output
    import diffad

    det = diffad.load(tmp_path / "run" / "model")
    assert type(det).__name__ == "KNNDetector" and det.n_neighbors == 3
    for args, rule in [
        (["--threshold", "pot"], {"threshold": "pot"}),
        (["--contamination", "auto"], {"contamination": "auto"}),
        (["--contamination", "0.05"], {"contamination": 0.05}),
    ]:
        r = runner.invoke(
            app,
            [
                "fit",
                "--train",
                str(tmp_path / "train.csv"),
                "--model",
                str(tmp_path / "t"),
                "--detector",
                "pca",
            ]
            + args,
        )
        assert r.exit_code == 0, r.output
        det = diffad.load(tmp_path / "t")
        assert {k: det.get_params()[k] for k in rule} == rule
        assert np.array_equal(det.labels_, det.decision_scores_ > det.threshold_)
    for args, message in [
        (["--detector", "foo"], "--detector: expected one of"),
        (["--detector", "PCA", "--preset", "paper"], "has no presets"),
        (["--detector", "PCA", "--resume"], "Fit without --resume"),
        (["--detector", "PCA", "--set", "random_state=1"], "set by --seed"),
        (["--detector", "PCA", "--threshold", "median"], "threshold: expected one of"),
        (["--detector", "PCA", "--contamination", "lots"], "contamination: expected"),
        (["--threshold", "pot"], "decides by its ensemble-step vote"),
    ]:
        r = runner.invoke(
            app, ["fit", "--train", str(tmp_path / "train.csv"), "--model", str(tmp_path / "m"), *args]
        )
        assert r.exit_code == 2 and message in " ".join(r.output.split()), (args, r.output)


def test_detect_and_score_print_a_json_summary(tmp_path):
    import json

    import pandas as pd

    from diffad.data.synthetic import make_series

    data = make_series(n_train=400, n_test=200, n_channels=3, n_anomalies=3, seed=0)
    pd.DataFrame(data.train, columns=["a", "b", "c"]).to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame(data.test, columns=["a", "b", "c"]).assign(label=data.labels).to_csv(
        tmp_path / "test.csv", index=False
    )
    common = ["--test", str(tmp_path / "test.csv"), "--json"]
    r = runner.invoke(
        app,
        [
            "detect",
            "--train",
            str(tmp_path / "train.csv"),
            "--out",
            str(tmp_path / "run"),
            "--detector",
            "pca",
            "--quiet",
            *common,
        ],
    )
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    run = tmp_path / "run"
    assert summary["metrics"] == json.loads((run / "metrics.json").read_text())
    assert summary["events"] == json.loads((run / "events.json").read_text())
    assert summary["points"] == 200 and summary["flagged"] == int(
        pd.read_csv(run / "scores.csv")["flag"].sum()
    )
    r2 = runner.invoke(
        app, ["score", "--model", str(run / "model"), "--out", str(tmp_path / "run2"), *common]
    )
    assert r2.exit_code == 0, r2.output
    assert json.loads(r2.stdout)["metrics"] == summary["metrics"]


def _csv_case(tmp_path):
    import pandas as pd

    from diffad.data.synthetic import make_series

    data = make_series(n_train=400, n_test=200, n_channels=3, n_anomalies=3, seed=0)
    pd.DataFrame(data.train, columns=["a", "b", "c"]).to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame(data.test, columns=["a", "b", "c"]).assign(label=data.labels).to_csv(
        tmp_path / "test.csv", index=False
    )
    return tmp_path / "train.csv", tmp_path / "test.csv"


def test_config_file_then_set_then_the_dedicated_options(tmp_path):
    import diffad

    train, _ = _csv_case(tmp_path)
    cfg = tmp_path / "knn.toml"
    cfg.write_text('detector = "knn"\nn_neighbors = 7\nmethod = "mean"\nthreshold = "pot"\n')
    fit = ["fit", "--train", str(train), "--model", str(tmp_path / "m"), "--config", str(cfg)]
    r = runner.invoke(app, fit + ["--set", "n_neighbors=4", "--threshold", "contamination"])
    assert r.exit_code == 0, r.output
    det = diffad.load(tmp_path / "m")
    assert type(det).__name__ == "KNNDetector"
    assert (det.n_neighbors, det.method, det.threshold) == (4, "mean", "contamination")
    r = runner.invoke(app, fit + ["--detector", "pca"])  # --detector wins; the file's knn keys then fail
    assert r.exit_code == 2 and "expected parameters of PCADetector" in r.output
    for text, message in [
        ("[params]\nwindow = 5\n", "expected detector parameters as top-level keys"),
        ("detector = 3\n", "detector: expected a name"),
        ("detector = \n", "expected valid TOML"),
    ]:
        cfg.write_text(text)
        r = runner.invoke(app, fit)
        assert r.exit_code == 2 and message in " ".join(r.output.split()), (text, r.output)
    r = runner.invoke(
        app, ["fit", "--train", str(train), "--model", str(tmp_path / "m"), "--config", "no.toml"]
    )
    assert r.exit_code == 2 and "config file: expected an existing file" in r.output


def test_window_option_sets_the_window_of_a_windowed_detector(tmp_path):
    import json

    import diffad
    from diffad import ImDiffusionDetector

    train, test = _csv_case(tmp_path)
    tiny = {k: v for k, v in ImDiffusionDetector._test_params().items() if k != "window"}
    (tmp_path / "tiny.json").write_text(json.dumps(tiny))
    r = runner.invoke(
        app,
        ["detect", "--train", str(train), "--test", str(test), "--out", str(tmp_path / "run")]
        + ["--config", str(tmp_path / "tiny.json"), "--window", "24", "--quiet"],
    )
    assert r.exit_code == 0, r.output
    assert diffad.load(tmp_path / "run" / "model").window == 24
    r = runner.invoke(
        app,
        ["fit", "--train", str(train), "--model", str(tmp_path / "p"), "--detector", "pca", "--window", "8"],
    )
    assert r.exit_code == 2 and "--window: PCADetector has no window parameter" in " ".join(r.output.split())


def test_train_and_test_take_a_dataset_name(tmp_path):
    import json

    r = runner.invoke(
        app, ["detect", "--train", "SYNTH/1", "--out", str(tmp_path / "run"), "--detector", "pca"]
    )
    assert r.exit_code == 0, r.output
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["source"] == {
        "train": "SYNTH/1 (train part, built in)",
        "test": "SYNTH/1 (test part, built in)",
    }
    assert "AUC-PR" in json.loads((tmp_path / "run" / "metrics.json").read_text())["honest"]  # its labels
    r = runner.invoke(
        app,
        [
            "score",
            "--model",
            str(tmp_path / "run" / "model"),
            "--test",
            "SYNTH/2",
            "--out",
            str(tmp_path / "s"),
        ],
    )
    assert r.exit_code == 0 and (tmp_path / "s" / "metrics.json").is_file(), r.output
    train, _ = _csv_case(tmp_path)
    for args, message in [
        (["--train", "SYNTH-TAB/0"], "is a tabular set"),
        (["--train", str(train)], "--test: expected the series to score"),
        (["--train", "SMD/machine-1-1", "--data-dir", str(tmp_path)], "expected npz/machine-1-1.npz"),
    ]:
        r = runner.invoke(app, ["detect", "--out", str(tmp_path / "x"), "--detector", "pca", *args])
        assert r.exit_code == 2 and message in " ".join(r.output.split()), (args, r.output)


def test_a_real_dataset_by_name(shared_data, tmp_path):
    r = runner.invoke(
        app,
        ["fit", "--train", "SMD/machine-1-2", "--data-dir", str(shared_data), "--model", str(tmp_path / "m")]
        + ["--detector", "pca"],
    )
    assert r.exit_code == 0 and "saved PCADetector" in r.output, r.output
