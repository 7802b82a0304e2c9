"""diffad.training: the fit loop (early stopping, best weights, checkpoints) and the seeded stream."""

import numpy as np
import pytest
import torch

from diffad.exceptions import PersistenceError
from diffad.training import FitSettings, fit_loop, seeded


def _problem(seed=0):
    with seeded(seed):
        model = torch.nn.Linear(3, 1)
    g = torch.Generator().manual_seed(seed)
    X, w = torch.randn(64, 3, generator=g), torch.tensor([[1.0], [-2.0], [0.5]])
    y = X @ w
    return (
        model,
        (lambda idx: ((model(X[idx]) - y[idx]) ** 2).mean()),
        (lambda: float(((model(X) - y) ** 2).mean())),
    )


def test_early_stopping_keeps_the_best_epoch_and_stops_after_patience():
    model, train, _ = _problem()
    vals = iter([5.0, 3.0, 4.0, 4.5, 6.0, 7.0, 8.0, 9.0])
    history, best = fit_loop(
        model,
        train,
        lambda: next(vals),
        64,
        FitSettings(max_epochs=8, patience=2, batch_size=16),
        np.random.default_rng(0),
    )
    assert best == 1 and len(history["val_loss"]) == 4  # epochs 2 and 3 without improvement, then stop


def test_a_resumed_fit_equals_an_uninterrupted_one(tmp_path):
    ckpt = tmp_path / "checkpoint.pt"
    model, train, val = _problem()
    full, _ = fit_loop(
        model,
        train,
        val,
        64,
        FitSettings(max_epochs=4, batch_size=16, fingerprint="a"),
        np.random.default_rng(0),
    )
    model, train, val = _problem()
    fit_loop(
        model,
        train,
        val,
        64,
        FitSettings(max_epochs=2, batch_size=16, checkpoint=ckpt, fingerprint="a"),
        np.random.default_rng(0),
    )
    assert (tmp_path / "checkpoint.json").is_file()
    model, train, val = _problem()
    resumed, _ = fit_loop(
        model,
        train,
        val,
        64,
        FitSettings(max_epochs=4, batch_size=16, checkpoint=ckpt, resume=True, fingerprint="a"),
        np.random.default_rng(0),
    )
    assert resumed["val_loss"] == full["val_loss"]
    with pytest.raises(PersistenceError, match="other training data or other parameters"):
        fit_loop(
            model,
            train,
            val,
            64,
            FitSettings(max_epochs=5, checkpoint=ckpt, resume=True, fingerprint="b"),
            np.random.default_rng(0),
        )


def test_seeded_restores_the_callers_stream():
    torch.manual_seed(3)
    expected = torch.rand(2)
    torch.manual_seed(3)
    with seeded(99):
        inside = torch.rand(2)
    assert torch.equal(torch.rand(2), expected)
    with seeded(99):
        assert torch.equal(torch.rand(2), inside)


def test_a_time_budget_stops_before_an_epoch_that_would_end_past_it():
    model, train, val = _problem()
    history, _ = fit_loop(
        model,
        train,
        val,
        64,
        FitSettings(max_epochs=50, patience=50, batch_size=16, time_budget=1e-9),
        np.random.default_rng(0),
    )
    assert len(history["val_loss"]) == 1 and history["stopped_by"] == "time_budget"  # one epoch always runs
    model, train, val = _problem()
    history, _ = fit_loop(
        model, train, val, 64, FitSettings(max_epochs=3, batch_size=16), np.random.default_rng(0)
    )
    assert len(history["val_loss"]) == 3 and history["stopped_by"] == "max_epochs"


def test_the_progress_bar_shows_the_time_budget_left(capsys):
    model, train, val = _problem()
    settings = FitSettings(max_epochs=2, patience=5, batch_size=16, time_budget=3600.0, verbose=True)
    fit_loop(model, train, val, 64, settings, np.random.default_rng(0))
    err = capsys.readouterr().err
    assert "budget left=" in err and "2/2" in err


def test_imdiffusion_takes_a_time_budget():
    from diffad import ImDiffusionDetector
    from diffad.data.synthetic import make_series

    data = make_series(n_train=400, n_test=200, n_channels=3, n_anomalies=3, seed=0)
    det = ImDiffusionDetector(
        **{**ImDiffusionDetector._test_params(), "max_epochs": 20, "patience": 20, "time_budget": 1e-9}
    ).fit(data.train)
    assert len(det.history_["val_loss"]) == 1 and det.history_["stopped_by"] == "time_budget"


def test_samples_per_epoch_draws_a_fresh_subset_each_epoch():
    model, train, val = _problem()
    seen = []

    def recording(idx):
        seen.append(np.asarray(idx).copy())
        return train(idx)

    fit_loop(
        model,
        recording,
        val,
        64,
        FitSettings(max_epochs=2, patience=5, batch_size=8, samples_per_epoch=20),
        np.random.default_rng(0),
    )
    assert [len(i) for i in seen] == [8, 8, 4] * 2  # 20 items a epoch, in batches of 8
    first, second = np.concatenate(seen[:3]), np.concatenate(seen[3:])
    assert len(set(first)) == 20 and len(set(second)) == 20  # without replacement within an epoch
    assert set(first) != set(second)  # a fresh draw
