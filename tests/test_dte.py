import numpy as np
import pytest
from scipy import integrate
from scipy.stats import invgamma
from sklearn.metrics import roc_auc_score

import diffad
from diffad import DataValidationError, DTENonParametric, KNNDetector
from diffad.data.synthetic import make_tabular
from diffad.detectors.dte import diffusion_sigmas, inverse_gamma_logpdf


def test_inverse_gamma_density_against_scipy_and_numerics():
    s = np.linspace(0.01, 3.0, 50)
    alpha, beta = 3.5, np.array([0.2, 1.3])
    got = inverse_gamma_logpdf(s, alpha, beta)
    for i, b in enumerate(beta):
        np.testing.assert_allclose(got[i], invgamma.logpdf(s, alpha, scale=b), rtol=1e-10)
        total, _ = integrate.quad(
            lambda x, b=b: np.exp(inverse_gamma_logpdf(np.array([x]), alpha, np.array([b]))[0, 0]), 0, np.inf
        )
        assert total == pytest.approx(1.0, abs=1e-6)
        grid = np.linspace(1e-3, 5, 200_001)
        mode = grid[np.argmax(inverse_gamma_logpdf(grid, alpha, np.array([b]))[0])]
        assert mode == pytest.approx(b / (alpha + 1), abs=1e-4)  # = ||x - x0||^2 / d with alpha = d/2 - 1


def test_sigmas_closed_form():
    s = diffusion_sigmas(300, 1e-4, 0.01)
    betas = np.linspace(1e-4, 0.01, 300)
    np.testing.assert_allclose(s, 1 - np.cumprod(1 - betas))
    assert np.all(np.diff(s) > 0)


@pytest.fixture(scope="module")
def data():
    X, y = make_tabular(800, 6, kind="global", contamination=0.05, seed=0)
    return X[y == 0][:500], X, y


def test_anomalies_need_more_diffusion_time(data):
    train, X, y = data
    for score in ("mode", "mean"):
        s = DTENonParametric(score=score).fit(train).decision_function(X)
        assert roc_auc_score(y, s) > 0.9
        assert s[y == 1].mean() > s[y == 0].mean()
    knn = roc_auc_score(y, KNNDetector().fit(train).decision_function(X))
    assert roc_auc_score(y, DTENonParametric(score="mean").fit(train).decision_function(X)) == pytest.approx(
        knn, abs=0.02
    )


def test_determinism_and_save_load(data, tmp_path):
    train, X, _ = data
    a = DTENonParametric().fit(train)
    np.testing.assert_array_equal(a.decision_function(X), DTENonParametric().fit(train).decision_function(X))
    a.save(tmp_path / "m")
    np.testing.assert_array_equal(diffad.load(tmp_path / "m").decision_function(X), a.decision_function(X))


def test_bad_input(data):
    train, X, _ = data
    with pytest.raises(DataValidationError, match="at least 3"):
        DTENonParametric().fit(train[:, :2])
    with pytest.raises(DataValidationError, match="one of"):
        DTENonParametric(score="median").fit(train)
    with pytest.raises(DataValidationError, match="expected 6 channel"):
        DTENonParametric().fit(train).decision_function(X[:, :4])


# ---------------------------------------------------------------------------------- network versions
from diffad import DDPMTabular, DTECategorical, DTEInverseGamma  # noqa: E402

TINY = dict(hidden=(32, 32), max_epochs=15, batch_size=64, lr=1e-3, patience=15)


@pytest.mark.parametrize("cls", [DTECategorical, DTEInverseGamma, DDPMTabular])
def test_networks_learn_determinism_and_save_load(cls, data, tmp_path):
    train, X, y = data
    kw = dict(
        TINY,
        **(
            dict(hidden=(64, 64), max_epochs=60, patience=60, n_steps=100, noise_step=50)
            if cls is DDPMTabular
            else {}
        ),
    )
    a = cls(**kw).fit(train)
    s = a.decision_function(X)
    assert s.shape == (len(X),) and np.isfinite(s).all()
    if (
        cls is not DTEInverseGamma
    ):  # small inverse-gamma networks rank far anomalies badly (docs/benchmarks.md)
        assert roc_auc_score(y, s) > 0.8  # global anomalies: far from the data
    assert (
        len(a.history_["val_loss"]) == a.history_["best_epoch"] + 1
        or len(a.history_["val_loss"]) <= kw["max_epochs"]
    )
    np.testing.assert_array_equal(s, cls(**kw).fit(train).decision_function(X))
    a.save(tmp_path / "m")
    np.testing.assert_allclose(diffad.load(tmp_path / "m").decision_function(X), s, rtol=1e-6)


