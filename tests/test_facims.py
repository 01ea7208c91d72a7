"""FACIMSClassifier, the diagonal-Gaussian layers and divergences, the VS loss and the
Neumann implicit gradient: numbers checked against closed forms."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import integrate, stats

from skfairbilevel import FACIMSClassifier
from skfairbilevel.datasets import make_biased_classification
from skfairbilevel.estimators.facims import implicit_gradients
from skfairbilevel.nn.bilevel import flat_grad, flatten, hvp, unflatten_like
from skfairbilevel.nn.gaussian import (
    GaussianMLP,
    divergence,
    divergence_derivatives,
    divergence_grad,
    gaussian_forward,
    kl_divergence,
    sampled_forward,
    w2_divergence,
)
from skfairbilevel.nn.losses import vs_loss

SMALL = dict(hidden_layer_sizes=(8,), max_epochs=4, n_mc=2, inner_steps=2, outer_steps=2,
             neumann_terms=3, lr_prior=0.05, random_state=0)


def gaussian_params(mu_q, lv_q, mu_p, lv_p):
    t = lambda a: torch.as_tensor(np.atleast_2d(a), dtype=torch.float64)  # noqa: E731
    return [t(mu_q), t(lv_q)], [t(mu_p), t(lv_p)]


@pytest.fixture(scope="module")
def data3():
    X, y, A = make_biased_classification(240, 5, n_groups=3, random_state=0)
    return X, y, A


# ----------------------------------------------------------------------------- divergences
def test_divergences_hand_computed():
    # q = N(1, 4), p = N(0, 1): KL = 1/2 (4 + 1 - 1 - ln 4) = 2 - ln 2; W2^2 = 1 + (2-1)^2
    q, p = gaussian_params([1.0], [math.log(4.0)], [0.0], [0.0])
    assert float(kl_divergence(q, p)) == pytest.approx(2 - math.log(2), abs=1e-12)
    assert float(w2_divergence(q, p)) == pytest.approx(2.0, abs=1e-12)
    assert float(divergence("kl", p, p)) == 0.0
    assert float(divergence("w2", q, q)) == 0.0
    with pytest.raises(ValueError, match="divergence='js'"):
        divergence("js", q, p)


def test_kl_matches_quadrature_and_torch_distributions():
    rng = np.random.default_rng(0)
    mq, mp = rng.normal(size=5), rng.normal(size=5)
    lq, lp = rng.normal(scale=0.7, size=5), rng.normal(scale=0.7, size=5)
    q, p = gaussian_params(mq, lq, mp, lp)
    ours = float(kl_divergence(q, p))
    Nq = torch.distributions.Normal(torch.tensor(mq), torch.tensor(np.exp(0.5 * lq)))
    Np = torch.distributions.Normal(torch.tensor(mp), torch.tensor(np.exp(0.5 * lp)))
    assert ours == pytest.approx(float(torch.distributions.kl_divergence(Nq, Np).sum()),
                                 rel=1e-10)
    # numerical integration of the first coordinate
    sq, sp = np.exp(0.5 * lq[0]), np.exp(0.5 * lp[0])
    f = lambda x: stats.norm.pdf(x, mq[0], sq) * (  # noqa: E731
        stats.norm.logpdf(x, mq[0], sq) - stats.norm.logpdf(x, mp[0], sp))
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
    q = [(t.detach().expand(3, *t.shape[1:])
          + 0.3 * torch.randn((3,) + tuple(t.shape[1:]), generator=gen, dtype=torch.float64)
          ).requires_grad_(True) for t in p]
    D = divergence(name, q, p)
    value, gq, gp, hq, mixed = divergence_derivatives(name, q, p)
    torch.testing.assert_close(value, D.detach(), rtol=1e-12, atol=1e-12)
    g = flat_grad(D.sum(), q, create_graph=True)
    torch.testing.assert_close(flatten(gq), g.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(flatten(gp), flat_grad(D.sum(), p, retain_graph=True),
                               rtol=1e-12, atol=1e-12)
    v = torch.randn(g.shape, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(hvp(g, q, v), flatten(hq) * v, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(hvp(g, p, v), flatten(mixed(unflatten_like(v, q))),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["kl", "w2"])
def test_divergence_grad_is_grad_q(name):
    gen = torch.Generator().manual_seed(4)
    base = GaussianMLP(3, (4,), 2, n_models=1, logvar_init=(0.1, 0.5), generator=gen)
    p = [t.detach().double() for t in base.parameter_list()]
    q = [t.expand(3, *t.shape[1:]) + 0.3 * torch.randn((3,) + tuple(t.shape[1:]),
                                                       generator=gen, dtype=torch.float64)
         for t in p]
    q_before = [t.clone() for t in q]
    for a, b in zip(divergence_grad(name, q, p), divergence_derivatives(name, q, p)[1],
                    strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for a, b in zip(q, q_before, strict=True):  # inputs untouched by the in-place ops
        torch.testing.assert_close(a, b, rtol=0, atol=0)


# ----------------------------------------------------------------------------- VS loss
def test_vs_loss_hand_computed():
    logits = torch.tensor([[1.0, 2.0], [0.5, -1.0]], dtype=torch.float64)
    y = torch.tensor([1, 0])
    scale = torch.tensor([0.5, 1.0], dtype=torch.float64)
    shift = torch.tensor([0.0, 0.1], dtype=torch.float64)
    omega = torch.tensor([2.0, 1.0], dtype=torch.float64)
    # row 0: z = (0.5, 2.1), CE = log(1 + e^{0.5-2.1}); row 1: z = (0.25, -0.9)
    ce0 = math.log1p(math.exp(0.5 - 2.1))
    ce1 = math.log1p(math.exp(-0.9 - 0.25))
    expected = (1.0 * ce0 + 2.0 * ce1) / 3.0  # weights omega[y] = (1, 2)
    got = vs_loss(logits, y, scale=scale, shift=shift, class_weight=omega)
    assert float(got) == pytest.approx(expected, rel=1e-12)
    # no adjustment: torch's class-weighted cross-entropy
    ref = F.cross_entropy(logits, y, weight=omega)
    assert float(vs_loss(logits, y, class_weight=omega)) == pytest.approx(float(ref), rel=1e-12)
    # batched over models, zero weights drop rows
    batch = torch.stack([logits, logits])
    w = torch.tensor([[1.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    out = vs_loss(batch, torch.stack([y, y]), weight=w)
    assert out.shape == (2,)
    assert float(out[1]) == pytest.approx(math.log1p(math.exp(1.0 - 2.0)), rel=1e-12)


# ----------------------------------------------------------------------------- forward passes
def test_local_reparameterisation_moments():
    """One layer: output ~ N(x mu_W^T + mu_b, eps^2 (x^2 sigma_W^2^T + sigma_b^2))."""
    gen = torch.Generator().manual_seed(0)
    net = GaussianMLP(3, (), 2, n_models=1, logvar_init=(-1.0, 0.3), generator=gen)
    x = torch.tensor([[1.0, -2.0, 0.5]])
    params = [p.detach() for p in net.parameter_list()]
    w_mu, w_lv, b_mu, b_lv = params
    mean = x @ w_mu[0] + b_mu[0]  # weights are stored (in, out)
    var = 0.25 * ((x ** 2) @ w_lv[0].exp() + b_lv[0].exp())
    xr = x.expand(20000, 3)
    out = gaussian_forward(xr, params, act=net.act, eps_std=0.5, generator=gen)[0]
    torch.testing.assert_close(out.mean(0), mean[0], atol=4 * float(var.max().sqrt()) / 141,
                               rtol=0)
    torch.testing.assert_close(out.var(0), var[0], rtol=0.05, atol=0)
    # sampled weights: same distribution across samples
    z = [torch.randn((20000,) + tuple(p.shape[1:]), generator=gen) for p in (w_lv, b_lv)]
    outs = sampled_forward(x, params, z, act=net.act, eps_std=0.5)[:, 0]
    torch.testing.assert_close(outs.mean(0), mean[0], atol=4 * float(var.max().sqrt()) / 141,
                               rtol=0)
    torch.testing.assert_close(outs.var(0), var[0], rtol=0.05, atol=0)
    # eps_std = 0: the mean network, deterministic
    det = gaussian_forward(x, params, act=net.act, eps_std=0.0)[0]
    torch.testing.assert_close(det, mean)


# ----------------------------------------------------------------------------- Neumann / IFT
def _quadratic_problem(seed=0, n=4, m=3, lam=0.7):
    """f(Q, v) = 1/2 Q'AQ - Q'Bv, D(Q, P) = sum (Q - P)^2; Q* = (A + 2 lam I)^{-1}(Bv + 2 lam P)."""
    g = torch.Generator().manual_seed(seed)
    M = torch.randn(n, n, generator=g, dtype=torch.float64)
    A = M @ M.T / n + 0.5 * torch.eye(n, dtype=torch.float64)
    B = torch.randn(n, m, generator=g, dtype=torch.float64)
    P = torch.randn(n, generator=g, dtype=torch.float64).requires_grad_(True)
    v = torch.randn(m, generator=g, dtype=torch.float64).requires_grad_(True)
    t = torch.randn(n, generator=g, dtype=torch.float64)
    H = A + 2 * lam * torch.eye(n, dtype=torch.float64)
    Q_star = torch.linalg.solve(H, B @ v.detach() + 2 * lam * P.detach())
    Q = Q_star.clone().requires_grad_(True)
    g_vs = flat_grad(0.5 * Q @ A @ Q - Q @ (B @ v), [Q], create_graph=True)
    # D = sum (Q - P)^2: d2D/dQ2 = 2 I, d2D/dP dQ = -2 I
    div = dict(div_hess=torch.full((n,), 2.0, dtype=torch.float64),
               div_mixed=lambda c: -2.0 * c)
    b = (Q_star - t)  # dF/dQ for F = 1/2 ||Q* - t||^2
    return dict(A=A, B=B, H=H, P=P, v=v, Q=Q, b=b, g_vs=g_vs, div=div, lam=lam)


def test_neumann_hypergradient_matches_exact_inverse():
    pb = _quadratic_problem()
    H, B, b, lam = pb["H"], pb["B"], pb["b"], pb["lam"]
    alpha = 0.9 / float(torch.linalg.eigvalsh(H).max())
    mixed_p, mixed_v = implicit_gradients(pb["g_vs"], [pb["Q"]], [pb["v"]], b, **pb["div"],
                                          lambda_low=lam, n_terms=400, alpha=alpha)
    p_exact = torch.linalg.solve(H, b)
    # exact total derivatives of F(P, v) = 1/2 ||Q*(P, v) - t||^2
    dF_dP = 2 * lam * p_exact
    dF_dv = B.T @ p_exact
    torch.testing.assert_close(-mixed_p, dF_dP, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(-mixed_v, dF_dv, rtol=1e-8, atol=1e-10)


def test_neumann_truncation_closed_form():
    """With K terms: p = alpha sum_{j<=K} (I - alpha H)^j b exactly (reference settings)."""
    pb = _quadratic_problem(seed=1)
    H, B, b, lam = pb["H"], pb["B"], pb["b"], pb["lam"]
    mixed_p, mixed_v = implicit_gradients(pb["g_vs"], [pb["Q"]], [pb["v"]], b, **pb["div"],
                                          lambda_low=lam, n_terms=10, alpha=0.1)
    I = torch.eye(len(b), dtype=torch.float64)
    p = 0.1 * sum(torch.linalg.matrix_power(I - 0.1 * H, j) @ b for j in range(11))
    torch.testing.assert_close(-mixed_p, 2 * lam * p, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(-mixed_v, B.T @ p, rtol=1e-10, atol=1e-12)
    # and it is not yet the exact inverse: the truncation error is (I - alpha H)^11 H^-1 b
    err = torch.linalg.matrix_power(I - 0.1 * H, 11) @ torch.linalg.solve(H, b)
    torch.testing.assert_close(torch.linalg.solve(H, b) - p, err, rtol=1e-8, atol=1e-12)


def test_implicit_gradient_matches_finite_differences():
    """dF/dP by central differences of F(Q*(P)) on the quadratic problem."""
    pb = _quadratic_problem(seed=2)
    A, B, lam, v = pb["A"], pb["B"], pb["lam"], pb["v"].detach()
    H = pb["H"]
    t = pb["Q"].detach() - pb["b"]

    def F_of(P):
        Qs = torch.linalg.solve(H, B @ v + 2 * lam * P)
        return 0.5 * float(((Qs - t) ** 2).sum())

    P0 = pb["P"].detach()
    fd = torch.stack([torch.tensor((F_of(P0 + 1e-6 * e) - F_of(P0 - 1e-6 * e)) / 2e-6)
                      for e in torch.eye(len(P0), dtype=torch.float64)])
    alpha = 0.9 / float(torch.linalg.eigvalsh(H).max())
    mixed_p, mixed_v = implicit_gradients(pb["g_vs"], [pb["Q"]], [], pb["b"], **pb["div"],
                                          lambda_low=lam, n_terms=400, alpha=alpha)
    assert mixed_v is None
    torch.testing.assert_close(-mixed_p, fd.to(torch.float64), rtol=1e-6, atol=1e-8)
    del A


def test_implicit_gradients_curved_blocks_equal_full_series():
    """``curved``: f depends on Q[0] only; the Q[1] block of the series in closed form
    gives the same p (hence mixed_p, mixed_v) as the full series, for any number of
    terms, including a zero curvature entry."""
    gen = torch.Generator().manual_seed(5)
    n0, n1, m, lam = 6, 4, 3, 0.7
    M = torch.randn(n0, n0, generator=gen, dtype=torch.float64)
    A = M @ M.T / n0 + 0.3 * torch.eye(n0, dtype=torch.float64)
    Bm = torch.randn(n0, m, generator=gen, dtype=torch.float64)
    v = torch.randn(m, generator=gen, dtype=torch.float64).requires_grad_(True)
    Q0 = torch.randn(n0, generator=gen, dtype=torch.float64).requires_grad_(True)
    Q1 = torch.randn(n1, generator=gen, dtype=torch.float64).requires_grad_(True)

    def f():
        return 0.5 * Q0 @ A @ Q0 - Q0 @ (Bm @ v) + torch.sin(Q0).sum() * 0.1

    hess = torch.rand(n0 + n1, generator=gen, dtype=torch.float64) + 0.5
    hess[-1] = 0.0
    b = torch.randn(n0 + n1, generator=gen, dtype=torch.float64)
    kw = dict(div_hess=hess, div_mixed=lambda c: -hess * c, lambda_low=lam, alpha=0.2)
    for n_terms in (0, 3, 10):
        g_full = flat_grad(f(), [Q0, Q1], create_graph=True)
        full = implicit_gradients(g_full, [Q0, Q1], [v], b, n_terms=n_terms, **kw)
        g_cur = flat_grad(f(), [Q0], create_graph=True)
        part = implicit_gradients(g_cur, [Q0, Q1], [v], b, n_terms=n_terms, curved=[0], **kw)
        for a, c in zip(full, part, strict=True):
            torch.testing.assert_close(a, c, rtol=1e-12, atol=1e-14)


def test_loss_parameter_hypergradient_matches_finite_differences():
    """End to end on a small Gaussian network, with the estimator's own pieces (VS loss of
    the mean network, closed-form W2 derivatives, Neumann series over the means,
    log-variance block in closed form): dF/dv for F(v) = D(Q*(v) || P), Q*(v) the
    minimiser of VS(Q, v) + lam * D(Q || P), against central differences of F."""
    gen = torch.Generator().manual_seed(6)
    net = GaussianMLP(3, (4,), 3, n_models=1, logvar_init=(0.1, 0.3), generator=gen)
    P = [t.detach().double().contiguous() for t in net.parameter_list()]
    x = torch.randn(40, 3, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (40,), generator=gen)
    omega = torch.tensor([0.2, 0.5, 0.8], dtype=torch.float64)
    lam = 1.0
    act = net.act

    def vs(Q, dy, ly):
        out = gaussian_forward(x, Q, act=act, eps_std=0.0)[0]
        return vs_loss(out, y, scale=torch.sigmoid(dy), shift=ly, class_weight=omega).sum()

    def solve(dy, ly):
        Q = [t.clone(memory_format=torch.contiguous_format).requires_grad_(True) for t in P]
        opt = torch.optim.LBFGS(Q, lr=1, max_iter=200, tolerance_grad=1e-13,
                                tolerance_change=1e-15, history_size=50,
                                line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = vs(Q, dy, ly) + lam * divergence("w2", Q, P).sum()
            loss.backward()
            return loss

        opt.step(closure)
        return [t.detach() for t in Q]

    def F(dy, ly):
        return float(divergence("w2", solve(dy, ly), P).sum())

    dy0 = torch.tensor([1.0, 0.5, 1.5], dtype=torch.float64)
    ly0 = torch.tensor([0.0, 0.3, -0.2], dtype=torch.float64)
    Qs = [t.requires_grad_(True) for t in solve(dy0, ly0)]
    dy, ly = dy0.clone().requires_grad_(True), ly0.clone().requires_grad_(True)
    curved = [0, 2, 4, 6]  # the means
    g_vs = flat_grad(vs(Qs, dy, ly), [Qs[i] for i in curved], create_graph=True)
    _, gq, _, hq, mixed = divergence_derivatives("w2", [q.detach() for q in Qs], P)
    _, mixed_v = implicit_gradients(
        g_vs, Qs, [dy, ly], flatten(gq), div_hess=flatten(hq),
        div_mixed=lambda c: flatten(mixed(unflatten_like(c, Qs))), lambda_low=lam,
        n_terms=300, alpha=0.2, curved=curved)
    fd = []
    h = 1e-4
    for which in range(2):
        for k in range(3):
            e = torch.zeros(3, dtype=torch.float64)
            e[k] = h
            args_p = (dy0 + e, ly0) if which == 0 else (dy0, ly0 + e)
            args_m = (dy0 - e, ly0) if which == 0 else (dy0, ly0 - e)
            fd.append((F(*args_p) - F(*args_m)) / (2 * h))
    fd = torch.tensor(fd, dtype=torch.float64)
    assert float(fd.abs().max()) > 1e-4  # v does move the lower solution
    torch.testing.assert_close(-mixed_v, fd, rtol=1e-4, atol=1e-8)


# ----------------------------------------------------------------------------- estimator
def test_binary_fit_predict_and_attributes(data3):
    X, y, A = data3
    clf = FACIMSClassifier(**SMALL).fit(X, y, sensitive_features=A)
    P = clf.predict_proba(X)
    assert P.shape == (len(X), 2)
    np.testing.assert_allclose(P.sum(1), 1.0, atol=1e-6)
    assert clf.n_groups_ == 3 and clf.fairness_aware_
    assert len(clf.history_) == clf.n_iter_ == 4
    assert {"lower", "val_loss", "divergence"} <= set(clf.history_[0])
    assert clf.n_train_rows_ + clf.n_validation_rows_ == len(np.unique(
        np.column_stack([X, y, np.asarray(A)]), axis=0))
    # class weights: omega_c ~ N / n_c on the training split, unit L2 norm
    assert np.linalg.norm(clf.class_weight_) == pytest.approx(1.0)
    # the learned VS-loss parameters moved from their start (sigmoid(1), 0)
    assert not np.allclose(clf.loss_shift_, 0.0)
    assert clf.score(X, y) > 0.7


def test_multiclass_shapes_and_probabilities():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6)).astype(np.float32)
    y = np.digitize(X[:, 0] + 0.5 * X[:, 1], [-1.0, 0.0, 1.0])  # 4 ordered classes
    labels = np.array(["a", "b", "c", "d"])[y]
    A = rng.integers(0, 3, 300)
    clf = FACIMSClassifier(**SMALL).fit(X, labels, sensitive_features=A)
    P = clf.predict_proba(X)
    assert P.shape == (300, 4)
    assert np.all(P >= 0)
    np.testing.assert_allclose(P.sum(1), 1.0, atol=1e-6)
    assert set(clf.predict(X)) <= set(clf.classes_)
    assert list(clf.classes_) == ["a", "b", "c", "d"]
    assert clf.class_weight_.shape == (4,) and clf.loss_scale_.shape == (4,)


def test_reproducible_and_seed_dependent(data3):
    X, y, A = data3
    p1 = FACIMSClassifier(**SMALL).fit(X, y, sensitive_features=A).predict_proba(X)
    p2 = FACIMSClassifier(**SMALL).fit(X, y, sensitive_features=A).predict_proba(X)
    p3 = FACIMSClassifier(**{**SMALL, "random_state": 1}).fit(
        X, y, sensitive_features=A).predict_proba(X)
    assert np.array_equal(p1, p2)
    assert not np.allclose(p1, p3)


def test_mc_averaging_reduces_prediction_variance(data3):
    """Averaging S weight samples divides the variance of the prediction by S."""
    X, y, A = data3
    clf = FACIMSClassifier(**{**SMALL, "eps_std": 0.3}).fit(X, y, sensitive_features=A)
    net = clf.module_
    params = [p.detach() for p in net.prior.parameter_list()]
    x = torch.as_tensor(X[:20], dtype=torch.float32)
    gen = torch.Generator().manual_seed(0)
    S, R = 16, 300
    zetas = [torch.randn((R * S,) + tuple(z.shape[1:]), generator=gen) for z in net.zetas()]
    probs = torch.softmax(sampled_forward(x, params, zetas, act=net.prior.act,
                                          eps_std=0.3), dim=-1)[..., 1]  # (R*S, 20)
    single = probs[:R].var(0)                               # one sample per prediction
    averaged = probs.reshape(R, S, -1).mean(1).var(0)       # mean of S samples
    ratio = float(averaged.mean() / single.mean())
    assert 0.6 / S < ratio < 1.6 / S
    assert float(single.mean()) > 1e-4  # the noise is not negligible


def test_eps_std_predict_zero_is_the_mean_network(data3):
    X, y, A = data3
    clf = FACIMSClassifier(**{**SMALL, "eps_std_predict": 0.0}).fit(
        X, y, sensitive_features=A)
    x = torch.as_tensor(X, dtype=torch.float32)
    with torch.no_grad():
        logits = gaussian_forward(x, clf.module_.prior.parameter_list(),
                                  act=clf.module_.prior.act, eps_std=0.0)[0]
    np.testing.assert_allclose(clf.predict_proba(X), torch.softmax(logits, 1).numpy(),
                               rtol=1e-5, atol=1e-6)


def test_prediction_is_row_independent(data3):
    X, y, A = data3
    clf = FACIMSClassifier(**SMALL).fit(X, y, sensitive_features=A)
    full = clf.predict_proba(X)
    single = np.vstack([clf.predict_proba(X[i:i + 1]) for i in range(0, len(X), 37)])
    np.testing.assert_allclose(full[::37], single, rtol=1e-6, atol=1e-7)  # BLAS rounding


def test_output_sigmoid_compresses_probabilities(data3):
    X, y, A = data3
    clf = FACIMSClassifier(**{**SMALL, "output_sigmoid": True}).fit(
        X, y, sensitive_features=A)
    # softmax of two numbers in (0, 1): max probability < e / (1 + e)
    assert clf.predict_proba(X).max() < math.e / (1 + math.e)


def test_tiny_groups_work():
    """A group of 2 rows and one of 14 (like credit EDUCATION 0) next to large ones."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(216, 4)).astype(np.float32)
    y = (X[:, 0] > 0.3).astype(int)
    A = np.array([0] * 2 + [1] * 14 + [2] * 100 + [3] * 100)
    clf = FACIMSClassifier(**SMALL).fit(X, y, sensitive_features=A)
    assert clf.n_groups_ == 4
    assert np.all(np.isfinite(clf.predict_proba(X)))
    assert np.all(np.isfinite(clf.sam_rho_)) and clf.sam_rho_.shape == (4,)


