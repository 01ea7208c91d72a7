"""The trust-region subproblem, solved exactly and batched over samples.

:func:`trust_region_step` minimises ``g.p + p'Hp / 2`` over ``||p|| <= radius`` for a
batch of gradients and symmetric Hessians of any inertia (Moré & Sorensen 1983): an
eigen-decomposition per sample and a safeguarded Newton iteration on the multiplier,
vectorised over the batch. :func:`trust_region_step_eig` is the same in the eigenbasis.
"""

import torch

__all__ = ["trust_region_step", "trust_region_step_eig"]

# relative eigenvalue cut (which eigenvalues count as equal to the smallest one), relative
# size of the gradient below which the hard case is taken, and the relative accuracy of
# ||p|| = radius on the boundary
_EIG_RTOL = 1e-10
_HARD_RTOL = 1e-10
_NORM_RTOL = 1e-12


def trust_region_step(g, H, radius, *, max_iter=100):
    """Solve ``min_p g.p + p'Hp / 2  subject to ||p|| <= radius`` for a batch.

    The exact (global) solution of the trust-region subproblem, for symmetric ``H`` of
    any inertia: ``p = -(H + a I)^{-1} g`` with ``a >= max(0, -lambda_min(H))`` and
    ``a (||p|| - radius) = 0``. The step is interior only when ``H`` is positive
    definite and the Newton step lies in the ball; otherwise it lies on the boundary,
    with the multiplier ``a`` found by a safeguarded Newton iteration on the secular
    equation ``1/||p(a)|| = 1/radius`` (bracketed, bisection fall-back), all samples at
    once. The hard case (``g`` orthogonal to the eigenspace of ``lambda_min <= 0`` and
    ``||p(-lambda_min)|| < radius``) adds the missing length along that eigenvector.

    Parameters
    ----------
    g : Tensor of shape (n, d)
        Gradients (one row per sample).
    H : Tensor of shape (n, d, d)
        Symmetric Hessians.
    radius : float
        Trust-region radius (> 0).
    max_iter : int, default=100
        Iterations of the multiplier search (it usually needs fewer than 10).

    Returns
    -------
    p : Tensor of shape (n, d)
        The minimisers, in the dtype of ``g`` (use float64).
    n_iter : int
        Iterations of the multiplier search.
    """
    lam, U = torch.linalg.eigh(H)  # ascending eigenvalues
    gh = (U.transpose(1, 2) @ g.unsqueeze(-1)).squeeze(-1)  # g in the eigenbasis
    p_hat, n_iter = trust_region_step_eig(gh, lam, radius, max_iter=max_iter)
    return (U @ p_hat.unsqueeze(-1)).squeeze(-1), n_iter


def trust_region_step_eig(gh, lam, radius, *, max_iter=100):
    """:func:`trust_region_step` in the eigenbasis of the Hessians.

    Parameters
    ----------
    gh : Tensor of shape (n, d)
        The gradients in the eigenbasis (``U' g``).
    lam : Tensor of shape (n, d)
        The eigenvalues of each Hessian, ascending along each row.
    radius : float
    max_iter : int, default=100

    Returns
    -------
    p_hat : Tensor of shape (n, d)
        The steps in the eigenbasis (the step is ``U p_hat``).
    n_iter : int
    """
    r = float(radius)
    tiny = torch.finfo(gh.dtype).tiny
    lam_min = lam[:, 0]
    eig_tol = _EIG_RTOL * lam.abs().amax(dim=1)
    gnorm = gh.norm(dim=1)
    ones = torch.ones_like(lam)

    # interior: convex model and the Newton step inside the ball
    pd = lam_min > eig_tol
    p_newton = -gh / torch.where(pd[:, None], lam, ones)
    interior = pd & (p_newton.norm(dim=1) <= r)

    # hard case: no gradient in the lambda_min eigenspace and a short regular part
    a_lo = (-lam_min).clamp_min(0.0)
    in_e = lam <= (lam_min + eig_tol)[:, None]
    p_rest = torch.where(in_e, 0.0, -gh / torch.where(in_e, ones, lam + a_lo[:, None]))
    rest_norm = p_rest.norm(dim=1)
    hard = ~pd & ((gh * in_e).norm(dim=1) <= _HARD_RTOL * gnorm) & (rest_norm <= r)
    if bool(hard.any()):
        tau = (r * r - rest_norm**2).clamp_min(0.0).sqrt()
        p_rest[:, 0] -= torch.where(gh[:, 0] > 0, tau, -tau)

    # boundary: safeguarded Newton on psi(a) = 1/||p(a)|| - 1/r over (a_lo, a_hi]
    active = ~interior & ~hard
    lo = a_lo
    hi = a_lo + gnorm / r + tiny  # ||p(hi)|| <= r
    a = hi
    g2 = gh * gh
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        den = (lam + a[:, None]).clamp_min(tiny)
        pn2 = (g2 / den**2).sum(dim=1).clamp_min(tiny)
        pn = pn2.sqrt()
        done = ~active | ((pn - r).abs() <= _NORM_RTOL * r) | (hi - lo <= 4e-16 * hi)
        if bool(done.all()):
            break
        outside = pn > r  # a too small
        lo = torch.where(outside, a, lo)
        hi = torch.where(outside, hi, a)
        a_new = a - (1.0 / pn - 1.0 / r) * (pn2 * pn) / (g2 / den**3).sum(dim=1)
        bad = ~torch.isfinite(a_new) | (a_new <= lo) | (a_new >= hi)
        a = torch.where(done, a, torch.where(bad, 0.5 * (lo + hi), a_new))
    p_bound = -gh / (lam + a[:, None]).clamp_min(tiny)
    norm = p_bound.norm(dim=1, keepdim=True)
    p_bound = p_bound * (r / norm.clamp_min(tiny))

    return torch.where(
        interior[:, None], p_newton, torch.where(hard[:, None], p_rest, p_bound)
    ), n_iter
