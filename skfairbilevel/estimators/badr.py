"""BADRClassifier and BADRRegressor: Bilevel Adaptive Rescalarisation (BADR).

After Tanji, Vaiter & Laguel (2026): group weights on the simplex chosen so that the model
trained on the weighted group risks minimises a smooth fairness metric. The algorithm
(the base class both estimators share) is in :mod:`skfairbilevel.estimators._badr`; the
problem and its solvers in :mod:`skfairbilevel.nn.group_risk`.
"""

from .._params import one_of
from ..base import FairClassifierMixin, FairRegressorMixin
from ..nn.smooth_fairness import (
    CLASSIFIER_FAIRNESS,
    REGRESSOR_FAIRNESS,
)
from ._badr import BADRBase

__all__ = ["BADRClassifier", "BADRRegressor"]


_COMMON_DOC = """
    model : {"linear", "mlp"}, default="linear"
        The lower-level model: an affine model (logistic / least-squares regression with
        an unpenalised intercept), solved in float64, or a multi-layer perceptron
        (``hidden_layer_sizes``, ``activation``), solved in float32.
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
        None learns the group weights. Otherwise they are fixed (the paper's
        baselines): "uniform" (1/S), "balanced" (proportional to 1/n_a), "pooled"
        (proportional to n_a: pooled ERM), "minimax" (those of min_w max_a F_a(w)),
        "one_group" (the vertex whose model has the smallest training metric), or S
        non-negative weights in the order of ``groups_`` (normalised to sum to 1).
    solver : {"exact", "gd", "sgd"}, default="exact"
        How lambda is learned: implicit hypergradient with exact lower solves and
        projected gradient with line search, BADR-GD (full-batch single loop) or
        BADR-SGD (balanced mini-batches).
    init : {"best", "uniform"}, default="best"
        Starting lambda of the learned weights: "uniform" (1/S, the toolbox), or
        "best": whichever of the uniform weights and the S vertices gives the smaller
        training metric (the upper objective is not convex in lambda).
    max_iter : int, default=200
        Outer iterations (exact, minimax) or iterations of the GD/SGD recursion.
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
        toolbox's choice) or on the mini-batch.
    average_lambda : bool, default=True
        BADR-SGD: refit at the average of lambda over the second half of the iterations
        (Polyak-Ruppert); False uses the last iterate, as the toolbox does.
    lower_max_iter : int, default=100
        Iterations per lower-level solve (Newton, or L-BFGS for the MLP).
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
        "cpu", "cuda", "cuda:<i>" or "auto".
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
        One dict per iteration of the lambda loop (the upper objective, lambda, norms of
        the directions; see the user guide); empty for fixed group weights.
    n_iter_ : int
        Iterations of the lambda loop (``len(history_)``); with fixed group weights,
        the iterations of the final lower-level solve.
    n_features_in_, feature_names_in_
        As in scikit-learn.
"""

_NOTES_DOC = """
    The intercept is part of the model everywhere and is not penalised; the affine
    lower level is solved by Newton's method in float64, and the regressor
    standardises y internally (its metrics are in units of the standard deviation of
    y). The differences from the paper's toolbox are listed in the user guide
    (:ref:`badr-differences`).

    References
    ----------
    .. [1] S. Tanji, S. Vaiter, Y. Laguel. Fairness-informed Pareto Optimization: An
       Efficient Bilevel Framework. arXiv:2601.13448, 2026.
    .. [2] R. Berk et al. A Convex Framework for Fair Regression. FAT/ML 2017.
"""


class BADRClassifier(FairClassifierMixin, BADRBase):  # noqa: D101 (docstring below)
    __doc__ = (
        """Fair classifier by bilevel adaptive rescalarisation of group risks (BADR).

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
        classes; the last two need a binary target.
    score_tolerance : float or None, default=0.02
        The trade-off knob: how much training accuracy the learned group weights may
        lose against uniform weights (larger is fairer; sensible range 0.005-0.05).
        The weights are kept where the model's training accuracy (sample weights
        included) is at least that of the uniform-weight model minus this tolerance.
        None gives the pure bilevel solution, which often puts all the weight on one
        group (on Adult: demographic parity 0.059 at 2.7 accuracy points below
        uniform weights; with 0.02: 0.078 at 1.9 points, validation data, see the
        user guide). Learned weights only (``group_weights=None``)."""
        + _COMMON_DOC
        + """
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)"""
        + _ATTRIBUTES_DOC
        + """
    See Also
    --------
    BADRRegressor : the same for least-squares regression.
    FairMLPClassifier : the penalised (Lagrangian) single-level baseline.

    Notes
    -----"""
        + _NOTES_DOC
        + """
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
    )

    _parameter_rules = {"fairness": one_of(*CLASSIFIER_FAIRNESS)}

    def __init__(
        self,
        fairness="demographic_parity",
        *,
        score_tolerance=0.02,
        model="linear",
        hidden_layer_sizes=(32,),
        activation="tanh",
        alpha=1e-2,
        rho=10.0,
        group_weights=None,
        solver="exact",
        init="best",
        max_iter=200,
        batch_size=256,
        step_w=0.1,
        step_v=None,
        step_lambda=1.0,
        clip=1.0,
        fairness_gradient="full",
        average_lambda=True,
        lower_max_iter=100,
        tol=1e-6,
        sensitive_feature_ids=None,
        drop_sensitive=True,
        warm_start=False,
        verbose=0,
        device="cpu",
        random_state=None,
    ):
        self.fairness = fairness
        self.score_tolerance = score_tolerance
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


class BADRRegressor(FairRegressorMixin, BADRBase):  # noqa: D101 (docstring below)
    __doc__ = (
        """Fair regressor by bilevel adaptive rescalarisation of group risks (BADR).

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
        standard deviation of y.
    score_tolerance : float or None, default=0.005
        The trade-off knob: how much training R^2 the learned group weights may lose
        against uniform weights (larger is fairer; sensible range 0.005-0.03). The
        weights are kept where the model's training R^2 (sample weights included) is
        at least that of the uniform-weight model minus this tolerance. None gives the
        pure bilevel solution, which may put almost all the weight on one group and
        lose much of the fit (see the user guide). Learned weights only
        (``group_weights=None``)."""
        + _COMMON_DOC
        + """
    max_pairs : int, default=100000
        Individual fairness uses every cross-group pair when there are at most this
        many, otherwise a sample of about this many pairs drawn once per fit.

    Attributes
    ----------"""
        + _ATTRIBUTES_DOC
        + """
    See Also
    --------
    BADRClassifier : the same for classification.

    Notes
    -----"""
        + _NOTES_DOC
        + """
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
    )

    _parameter_rules = {"fairness": one_of(*REGRESSOR_FAIRNESS)}

    def __init__(
        self,
        fairness="demographic_parity",
        *,
        score_tolerance=0.005,
        model="linear",
        hidden_layer_sizes=(32,),
        activation="tanh",
        alpha=1e-2,
        rho=10.0,
        group_weights=None,
        solver="exact",
        init="best",
        max_iter=200,
        batch_size=256,
        step_w=0.1,
        step_v=None,
        step_lambda=1.0,
        clip=1.0,
        fairness_gradient="full",
        average_lambda=True,
        lower_max_iter=100,
        tol=1e-6,
        max_pairs=100_000,
        sensitive_feature_ids=None,
        drop_sensitive=True,
        warm_start=False,
        verbose=0,
        device="cpu",
        random_state=None,
    ):
        self.fairness = fairness
        self.score_tolerance = score_tolerance
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
