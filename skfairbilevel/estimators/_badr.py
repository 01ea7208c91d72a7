"""The BADR algorithm shared by :class:`~skfairbilevel.estimators.badr.BADRClassifier`
and :class:`~skfairbilevel.estimators.badr.BADRRegressor`.

With S groups and the group risks ``F_a(w) = mean loss of group a + alpha/2 ||coef||^2``,
BADR looks for the fairest point of the Pareto front of (F_1, ..., F_S)::

    min_{lambda in simplex}  V(lambda) = Fair(w(lambda))
    s.t.                     w(lambda) = argmin_w  sum_a lambda_a F_a(w)

with ``dV/dlambda_a = <grad F_a(w), v>``, ``v = -H^{-1} grad_w Fair(w)``. The solver
"exact" takes projected gradient steps on lambda with an Armijo line search (exact lower
solves); "gd" / "sgd" run the single-loop recursion on (w, v, lambda). All end with a
refit at the learned lambda. The problem and its solvers are
:class:`skfairbilevel.nn.group_risk.GroupRiskProblem`.
"""

import math

import numpy as np
import torch
from numpy.typing import ArrayLike
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .._params import any_of, array_of, layer_sizes, number, one_of
from ..base import BaseFairEstimator
from ..nn.bilevel import project_simplex
from ..nn.engine import StopWhen, TensorData, balanced_batches
from ..nn.group_risk import (
    ARMIJO,
    BISECTION_HALVINGS,
    MAX_BACKTRACK,
    GroupRiskProblem,
    GroupWeightedModule,
    MinimaxOracle,
    UpperOracle,
    copy_params,
    entropy,
    fixed_group_weights,
)
from ..nn.modules import ACTIVATIONS, layer_widths, make_mlp
from ..nn.smooth_fairness import (
    sample_pairs,
    smooth_fairness,
)

__all__ = ["BADRBase", "BASELINES"]

BASELINES = ("uniform", "balanced", "pooled", "minimax", "one_group")


