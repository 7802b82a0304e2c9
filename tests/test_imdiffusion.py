import numpy as np
import pandas as pd
import pytest
import torch

import diffad
from diffad import DataValidationError, ImDiffusionDetector, NotFittedError
from diffad.data.series import time_split
from diffad.data.synthetic import make_series
from diffad.detectors.imdiffusion import (
    WindowNoise,
    ensemble_score,
    reduce_channels,
    step_thresholds,
    trailing_mean,
)

TINY = {**ImDiffusionDetector._test_params(), "random_state": 0}  # the contract battery's tiny network


def tiny(**kw):
    return ImDiffusionDetector(**{**TINY, **kw})


@pytest.fixture(scope="module")
def data():
    return make_series(n_train=400, n_test=200, n_channels=3, n_anomalies=4, seed=0)


@pytest.fixture(scope="module")
def fitted(data):
    return tiny().fit(data.train)


def test_contract(fitted, data):
    for attr in (
        "n_features_in_",
        "decision_scores_",
        "threshold_",
        "labels_",
        "history_",
        "device_",
        "step_thresholds_",
    ):
        assert hasattr(fitted, attr), attr
    assert fitted.device_ == "cpu" and len(fitted.history_["val_loss"]) >= 1
    s = fitted.decision_function(data.test)
    assert s.shape == (200,) and s.dtype == np.float64 and np.isfinite(s).all()
    p = fitted.predict(data.test)
    np.testing.assert_array_equal(p, (fitted.votes(data.test) > fitted.vote_level_).astype(int))
    assert fitted.threshold_ == 1.0 and fitted.vote_level_ == 1  # 3 ensemble steps: a majority
    assert fitted.step_errors(data.test).shape == (3, 200)
    per_max, per_sum = (
        fitted.step_errors(data.test, reduce="max"),
        fitted.step_errors(data.test, reduce="sum"),
    )
    assert (per_sum >= per_max - 1e-12).all() and (
        per_sum > per_max
    ).any()  # same imputation, other reduction
    per_channel = fitted.step_errors(data.test, reduce="none")
    assert per_channel.shape == (3, 200, 3)
    np.testing.assert_allclose(np.nanmax(per_channel, axis=2), per_max)
    with pytest.raises(ValueError):
        fitted.step_errors(data.test, reduce="mean")
    ex = fitted.explain(data.test)
    assert ex.shape == (200, 3) and np.allclose(ex.sum(axis=1), 1.0)
    assert set(np.unique(fitted.votes(data.test))) <= {0, 1, 2, 3}


def test_same_seed_same_scores_bit_for_bit(fitted, data):
    a = tiny().fit(data.train).decision_function(data.test)
    np.testing.assert_array_equal(a, fitted.decision_function(data.test))


def test_save_load_identical(fitted, data, tmp_path):
    fitted.save(tmp_path / "m")
    back = diffad.load(tmp_path / "m")
    np.testing.assert_array_equal(back.decision_function(data.test), fitted.decision_function(data.test))
    np.testing.assert_array_equal(back.predict(data.test), fitted.predict(data.test))
    assert (tmp_path / "m" / "weights.pt").is_file()


def test_a_model_saved_before_error_smoothing_loads_and_scores_as_before(fitted, data, tmp_path):
    import json

    fitted.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "detector.json").read_text())
    del meta["params"]["error_smoothing"]
    (tmp_path / "m" / "detector.json").write_text(json.dumps(meta))
    back = diffad.load(tmp_path / "m")
    assert back.error_smoothing == 1
    np.testing.assert_array_equal(back.decision_function(data.test), fitted.decision_function(data.test))


def test_nan_is_data(data):
    train = data.train.copy()
    train[::7, 1] = np.nan
    test = data.test.copy()
    test[50:60, 0] = np.nan
    det = tiny().fit(train)
    s = det.decision_function(test)
    assert np.isfinite(s).all()
    filled = det.impute(test)
    assert not np.isnan(filled).any()
    np.testing.assert_array_equal(filled[~np.isnan(test)], test[~np.isnan(test)])


def test_pandas_index_kept(fitted, data):
    idx = pd.date_range("2024-01-01", periods=200, freq="min")
    df = pd.DataFrame(data.test, index=idx)
    assert fitted.decision_function(df).index.equals(idx) and fitted.predict(df).index.equals(idx)


