import numpy as np
import pytest
import torch

from diffad import DataValidationError
from diffad.diffusion import (
    DDPMScheduler,
    forecast_mask,
    full_mask,
    grating_mask,
    make_betas,
    random_mask,
    strip_ids,
)


def test_quad_and_linear_betas():
    b = make_betas(50, 1e-4, 0.5, "quad")
    assert b[0] == pytest.approx(1e-4) and b[-1] == pytest.approx(0.5) and np.all(np.diff(np.sqrt(b)) > 0)
    np.testing.assert_allclose(np.diff(np.sqrt(b)), np.diff(np.sqrt(b))[0])
    np.testing.assert_allclose(make_betas(5, 0.1, 0.5, "linear"), [0.1, 0.2, 0.3, 0.4, 0.5])
    with pytest.raises(DataValidationError, match="one of"):
        make_betas(5, kind="cosine")


def test_scheduler_closed_forms():
    s = DDPMScheduler(20, 1e-4, 0.5)
    betas = torch.tensor(make_betas(20, 1e-4, 0.5), dtype=torch.float32)
    torch.testing.assert_close(s.alpha_bar, torch.cumprod(1 - betas, 0))
    x0, eps = torch.randn(4, 3, 8), torch.randn(4, 3, 8)
    t = torch.tensor([0, 5, 10, 19])
    xt = s.add_noise(x0, eps, t)
    ab = s.alpha_bar[t][:, None, None]
    torch.testing.assert_close(xt, ab.sqrt() * x0 + (1 - ab).sqrt() * eps)
    for k in (0, 7):
        xk = s.add_noise(x0, eps, k)
        torch.testing.assert_close(s.predict_x0(eps, k, xk), x0, atol=1e-4, rtol=1e-4)
    # posterior variance, eq. (7)
    k = 7
    expected = betas[k] * (1 - s.alpha_bar[k - 1]) / (1 - s.alpha_bar[k])
    torch.testing.assert_close(s.posterior_var[k], expected)
    # with the true epsilon, the last DDPM step and a DDIM step to x_0 recover x_0
    torch.testing.assert_close(s.step(eps, 0, s.add_noise(x0, eps, 0)), x0, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(s.ddim_step(eps, 12, -1, s.add_noise(x0, eps, 12)), x0, atol=1e-3, rtol=1e-3)


def test_ddpm_step_posterior_mean_with_true_eps():
    """The DDPM mean at step t equals the mean of q(x_{t-1} | x_t, x_0) (eq. 7) when eps is exact."""
    s = DDPMScheduler(10, 1e-4, 0.5)
    x0, eps = torch.randn(2, 5), torch.randn(2, 5)
    t = 6
    xt = s.add_noise(x0, eps, t)
    ab, ab_prev, beta = s.alpha_bar[t], s.alpha_bar[t - 1], s.betas[t]
    mu = (ab_prev.sqrt() * beta / (1 - ab)) * x0 + ((1 - beta).sqrt() * (1 - ab_prev) / (1 - ab)) * xt
    g = torch.Generator().manual_seed(0)
    z = torch.randn(xt.shape, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(
        s.step(eps, t, xt, g), mu + s.posterior_var[t].sqrt() * z, atol=1e-5, rtol=1e-5
    )


def test_grating_masks_are_complementary_and_strip_shaped():
    m = grating_mask(torch.tensor([0, 1]), K=3, L=20, n_strips=4)
    assert m.shape == (2, 3, 20)
    torch.testing.assert_close(m[0] + m[1], torch.ones(3, 20))  # every point imputed exactly once
    assert m[0, 0].tolist() == [1] * 5 + [0] * 5 + [1] * 5 + [0] * 5
    assert torch.equal(m[:, 0], m[:, 2])  # the same strips on every channel
    assert strip_ids(10, 3).tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_other_masks():
    g = torch.Generator().manual_seed(0)
    r = random_mask(50, 4, 40, 0.7, g)
    assert abs(r.mean().item() - 0.7) < 0.02
    f = forecast_mask(2, 3, 20, 4)
    assert f[0, 0].tolist() == [0] * 15 + [1] * 5
    assert full_mask(1, 2, 3).sum() == 6
    with pytest.raises(DataValidationError, match="n_strips"):
        strip_ids(5, 6)


# ---------------------------------------------------------------- the imputation loop, on analytic models
from diffad.diffusion import impute  # noqa: E402


def _oracle(sched, x0_true, prediction):
    """A network that knows the clean values: it returns them ("x0") or the exact noise of x_t ("eps")."""

    def model(noisy, x, t_vec):
        if prediction == "x0":
            return x0_true.clone()
        ab = sched.alpha_bar[t_vec][:, None, None]
        return (x - ab.sqrt() * x0_true) / (1 - ab).sqrt()

    return model


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
@pytest.mark.parametrize("prediction", ["eps", "x0"])
def test_an_oracle_network_imputes_the_true_values(sampler, prediction):
    base = DDPMScheduler(20, 1e-4, 0.5, "quad")
    sched = base.with_settings(prediction_type=prediction, sampler=sampler)
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(4, 3, 16, generator=g)
    cond = grating_mask(torch.tensor([0, 1, 0, 1]), 3, 16, 4)  # 1 = observed (given), 0 = imputed
    record = [0, 3, 6]
    steps = sched.set_timesteps(19, record, ddim_jumps=2)
    out, final = impute(
        _oracle(sched, x0, prediction),
        sched,
        x0,
        cond,
        torch.randn(x0.shape, generator=g),
        steps,
        record,
        lambda: torch.randn(x0.shape, generator=g),
        (-5.0, 5.0),
        output="x0",
    )
    m = cond == 0
    torch.testing.assert_close(final[m], x0[m], atol=1e-4, rtol=1e-4)  # the last step lands on the truth
    torch.testing.assert_close(
        out[:, m], x0[m].expand(3, -1), atol=1e-3, rtol=1e-3
    )  # and so does every x0 estimate
    assert torch.all(final[cond == 1] == 0)  # only the imputed region is generated


def test_recorded_samples_and_the_step_schedule():
    assert DDPMScheduler(10).set_timesteps(9, [0, 2, 4]) == list(range(9, -1, -1))
    ddim = DDPMScheduler(50, sampler="ddim")
    steps = ddim.set_timesteps(49, [0, 3, 6, 9], ddim_jumps=2)
    assert (
        steps[0] == 49 and steps[-4:] == [9, 6, 3, 0] and len(steps) == 6
    )  # two jumps down to 9, then the recorded steps
    assert ddim.timesteps == steps
    sched = DDPMScheduler(10, 1e-4, 0.5).with_settings(prediction_type="x0", sampler="ddim")
    x0 = torch.ones(2, 2, 8)
    cond = torch.zeros_like(x0)
    out, final = impute(
        lambda noisy, x, t: x0.clone(),
        sched,
        x0,
        cond,
        torch.zeros_like(x0),
        [9, 5, 0],
        [0, 5],
        lambda: torch.zeros_like(x0),
        (-2.0, 2.0),
        output="sample",
    )
    torch.testing.assert_close(out[0], final)  # step 0's sample is the final one
    with pytest.raises(DataValidationError, match="sampler"):
        DDPMScheduler(10, sampler="euler")


def test_dte_and_imdiffusion_share_the_schedule_code():
    from diffad.detectors.dte import diffusion_sigmas

    np.testing.assert_array_equal(
        diffusion_sigmas(300, 1e-4, 0.01), 1 - np.cumprod(1 - make_betas(300, 1e-4, 0.01, "linear"))
    )