def test_sam_rho_rules():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    A = np.array([0] * 50 + [1] * 150)
    base = {**SMALL, "max_epochs": 1, "validation_fraction": 0.2}
    c = FACIMSClassifier(**base, sam_rho="label_order").fit(X, y, sensitive_features=A)
    np.testing.assert_allclose(c.sam_rho_, [5e-5, 5e-4])
    c = FACIMSClassifier(**base).fit(X, y, sensitive_features=A)
    # inverse frequency: 0.05 * n_min / n_a, n_a = training rows of the group
    g = np.asarray(A)
    n0 = 50 - sum(round(0.2 * k) for k in np.bincount(y[g == 0]))
    n1 = 150 - sum(round(0.2 * k) for k in np.bincount(y[g == 1]))
    np.testing.assert_allclose(c.sam_rho_, [0.05, 0.05 * n0 / n1], rtol=1e-6)
    c = FACIMSClassifier(**base, sam_rho=[0.1, 0.2]).fit(X, y, sensitive_features=A)
    np.testing.assert_allclose(c.sam_rho_, [0.1, 0.2])
    with pytest.raises(ValueError, match="sam_rho has 3 radii but the data have 2 groups"):
        FACIMSClassifier(**base, sam_rho=[0.1, 0.2, 0.3]).fit(X, y, sensitive_features=A)
    assert FACIMSClassifier(**base, sam=False).fit(X, y, sensitive_features=A).sam_rho_ is None


