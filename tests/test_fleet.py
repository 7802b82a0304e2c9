"""diffad fleet on a real dask.distributed LocalCluster (worker processes) over tiny series."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("distributed", reason="diffad fleet needs the fleet extra: pip install 'diffad[fleet]'")

import dask  # noqa: E402
import torch  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

import diffad  # noqa: E402
from diffad import fleet  # noqa: E402
from diffad.cli import app  # noqa: E402
from diffad.data.synthetic import make_series  # noqa: E402
from diffad.exceptions import ConfigError, PersistenceError  # noqa: E402

runner = CliRunner()
TINY = {**diffad.ImDiffusionDetector._test_params(), "max_epochs": 1}
TINY_SET = [x for k, v in TINY.items() for x in ("--set", f"{k}={v}")]


def write_series(folder: Path, seed: int, n_train=400, n_test=200, channels=3) -> None:
    data = make_series(n_train=n_train, n_test=n_test, n_channels=channels, n_anomalies=2, seed=seed)
    folder.mkdir(parents=True)
    cols = [f"m{k}" for k in range(channels)]
    times = pd.date_range("2026-01-01", periods=n_train + n_test, freq="min")
    pd.DataFrame(data.train, columns=cols).assign(timestamp=times[:n_train]).to_csv(
        folder / "train.csv", index=False
    )
    test = pd.DataFrame(data.test, columns=cols).assign(timestamp=times[n_train:], label=data.labels)
    test.to_csv(folder / "test.csv", index=False)


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    root = tmp_path_factory.mktemp("hosts")
    for i in range(8):
        write_series(root / f"host-{i}", seed=i)
    return root


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as c:
            yield c


def scores(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "scores.csv")


def test_each_series_scores_as_detect_alone(hosts, tmp_path):
    out = tmp_path / "fleet"
    r = runner.invoke(
        app, ["fleet", "detect", str(hosts), "--out", str(out), "--workers", "2", "--quiet", *TINY_SET]
    )
    assert r.exit_code == 0, r.output
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 8 and set(summary["status"]) == {"ok"}
    assert set(summary["series"]) == {f"host-{i}" for i in range(8)}
    # one process, the same seed and thread count as a fleet task (one torch thread)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for i in (0, 5):
            alone = tmp_path / f"alone-{i}"
            r = runner.invoke(
                app,
                [
                    "detect",
                    "--train",
                    str(hosts / f"host-{i}" / "train.csv"),
                    "--test",
                    str(hosts / f"host-{i}" / "test.csv"),
                    "--out",
                    str(alone),
                    "--quiet",
                    *TINY_SET,
                ],
            )
            assert r.exit_code == 0, r.output
            pd.testing.assert_frame_equal(scores(out / f"host-{i}"), scores(alone), check_exact=True)
            assert (out / f"host-{i}" / "events.csv").read_text() == (alone / "events.csv").read_text()
    finally:
        torch.set_num_threads(before)
    # the report ranks by severity and links every series' report
    page = (out / "report.html").read_text()
    assert page.count("/report.html'") == 8
    ranked = summary["max_severity"].fillna(-np.inf).to_numpy()
    assert (np.diff(ranked) <= 0).all()
    assert json.loads((out / "fleet.json").read_text())["ok"] == 8


def test_a_failing_series_is_recorded_and_the_rest_go_on(hosts, tmp_path, client):
    src = tmp_path / "src"
    for i in range(3):
        write_series(src / f"good-{i}", seed=10 + i)
    (src / "bad-file").mkdir()
    (src / "bad-file" / "train.csv").write_text("a,b\nx,y\n")
    (src / "bad-file" / "test.csv").write_text("a,b\nx,y\n")
    write_series(src / "too-short", seed=3)
    t = pd.read_csv(src / "too-short" / "train.csv")
    t.head(1).to_csv(src / "too-short" / "train.csv", index=False)
    write_series(src / "nan-channel", seed=4)
    t = pd.read_csv(src / "nan-channel" / "train.csv")
    t["m1"] = np.nan
    t.to_csv(src / "nan-channel" / "train.csv", index=False)
    out = tmp_path / "fleet"
    summary = fleet.run(src, out, detector=diffad.PCADetector(), client=client, progress=False)
    by = summary.set_index("series")
    assert (by.loc[["good-0", "good-1", "good-2"], "status"] == "ok").all()
    for bad in ("bad-file", "too-short", "nan-channel"):
        assert by.loc[bad, "status"] == "failed" and len(by.loc[bad, "error"]) > 10
        assert not (out / bad).exists()
    assert list(summary["status"])[-3:] == ["failed"] * 3  # failures rank last
    # the command line says "partial" by its exit code and names the failures
    r = runner.invoke(
        app,
        [
            "fleet",
            "detect",
            str(src),
            "--out",
            str(tmp_path / "cli"),
            "--detector",
            "PCA",
            "--workers",
            "1",
            "--quiet",
        ],
    )
    assert r.exit_code == 3, r.output
    assert "3 failed" in r.output and "failed: bad-file" in r.output


def test_a_rerun_reuses_finished_series_and_a_new_setting_recomputes(hosts, tmp_path, client):
    out = tmp_path / "fleet"
    first = fleet.run(hosts, out, detector=diffad.PCADetector(), client=client, progress=False)
    assert not first["reused"].any()
    stamp = (out / "host-0" / "run.json").stat().st_mtime_ns
    again = fleet.run(hosts, out, detector=diffad.PCADetector(), client=client, progress=False)
    assert again["reused"].all()
    assert (out / "host-0" / "run.json").stat().st_mtime_ns == stamp
    cols = ["series", "events", "max_severity", "flagged", "AUC-PR"]
    pd.testing.assert_frame_equal(first[cols], again[cols])
    other = fleet.run(
        hosts, out, detector=diffad.PCADetector(contamination=0.05), client=client, progress=False
    )
    assert not other["reused"].any()


def test_a_killed_run_resumes_without_recomputing_finished_series(hosts, tmp_path, client):
    out = tmp_path / "fleet"
    cmd = [
        sys.executable,
        "-m",
        "diffad",
        "fleet",
        "detect",
        str(hosts),
        "--out",
        str(out),
        "--detector",
        "PCA",
        "--workers",
        "1",
        "--quiet",
    ]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / ".fleet").glob("*.json"))) < 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p.stem for p in (out / ".fleet").glob("*.json")}
    assert 2 <= len(finished) < 8, "the run was not killed midway"
    assert not (out / "summary.csv").exists()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    summary = pd.read_csv(out / "summary.csv")
    reused = set(summary.loc[summary["reused"], "series"])
    assert finished <= reused and len(summary) == 8 and set(summary["status"]) == {"ok"}
    # the same final results as an uninterrupted run
    fleet.run(hosts, tmp_path / "whole", detector=diffad.PCADetector(), client=client, progress=False)
    for i in range(8):
        pd.testing.assert_frame_equal(scores(out / f"host-{i}"), scores(tmp_path / "whole" / f"host-{i}"))


def test_a_lost_worker_loses_and_duplicates_nothing(hosts, tmp_path):
    out = tmp_path / "fleet"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as c:
            pids = list(c.run(os.getpid).values())
            killed = []

            def kill_one(row):
                if not killed:
                    killed.append(pids[0])
                    os.kill(pids[0], signal.SIGKILL)

            summary = fleet.run(
                hosts, out, detector=diffad.PCADetector(), client=c, progress=False, on_row=kill_one
            )
    assert killed
    assert sorted(summary["series"]) == sorted(f"host-{i}" for i in range(8))  # each once
    assert set(summary["status"]) == {"ok"}
    for i in range(8):
        run = json.loads((out / f"host-{i}" / "run.json").read_text())
        assert "scores.csv" in run["files"] and len(scores(out / f"host-{i}")) == 200


def test_fit_then_score_gives_the_detect_scores(hosts, tmp_path, client):
    fleet.run(
        hosts, tmp_path / "models", detector=diffad.PCADetector(), mode="fit", client=client, progress=False
    )
    assert (tmp_path / "models" / "host-3" / "detector.json").is_file()
    scored = fleet.run(
        hosts, tmp_path / "scored", mode="score", models=tmp_path / "models", client=client, progress=False
    )
    assert set(scored["status"]) == {"ok"}
    fleet.run(hosts, tmp_path / "detect", detector=diffad.PCADetector(), client=client, progress=False)
    pd.testing.assert_frame_equal(
        scores(tmp_path / "scored" / "host-3"), scores(tmp_path / "detect" / "host-3")
    )


def test_every_input_layout(hosts, tmp_path, client):
    frames = []
    for i in range(3):
        for part in ("train", "test"):
            f = pd.read_csv(hosts / f"host-{i}" / f"{part}.csv")
            frames.append(f.assign(series=f"host-{i}", part=part))
    table = pd.concat(frames).fillna({"label": 0})
    table.to_csv(tmp_path / "long.csv", index=False)
    table.to_parquet(tmp_path / "long.parquet", index=False)
    manifest = [
        {
            "series": f"host-{i}",
            "train": str(hosts / f"host-{i}" / "train.csv"),
            "test": str(hosts / f"host-{i}" / "test.csv"),
        }
        for i in range(3)
    ]
    (tmp_path / "fleet.json").write_text(json.dumps(manifest))
    pd.DataFrame(manifest).to_csv(tmp_path / "manifest.csv", index=False)
    for i in range(3):
        pd.read_csv(hosts / f"host-{i}" / "train.csv").to_csv(tmp_path / f"single-{i}.csv", index=False)
    want = scores_of(
        fleet.run(hosts, tmp_path / "ref", detector=diffad.PCADetector(), client=client, progress=False),
        tmp_path / "ref",
    )
    for name in ("long.csv", "long.parquet", "fleet.json", "manifest.csv"):
        out = tmp_path / f"out-{name}"
        got = fleet.run(tmp_path / name, out, detector=diffad.PCADetector(), client=client, progress=False)
        assert set(got["status"]) == {"ok"}, (name, got["error"].tolist())
        for sid, s in scores_of(got, out).items():
            np.testing.assert_allclose(s, want[sid], err_msg=name)
    with pytest.raises(ConfigError, match="train_fraction"):
        fleet.discover(str(tmp_path / "single-*.csv"))[0].read()
    got = fleet.run(
        str(tmp_path / "single-*.csv"),
        tmp_path / "glob",
        detector=diffad.PCADetector(),
        client=client,
        progress=False,
        train_fraction=0.5,
    )
    assert sorted(got["series"]) == ["single-0", "single-1", "single-2"] and (got["n_test"] == 200).all()
    mem = {
        "a": (np.random.default_rng(0).normal(size=(300, 2)), np.random.default_rng(1).normal(size=(100, 2)))
    }
    got = fleet.run(mem, tmp_path / "mem", detector=diffad.PCADetector(), client=client, progress=False)
    assert got.loc[0, "status"] == "ok"


def scores_of(summary: pd.DataFrame, out: Path) -> dict[str, np.ndarray]:
    return {r["series"]: scores(out / r["folder"])["score"].to_numpy() for _, r in summary.iterrows()}


def test_a_folder_of_other_files_is_refused(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(PersistenceError, match="never deletes"):
        fleet.run(
            {"a": (np.zeros((50, 1)), np.zeros((20, 1)))}, tmp_path, detector=diffad.PCADetector(), workers=1
        )
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_without_dask_the_command_says_how_to_install_it(monkeypatch, hosts, tmp_path):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ConfigError, match=r"pip install 'diffad\[fleet\]'"):
        fleet.require_dask()
    r = runner.invoke(app, ["fleet", "detect", str(hosts), "--out", str(tmp_path / "x"), "--detector", "PCA"])
    assert r.exit_code == 2 and "diffad[fleet]" in r.output


def test_shared_fits_one_model_per_channel_set_and_scores_every_series_with_it(client, tmp_path):
    root = tmp_path / "mixed"
    for i in range(3):
        write_series(root / f"web-{i}", seed=i)
    write_series(root / "db-0", seed=7, channels=4)  # other channels: a group of its own
    (root / "broken").mkdir()
    (root / "broken" / "train.csv").write_text("m0,m1,m2\n")  # header only
    (root / "broken" / "test.csv").write_text("m0,m1,m2\n1,2,3\n")
    out = tmp_path / "fleet"
    summary = fleet.run(root, out, detector=diffad.PCADetector(), client=client, shared=True, progress=False)
    by = summary.set_index("series")
    assert by.loc["broken", "status"] == "failed" and "train" in by.loc["broken", "error"]
    ok = by[by["status"] == "ok"]
    assert len(ok) == 4 and ok["model"].nunique() == 2
    env = json.loads((out / "fleet.json").read_text())
    groups = {g["group"]: g for g in env["shared_models"]}
    web = ok.loc["web-0", "model"]
    assert sorted(groups[web]["series"]) == ["web-0", "web-1", "web-2"] and groups[web]["n_train"] == 3 * 400
    # the model is the one fitted on the three training parts end to end, and scores each series
    trains = [pd.read_csv(root / f"web-{i}" / "train.csv").drop(columns="timestamp") for i in range(3)]
    alone = diffad.PCADetector().fit(pd.concat(trains, ignore_index=True))
    model = diffad.load(out / "_shared" / web)
    assert np.allclose(model.threshold_, alone.threshold_)
    for i in range(3):
        test = pd.read_csv(root / f"web-{i}" / "test.csv").drop(columns=["timestamp", "label"])
        assert np.allclose(scores(out / f"web-{i}")["score"], alone.decision_function(test))
    # a second run reuses the shared models and every finished series
    again = fleet.run(root, out, detector=diffad.PCADetector(), client=client, shared=True, progress=False)
    assert again.set_index("series").loc[list(ok.index), "reused"].all()
    assert all(g["reused"] for g in json.loads((out / "fleet.json").read_text())["shared_models"])
    with pytest.raises(ConfigError, match="--shared: expected `fleet detect`"):
        fleet.run(
            root, tmp_path / "f2", detector=diffad.PCADetector(), client=client, shared=True, mode="fit"
        )


def test_a_series_that_kills_every_worker_fails_alone(tmp_path):
    """A task whose workers all die running it (Dask gives up: KilledWorker) is that series' failure."""

    class Crashing(diffad.PCADetector):
        def _fit(self, X):
            if X.shape[1] == 2:  # the series with two channels takes its worker down
                os._exit(1)
            super()._fit(X)

    rng = np.random.default_rng(0)
    series = {
        "good": (rng.normal(size=(200, 3)), rng.normal(size=(50, 3))),
        "bad": (rng.normal(size=(200, 2)), rng.normal(size=(50, 2))),
    }
    # two workers: the good series is not queued behind the crashing one on the worker it takes down
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        with LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster:
            with Client(cluster) as c:
                summary = fleet.run(series, tmp_path / "f", detector=Crashing(), client=c, progress=False)
    by = summary.set_index("series")
    assert by.loc["good", "status"] == "ok"
    assert by.loc["bad", "status"] == "failed" and "KilledWorker" in by.loc["bad", "error"]


def test_fleet_cli_takes_a_config_file_and_shared(hosts, tmp_path):
    cfg = tmp_path / "knn.toml"
    cfg.write_text('detector = "knn"\nn_neighbors = 4\n')
    out = tmp_path / "fleet"
    r = runner.invoke(
        app,
        [
            "fleet",
            "detect",
            str(hosts),
            "--out",
            str(out),
            "--workers",
            "1",
            "--config",
            str(cfg),
            "--shared",
            "--quiet",
        ],
    )
    assert r.exit_code == 0, r.output
    env = json.loads((out / "fleet.json").read_text())
    assert env["detector"] == "KNNDetector" and env["params"]["n_neighbors"] == 4 and env["shared"] is True
    (group,) = env["shared_models"]
    assert len(group["series"]) == 8 and diffad.load(out / "_shared" / group["group"]).n_neighbors == 4
    r = runner.invoke(app, ["fleet", "fit", str(hosts), "--out", str(tmp_path / "m"), "--shared"])
    assert r.exit_code != 0  # --shared belongs to `fleet detect` only
