"""BADRClassifier and BADRRegressor: Bilevel Adaptive Rescalarisation (BADR).

After Tanji, Vaiter & Laguel (2026), "Fairness-informed Pareto Optimization: An
Efficient Bilevel Framework". With S sensitive groups and the per-group risks

    F_a(w) = (weighted) mean loss of group a  +  alpha/2 ||coef||^2      (a = 1 .. S)

BADR searches the Pareto front of (F_1, ..., F_S) for its fairest point:

    min_{lambda in simplex}  V(lambda) = Fair(w(lambda))
    s.t.                     w(lambda) = argmin_w  sum_a lambda_a F_a(w).

Every lambda with positive entries gives a Pareto-efficient model; the upper level moves
lambda (the *group weights*) only, so the model never leaves the front. ``Fair`` is a
differentiable fairness metric of the model on the training split.

The hypergradient is ``dV/dlambda_a = <grad F_a(w), v>`` with
``v = -H^{-1} grad_w Fair(w)`` and ``H = sum_a lambda_a Hess F_a(w)`` (implicit function
theorem). Three solvers:

* ``"exact"`` - solve the lower level exactly (Newton in float64 for the linear model,
  full-batch L-BFGS for the MLP), compute ``v`` by a linear solve (linear model) or
  conjugate gradient with Hessian-vector products, and take a projected gradient step on
  lambda with an Armijo backtracking line search. One engine epoch = one outer
  iteration; the loop stops when lambda moves less than ``tol``.
* ``"gd"`` (BADR-GD) and ``"sgd"`` (BADR-SGD) - the single-loop recursion on the triple
  (w, v, lambda): a gradient step on w, a step on v towards ``-H^{-1} grad Fair`` using a
  Hessian-vector product, and a clipped projected step on lambda along ``J^T v``, all
  three from the same iterate. BADR-SGD uses balanced per-group mini-batches drawn by a
  custom engine sampler; BADR-GD the full training split. One engine epoch = one
  iteration, so ``history_`` has one row per iteration.

All three end with a refit of the lower level at the learned lambda. The baselines of
the paper are the same estimator with fixed group weights (``group_weights``).
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .._groups import check_sensitive_features, encode_groups, resolve_column_ids
from .._params import is_array_like, layer_sizes, number, one_of
from ..base import BaseFairEstimator, FairClassifierMixin, FairRegressorMixin
from ..nn.bilevel import (
    conjugate_gradient,
    flat_grad,
    flatten,
    hvp,
    project_simplex,
    unflatten_like,
)
from ..nn.engine import TensorData
from ..nn.losses import group_means
from ..nn.modules import ACTIVATIONS, make_mlp

__all__ = ["BADRClassifier", "BADRRegressor"]

CLASSIFIER_FAIRNESS = ("demographic_parity", "equal_opportunity", "equalized_odds",
                       "group_variance", "disparate_mistreatment", "individual_fairness")
REGRESSOR_FAIRNESS = ("demographic_parity", "group_variance", "disparate_mistreatment",
                      "individual_fairness")
BASELINES = ("uniform", "balanced", "pooled", "minimax", "one_group")

_NEWTON_MAX_PARAMS = 2048  # linear models up to this many parameters use Newton + solve
_CHUNK_ELEMENTS = 1 << 19  # row chunks of the linear model: ~512k entries (4 MB float64)
_ARMIJO = 1e-4
_MAX_BACKTRACK = 40


# ====================================================================== metrics
def _lme(values, present, rho):
    """Log-mean-exp smooth maximum over the first dimension, present rows only:
    ``(1/rho) log(mean_a exp(rho v_a))``; between ``max - log(m)/rho`` and ``max``."""
    mask = present.reshape((-1,) + (1,) * (values.dim() - 1))
    z = torch.where(mask, rho * values, torch.full_like(values, -math.inf))
    m = present.sum().clamp_min(1).to(values.dtype)
    return (torch.logsumexp(z, dim=0) - torch.log(m)) / rho


def _smooth_range(rates, present, rho):
    """Smooth ``max_a r_a - min_a r_a`` over the present groups (0 for one group).

    For two groups it is ``(2/rho) log cosh(rho (r_0 - r_1) / 2)``: a smooth absolute
    difference, ~ ``rho d^2 / 4`` near 0 and ``|d| - 2 log(2) / rho`` for large ``|d|``.
    """
    if int(present.sum()) < 2:
        return rates.sum() * 0.0
    return _lme(rates, present, rho) + _lme(-rates, present, rho)


def _smooth_max(values, rho):
    """Log-mean-exp over a 1-D tensor (all entries present)."""
    return _lme(values, torch.ones(values.shape[0], dtype=torch.bool,
                                   device=values.device), rho)


def _row_loss(out, y, kind):
    """Per-row loss of the model outputs: logistic, softmax cross-entropy or squared."""
    if kind == "regressor":
        return (out[:, 0] - y) ** 2
    if out.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(out[:, 0], y.to(out.dtype),
                                                  reduction="none")
    return F.cross_entropy(out, y, reduction="none")


def _individual_fairness(s, y, g, w, n_groups, *, kind, pairs=None):
    """Between-group individual unfairness (Berk et al. 2017, as in the BADR toolbox):

        (1/Z) sum_{a<b} sum_{i in a, j in b} w_i w_j exp(-|y_i - y_j|) (s_i - s_j)^2,
        Z = sum_{a != b} W_a W_b      (ordered pairs: the toolbox's normaliser).

    Classifier (binary y): exact in O(n) from per-(group, class) sums of w, w s, w s^2.
    Regressor: over the pairs ``(i, j, coef)`` (all pairs or a sample; ``coef`` rescales
    a sample to the full sum).
    """
    dt = s.dtype
    wv = torch.ones_like(s) if w is None else w.to(dt)
    totals = torch.zeros(n_groups, dtype=dt, device=s.device).index_add(0, g, wv)
    Z = totals.sum() ** 2 - (totals ** 2).sum()
    if float(Z) <= 0:
        return s.sum() * 0.0
    s = s - (wv * s).sum() / wv.sum()  # shift-invariant; centring limits cancellation
    if kind == "classifier":
        C = 2
        onehot = F.one_hot(y.long(), C).to(dt) * wv[:, None]
        zero = torch.zeros(n_groups, C, dtype=dt, device=s.device)
        N = zero.index_add(0, g, onehot)
        S1 = zero.index_add(0, g, onehot * s[:, None])
        S2 = zero.index_add(0, g, onehot * (s ** 2)[:, None])
        c = torch.arange(C, dtype=dt, device=s.device)
        K = torch.exp(-(c[:, None] - c[None, :]).abs())
        P = S2 @ K @ N.T + N @ K @ S2.T - 2.0 * (S1 @ K @ S1.T)
        total = 0.5 * (P.sum() - P.diagonal().sum())
        return total / Z
    i, j, coef = pairs
    k = torch.exp(-(y[i] - y[j]).abs())
    total = (coef * wv[i] * wv[j] * k * (s[i] - s[j]) ** 2).sum()
    return total / Z


def _fairness_value(name, out, y, g, w, n_groups, *, kind, rho, pairs=None):
    """The differentiable upper-level metric of model outputs ``out`` (n, K).

    Classifiers use probabilities for the rate-based metrics and the logit for
    disparate mistreatment and individual fairness; regressors use the prediction.
    """
    multi = out.shape[1] > 1
    if kind == "classifier":
        proba = torch.softmax(out, dim=1) if multi else torch.sigmoid(out[:, 0])
    else:
        proba = out[:, 0]
    if name == "demographic_parity":
        rates, totals = group_means(proba, g, n_groups, w)
        val = _smooth_range(rates, totals > 0, rho)
        return _smooth_max(val, rho) if multi else val
    if name in ("equal_opportunity", "equalized_odds"):
        sides = [True] if name == "equal_opportunity" else [True, False]
        if not multi:
            parts = []
            for positive in sides:
                mask = (y > 0) if positive else (y <= 0)
                rates, totals = group_means(proba, g, n_groups, w, mask=mask)
                parts.append(_smooth_range(rates, totals > 0, rho))
            return parts[0] if len(parts) == 1 else _smooth_max(torch.stack(parts), rho)
        parts = []
        for k in range(out.shape[1]):
            for positive in sides:
                mask = (y == k) if positive else (y != k)
                rates, totals = group_means(proba[:, k], g, n_groups, w, mask=mask)
                parts.append(_smooth_range(rates, totals > 0, rho))
        return _smooth_max(torch.stack(parts), rho)
    if name == "group_variance":
        losses, totals = group_means(_row_loss(out, y, kind), g, n_groups, w)
        present = totals > 0
        vals = losses[present]
        return ((vals - vals.mean()) ** 2).mean()
    s = out[:, 0]
    if name == "disparate_mistreatment":
        means, totals = group_means(s, g, n_groups, w)
        pi = totals / totals.sum()
        overall = (pi * means).sum()
        return 0.5 * (pi ** 2 * (means - overall) ** 2).sum()
    if name == "individual_fairness":
        return _individual_fairness(s, y, g, w, n_groups, kind=kind, pairs=pairs)
    raise ValueError(f"unknown fairness {name!r}")  # guarded by the parameter rules


def _sample_pairs(g, n_groups, max_pairs, generator):
    """Cross-group pairs ``(i, j, coef)`` for the regressor's individual fairness: all
    pairs when there are at most ``max_pairs``, otherwise a uniform sample (with
    replacement) of about ``max_pairs`` pairs split over the group pairs in proportion
    to ``n_a n_b``, with ``coef = n_a n_b / m_ab`` so that sums are unbiased."""
    order = torch.argsort(g, stable=True)
    counts = torch.bincount(g, minlength=n_groups).tolist()
    rows = list(torch.split(order, counts))
    total = sum(counts[a] * counts[b] for a in range(n_groups)
                for b in range(a + 1, n_groups))
    dev = g.device
    I, J, C = [], [], []
    for a in range(n_groups):
        for b in range(a + 1, n_groups):
            na, nb = counts[a], counts[b]
            if na == 0 or nb == 0:
                continue
            if total <= max_pairs:
                ia = rows[a].repeat_interleave(nb)
                jb = rows[b].repeat(na)
                coef = torch.ones(na * nb, device=dev)
            else:
                m = max(1, int(math.ceil(max_pairs * na * nb / total)))
                ia = rows[a][torch.randint(na, (m,), generator=generator, device=dev)]
                jb = rows[b][torch.randint(nb, (m,), generator=generator, device=dev)]
                coef = torch.full((m,), na * nb / m, device=dev)
            I.append(ia)
            J.append(jb)
            C.append(coef)
    if not I:
        empty = torch.zeros(0, dtype=torch.long, device=dev)
        return empty, empty, torch.zeros(0, device=dev)
    return torch.cat(I), torch.cat(J), torch.cat(C)


def _entropy(lam):
    lam = lam.detach().double()
    terms = torch.where(lam > 0, lam * torch.log(lam.clamp_min(1e-300)),
                        torch.zeros_like(lam))
    return float(-terms.sum())


# ====================================================================== the bilevel problem
class _ChunkedLinear(torch.autograd.Function):
    """``X @ W.T + b`` over row chunks of ``X`` (which may be float32 under a float64
    model): unlike ``F.linear`` on an upcast copy, autograd keeps only a reference to
    ``X``, and the backward pass ``dW = dout.T @ X`` runs over the same chunks
    (:class:`_ChunkedXtMatmul`, itself differentiable, so double backward -
    Hessian-vector products - works in O(n) memory)."""

    @staticmethod
    def forward(ctx, X, weight, bias, prob):
        ctx.prob = prob
        theta = torch.cat([weight, bias[:, None]], dim=1)
        return prob._affine(theta)

    @staticmethod
    def backward(ctx, grad_out):
        return None, _ChunkedXtMatmul.apply(grad_out, ctx.prob), grad_out.sum(0), None


class _ChunkedXtMatmul(torch.autograd.Function):
    """``R.T @ X`` (K, d) over row chunks of ``X`` for per-row ``R`` (n, K): the weight
    gradient of :class:`_ChunkedLinear`. Its own backward, ``dR = X @ dG.T``, is a
    chunked linear map again, so a double-backward graph (Hessian-vector products)
    holds O(n) values, never the upcast chunks of X."""

    @staticmethod
    def forward(ctx, R, prob):
        ctx.prob = prob
        acc = torch.zeros(R.shape[1], prob.X.shape[1], dtype=R.dtype, device=R.device)
        for start, xc in prob._row_chunks():
            acc.addmm_(R[start:start + xc.shape[0]].T, xc)
        return acc

    @staticmethod
    def backward(ctx, dG):
        prob = ctx.prob
        zero = torch.zeros(dG.shape[0], dtype=dG.dtype, device=dG.device)
        return _ChunkedLinear.apply(prob.X, dG, zero, prob), None


class _Bilevel:
    """The BADR bilevel problem on the full training split (tensors on one device).

    ``lower(lam) = sum_a lam_a F_a(w)`` with ``F_a = group mean loss + alpha/2 ||W||^2``
    (every weight matrix; biases unpenalised), ``upper = Fair(w)``. Provides exact lower
    solves, the upper value and the implicit hypergradient.
    """

    def __init__(self, net, X, y, g, w, n_groups, *, kind, alpha, fairness, rho,
                 pairs=None, lower_max_iter=100, newton=None):
        self.net = net
        self.X, self.y, self.g, self.w = X, y, g, w
        self.n_groups = n_groups
        self.kind = kind
        self.alpha = float(alpha)
        self.fairness = fairness
        self.rho = float(rho)
        self.pairs = pairs
        self.lower_max_iter = int(lower_max_iter)
        self.params = list(net.parameters())
        self.n_params = sum(p.numel() for p in self.params)
        # the compute dtype is the model's: X may stay float32 (the training data) under
        # a float64 linear model; it is then upcast one chunk of rows at a time
        self.dtype = self.params[0].dtype
        self.chunk = max(256, _CHUNK_ELEMENTS // (X.shape[1] + 1))
        double = self.dtype == torch.float64
        self.grad_tol = 1e-11 if double else 1e-6
        self.cg_tol = 1e-12 if double else 1e-6
        if newton is None:
            newton = isinstance(net, nn.Linear) and self.n_params <= _NEWTON_MAX_PARAMS
        self.newton = bool(newton)
        self.chunked = isinstance(net, nn.Linear)  # outputs and sums over row chunks
        if self.newton:
            dt = self.dtype
            wv = torch.ones_like(y, dtype=dt) if w is None else w.to(dt)
            tot = torch.zeros(n_groups, dtype=dt, device=X.device).index_add(0, g, wv)
            self.rw = wv / tot[g]  # row weight within its group: F_a = sum rw_i l_i
            if kind == "classifier" and net.out_features > 1:
                self.onehot = F.one_hot(y, net.out_features).to(dt)

    # ---------------------------------------------------------------- row chunks
    def _row_chunks(self):
        """``(start, X[start:start + chunk])`` in the compute dtype: the only copies of
        X the linear model makes are one chunk at a time."""
        X = self.X
        for start in range(0, X.shape[0], self.chunk):
            yield start, X[start:start + self.chunk].to(self.dtype)

    def _affine(self, theta):
        """``[X, 1] @ theta.T`` (n, K) for ``theta = [W | b]``, chunked, no graph."""
        with torch.no_grad():
            out = torch.empty(self.X.shape[0], theta.shape[0], dtype=self.dtype,
                              device=self.X.device)
            W, b = theta[:, :-1], theta[:, -1]
            for start, xc in self._row_chunks():
                torch.addmm(b, xc, W.T, out=out[start:start + xc.shape[0]])
        return out

    def _rmatmul(self, R):
        """``R.T @ [X, 1]`` (K, d+1) for per-row ``R`` (n, K), chunked."""
        acc = torch.zeros(R.shape[1], self.X.shape[1], dtype=self.dtype,
                          device=self.X.device)
        for start, xc in self._row_chunks():
            acc.addmm_(R[start:start + xc.shape[0]].T, xc)
        return torch.cat([acc, R.sum(0)[:, None]], dim=1)

    # ---------------------------------------------------------------- pieces
    def outputs(self):
        if self.chunked:
            return _ChunkedLinear.apply(self.X, self.net.weight, self.net.bias, self)
        return self.net(self.X)

    def group_losses(self, out, y=None, g=None, w=None):
        """(S,) group mean losses (no regulariser) of outputs ``out``: of the full
        training split when ``y`` is None, else of the batch ``(y, g, w)``."""
        if y is None:
            y, g, w = self.y, self.g, self.w
        means, _ = group_means(_row_loss(out, y, self.kind), g, self.n_groups, w)
        return means

    def reg(self):
        return 0.5 * self.alpha * sum((p ** 2).sum() for p in self.params if p.dim() > 1)

    def lower(self, lam):
        return (lam * self.group_losses(self.outputs())).sum() + lam.sum() * self.reg()

    def fair(self, out, y=None, g=None, w=None, pairs=None):
        full = y is None
        return _fairness_value(
            self.fairness, out, self.y if full else y, self.g if full else g,
            self.w if full else w, self.n_groups, kind=self.kind, rho=self.rho,
            pairs=self.pairs if full else pairs)

    @torch.no_grad()
    def fair_value(self):
        return float(self.fair(self.outputs()))

    @torch.no_grad()
    def group_risks(self):
        """(S,) F_a at the current model (regulariser included)."""
        return self.group_losses(self.outputs()) + self.reg()

    # ---------------------------------------------------------------- linear: Newton
    def _theta(self):
        net = self.net
        return torch.cat([net.weight.detach(), net.bias.detach()[:, None]], dim=1)

    @torch.no_grad()
    def _set_theta(self, theta):
        self.net.weight.copy_(theta[:, :-1])
        self.net.bias.copy_(theta[:, -1])

    def _row_terms(self, Z, start):
        """Per-row loss, first derivative ``r`` (rows, K) and, for a scalar output, the
        second derivative ``h`` (rows,) of the loss at outputs ``Z`` of the rows from
        ``start``; for softmax ``h`` is None and the probabilities are returned."""
        y = self.y[start:start + Z.shape[0]]
        if self.kind == "regressor":
            res = Z[:, 0] - y
            return res ** 2, (2.0 * res)[:, None], torch.full_like(res, 2.0), None
        if Z.shape[1] == 1:
            z, yf = Z[:, 0], y.to(Z.dtype)
            p = torch.sigmoid(z)
            loss = F.binary_cross_entropy_with_logits(z, yf, reduction="none")
            return loss, (p - yf)[:, None], p * (1.0 - p), None
        onehot = self.onehot[start:start + Z.shape[0]]
        P = torch.softmax(Z, dim=1)
        loss = -(torch.log_softmax(Z, dim=1) * onehot).sum(1)
        return loss, P - onehot, None, P

    def _pieces(self, theta, lam, hessian=True):
        """Lower objective, gradient (K, d+1) and Hessian (P, P) of the linear model,
        accumulated over row chunks (no per-row array of the whole split)."""
        alpha = self.alpha * float(lam.sum())
        K, d1 = theta.shape
        W, b = theta[:, :-1], theta[:, -1]
        f = torch.zeros((), dtype=theta.dtype, device=theta.device)
        G = torch.zeros(K, d1, dtype=theta.dtype, device=theta.device)
        H = torch.zeros(K * d1, K * d1, dtype=theta.dtype, device=theta.device) \
            if hessian else None
        for start, xc in self._row_chunks():
            stop = start + xc.shape[0]
            c = lam[self.g[start:stop]] * self.rw[start:stop]
            loss, r, h, P = self._row_terms(torch.addmm(b, xc, W.T), start)
            f += (c * loss).sum()
            xt = torch.cat([xc, torch.ones_like(xc[:, :1])], dim=1)
            G.addmm_((c[:, None] * r).T, xt)
            if not hessian:
                continue
            if h is not None:
                H.addmm_(xt.T, xt * (c * h)[:, None])
                continue
            for k in range(K):
                for m in range(k, K):
                    wkm = c * (P[:, k] * ((1.0 if k == m else 0.0) - P[:, m]))
                    H[k * d1:(k + 1) * d1, m * d1:(m + 1) * d1].addmm_(
                        xt.T, xt * wkm[:, None])
        f = f + 0.5 * alpha * (W ** 2).sum()
        pen = torch.cat([W, torch.zeros_like(theta[:, -1:])], dim=1)
        G = G + alpha * pen
        if not hessian:
            return f, G, None
        for k in range(K):  # the lower blocks of the symmetric softmax Hessian
            for m in range(k + 1, K):
                H[m * d1:(m + 1) * d1, k * d1:(k + 1) * d1] = \
                    H[k * d1:(k + 1) * d1, m * d1:(m + 1) * d1].T
        mask = torch.ones(K, d1, dtype=theta.dtype, device=theta.device)
        mask[:, -1] = 0.0
        H = H + torch.diag(alpha * mask.reshape(-1))
        return f, G, H

    @staticmethod
    def _solve_spd(H, b):
        """Solve ``H x = b`` for symmetric positive (semi-)definite H, robustly."""
        L, info = torch.linalg.cholesky_ex(H)
        if int(info) == 0:
            return torch.cholesky_solve(b[:, None], L)[:, 0]
        jitter = 1e-10 * float(H.diagonal().abs().max().clamp_min(1e-30))
        eye = torch.eye(H.shape[0], dtype=H.dtype, device=H.device)
        for _ in range(8):
            L, info = torch.linalg.cholesky_ex(H + jitter * eye)
            if int(info) == 0:
                return torch.cholesky_solve(b[:, None], L)[:, 0]
            jitter *= 100.0
        return torch.linalg.lstsq(H, b[:, None]).solution[:, 0]

    @torch.no_grad()
    def _newton(self, lam):
        """Damped Newton (Armijo backtracking). Once the Newton decrement is below what
        the objective's rounding can resolve, a last full step is taken without a line
        search (quadratic convergence) and the loop ends."""
        theta = self._theta()
        iters = 0
        while iters < self.lower_max_iter:
            iters += 1
            f, G, H = self._pieces(theta, lam)
            step = self._solve_spd(H, G.reshape(-1)).reshape(theta.shape)
            dec = float((G * step).sum())
            if not math.isfinite(dec) or dec <= 0:
                break
            if dec <= 1e-13 * max(1.0, abs(float(f))):
                theta = theta - step
                break
            t, accepted = 1.0, False
            for _ in range(_MAX_BACKTRACK):
                f_new, _, _ = self._pieces(theta - t * step, lam, hessian=False)
                if float(f_new) <= float(f) - _ARMIJO * t * dec:
                    accepted = True
                    break
                t *= 0.5
            if not accepted:
                break
            theta = theta - t * step
        self._set_theta(theta)
        return iters

    # ---------------------------------------------------------------- generic: L-BFGS
    def _lbfgs(self, lam):
        lam = lam.detach()
        opt = torch.optim.LBFGS(self.params, lr=1.0, max_iter=self.lower_max_iter,
                                history_size=20, line_search_fn="strong_wolfe",
                                tolerance_grad=self.grad_tol,
                                tolerance_change=1e-32 if self.dtype == torch.float64
                                else 1e-10)

        def closure():
            opt.zero_grad(set_to_none=True)
            loss = self.lower(lam)
            loss.backward()
            return loss

        opt.step(closure)
        for p in self.params:
            p.grad = None
        iters = int(opt.state[opt._params[0]].get("n_iter", 0))
        return iters + self._polish(lam)

    def _polish(self, lam, max_steps=2):
        """Newton-CG steps after L-BFGS, kept while they shrink the gradient: L-BFGS's
        line search works on function values and stalls at a gradient of about
        sqrt(machine epsilon); the implicit hypergradient needs a stationary point."""
        damping = 0.0 if isinstance(self.net, nn.Linear) else 1e-6
        steps = 0
        for _ in range(max_steps):
            g = flat_grad(self.lower(lam), self.params, create_graph=True)
            g_norm = float(torch.linalg.vector_norm(g.detach()))
            if not math.isfinite(g_norm) or g_norm <= 1e-14:
                break

            def matvec(u, g=g):
                return hvp(g, self.params, u) + damping * u

            step = conjugate_gradient(matvec, g.detach(), max_iter=min(self.n_params, 100),
                                      tol=self.cg_tol)
            old = [p.detach().clone() for p in self.params]
            with torch.no_grad():
                for p, upd in zip(self.params, unflatten_like(step, self.params),
                                  strict=True):
                    p.sub_(upd)
            new_norm = float(torch.linalg.vector_norm(
                flat_grad(self.lower(lam), self.params)))
            if not new_norm < g_norm:
                _copy_params(self.params, old)
                break
            steps += 1
        return steps

    def solve(self, lam):
        """Minimise the lower objective at ``lam`` in place (warm start: current model).
        Returns the number of iterations."""
        return self._newton(lam) if self.newton else self._lbfgs(lam)

    # ---------------------------------------------------------------- hypergradient
    def hypergradient(self, lam):
        """At a solved ``w(lam)``: ``(V, h, info)`` with ``h_a = <grad F_a, v>``,
        ``v = -H^{-1} grad Fair``."""
        lam = lam.detach()
        if self.newton:
            theta = self._theta()
            out = self._affine(theta).requires_grad_(True)
            fair = self.fair(out)  # grad wrt theta = (dFair/dout).T @ [X, 1], chunked
            gF = self._rmatmul(torch.autograd.grad(fair, out)[0])
            with torch.no_grad():
                _, _, H = self._pieces(theta.detach(), lam)
                v = -self._solve_spd(H, gF.reshape(-1))
                h = self._group_dots(theta.detach(), v)
        else:
            out = self.outputs()
            fair = self.fair(out)
            gF = flat_grad(fair, self.params, retain_graph=True)
            lam_leaf = lam.clone().requires_grad_(True)
            lower = (lam_leaf * (self.group_losses(out) + self.reg())).sum()
            g = flat_grad(lower, self.params, create_graph=True)
            damping = 0.0 if isinstance(self.net, nn.Linear) else 1e-6

            def matvec(u):
                return hvp(g, self.params, u) + damping * u

            v = -conjugate_gradient(matvec, gF.detach(), max_iter=max(50, min(
                self.n_params, 500)), tol=self.cg_tol)
            h = torch.autograd.grad(g @ v, lam_leaf)[0]
        info = {"v_norm": float(torch.linalg.vector_norm(v)),
                "fair_grad_norm": float(torch.linalg.vector_norm(gF))}
        return float(fair.detach()), h.detach(), info

    def _group_dots(self, theta, v):
        """``<grad F_a(theta), v>`` for every group (linear model, closed form, over row
        chunks)."""
        W, b = theta[:, :-1], theta[:, -1]
        V = v.reshape(theta.shape)  # (K, d+1)
        dots = torch.zeros(self.n_groups, dtype=theta.dtype, device=theta.device)
        for start, xc in self._row_chunks():
            stop = start + xc.shape[0]
            _, r, _, _ = self._row_terms(torch.addmm(b, xc, W.T), start)
            xv = torch.addmm(V[:, -1], xc, V[:, :-1].T)  # <[x_i, 1], V_k>
            per_row = (xv * r).sum(1) * self.rw[start:stop]  # <grad l_i, v> * rw_i
            dots.index_add_(0, self.g[start:stop], per_row)
        return dots + self.alpha * (theta[:, :-1] * V[:, :-1]).sum()


# ====================================================================== the module
class _BADRModule(nn.Module):
    """The network plus the BADR state kept in buffers (so that the engine's snapshots,
    interrupt handling and pickling cover it): group weights ``lam``, the auxiliary
    vector ``v`` of BADR-GD/SGD, and the target scaling of the regressor."""

    def __init__(self, net, n_groups, dtype):
        super().__init__()
        self.net = net
        n_params = sum(p.numel() for p in net.parameters())
        self.register_buffer("lam", torch.full((n_groups,), 1.0 / n_groups, dtype=dtype))
        self.register_buffer("v", torch.zeros(n_params, dtype=dtype))
        self.register_buffer("y_mean", torch.zeros((), dtype=dtype))
        self.register_buffer("y_scale", torch.ones((), dtype=dtype))

    def forward(self, x):
        return self.net(x)


# ====================================================================== estimators
def _group_weights_rule(value):
    if value is None or (isinstance(value, str) and value in BASELINES):
        return None
    if isinstance(value, str) or is_array_like()(value) is not None:
        return f"None, one of {BASELINES} or an array-like of non-negative group weights"
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return "an array-like of non-negative numbers"
    if arr.ndim != 1 or not np.all(np.isfinite(arr)) or np.any(arr < 0) or arr.sum() <= 0:
        return ("a 1-D array-like of finite, non-negative group weights, not all zero "
                "(they are normalised to sum to 1)")
    return None


class _BADRBase(BaseFairEstimator):
    """Shared implementation of BADRClassifier and BADRRegressor."""

    _parameter_rules = {
        "model": one_of("linear", "mlp"),
        "hidden_layer_sizes": layer_sizes(allow_empty=False),
        "activation": one_of(*ACTIVATIONS),
        "alpha": number(0),
        "rho": number(0, low_open=True),
        "group_weights": _group_weights_rule,
        "solver": one_of("exact", "gd", "sgd"),
        "max_iter": number(1, integer=True),
        "step_w": number(0, low_open=True),
        "step_v": number(0, low_open=True, none=True),
        "step_lambda": number(0, low_open=True),
        "clip": number(0, low_open=True, none=True),
        "fairness_gradient": one_of("full", "batch"),
        "average_lambda": one_of(True, False),
        "init": one_of("best", "uniform"),
        "lower_max_iter": number(1, integer=True),
        "tol": number(0),
        "max_pairs": number(1, integer=True),
    }

    # BaseFairEstimator options BADR does not use (not parameters of these estimators)
    early_stopping = False
    validation_fraction = 0.1
    n_iter_no_change = 10

    def _uses_groups(self):
        return True

    def _lr_hint(self):
        return (f"step_w={self.step_w}, step_v={self.step_v}, "
                f"step_lambda={self.step_lambda} (or a larger alpha)")

    def _check_method_params(self):
        if self.model == "linear" and self.alpha == 0:
            raise ValueError(
                f"alpha=0 with model='linear': the lower level must be strongly convex for "
                f"the hypergradient to exist (and the logistic loss has no minimiser on "
                f"separable data). Use alpha > 0, e.g. {type(self).__name__}(alpha=1e-2)."
            )

    # ---------------------------------------------------------------- model
    def _compute_dtype(self):
        if self.model == "linear" and self.device_.type != "mps":
            return torch.float64
        return torch.float32

    def _build_module(self, n_features, n_outputs):
        dtype = self._compute_dtype()
        if self.model == "linear":
            net = nn.Linear(n_features, n_outputs)
            with torch.no_grad():
                net.weight.zero_()
                net.bias.zero_()
        else:
            hidden = self.hidden_layer_sizes
            hidden = (hidden,) if isinstance(hidden, int) else tuple(hidden)
            gen = torch.Generator()
            gen.manual_seed(int(self._rng.integers(0, 2**63 - 1)))
            net = make_mlp(n_features, hidden, n_outputs, activation=self.activation,
                           generator=gen)
        return _BADRModule(net.to(dtype), self.n_groups_, dtype)

    @property
    def _predict_dtype(self):
        return self.module_.lam.dtype

    def _forward(self, x):
        mod = self.module_
        out = mod.net(x.to(mod.lam.dtype))
        if self._estimator_kind == "regressor":
            out = out * mod.y_scale + mod.y_mean
        return out

    # ---------------------------------------------------------------- fit
    def _fit_torch(self, train, val):
        mod = self.module_
        dtype = mod.lam.dtype
        S = self.n_groups_
        kind = self._estimator_kind
        fairness = self.fairness
        if self.fairness_aware_ and kind == "classifier" and len(self.classes_) > 2 and \
                fairness in ("disparate_mistreatment", "individual_fairness"):
            raise ValueError(
                f"fairness={fairness!r} needs a binary target (a scalar score per row); y "
                f"has {len(self.classes_)} classes. Use 'demographic_parity', "
                f"'equal_opportunity', 'equalized_odds' or 'group_variance'."
            )
        w = None if train.w is None else train.w.to(dtype)
        y = train.y
        if kind == "regressor":
            y = y.to(dtype)
            wv = torch.ones_like(y) if w is None else w
            mean = (wv * y).sum() / wv.sum()
            scale = torch.sqrt((wv * (y - mean) ** 2).sum() / wv.sum())
            scale = torch.where(scale > 0, scale, torch.ones_like(scale))
            with torch.no_grad():
                mod.y_mean.copy_(mean)
                mod.y_scale.copy_(scale)
            y = (y - mean) / scale
        # X stays as the base class gave it (float32): the linear model upcasts row
        # chunks, so a float64 model never holds a float64 copy of X
        data = TensorData(train.X, y, train.g, w, n_groups=S)
        counts = torch.bincount(train.g, minlength=S)
        if self.fairness_aware_ and bool((counts == 0).any()):
            empty = [self.groups_[a] for a in range(S) if int(counts[a]) == 0]
            raise ValueError(
                f"sensitive group(s) {empty} have no training rows with a positive "
                f"sample_weight; BADR needs every group. Drop those groups from "
                f"sensitive_features or give their rows positive weights."
            )
        pairs = None
        if self.fairness_aware_ and fairness == "individual_fairness" and \
                kind == "regressor":
            pairs = _sample_pairs(train.g, S, self.max_pairs, self._gen)
            pairs = (pairs[0], pairs[1], pairs[2].to(dtype))
        prob = _Bilevel(mod.net, data.X, data.y, data.g, data.w, S, kind=kind,
                        alpha=self.alpha, fairness=fairness, rho=self.rho, pairs=pairs,
                        lower_max_iter=self.lower_max_iter)
        if mod.lam.shape[0] != S:  # warm start with another number of groups
            mod.lam = torch.full((S,), 1.0 / S, dtype=dtype, device=self.device_)
        if not self.fairness_aware_:
            lam = torch.ones(1, dtype=dtype, device=self.device_)
        else:
            lam = self._initial_lambda(data, S, dtype)
        with torch.no_grad():
            mod.lam.copy_(lam)
        if self.fairness_aware_ and self.group_weights is None:
            resumed = self.warm_start and getattr(self, "group_weights_", None) is not None \
                and len(self.group_weights_) == S
            if self.init == "best" and not resumed:
                start = self._best_start(prob, S, dtype)  # lower solves need autograd
                with torch.no_grad():
                    mod.lam.copy_(start)
            prob.solve(mod.lam)
            if self.solver == "exact":
                self._run_exact(prob, _BADROracle(prob), data)
            else:
                self._run_single_loop(prob, data)
        elif self.fairness_aware_ and isinstance(self.group_weights, str) and \
                self.group_weights in ("minimax", "one_group"):
            if self.group_weights == "minimax":
                prob.solve(mod.lam)
                self._run_exact(prob, _MinimaxOracle(prob), data)
            else:
                vertex = self._one_group(prob, S, dtype)
                with torch.no_grad():
                    mod.lam.copy_(vertex)
        self._refit_iter = 0
        if not self.interrupted_:
            # the final refit at the learned / fixed weights
            self._refit_iter = prob.solve(mod.lam)
        self.group_weights_ = mod.lam.detach().cpu().numpy().astype(np.float64)
        self.fairness_objective_ = (prob.fair_value() if self.fairness_aware_
                                    else 0.0)
        if self.model == "linear":
            W = mod.net.weight.detach() * mod.y_scale
            b = mod.net.bias.detach() * mod.y_scale + mod.y_mean
            self.coef_ = W.cpu().numpy().astype(np.float64)
            self.intercept_ = b.cpu().numpy().astype(np.float64)
            if kind == "regressor":
                self.coef_, self.intercept_ = self.coef_[0], float(self.intercept_[0])

    def fit(self, X, y, *, sensitive_features=None, sample_weight=None, X_val=None,
            y_val=None, sensitive_features_val=None, sample_weight_val=None):
        super().fit(X, y, sensitive_features=sensitive_features,
                    sample_weight=sample_weight, X_val=X_val, y_val=y_val,
                    sensitive_features_val=sensitive_features_val,
                    sample_weight_val=sample_weight_val)
        if not self.history_:  # fixed group weights: the lower solver's iterations
            self.n_iter_ = max(1, int(self._refit_iter))
        return self

    fit.__doc__ = BaseFairEstimator.fit.__doc__

    def _initial_lambda(self, data, S, dtype):
        dev = self.device_
        gw = self.group_weights
        if gw is None or (isinstance(gw, str) and gw == "minimax"):
            old = getattr(self, "group_weights_", None)
            if self.warm_start and old is not None and len(old) == S:
                return torch.as_tensor(old, dtype=dtype, device=dev)
            return torch.full((S,), 1.0 / S, dtype=dtype, device=dev)
        if isinstance(gw, str):
            wv = torch.ones_like(data.y, dtype=dtype) if data.w is None else data.w
            totals = torch.zeros(S, dtype=dtype, device=dev).index_add(0, data.g, wv)
            if gw == "uniform" or gw == "one_group":
                lam = torch.ones(S, dtype=dtype, device=dev)
            elif gw == "balanced":
                lam = 1.0 / totals
            else:  # pooled ERM: lambda_a proportional to the group's weight
                lam = totals.clone()
            return lam / lam.sum()
        arr = np.asarray(gw, dtype=float)
        if arr.shape[0] != S:
            raise ValueError(
                f"group_weights has {arr.shape[0]} entries but the sensitive features "
                f"have {S} groups ({list(self.groups_)}); pass one weight per group, in "
                f"the order of groups_ (sorted labels)."
            )
        return torch.as_tensor(arr / arr.sum(), dtype=dtype, device=dev)

    # ---------------------------------------------------------------- solvers
    def _run_exact(self, prob, oracle, data):
        """Projected gradient on lambda with Armijo backtracking, one engine epoch per
        outer iteration; ``oracle`` gives the objective and its gradient in lambda."""
        mod = self.module_
        state = {"eta": float(self.step_lambda), "done": False}
        tol = float(self.tol)

        def step(_batch):
            lam = mod.lam.detach().clone()
            theta0 = [p.detach().clone() for p in prob.params]
            value, grad, info = oracle.gradient(lam)
            gc = grad - grad.mean()  # the simplex is orthogonal to 1: same projection
            eta, accepted, moved, iters = state["eta"], False, 0.0, 0
            for _ in range(_MAX_BACKTRACK):
                lam_new = project_simplex(lam - eta * gc)
                delta = lam_new - lam
                moved = float(delta.abs().max())
                if moved <= tol:
                    break
                _copy_params(prob.params, theta0)
                new_value, it = oracle.value(lam_new)
                iters += it
                if new_value <= value + _ARMIJO * float(gc @ delta):
                    accepted = True
                    break
                eta *= 0.5
            with torch.no_grad():
                if accepted:
                    mod.lam.copy_(lam_new)
                    state["eta"] = 2.0 * eta
                else:  # converged (lambda no longer moves): keep w(lambda)
                    _copy_params(prob.params, theta0)
                    state["done"] = True
            record = {oracle.name: value, "entropy": _entropy(lam),
                      "hypergrad_norm": float(torch.linalg.vector_norm(gc)),
                      "step_lambda": eta, "lambda_change": moved if accepted else 0.0,
                      "lower_iter": float(iters)}
            record.update(info)
            record.update(_lambda_record(lam))
            return record

        self._train(step, data, sampler=lambda epoch: [_NO_ROWS.to(data.device)],
                    max_epochs=self.max_iter, early_stopping=False,
                    stop=lambda record: state["done"], desc=f"{type(self).__name__} exact")

    def _run_single_loop(self, prob, data):
        """BADR-GD / BADR-SGD: one engine epoch per iteration of the recursion."""
        mod = self.module_
        S = self.n_groups_
        params = prob.params
        step_w = float(self.step_w)
        step_v = float(self.step_w if self.step_v is None else self.step_v)
        step_l = float(self.step_lambda)
        clip = self.clip
        full_batch = self.solver == "gd"
        batch_fair = self.fairness_gradient == "batch"
        with torch.no_grad():
            mod.v.zero_()
        counter = {"iters": 0, "clipped": 0, "n_avg": 0}
        average = self.solver == "sgd" and self.average_lambda
        avg_start = self.max_iter // 2
        lam_sum = torch.zeros_like(mod.lam)
        sampler = _balanced_sampler(data, S, self.batch_size, self._gen, full=full_batch)
        if self.solver == "sgd" and self.batch_size < S:
            raise ValueError(
                f"batch_size={self.batch_size} is smaller than the number of groups "
                f"({S}); BADR-SGD draws at least one row of every group per batch. Use "
                f"batch_size >= {S}."
            )
        regressor_if = prob.kind == "regressor" and prob.fairness == "individual_fairness"

        def step(b):
            lam = mod.lam.detach().clone()
            v = mod.v.detach().clone()
            if average and counter["iters"] >= avg_start:
                lam_sum.add_(lam)
                counter["n_avg"] += 1
            lam_leaf = lam.clone().requires_grad_(True)
            if full_batch:  # every row, in order, straight from the problem (no copy)
                out = prob.outputs()
                losses = prob.group_losses(out)
            else:
                out = prob.net(b.x.to(prob.dtype))
                losses = prob.group_losses(out, b.y, b.g, b.w)
            risks = losses + prob.reg()
            lower = (lam_leaf * risks).sum()
            g = flat_grad(lower, params, create_graph=True)
            if full_batch:
                fair = prob.fair(out)
                gF = flat_grad(fair, params, retain_graph=True)
            elif batch_fair:
                pairs = None
                if regressor_if:
                    pairs = _sample_pairs(b.g, S, self.max_pairs, self._gen)
                    pairs = (pairs[0], pairs[1], pairs[2].to(out.dtype))
                fair = prob.fair(out, b.y, b.g, b.w, pairs)
                gF = flat_grad(fair, params, retain_graph=True)
            else:
                fair = prob.fair(prob.outputs())
                gF = flat_grad(fair, params)
            second = torch.autograd.grad(g @ v, params + [lam_leaf], allow_unused=True)
            Hv = flatten([torch.zeros_like(p) if s is None else s
                          for s, p in zip(second[:-1], params, strict=True)])
            d = second[-1].detach()  # d_a = <grad F_a, v> = (J^T v)_a
            with torch.no_grad():
                gw = g.detach()
                for p, upd in zip(params, unflatten_like(gw, params), strict=True):
                    p.sub_(step_w * upd)
                mod.v.copy_(v - step_v * (gF.detach() + Hv.detach()))
                dc = d - d.mean()
                norm = float(torch.linalg.vector_norm(dc))
                counter["iters"] += 1
                if clip is not None and norm > clip:
                    dc = dc * (clip / norm)
                    counter["clipped"] += 1
                mod.lam.copy_(project_simplex(lam - step_l * dc))
            record = {"upper": fair.detach(), "lower": lower.detach(),
                      "entropy": _entropy(lam),
                      "grad_norm": float(torch.linalg.vector_norm(gw)),
                      "v_norm": float(torch.linalg.vector_norm(v)),
                      "hypergrad_norm": norm,
                      "fair_grad_norm": float(torch.linalg.vector_norm(gF)),
                      "clipped_fraction": counter["clipped"] / counter["iters"]}
            record.update(_lambda_record(lam))
            return record

        self._train(step, data, sampler=sampler, max_epochs=self.max_iter,
                    early_stopping=False, desc=f"{type(self).__name__} {self.solver}")
        if average and not self.interrupted_ and counter["n_avg"] > 0:
            with torch.no_grad():  # Polyak-Ruppert average of the second half
                mod.lam.copy_(project_simplex(lam_sum / counter["n_avg"]))

    def _one_group(self, prob, S, dtype):
        """The vertex e_a whose model has the smallest training metric."""
        return self._best_of(prob, list(torch.eye(S, dtype=dtype, device=self.device_)))

    def _best_start(self, prob, S, dtype):
        """``init="best"``: uniform weights or the best vertex, whichever model has the
        smaller training metric (the upper objective is not convex in lambda)."""
        uniform = torch.full((S,), 1.0 / S, dtype=dtype, device=self.device_)
        vertices = list(torch.eye(S, dtype=dtype, device=self.device_))
        return self._best_of(prob, [uniform] + vertices)

    @staticmethod
    def _best_of(prob, candidates):
        best, best_value = None, math.inf
        start = [p.detach().clone() for p in prob.params]
        for lam in candidates:
            _copy_params(prob.params, start)
            prob.solve(lam)
            value = prob.fair_value()
            if value < best_value:
                best, best_value = lam.clone(), value
        return best

    # ---------------------------------------------------------------- evaluation
    def fairness_objective(self, X, y, *, sensitive_features=None):
        """The fitted model's differentiable fairness metric (the upper objective) on
        ``(X, y)`` with unit sample weights.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sensitive_features : array-like, optional
            Required unless ``sensitive_feature_ids`` was set; labels must be groups seen
            in ``fit``.

        Returns
        -------
        float
            For the regressor's individual fairness, pairs are sub-sampled (seed 0) when
            there are more than ``max_pairs``.
        """
        check_is_fitted(self, "module_")
        if self.sensitive_feature_ids is not None:
            if sensitive_features is not None:
                raise ValueError("Pass sensitive_features or set sensitive_feature_ids, "
                                 "not both.")
            positions = resolve_column_ids(X, self.sensitive_feature_ids)
            A = np.asarray(X)[:, positions]
        else:
            A = sensitive_features
        if A is None:
            raise ValueError("fairness_objective needs sensitive_features (or "
                             "sensitive_feature_ids) to define the groups.")
        Xv = self._validate_predict_X(X)
        n = Xv.shape[0]
        frame = check_sensitive_features(A, n)
        ids, labels = encode_groups(frame, n)
        index = {lab: k for k, lab in enumerate(self.groups_.tolist())}
        unknown = [lab for lab in labels.tolist() if lab not in index]
        if unknown:
            raise ValueError(f"sensitive_features has groups {unknown} not seen in fit "
                             f"(known groups: {self.groups_.tolist()}).")
        g = np.array([index[lab] for lab in labels.tolist()], dtype=np.int64)[ids]
        mod = self.module_
        dtype, dev = mod.lam.dtype, self.device_
        y = np.asarray(y).reshape(-1)
        if y.shape[0] != n:
            raise ValueError(f"y has {y.shape[0]} rows but X has {n}.")
        if self._estimator_kind == "classifier":
            pos = np.searchsorted(self.classes_, y)
            pos = np.clip(pos, 0, len(self.classes_) - 1)
            if not np.all(self.classes_[pos] == y):
                raise ValueError("y contains labels not seen in fit.")
            yt = torch.as_tensor(pos, dtype=torch.long, device=dev)
        else:
            yt = (torch.as_tensor(y.astype(np.float64), dtype=dtype, device=dev)
                  - mod.y_mean) / mod.y_scale
        gt = torch.as_tensor(g, device=dev)
        pairs = None
        if self.fairness == "individual_fairness" and self._estimator_kind == "regressor":
            gen = torch.Generator(device=dev)
            gen.manual_seed(0)
            pairs = _sample_pairs(gt, self.n_groups_, self.max_pairs, gen)
            pairs = (pairs[0], pairs[1], pairs[2].to(dtype))
        with torch.no_grad():  # outputs over row chunks: no float64 copy of X
            out = torch.as_tensor(self._predict_array(Xv, mod.net), dtype=dtype,
                                  device=dev).reshape(n, -1)
            value = _fairness_value(self.fairness, out, yt, gt, None, self.n_groups_,
                                    kind=self._estimator_kind, rho=self.rho, pairs=pairs)
        return float(value)


_NO_ROWS = torch.zeros(0, dtype=torch.long)


@torch.no_grad()
def _copy_params(params, values):
    for p, value in zip(params, values, strict=True):
        p.copy_(value)


def _lambda_record(lam):
    return {f"lambda_{a}": float(x) for a, x in enumerate(lam.detach().cpu().tolist())}


def _balanced_sampler(data, n_groups, batch_size, generator, *, full=False):
    """Engine sampler: one batch per epoch. ``full``: every row (BADR-GD). Otherwise
    ``batch_size // S`` rows of every group (the first ``batch_size % S`` groups one
    more), drawn without replacement within the batch (all rows of a smaller group)."""
    dev = data.device
    if full:  # the step reads the full split itself: no batch copy of X
        nothing = _NO_ROWS.to(dev)
        return lambda epoch: [nothing]
    rows = data.group_indices()
    quota = [batch_size // n_groups + (1 if a < batch_size % n_groups else 0)
             for a in range(n_groups)]

    def sampler(epoch):
        parts = []
        for a, r in enumerate(rows):
            m = min(quota[a], r.shape[0])
            if m >= r.shape[0]:
                parts.append(r)
            else:
                parts.append(r[torch.randperm(r.shape[0], generator=generator,
                                              device=dev)[:m]])
        return [torch.cat(parts)]

    return sampler


class _BADROracle:
    """Upper objective V(lambda) = Fair(w(lambda)) and its implicit hypergradient."""

    name = "upper"

    def __init__(self, prob):
        self.prob = prob

    def value(self, lam):
        iters = self.prob.solve(lam)
        return self.prob.fair_value(), iters

    def gradient(self, lam):
        return self.prob.hypergradient(lam)


class _MinimaxOracle:
    """Minus the dual function of min_w max_a F_a(w): ``-D(lam) = -min_w sum lam_a F_a``,
    gradient ``-F(w(lam))`` (Danskin); its minimiser on the simplex is the minimax
    group weighting."""

    name = "minus_dual"

    def __init__(self, prob):
        self.prob = prob

    def value(self, lam):
        iters = self.prob.solve(lam)
        return -float((lam * self.prob.group_risks()).sum()), iters

    def gradient(self, lam):
        risks = self.prob.group_risks()
        return (-float((lam * risks).sum()), -risks,
                {"max_group_risk": float(risks.max())})


_COMMON_DOC = """
    model : {"linear", "mlp"}, default="linear"
        The lower-level model: an affine model (logistic / least-squares regression on
        the features plus an unpenalised intercept), solved in float64, or a multi-layer
        perceptron (``hidden_layer_sizes``, ``activation``), solved in float32. The
        affine model keeps X in float32 and works over row chunks (gradients, Hessian
        and outputs accumulated in float64), so a fit needs O(n) memory beyond X.
    hidden_layer_sizes : tuple of int, default=(32,)
        Hidden widths of the MLP (``model="mlp"`` only).
    activation : str, default="tanh"
        Hidden activation of the MLP. A smooth one (tanh, softplus, gelu) gives
        meaningful Hessian-vector products.
    alpha : float, default=1e-2
        L2 penalty ``alpha/2 ||W||^2`` on the weight matrices (not the intercepts/biases)
        in every group risk. Must be > 0 for the linear model (strong convexity).
    rho : float, default=10.0
        Smoothing of the max/min over groups in the rate-based metrics
        (log-mean-exp); larger is closer to the hard max - min but less smooth.
    group_weights : None, str or array-like, default=None
        None learns the group weights by BADR. Otherwise the weights are fixed and only
        the lower level is solved (the paper's baselines): "uniform" (1/S per group),
        "balanced" (proportional to 1/n_a), "pooled" (proportional to n_a: ordinary
        pooled ERM), "minimax" (the weights of min_w max_a F_a(w), by projected dual
        ascent), "one_group" (the vertex e_a whose model has the smallest training
        metric), or an explicit vector of S non-negative weights in the order of
        ``groups_`` (normalised to sum to 1).
    solver : {"exact", "gd", "sgd"}, default="exact"
        How lambda is learned (see the module notes): implicit hypergradient with exact
        lower solves and projected gradient with line search, BADR-GD (full-batch
        single loop) or BADR-SGD (balanced mini-batches).
    init : {"best", "uniform"}, default="best"
        Starting lambda of the learned weights (all solvers): "uniform" (1/S, the
        toolbox), or "best": whichever of the uniform weights and the S vertices gives
        the smaller training metric (S + 1 extra lower-level solves). The upper
        objective is not convex in lambda; on Adult, individual fairness has minima at
        both vertices and descent from uniform can end in the worse one.
    max_iter : int, default=200
        Outer iterations (exact, minimax) or iterations of the GD/SGD recursion. One
        engine epoch is one iteration.
    batch_size : int, default=256
        BADR-SGD batch: ``batch_size // S`` rows of every group per iteration.
    step_w : float, default=0.1
        Step on the model parameters (BADR-GD/SGD).
    step_v : float or None, default=None
        Step on the auxiliary vector v; None uses ``step_w`` (as the toolbox does).
    step_lambda : float, default=1.0
        Step on lambda (GD/SGD), and the initial step of the exact solver's line search.
    clip : float or None, default=1.0
        Norm bound of the lambda direction ``J^T v`` (centred) in BADR-GD/SGD; None
        disables clipping.
    fairness_gradient : {"full", "batch"}, default="full"
        Where BADR-SGD evaluates ``grad Fair``: on the full training split (the
        toolbox's choice) or on the mini-batch (cheaper per iteration, noisier).
    average_lambda : bool, default=True
        BADR-SGD: refit at the average of lambda over the second half of the iterations
        (Polyak-Ruppert averaging; damps the noise of constant steps). False uses the
        last iterate, as the toolbox does.
    lower_max_iter : int, default=100
        Iterations per lower-level solve (Newton for the linear model, L-BFGS for the
        MLP).
    tol : float, default=1e-6
        The exact and minimax solvers stop when lambda moves less than ``tol``
        (max-norm) in an iteration.
    sensitive_feature_ids : str, int or list, default=None
        Names or indices of columns of X holding the sensitive features (instead of the
        ``sensitive_features`` argument of ``fit``).
    drop_sensitive : bool, default=True
        With ``sensitive_feature_ids``: remove those columns from the model's inputs.
    warm_start : bool, default=False
        Start the next ``fit`` from the fitted model and group weights.
    verbose : int, default=0
        1 shows a progress bar over iterations.
    device : str, default="cpu"
        "cpu", "cuda", "cuda:<i>" or "auto". (On "mps" the linear model runs in
        float32, as MPS has no float64.)
    random_state : int, RandomState, Generator or None, default=None
        Seeds the MLP initialisation, the BADR-SGD batches and the pair sample of the
        regressor's individual fairness. The linear exact solver is deterministic.
"""

_ATTRIBUTES_DOC = """
    group_weights_ : ndarray of shape (n_groups,)
        The learned (or fixed) lambda on the simplex, in the order of ``groups_``.
    groups_ : ndarray
        Group labels seen in fit (``[None]`` when fitted without sensitive features).
    n_groups_ : int
    fairness_aware_ : bool
        False when fitted without sensitive features (then lambda = [1]: plain ERM).
    fairness_objective_ : float
        The upper objective (the differentiable metric) of the final model on the
        training data.
    coef_, intercept_ : ndarray
        The linear model (``model="linear"`` only), in the units of X and y.
    module_ : torch.nn.Module
        The network (``module_.net``) and the BADR state buffers.
    history_ : list of dict
        One dict per iteration. exact: ``upper`` (V(lambda)), ``entropy`` of lambda,
        ``hypergrad_norm``, ``v_norm``, ``fair_grad_norm``, ``step_lambda``,
        ``lambda_change``, ``lower_iter``, ``lambda_<a>``. gd/sgd: ``upper``
        (Fair(w_t)), ``lower`` (batch lower objective), ``entropy``, ``grad_norm``,
        ``v_norm``, ``hypergrad_norm`` (||J^T v||, before clipping), ``fair_grad_norm``,
        ``clipped_fraction`` (running), ``lambda_<a>``; and ``seconds``. minimax:
        ``minus_dual`` instead of ``upper``. Empty for fixed group weights.
    n_iter_ : int
        Iterations of the lambda loop (``len(history_)``); with fixed group weights,
        the iterations of the final lower-level solve.
    n_features_in_, feature_names_in_
        As in scikit-learn.
"""

_NOTES_DOC = """
    Differences from the paper's toolbox (``badr`` 0.1.2, GPL; not used here):

    * the intercept is part of the model everywhere (metric, lower objective,
      hypergradient) and is not penalised; the toolbox drops it in the metrics and the
      implicit gradient;
    * the linear lower level is solved by Newton's method in float64 (the toolbox uses
      scikit-learn); the regressor standardises y internally (as the toolbox's ridge),
      so its metrics are in units of the standard deviation of y;
    * smoothing: rate gaps use the smooth range ``LME_rho(r) + LME_rho(-r)``
      (log-*mean*-exp), which tends to ``max - min`` (fairlearn's difference) as
      ``rho -> inf`` and to 0 for equal rates; the toolbox's log-sum-exp adds about
      ``log(S)/rho``. Probabilities are ``sigmoid(logit)``, without the toolbox's
      temperature. Equalized odds combines the TPR and FPR gaps with a smooth max
      (the toolbox averages them);
    * disparate mistreatment is ``1/2 sum_a cov(1[g = a], s)^2`` with the score ``s``
      (logit or prediction): equal to the toolbox's ``cov(g, s)^2`` for two groups and
      independent of the label order for more (the toolbox uses the group index as a
      number);
    * individual fairness keeps the toolbox's normaliser over ordered pairs; the
      classifier computes it exactly in O(n) (per-class sums), the regressor on at most
      ``max_pairs`` sampled pairs, drawn once per fit;
    * BADR-SGD/GD centre ``J^T v`` before clipping (projection onto the simplex ignores
      the common component, so only clipping changes); ``step_v`` may differ from
      ``step_w``; BADR-SGD averages lambda over the second half of the run
      (``average_lambda``); BADR-GD, the exact projected-gradient solver and the MLP
      lower level are not in the toolbox;
    * ``init="best"`` starts from the best of the uniform weights and the vertices (the
      toolbox starts at uniform);
    * the minimax baseline is found by projected dual ascent (no CVXPY).
"""


class BADRClassifier(FairClassifierMixin, _BADRBase):
    __doc__ = """Fair classifier by bilevel adaptive rescalarisation of group risks (BADR).

    Learns group weights lambda on the simplex such that the model trained on
    ``sum_a lambda_a F_a`` (``F_a``: mean logistic loss of group ``a`` plus an L2 term)
    minimises a differentiable fairness metric. Every candidate model is
    Pareto-efficient for the group risks. Binary and multi-class (softmax) targets.

    Parameters
    ----------
    fairness : str, default="demographic_parity"
        The upper-level metric: "demographic_parity" (smooth range of the group mean
        probabilities), "equal_opportunity" (of the true-positive rates),
        "equalized_odds" (smooth max of the TPR and FPR ranges), "group_variance"
        (variance over groups of the group mean losses), "disparate_mistreatment"
        (covariance of group and logit) or "individual_fairness" (Berk et al.). For
        multi-class targets the rate metrics are one-vs-rest with a smooth max over
        classes; the last two need a binary target.""" + _COMMON_DOC + """
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)""" + _ATTRIBUTES_DOC + """
    See Also
    --------
    BADRRegressor : the same for least-squares regression.
    FairMLPClassifier : the penalised (Lagrangian) single-level baseline.

    Notes
    -----""" + _NOTES_DOC + """
    References
    ----------
    S. Tanji, S. Vaiter, Y. Laguel. Fairness-informed Pareto Optimization: An Efficient
    Bilevel Framework. arXiv:2601.13448, 2026.

    R. Berk et al. A Convex Framework for Fair Regression. FAT/ML 2017.

    Examples
    --------
    >>> from skfairbilevel import BADRClassifier
    >>> from skfairbilevel.datasets import make_biased_classification
    >>> X, y, A = make_biased_classification(1000, random_state=0)
    >>> clf = BADRClassifier(fairness="demographic_parity").fit(X, y, sensitive_features=A)
    >>> clf.group_weights_.round(2).sum()
    np.float64(1.0)
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    """

    _parameter_rules = {"fairness": one_of(*CLASSIFIER_FAIRNESS)}

    def __init__(self, fairness="demographic_parity", *, model="linear",
                 hidden_layer_sizes=(32,), activation="tanh", alpha=1e-2, rho=10.0,
                 group_weights=None, solver="exact", init="best", max_iter=200,
                 batch_size=256,
                 step_w=0.1, step_v=None, step_lambda=1.0, clip=1.0,
                 fairness_gradient="full", average_lambda=True, lower_max_iter=100,
                 tol=1e-6, sensitive_feature_ids=None, drop_sensitive=True, warm_start=False,
                 verbose=0, device="cpu", random_state=None):
        self.fairness = fairness
        self.model = model
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.alpha = alpha
        self.rho = rho
        self.group_weights = group_weights
        self.solver = solver
        self.init = init
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.step_w = step_w
        self.step_v = step_v
        self.step_lambda = step_lambda
        self.clip = clip
        self.fairness_gradient = fairness_gradient
        self.average_lambda = average_lambda
        self.lower_max_iter = lower_max_iter
        self.tol = tol
        self.sensitive_feature_ids = sensitive_feature_ids
        self.drop_sensitive = drop_sensitive
        self.warm_start = warm_start
        self.verbose = verbose
        self.device = device
        self.random_state = random_state


class BADRRegressor(FairRegressorMixin, _BADRBase):
    __doc__ = """Fair regressor by bilevel adaptive rescalarisation of group risks (BADR).

    Learns group weights lambda on the simplex such that the model trained on
    ``sum_a lambda_a F_a`` (``F_a``: mean squared error of group ``a`` plus an L2 term)
    minimises a differentiable fairness metric. Every candidate model is
    Pareto-efficient for the group risks. y is standardised internally.

    Parameters
    ----------
    fairness : str, default="demographic_parity"
        The upper-level metric: "demographic_parity" (smooth range of the group mean
        predictions), "group_variance" (variance over groups of the group MSEs),
        "disparate_mistreatment" (covariance of group and prediction) or
        "individual_fairness" (Berk et al., on sampled pairs). All in units of the
        standard deviation of y.""" + _COMMON_DOC + """
    max_pairs : int, default=100000
        Individual fairness uses every cross-group pair when there are at most this
        many, otherwise a sample of about this many pairs drawn once per fit.

    Attributes
    ----------""" + _ATTRIBUTES_DOC + """
    See Also
    --------
    BADRClassifier : the same for classification.

    Notes
    -----""" + _NOTES_DOC + """
    References
    ----------
    S. Tanji, S. Vaiter, Y. Laguel. Fairness-informed Pareto Optimization: An Efficient
    Bilevel Framework. arXiv:2601.13448, 2026.

    R. Berk et al. A Convex Framework for Fair Regression. FAT/ML 2017.

    Examples
    --------
    >>> import numpy as np
    >>> from skfairbilevel import BADRRegressor
    >>> rng = np.random.default_rng(0)
    >>> A = rng.integers(0, 2, 500)
    >>> X = rng.normal(size=(500, 3)) + A[:, None]
    >>> y = X @ [1.0, 2.0, 0.5] + A + rng.normal(size=500)
    >>> reg = BADRRegressor().fit(X, y, sensitive_features=A)
    >>> reg.predict(X[:3]).shape
    (3,)
    """

    _parameter_rules = {"fairness": one_of(*REGRESSOR_FAIRNESS)}

    def __init__(self, fairness="demographic_parity", *, model="linear",
                 hidden_layer_sizes=(32,), activation="tanh", alpha=1e-2, rho=10.0,
                 group_weights=None, solver="exact", init="best", max_iter=200,
                 batch_size=256,
                 step_w=0.1, step_v=None, step_lambda=1.0, clip=1.0,
                 fairness_gradient="full", average_lambda=True, lower_max_iter=100,
                 tol=1e-6, max_pairs=100_000, sensitive_feature_ids=None,
                 drop_sensitive=True, warm_start=False, verbose=0, device="cpu",
                 random_state=None):
        self.fairness = fairness
        self.model = model
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.alpha = alpha
        self.rho = rho
        self.group_weights = group_weights
        self.solver = solver
        self.init = init
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.step_w = step_w
        self.step_v = step_v
        self.step_lambda = step_lambda
        self.clip = clip
        self.fairness_gradient = fairness_gradient
        self.average_lambda = average_lambda
        self.lower_max_iter = lower_max_iter
        self.tol = tol
        self.max_pairs = max_pairs
        self.sensitive_feature_ids = sensitive_feature_ids
        self.drop_sensitive = drop_sensitive
        self.warm_start = warm_start
        self.verbose = verbose
        self.device = device
        self.random_state = random_state
