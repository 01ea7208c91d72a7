"""Hypergradient tools shared by the bilevel methods.

* :func:`flat_grad`, :func:`hvp` - gradients and Hessian-vector products (double
  backward) over a list of parameters, as flat vectors; no Hessian is formed.
* :func:`conjugate_gradient` - solve ``H v = b`` for symmetric positive-definite ``H``
  given only ``v -> H v``.
* :func:`neumann_inverse_hvp` - the truncated Neumann series
  ``H^{-1} b ~ alpha * sum_{j=0}^{K} (I - alpha H)^j b`` (Lorraine et al. 2020), with
  an optional diagonal part of ``H`` folded in cheaply.
* :func:`project_simplex` - Euclidean projection onto the probability simplex (the
  sort-based algorithm of Held et al. / Duchi et al.), batched over leading dims.
* :func:`sam_perturb_` - the sharpness-aware-minimisation ascent step
  ``rho * g / ||g||``, in place, batched over independent problems.
* :func:`implicit_gradients` - the implicit-function-theorem terms of an upper
  gradient through the solution of a lower problem regularised by an elementwise
  divergence (FACIMS's upper level).
"""

import torch

__all__ = [
    "flatten",
    "flat_grad",
    "hvp",
    "conjugate_gradient",
    "neumann_inverse_hvp",
    "project_simplex",
    "sam_perturb_",
    "unflatten_like",
    "implicit_gradients",
]


def flatten(tensors):
    """Concatenate tensors into one flat vector."""
    return torch.cat([t.reshape(-1) for t in tensors])


def unflatten_like(vector, tensors):
    """Split a flat vector into pieces shaped like ``tensors``."""
    out, start = [], 0
    for t in tensors:
        n = t.numel()
        out.append(vector[start : start + n].view_as(t))
        start += n
    return out


def flat_grad(loss, params, *, create_graph=False, retain_graph=None):
    """Gradient of a scalar ``loss`` w.r.t. ``params`` as one flat vector (zeros for
    parameters the loss does not depend on)."""
    grads = torch.autograd.grad(
        loss, params, create_graph=create_graph, retain_graph=retain_graph, allow_unused=True
    )
    return flatten(
        [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params, strict=True)]
    )


def hvp(grad_flat, params, vector, *, retain_graph=True):
    """Hessian-vector product ``H v`` where ``grad_flat`` is a flat gradient computed with
    ``create_graph=True`` w.r.t. ``params``."""
    prods = torch.autograd.grad(
        grad_flat, params, grad_outputs=vector, retain_graph=retain_graph, allow_unused=True
    )
    return flatten(
        [torch.zeros_like(p) if g is None else g for g, p in zip(prods, params, strict=True)]
    )


def conjugate_gradient(matvec, b, *, x0=None, max_iter=100, tol=1e-10):
    """Solve ``A x = b`` for symmetric positive-definite ``A`` by conjugate gradient.

    Parameters
    ----------
    matvec : callable, vector -> A @ vector
    b : Tensor (n,)
    x0 : Tensor (n,), optional (warm start)
    max_iter : int
    tol : float
        Stop when ``||r|| <= tol * max(1, ||b||)``.

    Returns
    -------
    x : Tensor (n,)
    """
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    r = b - matvec(x) if x0 is not None else b.clone()
    p = r.clone()
    rs = torch.dot(r, r)
    stop = (tol * max(1.0, float(torch.linalg.vector_norm(b)))) ** 2
    for _ in range(max_iter):
        if float(rs) <= stop:
            break
        Ap = matvec(p)
        denom = torch.dot(p, Ap)
        if float(denom) <= 0:  # not positive definite along p: stop with current x
            break
        alpha = rs / denom
        x = x + alpha * p
        r = r - alpha * Ap
        rs_new = torch.dot(r, r)
        p = r + (rs_new / rs) * p
        rs = rs_new
    return x


