import dataclasses
import json

import pytest
from typer.testing import CliRunner

from diffad import ConfigError
from diffad.bench import collect, load_config, plan, preset_names, run_bench, tables, write_report
from diffad.bench.runner import cell_dir
from diffad.cli import app


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    cfg = load_config(preset="smoke")
    summary = run_bench(cfg, results, verbose=False)
    return cfg, results, summary


def test_tiny_bench_end_to_end(smoke_run):
    cfg, results, summary = smoke_run
    assert summary == {"cells": 12, "skipped": 0, "ran": 12, "errors": {}}
    cells = collect(results / "smoke")
    assert len(cells) == 12 and {c["dataset"] for c in cells} == {"SYNTH/0", "SYNTH/1"}
    one = results / "smoke" / "ImDiffusion-tiny" / "SYNTH__0" / "1"
    assert {p.name for p in one.iterdir()} == {"scores.npy", "preds.npy", "config.json", "done.json"}
    done = json.loads((one / "done.json").read_text())
    assert "AUC-PR" in done["honest"] and "xi" in done["paper-protocol (uses test labels)"]
    assert not any("PA" in k for k in done["honest"])  # point-adjusted numbers are never untagged
    assert (
        done["ran_on"]["torch_threads"] >= 1
        and done["ran_on"]["cpus"] >= 1
        and done["ran_on"]["device"] == "cpu"
    )
    params = json.loads((one / "config.json").read_text())["params"]
    assert params["random_state"] == 1
    assert 1 <= done["epochs"] <= params["max_epochs"] and 0 <= done["best_epoch"] < done["epochs"]
    baseline = json.loads((results / "smoke" / "PCA" / "SYNTH__0" / "0" / "done.json").read_text())
    assert "epochs" not in baseline  # no training loop, nothing to report
    # the generated anomalies name their channels: root-cause hints are scored against them
    assert set(done["interpretation"]) == {
        "HitRate@100%",
        "HitRate@150%",
        "z-score HitRate@100%",
        "z-score HitRate@150%",
    }
    assert set(baseline["interpretation"]) == {
        "z-score HitRate@100%",
        "z-score HitRate@150%",
    }  # PCA has no explain()
    assert all(0.0 <= v <= 1.0 for v in done["interpretation"].values())
    md = tables(cells)
    assert md.index("### honest") < md.index("### paper-protocol (uses test labels)")
    assert "### interpretation" in md and "z-score HitRate@150%" in md
    assert (
        "### average rank by AUC-PR over 2 datasets" in md
        and "### AUC-PR (honest) by dataset" in md
        and "### VUS-PR (honest) by dataset" in md
    )
    path = write_report(results / "smoke")
    assert path.is_file() and (results / "smoke" / "SYNTH__0.png").is_file()


def test_rerun_skips_finished_cells_and_redoes_interrupted_ones(smoke_run):
    cfg, results, _ = smoke_run
    victim = results / "smoke" / "PCA" / "SYNTH__1" / "0" / "done.json"
    victim.unlink()  # as if the run had been killed inside this cell
    kept = results / "smoke" / "Random" / "SYNTH__0" / "0" / "done.json"
    before = kept.stat().st_mtime_ns
    summary = run_bench(cfg, results, verbose=False)
    assert summary["ran"] == 1 and summary["skipped"] == 11 and victim.is_file()
    assert kept.stat().st_mtime_ns == before


def test_parallel_cells_give_the_serial_numbers(smoke_run, tmp_path):
    cfg, results, _ = smoke_run
    fast = dataclasses.replace(
        cfg, detectors=[d for d in cfg.detectors if not d.name.startswith("ImDiffusion")]
    )
    summary = run_bench(fast, tmp_path, jobs=2, verbose=False)
    assert summary["errors"] == {} and summary["ran"] == len(plan(fast)) >= 4
    for spec, dataset, seed in plan(fast):
        serial, parallel = (
            json.loads((cell_dir(root, "smoke", spec.name, dataset, seed) / "done.json").read_text())
            for root in (results, tmp_path)
        )
        assert parallel["honest"] == serial["honest"] and parallel["ran_on"]["torch_threads"] >= 1


def test_rerun_refuses_cells_finished_with_other_settings(smoke_run, tmp_path):
    import shutil

    cfg, results, _ = smoke_run
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    path = copy / "smoke" / "ImDiffusion-tiny" / "SYNTH__0" / "0" / "config.json"
    stored = json.loads(path.read_text())
    stored["params"]["ensemble_steps"] += 1  # as if a preset had changed since the cell ran
    path.write_text(json.dumps(stored))
    with pytest.raises(ConfigError, match=r"ImDiffusion-tiny/SYNTH/0/0 \(ensemble_steps"):
        run_bench(cfg, copy, verbose=False)
    del stored["params"]["ensemble_steps"]  # a parameter the cell did not know: taken at the class default
    path.write_text(json.dumps(stored))
    with pytest.raises(ConfigError, match="ensemble_steps"):  # the smoke config sets it away from the default
        run_bench(cfg, copy, verbose=False)


