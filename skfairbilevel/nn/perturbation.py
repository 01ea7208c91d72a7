"""Worst-case input perturbations of a binary logistic model (robust training's inner
problems).

For a network ``f`` with one logit and the logistic loss ``l(z, y)``, each function
here looks for ``delta_i`` with ``||delta_i|| <= radius`` that makes
``l(f(x_i + delta_i), y_i)`` large, for a batch of rows at once:

* :func:`worst_case_affine` - the exact maximiser for an affine model ``w'x + b``:
  ``delta = -radius (2y - 1) w / ||w||``;
* :func:`trust_region_perturbation` - the trust-region subproblem on the second-order
  model of the loss in the input, then optional Newton steps on the sphere;
* :func:`gradient_ascent_perturbation` - projected gradient ascent on the batch's mean
  loss, with backtracking;
* :func:`random_perturbation` - a uniformly random point on the sphere.

:func:`loss_input_derivatives` gives the per-sample loss, input gradient and input
Hessian (closed form for the affine model, ``torch.func`` otherwise), and
:func:`affine_logistic_loss_grad` the outer loss and its parameter gradient for the
affine model without autograd.
"""

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad_and_value, jacrev, vmap

from .draws import randn
from .trust_region import trust_region_step

__all__ = [
    "loss_input_derivatives",
    "worst_case_affine",
    "trust_region_perturbation",
    "gradient_ascent_perturbation",
    "random_perturbation",
    "perturbation",
    "affine_logistic_loss_grad",
    "PGD_STEP",
    "PGD_SHRINK",
    "PGD_BACKTRACKS",
    "PGD_TOL",
    "PGD_MAX_ITER",
]

# projected gradient ascent: first step, shrink factor and number of shrinks of the
# backtracking, stopping tolerance on the move of the batch's perturbations, iterations
PGD_STEP = 0.1
PGD_SHRINK = 1.5
PGD_BACKTRACKS = 40
PGD_TOL = 1e-4
PGD_MAX_ITER = 5000


def _affine_layer(module):
    """The affine model's Linear layer (the last layer of ``module``)."""
    return module[-1]


def loss_input_derivatives(module, x, y, *, affine, autodiff=False):
    """Per-sample logistic loss (n,), its input gradient (n, d) and Hessian (n, d, d).

    In float64: ``g = l' dz``, ``H = l' d2z + l'' dz dz'`` with ``l' = s - y`` and
    ``l'' = s (1 - s)``, ``s = sigmoid(z)``. Closed form for the affine model (``affine``)
    unless ``autodiff``, ``torch.func`` (vmap of jacrev of grad) otherwise.
    """
    xd = x.double()
    yd = y.double()
    if affine and not autodiff:
        lin = _affine_layer(module)
        w = lin.weight[0].detach().double()
        z = xd @ w + lin.bias.detach().double()[0]
        dz = w.expand(len(x), -1)
        d2z = None
    else:
        params = {k: v.detach().double() for k, v in module.named_parameters()}

        def logit(xi):
            return functional_call(module, params, (xi.unsqueeze(0),))[0, 0]

        def grad_with_aux(xi):
            dzi, zi = grad_and_value(logit)(xi)
            return dzi, (dzi, zi)

        d2z, (dz, z) = vmap(jacrev(grad_with_aux, has_aux=True))(xd)
    s = torch.sigmoid(z)
    l1 = (s - yd)[:, None]
    g = l1 * dz
    H = (s * (1.0 - s))[:, None, None] * dz.unsqueeze(2) * dz.unsqueeze(1)
    if d2z is not None:
        H = H + l1[:, :, None] * 0.5 * (d2z + d2z.transpose(1, 2))
    return F.binary_cross_entropy_with_logits(z, yd, reduction="none"), g, H


def worst_case_affine(module, x, y, radius):
    """``delta = -radius (2y - 1) w / ||w||``: the exact maximiser for the affine model.

    It is also the solution of the trust-region subproblem there: the Hessian of
    ``-loss``, ``-s (1 - s) w w'``, is negative semi-definite, so the step is on the
    boundary, in the direction of ``w``; ``w = 0`` gives ``delta = 0``.
    """
    w = _affine_layer(module).weight[0].detach()
    unit = w / w.norm().clamp_min(torch.finfo(w.dtype).tiny)
    return (float(radius) * (1.0 - 2.0 * y.to(x.dtype)))[:, None] * unit


def random_perturbation(x, radius, generator=None):
    """A uniformly random point on the sphere of ``radius`` for every row."""
    xi = randn(x.shape, generator, device=x.device, dtype=x.dtype)
    norm = xi.norm(dim=1, keepdim=True)
    # a zero draw has probability 0; it would give 0 / 0: take the first axis instead
    xi[:, 0] = torch.where(norm[:, 0] > 0, xi[:, 0], 1.0)
    norm = xi.norm(dim=1, keepdim=True)
    return xi * (float(radius) / norm)