class BADRBase(BaseFairEstimator):
    """Shared implementation of BADRClassifier and BADRRegressor."""

    _parameter_rules = {
        "model": one_of("linear", "mlp"),
        "hidden_layer_sizes": layer_sizes(allow_empty=False),
        "activation": one_of(*ACTIVATIONS),
        "alpha": number(0),
        "rho": number(0, low_open=True),
        "group_weights": any_of(
            one_of(None, *BASELINES),
            array_of(number(0), nonzero=True),
            hint=f"None, one of {BASELINES} or a 1-D array-like of "
            f"finite, non-negative group weights, not all zero "
            f"(they are normalised to sum to 1)",
        ),
        "solver": one_of("exact", "gd", "sgd"),
        "max_iter": number(1, integer=True),
        "batch_size": number(1, integer=True),
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
        "score_tolerance": number(
            0,
            none=True,
            hint="a finite float >= 0 (the training score the learned group weights may "
            "lose against uniform weights) or None (the pure bilevel solution)",
        ),
    }

    _learning_rates = ("step_w", "step_v", "step_lambda")
    _needs_every_group = True

    def _check_method_params(self):
        if self.model == "linear" and self.alpha == 0:
            raise ValueError(
                f"alpha=0 with model='linear': the lower level must be strongly convex for "
                f"the hypergradient to exist (and the logistic loss has no minimiser on "
                f"separable data). Use alpha > 0, e.g. {type(self).__name__}(alpha=1e-2)."
            )

    # ---------------------------------------------------------------- model
    def _build_module(self, n_features, n_outputs):
        dtype = (
            torch.float64
            if self.model == "linear" and self.device_.type != "mps"
            else torch.float32
        )
        if self.model == "linear":
            net = nn.Linear(n_features, n_outputs)
            with torch.no_grad():
                net.weight.zero_()
                net.bias.zero_()
        else:
            net = make_mlp(
                n_features,
                layer_widths(self.hidden_layer_sizes),
                n_outputs,
                activation=self.activation,
                generator=self._init_generator(),
            )
        return GroupWeightedModule(net.to(dtype), self.n_groups_, dtype)

    @property
    def _predict_dtype(self):
        return self.module_.lam.dtype

    # ---------------------------------------------------------------- fit
    def _fit_torch(self, train, val):
        mod, S, kind = self.module_, self.n_groups_, self._estimator_kind
        dtype = mod.lam.dtype
        if (
            self.fairness_aware_
            and kind == "classifier"
            and len(self.classes_) > 2
            and self.fairness in ("disparate_mistreatment", "individual_fairness")
        ):
            raise ValueError(
                f"fairness={self.fairness!r} needs a binary target (a scalar score per "
                f"row); y has {len(self.classes_)} classes. Use 'demographic_parity', "
                f"'equal_opportunity', 'equalized_odds' or 'group_variance'."
            )
        # X stays float32: the affine model upcasts row chunks (no float64 copy of X)
        w = None if train.w is None else train.w.to(dtype)
        y = mod.standardise(train.y.to(dtype), w) if kind == "regressor" else train.y
        data = TensorData(train.features, y, train.g, w, n_groups=S, index=train.index)
        pairs = (
            sample_pairs(train.g, S, self.max_pairs, self._gen, dtype=dtype)
            if (
                self.fairness_aware_
                and self.fairness == "individual_fairness"
                and kind == "regressor"
            )
            else None
        )
        prob = GroupRiskProblem(
            mod.net,
            data,
            data.y,
            data.g,
            data.w,
            S,
            kind=kind,
            alpha=self.alpha,
            fairness=self.fairness,
            rho=self.rho,
            pairs=pairs,
            lower_max_iter=self.lower_max_iter,
        )
        if mod.lam.shape[0] != S:  # warm start with another number of groups
            mod.lam = torch.full((S,), 1.0 / S, dtype=dtype, device=self.device_)
        lam = (
            self._initial_lambda(data, S, dtype)
            if self.fairness_aware_
            else torch.ones(1, dtype=dtype, device=self.device_)
        )
        with torch.no_grad():
            mod.lam.copy_(lam)
        gw, vertices = self.group_weights, list(torch.eye(S, dtype=dtype, device=self.device_))
        uniform = torch.full((S,), 1.0 / S, dtype=dtype, device=self.device_)
        floor = None
        if self.fairness_aware_ and gw is None:
            resumed = (
                self.warm_start
                and getattr(self, "group_weights_", None) is not None
                and len(self.group_weights_) == S
            )
            if self.score_tolerance is not None:  # the budget: a floor on the score
                prob.solve(uniform)
                floor = prob.score() - float(self.score_tolerance)
            if self.init == "best" and not resumed:
                start = (
                    prob.best_of([uniform] + vertices)
                    if floor is None
                    else self._best_within_budget(prob, uniform, vertices, floor)
                )
                with torch.no_grad():
                    mod.lam.copy_(start)
            prob.solve(mod.lam)
            if floor is not None and prob.score() < floor:  # a warm start outside
                self._back_within_budget(prob, uniform, floor)
            if self.solver == "exact":
                self._run_exact(prob, UpperOracle(prob, floor))
            else:
                self._run_single_loop(prob, data, floor)
        elif self.fairness_aware_ and isinstance(gw, str) and gw in ("minimax", "one_group"):
            if gw == "minimax":
                prob.solve(mod.lam)
                self._run_exact(prob, MinimaxOracle(prob))
            else:  # the vertex whose model has the smallest training metric
                vertex = prob.best_of(vertices)
                with torch.no_grad():
                    mod.lam.copy_(vertex)
        refit_iter = 0 if self.interrupted_ else prob.solve(mod.lam)  # the final refit
        if floor is not None and prob.score() < floor:  # GD/SGD: back within the budget
            self._back_within_budget(prob, uniform, floor)
        self.group_weights_ = mod.lam.detach().cpu().numpy().astype(np.float64)
        self.fairness_objective_ = prob.fair_value() if self.fairness_aware_ else 0.0
        if self.model == "linear":
            self.coef_, self.intercept_ = mod.coefficients()
            if kind == "regressor":
                self.coef_, self.intercept_ = self.coef_[0], float(self.intercept_[0])
        # with fixed group weights there is no lambda loop: the refit's iterations
        return None if self.history_ else max(1, int(refit_iter))

    def _back_within_budget(self, prob, uniform, floor):
        """lambda moved towards ``uniform`` to the farthest point of their segment whose
        model scores at least ``floor`` (the model is left solved there)."""
        lam = self.module_.lam.detach().clone()
        prob.solve(uniform)
        lam = prob.farthest_feasible(uniform, lam, floor)  # solves: needs autograd
        with torch.no_grad():
            self.module_.lam.copy_(lam)

    @staticmethod
    def _best_within_budget(prob, uniform, vertices, floor):
        """Of the uniform weights (the model is solved there) and the farthest point
        within the budget towards each vertex, the one with the smallest training
        metric."""
        at_uniform = [p.detach().clone() for p in prob.params]
        best, best_value = uniform, prob.fair_value()
        for e in vertices:
            copy_params(prob.params, at_uniform)
            lam = prob.farthest_feasible(uniform, e, floor)
            value = prob.fair_value()
            if value < best_value:
                best, best_value = lam, value
        copy_params(prob.params, at_uniform)
        return best

    def _initial_lambda(self, data, S, dtype):
        dev, gw, old = self.device_, self.group_weights, getattr(self, "group_weights_", None)
        if gw is None or (isinstance(gw, str) and gw == "minimax"):
            if self.warm_start and old is not None and len(old) == S:
                return torch.as_tensor(old, dtype=dtype, device=dev)
            return torch.full((S,), 1.0 / S, dtype=dtype, device=dev)
        if isinstance(gw, str):
            return fixed_group_weights(gw, data.g, data.w, S, dtype)
        arr = np.asarray(gw, dtype=float)
        if arr.shape[0] != S:
            raise ValueError(
                f"group_weights has {arr.shape[0]} entries but the sensitive features "
                f"have {S} groups ({list(self.groups_)}); pass one weight per group, in "
                f"the order of groups_ (sorted labels)."
            )
        return torch.as_tensor(arr / arr.sum(), dtype=dtype, device=dev)

    # ---------------------------------------------------------------- solvers
    def _run_exact(self, prob, oracle):
        """Projected gradient on lambda with Armijo backtracking, one iteration of the
        engine per outer step, until lambda moves less than ``tol``; ``oracle`` gives
        the objective in lambda and its gradient."""
        mod, tol = self.module_, float(self.tol)
        # with a score budget, a trial outside it ends the search once lambda moves
        # less than the precision of the budget's bisection
        boundary = max(tol, 2.0**-BISECTION_HALVINGS)
        eta = float(self.step_lambda)
        converged = False

        def outer_step(_):
            nonlocal eta, converged
            lam = mod.lam.detach().clone()
            theta0 = [p.detach().clone() for p in prob.params]
            value, grad, info = oracle.gradient(lam)
            gc = grad - grad.mean()  # the simplex is orthogonal to 1: same projection
            step, accepted, moved, iters = eta, False, 0.0, 0
            for _ in range(MAX_BACKTRACK):
                lam_new = project_simplex(lam - step * gc)
                moved = float((lam_new - lam).abs().max())
                if moved <= tol:
                    break
                copy_params(prob.params, theta0)
                new_value, it = oracle.value(lam_new)
                iters += it
                if new_value <= value + ARMIJO * float(gc @ (lam_new - lam)):
                    accepted = True
                    break
                if new_value == math.inf and moved <= boundary:
                    break
                step *= 0.5
            with torch.no_grad():
                if accepted:
                    mod.lam.copy_(lam_new)
                    eta = 2.0 * step
                else:  # converged (lambda no longer moves): keep w(lambda)
                    copy_params(prob.params, theta0)
                    converged = True
            return {
                oracle.name: value,
                "entropy": entropy(lam),
                "hypergrad_norm": float(torch.linalg.vector_norm(gc)),
                "step_lambda": step,
                "lambda_change": moved if accepted else 0.0,
                "lower_iter": float(iters),
                **info,
                **_lambda_record(lam),
            }

        self._run(
            outer_step,
            max_iter=self.max_iter,
            callbacks=[StopWhen(lambda record: converged)],
            desc=f"{type(self).__name__} exact",
        )

    def _run_single_loop(self, prob, data, floor=None):
        """BADR-GD / BADR-SGD: one iteration of the engine per step of the recursion.
        With a score ``floor``, a lambda step is taken only while the current model
        scores at least the floor; otherwise lambda returns to its last such value."""
        mod, S = self.module_, self.n_groups_
        if self.solver == "sgd" and self.batch_size < S:
            raise ValueError(
                f"batch_size={self.batch_size} is smaller than the number of groups "
                f"({S}); BADR-SGD draws at least one row of every group per batch. Use "
                f"batch_size >= {S}."
            )
        step_w = float(self.step_w)
        step_v = float(self.step_w if self.step_v is None else self.step_v)
        step_l, clip = float(self.step_lambda), self.clip
        sampler = (
            None
            if self.solver == "gd"
            else balanced_batches(data.group_indices(), self.batch_size, self._gen)
        )
        batch_fairness = self.fairness_gradient == "batch"
        batch_pairs = prob.kind == "regressor" and prob.fairness == "individual_fairness"
        average = self.solver == "sgd" and self.average_lambda
        lam_sum, n_avg, n_iter, n_clipped = torch.zeros_like(mod.lam), 0, 0, 0
        last_ok = mod.lam.detach().clone()
        with torch.no_grad():
            mod.v.zero_()

        def recursion_step(epoch):
            nonlocal n_avg, n_iter, n_clipped
            batch = None if sampler is None else data.batch(sampler(epoch)[0])
            lam, v = mod.lam.detach().clone(), mod.v.detach().clone()
            if average and n_iter >= self.max_iter // 2:
                lam_sum.add_(lam)
                n_avg += 1
            pairs = (
                sample_pairs(batch.g, S, self.max_pairs, self._gen, dtype=prob.dtype)
                if batch is not None and batch_fairness and batch_pairs
                else None
            )
            lower, fair, g, fair_grad, hv, jtv = prob.single_loop_directions(
                lam, v, batch, batch_fairness=batch_fairness, pairs=pairs
            )
            with torch.no_grad():
                prob.descend(g, step_w)
                mod.v.copy_(v - step_v * (fair_grad + hv))
                dc = jtv - jtv.mean()
                norm = float(torch.linalg.vector_norm(dc))
                n_iter += 1
                if clip is not None and norm > clip:
                    dc = dc * (clip / norm)
                    n_clipped += 1
                if floor is None or prob.score() >= floor:
                    last_ok.copy_(lam)
                    mod.lam.copy_(project_simplex(lam - step_l * dc))
                else:  # outside the budget: back to the last lambda within it
                    mod.lam.copy_(last_ok)
            return {
                "upper": fair,
                "lower": lower,
                "entropy": entropy(lam),
                "grad_norm": float(torch.linalg.vector_norm(g)),
                "v_norm": float(torch.linalg.vector_norm(v)),
                "hypergrad_norm": norm,
                "fair_grad_norm": float(torch.linalg.vector_norm(fair_grad)),
                "clipped_fraction": n_clipped / n_iter,
                **_lambda_record(lam),
            }

        self._run(
            recursion_step, max_iter=self.max_iter, desc=f"{type(self).__name__} {self.solver}"
        )
        if average and not self.interrupted_ and n_avg > 0:
            with torch.no_grad():  # Polyak-Ruppert average of the second half
                mod.lam.copy_(project_simplex(lam_sum / n_avg))

    # ---------------------------------------------------------------- evaluation
    def fairness_objective(
        self, X: ArrayLike, y: ArrayLike, *, sensitive_features: ArrayLike | None = None
    ) -> float:
        """The fitted model's differentiable fairness metric (the upper objective) on
        ``(X, y)`` with unit sample weights.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The rows.
        y : array-like of shape (n_samples,)
            Their targets.
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
        if sensitive_features is None and self.sensitive_feature_ids is None:
            raise ValueError(
                "fairness_objective needs sensitive_features (or "
                "sensitive_feature_ids) to define the groups."
            )
        rows = self._prepare(X, y, sensitive_features, role="rows")
        mod, dev, dtype, kind = (
            self.module_,
            self.device_,
            self.module_.lam.dtype,
            self._estimator_kind,
        )
        g = torch.as_tensor(rows.g, device=dev)
        yt = (
            torch.as_tensor(rows.y, dtype=torch.long, device=dev)
            if kind == "classifier"
            else mod.standardised(torch.as_tensor(rows.y, dtype=dtype, device=dev))
        )
        pairs = (
            sample_pairs(
                g,
                self.n_groups_,
                self.max_pairs,
                torch.Generator().manual_seed(0),
                dtype=dtype,
            )
            if (self.fairness == "individual_fairness" and kind == "regressor")
            else None
        )
        with torch.no_grad():  # outputs over row blocks: no float64 copy of X
            out = torch.as_tensor(
                self._predict_array(rows.X, mod.net), dtype=dtype, device=dev
            ).reshape(len(rows), -1)
            value = smooth_fairness(
                self.fairness,
                out,
                yt,
                g,
                None,
                self.n_groups_,
                kind=kind,
                rho=self.rho,
                pairs=pairs,
            )
        return float(value)


def _lambda_record(lam):
    return {f"lambda_{a}": float(x) for a, x in enumerate(lam.detach().cpu().tolist())}
