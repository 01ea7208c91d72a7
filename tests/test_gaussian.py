"""Diagonal-Gaussian networks: divergences against quadrature and torch.distributions,
their derivatives against autograd, and the local reparameterisation moments."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from skfairbilevel.nn.bilevel import flat_grad, flatten, hvp, unflatten_like
from skfairbilevel.nn.gaussian import (
    GaussianMLP,
    divergence_derivatives,
    divergence_grad,
    gaussian_forward,
    sampled_forward,
)

from ._reference import divergence, kl_divergence, w2_divergence


def gaussian_params(mu_q, lv_q, mu_p, lv_p):
    t = lambda a: torch.as_tensor(np.atleast_2d(a), dtype=torch.float64)  # noqa: E731
    return [t(mu_q), t(lv_q)], [t(mu_p), t(lv_p)]


# ----------------------------------------------------------------------------- divergences
def test_divergences_hand_computed():
    # q = N(1, 4), p = N(0, 1): KL = 1/2 (4 + 1 - 1 - ln 4) = 2 - ln 2; W2^2 = 1 + (2-1)^2
    q, p = gaussian_params([1.0], [math.log(4.0)], [0.0], [0.0])
    assert float(kl_divergence(q, p)) == pytest.approx(2 - math.log(2), abs=1e-12)
    assert float(w2_divergence(q, p)) == pytest.approx(2.0, abs=1e-12)
    assert float(divergence("kl", p, p)) == 0.0
    assert float(divergence("w2", q, q)) == 0.0
    # the package's closed-form values: the same numbers
    assert float(divergence_derivatives("kl", q, p)[0]) == pytest.approx(2 - math.log(2), abs=1e-12)
    assert float(divergence_derivatives("w2", q, p)[0]) == pytest.approx(2.0, abs=1e-12)
    for fn in (divergence_derivatives, divergence_grad):
        with pytest.raises(ValueError, match="divergence='js'"):
            fn("js", q, p)


def test_kl_matches_quadrature_and_torch_distributions():
    rng = np.random.default_rng(0)
    mq, mp = rng.normal(size=5), rng.normal(size=5)
    lq, lp = rng.normal(scale=0.7, size=5), rng.normal(scale=0.7, size=5)
    q, p = gaussian_params(mq, lq, mp, lp)
    ours = float(kl_divergence(q, p))
    Nq = torch.distributions.Normal(torch.tensor(mq), torch.tensor(np.exp(0.5 * lq)))
    Np = torch.distributions.Normal(torch.tensor(mp), torch.tensor(np.exp(0.5 * lp)))
    assert ours == pytest.approx(float(torch.distributions.kl_divergence(Nq, Np).sum()), rel=1e-10)
    # numerical integration of the first coordinate
    sq, sp = np.exp(0.5 * lq[0]), np.exp(0.5 * lp[0])

    def f(x):
        return stats.norm.pdf(x, mq[0], sq) * (
            stats.norm.logpdf(x, mq[0], sq) - stats.norm.logpdf(x, mp[0], sp)
        )

    quad, _ = integrate.quad(f, -30, 30, limit=200)
    one = float(kl_divergence(*gaussian_params(mq[:1], lq[:1], mp[:1], lp[:1])))
    assert one == pytest.approx(quad, rel=1e-7)


def test_w2_matches_quantile_integral():
    # in 1-D, W2^2 = int_0^1 (F_q^{-1}(u) - F_p^{-1}(u))^2 du
    rng = np.random.default_rng(1)
    for _ in range(3):
        mq, mp = rng.normal(size=2)
        lq, lp = rng.normal(scale=0.8, size=2)
        sq, sp = math.exp(0.5 * lq), math.exp(0.5 * lp)
        f = lambda u: (stats.norm.ppf(u, mq, sq) - stats.norm.ppf(u, mp, sp)) ** 2  # noqa: E731,B023
        quad, _ = integrate.quad(f, 0, 1, limit=200)
        ours = float(w2_divergence(*gaussian_params([mq], [lq], [mp], [lp])))
        assert ours == pytest.approx(quad, rel=1e-6)


@pytest.mark.parametrize("name", ["kl", "w2"])
def test_divergence_per_model_and_broadcast(name):
    gen = torch.Generator().manual_seed(0)
    prior = GaussianMLP(3, (4,), 2, n_models=1, generator=gen)
    posts = GaussianMLP(3, (4,), 2, n_models=3, generator=gen)
    posts.copy_from(prior)
    with torch.no_grad():
        posts.params[0][1] += 0.5  # model 1, first weight means
    d = divergence(name, posts.parameter_list(), prior.parameter_list()).detach()
    assert d.shape == (3,)
    assert float(d[0]) == 0.0 and float(d[2]) == 0.0
    n = posts.params[0][1].numel()
    # only means moved by 0.5: W2 = n * 0.25; KL = n * 0.25 / (2 sigma_p^2) summed per weight
    sig2 = prior.params[1][0].exp()
    expected = n * 0.25 if name == "w2" else float((0.25 / (2 * sig2)).sum().detach())
    assert float(d[1]) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("name", ["kl", "w2"])
def test_divergence_derivatives_match_autograd(name):
    """Closed-form value, gradients, diagonal Hessian and mixed derivative vs autograd;
    the Q-Q Hessian is diagonal (H v == diag(H) * v)."""
    gen = torch.Generator().manual_seed(3)
    base = GaussianMLP(3, (4,), 2, n_models=1, logvar_init=(0.1, 0.5), generator=gen)
    p = [t.detach().double().requires_grad_(True) for t in base.parameter_list()]
    q = [
        (
            t.detach().expand(3, *t.shape[1:])
            + 0.3 * torch.randn((3,) + tuple(t.shape[1:]), generator=gen, dtype=torch.float64)
        ).requires_grad_(True)
        for t in p
    ]
    D = divergence(name, q, p)
    value, gq, gp, hq, mixed = divergence_derivatives(name, q, p)
    torch.testing.assert_close(value, D.detach(), rtol=1e-12, atol=1e-12)
    g = flat_grad(D.sum(), q, create_graph=True)
    torch.testing.assert_close(flatten(gq), g.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(
        flatten(gp), flat_grad(D.sum(), p, retain_graph=True), rtol=1e-12, atol=1e-12
    )
    v = torch.randn(g.shape, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(hvp(g, q, v), flatten(hq) * v, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(
        hvp(g, p, v), flatten(mixed(unflatten_like(v, q))), rtol=1e-10, atol=1e-12
    )


@pytest.mark.parametrize("name", ["kl", "w2"])
def test_divergence_grad_is_grad_q(name):
    gen = torch.Generator().manual_seed(4)
    base = GaussianMLP(3, (4,), 2, n_models=1, logvar_init=(0.1, 0.5), generator=gen)
    p = [t.detach().double() for t in base.parameter_list()]
    q = [
        t.expand(3, *t.shape[1:])
        + 0.3 * torch.randn((3,) + tuple(t.shape[1:]), generator=gen, dtype=torch.float64)
        for t in p
    ]
    q_before = [t.clone() for t in q]
    for a, b in zip(
        divergence_grad(name, q, p), divergence_derivatives(name, q, p)[1], strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for a, b in zip(q, q_before, strict=True):  # inputs untouched by the in-place ops
        torch.testing.assert_close(a, b, rtol=0, atol=0)


# ----------------------------------------------------------------------------- forward passes
def test_local_reparameterisation_moments():
    """One layer: output ~ N(x mu_W^T + mu_b, eps^2 (x^2 sigma_W^2^T + sigma_b^2))."""
    gen = torch.Generator().manual_seed(0)
    net = GaussianMLP(3, (), 2, n_models=1, logvar_init=(-1.0, 0.3), generator=gen)
    x = torch.tensor([[1.0, -2.0, 0.5]])
    params = [p.detach() for p in net.parameter_list()]
    w_mu, w_lv, b_mu, b_lv = params
    mean = x @ w_mu[0] + b_mu[0]  # weights are stored (in, out)
    var = 0.25 * ((x**2) @ w_lv[0].exp() + b_lv[0].exp())
    xr = x.expand(20000, 3)
    out = gaussian_forward(xr, params, act=net.act, eps_std=0.5, generator=gen)[0]
    torch.testing.assert_close(out.mean(0), mean[0], atol=4 * float(var.max().sqrt()) / 141, rtol=0)
    torch.testing.assert_close(out.var(0), var[0], rtol=0.05, atol=0)
    # sampled weights: same distribution across samples
    z = [torch.randn((20000,) + tuple(p.shape[1:]), generator=gen) for p in (w_lv, b_lv)]
    outs = sampled_forward(x, params, z, act=net.act, eps_std=0.5)[:, 0]
    torch.testing.assert_close(
        outs.mean(0), mean[0], atol=4 * float(var.max().sqrt()) / 141, rtol=0
    )
    torch.testing.assert_close(outs.var(0), var[0], rtol=0.05, atol=0)
    # eps_std = 0: the mean network, deterministic
    det = gaussian_forward(x, params, act=net.act, eps_std=0.0)[0]
    torch.testing.assert_close(det, mean)