def trust_region_perturbation(module, x, y, radius, *, steps=1):
    """The trust-region subproblem of the second-order model of the loss at x, then up
    to ``steps - 1`` Newton steps for the maximiser of the true loss on the sphere.

    Each further step is Riemannian Newton on ``||p|| = radius`` (tangent gradient,
    tangent Hessian ``P H P - (u'g / r) P`` with ``u = p / r``, retraction by
    normalisation) from the derivatives at the current point; a sample keeps a step
    only if it raises its loss, and stops otherwise. Interior solutions are kept.

    Returns the perturbations (in the dtype of x) and the multiplier iterations.
    """
    r = float(radius)
    _, g, H = loss_input_derivatives(module, x, y, affine=False)
    p, n_iter = trust_region_step(-g, -H, r)  # maximise the loss = minimise its negative
    if steps == 1:
        return p.to(x.dtype), n_iter
    loss, g, H = loss_input_derivatives(module, x + p.to(x.dtype), y, affine=False)
    active = p.norm(dim=1) >= r * (1.0 - 1e-9)  # on the boundary
    eye = torch.eye(x.shape[1], dtype=p.dtype, device=p.device)
    for _ in range(steps - 1):
        if not bool(active.any()):
            break
        u = p / r
        radial = (g * u).sum(dim=1)
        proj = eye - u.unsqueeze(2) * u.unsqueeze(1)
        g_tan = g - radial[:, None] * u
        hess = proj @ H @ proj - (radial / r)[:, None, None] * proj
        # (tangent Hessian) xi = -g_tan on the tangent space; -1 along u
        mat = hess - u.unsqueeze(2) * u.unsqueeze(1)
        xi, info = torch.linalg.solve_ex(mat, -g_tan)
        ok = active & (info == 0) & torch.isfinite(xi).all(dim=1)
        cand = p + torch.where(ok[:, None], xi, 0.0)
        cand = cand * (r / cand.norm(dim=1, keepdim=True).clamp_min(1e-300))
        new_loss, g_new, H_new = loss_input_derivatives(
            module, x + cand.to(x.dtype), y, affine=False
        )
        better = ok & (new_loss > loss)
        p = torch.where(better[:, None], cand, p)
        loss = torch.where(better, new_loss, loss)
        g = torch.where(better[:, None], g_new, g)
        H = torch.where(better[:, None, None], H_new, H)
        active = better
    return p.to(x.dtype), n_iter


def gradient_ascent_perturbation(module, x, y, radius, *, affine):
    """Projected gradient ascent on the batch's mean loss.

    Starts at 0 with step ``PGD_STEP``, shrunk by ``PGD_SHRINK`` up to
    ``PGD_BACKTRACKS`` times until the (projected) candidate raises the batch loss;
    stops when a step moves the perturbations by less than ``PGD_TOL`` or after
    ``PGD_MAX_ITER`` iterations. Returns the perturbations and the iterations.
    """
    r = float(radius)
    n = x.shape[0]
    yf = y.to(x.dtype)
    if affine:
        lin = _affine_layer(module)
        w = lin.weight[0].detach()
        zx = x @ w + lin.bias.detach()[0]

        def mean_loss(delta):
            return F.binary_cross_entropy_with_logits(zx + delta @ w, yf)

        def input_grad(delta):  # of the mean loss
            return ((torch.sigmoid(zx + delta @ w) - yf) / n)[:, None] * w
    else:

        def mean_loss(delta):
            return mean_loss_at(x + delta)

        def mean_loss_at(xt):
            return F.binary_cross_entropy_with_logits(module(xt)[:, 0], yf)

        def input_grad(delta):
            with torch.enable_grad():
                xt = (x + delta).requires_grad_(True)
                return torch.autograd.grad(mean_loss_at(xt), xt)[0]

    delta = torch.zeros_like(x)
    value = mean_loss(delta)
    step = PGD_STEP
    it = 0
    while it < PGD_MAX_ITER:
        it += 1
        grad = input_grad(delta)
        for k in range(PGD_BACKTRACKS + 1):
            if k:
                step /= PGD_SHRINK
            cand = delta + step * grad
            cand = cand * (r / cand.norm(dim=1, keepdim=True).clamp_min(r))  # project
            cand_value = mean_loss(cand)
            increased = bool(cand_value > value)
            if increased:
                break
        moved = float((cand - delta).norm())
        if increased:
            delta, value = cand, cand_value
        if moved < PGD_TOL:
            break
    return delta, it


def perturbation(solver, module, x, y, radius, *, affine, trs_steps=1, generator=None):
    """The perturbation of the batch ``x`` by ``solver`` ("trs", "pgd", "random",
    "exact" or "none"; None for no perturbation) and the solver's iterations.

    "trs" on the affine model and "exact" are :func:`worst_case_affine`.
    """
    if solver == "none" or float(radius) == 0:
        return None, 0
    if solver == "random":
        return random_perturbation(x, radius, generator), 0
    if solver == "exact" or (solver == "trs" and affine):
        return worst_case_affine(module, x, y, radius), 0
    if solver == "trs":
        return trust_region_perturbation(module, x, y, radius, steps=trs_steps)
    return gradient_ascent_perturbation(module, x, y, radius, affine=affine)


def affine_logistic_loss_grad(x, y, sample_weight, w, bias, grad_w, grad_b):
    """The (weighted) mean logistic loss of the logits ``z = x w + bias`` and its
    gradient, written into ``grad_w`` (d,) and ``grad_b`` (1,): with
    ``c_i = w_i (sigmoid(z_i) - y_i) / sum(w)``, ``grad_w = x' c`` and
    ``grad_b = sum(c)`` (no autograd). ``y`` is a float tensor of 0/1 labels."""
    z = torch.addmv(bias, x, w)
    c = torch.sigmoid(z).sub_(y)
    if sample_weight is None:
        c.mul_(1.0 / len(y))
        loss = F.binary_cross_entropy_with_logits(z, y)
    else:
        wsum = sample_weight.sum()
        c.mul_(sample_weight).div_(wsum)
        loss = (
            F.binary_cross_entropy_with_logits(z, y, weight=sample_weight, reduction="sum") / wsum
        )
    torch.mv(x.T, c, out=grad_w)
    torch.sum(c, dim=0, keepdim=True, out=grad_b)
    return loss
