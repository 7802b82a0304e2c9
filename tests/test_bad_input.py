"""Bad input on every entry point: a clear diffad error, nothing written, nothing of the user's touched.

Each CLI case asserts exit code 2, a message naming what was expected and what was got, no traceback,
and that no file under the test's folder changed (the inputs included); each library case asserts
diffad's exception type and message. Run folders and models are checked to be whole units.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import diffad
from diffad import DataValidationError, ImDiffusionDetector, PCADetector, PersistenceError
from diffad.cli import app
from diffad.data.loaders import read_series
from diffad.data.synthetic import make_series
from diffad.detectors.base import registry
from diffad.exceptions import DiffadError

runner = CliRunner()

# the smallest ImDiffusion that trains: CLI overrides and the same as keyword arguments
TINY = ImDiffusionDetector._test_params()
SET = [a for k, v in TINY.items() for a in ("--set", f"{k}={v}")] + ["--quiet"]


def snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under ``root`` with a hash of its content (folders: '<dir>')."""
    out = {}
    for p in sorted(root.rglob("*")):
        out[str(p.relative_to(root))] = (
            "<dir>" if p.is_dir() else hashlib.blake2b(p.read_bytes(), digest_size=8).hexdigest()
        )
    return out


@pytest.fixture(scope="module")
def series():
    return make_series(n_train=400, n_test=200, n_channels=3, n_anomalies=3, seed=0)


@pytest.fixture()
def files(tmp_path, series):
    """train.csv, test.csv (with a label column), labels.npy in a fresh folder; cwd there."""
    cols = ["a", "b", "c"]
    pd.DataFrame(series.train, columns=cols).to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame(series.test, columns=cols).assign(label=series.labels).to_csv(
        tmp_path / "test.csv", index=False
    )
    np.save(tmp_path / "labels.npy", series.labels)
    return tmp_path


@pytest.fixture(scope="module")
def fitted_run(tmp_path_factory, series):
    """A finished `diffad detect` run folder (with model/), made once."""
    root = tmp_path_factory.mktemp("run")
    cols = ["a", "b", "c"]
    pd.DataFrame(series.train, columns=cols).to_csv(root / "train.csv", index=False)
    pd.DataFrame(series.test, columns=cols).assign(label=series.labels).to_csv(root / "test.csv", index=False)
    r = runner.invoke(
        app,
        [
            "detect",
            "--train",
            str(root / "train.csv"),
            "--test",
            str(root / "test.csv"),
            "--out",
            str(root / "run"),
            *SET,
        ],
    )
    assert r.exit_code == 0, r.output
    return root / "run"


# ------------------------------------------------------------------------------------- CLI battery
def _score(model, test, out) -> list[str]:
    return ["score", "--model", str(model), "--test", str(test), "--out", str(out)]