def test_categorical_targets_and_single_softmax(data):
    train, X, _ = data
    det = DTECategorical(**TINY).fit(train)
    import torch

    x0 = torch.zeros(4000, train.shape[1])
    gen = torch.Generator().manual_seed(0)
    _, t = det._noised(x0, gen)
    bins = t * det.n_bins // det.n_steps
    assert bins.min() == 0 and bins.max() == det.n_bins - 1
    # the expected bin lies in [0, n_bins - 1]: the score is one softmax of the logits
    s = det.decision_function(X)
    assert s.min() >= 0 and s.max() <= det.n_bins - 1


def test_categorical_reference_softmax_is_the_bounded_double_softmax_loss(data):
    import torch
    import torch.nn.functional as F

    train, X, y = data
    ours = DTECategorical(**TINY).fit(train)
    ref = DTECategorical(reference_softmax=True, **TINY).fit(train)
    assert roc_auc_score(y, ref.decision_function(X)) > 0.8
    x0 = torch.tensor(train[:256], dtype=torch.float32)
    with torch.no_grad():
        loss = ref._loss(x0, torch.Generator().manual_seed(0))
        x, t = ref._noised(x0, torch.Generator().manual_seed(0))
        p = torch.softmax(ref._net(x), dim=1)
        target = t * ref.n_bins // ref.n_steps
        assert torch.allclose(loss, -torch.log_softmax(p, dim=1)[torch.arange(len(t)), target].mean())
        assert float(loss) <= np.log(
            np.e + ref.n_bins - 1
        )  # bounded: at worst a one-hot softmax on a wrong bin
        assert not torch.allclose(loss, F.cross_entropy(ours._net(x), target))


def test_inverse_gamma_network_loss_is_minimised_at_the_closed_form(data):
    import torch

    train, _, _ = data
    det = DTEInverseGamma(**TINY).fit(train)
    alpha, s = train.shape[1] / 2 - 1, 0.3
    b = torch.linspace(0.01, 10, 20001)
    nll = -torch.log(b) + b / (alpha * s)
    assert float(b[nll.argmin()]) == pytest.approx(
        alpha * s, rel=1e-3
    )  # the mode condition of InvGamma in beta
    assert det.history_["train_loss"][-1] < det.history_["train_loss"][0]


def test_ddpm_costs_many_network_passes_dte_one(data):
    """Counted, not timed: DDPM scoring runs the network once per reverse step, DTE once."""
    train, X, _ = data
    dte = DTECategorical(**TINY).fit(train)
    ddpm = DDPMTabular(**dict(TINY, n_steps=200, noise_step=50)).fit(train)
    calls = {}
    for name, det in (("dte", dte), ("ddpm", ddpm)):
        calls[name] = 0
        handle = det._net.register_forward_hook(
            lambda *_, name=name: calls.__setitem__(name, calls[name] + 1)
        )
        det.decision_function(X[:100])
        handle.remove()
    assert calls["dte"] == 1 and calls["ddpm"] >= 50


def test_network_bad_input(data):
    train, _, _ = data
    with pytest.raises(DataValidationError, match="at least 3"):
        DTECategorical(**TINY).fit(train[:, :2])
    with pytest.raises(DataValidationError, match="n_bins"):
        DTECategorical(n_bins=1, **TINY).fit(train)
    with pytest.raises(DataValidationError, match="noise_step"):
        DDPMTabular(noise_step=0, **TINY).fit(train)
    with pytest.raises(DataValidationError, match="validation_fraction"):
        DTECategorical(validation_fraction=0.9, **TINY).fit(train)
    with pytest.raises(DataValidationError, match="NaN"):
        DTECategorical(**TINY).fit(np.where(train > 2, np.nan, train))


def test_posterior_mean_orders_points_as_the_knn_squared_distance(data):
    from scipy.stats import spearmanr

    train, X, _ = data
    det = DTENonParametric().fit(train)
    D = det._sq_dist(det._standardise(X))
    assert spearmanr(det.decision_function(X), D).statistic > 0.999


