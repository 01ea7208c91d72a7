"""FairRobustClassifier: training on worst-case input perturbations (Fast & Fair).

    min_theta  mean_i  max_{||delta_i|| <= radius}  loss(f_theta(x_i + delta_i), y_i)

On every mini-batch the inner maximisation is solved per sample by one of the solvers of
:mod:`skfairbilevel.nn.perturbation` (by default the trust-region subproblem on the
second-order model of the loss in the input); the outer minimisation is Adam on the loss
at the perturbed inputs (Danskin: the perturbation is treated as a constant).
"""

import warnings

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike
from torch.func import functional_call

from .._params import any_of, layer_sizes, number, one_of
from ..base import BaseFairEstimator, EpochTrainingMixin, FairClassifierMixin
from ..exceptions import FairnessWarning
from ..metrics import independence_gap, predictive_parity_gap, separation_gap
from ..nn.engine import Scores, descend
from ..nn.losses import cross_entropy_loss
from ..nn.modules import layer_widths, make_mlp
from ..nn.optim import make_adam
from ..nn.perturbation import affine_logistic_loss_grad, perturbation

__all__ = ["FairRobustClassifier"]

INNER_SOLVERS = ("trs", "pgd", "random", "exact", "none")
SMOOTH_ACTIVATIONS = ("tanh", "softplus", "sigmoid", "gelu")

# the signed gaps logged in history_
_GAP_KEYS = (
    "independence",
    "separation_y0",
    "separation_y1",
    "sufficiency_yhat1",
    "sufficiency_yhat0",
)