def test_strict_config(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "x"\ndatasets = ["SYNTH/0"]\nseed = [1]\n[[detectors]]\nname = "r"\ndetector = "RandomDetector"\n'
    )
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['seed'\]; valid keys are"):
        load_config(bad)
    bad.write_text(
        'name = "x"\ndatasets = ["SYNTH/0"]\n[[detectors]]\nname = "r"\ndetector = "RandomDetector"\nparams = { windw = 3 }\n'
    )
    cfg = load_config(bad)
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) \['windw'\]"):
        cfg.detectors[0].build(0)
    with pytest.raises(ConfigError, match="unknown 'nope'"):
        load_config(preset="nope")
    assert {"smoke", "smd-fast", "ablation-smd"} <= set(preset_names())
    assert len(plan(load_config(preset="smoke"))) == 12


def test_cli_bench_and_report(tmp_path):
    runner = CliRunner()
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        'name = "cli"\ndatasets = ["SYNTH/2"]\nseeds = [0]\nmetric_window = 20\n'
        '[[detectors]]\nname = "PCA"\ndetector = "PCADetector"\n'
    )
    r = runner.invoke(app, ["bench", str(cfg), "--results", str(tmp_path / "res"), "--quiet"])
    assert r.exit_code == 0, r.output
    assert "1 cells: 1 run, 0 already finished, 0 failed" in r.output and "| SYNTH/2 | PCA |" in r.output
    r = runner.invoke(app, ["bench", "report", str(tmp_path / "res" / "cli")])
    assert r.exit_code == 0 and (tmp_path / "res" / "cli" / "report.md").is_file()
    r = runner.invoke(app, ["bench", "--list"])
    assert "smoke" in r.output
    r = runner.invoke(app, ["bench", str(cfg), "--seeds", "1", "--results", str(tmp_path / "res"), "--quiet"])
    assert r.exit_code != 0 and "are not all seeds of run 'cli'" in r.output


def test_only_seeds_keeps_the_run_and_restricts_every_detector():
    conf = load_config(preset="smoke")
    one = conf.only_seeds((0,))
    assert one.name == conf.name and one.seeds == (0,) and len(plan(one)) == len(plan(conf)) // 2
    mixed = dataclasses.replace(conf, detectors=(dataclasses.replace(conf.detectors[0], seeds=(1, 2)),))
    assert mixed.only_seeds((0,)).detectors[0].seeds == () and mixed.only_seeds((2,)).detectors[0].seeds == (
        2,
    )
    with pytest.raises(ConfigError, match="not all seeds"):
        conf.only_seeds((7,))


def test_tabular_split_protocols():
    import numpy as np

    from diffad.bench import tabular_split

    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 4)) + np.arange(1000)[:, None] * 1e-3  # rows identifiable by their values
    y = (rng.random(1000) < 0.1).astype(int)
    tr, te, yt = tabular_split(X, y, "semi-supervised", seed=3, max_rows=None)
    assert len(tr) == (y == 0).sum() // 2 and len(te) == len(X) - len(tr) and yt.sum() == y.sum()
    assert abs(tr.mean(0)).max() < 1e-9 and np.allclose(tr.std(0), 1)  # scaler fitted on the training part
    tr2, te2, yt2 = tabular_split(X, y, "semi-supervised", seed=3, max_rows=None)
    assert np.array_equal(tr, tr2) and np.array_equal(yt, yt2)  # the seed fixes the split
    tr, te, yt = tabular_split(X, y, "unsupervised", seed=0, max_rows=None)
    assert np.allclose(tr, te) and np.array_equal(yt, y)
    tr, te, yt = tabular_split(X, y, "unsupervised", seed=0, max_rows=200)  # stratified cap
    assert len(te) == 200 and yt.sum() == round(200 * y.mean())


