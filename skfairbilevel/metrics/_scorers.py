"""Fairness scorers for scikit-learn model selection, and a constrained refit rule.

A fairness metric needs the sensitive features of the rows it is scored on, which a
plain ``make_scorer`` scorer never receives unless metadata routing is on and the user
remembered ``set_score_request``. :class:`FairnessScorer` gets them either way:

* routing on (``sklearn.set_config(enable_metadata_routing=True)``): the scorer requests
  ``sensitive_features`` for ``score`` by default, so ``GridSearchCV(...).fit(X, y,
  sensitive_features=A)`` or ``cross_validate(..., params={"sensitive_features": A})``
  hand it each fold's slice of ``A``;
* routing off (or on, but no ``A`` passed): it reads the columns named by
  ``sensitive_feature_ids`` from the ``X`` it is scored on (a pandas, polars or pyarrow
  dataframe, or an array with integer ids).

The routing request is built with the public :mod:`sklearn.utils.metadata_routing` API
(``MetadataRequest``); no private scikit-learn scorer class is subclassed.
"""

import inspect
import math
import warnings
from numbers import Real

import numpy as np
import sklearn
from sklearn.utils.metadata_routing import UNCHANGED, MetadataRequest

from .._groups import resolve_sensitive
from ..exceptions import FairnessWarning
from . import _fairness, _regression

__all__ = ["make_fairness_scorer", "FairnessScorer", "fairness_constrained_refit"]

# metric name -> (module, default response method, greater is better)
_METRICS = {
    "demographic_parity_difference": (_fairness, "predict", False),
    "equalized_odds_difference": (_fairness, "predict", False),
    "equal_opportunity_difference": (_fairness, "predict", False),
    "accuracy_parity_difference": (_fairness, "predict", False),
    "soft_demographic_parity_difference": (_fairness, "predict_proba", False),
    "sufficiency_gap": (_fairness, "predict_proba", False),
    "independence_gap": (_fairness, "predict", False),
    "separation_gap": (_fairness, "predict", False),
    "predictive_parity_gap": (_fairness, "predict", False),
    "mean_prediction_difference": (_regression, "predict", False),
    "mean_prediction_ratio": (_regression, "predict", True),
    "bounded_group_loss": (_regression, "predict", False),
    "group_loss_difference": (_regression, "predict", False),
    "group_loss_ratio": (_regression, "predict", True),
}

_RESPONSE_METHODS = ("predict", "predict_proba", "decision_function", "predict_log_proba")

_NO_SENSITIVE_FEATURES = (
    "{scorer} got no sensitive features to score with. Fix it in one of two ways: "
    "(1) turn metadata routing on with sklearn.set_config(enable_metadata_routing=True) "
    "and pass sensitive_features=A to the fit of GridSearchCV / RandomizedSearchCV (or "
    "params={{'sensitive_features': A}} to cross_validate / cross_val_score); or "
    "(2) keep A as column(s) of X and give make_fairness_scorer(..., "
    "sensitive_feature_ids=<column name(s) or index(es) of X>)."
)


def _routing_enabled():
    return bool(sklearn.get_config().get("enable_metadata_routing", False))


def _accepts(func, param):
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):  # builtins without a signature: assume yes
        return True
    return param in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