# ------------------------------------------------------- small sets (docs/benchmarks.md, "DTE-C on small sets")
def test_an_epoch_is_at_least_min_epoch_draws_noised_rows(monkeypatch):
    """A 40-row set gets as many draws (and optimiser steps) per epoch as a 640-row one."""
    train = np.random.default_rng(0).standard_normal((40, 6))
    drawn = []
    loss = DTECategorical._loss

    def counting(self, x0, gen):
        drawn.append(len(x0))
        return loss(self, x0, gen)

    monkeypatch.setattr(DTECategorical, "_loss", counting)
    kw = dict(hidden=(8,), max_epochs=2, batch_size=64, validation_fraction=0.0)
    DTECategorical(min_epoch_draws=0, **kw).fit(train)
    assert drawn == [40, 40]
    drawn.clear()
    DTECategorical(min_epoch_draws=640, **kw).fit(train)
    # every row 16 times an epoch, each with its own noise
    assert sum(drawn) == 2 * 640 and len(drawn) == 2 * 10


def test_noise_levels_follow_the_spacing_of_the_training_rows():
    from diffad.detectors.dte import _neighbour_spread

    rng = np.random.default_rng(0)
    sparse = rng.standard_normal((40, 20))  # few rows in many features: rows lie far apart
    dense = rng.standard_normal((4000, 3)) * 0.1
    det = DTECategorical(hidden=(8,), max_epochs=1, neighbour_scale=0.05).fit(sparse)
    m = _neighbour_spread(det._standardise(sparse), 0)
    assert m > 0.5 and det.noise_scale_ == pytest.approx(np.sqrt(m / 0.05))
    # the largest noise level drawn now lies beyond the rows' own spacing (it did not: 0.87 < m)
    assert det.noise_scale_**2 * det._sigmas2()[-1] > m
    assert DTECategorical(hidden=(8,), max_epochs=1, neighbour_scale=0.05).fit(dense).noise_scale_ == 1.0
    assert DTECategorical(hidden=(8,), max_epochs=1, neighbour_scale=0).fit(sparse).noise_scale_ == 1.0  # off
    with pytest.raises(DataValidationError, match="neighbour_scale"):
        DTECategorical(neighbour_scale=-1.0).fit(sparse)


def test_geometric_schedule_spans_sigma_min_to_sigma_max():
    det = DTECategorical(schedule="geometric", sigma_min=0.02, sigma_max=5.0, n_steps=50)
    s = np.sqrt(det._sigmas2())
    assert s[0] == pytest.approx(0.02) and s[-1] == pytest.approx(5.0)
    np.testing.assert_allclose(s[1:] / s[:-1], (5.0 / 0.02) ** (1 / 49))
    with pytest.raises(DataValidationError, match="sigma_min"):
        DTECategorical(schedule="geometric", sigma_min=2.0, sigma_max=1.0, hidden=(8,)).fit(
            np.random.default_rng(0).standard_normal((50, 4))
        )


def test_confident_rows_do_not_tie(data):
    """The expected bin is taken in float64: rows the network is sure of keep distinct scores."""
    import torch

    train, X, _ = data
    det = DTECategorical(**TINY, dropout=0.5).fit(train)  # a network whose x200 logits float64 still resolves
    with torch.no_grad():
        det._net.net[-1].weight.mul_(200.0)  # near one-hot posteriors: float32 rounds them to exactly 0 / 6
    s = det.decision_function(X)
    with torch.no_grad():
        logits = det._net(torch.tensor(det._standardise(X), dtype=torch.float32))
        s32 = (torch.softmax(logits, dim=1) @ torch.arange(det.n_bins, dtype=torch.float32)).numpy()
    assert len(np.unique(s32)) < 0.95 * len(X)  # in float32 confident rows tie
    assert len(np.unique(s)) >= 0.99 * len(X)


def test_a_model_saved_before_the_small_set_settings_loads_with_the_old_values(data, tmp_path):
    import json

    train, X, _ = data
    det = DTECategorical(**TINY).fit(train)
    det.save(tmp_path / "m")
    meta_path = tmp_path / "m" / "detector.json"
    meta = json.loads(meta_path.read_text())
    for k in DTECategorical._params_before:
        del meta["params"][k]  # as a model saved before the parameters existed
    meta_path.write_text(json.dumps(meta))
    old = diffad.load(tmp_path / "m")
    assert old.get_params()["min_epoch_draws"] == 0 and old.get_params()["neighbour_scale"] == 0.0
    np.testing.assert_allclose(old.decision_function(X), det.decision_function(X), rtol=1e-6)