def _prepare(case: str, d: Path, fitted_run: Path) -> list[str]:
    """Set up the folder ``d`` for one case and return the command's arguments."""
    train, test = str(d / "train.csv"), str(d / "test.csv")
    if case == "model folder holds user files":
        (d / "v").mkdir()
        (d / "v" / "notes.txt").write_text("notes")
        (d / "v" / "train.csv").write_bytes((d / "train.csv").read_bytes())
        return ["fit", "--train", str(d / "v" / "train.csv"), "--model", str(d / "v"), *SET]
    if case == "model path is a file":
        (d / "notes.txt").write_text("notes")
        return ["fit", "--train", train, "--model", str(d / "notes.txt"), *SET]
    if case == "out folder holds user files":
        (d / "out").mkdir()
        (d / "out" / "keep.txt").write_text("mine")
        return ["detect", "--train", train, "--test", test, "--out", str(d / "out"), *SET]
    if case == "an earlier run with a user file added":
        import shutil

        shutil.copytree(fitted_run, d / "out")
        (d / "out" / "notes.txt").write_text("mine")
        return ["detect", "--train", train, "--test", test, "--out", str(d / "out"), *SET]
    if case == "input inside the run it replaces":
        import shutil

        shutil.copytree(fitted_run, d / "out")
        (d / "out" / "scores.csv").write_bytes((d / "test.csv").read_bytes())
        return _score(str(fitted_run / "model"), str(d / "out" / "scores.csv"), str(d / "out"))
    if case == "out is a file":
        (d / "o.txt").write_text("x")
        return _score(str(fitted_run / "model"), test, str(d / "o.txt"))
    if case == "out below a file":
        (d / "o.txt").write_text("x")
        return _score(str(fitted_run / "model"), test, str(d / "o.txt" / "run"))
    if case == "device cuda without CUDA":
        return ["detect", "--train", train, "--test", test, "--out", str(d / "out"), "--device", "cuda", *SET]
    if case == "device foo":
        return ["fit", "--train", train, "--model", str(d / "m"), "--device", "foo", *SET]
    if case == "negative seed":
        return ["fit", "--train", train, "--model", str(d / "m"), "--seed", "-1", *SET]
    if case == "parameter of the wrong type":
        return ["fit", "--train", train, "--model", str(d / "m"), *SET, "--set", "window=abc"]
    if case == "unknown parameter":
        return ["fit", "--train", train, "--model", str(d / "m"), *SET, "--set", "windw=20"]
    if case == "batch size 0":
        return ["fit", "--train", train, "--model", str(d / "m"), *SET, "--set", "batch_size=0"]
    if case == "test stride beyond the window":
        return ["fit", "--train", train, "--model", str(d / "m"), *SET, "--set", "test_stride=40"]
    if case == "test file missing":
        return ["detect", "--train", train, "--test", str(d / "nope.csv"), "--out", str(d / "out"), *SET]
    if case == "labels of the wrong length":
        np.save(d / "short.npy", np.zeros(10, dtype=int))
        return [
            "detect",
            "--train",
            train,
            "--test",
            test,
            "--labels",
            str(d / "short.npy"),
            "--out",
            str(d / "out"),
            *SET,
        ]
    if case == "labels not 0/1":
        np.save(d / "half.npy", np.full(200, 0.5))
        return [
            "detect",
            "--train",
            train,
            "--test",
            test,
            "--labels",
            str(d / "half.npy"),
            "--out",
            str(d / "out"),
            *SET,
        ]
    if case == "NPZ labels not 0/1":
        np.savez(d / "t.npz", values=np.random.default_rng(0).normal(size=(200, 3)), labels=np.full(200, 256))
        return _score(str(fitted_run / "model"), str(d / "t.npz"), str(d / "out"))
    if case == "header-only CSV":
        (d / "h.csv").write_text("a,b,c\n")
        return ["fit", "--train", str(d / "h.csv"), "--model", str(d / "m"), *SET]
    if case == "empty CSV":
        (d / "e.csv").write_text("")
        return ["fit", "--train", str(d / "e.csv"), "--model", str(d / "m"), *SET]
    if case == "binary file named .csv":
        (d / "b.csv").write_bytes(bytes(range(256)) * 8)
        return ["fit", "--train", str(d / "b.csv"), "--model", str(d / "m"), *SET]
    if case == "unsorted timestamps":
        ts = pd.date_range("2024-01-01", periods=400, freq="min").to_numpy()[::-1]
        pd.read_csv(train).assign(timestamp=ts).to_csv(d / "u.csv", index=False)
        return ["fit", "--train", str(d / "u.csv"), "--model", str(d / "m"), *SET]
    if case == "duplicate timestamps":
        ts = pd.date_range("2024-01-01", periods=400, freq="min").to_numpy().copy()
        ts[5] = ts[4]
        pd.read_csv(train).assign(timestamp=ts).to_csv(d / "u.csv", index=False)
        return ["fit", "--train", str(d / "u.csv"), "--model", str(d / "m"), *SET]
    if case == "test columns renamed":
        pd.read_csv(test).rename(columns={"a": "x"}).to_csv(d / "r.csv", index=False)
        return _score(str(fitted_run / "model"), str(d / "r.csv"), str(d / "out"))
    if case == "test with other channel count":
        pd.read_csv(test).drop(columns=["c"]).to_csv(d / "r.csv", index=False)
        return _score(str(fitted_run / "model"), str(d / "r.csv"), str(d / "out"))
    if case == "model with a bad parameter":
        import shutil

        shutil.copytree(fitted_run / "model", d / "m")
        meta = json.loads((d / "m" / "detector.json").read_text())
        meta["params"]["window"] = "abc"
        (d / "m" / "detector.json").write_text(json.dumps(meta))
        return _score(str(d / "m"), test, str(d / "out"))
    if case == "model folder is not a model":
        (d / "m").mkdir()
        (d / "m" / "x.txt").write_text("x")
        return _score(str(d / "m"), test, str(d / "out"))
    if case == "text column in the series":
        pd.read_csv(train).assign(host="web-1").to_csv(d / "t.csv", index=False)
        return ["fit", "--train", str(d / "t.csv"), "--model", str(d / "m"), *SET]
    if case == "evaluate on text scores":
        (d / "s.csv").write_text("score\nhigh\nlow\n")
        return ["evaluate", "--scores", str(d / "s.csv"), "--labels", str(d / "labels.npy")]
    if case == "evaluate labels not 0/1":
        np.save(d / "s.npy", np.arange(200.0))
        np.save(d / "half.npy", np.full(200, 0.5))
        return ["evaluate", "--scores", str(d / "s.npy"), "--labels", str(d / "half.npy")]
    raise AssertionError(case)