def test_loss_ignores_unmasked_entries(fitted):
    det = fitted
    g = torch.Generator().manual_seed(0)
    x0, obs = torch.rand(4, 3, 16, generator=g), torch.ones(4, 3, 16)
    from diffad.diffusion import grating_mask

    policy = torch.tensor([0, 1, 0, 1])
    target = grating_mask(policy, 3, 16, 4)
    noise = torch.randn(4, 3, 16, generator=g)
    t = torch.tensor([1, 3, 5, 7])
    with pytest.MonkeyPatch.context() as mp:
        # a denoiser that is exact on targets and wild elsewhere gives zero loss
        wild = torch.where(target.bool(), noise, 1e6 * torch.ones_like(noise))
        mp.setattr(det, "_denoiser", lambda *, training: lambda x, tt, sides: wild)
        assert float(det._loss(x0, obs, target, policy, t, noise)) == 0.0
    # unobserved target entries never enter the loss either
    obs2 = obs.clone()
    obs2[0] = 0
    base = det._loss(x0[1:], obs[1:], target[1:], policy[1:], t[1:], noise[1:])
    torch.testing.assert_close(det._loss(x0, obs2, target, policy, t, noise), base)


def test_unconditional_path_never_reads_clean_masked_values(fitted):
    det = fitted
    from diffad.diffusion import grating_mask

    g0 = torch.Generator().manual_seed(1)
    x0 = torch.rand(2, 3, 16, generator=g0)
    obs = torch.ones_like(x0)
    target = grating_mask(torch.tensor([0, 1]), 3, 16, 4)
    x0b = x0 + 100.0 * target  # perturb only the masked (to be imputed) entries
    ids = torch.tensor([0, 1])

    def noise():
        return WindowNoise(5, range(2), 1, (3, 16), torch.device("cpu"))

    clip = (-2.0, 3.0)
    with torch.no_grad():
        rec_a, fin_a = det._sample(x0, obs, target, ids, noise(), clip)
        rec_b, fin_b = det._sample(x0b, obs, target, ids, noise(), clip)
    m = target.bool()
    torch.testing.assert_close(fin_a[m], fin_b[m], rtol=0, atol=0)
    torch.testing.assert_close(rec_a[:, m], rec_b[:, m], rtol=0, atol=0)
    if det.mode == "imputation" and not det.conditional:  # sanity: the conditioning values do matter
        x0c = x0 + 1.0 * (1 - target)
        with torch.no_grad():
            _, fin_c = det._sample(x0c, obs, target, ids, noise(), clip)
        assert not torch.equal(fin_a[m], fin_c[m])


@pytest.mark.parametrize(
    "kw",
    [
        dict(mode="forecasting"),
        dict(mode="reconstruction"),
        dict(conditional=True),
        dict(temporal=False),
        dict(spatial=False),
        dict(train_mask="random"),
        dict(ensemble_steps=1),
        dict(sampler="ddim"),
        dict(ensemble_output="sample"),
        dict(error_reduce="sum"),
        dict(error_norm="channel"),
        dict(error_norm="channel", error_floor=0.1),
        dict(scaler="standard"),
    ],
    ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()),
)
def test_ablations_run(kw, data, base_scores):
    """Each ablation switch runs and changes the scores it controls (an ignored flag would not)."""
    det = tiny(max_epochs=1, **kw).fit(data.train)
    s = det.decision_function(data.test)
    assert s.shape == (200,) and np.isfinite(s).all()
    assert not np.array_equal(s, base_scores)


@pytest.fixture(scope="module")
def base_scores(data):
    return tiny(max_epochs=1).fit(data.train).decision_function(data.test)


def test_presets():
    p, f = ImDiffusionDetector.paper(), ImDiffusionDetector.fast()
    assert (p.window, p.n_blocks, p.channels, p.heads, p.n_steps, p.batch_size, p.test_stride) == (
        100,
        4,
        64,
        8,
        50,
        12,
        50,
    )
    assert f.channels < p.channels and ImDiffusionDetector.fast(window=20, test_stride=10).window == 20
    published = dict(
        scaler="none",
        data_scale=20.0,
        train_stride=1,
        train_mask="random",
        random_mask_ratio=0.7,
        n_strips=4,
        ensemble_output="sample",
        patience=6,
        grad_clip=None,
        prediction="eps",
        sampler="ddpm",
        weight_decay=1e-6,
    )
    assert {k: p.get_params()[k] for k in published} == published


def test_paper_settings_run_end_to_end_on_a_tiny_network(data):
    small = {k: v for k, v in TINY.items() if k not in ("n_strips", "train_stride")}
    det = ImDiffusionDetector.paper(**{**small, "max_epochs": 1}).fit(data.train[:200])
    s = det.decision_function(data.test)
    assert s.shape == (200,) and np.isfinite(s).all() and det.scale_a_.tolist() == [20.0] * 3