class FairnessScorer:
    """Scorer computing a fairness metric of an estimator's predictions.

    Create it with :func:`make_fairness_scorer`. Called as ``scorer(estimator, X,
    y_true, sample_weight=None, sensitive_features=None)`` it returns
    ``sign * metric(y_true, response, sensitive_features=A, **metric_kwargs)`` with
    ``sign = 1`` when greater is better (the ratios), else ``-1``.

    Parameters
    ----------
    metric : str or callable
        See :func:`make_fairness_scorer`.
    sensitive_feature_ids : str, int or list, default=None
        Columns of X holding the sensitive features (used when none are passed).
    response_method : str or list of str, default=None
        Estimator method(s) producing the metric's second argument; the first one the
        estimator has is used.
    greater_is_better : bool or None, default=None
        Whether larger metric values are better; ``None``: True for the ratios
        (``mean_prediction_ratio``, ``group_loss_ratio``), False for every other metric
        and for callables.
    metric_kwargs : dict, default=None
        Extra keyword arguments of the metric.
    """

    def __init__(
        self,
        metric,
        *,
        sensitive_feature_ids=None,
        response_method=None,
        greater_is_better=None,
        metric_kwargs=None,
    ):
        if isinstance(metric, str):
            if metric not in _METRICS:
                raise ValueError(
                    f"metric={metric!r} is not a known fairness metric; use one of "
                    f"{sorted(_METRICS)} or pass a callable "
                    f"metric(y_true, y_pred, *, sensitive_features, **kwargs)."
                )
            module, default_response, default_greater = _METRICS[metric]
            func = getattr(module, metric)
        elif callable(metric):
            func = metric
            default_response, default_greater = "predict", False
            if not _accepts(func, "sensitive_features"):
                raise TypeError(
                    f"metric {getattr(metric, '__name__', metric)!r} must accept a "
                    f"keyword argument sensitive_features; define it as "
                    f"metric(y_true, y_pred, *, sensitive_features, **kwargs)."
                )
        else:
            raise TypeError(
                f"metric must be a metric name (str) or a callable; got {type(metric)!r}."
            )
        if response_method is None:
            response_method = default_response
        methods = [response_method] if isinstance(response_method, str) else response_method
        try:
            methods = list(methods)
        except TypeError:
            methods = [response_method]
        if not methods or not all(isinstance(m, str) for m in methods):
            raise TypeError(
                f"response_method must be a method name such as 'predict' or "
                f"'predict_proba', or a list of them; got {response_method!r}."
            )
        unknown = [m for m in methods if m not in _RESPONSE_METHODS]
        if unknown:
            raise ValueError(f"response_method {unknown[0]!r} is not one of {_RESPONSE_METHODS}.")
        metric_kwargs = dict(metric_kwargs or {})
        for reserved in ("sensitive_features", "sample_weight"):
            if reserved in metric_kwargs:
                raise ValueError(
                    f"{reserved} cannot be fixed in make_fairness_scorer; it is passed at "
                    f"scoring time (routed metadata or sensitive_feature_ids)."
                )
        for name in metric_kwargs:
            if not _accepts(func, name):
                raise TypeError(
                    f"metric {getattr(func, '__name__', func)!r} has no parameter "
                    f"{name!r}; remove it from the keyword arguments of "
                    f"make_fairness_scorer."
                )
        if greater_is_better is None:
            greater_is_better = default_greater
        if not isinstance(greater_is_better, (bool, np.bool_)):
            raise TypeError(
                f"greater_is_better must be True, False or None (the metric's own "
                f"direction); got {greater_is_better!r}."
            )
        self.metric = metric
        self.sensitive_feature_ids = sensitive_feature_ids
        self.response_method = response_method
        self.greater_is_better = bool(greater_is_better)
        self.metric_kwargs = metric_kwargs
        self._func = func
        self._sign = 1 if greater_is_better else -1
        self._default_greater = default_greater
        self._methods = methods
        self._score_request = {"sensitive_features": True}
        if self._accept_sample_weight():
            self._score_request["sample_weight"] = None

    # -- scoring ----------------------------------------------------------------------

    def _response(self, estimator, X):
        for name in self._methods:
            if hasattr(estimator, name):
                return getattr(estimator, name)(X)
        raise AttributeError(
            f"{type(estimator).__name__} has none of the response methods "
            f"{self._methods} needed by {self!r}; pass another response_method."
        )

    def __call__(self, estimator, X, y_true, sample_weight=None, **kwargs):
        """Score ``estimator`` on ``X`` against ``y_true``.

        Parameters
        ----------
        estimator : object
            A fitted estimator.
        X : array-like of shape (n_samples, n_features)
            Test data. Holds the sensitive features when ``sensitive_feature_ids`` is set.
        y_true : array-like of shape (n_samples,)
            True labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Forwarded to the metric.
        **kwargs : dict
            ``sensitive_features`` (routed by scikit-learn, or passed directly);
            takes precedence over ``sensitive_feature_ids``.

        Returns
        -------
        score : float
            ``sign * metric(...)``.
        """
        A = kwargs.pop("sensitive_features", None)
        if kwargs:
            raise TypeError(
                f"{self!r} got unexpected metadata {sorted(kwargs)}; it only takes "
                f"sensitive_features and sample_weight."
            )
        if A is None:
            if self.sensitive_feature_ids is None:
                raise ValueError(_NO_SENSITIVE_FEATURES.format(scorer=repr(self)))
            A, _ = resolve_sensitive(X, None, self.sensitive_feature_ids)
        response = self._response(estimator, X)
        metric_kwargs = dict(self.metric_kwargs)
        if sample_weight is not None:
            if not self._accept_sample_weight():
                raise TypeError(
                    f"{self!r} was given sample_weight, but the metric does not accept "
                    f"sample weights; do not pass them to this scorer."
                )
            metric_kwargs["sample_weight"] = sample_weight
        value = self._func(y_true, response, sensitive_features=A, **metric_kwargs)
        return self._sign * float(value) + 0.0  # + 0.0: no negative zero

    def _accept_sample_weight(self):
        # scikit-learn asks scorers this when routing is off and sample_weight is given
        return _accepts(self._func, "sample_weight")

    # -- metadata routing -------------------------------------------------------------

    def get_metadata_routing(self):
        """Metadata this scorer requests for ``score``.

        By default ``sensitive_features`` is requested (``True``) and ``sample_weight``
        (when the metric accepts it) is left unset (``None``: passing it raises, as for
        scikit-learn's scorers, until :meth:`set_score_request` says yes or no).

        Returns
        -------
        routing : sklearn.utils.metadata_routing.MetadataRequest
            A new request object.
        """
        request = MetadataRequest(owner=self._routing_repr())
        for param, alias in self._score_request.items():
            request.score.add_request(param=param, alias=alias)
        return request

    def set_score_request(self, *, sensitive_features=UNCHANGED, sample_weight=UNCHANGED):
        """Set which metadata the scorer requests (metadata routing must be on).

        Parameters
        ----------
        sensitive_features : bool, None, str, default=sklearn.utils.metadata_routing.UNCHANGED
            ``True`` (the default state): requested; ``False``: not requested (the
            scorer then reads ``sensitive_feature_ids``); a string: request it under
            that alias (e.g. ``"A_test"``).
        sample_weight : bool, None, str, default=sklearn.utils.metadata_routing.UNCHANGED
            Same for the sample weights.

        Returns
        -------
        self : FairnessScorer
            The updated scorer.
        """
        if not _routing_enabled():
            raise RuntimeError(
                "set_score_request is only available when metadata routing is enabled: "
                "call sklearn.set_config(enable_metadata_routing=True) first. With "
                "routing off, give make_fairness_scorer(..., sensitive_feature_ids=...) "
                "instead."
            )
        new = dict(self._score_request)
        for param, alias in (
            ("sensitive_features", sensitive_features),
            ("sample_weight", sample_weight),
        ):
            if alias is UNCHANGED or (isinstance(alias, str) and alias == UNCHANGED):
                continue
            if param == "sample_weight" and not self._accept_sample_weight():
                raise ValueError(
                    f"sample_weight cannot be requested: the metric of {self!r} does not "
                    f"accept sample weights."
                )
            new[param] = alias
        # validate the aliases with scikit-learn before storing them
        request = MetadataRequest(owner=self._routing_repr())
        for param, alias in new.items():
            request.score.add_request(param=param, alias=alias)
        self._score_request = {p: (True if a == p else a) for p, a in new.items()}
        return self

    def _routing_repr(self):
        return repr(self)

    # -- display ------------------------------------------------------------------------

    def __repr__(self):
        metric = (
            repr(self.metric)
            if isinstance(self.metric, str)
            else getattr(self.metric, "__name__", repr(self.metric))
        )
        parts = [metric]
        if self.sensitive_feature_ids is not None:
            parts.append(f"sensitive_feature_ids={self.sensitive_feature_ids!r}")
        parts.append(f"response_method={self.response_method!r}")
        if self.greater_is_better != self._default_greater:
            parts.append(f"greater_is_better={self.greater_is_better}")
        parts.extend(f"{k}={v!r}" for k, v in self.metric_kwargs.items())
        return f"make_fairness_scorer({', '.join(parts)})"