CLI_CASES = {  # case -> words the message must hold (what was expected / got)
    "model folder holds user files": r"did not write.*notes\.txt.*--model",
    "model path is a file": r"got an existing file.*--model",
    "out folder holds user files": r"did not write.*keep\.txt.*--out",
    "an earlier run with a user file added": r"also holds other files \(notes\.txt\)",
    "input inside the run it replaces": r"--test: expected a file outside --out.*would be lost",
    "out is a file": r"got an existing file.*--out",
    "out below a file": r"which is a file",
    "device cuda without CUDA": r"device: expected a device this machine has, got 'cuda'.*--device cpu",
    "device foo": r"device: expected 'cpu'.*got 'foo'",
    "negative seed": r"random_state: expected an integer >= 0.*got -1.*--seed",
    "parameter of the wrong type": r"window: expected an integer >= 2, got 'abc'.*--set window=",
    "unknown parameter": r"--set / --config: expected parameters of ImDiffusionDetector, got unknown \['windw'\]",
    "batch size 0": r"batch_size: expected an integer >= 1, got 0",
    "test stride beyond the window": r"test_stride: expected at most window=16.*--set test_stride=8",
    "test file missing": r"expected an existing file, got .*nope\.csv",
    "labels of the wrong length": r"expected 200 \(one per row",
    "labels not 0/1": r"expected only 0 and 1, got values \[0\.5\]",
    "NPZ labels not 0/1": r"expected only 0 and 1, got values \[256\.0\]",
    "header-only CSV": r"expected data rows below the header, got only a header",
    "empty CSV": r"expected a header row and data rows, got an empty file",
    "binary file named .csv": r"expected a text file \(UTF-8\)",
    "unsorted timestamps": r"expected strictly increasing timestamps.*Sort the rows",
    "duplicate timestamps": r"expected strictly increasing timestamps, got 1 repeated",
    "test columns renamed": r"columns seen in fit, by name.*missing \['a'\].*unexpected \['x'\]",
    "test with other channel count": r"expected the 3 columns seen in fit, by name, got missing \['c'\]",
    "model with a bad parameter": r"detector\.json holds a parameter.*window",
    "model folder is not a model": r"expected .*detector\.json",
    "text column in the series": r"non-numeric column\(s\) \['host'\].*--timestamp-col NAME",
    "evaluate on text scores": r"expected numbers",
    "evaluate labels not 0/1": r"0 and 1",
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_cli_bad_input_exits_2_with_a_message_and_writes_nothing(case, files, fitted_run):
    if case == "device cuda without CUDA" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    args = _prepare(case, files, fitted_run)
    before, run_before = snapshot(files), snapshot(fitted_run)
    r = runner.invoke(app, args)
    assert r.exit_code == 2, (case, r.output, r.exception)
    assert "Traceback" not in r.output and r.output.startswith("error: ")
    message = " ".join(r.output.split())
    import re

    assert re.search(CLI_CASES[case], message), (case, message)
    assert snapshot(files) == before, case  # nothing written, nothing of the user's touched
    assert snapshot(fitted_run) == run_before, case


def test_cli_messages_name_cli_options_not_python_arguments(files):
    (files / "short.csv").write_text("a,b,c\n" + "".join(f"{i},2,3\n" for i in range(10)))
    r = runner.invoke(app, ["fit", "--train", str(files / "short.csv"), "--model", str(files / "m"), *SET])
    assert r.exit_code == 2 and "--set window=" in r.output, r.output
    with pytest.raises(DataValidationError, match=r"window=\d") as info:
        ImDiffusionDetector(**TINY).fit(np.ones((10, 3)) + np.arange(10)[:, None])
    assert "--set" not in str(info.value)


def test_an_unwritable_output_folder_is_refused_before_any_work(files, monkeypatch):
    """(As root every folder is writable, so the check is made to answer no.)"""
    import diffad.fsio

    monkeypatch.setattr(diffad.fsio, "_writable", lambda folder: False)
    before = snapshot(files)
    r = runner.invoke(app, ["fit", "--train", str(files / "train.csv"), "--model", str(files / "m"), *SET])
    assert (
        r.exit_code == 2
        and "expected a folder diffad can write in" in r.output
        and "not writable" in r.output
    ), r.output
    assert snapshot(files) == before


def test_semicolon_csv_is_read(files):
    df = pd.read_csv(files / "test.csv")
    df.to_csv(files / "semi.csv", sep=";", index=False)
    s = read_series(files / "semi.csv")
    assert s.channels == ("a", "b", "c") and s.labels is not None
    np.testing.assert_allclose(s.values, df[["a", "b", "c"]].to_numpy())
    pd.DataFrame({"score": np.arange(200.0)}).to_csv(files / "s.csv", sep=";", index=False)
    pd.DataFrame({"label": df["label"]}).to_csv(files / "y.csv", sep=";", index=False)
    r = runner.invoke(app, ["evaluate", "--scores", str(files / "s.csv"), "--labels", str(files / "y.csv")])
    assert r.exit_code == 0 and "AUC-PR" in r.output, r.output


# -------------------------------------------------------------------------------- run folders
def test_a_new_run_replaces_the_old_one_whole(files, fitted_run):
    import shutil

    shutil.copytree(fitted_run, files / "out")
    assert (files / "out" / "metrics.json").is_file()
    pd.read_csv(files / "test.csv").drop(columns=["label"]).to_csv(files / "nolabel.csv", index=False)
    r = runner.invoke(
        app,
        [
            "score",
            "--model",
            str(fitted_run / "model"),
            "--test",
            str(files / "nolabel.csv"),
            "--out",
            str(files / "out"),
        ],
    )
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in (files / "out").iterdir())
    assert names == [
        "events.csv",
        "events.json",
        "plot.png",
        "report.html",
        "run.json",
        "scores.csv",
    ]  # no stale metrics.json, no old model
    assert json.loads((files / "out" / "run.json").read_text())["files"] == [
        "events.csv",
        "events.json",
        "plot.png",
        "report.html",
        "scores.csv",
    ]
    assert not [p for p in files.iterdir() if p.name.startswith(".")]  # no staging or lock leftovers


