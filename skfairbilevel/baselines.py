"""fairlearn's reductions as estimators that work in scikit-learn's model-selection tools.

fairlearn's :class:`~fairlearn.reductions.ExponentiatedGradient` and
:class:`~fairlearn.reductions.GridSearch` take the sensitive features through
``fit(X, y, **kwargs)``. scikit-learn cannot generate a metadata request for ``**kwargs``,
so under metadata routing ``GridSearchCV`` and ``cross_validate`` never hand them the
sensitive features and the fit fails inside fairlearn's ``load_data``. With routing
off, no fairness scorer can receive them. ``ExponentiatedGradient.predict`` is also
randomised with the global NumPy RNG, so two identical cross-validation runs give
different scores.

The two classes here are thin wrappers around those reductions (composition: a fresh
fairlearn object is built in every ``fit`` and kept in ``mitigator_``):

* ``fit(X, y, *, sensitive_features=None)`` with an explicit keyword, and
  ``sensitive_features`` requested for ``fit`` by default under metadata routing
  (``__metadata_request__fit``), so ``GridSearchCV(...).fit(X, y, sensitive_features=A)``
  and ``cross_validate(..., params={"sensitive_features": A})`` route each fold's slice;
* or ``sensitive_feature_ids``: the sensitive columns are read from X (works with
  routing off), and dropped from the model's inputs unless ``drop_sensitive=False``;
* ``constraints`` may be a name (``"demographic_parity"``, ``"equalized_odds"``, ...) as
  well as a fairlearn ``Moment``, so it can be tuned in a parameter grid;
* labels may be any two classes (fairlearn needs 0/1); ``classes_``, ``n_features_in_``
  and ``feature_names_in_`` are set as in scikit-learn;
* :class:`ExponentiatedGradientClassifier` has ``predict_proba`` (the probability that the
  randomised classifier predicts the positive class) and a randomised ``predict`` that is
  a deterministic function of the row and ``random_state`` (no global RNG), so repeated
  calls, batches and cross-validation runs agree.

ThresholdOptimizer is not wrapped: it needs the sensitive features at ``predict`` time,
which scikit-learn cannot route, so it cannot be scored inside ``GridSearchCV`` or
``cross_validate`` at all; :mod:`skfairbilevel.compare` evaluates it in its own loop.
:func:`float64_scores` makes its base estimator safe for float32 inputs under pandas 3.
"""

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._groups import encode_groups, resolve_sensitive
from ._params import (
    any_of,
    check_params,
    instance_of,
    is_array_like,
    number,
    one_of,
    random_state,
    text,
)

__all__ = [
    "ExponentiatedGradientClassifier",
    "GridSearchReductionClassifier",
    "float64_scores",
    "row_uniforms",
]


def _moments():
    from fairlearn.reductions import (
        DemographicParity,
        EqualizedOdds,
        ErrorRateParity,
        FalsePositiveRateParity,
        TruePositiveRateParity,
    )

    return {
        "demographic_parity": DemographicParity,
        "equalized_odds": EqualizedOdds,
        "equal_opportunity": TruePositiveRateParity,
        "true_positive_rate_parity": TruePositiveRateParity,
        "false_positive_rate_parity": FalsePositiveRateParity,
        "error_rate_parity": ErrorRateParity,
    }


CONSTRAINT_NAMES = (
    "demographic_parity",
    "equalized_odds",
    "equal_opportunity",
    "true_positive_rate_parity",
    "false_positive_rate_parity",
    "error_rate_parity",
)


def _constraints_rule(value):
    from fairlearn.reductions import ClassificationMoment

    if isinstance(value, str) and value in CONSTRAINT_NAMES:
        return None
    if isinstance(value, ClassificationMoment):
        return None
    return f"one of {CONSTRAINT_NAMES} or a fairlearn ClassificationMoment instance"


_frame_rule = any_of(one_of(None), instance_of(pd.DataFrame, "a pandas DataFrame"))