def neumann_inverse_hvp(
    matvec, b, *, n_terms=10, alpha=0.1, shift=None, stop_on_growth=True, blocks=None
):
    """Approximate ``H^{-1} b`` by ``alpha * sum_{j=0}^{n_terms} (I - alpha H)^j b``.

    Converges to ``H^{-1} b`` as ``n_terms -> inf`` when ``0 < alpha < 2 / lambda_max(H)``
    and ``H`` is positive definite. ``shift`` (a vector like ``b``): ``H = M +
    diag(shift)`` with ``matvec`` computing ``M c`` only; the diagonal part is folded
    into one factor, ``c <- c * (1 - alpha * shift) - alpha * M c`` (``matvec`` must
    then return a new tensor, which is updated in place).

    ``stop_on_growth``: in the convergent case the terms ``(I - alpha H)^j b`` never grow
    in norm (``I - alpha H`` is symmetric with eigenvalues in (-1, 1)); a term larger
    than the one before means ``alpha`` is too large for the curvature or ``H`` is not
    positive definite there, and the series diverges geometrically. The sum then stops
    before the first growing term (relative tolerance 1e-6), so a bad step gives a
    shorter series instead of an overflow. Without growth the result is bit-identical
    to the plain sum. No host synchronisation: the stop is a device-side mask.

    ``blocks``: ``(n, sizes)`` for a block-diagonal ``H`` of ``n`` independent problems
    (e.g. one per group) laid out as in ``flatten`` of tensors with a leading problem
    dimension: ``b`` is the concatenation of pieces, piece ``i`` a row-major
    ``(n, sizes[i])`` block whose row ``j`` belongs to problem ``j``. Growth is then
    judged, and the sum stopped, per problem.
    """
    c = b.clone()
    acc = b.clone()
    keep = None if shift is None else 1.0 - alpha * shift
    if blocks is None:
        n_blocks, sizes = 1, [len(b)]
    else:
        n_blocks, sizes = blocks
    if stop_on_growth and sum(sizes) * n_blocks != len(b):
        raise ValueError(f"blocks cover {sum(sizes) * n_blocks} coordinates, b has {len(b)}")

    def rows(v):  # (n, size) views of the pieces of v
        out, start = [], 0
        for size in sizes:
            out.append(v[start : start + n_blocks * size].view(n_blocks, size))
            start += n_blocks * size
        return out

    def sq_norms(v):
        return sum(piece.sum(1) for piece in rows(v * v))

    ok = prev = owner = None
    if stop_on_growth:
        prev = sq_norms(c)
        ok = torch.ones_like(prev, dtype=torch.bool)
        if n_blocks > 1:  # the problem of each coordinate, to mask whole problems at once
            problem = torch.arange(n_blocks, device=b.device)
            owner = torch.cat([problem.repeat_interleave(size) for size in sizes])
    zero = torch.zeros((), dtype=b.dtype, device=b.device)
    for _ in range(n_terms):
        if keep is None:
            c = c - alpha * matvec(c)
        else:
            c = matvec(c).mul_(-alpha).addcmul_(c, keep)
        if stop_on_growth:
            sq = sq_norms(c)
            ok = ok & (sq <= prev * (1.0 + 2e-6))  # a NaN norm stops it too
            prev = sq
            acc.add_(torch.where(ok if owner is None else ok[owner], c, zero))
        else:
            acc.add_(c)
    return acc.mul_(alpha)


def project_simplex(v):
    """Euclidean projection of ``v`` (..., n) onto ``{x >= 0, sum x = 1}`` along the last
    dimension (sort-based, O(n log n))."""
    n = v.shape[-1]
    u, _ = torch.sort(v, dim=-1, descending=True)
    css = torch.cumsum(u, dim=-1) - 1.0
    k = torch.arange(1, n + 1, device=v.device, dtype=v.dtype)
    cond = u - css / k > 0
    rho = cond.sum(-1, keepdim=True) - 1  # cond holds on a prefix: its last index
    theta = css.gather(-1, rho) / (rho + 1).to(v.dtype)
    return torch.clamp(v - theta, min=0.0)


@torch.no_grad()
def sam_perturb_(params, grads, rho, eps=1e-12):
    """The sharpness-aware-minimisation ascent step ``rho * g / (||g|| + eps)``, added
    to ``params`` in place, for a batch of independent problems at once.

    ``params`` and ``grads`` are lists of tensors whose leading dimension indexes the
    problems (e.g. FACIMS's groups); each problem has its own norm over all of its
    tensors and its own radius (``rho``: a tensor of one radius per problem). A
    problem with zero gradients does not move.
    """
    n = len(rho)
    sq = sum(g.reshape(n, -1).pow(2).sum(1) for g in grads)
    step = rho / (torch.sqrt(sq) + eps)
    for q, g in zip(params, grads, strict=True):
        q.addcmul_(g, step.view((n,) + (1,) * (g.dim() - 1)))


