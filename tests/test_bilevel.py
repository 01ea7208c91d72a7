"""Hypergradient tools of skfairbilevel.nn.bilevel against brute force and dense algebra."""

import itertools

import numpy as np
import pytest
import torch

from skfairbilevel.nn.bilevel import (
    conjugate_gradient,
    flat_grad,
    flatten,
    hvp,
    implicit_gradients,
    neumann_inverse_hvp,
    project_simplex,
    sam_perturb_,
    unflatten_like,
)
from skfairbilevel.nn.gaussian import (
    GaussianMLP,
    divergence_derivatives,
    gaussian_forward,
)
from skfairbilevel.nn.losses import vs_loss

from ._reference import divergence


# --------------------------------------------------------------------- project_simplex
def _project_brute_force(v):
    """Euclidean projection onto the simplex by enumerating supports: on a support T the
    projection is v_T - theta with theta = (sum v_T - 1) / |T|; keep the feasible
    candidates and return the closest one."""
    n = len(v)
    best, best_dist = None, np.inf
    for size in range(1, n + 1):
        for support in itertools.combinations(range(n), size):
            idx = list(support)
            theta = (v[idx].sum() - 1.0) / size
            x = np.zeros(n)
            x[idx] = v[idx] - theta
            if np.any(x < -1e-12):
                continue
            dist = np.sum((x - v) ** 2)
            if dist < best_dist:
                best, best_dist = x, dist
    return best


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7])
def test_project_simplex_matches_brute_force(n):
    rng = np.random.default_rng(n)
    for scale in (0.1, 1.0, 10.0):
        for _ in range(20):
            v = rng.normal(scale=scale, size=n)
            got = project_simplex(torch.tensor(v, dtype=torch.float64)).numpy()
            np.testing.assert_allclose(got, _project_brute_force(v), atol=1e-12)
            assert got.min() >= 0 and abs(got.sum() - 1) < 1e-12


def test_project_simplex_fixed_points_batches_and_ties():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(4), size=6)
    got = project_simplex(torch.tensor(p))
    np.testing.assert_allclose(got.numpy(), p, atol=1e-14)  # points of the simplex stay
    # batched over leading dimensions = row by row
    v = torch.tensor(rng.normal(size=(2, 3, 5)))
    batched = project_simplex(v)
    for i, j in itertools.product(range(2), range(3)):
        np.testing.assert_allclose(
            batched[i, j].numpy(), _project_brute_force(v[i, j].numpy()), atol=1e-12
        )
    # ties and a shift along the all-ones direction (the simplex's normal)
    tie = torch.tensor([0.3, 0.3, 0.3], dtype=torch.float64)
    np.testing.assert_allclose(project_simplex(tie).numpy(), [1 / 3] * 3)
    np.testing.assert_allclose(project_simplex(tie + 5.0).numpy(), [1 / 3] * 3)
    np.testing.assert_allclose(project_simplex(torch.tensor([5.0, -2.0])).numpy(), [1, 0])


# --------------------------------------------------------------------- conjugate gradient
def _spd(n, cond, seed):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    eig = np.geomspace(1.0, cond, n)
    return torch.tensor(Q @ np.diag(eig) @ Q.T), torch.tensor(rng.normal(size=n))


@pytest.mark.parametrize("cond", [1.0, 1e2, 1e4])
def test_conjugate_gradient_matches_dense_solve(cond):
    A, b = _spd(20, cond, seed=int(cond))
    x = conjugate_gradient(lambda u: A @ u, b, max_iter=200, tol=1e-14)
    expected = torch.linalg.solve(A, b)
    np.testing.assert_allclose(x.numpy(), expected.numpy(), rtol=1e-8, atol=1e-10)


def test_conjugate_gradient_warm_start_and_iteration_budget():
    A, b = _spd(10, 50.0, seed=3)
    exact = torch.linalg.solve(A, b)
    # starting at the solution: no work, same answer
    calls = []

    def matvec(u):
        calls.append(1)
        return A @ u

    x = conjugate_gradient(matvec, b, x0=exact, max_iter=50, tol=1e-10)
    np.testing.assert_allclose(x.numpy(), exact.numpy(), atol=1e-10)
    assert len(calls) == 1  # the initial residual only
    # in exact arithmetic CG terminates in n steps; with one step it is the
    # steepest-descent step from 0: x = (b.b / b.A b) b
    x1 = conjugate_gradient(lambda u: A @ u, b, max_iter=1, tol=0.0)
    np.testing.assert_allclose(x1.numpy(), (b @ b / (b @ A @ b) * b).numpy(), rtol=1e-12)