def float64_scores(estimator):
    """``estimator`` behind a cast of X to float64, so that its scores are float64.

    fairlearn 0.15's ``ThresholdOptimizer`` writes its thresholded scores into a pandas
    object of the base estimator's score dtype. Under pandas 3 a float32 object refuses
    the float64 values ("Invalid value ... for dtype 'float32'"), so ``predict`` fails
    whenever the base estimator returns float32 scores, as ``LogisticRegression`` does
    on float32 X (what our loaders and preprocessors give). Use
    ``ThresholdOptimizer(estimator=float64_scores(LogisticRegression()), ...)``.

    Parameters
    ----------
    estimator : estimator
        The base estimator (not fitted; it is not cloned).

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        ``FunctionTransformer(np.asarray, dtype=float64)`` followed by ``estimator``.

    Examples
    --------
    >>> import numpy as np
    >>> from fairlearn.postprocessing import ThresholdOptimizer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skfairbilevel.baselines import float64_scores
    >>> from skfairbilevel.datasets import make_biased_classification
    >>> X, y, A = make_biased_classification(200, random_state=0)
    >>> X = X.astype(np.float32)
    >>> to = ThresholdOptimizer(estimator=float64_scores(LogisticRegression()),
    ...                         predict_method="predict_proba").fit(X, y, sensitive_features=A)
    >>> to.predict(X, sensitive_features=A, random_state=0).shape
    (200,)
    """
    return make_pipeline(FunctionTransformer(np.asarray, kw_args={"dtype": np.float64}), estimator)


# -- reproducible per-row uniforms ----------------------------------------------------

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(z):
    """The splitmix64 finaliser, vectorised on uint64 (wrap-around arithmetic)."""
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def row_uniforms(X, seed):
    """Uniform numbers in [0, 1), one per row of X, a deterministic function of (row, seed).

    The bytes of each row are hashed (pandas' row hash), mixed with ``seed`` by the
    splitmix64 finaliser and mapped to a double in [0, 1). Identical rows get the same
    number; the numbers do not depend on the order of the rows or on how X is batched.
    """
    X = np.asarray(X, dtype=np.float64) + 0.0  # + 0.0 maps -0.0 to 0.0
    if X.shape[0] == 0:
        return np.zeros(0)
    h = pd.util.hash_pandas_object(pd.DataFrame(X), index=False).to_numpy(np.uint64)
    with np.errstate(over="ignore"):
        z = h + np.uint64(seed % 2**64) * np.uint64(0x9E3779B97F4A7C15)
    z = _splitmix64(_splitmix64(z) & _MASK64)
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _draw_seed(random_state):
    """An int seed for the randomised predictions, from ``random_state`` (no global RNG)."""
    if random_state is None:
        return int(np.random.SeedSequence().entropy % 2**63)  # fresh OS entropy
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63 - 1))
    return int(random_state)


# -- the shared wrapper ---------------------------------------------------------------