@pytest.mark.parametrize("cls", [DTECategorical, DTEInverseGamma])
def test_on_a_tiny_set_far_rows_score_above_every_training_row(cls):
    """40 rows in 8 features: with the reference's settings the network sees 1 batch an epoch and the
    far rows lie beyond its noise levels; with the defaults they score above every training row."""
    rng = np.random.default_rng(0)
    train = rng.standard_normal((40, 8))
    far = np.vstack([np.full(8, 4.0), -np.full(8, 4.0), rng.standard_normal(8) * 4])
    det = cls(hidden=(64, 64), max_epochs=20 if cls is DTECategorical else 60).fit(train)
    assert det.noise_scale_ > 1.0
    assert det.decision_function(far).min() > det.decision_function(train).max()
    if (
        cls is DTECategorical
    ):  # the reference's settings: the posterior stays near the uniform prior (mean bin 3)
        before = cls(hidden=(64, 64), max_epochs=20, min_epoch_draws=0, neighbour_scale=0.0).fit(train)
        assert abs(before.decision_function(train).mean() - 3.0) < 0.2


def test_categorical_scores_stay_finite_with_a_channel_of_rounding_level_spread(data):
    """Inputs that were whitened (or otherwise projected) can leave a column whose spread is rounding
    noise (here 1e-40): standardising by it gave values of 1e40 and NaN scores."""
    train = data[0][:300, :4].copy()
    train[:, 3] = 1e-40 * np.random.default_rng(0).normal(size=300)
    test = train[:20].copy()
    test[:, 3] = 1.0
    det = DTECategorical(**DTECategorical._test_params(), random_state=0).fit(train)
    assert np.isfinite(det.decision_function(test)).all()


@pytest.mark.parametrize("cls", [DTECategorical, DTEInverseGamma])
def test_an_ensemble_scores_with_the_mean_of_its_networks(cls, data, tmp_path):
    import torch

    train, X, _ = data
    det = cls(**TINY, n_networks=3).fit(train)
    s = det.decision_function(X)
    Z = torch.tensor(det._standardise(X), dtype=torch.float32)
    with torch.no_grad():
        members = det._member_scores(Z).numpy()
    assert members.shape == (3, len(X))
    # own initial weights and noise draws: the networks differ, and the score is their mean
    assert np.abs(members[0] - members[1]).max() > 1e-3
    np.testing.assert_allclose(s, members.mean(axis=0), rtol=1e-6)
    det.save(tmp_path / "m")
    np.testing.assert_allclose(diffad.load(tmp_path / "m").decision_function(X), s, rtol=1e-6)
    with pytest.raises(DataValidationError, match="n_networks"):
        cls(n_networks=0).fit(train)


