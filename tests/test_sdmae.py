import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import diffad
from diffad import DataValidationError, SelfDistilledMAEDetector
from diffad.cli import app
from diffad.data.synthetic import make_series
from diffad.experiments.sdmae import suite_configs
from diffad.metrics import auc_roc
from diffad.nn.sdmae import MASKINGS, make_mask

TINY = dict(
    window=20,
    patch=5,
    d_model=16,
    heads=2,
    encoder_layers=1,
    teacher_layers=2,
    student_layers=1,
    train_stride=2,
    max_epochs=3,
    batch_size=32,
)


@pytest.mark.parametrize("strategy", list(MASKINGS))
def test_masks_hide_the_intended_units_at_the_ratio(strategy):
    B, L, K, P, r = 64, 20, 3, 5, 0.6
    m = make_mask(strategy, B, L, K, r, torch.Generator().manual_seed(0), P)
    assert m.shape == (B, L, K) and m.dtype == torch.bool
    if strategy == "patch":  # whole patches, all channels
        blocks = m.view(B, L // P, P, K)
        assert torch.all(blocks.all(dim=(2, 3)) | ~blocks.any(dim=(2, 3)))
        assert torch.all(blocks.all(dim=(2, 3)).sum(1) == round(r * L / P))
    elif strategy == "token":  # exact count of single entries, channels not tied together
        assert torch.all(m.sum((1, 2)) == round(r * L * K))
        assert not torch.all(m.all(2) | ~m.any(2))
    elif strategy == "temporal":  # whole time steps, scattered (not only whole patches)
        assert torch.all(m.all(2) | ~m.any(2))
        assert torch.all(m[:, :, 0].sum(1) == round(r * L))
        assert not torch.all(m.view(B, L // P, P, K).all((2, 3)) | ~m.view(B, L // P, P, K).any((2, 3)))
    else:  # feature: each channel its own count, channels differ
        assert torch.all(m.sum(1) == round(r * L))
        assert not torch.all(m.all(2) | ~m.any(2))
    # pure functions of the generator
    again = make_mask(strategy, B, L, K, r, torch.Generator().manual_seed(0), P)
    assert torch.equal(m, again)


def test_the_four_strategies_differ():
    masks = {s: make_mask(s, 8, 20, 3, 0.5, torch.Generator().manual_seed(1), 5) for s in MASKINGS}
    names = list(masks)
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            assert not torch.equal(masks[names[i]], masks[names[j]])


@pytest.fixture(scope="module")
def series():
    return make_series(n_train=600, n_test=400, n_channels=3, n_anomalies=4, seed=0)


@pytest.fixture(scope="module")
def fitted(series):
    return SelfDistilledMAEDetector(**TINY).fit(series.train)


def test_fit_score_contract_and_determinism(fitted, series):
    s = fitted.decision_function(series.test)
    assert s.shape == (400,) and np.isfinite(s).all()
    assert set(np.unique(fitted.predict(series.test))) <= {0, 1}
    np.testing.assert_array_equal(
        s, SelfDistilledMAEDetector(**TINY).fit(series.train).decision_function(series.test)
    )
    terms = fitted.score_terms(series.test)
    np.testing.assert_allclose(terms["reconstruction"] + terms["discrepancy"], s)
    assert fitted.history_["best_epoch"] >= 0 and fitted.threshold_ > 0


def test_sequence_level_scores(fitted, series):
    starts, ws = fitted.window_scores(series.test)
    assert len(starts) == len(ws) and starts[0] == 0 and starts[-1] == 400 - 20
    seq = (
        SelfDistilledMAEDetector(**TINY, score_level="sequence")
        .fit(series.train)
        .decision_function(series.test)
    )
    for s, v in zip(starts, ws, strict=True):  # each point gets the largest score of the windows covering it
        assert np.all(seq[s : s + 20] >= v - 1e-9)


def test_save_load_roundtrip(fitted, series, tmp_path):
    fitted.save(tmp_path / "m")
    back = diffad.load(tmp_path / "m")
    np.testing.assert_allclose(
        back.decision_function(series.test), fitted.decision_function(series.test), rtol=1e-6
    )


@pytest.mark.parametrize("name,params", suite_configs("ablation")[1:])
def test_ablations_run(name, params, series):
    det = SelfDistilledMAEDetector(**{**TINY, **params, "max_epochs": 1}).fit(series.train)
    terms = det.score_terms(series.test)
    assert np.isfinite(det.decision_function(series.test)).all()
    if params.get("variant") in ("teacher", "student"):
        assert not terms["discrepancy"].any()


def test_labelled_anomalies_raise_the_discrepancy(series):
    y = np.zeros(len(series.train), dtype=int)
    y[100:140] = 1
    X = series.train.copy()
    X[100:140] += 3.0  # the labelled stretch is visibly abnormal
    kw = dict(TINY, max_epochs=6, validation_fraction=0.2)
    plain = SelfDistilledMAEDetector(**kw).fit(X)
    marg = SelfDistilledMAEDetector(**kw, margin=2.0).fit(X, y)
    probe = X[80:180]
    d_plain = plain.score_terms(probe)["discrepancy"][20:60].mean() * plain.discrepancy_ref_
    d_marg = marg.score_terms(probe)["discrepancy"][20:60].mean() * marg.discrepancy_ref_
    assert d_marg > d_plain


def test_bad_input(series):
    with pytest.raises(DataValidationError, match="one of"):
        SelfDistilledMAEDetector(masking="block").fit(series.train)
    with pytest.raises(DataValidationError, match="multiple of patch"):
        SelfDistilledMAEDetector(window=20, patch=6).fit(series.train)
    with pytest.raises(DataValidationError, match="window"):
        SelfDistilledMAEDetector(**TINY).fit(series.train[:15])
    with pytest.raises(DataValidationError, match="variant='full'"):
        SelfDistilledMAEDetector(**TINY, variant="teacher").fit(series.train, np.zeros(600))
    det = SelfDistilledMAEDetector(**TINY).fit(series.train)
    with pytest.raises(DataValidationError, match="expected 3 channel"):
        det.decision_function(series.test[:, :2])


def test_learns_the_synthetic_series():
    s = make_series(n_train=1000, n_test=1000, n_channels=4, n_anomalies=6, seed=3)
    det = SelfDistilledMAEDetector(**dict(TINY, max_epochs=8, train_stride=1)).fit(s.train)
    assert auc_roc(s.labels, det.decision_function(s.test)) > 0.8


def test_experiment_cli_writes_results_and_plots(tmp_path):
    args = [
        "experiment",
        "sdmae",
        "--suite",
        "masking",
        "--seeds",
        "0",
        "--out",
        str(tmp_path),
        "--quiet",
        "--set",
        "max_epochs=1",
        "--set",
        "window=20",
        "--set",
        "patch=5",
        "--set",
        "d_model=16",
        "--set",
        "heads=2",
        "--set",
        "train_stride=10",
        "--set",
        "encoder_layers=1",
        "--set",
        "teacher_layers=1",
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    folder = next(tmp_path.iterdir())
    data = json.loads((folder / "results.json").read_text())
    assert {r["config"] for r in data["records"]} == {
        "masking=patch",
        "masking=token",
        "masking=temporal",
        "masking=feature",
        "PCA",
        "IForest",
    }
    assert all(
        "AUC-ROC" in r["metrics"] and not any("PA" in k for k in r["metrics"]) for r in data["records"]
    )
    assert (folder / "comparison.png").is_file() and (folder / "training_curves.png").is_file()
    assert "masking=token" in res.output
    bad = CliRunner().invoke(app, ["experiment", "sdmae", "--suite", "nope", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "valid" in bad.output
    bad = CliRunner().invoke(app, ["experiment", "sdmae", "--set", "windw=3", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "unknown parameter(s) ['windw']" in bad.output


def test_grid_plots(tmp_path):
    from diffad.experiments.sdmae import GRID, plot_suite

    records = [
        {
            "config": n,
            "params": p,
            "dataset": "d",
            "seed": 0,
            "val_loss": [1.0, 0.5],
            "train_loss": [],
            "metrics": {"AUC-ROC": 0.5 + 0.01 * i, "AUC-PR": 0.3, "VUS-PR": 0.2},
        }
        for i, (n, p) in enumerate(suite_configs("grid"))
    ]
    assert len(records) == np.prod([len(v) for v in GRID.values()])
    (tmp_path / "results.json").write_text(json.dumps({"records": records}))
    written = plot_suite(tmp_path, "grid")
    assert {p.name for p in written} == {
        "comparison.png",
        "training_curves.png",
        "grid_heatmap.png",
        "hyperparameters.png",
    }