def test_score_into_the_run_of_its_own_model_keeps_the_model(files, fitted_run):
    import shutil

    shutil.copytree(fitted_run, files / "out")
    r = runner.invoke(
        app,
        [
            "score",
            "--model",
            str(files / "out" / "model"),
            "--test",
            str(files / "test.csv"),
            "--out",
            str(files / "out"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert diffad.load(files / "out" / "model").n_features_in_ == 3


def test_save_refuses_foreign_folders_and_files_and_replaces_its_own(tmp_path):
    X = np.random.default_rng(0).normal(size=(100, 4))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_text("a\n1\n")
    (tmp_path / "file.txt").write_text("keep")
    before = snapshot(tmp_path)
    det = PCADetector().fit(X)
    for target in ("data", "file.txt"):
        with pytest.raises(PersistenceError, match="never deletes what it did not write"):
            det.save(tmp_path / target)
    assert snapshot(tmp_path) == before
    det.save(tmp_path / "m")
    (tmp_path / "m" / "mine.txt").write_text(
        "x"
    )  # a user file in a model folder: that folder is no longer ours alone
    with pytest.raises(PersistenceError, match=r"also holds other files \(mine\.txt\)"):
        det.save(tmp_path / "m")
    (tmp_path / "m" / "mine.txt").unlink()
    PCADetector(n_components=2).fit(X).save(tmp_path / "m")
    assert diffad.load(tmp_path / "m").n_components == 2


def test_a_second_writer_of_the_same_folder_is_refused(tmp_path, files):
    """Another process holds the folder (as a `detect` run does while it trains): a second run is refused."""
    code = (
        "import sys, time; from diffad.fsio import claim\n"
        "with claim(sys.argv[1], 'run'):\n    print('held', flush=True); time.sleep(60)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(files / "out")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        r = runner.invoke(
            app,
            [
                "detect",
                "--train",
                str(files / "train.csv"),
                "--test",
                str(files / "test.csv"),
                "--out",
                str(files / "out"),
                *SET,
            ],
        )
        assert r.exit_code == 2 and "another diffad process is writing this folder" in r.output, r.output
    finally:
        holder.kill()
        holder.wait()


# ------------------------------------------------------------------------------------ library
def _params_of(cls) -> list[str]:
    return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]


@pytest.mark.parametrize("cls", list(registry().values()), ids=lambda c: c.__name__)
def test_every_parameter_has_a_constraint_and_a_bad_value_is_refused_before_any_work(cls):
    assert sorted(cls._parameter_constraints) == sorted(_params_of(cls))
    cls()._check_params()  # the defaults pass
    X = np.random.default_rng(0).normal(size=(50, 4))
    for name in _params_of(cls):
        det = cls(**{name: object()})
        with pytest.raises(DataValidationError, match=rf"parameter {name}: expected"):
            det.fit(X)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(batch_size=0), "batch_size"),
        (dict(batch_size=-4), "batch_size"),
        (dict(lr=-1.0), "lr"),
        (dict(max_epochs=0), "max_epochs"),
        (dict(random_state=-1), "random_state"),
        (dict(device="foo"), "device"),
        (dict(window=True), "window"),
        (dict(lr=float("nan")), "lr"),
        (dict(test_stride=20), "test_stride"),
    ],
)
def test_imdiffusion_parameters(kwargs, match, series):
    with pytest.raises(DataValidationError, match=match):
        ImDiffusionDetector(**{**TINY, **kwargs}).fit(series.train)