def test_resume_continues_an_interrupted_fit(data, tmp_path):
    first = tiny(max_epochs=1, patience=5, checkpoint_dir=str(tmp_path)).fit(data.train)
    assert len(first.history_["val_loss"]) == 1 and (tmp_path / "checkpoint.pt").is_file()
    resumed = tiny(max_epochs=2, patience=5, checkpoint_dir=str(tmp_path)).fit(data.train, resume=True)
    assert len(resumed.history_["val_loss"]) == 2
    assert resumed.history_["val_loss"][0] == first.history_["val_loss"][0]
    full = tiny(max_epochs=2, patience=5).fit(data.train)
    np.testing.assert_allclose(resumed.history_["val_loss"], full.history_["val_loss"], rtol=1e-5)


def test_bad_input(fitted, data):
    with pytest.raises(DataValidationError, match=r"expected at least window=16 time points, got 10"):
        fitted.decision_function(data.test[:10])
    with pytest.raises(DataValidationError, match=r"expected 3 channel"):
        fitted.decision_function(data.test[:, :2])
    with pytest.raises(
        DataValidationError, match=r"one of \['imputation', 'forecasting', 'reconstruction'\]"
    ):
        tiny(mode="predict").fit(data.train)
    with pytest.raises(DataValidationError, match="ensemble"):
        tiny(ensemble_steps=6, ensemble_stride=2).fit(data.train)
    with pytest.raises(DataValidationError, match="validation tail"):
        tiny(window=64).fit(data.train[:100])
    for floor in (-1.0, float("nan"), "0.1"):
        with pytest.raises(DataValidationError, match="error_floor"):
            tiny(error_floor=floor).fit(data.train)
    bad = data.train.copy()
    bad[:, 0] = np.nan
    with pytest.raises(DataValidationError, match="all-NaN channel"):
        tiny().fit(bad)
    with pytest.raises(DataValidationError, match="infinities"):
        fitted.decision_function(np.full((40, 3), np.inf))
    with pytest.raises(NotFittedError):
        tiny().decision_function(data.test)


def test_x0_prediction_trains_on_clean_values_and_scores(data):
    det = tiny(prediction="x0")
    det.fit(data.train)
    g = torch.Generator().manual_seed(1)
    x0, obs = torch.rand(2, 3, 16, generator=g), torch.ones(2, 3, 16)
    from diffad.diffusion import grating_mask

    policy = torch.tensor([0, 1])
    target = grating_mask(policy, 3, 16, 4)
    noise, t = torch.randn(2, 3, 16, generator=g), torch.tensor([2, 6])
    with (
        pytest.MonkeyPatch.context() as mp
    ):  # an exact clean-value predictor has zero loss; the noise does not
        mp.setattr(det, "_denoiser", lambda *, training: lambda x, tt, sides: x0)
        assert float(det._loss(x0, obs, target, policy, t, noise)) == 0.0
        mp.setattr(det, "_denoiser", lambda *, training: lambda x, tt, sides: noise)
        assert float(det._loss(x0, obs, target, policy, t, noise)) > 0.1
    s = det.decision_function(data.test)
    assert s.shape == (200,) and np.isfinite(s).all()
    with pytest.raises(ValueError, match="prediction"):
        tiny(prediction="v").fit(data.train)


def test_eps_from_x0_inverts_predict_x0():
    from diffad.diffusion import DDPMScheduler

    sched = DDPMScheduler(50)
    g = torch.Generator().manual_seed(0)
    x_t, eps = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
    for t in (0, 10, 40):
        torch.testing.assert_close(
            sched.eps_from_x0(sched.predict_x0(eps, t, x_t), t, x_t), eps, atol=2e-3, rtol=1e-3
        )


def test_channel_error_scale_never_divides_by_zero():
    from diffad.detectors.imdiffusion import channel_error_scale

    err = np.array(
        [[1.0, 0.0, np.nan], [3.0, 0.0, np.nan]]
    )  # channel 1 always exact, channel 2 never observed
    np.testing.assert_allclose(channel_error_scale(err, axis=0), [2.0, 2.0, 2.0])
    np.testing.assert_allclose(channel_error_scale(np.zeros((4, 2)), axis=0), [1.0, 1.0])