def test_tabular_bench_end_to_end(tmp_path):
    cfg = tmp_path / "t.toml"
    cfg.write_text(
        'name = "tab"\ndatasets = ["SYNTH-TAB/0", "SYNTH-TAB/1"]\nseeds = [0, 1]\n'
        '[[detectors]]\nname = "DTE-NP"\ndetector = "DTENonParametric"\n'
        '[[detectors]]\nname = "DTE-C"\ndetector = "DTECategorical"\nseeds = [0]\n'
        "params = { hidden = [16, 16], max_epochs = 2 }\n"
        '[[detectors]]\nname = "kNN"\ndetector = "KNNDetector"\n'
        '[[detectors]]\nname = "OCSVM"\ndetector = "OCSVMDetector"\n'
    )
    conf = load_config(cfg)
    assert len(plan(conf)) == 2 * (2 + 1 + 2 + 2)  # DTE-C: its own single seed
    summary = run_bench(conf, tmp_path / "res", verbose=False)
    assert summary["errors"] == {} and summary["ran"] == 14
    cells = collect(tmp_path / "res" / "tab")
    one = next(c for c in cells if c["detector"] == "DTE-NP")
    assert one["protocol"] == "semi-supervised" and set(one["honest"]) == {"AUC-ROC", "AUC-PR", "F1"}
    assert set(one["paper-protocol (uses test labels)"]) == {"F1@k"} and one["score_s_per_1000"] > 0
    md = tables(cells)
    assert (
        "## tabular, semi-supervised protocol" in md and "### average rank by AUC-ROC over 2 datasets" in md
    )
    assert (write_report(tmp_path / "res" / "tab")).is_file()
    bad = tmp_path / "b.toml"
    bad.write_text(
        'name = "b"\ndatasets = ["SYNTH-TAB/0"]\ntabular_protocol = "weak"\n[[detectors]]\nname = "r"\ndetector = "RandomDetector"\n'
    )
    with pytest.raises(ConfigError, match="tabular_protocol"):
        load_config(bad)


class _StepErrors:
    """Stands in for a fitted ImDiffusion: step errors per channel-reduction rule, as the runner reads them."""

    ensemble_steps = 1  # one step: the vote level cannot hide a poor r
    error_reduce = "sum"

    def __init__(self, errors):
        self.errors = errors  # (R, n, K)
        self.asked = []

    def step_errors(self, X, reduce=None):
        self.asked.append(reduce)
        how = reduce or self.error_reduce
        return self.errors.max(axis=2) if how == "max" else self.errors.sum(axis=2)


def _fake_set(name):
    import numpy as np

    from diffad.data.loaders import Dataset

    rng = np.random.default_rng(0)
    n = 2000
    y = np.zeros(n, dtype=int)
    y[1000:1010] = 1  # one 10-point event: 0.5 % of the points
    errors = rng.random((1, n, 2))
    errors[:, 1000:1010, 0] += 5.0  # visible to every step in channel 0
    return Dataset(name, np.zeros((10, 2)), np.zeros((n, 2)), y), errors


def test_paper_protocol_follows_the_published_rule_of_each_collection():
    from diffad.protocols import PER_ENTITY_RATIOS, paper_metrics

    def _paper_metrics(det, ds, scores, window, r):
        return paper_metrics(
            det, ds.test, ds.test_labels, scores, window=window, default_r=r, dataset=ds.name
        )

    ds, errors = _fake_set("SMD/machine-x")
    det = _StepErrors(errors)
    out = _paper_metrics(det, ds, errors.max(axis=(0, 2)), 100, 0.02)
    assert det.asked == ["max"] and out["reduce"] == "max"  # SMD: max over channels
    assert (
        out["r"] in PER_ENTITY_RATIOS and out["r"] < 0.02
    )  # chosen per entity: a small r drops false alarms
    assert out["PA-F1"] == pytest.approx(1.0)
    fixed = _paper_metrics(_StepErrors(errors), _fake_set("SMAP/A-1")[0], errors.max(axis=(0, 2)), 100, 0.02)
    assert fixed["r"] == 0.02 and fixed["reduce"] == "sum" and fixed["PA-F1"] < out["PA-F1"]
    other = _StepErrors(errors)
    assert _paper_metrics(other, _fake_set("SYNTH/0")[0], errors.max(axis=(0, 2)), 100, 0.05)["r"] == 0.05
    assert other.asked == [None]  # no published rule: the detector's own reduction


def test_mean_over_datasets_is_not_skewed_by_uneven_seeds():
    from diffad.bench.report import _section_table

    def cell(ds, seed, v):
        return {
            "detector": "d",
            "dataset": ds,
            "seed": seed,
            "fit_s": 1.0,
            "score_s": 1.0,
            "honest": {"AUC-PR": v},
        }

    # seeds 0 and 1 on A, only seed 0 on B: the mean is over datasets (0.5 and 0.9), no ± from one full seed
    rows = _section_table(
        [cell("A", 0, 0.4), cell("A", 1, 0.6), cell("B", 0, 0.9)],
        "honest",
        ("AUC-PR",),
        ("score_s", "score s", ".0f"),
    )
    assert any(r.startswith("| mean over datasets | d | 0.700 |") for r in rows)
    rows = _section_table(
        [cell("A", 0, 0.4), cell("A", 1, 0.6), cell("B", 0, 0.8), cell("B", 1, 1.0)],
        "honest",
        ("AUC-PR",),
        ("score_s", "score s", ".0f"),
    )
    assert any(r.startswith("| mean over datasets | d | 0.700 ± 0.100 |") for r in rows)