@pytest.mark.parametrize(
    "det, match",
    [
        (PCADetector(n_components=10), "n_components: expected at most"),
        (PCADetector(n_components=-1), "n_components"),
        (diffad.IsolationForestDetector(n_estimators=0), "n_estimators"),
        (diffad.IsolationForestDetector(max_samples="x"), "max_samples"),
        (diffad.KNNDetector(n_neighbors=60), "n_neighbors: expected at most"),
        (diffad.LOFDetector(n_neighbors=0), "n_neighbors"),
        (diffad.OCSVMDetector(nu=2.0), "nu"),
        (diffad.RandomDetector(contamination=0.7), "contamination"),
    ],
)
def test_baseline_parameter_errors_are_diffads_own(det, match):
    with pytest.raises(DataValidationError, match=match):
        det.fit(np.random.default_rng(0).normal(size=(50, 4)))


def test_checkpoint_dir_that_is_a_file(tmp_path, series):
    (tmp_path / "f").write_text("x")
    with pytest.raises(DataValidationError, match="checkpoint_dir: expected a folder"):
        ImDiffusionDetector(**TINY, checkpoint_dir=str(tmp_path / "f")).fit(series.train)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "checkpoint.pt").write_bytes(b"someone else's")
    with pytest.raises(PersistenceError, match="did not write"):
        ImDiffusionDetector(**TINY, checkpoint_dir=str(tmp_path / "d")).fit(series.train)
    assert (tmp_path / "d" / "checkpoint.pt").read_bytes() == b"someone else's"


def test_resume_on_a_detector_without_checkpoints():
    with pytest.raises(
        DataValidationError,
        match=r"resume: expected a detector that writes training checkpoints \(ImDiffusionDetector",
    ):
        PCADetector().fit(np.random.default_rng(0).normal(size=(50, 4)), resume=True)