def _neumann_diagonal(b, shift, *, n_terms, alpha):
    """The same series for a diagonal ``H = diag(shift)``, in closed form:
    ``alpha * sum_{j<=K} r^j b = (1 - r^(K+1)) / shift * b`` with ``r = 1 - alpha shift``
    (``alpha (K + 1) b`` where ``shift == 0``)."""
    r = 1.0 - alpha * shift
    zero = shift == 0
    factor = torch.where(
        zero,
        torch.full_like(shift, alpha * (n_terms + 1)),
        (1.0 - r.pow(n_terms + 1)) / torch.where(zero, 1.0, shift),
    )
    return factor * b


def implicit_gradients(
    g_vs,
    inner,
    hyper,
    b,
    *,
    div_hess,
    div_mixed,
    lambda_low,
    n_terms,
    alpha,
    retain_graph=False,
    curved=None,
    stacked=False,
):
    """Implicit-function-theorem terms of the upper gradient through ``inner = Q*``.

    The lower objective is ``L(Q, P, v) = f(Q, v) + lambda_low * D(Q, P)`` with ``D`` a
    sum of elementwise terms, so that ``d2D/dQ2`` is diagonal (``div_hess``) and
    ``d2D/dP dQ`` acts elementwise (``div_mixed``). With ``H = d2L/dQ2`` and
    ``p = H^{-1} b`` (truncated Neumann series, ``b = dF/dQ``) the total derivatives of an
    upper objective ``F`` are ``dF/dP = dF/dP|direct - mixed_p`` and
    ``dF/dv = dF/dv|direct - mixed_v`` with::

        mixed_p = lambda_low * (d2D / dP dQ) p,    mixed_v = (d2f / dv dQ) p.

    Parameters
    ----------
    g_vs : Tensor
        Flat ``df/dQ`` built with ``create_graph=True`` (its graph reaches ``hyper``);
        over all of ``inner``, or over ``[inner[i] for i in curved]`` with ``curved``.
    inner, hyper : lists of Tensor
        ``Q`` and ``v`` (``hyper`` may be empty).
    b : Tensor
        Flat ``dF/dQ`` (over all of ``inner``).
    div_hess : Tensor
        Flat diagonal of ``d2D/dQ2`` (over all of ``inner``).
    div_mixed : callable
        Flat ``v`` (Q-space) -> flat ``(d2D / dP dQ) v`` (P-space).
    lambda_low : float
    n_terms, alpha : Neumann series settings (:func:`neumann_inverse_hvp`).
    retain_graph : bool
        Keep the graph of ``g_vs`` for later calls.
    curved : list of int, optional
        Indices of the ``inner`` tensors that ``f`` depends on (e.g. only the means when
        ``f`` is the loss of the mean network). ``H`` is then block diagonal, the other
        blocks being ``lambda_low * diag(div_hess)``, and their part of the series is
        evaluated in closed form (the same numbers as the full series, without
        Hessian-vector products over parameters with zero curvature of ``f``).
    stacked : bool
        The leading dimension of every ``inner`` tensor indexes independent problems
        (groups): the Neumann series then stops per problem where its terms grow
        (:func:`neumann_inverse_hvp`'s ``blocks``), not for all groups at once.

    Returns
    -------
    mixed_p : Tensor (flat over ``P``)
    mixed_v : Tensor (flat over ``hyper``) or None when ``hyper`` is empty
    """
    shift = lambda_low * div_hess

    def blocks(tensors):
        return (tensors[0].shape[0], [t[0].numel() for t in tensors]) if stacked else None

    if curved is None:
        p = neumann_inverse_hvp(
            lambda c: hvp(g_vs, inner, c),
            b,
            shift=shift,
            n_terms=n_terms,
            alpha=alpha,
            blocks=blocks(inner),
        )
        p_f = p
    else:
        curved = sorted(set(curved))
        b_parts = unflatten_like(b, inner)
        s_parts = unflatten_like(shift, inner)
        cur = [inner[i] for i in curved]
        p_f = neumann_inverse_hvp(
            lambda c: hvp(g_vs, cur, c),
            flatten([b_parts[i] for i in curved]),
            shift=flatten([s_parts[i] for i in curved]),
            n_terms=n_terms,
            alpha=alpha,
            blocks=blocks(cur),
        )
        pieces = dict(zip(curved, unflatten_like(p_f, cur), strict=True))
        p = flatten(
            [
                pieces[i]
                if i in pieces
                else _neumann_diagonal(b_parts[i], s_parts[i], n_terms=n_terms, alpha=alpha)
                for i in range(len(inner))
            ]
        )
    mixed_p = lambda_low * div_mixed(p)
    mixed_v = hvp(g_vs, hyper, p_f, retain_graph=retain_graph) if hyper else None
    return mixed_p, mixed_v