def test_error_floor_raises_only_the_small_channel_divisors():
    from diffad.detectors.imdiffusion import error_scale

    val = np.zeros(
        (2, 5, 4)
    )  # (steps, time, channels): channel means 1e-8, 1, 2, 4 (step 0), twice that (step 1)
    val[0] = [1e-8, 1.0, 2.0, 4.0]
    val[1] = [2e-8, 2.0, 4.0, 8.0]
    np.testing.assert_allclose(error_scale(val, "channel"), [[1e-8, 1, 2, 4], [2e-8, 2, 4, 8]])
    np.testing.assert_allclose(
        error_scale(val, "channel", 0.1), [[0.15, 1, 2, 4], [0.3, 2, 4, 8]]
    )  # 0.1 x median
    np.testing.assert_allclose(error_scale(val, "none", 0.1), np.ones((2, 4)))


# ------------------------------------------------------------------ scoring bugs fixed (each failed before)
def test_scores_do_not_depend_on_the_inference_batch_size(fitted, data):
    """The noise of a window and the clip bounds no longer depend on its batch (they moved scores by up
    to 8e-4); what is left is float32 rounding in torch's CPU kernels, a few ulps."""
    ref = fitted.decision_function(data.test)
    for size in (2, 7, 512):
        det = ImDiffusionDetector(**{**fitted.get_params(), "inference_batch_size": size})
        det._set_state(*_state(fitted))
        np.testing.assert_allclose(det.decision_function(data.test), ref, rtol=1e-5, atol=1e-7)
        np.testing.assert_array_equal(det.predict(data.test), fitted.predict(data.test))


