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
"""

import torch

__all__ = ["flatten", "flat_grad", "hvp", "conjugate_gradient", "neumann_inverse_hvp",
           "project_simplex", "sam_perturb_", "unflatten_like"]


def flatten(tensors):
    """Concatenate tensors into one flat vector."""
    return torch.cat([t.reshape(-1) for t in tensors])


def unflatten_like(vector, tensors):
    """Split a flat vector into pieces shaped like ``tensors``."""
    out, start = [], 0
    for t in tensors:
        n = t.numel()
        out.append(vector[start:start + n].view_as(t))
        start += n
    return out


def flat_grad(loss, params, *, create_graph=False, retain_graph=None):
    """Gradient of a scalar ``loss`` w.r.t. ``params`` as one flat vector (zeros for
    parameters the loss does not depend on)."""
    grads = torch.autograd.grad(loss, params, create_graph=create_graph,
                                retain_graph=retain_graph, allow_unused=True)
    return flatten([torch.zeros_like(p) if g is None else g
                    for g, p in zip(grads, params, strict=True)])


def hvp(grad_flat, params, vector, *, retain_graph=True):
    """Hessian-vector product ``H v`` where ``grad_flat`` is a flat gradient computed with
    ``create_graph=True`` w.r.t. ``params``."""
    prods = torch.autograd.grad(grad_flat, params, grad_outputs=vector,
                                retain_graph=retain_graph, allow_unused=True)
    return flatten([torch.zeros_like(p) if g is None else g
                    for g, p in zip(prods, params, strict=True)])


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


def neumann_inverse_hvp(matvec, b, *, n_terms=10, alpha=0.1, shift=None,
                        stop_on_growth=True, blocks=None):
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
            out.append(v[start:start + n_blocks * size].view(n_blocks, size))
            start += n_blocks * size
        return out

    def sq_norms(v):
        return sum(piece.pow(2).sum(1) for piece in rows(v))

    ok = prev = None
    if stop_on_growth:
        prev = sq_norms(c)
        ok = torch.ones_like(prev, dtype=torch.bool)
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
            keep_rows = ok.view(-1, 1)
            for a_piece, c_piece in zip(rows(acc), rows(c), strict=True):
                a_piece.add_(torch.where(keep_rows, c_piece, zero))
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
