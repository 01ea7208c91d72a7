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
    neumann_inverse_hvp,
    project_simplex,
    sam_perturb_,
    unflatten_like,
)


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
        np.testing.assert_allclose(batched[i, j].numpy(),
                                   _project_brute_force(v[i, j].numpy()), atol=1e-12)
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
        return ((torch.tanh(X @ W1.T + b1) @ w2 - y) ** 2).mean() + 0.1 * (W1 ** 2).sum()

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
    np.testing.assert_allclose(g.detach().numpy(), dense_grad.numpy(), rtol=1e-12,
                               atol=1e-14)
    rng = np.random.default_rng(1)
    for _ in range(3):
        v = torch.tensor(rng.normal(size=z0.shape[0]))
        np.testing.assert_allclose(hvp(g, params, v).numpy(), (H @ v).numpy(),
                                   rtol=1e-10, atol=1e-12)


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
        got = neumann_inverse_hvp(lambda c, M=M: M @ c, b, n_terms=10, alpha=0.1,
                                  shift=shift)
        torch.testing.assert_close(got, kept, rtol=1e-12, atol=1e-12)
    plain = neumann_inverse_hvp(lambda c: H @ c, b, n_terms=10, alpha=0.1,
                                stop_on_growth=False)
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
    got = neumann_inverse_hvp(lambda c: Hf @ c, bf, n_terms=10, alpha=0.1,
                              blocks=(2, [1, 1]))
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
        guarded = neumann_inverse_hvp(lambda c: H @ c, b, n_terms=15, alpha=alpha,
                                      shift=shift)
        plain = neumann_inverse_hvp(lambda c: H @ c, b, n_terms=15, alpha=alpha,
                                    shift=shift, stop_on_growth=False)
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