def test_mean_over_datasets_names_a_detector_that_missed_some():
    from diffad.bench.report import _section_table

    def cell(det, ds, v):
        return {
            "detector": det,
            "dataset": ds,
            "seed": 0,
            "fit_s": 1.0,
            "score_s": 1.0,
            "honest": {"AUC-PR": v},
        }

    rows = _section_table(
        [cell("a", "A", 0.2), cell("a", "B", 0.4), cell("b", "A", 0.9)],
        "honest",
        ("AUC-PR",),
        ("score_s", "score s", ".0f"),
    )
    assert "| mean over datasets | a | 0.300 | 1.0 | 1 |" in rows
    assert "| mean over 1 of 2 datasets | b | 0.900 | 1.0 | 1 |" in rows


def test_rank_table_ranks_only_datasets_every_detector_finished_and_names_the_rest():
    from diffad.bench.report import rank_table

    def cell(det, ds, v):
        return {"detector": det, "dataset": ds, "seed": 0, "honest": {"AUC-PR": v}}

    md = rank_table([cell("a", "A", 0.2), cell("b", "A", 0.9), cell("a", "B", 0.4)], "AUC-PR")
    assert md.startswith(
        "### average rank by AUC-PR over 1 dataset\n\nLeft out (not every detector finished): B.\n"
    )
    assert "| b | 1.00 | 0.900 |" in md and "| a | 2.00 | 0.200 |" in md
    assert "Left out" not in rank_table([cell("a", "A", 0.2), cell("b", "A", 0.9)], "AUC-PR")


def test_paper_vote_on_stored_errors():
    import numpy as np

    from diffad.protocols import PER_ENTITY_RATIOS, paper_vote

    y = np.zeros(1000, dtype=int)
    y[500:520] = 1
    err = np.random.default_rng(0).random((4, 1000))
    err[:, 505] = 10.0  # one point of the segment stands out in every step
    out = paper_vote(y, err, "per-entity")
    assert out["PA-F1"] == pytest.approx(1.0) and out["r"] in PER_ENTITY_RATIOS and 0 <= out["xi"] < 4
    fixed = paper_vote(y, err, 0.02)
    assert fixed["r"] == 0.02 and fixed["PA-F1"] <= out["PA-F1"]


def test_only_datasets_keeps_the_run_and_refuses_other_sets():
    from diffad.bench.config import BenchConfig, DetectorSpec
    from diffad.exceptions import ConfigError

    cfg = BenchConfig(
        name="r", datasets=("SMD", "SYNTH/0"), detectors=(DetectorSpec(name="PCA", detector="PCADetector"),)
    )
    sub = cfg.only_datasets(("SMD/machine-1-2",))
    assert sub.name == "r" and sub.datasets == ("SMD/machine-1-2",)
    with pytest.raises(ConfigError, match="not datasets of run"):
        cfg.only_datasets(("MSL",))


def test_a_cell_that_predates_a_changed_default_ran_with_the_old_value(tmp_path):
    """DTE-C's min_epoch_draws / neighbour_scale came with defaults that train differently: a cell
    recorded before them ran without them, so it is stale for the new defaults and fine when the old
    values are pinned (``DTECategorical._params_before``)."""
    from diffad import DTECategorical
    from diffad.bench.config import BenchConfig, DetectorSpec
    from diffad.bench.runner import _check_finished_settings, _plain_params

    def config(params):
        spec = DetectorSpec(name="DTE-C", detector="DTECategorical", params=params)
        return BenchConfig(name="r", datasets=("ADBench/x",), detectors=(spec,)), spec

    old = _plain_params(DTECategorical(max_epochs=100))
    for k in DTECategorical._params_before:
        del old[k]  # as the cell's config.json stored it, before the parameters existed
    out = cell_dir(tmp_path, "r", "DTE-C", "ADBench/x", 0)
    out.mkdir(parents=True)
    (out / "config.json").write_text(json.dumps({"params": old}))
    cfg, spec = config({"max_epochs": 100})
    with pytest.raises(ConfigError, match="min_epoch_draws: 0 then, 4096 now"):
        _check_finished_settings(cfg, tmp_path, [(spec, "ADBench/x", 0)])
    cfg, spec = config({"max_epochs": 100, "min_epoch_draws": 0, "neighbour_scale": 0.0})
    _check_finished_settings(cfg, tmp_path, [(spec, "ADBench/x", 0)])


def test_parallel_cells_without_dask_say_how_to_install_it(smoke_run, tmp_path, monkeypatch):
    import sys

    cfg, _, _ = smoke_run
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(
        ConfigError, match=r"bench --jobs needs dask.distributed.*pip install 'diffad\[fleet\]'"
    ):
        run_bench(cfg, tmp_path, jobs=2, verbose=False)