# --------------------------------------------------------------------- grad / HVP
def _loss_and_params(seed=0):
    gen = torch.Generator().manual_seed(seed)
    W1 = torch.randn(4, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    b1 = torch.randn(4, generator=gen, dtype=torch.float64, requires_grad=True)
    w2 = torch.randn(4, generator=gen, dtype=torch.float64, requires_grad=True)
    unused = torch.randn(2, generator=gen, dtype=torch.float64, requires_grad=True)
    X = torch.randn(30, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(30, generator=gen, dtype=torch.float64)
    params = [W1, b1, w2, unused]

    def loss_of(W1, b1, w2, unused):
        return ((torch.tanh(X @ W1.T + b1) @ w2 - y) ** 2).mean() + 0.1 * (W1**2).sum()

    return loss_of, params


def test_flat_grad_and_hvp_match_dense_autograd_hessian():
    loss_of, params = _loss_and_params()
    loss = loss_of(*params)
    g = flat_grad(loss, params, create_graph=True)
    sizes = [p.numel() for p in params]
    assert g.shape == (sum(sizes),)
    assert torch.all(g[-2:] == 0)  # a parameter the loss does not use gets zeros

    def flat_loss(z):
        return loss_of(*unflatten_like(z, params))

    z0 = flatten([p.detach() for p in params])
    H = torch.autograd.functional.hessian(flat_loss, z0)
    dense_grad = torch.autograd.functional.jacobian(flat_loss, z0)
    np.testing.assert_allclose(g.detach().numpy(), dense_grad.numpy(), rtol=1e-12, atol=1e-14)
    rng = np.random.default_rng(1)
    for _ in range(3):
        v = torch.tensor(rng.normal(size=z0.shape[0]))
        np.testing.assert_allclose(
            hvp(g, params, v).numpy(), (H @ v).numpy(), rtol=1e-10, atol=1e-12
        )


def test_unflatten_round_trip():
    _, params = _loss_and_params()
    z = flatten([p.detach() for p in params])
    back = unflatten_like(z, params)
    for p, q in zip(params, back, strict=True):
        assert q.shape == p.shape and torch.equal(q, p.detach())


def test_neumann_series_converges_and_folds_a_diagonal_shift():
    """On a small SPD matrix H = M + diag(s): the series with ``shift=s`` equals the
    series on the full H (to rounding) and tends to the exact H^{-1} b."""
    g = torch.Generator().manual_seed(3)
    A = torch.randn(5, 5, generator=g, dtype=torch.float64)
    M = A @ A.T / 5 + 0.5 * torch.eye(5, dtype=torch.float64)
    s = torch.rand(5, generator=g, dtype=torch.float64)
    H = M + torch.diag(s)
    b = torch.randn(5, generator=g, dtype=torch.float64)
    alpha = 1.0 / float(torch.linalg.eigvalsh(H).max())
    full = neumann_inverse_hvp(lambda c: H @ c, b, n_terms=40, alpha=alpha)
    folded = neumann_inverse_hvp(lambda c: M @ c, b, n_terms=40, alpha=alpha, shift=s)
    torch.testing.assert_close(folded, full, rtol=1e-12, atol=1e-12)
    exact = torch.linalg.solve(H, b)
    long = neumann_inverse_hvp(lambda c: M @ c, b, n_terms=2000, alpha=alpha, shift=s)
    torch.testing.assert_close(long, exact, rtol=1e-9, atol=1e-9)


def test_neumann_series_stops_before_the_first_growing_term():
    """H = diag(1, 25), alpha 0.1: factors r = (0.9, -1.5), so the series diverges in the
    second coordinate. With b = (1, 0.01) the term norms |(0.9^j, 0.01 * 1.5^j)| fall
    until j = 8 (0.5006) and grow at j = 9 (0.5456): the sum keeps j = 0..8."""
    H = torch.diag(torch.tensor([1.0, 25.0], dtype=torch.float64))
    b = torch.tensor([1.0, 0.01], dtype=torch.float64)
    r = torch.tensor([0.9, -1.5], dtype=torch.float64)
    kept = 0.1 * sum(r**j for j in range(9)) * b
    for shift in (None, torch.tensor([0.0, 20.0], dtype=torch.float64)):
        M = H if shift is None else H - torch.diag(shift)
        got = neumann_inverse_hvp(lambda c, M=M: M @ c, b, n_terms=10, alpha=0.1, shift=shift)
        torch.testing.assert_close(got, kept, rtol=1e-12, atol=1e-12)
    plain = neumann_inverse_hvp(lambda c: H @ c, b, n_terms=10, alpha=0.1, stop_on_growth=False)
    torch.testing.assert_close(plain, 0.1 * sum(r**j for j in range(11)) * b)
    # a matvec that returns NaN from the third call on: the sum stays finite
    calls = []

    def nan_after_two(c):
        calls.append(1)
        return H @ c if len(calls) <= 2 else torch.full_like(c, float("nan"))

    got = neumann_inverse_hvp(nan_after_two, b, n_terms=10, alpha=0.1)
    torch.testing.assert_close(got, 0.1 * sum(r**j for j in range(3)) * b)


def test_neumann_series_stops_per_block():
    """Two independent 2x2 problems stacked (block-diagonal H): block 0 diverges from
    its second term on, block 1 converges; with ``blocks`` only block 0 is cut."""
    H = torch.diag(torch.tensor([30.0, 1.0, 2.0, 4.0], dtype=torch.float64))
    b = torch.tensor([1.0, 1.0, 1.0, -1.0], dtype=torch.float64)
    # flatten() layout of two tensors with a leading problem dimension of 2, one
    # coordinate each: [t1[0], t1[1], t2[0], t2[1]] -> problem 0 owns coordinates 0 and 2
    perm = torch.tensor([0, 2, 1, 3])  # problem-major order -> flatten order
    Hf, bf = H[perm][:, perm], b[perm]
    r = 1.0 - 0.1 * torch.diag(H)
    got = neumann_inverse_hvp(lambda c: Hf @ c, bf, n_terms=10, alpha=0.1, blocks=(2, [1, 1]))
    want = torch.cat([0.1 * b[:2], 0.1 * sum(r[2:] ** j for j in range(11)) * b[2:]])[perm]
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    whole = neumann_inverse_hvp(lambda c: H @ c, b, n_terms=10, alpha=0.1)
    torch.testing.assert_close(whole, 0.1 * b)  # one norm: everything stops


def test_neumann_series_without_growth_is_the_plain_sum_bit_for_bit():
    g = torch.Generator().manual_seed(5)
    A = torch.randn(6, 6, generator=g)
    H = A @ A.T / 6 + 0.3 * torch.eye(6)
    b = torch.randn(6, generator=g)
    alpha = 1.0 / float(torch.linalg.eigvalsh(H).max())
    for shift in (None, torch.rand(6, generator=g)):
        guarded = neumann_inverse_hvp(lambda c: H @ c, b, n_terms=15, alpha=alpha, shift=shift)
        plain = neumann_inverse_hvp(
            lambda c: H @ c, b, n_terms=15, alpha=alpha, shift=shift, stop_on_growth=False
        )
        assert torch.equal(guarded, plain)


def test_sam_perturb_batched_hand_computed():
    """Problem 0: g = (3, 4) split over two tensors, ||g|| = 5, rho 0.5 -> step
    (0.3, 0.4); problem 1: zero gradient, no move."""
    p1 = torch.tensor([[1.0], [2.0]], dtype=torch.float64)
    p2 = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    g1 = torch.tensor([[3.0], [0.0]], dtype=torch.float64)
    g2 = torch.tensor([[4.0], [0.0]], dtype=torch.float64)
    sam_perturb_([p1, p2], [g1, g2], torch.tensor([0.5, 0.7], dtype=torch.float64))
    torch.testing.assert_close(p1, torch.tensor([[1.3], [2.0]], dtype=torch.float64))
    torch.testing.assert_close(p2, torch.tensor([[0.4], [1.0]], dtype=torch.float64))


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
    div = dict(div_hess=torch.full((n,), 2.0, dtype=torch.float64), div_mixed=lambda c: -2.0 * c)
    b = Q_star - t  # dF/dQ for F = 1/2 ||Q* - t||^2
    return dict(A=A, B=B, H=H, P=P, v=v, Q=Q, b=b, g_vs=g_vs, div=div, lam=lam)


def test_neumann_hypergradient_matches_exact_inverse():
    pb = _quadratic_problem()
    H, B, b, lam = pb["H"], pb["B"], pb["b"], pb["lam"]
    alpha = 0.9 / float(torch.linalg.eigvalsh(H).max())
    mixed_p, mixed_v = implicit_gradients(
        pb["g_vs"], [pb["Q"]], [pb["v"]], b, **pb["div"], lambda_low=lam, n_terms=400, alpha=alpha
    )
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
    mixed_p, mixed_v = implicit_gradients(
        pb["g_vs"], [pb["Q"]], [pb["v"]], b, **pb["div"], lambda_low=lam, n_terms=10, alpha=0.1
    )
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
    fd = torch.stack(
        [
            torch.tensor((F_of(P0 + 1e-6 * e) - F_of(P0 - 1e-6 * e)) / 2e-6)
            for e in torch.eye(len(P0), dtype=torch.float64)
        ]
    )
    alpha = 0.9 / float(torch.linalg.eigvalsh(H).max())
    mixed_p, mixed_v = implicit_gradients(
        pb["g_vs"], [pb["Q"]], [], pb["b"], **pb["div"], lambda_low=lam, n_terms=400, alpha=alpha
    )
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
        opt = torch.optim.LBFGS(
            Q,
            lr=1,
            max_iter=200,
            tolerance_grad=1e-13,
            tolerance_change=1e-15,
            history_size=50,
            line_search_fn="strong_wolfe",
        )

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
        g_vs,
        Qs,
        [dy, ly],
        flatten(gq),
        div_hess=flatten(hq),
        div_mixed=lambda c: flatten(mixed(unflatten_like(c, Qs))),
        lambda_low=lam,
        n_terms=300,
        alpha=0.2,
        curved=curved,
    )
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