def test_compiled_scoring_equals_eager_and_compiles_once(fitted, data):
    """``compile=True`` scores through torch.compile on the CPU too; ``warm_up`` compiles it once, and
    later calls of other batch sizes (other series lengths, another inference batch) reuse that graph."""
    from torch._dynamo.utils import counters

    ref = fitted.decision_function(data.test)
    det = ImDiffusionDetector(**{**fitted.get_params(), "compile": True})
    det._set_state(*_state(fitted))
    assert det.warm_up() is det
    graphs = counters["stats"]["unique_graphs"]
    assert graphs >= 1
    np.testing.assert_allclose(det.decision_function(data.test), ref, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(det.predict(data.test), fitted.predict(data.test))
    short = data.test[: 3 * det.window]
    np.testing.assert_allclose(
        det.decision_function(short), fitted.decision_function(short), rtol=1e-5, atol=1e-7
    )
    det.set_params(inference_batch_size=3)
    np.testing.assert_allclose(det.decision_function(data.test), ref, rtol=1e-5, atol=1e-7)
    assert counters["stats"]["unique_graphs"] == graphs
    assert fitted.warm_up() is fitted  # eager: nothing to do


def _state(det):
    attrs, arrays, weights = det._get_state()
    return attrs, arrays, weights


def test_set_params_after_scoring_is_never_served_stale_scores(data):
    det = tiny().fit(data.train)
    ddpm = det.decision_function(data.test)
    det.set_params(sampler="ddim", ddim_jumps=1)
    ddim = det.decision_function(data.test)
    assert not np.array_equal(ddpm, ddim)
    fresh = ImDiffusionDetector(**det.get_params())
    fresh._set_state(*_state(det))
    np.testing.assert_array_equal(fresh.decision_function(data.test), ddim)


@pytest.mark.parametrize("reduce,smooth", [("max", 1), ("sum", 1), ("max", 4), ("sum", 4)])
def test_explain_decomposes_the_score_decision_function_uses(data, reduce, smooth):
    det = tiny(error_norm="channel", error_floor=0.1, error_reduce=reduce, error_smoothing=smooth)
    det.fit(data.train)
    score, shares = det.decision_function(data.test), det.explain(data.test)
    np.testing.assert_allclose((shares * score[:, None]).sum(axis=1), score, rtol=1e-9)
    norm = trailing_mean(
        np.nan_to_num(det.step_errors(data.test, reduce="none"), nan=0.0)
        / det.step_thresholds_[:, None, None],
        smooth,
    )  # (R, n, K)
    if reduce == "sum":
        np.testing.assert_allclose(shares * score[:, None], norm.mean(axis=0), rtol=1e-9, atol=1e-12)
    else:  # one step's maximum: all of it goes to the channel that holds it
        single = tiny(error_norm="channel", error_reduce="max", ensemble_steps=1).fit(data.train)
        top = single.step_errors(data.test, reduce="none")[0].argmax(axis=1)
        assert np.array_equal(single.explain(data.test).argmax(axis=1), top)


def test_trailing_mean_averages_the_last_k_points_along_time():
    rng = np.random.default_rng(0)
    x = rng.random((3, 20, 2))
    for k in (1, 4, 25):
        want = np.stack([x[:, max(0, t - k + 1) : t + 1].mean(axis=1) for t in range(20)], axis=1)
        np.testing.assert_allclose(trailing_mean(x, k), want, rtol=1e-12)
    np.testing.assert_allclose(trailing_mean(x[:, :, 0], 4), trailing_mean(x, 4)[:, :, 0], rtol=1e-12)


def test_error_smoothing_averages_each_steps_error_over_past_points_before_thresholds_and_scores(data):
    plain = tiny(error_norm="channel", error_reduce="sum").fit(data.train)
    smooth = tiny(error_norm="channel", error_reduce="sum", error_smoothing=5).fit(data.train)
    raw = plain.step_errors(data.test)  # the same network: smoothing changes nothing in training
    np.testing.assert_allclose(smooth.step_errors(data.test), trailing_mean(raw, 5), rtol=1e-6)
    tail = time_split(data.train, smooth.validation_fraction)[1]
    val = reduce_channels(smooth.step_errors(tail, reduce="none"), "sum")
    np.testing.assert_allclose(
        smooth.step_thresholds_, step_thresholds(trailing_mean(val, 5), smooth.vote_ratio), rtol=1e-6
    )
    np.testing.assert_allclose(
        smooth.decision_function(data.test),
        ensemble_score(trailing_mean(raw, 5), smooth.step_thresholds_),
        rtol=1e-6,
    )
    # past points only: changing the series after a point leaves that point's score as it was
    changed = data.test.copy()
    changed[150:] += 5.0
    np.testing.assert_allclose(
        smooth.decision_function(changed)[:100], smooth.decision_function(data.test)[:100], rtol=1e-6
    )


def test_the_vote_score_reproduces_the_vote_exactly(fitted, data):
    # score="vote": the (xi + 1)-th largest step ratio, above threshold_ exactly where the vote flags
    det = tiny(score="vote", vote_ratio=0.2).fit(data.train)
    for X in (data.test, data.train):
        s, votes = det.decision_function(X), det.votes(X)
        np.testing.assert_array_equal(det.predict(X), (s > det.threshold_).astype(int))
        for xi in range(3):  # every vote level, not just the default
            det.set_params(vote_xi=xi)
            np.testing.assert_array_equal(det.decision_function(X) > 1.0, votes > xi)
        det.set_params(vote_xi=None)
    np.testing.assert_array_equal(det.labels_, (det.decision_scores_ > det.threshold_).astype(int))
    assert det.labels_.any() and not det.labels_.all()  # a real test: both decisions occur
    ratios = det.step_errors(data.test) / det.step_thresholds_[:, None]
    np.testing.assert_array_equal(det.decision_function(data.test), np.sort(ratios, axis=0)[-2])
    shares = det.explain(data.test)  # decomposes that one step's ratio
    s = det.decision_function(data.test)
    np.testing.assert_allclose((shares * s[:, None]).sum(axis=1), s, rtol=1e-9)
    vote = det.predict(data.test)
    mean = det.set_params(score="mean").decision_function(data.test)
    assert not np.array_equal(mean, s)
    np.testing.assert_array_equal(det.predict(data.test), vote)  # the decision is the vote either way


def test_parameters_that_fail_at_scoring_fail_before_training(data):
    with pytest.raises(DataValidationError, match="test_stride: expected at most window=20"):
        ImDiffusionDetector.fast(window=20).fit(data.train)


def test_a_loaded_model_resolves_its_device_as_fit_does(fitted, tmp_path, monkeypatch):
    import diffad.detectors._torch as torch_detectors

    seen = []
    real = torch_detectors.resolve_device
    monkeypatch.setattr(torch_detectors, "resolve_device", lambda d: seen.append(d) or real(d))
    fitted.save(tmp_path / "m")
    diffad.load(tmp_path / "m")
    assert seen == [fitted.device]  # None: CUDA when available, as in fit (it was always the CPU before)


def test_data_scale_multiplies_what_the_model_sees(data):
    one, minmax20 = tiny(max_epochs=1).fit(data.train), tiny(max_epochs=1, data_scale=20.0).fit(data.train)
    np.testing.assert_allclose(minmax20.scale_a_, 20 * one.scale_a_)
    np.testing.assert_allclose(minmax20.scale_b_, 20 * one.scale_b_)
    twenty = tiny(max_epochs=1, scaler="none", data_scale=20.0).fit(data.train)
    np.testing.assert_allclose(twenty.scale_a_, 20.0)
    np.testing.assert_allclose(twenty.scale_b_, 0.0)
    np.testing.assert_allclose(
        twenty.impute(data.test), data.test
    )  # nothing missing: the input back, in its units