def test_resume_refuses_a_checkpoint_of_other_data_or_parameters(tmp_path, series):
    ImDiffusionDetector(**TINY, checkpoint_dir=str(tmp_path)).fit(series.train)
    with pytest.raises(PersistenceError, match="other training data or other parameters"):
        ImDiffusionDetector(**TINY, checkpoint_dir=str(tmp_path)).fit(series.train[::-1].copy(), resume=True)
    with pytest.raises(PersistenceError, match="other training data or other parameters"):
        ImDiffusionDetector(**{**TINY, "window": 20, "test_stride": 10}, checkpoint_dir=str(tmp_path)).fit(
            series.train, resume=True
        )
    # more epochs on the same data and parameters is a resume, not a mismatch
    ImDiffusionDetector(**{**TINY, "max_epochs": 3}, checkpoint_dir=str(tmp_path)).fit(
        series.train, resume=True
    )


def test_columns_are_matched_by_name(series, tmp_path):
    cols = ["a", "b", "c"]
    train, test = pd.DataFrame(series.train, columns=cols), pd.DataFrame(series.test, columns=cols)
    det = PCADetector().fit(train)
    assert det.feature_names_in_ == cols
    with pytest.warns(UserWarning, match="another order"):
        reordered = det.decision_function(test[["c", "a", "b"]])
    np.testing.assert_array_equal(reordered, det.decision_function(test))
    with pytest.raises(DataValidationError, match=r"missing \['c'\], unexpected \['z'\]"):
        det.decision_function(test.rename(columns={"c": "z"}))
    np.testing.assert_array_equal(
        det.decision_function(test.to_numpy()), det.decision_function(test)
    )  # numpy: by position
    assert diffad.load(det.save(tmp_path / "m")).feature_names_in_ == cols  # kept by save / load


def test_timestamps_must_increase_and_complex_values_are_refused(series):
    idx = pd.date_range("2024-01-01", periods=400, freq="min")
    with pytest.raises(DataValidationError, match="strictly increasing"):
        PCADetector().fit(pd.DataFrame(series.train, index=idx[::-1]))
    with pytest.raises(DataValidationError, match="repeated"):
        PCADetector().fit(pd.DataFrame(series.train, index=idx.insert(1, idx[0])[:400]))
    with pytest.raises(DataValidationError, match="real numbers"):
        PCADetector().fit(series.train + 1j)


# ------------------------------------------------------------------------------------------ fuzz
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import pandas as hpd  # noqa: E402


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.binary(max_size=2000),
    suffix=st.sampled_from([".csv", ".npz", ".npy", ".parquet", ".txt", ".csv.gz", ".npy.gz"]),
)
def test_read_series_on_random_bytes_raises_only_diffad_errors(tmp_path, data, suffix):
    path = tmp_path / f"x{suffix}"
    path.write_bytes(data)
    try:
        read_series(path)
    except DiffadError:
        pass


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    frame=hpd.data_frames(
        columns=hpd.columns(["timestamp", "a", "label"], dtype=float), index=hpd.range_indexes(max_size=20)
    ),
    text=st.lists(st.sampled_from(["a", "1", "-", "1e400", "nan", "2024-01-01", "", ";", ","]), max_size=30),
)
def test_read_series_on_random_frames_raises_only_diffad_errors(tmp_path, frame, text):
    frame.to_csv(tmp_path / "f.csv", index=False)
    (tmp_path / "t.csv").write_text(
        "a;b\n" + "\n".join(",".join(text[i : i + 3]) for i in range(0, len(text), 3))
    )
    for name in ("f.csv", "t.csv"):
        try:
            read_series(tmp_path / name)
        except DiffadError:
            pass


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("saved") / "m"
    PCADetector().fit(np.random.default_rng(0).normal(size=(100, 4))).save(path)
    return path


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
    max_leaves=10,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    meta_edit=st.dictionaries(
        st.sampled_from(["format", "format_version", "class", "params", "attributes", "has_weights"]),
        _JSON,
        max_size=3,
    ),
    param_edit=st.dictionaries(
        st.sampled_from(["n_components", "contamination", "bogus"]), _JSON, max_size=2
    ),
    npz=st.one_of(st.none(), st.binary(max_size=300)),
)
def test_load_of_damaged_models_raises_only_persistence_errors(
    tmp_path, saved_model, meta_edit, param_edit, npz
):
    import shutil

    target = tmp_path / f"m{time.monotonic_ns()}"
    shutil.copytree(saved_model, target)
    meta = json.loads((target / "detector.json").read_text())
    meta.update(meta_edit)
    if isinstance(meta.get("params"), dict):
        meta["params"].update(param_edit)
    (target / "detector.json").write_text(json.dumps(meta))
    if npz is not None:
        (target / "arrays.npz").write_bytes(npz)
    try:
        diffad.load(target).decision_function(np.zeros((5, 4)))
    except DiffadError:
        pass