def make_fairness_scorer(
    metric,
    *,
    sensitive_feature_ids=None,
    response_method=None,
    greater_is_better=None,
    **metric_kwargs,
):
    """Make a scorer of a fairness metric for GridSearchCV, cross_validate, ...

    The scorer finds the sensitive features of the rows it scores in one of two ways:

    * **metadata routing on** (``sklearn.set_config(enable_metadata_routing=True)``):
      it requests ``sensitive_features`` for ``score`` by default (no
      ``set_score_request`` call needed), so ``search.fit(X, y, sensitive_features=A)``
      or ``cross_validate(..., params={"sensitive_features": A})`` route each fold's
      slice of ``A`` to it. :meth:`FairnessScorer.set_score_request` exists to change
      that (aliases, ``sample_weight``).
    * **routing off** (or no ``A`` routed): it reads the column(s) named by
      ``sensitive_feature_ids`` from the ``X`` it is scored on.

    With neither it raises a ValueError explaining both fixes.

    Parameters
    ----------
    metric : str or callable
        The name of a function of :mod:`skfairbilevel.metrics`, or a callable
        ``metric(y_true, y_pred_or_score, *, sensitive_features, **kwargs)``. Names:

        * classification: ``"demographic_parity_difference"``,
          ``"equalized_odds_difference"``, ``"equal_opportunity_difference"``,
          ``"accuracy_parity_difference"``, ``"soft_demographic_parity_difference"``,
          ``"sufficiency_gap"``, ``"independence_gap"``, ``"separation_gap"``,
          ``"predictive_parity_gap"``;
        * regression: ``"mean_prediction_difference"``, ``"mean_prediction_ratio"``,
          ``"bounded_group_loss"``, ``"group_loss_difference"``, ``"group_loss_ratio"``.
    sensitive_feature_ids : str, int or list of them, default=None
        Column names (pandas, polars or pyarrow dataframe X) or integer indices of X
        holding the sensitive features; several columns give intersectional groups.
    response_method : str or list of str, default=None
        The estimator method whose output is the metric's second argument (the first
        available of a list). ``None``: ``"predict_proba"`` for
        ``soft_demographic_parity_difference`` and ``sufficiency_gap``, else
        ``"predict"``.
    greater_is_better : bool or None, default=None
        As in :func:`sklearn.metrics.make_scorer`: ``False`` makes the score the
        **negated** metric, so that search maximises it. ``None`` takes the metric's
        own direction: ``True`` for the ratios (``mean_prediction_ratio``,
        ``group_loss_ratio``: 1 is parity), ``False`` for the differences, gaps and
        ``bounded_group_loss`` (0 is parity) and for callables. For the signed gaps
        (``independence_gap``, ...) a negated signed value is rarely what a search
        should maximise; use ``fairness_constrained_refit`` (which uses absolute
        values) or a callable returning ``abs(gap)``.
    **metric_kwargs : dict
        Fixed keyword arguments of the metric (e.g. ``method="to_overall"``,
        ``n_bins=10``).

    Returns
    -------
    scorer : FairnessScorer
        A picklable callable ``scorer(estimator, X, y_true, **metadata)``.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import cross_val_score
    >>> from skfairbilevel.metrics import make_fairness_scorer
    >>> X = pd.DataFrame({"x": [0., 1, 2, 3, 4, 5, 6, 7], "a": [0, 0, 1, 0, 1, 1, 0, 1]})
    >>> y = [0, 0, 0, 1, 0, 1, 1, 1]
    >>> dp = make_fairness_scorer("demographic_parity_difference",
    ...                           sensitive_feature_ids="a")
    >>> dp
    make_fairness_scorer('demographic_parity_difference', sensitive_feature_ids='a', \
response_method='predict')
    >>> clf = LogisticRegression().fit(X, y)
    >>> dp(clf, X, y)
    -0.5
    >>> cross_val_score(LogisticRegression(), X, y, cv=2, scoring=dp).shape
    (2,)
    """
    return FairnessScorer(
        metric,
        sensitive_feature_ids=sensitive_feature_ids,
        response_method=response_method,
        greater_is_better=greater_is_better,
        metric_kwargs=metric_kwargs,
    )