class FairRobustClassifier(FairClassifierMixin, EpochTrainingMixin, BaseFairEstimator):
    """Binary classifier trained on worst-case input perturbations (Fast & Fair).

    Minimises the mean over samples of the largest logistic loss within an L2 ball of
    ``radius`` around each input,
    ``min_theta mean_i max_{||delta_i|| <= radius} loss(f_theta(x_i + delta_i), y_i)``,
    on the argument of Fast & Fair that robustness to small input shifts reduces group
    disparities. The model is the paper's affine logistic model
    (``hidden_layer_sizes=()``) or a smooth MLP. On every mini-batch the inner solver
    finds each sample's perturbation; Adam then descends the loss at the perturbed
    inputs.

    The method itself does not use the sensitive features: it trains the same model
    with or without them, and ``fit`` does not warn when they are absent. When they are
    given (two groups) the signed fairness gaps of the paper are logged in
    ``history_`` after every epoch.

    Parameters
    ----------
    radius : float, default=0.05
        The trade-off knob: L2 radius of the per-sample input perturbation (in the units
        of X; standardise the features), sensible range 0-0.2 (the model degenerates to
        the majority class near 0.5 on Adult). 0 gives plain (non-robust) training.
        A larger radius lowers accuracy monotonically and moves the signed
        true-positive-rate gap (:func:`~skfairbilevel.metrics.separation_gap`), in a
        direction that depends on the data (up on Adult, down on German credit); it
        leaves demographic parity unchanged on Adult and credit default (user guide).
    inner_solver : {"trs", "pgd", "random", "exact", "none"}, default="trs"
        How the inner maximisation is solved:

        - "trs": the trust-region subproblem on the second-order Taylor model of the
          loss in the input, solved exactly for every sample of the batch at once (see
          :func:`~skfairbilevel.nn.trust_region.trust_region_step`). Input gradients
          and Hessians are closed forms for the affine model and ``torch.func`` (vmap
          of jacrev of grad) for an MLP;
        - "pgd": projected gradient ascent with the reference settings (start at 0,
          step 0.1 shrunk by 1.5 up to 40 times while the batch loss does not increase,
          projection per sample, stop when the step moves the batch's perturbations by
          less than 1e-4 or after 5000 iterations);
        - "random": a uniformly random point on the sphere of ``radius``;
        - "exact": the closed form of the affine model,
          ``delta = -radius (2y - 1) w / ||w||`` (only with ``hidden_layer_sizes=()``);
        - "none": plain training (same as ``radius=0``).
    trs_steps : int, default=3
        Second-order steps of "trs" on an MLP: the first solves the trust-region
        subproblem at x (the paper's single step); each further one is a Newton step
        for the maximiser of the true loss on the sphere ``||delta|| = radius``
        (Riemannian Newton from the input gradient and Hessian at the current point),
        kept by a sample only if it raises its loss. 1 is the paper's solver. Ignored
        by the affine model, whose subproblem solution is already the exact maximiser.
    hidden_layer_sizes : tuple of int, default=()
        Hidden widths; the empty tuple is the paper's affine (logistic) model.
    activation : {"tanh", "softplus", "sigmoid", "gelu"}, default="tanh"
        Hidden activation (twice differentiable, for the input Hessians).
    lr : float, default=1e-2
        Adam learning rate.
    weight_decay : float, default=0.0
        Adam L2 penalty.
    max_epochs : int, default=10
    batch_size : int, default=5
        The reference default (its Adult experiments use 100); larger batches are
        much faster per epoch.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows and stop when the (clean)
        validation loss stops improving; the best epoch's weights are kept.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=10
    tol : float, default=1e-4
    sensitive_feature_ids : str, int or list, default=None
        Columns of X holding the sensitive feature (instead of the ``sensitive_features``
        argument of ``fit``); only used for the gaps in ``history_``.
    drop_sensitive : bool, default=True
        With ``sensitive_feature_ids``: whether those columns are removed from the
        model's inputs.
    warm_start : bool, default=False
        Continue from the fitted weights on the next ``fit``.
    verbose : int, default=0
        1 shows a progress bar over epochs.
    device : str, default="cpu"
        "cpu", "cuda", "cuda:<i>" or "auto".
    random_state : int, RandomState, Generator or None, default=None
        Seeds the initial weights, the shuffling and the "random" perturbations.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        The class labels; ``classes_[1]`` is the positive class (y = 1 of the paper).
    groups_ : ndarray
        Group labels seen in fit (``[None]`` when fitted without sensitive features).
    n_groups_ : int
    fairness_aware_ : bool
        Always False: the training objective does not involve the groups.
    module_ : torch.nn.Module
        The trained network (outputs one logit).
    history_ : list of dict
        One dict per epoch: ``loss`` (mean robust training loss over the batches),
        ``inner_iter`` (mean iterations of the inner solver per batch: multiplier
        iterations for "trs" on an MLP, ascent iterations for "pgd", 0 for the closed
        forms), ``seconds``. With two
        groups, also the signed gaps of the predictions ``1[logit > 0]`` between group
        1 and group 0 (``groups_[1]`` minus ``groups_[0]``), on the training rows
        (prefix ``train_``) or, with early stopping, on the validation rows (prefix
        ``val_``, next to the usual validation metrics): ``accuracy``,
        ``independence`` (P(yhat=1 | s)), ``separation_y0`` / ``separation_y1``
        (false / true positive rates), ``sufficiency_yhat1`` / ``sufficiency_yhat0``
        (positive predictive value / false omission rate), and ``abs_<gap>``. An
        empty cell gives nan.
    n_iter_ : int
        Epochs run.
    n_features_in_, feature_names_in_
        As in scikit-learn.

    See Also
    --------
    FairMLPClassifier : the penalised (fairness-aware) baseline.
    skfairbilevel.nn.trust_region.trust_region_step : the batched trust-region solver.
    skfairbilevel.metrics.independence_gap, skfairbilevel.metrics.separation_gap,
    skfairbilevel.metrics.predictive_parity_gap : the signed gaps.
    skfairbilevel.datasets.make_unfair_2d : the paper's synthetic data.

    Notes
    -----
    The trust-region subproblem is solved exactly: the step is on the boundary whenever
    the second-order model of the loss is not concave, and the hard case is handled.
    For the affine model "trs" gives the closed form of "exact" (both are computed by
    :func:`~skfairbilevel.nn.perturbation.worst_case_affine`), and the outer step needs
    no autograd: the gradient of the logistic loss at the perturbed inputs is in closed
    form and Adam's fused kernel updates w and b held as one flat tensor.
    ``sample_weight`` weights the outer loss; the inner problems are per sample. The
    last, incomplete batch of an epoch is used.

    The differences from the paper and its reference code are listed in the user guide
    (:ref:`robust-differences`).

    References
    ----------
    .. [1] K. Minch, H. A. Vu, A. Warren, "Fast & Fair: Efficient Second-Order Robust
       Optimization for Fairness in Machine Learning", arXiv:2401.02012, 2024.
    .. [2] J. J. Moré, D. C. Sorensen, "Computing a trust region step", SIAM J. Sci.
       Stat. Comput. 4(3), 1983.

    Examples
    --------
    >>> from skfairbilevel import FairRobustClassifier
    >>> from skfairbilevel.datasets import make_unfair_2d
    >>> X, y, s = make_unfair_2d(100, random_state=0)
    >>> clf = FairRobustClassifier(radius=0.15, batch_size=20, max_epochs=20,
    ...                            random_state=0)
    >>> clf.fit(X, y, sensitive_features=s).predict_proba(X[:2]).shape
    (2, 2)
    >>> sorted(k for k in clf.history_[-1] if k.startswith("train_abs"))[:2]
    ['train_abs_independence', 'train_abs_separation_y0']
    """

    _binary_only = True

    _parameter_rules = {
        "radius": number(0, hint="a finite float >= 0 (the L2 radius of the input perturbation)"),
        "inner_solver": one_of(*INNER_SOLVERS),
        "trs_steps": number(1, integer=True),
        "hidden_layer_sizes": layer_sizes(),
        "activation": any_of(
            one_of(*SMOOTH_ACTIVATIONS),
            hint=(
                "one of {'tanh', 'softplus', 'sigmoid', 'gelu'} (a twice-differentiable "
                "activation: the trust-region solver uses input Hessians, which vanish almost "
                "everywhere for 'relu')"
            ),
        ),
        "lr": number(0, low_open=True),
        "weight_decay": number(0),
    }

    def __init__(
        self,
        radius=0.05,
        *,
        inner_solver="trs",
        trs_steps=3,
        hidden_layer_sizes=(),
        activation="tanh",
        lr=1e-2,
        weight_decay=0.0,
        max_epochs=10,
        batch_size=5,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        sensitive_feature_ids=None,
        drop_sensitive=True,
        warm_start=False,
        verbose=0,
        device="cpu",
        random_state=None,
    ):
        self.radius = radius
        self.inner_solver = inner_solver
        self.trs_steps = trs_steps
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.sensitive_feature_ids = sensitive_feature_ids
        self.drop_sensitive = drop_sensitive
        self.warm_start = warm_start
        self.verbose = verbose
        self.device = device
        self.random_state = random_state

    # ------------------------------------------------------------------ hooks
    def _uses_groups(self):
        # the objective ignores the groups; they are only logged (history_)
        return False

    def _check_method_params(self):
        self._check_solver(self.inner_solver)

    def _check_solver(self, solver):
        if solver not in INNER_SOLVERS:
            raise ValueError(
                f"inner_solver={solver!r} is not supported; use one of {INNER_SOLVERS}."
            )
        if solver == "exact" and not self._affine():
            raise ValueError(
                f"inner_solver='exact' is the closed form of the affine model and needs "
                f"hidden_layer_sizes=(); got hidden_layer_sizes="
                f"{self.hidden_layer_sizes!r}. Use inner_solver='trs' for an MLP."
            )

    # the training-time outputs (accuracy and gaps) read x only through the first Linear
    _sparse_outputs = True

    def _affine(self):
        return not layer_widths(self.hidden_layer_sizes)

    def _build_module(self, n_features, n_outputs):
        return make_mlp(
            n_features,
            layer_widths(self.hidden_layer_sizes),
            n_outputs,
            activation=self.activation,
            generator=self._init_generator(),
        )

    def _perturbation(self, x, y, solver, generator):
        return perturbation(
            solver,
            self.module_,
            x,
            y,
            self.radius,
            affine=self._affine(),
            trs_steps=self.trs_steps,
            generator=generator,
        )

    # ------------------------------------------------------------------ training
    def _fit_torch(self, train, val):
        solver = "none" if self.radius == 0 else self.inner_solver
        if self._affine():
            step, restore_params = self._affine_outer_step(solver, train.n_features)
        else:
            opt = make_adam(self.module_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            restore_params = None

            def step(b):
                with torch.no_grad():
                    delta, n_inner = self._perturbation(b.x, b.y, solver, self._gen)
                x = b.x if delta is None else b.x + delta
                loss = cross_entropy_loss(self.module_(x), b.y, b.w)
                descend(loss, opt)
                return {"loss": loss, "inner_iter": float(n_inner)}

        # without validation rows, the paper's gaps are logged on the training rows
        gaps = (
            [Scores(lambda record: self._gap_metrics(train, "train_"))]
            if self.n_groups_ == 2 and val is None
            else []
        )
        try:
            self._train_epochs(step, train, val, callbacks=gaps)
        finally:
            if restore_params is not None:
                restore_params()

    def _affine_outer_step(self, solver, d):
        """The training step of the affine model z = w'x + b without autograd.

        The gradient of the (weighted) mean logistic loss at the perturbed inputs
        x~ = x + delta (delta held constant) is in closed form
        (:func:`~skfairbilevel.nn.perturbation.affine_logistic_loss_grad`), and
        :class:`~skfairbilevel.nn.optim.LeanAdam` updates w and b stored as one flat
        tensor, whose two views are the Linear layer's weight and bias during the fit.
        With the closed-form inner solution the perturbed input is
        ``x + r (1 - 2y) w / ||w||``, formed in one fused operation.

        Returns the step and a function that gives the layer back its own storage.
        """
        lin = self.module_[-1]
        with torch.no_grad():
            theta = torch.cat([lin.weight.detach().reshape(-1), lin.bias.detach()])
        lin.weight.data = theta[:d].view(1, d)
        lin.bias.data = theta[d:]
        w, bias = theta[:d], theta[d:]
        theta.grad = torch.zeros_like(theta)
        grad_w, grad_b = theta.grad[:d], theta.grad[d:]  # views: the step writes here
        adam = make_adam([theta], lr=float(self.lr), weight_decay=float(self.weight_decay))
        r = float(self.radius)
        tiny = torch.finfo(theta.dtype).tiny
        closed_form = solver in ("exact", "trs")

        @torch.no_grad()
        def step(b):
            y = b.y.to(theta.dtype)
            n_inner = 0
            if closed_form:  # the exact inner maximiser
                coef = (1.0 - 2.0 * y) * (r / torch.linalg.vector_norm(w).clamp_min(tiny))
                x = torch.addcmul(b.x, coef[:, None], w[None, :])
            else:
                delta, n_inner = self._perturbation(b.x, b.y, solver, self._gen)
                x = b.x if delta is None else b.x + delta
            loss = affine_logistic_loss_grad(x, y, b.w, w, bias, grad_w, grad_b)
            adam.step()
            return {"loss": loss, "inner_iter": float(n_inner)}

        def restore_params():
            lin.weight.data = lin.weight.data.clone()
            lin.bias.data = lin.bias.data.clone()

        return step, restore_params

    def _validation_metrics(self, val):
        out = super()._validation_metrics(val)
        if self.n_groups_ == 2:
            out.update(self._gap_metrics(val, "val_"))
        return out

    @torch.no_grad()
    def _gap_metrics(self, data, prefix):
        """Accuracy and the paper's signed gaps (group 1 minus group 0) on ``data``."""
        pred = (self._outputs(data, self.module_)[:, 0] > 0).long().cpu().numpy()
        y = data.y.detach().cpu().numpy()
        g = data.g.detach().cpu().numpy()
        w = None if data.w is None else data.w.detach().cpu().numpy().astype(np.float64)
        out = {"accuracy": float(np.average(pred == y, weights=w))}
        if len(np.unique(g)) < 2:  # e.g. a validation split holding one group
            out.update(dict.fromkeys(_GAP_KEYS, float("nan")))
        else:
            out.update(_signed_gaps(y, pred, g, w))
        for key in _GAP_KEYS:
            out["abs_" + key] = abs(out[key])
        return {prefix + k: float(v) for k, v in out.items()}

    # ------------------------------------------------------------------ public helpers
    def _rows_as_tensors(self, X, y):
        rows = self._prepare(X, y, role="rows")
        data = self._tensors(rows)
        return data.X, data.y

    def perturb(
        self,
        X: ArrayLike,
        y: ArrayLike,
        *,
        inner_solver: str | None = None,
        random_state: int | None = None,
    ) -> np.ndarray:
        """The worst-case input perturbations the inner solver finds for the fitted model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The rows to perturb.
        y : array-like of shape (n_samples,)
            Their labels (from ``classes_``).
        inner_solver : str, default=None
            One of "trs", "pgd", "random", "exact", "none"; None uses ``inner_solver``.
            "pgd" runs on consecutive chunks of ``batch_size`` rows, as in training.
        random_state : int or None, default=None
            Seed of the "random" perturbations.

        Returns
        -------
        delta : ndarray of shape (n_samples, n_model_features)
            The perturbations of the model's inputs (without the columns dropped by
            ``sensitive_feature_ids``), each of norm at most ``radius``.
        """
        solver = self.inner_solver if inner_solver is None else inner_solver
        self._check_solver(solver)
        x, yt = self._rows_as_tensors(X, y)
        gen = torch.Generator()
        gen.manual_seed(int(np.random.default_rng(random_state).integers(0, 2**63 - 1)))
        self.module_.eval()
        chunk = self.batch_size if solver == "pgd" else max(len(x), 1)
        out = []
        with torch.no_grad():
            for start in range(0, len(x), chunk):
                xb, yb = x[start : start + chunk], yt[start : start + chunk]
                delta, _ = self._perturbation(xb, yb, solver, gen)
                out.append(torch.zeros_like(xb) if delta is None else delta)
        if not out:
            return np.zeros((0, x.shape[1]))
        return torch.cat(out).detach().to("cpu", torch.float64).numpy()

    def robust_loss(
        self,
        X: ArrayLike,
        y: ArrayLike,
        *,
        inner_solver: str | None = None,
        per_sample: bool = False,
        random_state: int | None = None,
    ) -> float | np.ndarray:
        """The logistic loss at the perturbed inputs ``X + perturb(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The rows.
        y : array-like of shape (n_samples,)
            Their labels.
        inner_solver : str, default=None
            As in :meth:`perturb`.
        per_sample : bool, default=False
            Return the loss of every row instead of the mean.
        random_state : int or None, default=None
            As in :meth:`perturb`.

        Returns
        -------
        loss : float or ndarray of shape (n_samples,)
            Computed in float64.
        """
        delta = self.perturb(X, y, inner_solver=inner_solver, random_state=random_state)
        x, yt = self._rows_as_tensors(X, y)
        params = {k: v.detach().double() for k, v in self.module_.named_parameters()}
        with torch.no_grad():
            xd = x.double() + torch.as_tensor(delta, dtype=torch.float64, device=x.device)
            z = functional_call(self.module_, params, (xd,))[:, 0]
            loss = F.binary_cross_entropy_with_logits(z, yt.double(), reduction="none")
        loss = loss.cpu().numpy()
        return loss if per_sample else float(loss.mean())


def _signed_gaps(y, pred, g, w):
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FairnessWarning)  # empty cell -> nan
        kw = {"sensitive_features": g, "sample_weight": w}
        out["independence"] = independence_gap(y, pred, k=1, **kw)
        out["separation_y0"] = separation_gap(y, pred, k=0, **kw)
        out["separation_y1"] = separation_gap(y, pred, k=1, **kw)
        out["sufficiency_yhat1"] = predictive_parity_gap(y, pred, k=1, **kw)
        out["sufficiency_yhat0"] = predictive_parity_gap(y, pred, k=0, **kw)
    return out