class _ReductionClassifier(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """fit/predict glue shared by the two wrappers (not public)."""

    # requested for fit by default under metadata routing (GridSearchCV, Pipeline, ...)
    __metadata_request__fit = {"sensitive_features": True}

    _parameter_rules = {
        "constraints": _constraints_rule,
        "sensitive_feature_ids": any_of(
            one_of(None), number(integer=True), text(), is_array_like()
        ),
        "drop_sensitive": one_of(True, False),
        "sample_weight_name": text(),
        "estimator": lambda v: (
            None
            if v is None or (hasattr(v, "fit") and hasattr(v, "predict"))
            else "None or an estimator with fit(X, y, sample_weight) and predict(X)"
        ),
    }

    def _make_mitigator(self, estimator, constraints):
        raise NotImplementedError

    def _constraints(self):
        if isinstance(self.constraints, str):
            kwargs = {}
            bound = getattr(self, "difference_bound", None)
            if bound is not None:
                kwargs["difference_bound"] = bound
            return _moments()[self.constraints](**kwargs)
        return self.constraints  # fairlearn deep-copies it in fit

    def fit(self, X, y, *, sensitive_features=None):
        """Run the reduction.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training features (numeric).
        y : array-like of shape (n_samples,)
            Binary targets (any two labels).
        sensitive_features : array-like of shape (n_samples,) or (n_samples, k)
            Group membership (several columns: their combinations are the groups).
            Required unless ``sensitive_feature_ids`` names columns of X. With metadata
            routing on it is requested by default, so ``GridSearchCV`` and
            ``cross_validate`` route it.

        Returns
        -------
        self
        """
        check_params(self)
        X_raw = X
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) != 2:
            raise ValueError(
                f"{type(self).__name__} is a binary classifier (fairlearn's reductions "
                f"are); y has {len(self.classes_)} classes {self.classes_.tolist()[:10]}. "
                f"Binarise the target first."
            )
        y01 = (y == self.classes_[1]).astype(np.int64)
        A, self._model_columns = resolve_sensitive(
            X_raw,
            sensitive_features,
            self.sensitive_feature_ids,
            drop=self.drop_sensitive,
        )
        if A is None:
            raise ValueError(
                f"{type(self).__name__}.fit needs the sensitive features: pass "
                f"fit(X, y, sensitive_features=A) (with metadata routing on, GridSearchCV "
                f"and cross_validate route it), or set sensitive_feature_ids to read them "
                f"from columns of X."
            )
        by_ids = self.sensitive_feature_ids is not None
        name = "sensitive_feature_ids" if by_ids else "sensitive_features"
        g, self.groups_ = encode_groups(A, X.shape[0], name=name)
        if len(self.groups_) < 2:
            raise ValueError(
                f"{name} has a single group ({self.groups_[0]!r}); a fairness constraint "
                f"needs at least two groups."
            )
        self.n_groups_ = len(self.groups_)
        Xm = X if self._model_columns is None else X[:, self._model_columns]
        estimator = (
            LogisticRegression(max_iter=1000) if self.estimator is None else clone(self.estimator)
        )
        self.mitigator_ = self._make_mitigator(estimator, self._constraints())
        self.mitigator_.fit(Xm, y01, sensitive_features=g)
        self._after_fit()
        return self

    def _after_fit(self):
        pass

    def _check_X(self, X):
        """Validated X and the columns the base learner sees."""
        check_is_fitted(self, "mitigator_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return X, (X if self._model_columns is None else X[:, self._model_columns])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        if tags.classifier_tags is not None:
            tags.classifier_tags.multi_class = False
        return tags


class ExponentiatedGradientClassifier(_ReductionClassifier):
    """fairlearn's ExponentiatedGradient, usable in GridSearchCV and cross_validate.

    Agarwal et al.'s exponentiated-gradient reduction: a randomised classifier, a mixture
    of ``estimator`` fits on reweighted data, whose error is (near) minimal subject to the
    fairness constraint. This wrapper requests ``sensitive_features`` under metadata
    routing, makes the randomised ``predict`` reproducible from ``random_state`` and
    adds ``predict_proba``; the reduction itself is fairlearn's, unchanged.

    Parameters
    ----------
    estimator : estimator, default=None
        The base learner, with ``fit(X, y, sample_weight)`` and ``predict``; None means
        ``LogisticRegression(max_iter=1000)``. It is cloned.
    constraints : str or fairlearn ClassificationMoment, default="demographic_parity"
        ``"demographic_parity"``, ``"equalized_odds"``, ``"equal_opportunity"`` (=
        ``"true_positive_rate_parity"``), ``"false_positive_rate_parity"``,
        ``"error_rate_parity"``, or a fairlearn moment object (e.g.
        ``DemographicParity(ratio_bound=0.9)``).
    difference_bound : float, default=None
        With a named ``constraints``: the allowed constraint difference (fairlearn's
        ``difference_bound``; None keeps fairlearn's default, 0.01). Ignored when
        ``constraints`` is a moment object.
    eps : float, default=0.01
        fairlearn's ``eps``: the bound on the L1 norm of the Lagrange multipliers is
        ``1 / eps``.
    max_iter : int, default=50
        Maximum number of exponentiated-gradient iterations.
    nu : float, default=None
        Convergence threshold for the duality gap (None: fairlearn's automatic value,
        stored in ``nu_``).
    eta0 : float, default=2.0
        Initial learning rate.
    run_linprog_step : bool, default=True
        Follow each step with the linear program over the classifiers found so far.
    sample_weight_name : str, default="sample_weight"
        Name of the sample-weight argument of ``estimator.fit`` (e.g.
        ``"logisticregression__sample_weight"`` for a Pipeline).
    randomized : bool, default=True
        True: ``predict`` draws the label of each row from the mixture (the classifier
        the reduction's guarantees are about). False: it predicts the more likely label
        (``predict_proba >= 0.5``), deterministic but without the guarantees.
    sensitive_feature_ids : str, int or list, default=None
        Names or indices of columns of X holding the sensitive features (instead of the
        ``sensitive_features`` argument of ``fit``; works with metadata routing off).
    drop_sensitive : bool, default=True
        With ``sensitive_feature_ids``: remove those columns from the base learner's
        inputs (True) or keep them as features too (False).
    random_state : int, RandomState, Generator or None, default=None
        Seeds the randomised predictions. An int gives the same predictions on every
        call and every run; None draws a fresh seed from the operating system at each
        ``fit`` (never the global NumPy RNG).

    Attributes
    ----------
    mitigator_ : fairlearn.reductions.ExponentiatedGradient
        The fitted reduction (``predictors_``, ``weights_``, ``best_gap_``, ...).
    classes_ : ndarray of shape (2,)
    groups_ : ndarray
        Group labels seen in fit.
    n_groups_ : int
    nu_ : float
        The duality-gap threshold used.
    predict_seed_ : int
        The seed of the randomised predictions.
    n_features_in_, feature_names_in_
        As in scikit-learn.

    See Also
    --------
    GridSearchReductionClassifier : the grid-search reduction, deterministic.
    skfairbilevel.FairMLPClassifier : a penalised neural network.

    Notes
    -----
    Differences from fairlearn's ``ExponentiatedGradient``:

    * ``predict`` uses, for row ``x``, the uniform number ``u(x, seed)`` obtained by
      hashing the row's values with the seed (:func:`row_uniforms`) and predicts the
      positive class when ``u < predict_proba(x)[:, 1]``. Over distinct rows these are
      independent uniform draws, as in fairlearn, but a row's prediction does not depend
      on the other rows, their order or the call, and identical rows get the same label.
    * fairlearn writes its automatic ``nu`` back into the ``nu`` hyper-parameter, so a
      second ``fit`` of the same object reuses it; here a new fairlearn object is built
      in every ``fit`` and the value is stored in ``nu_``.
    * the sensitive features are encoded to integer group ids (several columns:
      intersectional groups) before they reach fairlearn; labels are mapped to 0/1.
    * sample weights are not supported (fairlearn's moments do not take them).

    References
    ----------
    .. [1] A. Agarwal, A. Beygelzimer, M. Dudík, J. Langford and H. Wallach, "A
       Reductions Approach to Fair Classification", ICML 2018.

    Examples
    --------
    >>> from skfairbilevel.baselines import ExponentiatedGradientClassifier
    >>> from skfairbilevel.datasets import make_biased_classification
    >>> X, y, A = make_biased_classification(400, random_state=0)
    >>> eg = ExponentiatedGradientClassifier(constraints="demographic_parity",
    ...                                      random_state=0)
    >>> eg.fit(X, y, sensitive_features=A).predict_proba(X[:2]).shape
    (2, 2)
    >>> bool((eg.predict(X) == eg.predict(X)).all())
    True
    """

    _parameter_rules = {
        "difference_bound": number(0, low_open=True, none=True),
        "eps": number(0, low_open=True),
        "max_iter": number(1, integer=True),
        "nu": number(0, low_open=True, none=True),
        "eta0": number(0, low_open=True),
        "run_linprog_step": one_of(True, False),
        "randomized": one_of(True, False),
        "random_state": random_state(),
    }

    def __init__(
        self,
        estimator=None,
        constraints="demographic_parity",
        *,
        difference_bound=None,
        eps=0.01,
        max_iter=50,
        nu=None,
        eta0=2.0,
        run_linprog_step=True,
        sample_weight_name="sample_weight",
        randomized=True,
        sensitive_feature_ids=None,
        drop_sensitive=True,
        random_state=None,
    ):
        self.estimator = estimator
        self.constraints = constraints
        self.difference_bound = difference_bound
        self.eps = eps
        self.max_iter = max_iter
        self.nu = nu
        self.eta0 = eta0
        self.run_linprog_step = run_linprog_step
        self.sample_weight_name = sample_weight_name
        self.randomized = randomized
        self.sensitive_feature_ids = sensitive_feature_ids
        self.drop_sensitive = drop_sensitive
        self.random_state = random_state

    def _make_mitigator(self, estimator, constraints):
        from fairlearn.reductions import ExponentiatedGradient

        return ExponentiatedGradient(
            estimator,
            constraints,
            eps=self.eps,
            max_iter=self.max_iter,
            nu=self.nu,
            eta0=self.eta0,
            run_linprog_step=self.run_linprog_step,
            sample_weight_name=self.sample_weight_name,
        )

    def _after_fit(self):
        self.nu_ = float(self.mitigator_.nu)
        self.predict_seed_ = _draw_seed(self.random_state)

    def _positive_proba(self, Xm):
        """Probability that the randomised classifier predicts the positive class."""
        m = self.mitigator_
        p = np.zeros(Xm.shape[0])
        for idx, weight in m.weights_.items():
            if weight > 0:
                p += weight * np.asarray(m.predictors_[idx].predict(Xm), dtype=np.float64)
        return np.clip(p, 0.0, 1.0)

    def predict_proba(self, X):
        """Probabilities of the two classes under the randomised classifier.

        Column 1 is the weight of the mixture's classifiers that predict the positive
        class for the row (fairlearn's private ``_pmf_predict``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, 2)
        """
        p = self._positive_proba(self._check_X(X)[1])
        return np.column_stack([1.0 - p, p])

    def predict(self, X):
        """Labels drawn from the randomised classifier, reproducibly (see Notes).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        X, Xm = self._check_X(X)
        p = self._positive_proba(Xm)
        if self.randomized:
            positive = row_uniforms(X, self.predict_seed_) < p
        else:
            positive = p >= 0.5
        return self.classes_[positive.astype(np.int64)]


class GridSearchReductionClassifier(_ReductionClassifier):
    """fairlearn's GridSearch reduction, usable in GridSearchCV and cross_validate.

    Fits ``estimator`` on ``grid_size`` reweighted/relabelled versions of the data, one
    per Lagrange-multiplier vector of a grid, and keeps the one minimising
    ``(1 - constraint_weight) * error + constraint_weight * violation`` on the training
    data. Deterministic. This wrapper requests ``sensitive_features`` under metadata
    routing; the reduction is fairlearn's, unchanged.

    Parameters
    ----------
    estimator : estimator, default=None
        The base learner, with ``fit(X, y, sample_weight)`` and ``predict`` (and
        ``predict_proba`` for this class's ``predict_proba``); None means
        ``LogisticRegression(max_iter=1000)``.
    constraints : str or fairlearn ClassificationMoment, default="demographic_parity"
        As for :class:`ExponentiatedGradientClassifier`.
    constraint_weight : float, default=0.5
        Weight of the constraint violation in the selection rule, in [0, 1].
    grid_size : int, default=10
        Number of Lagrange-multiplier vectors.
    grid_limit : float, default=2.0
        Largest multiplier of the generated grid.
    grid_offset : pandas.DataFrame, default=None
        Shift of the generated grid.
    grid : pandas.DataFrame, default=None
        An explicit grid (columns: multiplier vectors) instead of the generated one.
    sample_weight_name : str, default="sample_weight"
        Name of the sample-weight argument of ``estimator.fit``.
    sensitive_feature_ids : str, int or list, default=None
        Names or indices of columns of X holding the sensitive features.
    drop_sensitive : bool, default=True
        With ``sensitive_feature_ids``: remove those columns from the base learner's
        inputs.

    Attributes
    ----------
    mitigator_ : fairlearn.reductions.GridSearch
        The fitted reduction (``predictors_``, ``best_idx_``, ``lambda_vecs_``, ...).
    best_estimator_ : estimator
        The selected base-learner fit.
    classes_, groups_, n_groups_, n_features_in_, feature_names_in_
        As for :class:`ExponentiatedGradientClassifier`.

    See Also
    --------
    ExponentiatedGradientClassifier : the randomised reduction with guarantees.

    Notes
    -----
    Differences from fairlearn's ``GridSearch``: hyper-parameters are validated in
    ``fit``, not in ``__init__`` (so ``clone`` and ``set_params`` behave as in
    scikit-learn); the sensitive features are encoded to integer group ids; labels are
    mapped to 0/1 and back.

    References
    ----------
    .. [1] A. Agarwal, A. Beygelzimer, M. Dudík, J. Langford and H. Wallach, "A
       Reductions Approach to Fair Classification", ICML 2018.

    Examples
    --------
    >>> from skfairbilevel.baselines import GridSearchReductionClassifier
    >>> from skfairbilevel.datasets import make_biased_classification
    >>> X, y, A = make_biased_classification(400, random_state=0)
    >>> gs = GridSearchReductionClassifier(constraints="equalized_odds", grid_size=5)
    >>> gs.fit(X, y, sensitive_features=A).predict(X[:3]).shape
    (3,)
    """

    _parameter_rules = {
        "constraint_weight": number(0, 1),
        "grid_size": number(1, integer=True),
        "grid_limit": number(0, low_open=True),
        "grid_offset": _frame_rule,
        "grid": _frame_rule,
    }

    def __init__(
        self,
        estimator=None,
        constraints="demographic_parity",
        *,
        constraint_weight=0.5,
        grid_size=10,
        grid_limit=2.0,
        grid_offset=None,
        grid=None,
        sample_weight_name="sample_weight",
        sensitive_feature_ids=None,
        drop_sensitive=True,
    ):
        self.estimator = estimator
        self.constraints = constraints
        self.constraint_weight = constraint_weight
        self.grid_size = grid_size
        self.grid_limit = grid_limit
        self.grid_offset = grid_offset
        self.grid = grid
        self.sample_weight_name = sample_weight_name
        self.sensitive_feature_ids = sensitive_feature_ids
        self.drop_sensitive = drop_sensitive

    def _make_mitigator(self, estimator, constraints):
        from fairlearn.reductions import GridSearch

        return GridSearch(
            estimator,
            constraints,
            constraint_weight=self.constraint_weight,
            grid_size=self.grid_size,
            grid_limit=self.grid_limit,
            grid_offset=self.grid_offset,
            grid=self.grid,
            sample_weight_name=self.sample_weight_name,
        )

    def _after_fit(self):
        self.best_estimator_ = self.mitigator_.predictors_[self.mitigator_.best_idx_]

    def predict(self, X):
        """Labels predicted by the selected base-learner fit.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        pred = np.asarray(self.best_estimator_.predict(self._check_X(X)[1]))
        return self.classes_[(pred == 1).astype(np.int64)]

    def predict_proba(self, X):
        """Class probabilities of the selected base-learner fit.

        The base learner was fitted on relabelled data; when the selected fit saw a
        single label (fairlearn then uses a constant classifier) the probabilities are
        0/1.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, 2)
        """
        Xm = self._check_X(X)[1]
        best = self.best_estimator_
        if not hasattr(best, "predict_proba"):
            raise AttributeError(
                f"the base estimator {type(best).__name__} has no predict_proba; use one "
                f"that does (e.g. LogisticRegression) or call predict."
            )
        proba = np.asarray(best.predict_proba(Xm), dtype=np.float64)
        labels = list(getattr(best, "classes_", [0, 1]))
        out = np.zeros((Xm.shape[0], 2))
        for j, lab in enumerate(labels):
            out[:, int(lab == 1)] += proba[:, j]
        return out