class _FairnessConstrainedRefit:
    """Picklable refit rule; see :func:`fairness_constrained_refit`."""

    def __init__(self, objective, constraint, bound):
        self.objective = objective
        self.constraint = constraint
        self.bound = bound

    def _column(self, cv_results, name, arg):
        key = f"mean_test_{name}"
        if key not in cv_results:
            available = sorted(
                k[len("mean_test_") :] for k in cv_results if k.startswith("mean_test_")
            )
            raise ValueError(
                f"{arg}={name!r}: cv_results has no {key!r}. Scorer names available: "
                f"{available}. Use a key of the scoring dict given to the search."
            )
        return np.asarray(cv_results[key], dtype=np.float64)

    def __call__(self, cv_results):
        objective = self._column(cv_results, self.objective, "objective")
        violation = np.abs(self._column(cv_results, self.constraint, "constraint"))
        obj = np.where(np.isnan(objective), -np.inf, objective)
        viol = np.where(np.isnan(violation), np.inf, violation)
        feasible = viol <= self.bound
        if feasible.any():
            candidates = np.flatnonzero(feasible)
            return int(candidates[np.argmax(obj[candidates])])
        if np.all(np.isinf(viol)):
            raise ValueError(
                f"every candidate has a NaN mean_test_{self.constraint} (all fits or "
                f"scorings failed); cannot choose a model. Check error_score and the "
                f"failures reported by the search."
            )
        smallest = viol.min()
        candidates = np.flatnonzero(viol == smallest)
        best = int(candidates[np.argmax(obj[candidates])])
        warnings.warn(
            f"No candidate satisfies |mean_test_{self.constraint}| <= {self.bound}; "
            f"choosing candidate {best}, the smallest violation ({smallest:.4g}).",
            FairnessWarning,
            stacklevel=2,
        )
        return best

    def __repr__(self):
        return (
            f"fairness_constrained_refit(objective={self.objective!r}, "
            f"constraint={self.constraint!r}, bound={self.bound!r})"
        )


