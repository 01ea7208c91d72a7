"""The group-risk bilevel problem of BADR and its solvers.

With group risks ``F_a(w) = mean loss of group a + alpha/2 ||W||^2`` (a = 1 .. S):

    lower(lambda) = sum_a lambda_a F_a(w),      upper = Fair(w(lambda)),

for group weights ``lambda`` on the simplex. :class:`GroupRiskProblem` solves the lower
level exactly (damped Newton with Armijo backtracking in float64 for an affine model,
full-batch L-BFGS plus Newton-CG polish otherwise), evaluates the upper objective and
its implicit hypergradient ``dV/dlambda_a = <grad F_a(w), v>`` with
``v = -H^{-1} grad_w Fair(w)``, and gives the directions of the single-loop recursion on
``(w, v, lambda)``. The affine model works over row chunks of a float32 X
(:class:`ChunkedLinear`), so a float64 solve needs O(n) memory beyond X.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .bilevel import conjugate_gradient, flat_grad, flatten, hvp, unflatten_like
from .engine import row_chunks
from .losses import group_means
from .smooth_fairness import row_loss, smooth_fairness

__all__ = [
    "GroupRiskProblem",
    "GroupWeightedModule",
    "UpperOracle",
    "MinimaxOracle",
    "ChunkedLinear",
    "ChunkedXtMatmul",
    "solve_spd",
    "copy_params",
    "entropy",
    "fixed_group_weights",
    "ARMIJO",
    "MAX_BACKTRACK",
    "BISECTION_HALVINGS",
]

NEWTON_MAX_PARAMS = 2048  # affine models up to this many parameters use Newton + solve
CHUNK_ELEMENTS = 1 << 19  # row chunks of the affine model: ~512k entries (4 MB float64)
ARMIJO = 1e-4
MAX_BACKTRACK = 40
#: halvings of the bisection for the farthest point within a score budget (precision
#: 2**-10 of the segment); the budgeted line search stops at the first trial that
#: breaks the budget once lambda moves less than that
BISECTION_HALVINGS = 10


def solve_spd(H, b):
    """Solve ``H x = b`` for symmetric positive (semi-)definite H, robustly: Cholesky,
    then Cholesky with a growing diagonal jitter, then least squares."""
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
def copy_params(params, values):
    """Copy ``values`` into ``params`` in place."""
    for p, value in zip(params, values, strict=True):
        p.copy_(value)


def entropy(lam):
    """Shannon entropy of the weights ``lam`` (a float)."""
    lam = lam.detach().double()
    terms = torch.where(lam > 0, lam * torch.log(lam.clamp_min(1e-300)), torch.zeros_like(lam))
    return float(-terms.sum())


class ChunkedLinear(torch.autograd.Function):
    """``X @ W.T + b`` over row chunks of ``X`` (which may be float32 under a float64
    model): unlike ``F.linear`` on an upcast copy, autograd keeps only a reference to
    ``X``, and the backward pass ``dW = dout.T @ X`` runs over the same chunks
    (:class:`ChunkedXtMatmul`, itself differentiable, so double backward -
    Hessian-vector products - works in O(n) memory)."""

    @staticmethod
    def forward(ctx, X, weight, bias, prob):
        """``X @ weight.T + bias`` by chunks of rows."""
        ctx.prob = prob
        theta = torch.cat([weight, bias[:, None]], dim=1)
        return prob._affine(theta)

    @staticmethod
    def backward(ctx, grad_out):
        """Gradients of the weight (chunked ``R.T @ X``) and of the bias."""
        return None, ChunkedXtMatmul.apply(grad_out, ctx.prob), grad_out.sum(0), None


class ChunkedXtMatmul(torch.autograd.Function):
    """``R.T @ X`` (K, d) over row chunks of ``X`` for per-row ``R`` (n, K): the weight
    gradient of :class:`ChunkedLinear`. Its own backward, ``dR = X @ dG.T``, is a
    chunked linear map again, so a double-backward graph (Hessian-vector products)
    holds O(n) values, never the upcast chunks of X."""

    @staticmethod
    def forward(ctx, R, prob):
        """``R.T @ X`` by chunks of rows."""
        ctx.prob = prob
        acc = torch.zeros(R.shape[1], prob.X.shape[1], dtype=R.dtype, device=R.device)
        for start, xc in prob._row_chunks():
            acc.addmm_(R[start : start + xc.shape[0]].T, xc)
        return acc

    @staticmethod
    def backward(ctx, dG):
        """The gradient of ``R``: ``X @ dG.T``, a chunked linear map again."""
        prob = ctx.prob
        zero = torch.zeros(dG.shape[0], dtype=dG.dtype, device=dG.device)
        return ChunkedLinear.apply(prob.X, dG, zero, prob), None


class GroupRiskProblem:
    """The group-risk bilevel problem on the full training split (tensors on one device).

    ``lower(lam) = sum_a lam_a F_a(w)`` with ``F_a = group mean loss + alpha/2 ||W||^2``
    (every weight matrix; biases unpenalised), ``upper = Fair(w)``. Provides exact lower
    solves, the upper value and the implicit hypergradient.
    """

    def __init__(
        self,
        net,
        X,
        y,
        g,
        w,
        n_groups,
        *,
        kind,
        alpha,
        fairness,
        rho,
        pairs=None,
        lower_max_iter=100,
        newton=None,
    ):
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
        self.chunk = max(256, CHUNK_ELEMENTS // (X.shape[1] + 1))
        # sparse X: chunks of CSR rows multiplied as they are, sized by stored entries
        self.sparse = getattr(X, "is_sparse", False)
        if self.sparse:
            per_row = -(-int(X.features.col.shape[0]) // max(1, X.features.shape[0]))
            self.sparse_chunk = max(self.chunk, CHUNK_ELEMENTS // max(1, per_row))
        double = self.dtype == torch.float64
        self.grad_tol = 1e-11 if double else 1e-6
        self.cg_tol = 1e-12 if double else 1e-6
        if newton is None:
            newton = isinstance(net, nn.Linear) and self.n_params <= NEWTON_MAX_PARAMS
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
    def _row_chunks(self, dense=False):
        """``(start, X[start:start + chunk])`` in the compute dtype: the only copies of
        X the problem makes are one chunk at a time. Sparse X gives sparse CSR chunks
        (for the matrix products, ``chunk @ W.T`` and ``R.T @ chunk``) unless
        ``dense``."""
        sparse = self.sparse and not dense
        size = self.sparse_chunk if sparse else self.chunk
        for start, xc in row_chunks(self.X, size, sparse=sparse):
            yield start, xc.to(self.dtype)

    def _affine(self, theta):
        """``[X, 1] @ theta.T`` (n, K) for ``theta = [W | b]``, chunked, no graph."""
        with torch.no_grad():
            out = torch.empty(
                self.X.shape[0], theta.shape[0], dtype=self.dtype, device=self.X.device
            )
            W, b = theta[:, :-1], theta[:, -1]
            for start, xc in self._row_chunks():
                torch.addmm(b, xc, W.T, out=out[start : start + xc.shape[0]])
        return out

    def _rmatmul(self, R):
        """``R.T @ [X, 1]`` (K, d+1) for per-row ``R`` (n, K), chunked."""
        acc = torch.zeros(R.shape[1], self.X.shape[1], dtype=self.dtype, device=self.X.device)
        for start, xc in self._row_chunks():
            acc.addmm_(R[start : start + xc.shape[0]].T, xc)
        return torch.cat([acc, R.sum(0)[:, None]], dim=1)

    # ---------------------------------------------------------------- pieces
    def outputs(self):
        """Model outputs on the full training split. The affine model, and the first
        layer of an MLP whose rows are a :class:`~skfairbilevel.nn.engine.TensorData`,
        run over row chunks (:class:`ChunkedLinear`): no dense copy of X is made."""
        if self.chunked:
            return ChunkedLinear.apply(self.X, self.net.weight, self.net.bias, self)
        if torch.is_tensor(self.X):
            return self.net(self.X)
        first = self.net[0] if isinstance(self.net, nn.Sequential) else None
        if not isinstance(first, nn.Linear) or first.bias is None:
            return self.net(self.X.X)
        return self.net[1:](ChunkedLinear.apply(self.X, first.weight, first.bias, self))

    def group_losses(self, out, y=None, g=None, w=None):
        """(S,) group mean losses (no regulariser) of outputs ``out``: of the full
        training split when ``y`` is None, else of the batch ``(y, g, w)``."""
        if y is None:
            y, g, w = self.y, self.g, self.w
        means, _ = group_means(row_loss(out, y, self.kind), g, self.n_groups, w)
        return means

    def reg(self):
        """The L2 term ``alpha/2 ||W||^2`` over the weight matrices."""
        return 0.5 * self.alpha * sum((p**2).sum() for p in self.params if p.dim() > 1)

    def lower(self, lam):
        """The lower objective ``sum_a lam_a F_a(w)`` on the full training split."""
        return (lam * self.group_losses(self.outputs())).sum() + lam.sum() * self.reg()

    def fair(self, out, y=None, g=None, w=None, pairs=None):
        """The upper metric of outputs ``out``: of the full split, or of the rows ``(y, g, w)``."""
        full = y is None
        return smooth_fairness(
            self.fairness,
            out,
            self.y if full else y,
            self.g if full else g,
            self.w if full else w,
            self.n_groups,
            kind=self.kind,
            rho=self.rho,
            pairs=self.pairs if full else pairs,
        )

    @torch.no_grad()
    def fair_value(self):
        """The upper metric of the current model on the full split, as a float."""
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
        y = self.y[start : start + Z.shape[0]]
        if self.kind == "regressor":
            res = Z[:, 0] - y
            return res**2, (2.0 * res)[:, None], torch.full_like(res, 2.0), None
        if Z.shape[1] == 1:
            z, yf = Z[:, 0], y.to(Z.dtype)
            p = torch.sigmoid(z)
            loss = F.binary_cross_entropy_with_logits(z, yf, reduction="none")
            return loss, (p - yf)[:, None], p * (1.0 - p), None
        onehot = self.onehot[start : start + Z.shape[0]]
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
        H = torch.zeros(K * d1, K * d1, dtype=theta.dtype, device=theta.device) if hessian else None
        for start, xc in self._row_chunks(dense=True):
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
                    H[k * d1 : (k + 1) * d1, m * d1 : (m + 1) * d1].addmm_(xt.T, xt * wkm[:, None])
        f = f + 0.5 * alpha * (W**2).sum()
        pen = torch.cat([W, torch.zeros_like(theta[:, -1:])], dim=1)
        G = G + alpha * pen
        if not hessian:
            return f, G, None
        for k in range(K):  # the lower blocks of the symmetric softmax Hessian
            for m in range(k + 1, K):
                H[m * d1 : (m + 1) * d1, k * d1 : (k + 1) * d1] = H[
                    k * d1 : (k + 1) * d1, m * d1 : (m + 1) * d1
                ].T
        mask = torch.ones(K, d1, dtype=theta.dtype, device=theta.device)
        mask[:, -1] = 0.0
        H = H + torch.diag(alpha * mask.reshape(-1))
        return f, G, H

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
            step = solve_spd(H, G.reshape(-1)).reshape(theta.shape)
            dec = float((G * step).sum())
            if not math.isfinite(dec) or dec <= 0:
                break
            if dec <= 1e-13 * max(1.0, abs(float(f))):
                theta = theta - step
                break
            t, accepted = 1.0, False
            for _ in range(MAX_BACKTRACK):
                f_new, _, _ = self._pieces(theta - t * step, lam, hessian=False)
                if float(f_new) <= float(f) - ARMIJO * t * dec:
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
        opt = torch.optim.LBFGS(
            self.params,
            lr=1.0,
            max_iter=self.lower_max_iter,
            history_size=20,
            line_search_fn="strong_wolfe",
            tolerance_grad=self.grad_tol,
            tolerance_change=1e-32 if self.dtype == torch.float64 else 1e-10,
        )

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

            step = conjugate_gradient(
                matvec, g.detach(), max_iter=min(self.n_params, 100), tol=self.cg_tol
            )
            old = [p.detach().clone() for p in self.params]
            with torch.no_grad():
                for p, upd in zip(self.params, unflatten_like(step, self.params), strict=True):
                    p.sub_(upd)
            new_norm = float(torch.linalg.vector_norm(flat_grad(self.lower(lam), self.params)))
            if not new_norm < g_norm:
                copy_params(self.params, old)
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
                v = -solve_spd(H, gF.reshape(-1))
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

            v = -conjugate_gradient(
                matvec, gF.detach(), max_iter=max(50, min(self.n_params, 500)), tol=self.cg_tol
            )
            h = torch.autograd.grad(g @ v, lam_leaf)[0]
        info = {
            "v_norm": float(torch.linalg.vector_norm(v)),
            "fair_grad_norm": float(torch.linalg.vector_norm(gF)),
        }
        return float(fair.detach()), h.detach(), info

    def single_loop_directions(self, lam, v, batch=None, *, batch_fairness=False, pairs=None):
        """The directions of the single-loop recursion on ``(w, v, lambda)`` at the
        current model, all from the same iterate.

        The lower objective (and its gradient ``g``) is taken on the full split or on
        ``batch`` (a :class:`~skfairbilevel.nn.engine.Batch`); ``grad Fair`` on the full
        split, or on the batch with ``batch_fairness`` (``pairs``: the batch's pairs
        for a regressor's individual fairness).

        Returns
        -------
        lower, fair : Tensor
            The lower objective and the upper metric (detached).
        g, fair_grad, hv : Tensor
            Flat ``grad_w lower``, ``grad_w Fair`` and ``H v`` (``H`` the lower
            Hessian), detached.
        jtv : Tensor (S,)
            ``<grad F_a, v>`` for every group: ``J^T v``.
        """
        params = self.params
        lam_leaf = lam.clone().requires_grad_(True)
        if batch is None:  # every row, in order, straight from the problem (no copy)
            out = self.outputs()
            losses = self.group_losses(out)
        else:
            out = self.net(batch.x.to(self.dtype))
            losses = self.group_losses(out, batch.y, batch.g, batch.w)
        lower = (lam_leaf * (losses + self.reg())).sum()
        g = flat_grad(lower, params, create_graph=True)
        if batch is None:
            fair = self.fair(out)
            fair_grad = flat_grad(fair, params, retain_graph=True)
        elif batch_fairness:
            fair = self.fair(out, batch.y, batch.g, batch.w, pairs)
            fair_grad = flat_grad(fair, params, retain_graph=True)
        else:
            fair = self.fair(self.outputs())
            fair_grad = flat_grad(fair, params)
        second = torch.autograd.grad(g @ v, params + [lam_leaf], allow_unused=True)
        hv = flatten(
            [
                torch.zeros_like(p) if s is None else s
                for s, p in zip(second[:-1], params, strict=True)
            ]
        )
        return (
            lower.detach(),
            fair.detach(),
            g.detach(),
            fair_grad.detach(),
            hv.detach(),
            second[-1].detach(),
        )

    @torch.no_grad()
    def descend(self, direction, step):
        """``w <- w - step * direction`` for a flat ``direction``."""
        for p, upd in zip(self.params, unflatten_like(direction, self.params), strict=True):
            p.sub_(step * upd)

    @torch.no_grad()
    def score(self):
        """Training score of the current model on the problem's rows, sample weights
        included: accuracy (classifier) or R^2 (regressor)."""
        out = self.outputs()
        w = (
            torch.ones(out.shape[0], dtype=out.dtype, device=out.device)
            if self.w is None
            else self.w.to(out.dtype)
        )
        if self.kind == "regressor":
            y = self.y.to(out.dtype)
            mean = (w * y).sum() / w.sum()
            total = (w * (y - mean) ** 2).sum().clamp_min(torch.finfo(out.dtype).tiny)
            return float(1.0 - (w * (out[:, 0] - y) ** 2).sum() / total)
        pred = (out[:, 0] > 0).long() if out.shape[1] == 1 else out.argmax(1)
        return float((w * (pred == self.y).to(out.dtype)).sum() / w.sum())

    def farthest_feasible(self, start, end, floor, halvings=BISECTION_HALVINGS):
        """The point of the segment ``start + s (end - start)``, ``s`` in [0, 1],
        farthest from ``start`` whose lower solution scores at least ``floor``
        (:meth:`score`): ``end`` if it does, else a bisection on ``s`` with
        ``halvings`` halvings (``start`` is taken as feasible). The model must be solved
        at ``start``; it is left solved at the returned point."""
        at_start = [p.detach().clone() for p in self.params]
        self.solve(end)
        if self.score() >= floor:
            return end.clone()
        lo, hi, at_lo = 0.0, 1.0, at_start
        for _ in range(halvings):
            mid = 0.5 * (lo + hi)
            copy_params(self.params, at_lo)  # warm start from the last feasible point
            self.solve(start + mid * (end - start))
            if self.score() >= floor:
                lo, at_lo = mid, [p.detach().clone() for p in self.params]
            else:
                hi = mid
        copy_params(self.params, at_lo)
        return start + lo * (end - start)

    def best_of(self, candidates):
        """The candidate lambda whose lower solution has the smallest upper metric
        (every solve starts from the current model)."""
        best, best_value = None, math.inf
        start = [p.detach().clone() for p in self.params]
        for lam in candidates:
            copy_params(self.params, start)
            self.solve(lam)
            value = self.fair_value()
            if value < best_value:
                best, best_value = lam.clone(), value
        return best

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


class GroupWeightedModule(nn.Module):
    """A network plus the state of a group-weighted bilevel method, kept in buffers (so
    that the engine's snapshots, interrupt handling and pickling cover it): the group
    weights ``lam``, the auxiliary vector ``v`` of the single-loop recursion, and the
    target scaling of a regressor."""

    def __init__(self, net, n_groups, dtype):
        super().__init__()
        self.net = net
        n_params = sum(p.numel() for p in net.parameters())
        self.register_buffer("lam", torch.full((n_groups,), 1.0 / n_groups, dtype=dtype))
        self.register_buffer("v", torch.zeros(n_params, dtype=dtype))
        self.register_buffer("y_mean", torch.zeros((), dtype=dtype))
        self.register_buffer("y_scale", torch.ones((), dtype=dtype))

    def forward(self, x):
        """The network's output for ``x`` (in its dtype), in the units of the targets."""
        return self.net(x.to(self.lam.dtype)) * self.y_scale + self.y_mean

    @torch.no_grad()
    def standardise(self, y, w):
        """Store the (weighted) mean and standard deviation of ``y`` (1 when constant)
        as the target scaling, and return the standardised ``y``."""
        wv = torch.ones_like(y) if w is None else w
        mean = (wv * y).sum() / wv.sum()
        scale = torch.sqrt((wv * (y - mean) ** 2).sum() / wv.sum())
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        self.y_mean.copy_(mean)
        self.y_scale.copy_(scale)
        return (y - mean) / scale

    def standardised(self, y):
        """``y`` in the units of the stored target scaling."""
        return (y - self.y_mean) / self.y_scale

    @torch.no_grad()
    def coefficients(self):
        """``(coef, intercept)`` of an affine ``net`` in the units of the targets, as
        float64 numpy arrays."""
        W = self.net.weight.detach() * self.y_scale
        b = self.net.bias.detach() * self.y_scale + self.y_mean
        return (W.cpu().numpy().astype("float64"), b.cpu().numpy().astype("float64"))


def fixed_group_weights(name, g, w, n_groups, dtype):
    """The fixed weights of a baseline: "uniform" (and "one_group"'s start) 1/S,
    "balanced" proportional to 1 / (group weight), "pooled" proportional to the group
    weight (ordinary pooled ERM)."""
    wv = torch.ones_like(g, dtype=dtype) if w is None else w
    totals = torch.zeros(n_groups, dtype=dtype, device=g.device).index_add(0, g, wv)
    if name in ("uniform", "one_group"):
        lam = torch.ones(n_groups, dtype=dtype, device=g.device)
    elif name == "balanced":
        lam = 1.0 / totals
    else:
        lam = totals.clone()
    return lam / lam.sum()


class UpperOracle:
    """Upper objective V(lambda) = Fair(w(lambda)) and its implicit hypergradient.

    With a ``floor``, V is +inf where the lower solution's training score
    (:meth:`GroupRiskProblem.score`) is below it: a line search then never accepts a
    lambda outside the score budget.
    """

    name = "upper"

    def __init__(self, prob, floor=None):
        self.prob = prob
        self.floor = floor

    def value(self, lam):
        """``(V(lam), lower iterations)`` after solving the lower level at ``lam``."""
        iters = self.prob.solve(lam)
        if self.floor is not None and self.prob.score() < self.floor:
            return math.inf, iters
        return self.prob.fair_value(), iters

    def gradient(self, lam):
        """The implicit hypergradient at the solved ``lam``."""
        return self.prob.hypergradient(lam)


class MinimaxOracle:
    """Minus the dual function of min_w max_a F_a(w): ``-D(lam) = -min_w sum lam_a F_a``,
    gradient ``-F(w(lam))`` (Danskin); its minimiser on the simplex is the minimax
    group weighting."""

    name = "minus_dual"

    def __init__(self, prob):
        self.prob = prob

    def value(self, lam):
        """``(-D(lam), lower iterations)`` after solving the lower level at ``lam``."""
        iters = self.prob.solve(lam)
        return -float((lam * self.prob.group_risks()).sum()), iters

    def gradient(self, lam):
        """Danskin's gradient ``-F(w(lam))`` of ``-D`` at the solved ``lam``."""
        risks = self.prob.group_risks()
        return (-float((lam * risks).sum()), -risks, {"max_group_risk": float(risks.max())})