def test_each_network_of_an_ensemble_trains_as_if_alone(data):
    """The training loss of k networks is the sum of each one's mean loss over its own draws, so each
    gets the gradient (and the balance with the weight decay) of a network trained alone."""
    import torch
    import torch.nn.functional as F

    train, _, _ = data
    det = DTECategorical(**dict(TINY, max_epochs=1), n_networks=2).fit(train)
    det._net.eval()  # no dropout: the two computations see the same networks
    x0 = torch.tensor(det._standardise(train[:64]), dtype=torch.float32)
    got = det._loss(x0, torch.Generator().manual_seed(3))
    gen = torch.Generator().manual_seed(3)  # the same draws, in the order _noised takes them
    t = torch.randint(0, det.n_steps, (2, 64), generator=gen)
    eps = torch.randn((2, 64, x0.shape[1]), generator=gen)
    x = x0 + (det.noise_scale_ * det._sig2[t].sqrt())[..., None] * eps
    want = sum(
        F.cross_entropy(net(x[i]), t[i] * det.n_bins // det.n_steps) for i, net in enumerate(det._net.members)
    )
    torch.testing.assert_close(got, want)


def test_time_power_draws_the_small_steps_more_often(data):
    """t = floor(T u^p): every step in 0..T-1 can be drawn, and with p = 2 the first of 7 bins gets
    sqrt(1/7) = 38 % of the draws instead of 1/7."""
    import torch

    train, _, _ = data
    shares = {}
    for p in (1.0, 2.0):
        det = DTECategorical(**dict(TINY, max_epochs=1), time_power=p).fit(train)
        _, t = det._noised(torch.zeros(200_000, train.shape[1]), torch.Generator().manual_seed(0))
        assert t.min() == 0 and t.max() == det.n_steps - 1
        shares[p] = float((t * det.n_bins // det.n_steps == 0).float().mean())
    assert shares[1.0] == pytest.approx(1 / 7, abs=0.005)
    assert shares[2.0] == pytest.approx((1 / 7) ** 0.5, abs=0.005)
    with pytest.raises(DataValidationError, match="time_power"):
        DTECategorical(time_power=0.0).fit(train)


@pytest.mark.parametrize("cls", [DTECategorical, DTEInverseGamma])
def test_fourier_features_feed_sin_and_cos_of_fixed_projections(cls, data, tmp_path):
    """fourier_features=k: the network sees [x, sin(xB^T), cos(xB^T)], B (k, d) drawn once with
    random_state at the length scale of the training rows' spacing; saved and loaded with the weights."""
    import torch

    train, X, y = data
    det = cls(**TINY, fourier_features=8).fit(train)
    d = train.shape[1]
    feats, mlp = det._net[0], det._net[1]
    assert feats.B.shape == (8, d) and mlp.net[0].in_features == d + 16
    # frequencies of spread 1 / fourier_length_: by default how far the noise of the first bin's last
    # step moves a row; with fourier_length="spacing" the root mean squared 5-nearest-row distance
    last = -(-det.n_steps // getattr(det, "n_bins", 7)) - 1
    k = getattr(det, "n_bins", 7)
    assert last * k // det.n_steps == 0 and (last + 1) * k // det.n_steps == 1  # the first bin's last step
    want = np.sqrt(det._sigmas2()[last] * d) * det.noise_scale_
    assert det.fourier_length_ == pytest.approx(want, rel=1e-6)
    assert feats.B.std().item() == pytest.approx(1 / det.fourier_length_, rel=0.2)
    Z = det._standardise(train)
    from sklearn.neighbors import NearestNeighbors

    dist, _ = NearestNeighbors(n_neighbors=6).fit(Z).kneighbors(Z)
    spaced = cls(**dict(TINY, max_epochs=1), fourier_features=8, fourier_length="spacing").fit(train)
    assert spaced.fourier_length_ == pytest.approx(
        float(np.sqrt(np.median((dist[:, 1:] ** 2).mean(axis=1)))), rel=1e-6
    )
    x = torch.zeros(1, d)
    x[0, 0] = 1.0
    out = feats(x)
    torch.testing.assert_close(out[0, d : d + 8], torch.sin(feats.B[:, 0]))
    torch.testing.assert_close(out[0, d + 8 :], torch.cos(feats.B[:, 0]))
    s = det.decision_function(X)
    np.testing.assert_array_equal(s, cls(**TINY, fourier_features=8).fit(train).decision_function(X))
    det.save(tmp_path / "m")
    np.testing.assert_allclose(diffad.load(tmp_path / "m").decision_function(X), s, rtol=1e-6)
    # the default is the paper's network on x alone, unchanged
    plain = cls(**TINY).fit(train)
    assert not hasattr(plain, "fourier_length_") and plain._net.net[0].in_features == d
    with pytest.raises(DataValidationError, match="fourier_features"):
        cls(fourier_features=-1).fit(train)


def test_posterior_targets_are_the_exact_posterior_over_the_bins(data):
    """posterior_targets=True trains each draw against p(bin | x_t) under the training rows; with every
    step of a bin on the grid it equals the posterior summed over all T steps, computed here directly."""
    import torch
    from scipy.special import logsumexp

    train, _, _ = data
    for power in (1.0, 2.0):
        det = DTECategorical(
            **dict(TINY, max_epochs=1), posterior_targets=True, time_power=power, n_steps=70
        ).fit(train)
        assert det._mixture is None  # dropped after the fit
        Z = det._standardise(train)
        det._mixture = Z
        x, _ = det._noised(torch.tensor(Z[:20], dtype=torch.float32), torch.Generator().manual_seed(1))
        got = det._posterior_bins(x, per_bin=10_000).numpy()
        T, K, d = det.n_steps, det.n_bins, Z.shape[1]
        s2 = det._sigmas2() * det.noise_scale_**2
        u = np.arange(T + 1) / T
        prior = u[1:] ** (1 / power) - u[:-1] ** (1 / power)
        D = ((x.numpy()[:, None, :].astype(float) - Z[None]) ** 2).sum(-1)
        logp = np.stack([logsumexp(-D / (2 * s), axis=1) - 0.5 * d * np.log(s) for s in s2], axis=1) + np.log(
            prior
        )
        post = np.exp(logp - logsumexp(logp, axis=1, keepdims=True))
        want = np.stack([post[:, np.arange(T) * K // T == k].sum(1) for k in range(K)], axis=1)
        np.testing.assert_allclose(got, want, atol=2e-3)
        np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-5)
    # trains and scores; the default is the one-hot bin of each draw's own step
    s = DTECategorical(**TINY, posterior_targets=True).fit(train).decision_function(train[:5])
    assert np.isfinite(s).all()