def fairness_constrained_refit(objective, constraint, bound):
    """Refit rule for ``GridSearchCV(refit=...)``: best objective under a fairness bound.

    Returns a callable ``(cv_results) -> int`` choosing, among the candidates with
    ``|mean_test_<constraint>| <= bound``, the one with the largest
    ``mean_test_<objective>`` (first one on ties). The absolute value is used because
    fairness scorers are negated (``greater_is_better=False``) and signed gaps can be
    negative; ``bound`` is on the metric's own scale.

    If no candidate satisfies the bound, the candidate with the smallest
    ``|mean_test_<constraint>|`` is chosen (best objective among ties) and a
    :class:`~skfairbilevel.exceptions.FairnessWarning` is emitted. NaN scores (failed
    fits) never satisfy the bound.

    Parameters
    ----------
    objective : str
        Key of the ``scoring`` dict of the performance scorer (greater is better), e.g.
        ``"acc"``.
    constraint : str
        Key of the ``scoring`` dict of the fairness scorer, e.g. ``"dp"``: a metric that
        is 0 at parity (a difference, a gap or ``bounded_group_loss``), not a ratio.
    bound : float
        Largest admissible absolute value of the mean fairness score, e.g. ``0.05``.

    Returns
    -------
    refit : callable
        ``refit(cv_results) -> int``, the index of the chosen candidate (picklable).

    Examples
    --------
    >>> from skfairbilevel.metrics import fairness_constrained_refit
    >>> cv_results = {"mean_test_acc": [0.90, 0.85, 0.80],
    ...               "mean_test_dp": [-0.20, -0.04, -0.01]}
    >>> fairness_constrained_refit("acc", "dp", 0.05)(cv_results)
    1
    """
    for name, value in (("objective", objective), ("constraint", constraint)):
        if not isinstance(value, str):
            raise TypeError(
                f"{name} must be the name (str) of a scorer in the scoring dict; got {value!r}."
            )
    if (
        not isinstance(bound, Real)
        or isinstance(bound, bool)
        or not math.isfinite(bound)
        or bound < 0
    ):
        raise ValueError(f"bound must be a finite number >= 0; got {bound!r}.")
    return _FairnessConstrainedRefit(objective, constraint, float(bound))