# ---------------------------------------------------------------------------------- interruption
def _diffad(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "diffad", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kw,
    )


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    t0 = time.monotonic()
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < timeout, f"no {path} after {timeout} s"
        time.sleep(0.05)


LONG = [*SET, "--set", "max_epochs=6", "--set", "patience=10", "--seed", "3"]


def test_kill_9_after_a_checkpoint_then_resume_gives_the_uninterrupted_model(files):
    full = _diffad("fit", "--train", str(files / "train.csv"), "--model", str(files / "full"), *LONG)
    assert full.wait() == 0, full.communicate()
    proc = _diffad("fit", "--train", str(files / "train.csv"), "--model", str(files / "m"), *LONG)
    _wait_for(files / "m" / "checkpoint.pt", proc)
    proc.kill()  # SIGKILL: no handler runs
    proc.wait()
    assert not (files / "m" / "detector.json").exists()
    with pytest.raises(PersistenceError, match="only a training checkpoint"):
        diffad.load(files / "m")
    resumed = _diffad(
        "fit", "--train", str(files / "train.csv"), "--model", str(files / "m"), *LONG, "--resume"
    )
    out, err = resumed.communicate()
    assert resumed.returncode == 0, err
    a, b = diffad.load(files / "full"), diffad.load(files / "m")
    assert (
        a.history_["train_loss"] == b.history_["train_loss"]
        and a.history_["best_epoch"] == b.history_["best_epoch"]
    )
    for (k, v), (k2, v2) in zip(a._net.state_dict().items(), b._net.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2), k
    assert sorted(p.name for p in (files / "m").iterdir()) == [
        "arrays.npz",
        "detector.json",
        "weights.pt",
    ]  # checkpoint gone
    assert b.checkpoint_dir is None


def test_ctrl_c_says_where_the_checkpoint_is_and_how_to_resume(files):
    import signal

    proc = _diffad(
        "detect",
        "--train",
        str(files / "train.csv"),
        "--test",
        str(files / "test.csv"),
        "--out",
        str(files / "out"),
        *LONG,
        # Ctrl-C's default action in the child, even when this suite runs with SIGINT ignored (as a job
        # started with `&` from a script does: its children then ignore SIGINT too, and so would diffad)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    _wait_for(files / "out" / "model" / "checkpoint.pt", proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert "the last finished epoch is saved in" in err and "--resume" in err and "Traceback" not in err
    assert sorted(p.name for p in (files / "out").iterdir()) == [
        "model"
    ]  # nothing else of the run was written
    resumed = _diffad(
        "detect",
        "--train",
        str(files / "train.csv"),
        "--test",
        str(files / "test.csv"),
        "--out",
        str(files / "out"),
        *LONG,
        "--resume",
    )
    out, err = resumed.communicate()
    assert resumed.returncode == 0, err
    assert (files / "out" / "run.json").is_file() and not (files / "out" / "model" / "checkpoint.pt").exists()


def test_an_internal_error_prints_a_short_message_and_logs_the_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    code = (
        "import diffad.cli as c\n"
        "def boom():\n    raise RuntimeError('boom')\n"
        "c.app.command('boom')(boom)\nc.main()\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, "boom"], capture_output=True, text=True, env={**os.environ}
    )
    assert (
        r.returncode == 1 and "Traceback" not in r.stderr and "internal error: RuntimeError: boom" in r.stderr
    ), r.stderr
    logs = list((tmp_path / "state" / "diffad").glob("error-*.log"))
    assert len(logs) == 1 and "Traceback" in logs[0].read_text() and "boom" in logs[0].read_text()
