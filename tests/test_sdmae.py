import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import diffad
from diffad import DataValidationError, SelfDistilledMAEDetector
from diffad.bench import load_config
from diffad.cli import app
from diffad.data.synthetic import make_series
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


ABLATIONS = [(d.name, d.params) for d in load_config(preset="sdmae-ablation").detectors if d.params]


@pytest.mark.parametrize("name,params", ABLATIONS)
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


def test_experiment_cli_runs_the_suite_preset_as_a_bench_run(tmp_path):
    tiny = ["max_epochs=1", "window=20", "patch=5", "d_model=16", "heads=2", "train_stride=10"]
    tiny += ["encoder_layers=1", "teacher_layers=1"]
    args = ["experiment", "sdmae", "--suite", "masking", "--dataset", "SYNTH/0", "--seeds", "0"]
    args += ["--out", str(tmp_path), "--quiet"] + [a for kv in tiny for a in ("--set", kv)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    (run,) = tmp_path.iterdir()  # a run of its own: the shared parameters differ from the preset's
    assert run.name.startswith("sdmae-masking-")
    cells = {p.relative_to(run).parts[0] for p in run.rglob("done.json")}
    assert cells == {
        "masking=patch",
        "masking=token",
        "masking=temporal",
        "masking=feature",
        "PCA",
        "IForest",
    }
    cell = json.loads(next((run / "masking=token").rglob("done.json")).read_text())
    assert "AUC-ROC" in cell["honest"] and not any("PA" in k for k in cell["honest"])
    config = json.loads(next((run / "masking=token").rglob("config.json")).read_text())
    assert config["params"]["masking"] == "token" and config["params"]["max_epochs"] == 1
    assert "masking=token" in res.output
    again = CliRunner().invoke(app, args)  # resumes: every cell already finished
    assert again.exit_code == 0 and "6 cells: 0 run, 6 already finished" in again.output
    bad = CliRunner().invoke(app, ["experiment", "sdmae", "--suite", "nope", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "valid" in bad.output
    bad = CliRunner().invoke(app, ["experiment", "sdmae", "--set", "windw=3", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "unknown parameter(s) ['windw']" in bad.output


def test_the_grid_preset_spans_the_grid():
    specs = [
        d for d in load_config(preset="sdmae-grid").detectors if d.detector == "SelfDistilledMAEDetector"
    ]
    values = {k: {d.params[k] for d in specs} for k in ("mask_ratio", "distill_weight", "d_model")}
    assert len(specs) == 27 == len({tuple(sorted(d.params.items())) for d in specs})
    assert values == {
        "mask_ratio": {0.5, 0.6, 0.75},
        "distill_weight": {0.3, 0.5, 0.7},
        "d_model": {32, 64, 128},
    }