def test_ablations_and_compat_switches(data3):
    X, y, A = data3
    fixed = FACIMSClassifier(**SMALL, learn_loss_params=False).fit(X, y, sensitive_features=A)
    np.testing.assert_allclose(fixed.loss_scale_, 1 / (1 + math.exp(-1)), rtol=1e-6)
    np.testing.assert_array_equal(fixed.loss_shift_, 0.0)
    for kw in [dict(sam=False), dict(stale_graph=True), dict(divergence="kl"),
               dict(upper_weighting="reference"), dict(upper_weighting="convex"),
               dict(validation_aggregation="per_group"), dict(groups_per_epoch=1),
               dict(val_batch_size=10), dict(prior_noise=0.0), dict(n_mc_hyper=2)]:
        clf = FACIMSClassifier(**SMALL, **kw).fit(X, y, sensitive_features=A)
        assert np.all(np.isfinite(clf.predict_proba(X))), kw


def test_sample_weight_is_repetition(data3):
    X, y, A = data3
    w = np.tile([1, 2, 3], len(y) // 3)
    Xr, yr, Ar = np.repeat(X, w, 0), np.repeat(y, w), np.repeat(np.asarray(A), w)
    a = FACIMSClassifier(**SMALL).fit(X, y, sensitive_features=A, sample_weight=w)
    b = FACIMSClassifier(**SMALL).fit(Xr, yr, sensitive_features=Ar)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


@pytest.mark.parametrize("param, value, match", [
    ("n_mc", 0, "'n_mc'"),
    ("n_mc_hyper", -1, "'n_mc_hyper'"),
    ("eps_std", -0.1, "'eps_std'"),
    ("eps_std_predict", -1.0, "'eps_std_predict'"),
    ("logvar_init", (0.0, -1.0), "'logvar_init'"),
    ("logvar_init", 0.1, "'logvar_init'"),
    ("divergence", "js", "'divergence'"),
    ("prior_noise", -1e-3, "'prior_noise'"),
    ("lambda_low", -0.5, "'lambda_low'"),
    ("lambda_up", -0.5, "'lambda_up'"),
    ("upper_weighting", "both", "'upper_weighting'"),
    ("inner_steps", 0, "'inner_steps'"),
    ("outer_steps", 0, "'outer_steps'"),
    ("group_batch_size", 0, "'group_batch_size'"),
    ("lr_post", 0.0, "'lr_post'"),
    ("lr_prior", -1.0, "'lr_prior'"),
    ("prior_lr_decay", 0.0, "'prior_lr_decay'"),
    ("prior_lr_decay", 1.5, "'prior_lr_decay'"),
    ("lr_hyper", 0.0, "'lr_hyper'"),
    ("sam", "yes", "'sam'"),
    ("sam_rho", -0.1, "'sam_rho'"),
    ("sam_rho", [0.1, -0.1, 0.2], "'sam_rho'"),
    ("sam_rho", "by_size", "'sam_rho'"),
    ("learn_loss_params", 1, "'learn_loss_params'"),
    ("neumann_terms", -1, "'neumann_terms'"),
    ("neumann_lr", 0.0, "'neumann_lr'"),
    ("validation_fraction", 1.0, "'validation_fraction'"),
    ("validation_aggregation", "mean", "'validation_aggregation'"),
    ("upper_class_weight", "balanced", "'upper_class_weight'"),
    ("val_batch_size", 0, "'val_batch_size'"),
    ("groups_per_epoch", 0, "'groups_per_epoch'"),
    ("stale_graph", None, "'stale_graph'"),
    ("output_sigmoid", "no", "'output_sigmoid'"),
    ("hidden_layer_sizes", (8, 0), "'hidden_layer_sizes'"),
])
def test_bad_parameters(data3, param, value, match):
    X, y, A = data3
    with pytest.raises(ValueError, match=match):
        FACIMSClassifier(**{**SMALL, param: value}).fit(X, y, sensitive_features=A)


def test_lambda_up_above_one_needs_paper_weighting(data3):
    X, y, A = data3
    with pytest.raises(ValueError, match="lambda_up=1.5 must be in \\[0, 1\\]"):
        FACIMSClassifier(**SMALL, lambda_up=1.5, upper_weighting="convex").fit(
            X, y, sensitive_features=A)
    FACIMSClassifier(**{**SMALL, "max_epochs": 1}, lambda_up=1.5).fit(
        X, y, sensitive_features=A)


# ----------------------------------------------------------------------------- X_val
FACIMS_SMALL = dict(hidden_layer_sizes=(8,), max_epochs=3, n_mc=2, inner_steps=2,
                    outer_steps=2, neumann_terms=3, lr_prior=0.05, random_state=0)


def test_facims_uses_the_given_validation_rows():
    X, y, A = make_biased_classification(300, 4, n_groups=3, random_state=0)
    Xv, yv, Av = make_biased_classification(120, 4, n_groups=3, random_state=1)
    # a duplicated validation row is merged into one row of weight 2
    Xv2, yv2, Av2 = np.vstack([Xv, Xv[:1]]), np.append(yv, yv[0]), np.append(Av, Av[0])
    kw = dict(sensitive_features=A, X_val=Xv2, y_val=yv2, sensitive_features_val=Av2)
    clf = FACIMSClassifier(**FACIMS_SMALL).fit(X, y, **kw)
    assert clf.n_validation_rows_ == len(Xv)
    assert clf.n_train_rows_ == len(np.unique(X, axis=0)) == len(X)
    again = FACIMSClassifier(**FACIMS_SMALL).fit(X, y, **kw)
    np.testing.assert_array_equal(clf.predict_proba(Xv), again.predict_proba(Xv))
    internal = FACIMSClassifier(**FACIMS_SMALL).fit(X, y, sensitive_features=A)
    assert internal.n_train_rows_ + internal.n_validation_rows_ == len(X)
    assert internal.n_validation_rows_ == pytest.approx(0.3 * len(X), abs=3)
    assert np.abs(internal.predict_proba(Xv) - clf.predict_proba(Xv)).max() > 1e-4
    # the upper level sees the validation rows: other rows, another model
    other = FACIMSClassifier(**FACIMS_SMALL).fit(
        X, y, sensitive_features=A, X_val=Xv[:60], y_val=yv[:60],
        sensitive_features_val=Av[:60])
    assert other.n_validation_rows_ == 60
    assert np.abs(other.predict_proba(Xv) - clf.predict_proba(Xv)).max() > 1e-6
    # an integer validation weight is exactly a repeated validation row
    w = np.arange(len(yv)) % 3 + 1
    rep = np.repeat(np.arange(len(yv)), w)
    weighted = FACIMSClassifier(**FACIMS_SMALL).fit(
        X, y, sensitive_features=A, X_val=Xv, y_val=yv, sensitive_features_val=Av,
        sample_weight_val=w)
    repeated = FACIMSClassifier(**FACIMS_SMALL).fit(
        X, y, sensitive_features=A, X_val=Xv[rep], y_val=yv[rep],
        sensitive_features_val=Av[rep])
    np.testing.assert_array_equal(weighted.predict_proba(Xv), repeated.predict_proba(Xv))
    assert np.abs(weighted.predict_proba(Xv) - clf.predict_proba(Xv)).max() > 1e-6


def test_facims_X_val_errors():
    X, y, A = make_biased_classification(100, 4, n_groups=3, random_state=0)
    Xv, yv, Av = make_biased_classification(50, 4, n_groups=3, random_state=1)
    with pytest.raises(ValueError, match="without sensitive_features_val"):
        FACIMSClassifier(**FACIMS_SMALL).fit(X, y, sensitive_features=A, X_val=Xv,
                                             y_val=yv)
    with pytest.raises(ValueError, match=r"group\(s\) \[7\] not seen"):
        FACIMSClassifier(**FACIMS_SMALL).fit(
            X, y, sensitive_features=A, X_val=Xv, y_val=yv,
            sensitive_features_val=np.where(Av == Av[0], 7, Av))


def test_upper_class_weight_from_the_validation_counts():
    X, y, A = make_biased_classification(200, 4, n_groups=3, random_state=0)
    Xv, yv, Av = make_biased_classification(90, 4, n_groups=3, random_state=1)
    keep = (yv == 1) | (np.arange(len(yv)) % 3 == 0)  # validation class ratio != training
    Xv, yv, Av = Xv[keep], yv[keep], Av[keep]
    kw = dict(sensitive_features=A, X_val=Xv, y_val=yv, sensitive_features_val=Av)
    own = FACIMSClassifier(**FACIMS_SMALL, upper_class_weight="validation").fit(X, y, **kw)
    train = FACIMSClassifier(**FACIMS_SMALL).fit(X, y, **kw)

    def balanced(labels):  # omega_c ~ N / n_c, unit L2 norm
        n = np.bincount(labels, minlength=2).astype(float)
        w = n.sum() / n
        return w / np.linalg.norm(w)

    np.testing.assert_allclose(own.upper_class_weight_, balanced(yv), rtol=1e-6)
    np.testing.assert_allclose(own.class_weight_, balanced(y), rtol=1e-6)
    np.testing.assert_array_equal(train.upper_class_weight_, train.class_weight_)
    assert np.abs(own.predict_proba(Xv) - train.predict_proba(Xv)).max() > 1e-6
