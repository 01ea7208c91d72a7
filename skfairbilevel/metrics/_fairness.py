"""Group-fairness metrics on predictions (numpy / pandas / fairlearn; no torch).

Three families live here:

* fairlearn-compatible *differences* (``demographic_parity_difference``,
  ``equalized_odds_difference``, ``equal_opportunity_difference``): same signatures and,
  for binary targets, the very numbers of fairlearn (they delegate to it); extended to
  multi-class targets by a one-vs-rest maximum.
* further *differences* used by the methods of this package: accuracy parity (BiFP),
  soft demographic parity on predicted probabilities, and the FACIMS sufficiency gap.
* *signed two-group gaps* (Fast & Fair): ``s1 - s0`` for independence, separation and
  predictive parity.

Every function maps ``sensitive_features`` to groups with :mod:`skfairbilevel._groups`,
so a list, a Series, a DataFrame of several columns (intersectional groups) or a 2-D
array are accepted everywhere and validated the same way as in the estimators. Every
argument may also be a polars or pyarrow series / dataframe
(:mod:`skfairbilevel._dataframe`).
"""

import math
import warnings
from dataclasses import dataclass, field
from numbers import Integral, Real

import fairlearn.metrics as _fl
import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.utils.multiclass import type_of_target, unique_labels

from .. import _dataframe
from .._groups import check_sensitive_features, encode_groups
from .._params import check_sample_weight
from ..exceptions import FairnessWarning

__all__ = [
    "demographic_parity_difference",
    "equalized_odds_difference",
    "equal_opportunity_difference",
    "accuracy_parity_difference",
    "soft_demographic_parity_difference",
    "sufficiency_gap",
    "independence_gap",
    "separation_gap",
    "predictive_parity_gap",
    "fairness_report",
    "FairnessReport",
]

_METHODS = ("between_groups", "to_overall")
_AGGS = ("worst_case", "mean")

_CONTINUOUS_ADVICE = (
    "holds continuous values, but this metric needs class labels (a classifier's "
    "predict). For a regressor's predictions use the regression metrics: "
    "mean_prediction_difference / mean_prediction_ratio (demographic parity for "
    "regression) or bounded_group_loss / group_loss_difference / group_loss_ratio "
    "(group MSE or MAE). For a classifier's predicted probabilities use "
    "soft_demographic_parity_difference or sufficiency_gap."
)


# ----------------------------------------------------------------------------------------
# input validation
# ----------------------------------------------------------------------------------------


def _check_1d(y, name, n_samples=None, ref_name="y_true"):
    """Return ``y`` as a 1-D numpy array; validate its length and missing values."""
    if y is None:
        raise ValueError(f"{name} is None; pass one value per sample.")
    if _dataframe.is_dataframe(y):
        n_columns = len(_dataframe.column_names(y))
        if n_columns != 1:
            raise ValueError(
                f"{name} must be 1-D (one value per sample); got a dataframe with "
                f"{n_columns} columns. Pass a single column."
            )
    arr = _dataframe.to_numpy(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.ravel()
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D (one value per sample); got an array of shape {arr.shape}."
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty; the metric needs at least one sample.")
    if n_samples is not None and arr.shape[0] != n_samples:
        raise ValueError(
            f"{name} has {arr.shape[0]} samples but {ref_name} has {n_samples}; pass "
            f"arrays of the same length (one entry per sample)."
        )
    if arr.dtype.kind in "Ofc":
        missing = np.asarray(pd.isna(pd.Series(arr, dtype=object)))
        if missing.any():
            raise ValueError(
                f"{name} has {int(missing.sum())} missing value(s) (first at position "
                f"{int(np.flatnonzero(missing)[0])}); drop those samples or fill them."
            )
    return arr


def _check_groups(sensitive_features, n_samples, ref_name):
    """``(group_ids, groups)`` for ``sensitive_features``; validates length and NaN."""
    frame = check_sensitive_features(
        _dataframe.to_pandas(sensitive_features), name="sensitive_features"
    )
    if frame.shape[0] != n_samples:
        raise ValueError(
            f"sensitive_features has {frame.shape[0]} rows but {ref_name} has "
            f"{n_samples}; pass one sensitive-feature value per sample (slice it the same "
            f"way as {ref_name})."
        )
    return encode_groups(frame, n_samples, name="sensitive_features")


def _check_method(method):
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}; got {method!r}.")


def _check_labels(y_true, y_pred):
    """Sorted labels occurring in y_true or y_pred (class labels, not scores)."""
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        kind = type_of_target(y, input_name=name)
        if kind == "continuous":
            raise ValueError(f"{name} {_CONTINUOUS_ADVICE}")
    try:
        return unique_labels(y_true, y_pred)
    except ValueError as exc:
        raise ValueError(
            f"y_true and y_pred must hold class labels of the same kind: {exc}"
        ) from exc


def _is_number(v):
    return isinstance(v, (Real, np.number, bool, np.bool_)) and not isinstance(v, str)


def _default_positive(labels):
    """fairlearn's rule (1 for {0,1} / {-1,1} labels), else the greater label."""
    values = labels.tolist()
    if all(_is_number(v) for v in values) and (set(values) <= {0, 1} or set(values) <= {-1, 1}):
        return 1
    return labels[-1]


def _check_label_arg(value, labels, name):
    """A label argument (pos_label, k) must be an observed label or of the same kind."""
    values = labels.tolist()
    if value in values:
        return
    if _is_number(value) and all(_is_number(v) for v in values) and len(values) < 2:
        return
    raise ValueError(
        f"{name}={value!r} is not one of the labels of y_true / y_pred ({values}); pass "
        f"{name}=<one of these labels>."
    )


def _ovr_targets(y_true, y_pred, pos_label):
    """One-vs-rest 0/1 targets: ``[(label, y_true01, y_pred01), ...]``.

    Binary (at most two labels): one pair, for ``pos_label`` or the default positive
    label. Multi-class: one pair per label, or only ``pos_label`` when it is given.
    """
    labels = _check_labels(y_true, y_pred)
    if pos_label is not None:
        if len(labels) <= 2:
            _check_label_arg(pos_label, labels, "pos_label")
        chosen = [pos_label]
    elif len(labels) <= 2:
        chosen = [_default_positive(labels)]
    else:
        chosen = list(labels)
    return [(c, (y_true == c).astype(np.int64), (y_pred == c).astype(np.int64)) for c in chosen]


def _prepare(y_true, y_pred, sensitive_features, sample_weight, pred_name="y_pred"):
    yt = _check_1d(y_true, "y_true")
    yp = _check_1d(y_pred, pred_name, yt.shape[0])
    gid, groups = _check_groups(sensitive_features, yt.shape[0], "y_true")
    sw = check_sample_weight(sample_weight, yt.shape[0], x_name="y_true")
    return yt, yp, gid, groups, sw


# ----------------------------------------------------------------------------------------
# fairlearn-compatible differences
# ----------------------------------------------------------------------------------------


def demographic_parity_difference(
    y_true,
    y_pred,
    *,
    sensitive_features,
    method="between_groups",
    sample_weight=None,
    pos_label=None,
):
    """Demographic parity difference: spread of the group selection rates.

    The largest minus the smallest group selection rate ``P(y_pred = pos | A = a)``
    (``method="between_groups"``), or the largest absolute difference between a group's
    rate and the overall rate (``method="to_overall"``). For binary targets the value is
    exactly :func:`fairlearn.metrics.demographic_parity_difference`, which this function
    calls.

    Multi-class targets (more than two labels in ``y_true`` and ``y_pred`` together),
    where fairlearn has no definition, give the maximum over classes ``c`` of the
    one-vs-rest value (``y_pred == c`` as the selection).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels. Only used to decide binary vs multi-class and the positive label.
    y_pred : array-like of shape (n_samples,)
        Predicted labels (``estimator.predict``), not scores.
    sensitive_features : array-like of shape (n_samples,) or (n_samples, n_features)
        Group membership. Several columns define intersectional groups.
    method : {"between_groups", "to_overall"}, default="between_groups"
        How differences are taken, as in :meth:`fairlearn.metrics.MetricFrame.difference`.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights.
    pos_label : label, default=None
        The positive label. ``None``: 1 when the labels are ``{0, 1}`` or ``{-1, 1}``
        (fairlearn's rule), otherwise the greater of the two labels in sorted order (for
        ``{"no", "yes"}``, ``"yes"``). For a multi-class target, ``pos_label`` restricts
        the one-vs-rest maximum to that class. (fairlearn's function has no such
        keyword; this one is an extension.)

    Returns
    -------
    difference : float
        In ``[0, 1]``; 0 means equal selection rates.

    See Also
    --------
    soft_demographic_parity_difference : the same on predicted probabilities.
    independence_gap : the signed two-group version.

    Examples
    --------
    >>> from skfairbilevel.metrics import demographic_parity_difference
    >>> y_true = [0, 1, 1, 0, 1, 0]
    >>> y_pred = [1, 1, 0, 0, 0, 0]
    >>> sex = ["f", "f", "f", "m", "m", "m"]
    >>> round(demographic_parity_difference(y_true, y_pred, sensitive_features=sex), 4)
    0.6667
    """
    _check_method(method)
    yt, yp, gid, _, sw = _prepare(y_true, y_pred, sensitive_features, sample_weight)
    return max(
        float(
            _fl.demographic_parity_difference(
                t, p, sensitive_features=gid, method=method, sample_weight=sw
            )
        )
        for _, t, p in _ovr_targets(yt, yp, pos_label)
    )


def equalized_odds_difference(
    y_true,
    y_pred,
    *,
    sensitive_features,
    method="between_groups",
    sample_weight=None,
    agg="worst_case",
    pos_label=None,
):
    """Equalized odds difference: spread of the group TPRs and FPRs.

    With ``agg="worst_case"`` the greater of the true-positive-rate difference and the
    false-positive-rate difference between groups; with ``agg="mean"`` their mean. For
    binary targets the value is exactly :func:`fairlearn.metrics.equalized_odds_difference`
    (fairlearn computes it). Multi-class targets (where fairlearn raises) give the maximum
    over classes of the one-vs-rest value.

    A group without positives (or negatives) has TPR (FPR) 0, as in fairlearn.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    sensitive_features : array-like of shape (n_samples,) or (n_samples, n_features)
        Group membership. Several columns define intersectional groups.
    method : {"between_groups", "to_overall"}, default="between_groups"
        How differences are taken, as in :meth:`fairlearn.metrics.MetricFrame.difference`.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights.
    agg : {"worst_case", "mean"}, default="worst_case"
        Aggregation of the TPR and FPR differences.
    pos_label : label, default=None
        The positive label; see :func:`demographic_parity_difference`.

    Returns
    -------
    difference : float
        In ``[0, 1]``.

    See Also
    --------
    separation_gap : the signed two-group TPR / FPR gaps.

    Examples
    --------
    >>> from skfairbilevel.metrics import equalized_odds_difference
    >>> y_true = [1, 1, 0, 0, 1, 1, 0, 0]
    >>> y_pred = [1, 1, 1, 0, 1, 0, 0, 0]
    >>> A = ["a"] * 4 + ["b"] * 4
    >>> equalized_odds_difference(y_true, y_pred, sensitive_features=A)
    0.5
    >>> equalized_odds_difference(y_true, y_pred, sensitive_features=A, agg="mean")
    0.5
    """
    _check_method(method)
    if agg not in _AGGS:
        raise ValueError(f"agg must be one of {_AGGS}; got {agg!r}.")
    yt, yp, gid, _, sw = _prepare(y_true, y_pred, sensitive_features, sample_weight)
    return max(
        float(
            _fl.equalized_odds_difference(
                t, p, sensitive_features=gid, method=method, sample_weight=sw, agg=agg
            )
        )
        for _, t, p in _ovr_targets(yt, yp, pos_label)
    )


def equal_opportunity_difference(
    y_true,
    y_pred,
    *,
    sensitive_features,
    method="between_groups",
    sample_weight=None,
    pos_label=None,
):
    """Equal opportunity difference: spread of the group true positive rates.

    For binary targets exactly :func:`fairlearn.metrics.equal_opportunity_difference`
    (fairlearn computes it). Multi-class targets give the maximum over classes of the
    one-vs-rest TPR (per-class recall) difference.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    sensitive_features : array-like of shape (n_samples,) or (n_samples, n_features)
        Group membership. Several columns define intersectional groups.
    method : {"between_groups", "to_overall"}, default="between_groups"
        How differences are taken, as in :meth:`fairlearn.metrics.MetricFrame.difference`.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights.
    pos_label : label, default=None
        The positive label; see :func:`demographic_parity_difference`.

    Returns
    -------
    difference : float
        In ``[0, 1]``.

    Examples
    --------
    >>> from skfairbilevel.metrics import equal_opportunity_difference
    >>> y_true = [1, 1, 0, 0, 1, 1, 0, 0]
    >>> y_pred = [1, 1, 1, 0, 1, 0, 0, 0]
    >>> A = ["a"] * 4 + ["b"] * 4
    >>> equal_opportunity_difference(y_true, y_pred, sensitive_features=A)
    0.5
    """
    _check_method(method)
    yt, yp, gid, _, sw = _prepare(y_true, y_pred, sensitive_features, sample_weight)
    return max(
        float(
            _fl.equal_opportunity_difference(
                t, p, sensitive_features=gid, method=method, sample_weight=sw
            )
        )
        for _, t, p in _ovr_targets(yt, yp, pos_label)
    )


def accuracy_parity_difference(
    y_true, y_pred, *, sensitive_features, method="between_groups", sample_weight=None
):
    """Accuracy parity difference: best minus worst group accuracy.

    ``max_a acc_a - min_a acc_a`` (BiFP, Definition 1), computed with a fairlearn
    :class:`~fairlearn.metrics.MetricFrame` of :func:`sklearn.metrics.accuracy_score`.
    Works for any number of classes.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    sensitive_features : array-like of shape (n_samples,) or (n_samples, n_features)
        Group membership. Several columns define intersectional groups.
    method : {"between_groups", "to_overall"}, default="between_groups"
        ``"to_overall"``: the largest ``|acc_a - acc|`` instead.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights.

    Returns
    -------
    difference : float
        In ``[0, 1]``.

    Examples
    --------
    >>> from skfairbilevel.metrics import accuracy_parity_difference
    >>> y_true = [0, 1, 1, 0, 1, 0]
    >>> y_pred = [0, 1, 1, 1, 0, 0]
    >>> A = ["a", "a", "a", "b", "b", "b"]
    >>> round(accuracy_parity_difference(y_true, y_pred, sensitive_features=A), 4)
    0.6667
    """
    _check_method(method)
    yt, yp, gid, _, sw = _prepare(y_true, y_pred, sensitive_features, sample_weight)
    _check_labels(yt, yp)
    frame = _fl.MetricFrame(
        metrics=accuracy_score,
        y_true=yt,
        y_pred=yp,
        sensitive_features=gid,
        sample_params={"sample_weight": sw},
    )
    return float(frame.difference(method=method))


# ----------------------------------------------------------------------------------------
# probability-based metrics
# ----------------------------------------------------------------------------------------


def _check_scores(y_score, n_samples=None, name="y_score"):
    """``y_score`` as a float array of shape (n, K): K=1 for 1-D input."""
    if y_score is None:
        raise ValueError(f"{name} is None; pass predicted probabilities.")
    try:
        S = np.asarray(_dataframe.to_numpy(y_score), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{name} must hold numeric probabilities (estimator.predict_proba); {exc}"
        ) from exc
    if S.ndim == 1:
        S = S[:, None]
    if S.ndim != 2 or S.shape[1] == 0:
        raise ValueError(
            f"{name} must be 1-D (probability of the positive class) or 2-D of shape "
            f"(n_samples, n_classes) as returned by predict_proba; got shape {S.shape}."
        )
    if S.shape[0] == 0:
        raise ValueError(f"{name} is empty; the metric needs at least one sample.")
    if n_samples is not None and S.shape[0] != n_samples:
        raise ValueError(
            f"{name} has {S.shape[0]} samples but y_true has {n_samples}; pass arrays "
            f"of the same length."
        )
    if not np.all(np.isfinite(S)):
        raise ValueError(f"{name} contains NaN or infinite values; pass probabilities.")
    if S.min() < 0 or S.max() > 1:
        raise ValueError(
            f"{name} has values outside [0, 1] (min {S.min():.4g}, max {S.max():.4g}); "
            f"pass probabilities (predict_proba), not decision_function scores."
        )
    return S


def _score_columns(S):
    """Columns of interest: the single column, column 1 of two, or every class column."""
    if S.shape[1] == 1:
        return [S[:, 0]]
    if S.shape[1] == 2:
        return [S[:, 1]]
    return [S[:, j] for j in range(S.shape[1])]


def soft_demographic_parity_difference(y_true, y_score, *, sensitive_features, sample_weight=None):
    """Soft demographic parity difference on predicted probabilities.

    ``max_a E[p | A=a] - min_a E[p | A=a]``, where ``p`` is the predicted probability of
    the positive class: ``y_score`` itself when it is 1-D, column 1 of a two-column
    ``predict_proba`` output. With three or more columns (multi-class) the result is the
    maximum over classes of the per-class value.

    ``y_true`` is accepted and ignored, so the function can be a scorer with
    ``response_method="predict_proba"``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or None
        Ignored.
    y_score : array-like of shape (n_samples,) or (n_samples, n_classes)
        Predicted probabilities in ``[0, 1]``.
    sensitive_features : array-like of shape (n_samples,) or (n_samples, n_features)
        Group membership. Several columns define intersectional groups.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights; group means are weighted means.

    Returns
    -------
    difference : float
        In ``[0, 1]``.

    Examples
    --------
    >>> from skfairbilevel.metrics import soft_demographic_parity_difference
    >>> proba = [0.9, 0.7, 0.2, 0.4]
    >>> soft_demographic_parity_difference(None, proba, sensitive_features=[0, 0, 1, 1])
    0.5
    """
    S = _check_scores(y_score)
    n = S.shape[0]
    gid, groups = _check_groups(sensitive_features, n, "y_score")
    sw = check_sample_weight(sample_weight, n, x_name="y_score")
    w = np.ones(n) if sw is None else sw
    G = len(groups)
    den = np.bincount(gid, weights=w, minlength=G)
    present = den > 0
    out = 0.0
    for p in _score_columns(S):
        means = np.bincount(gid, weights=w * p, minlength=G)[present] / den[present]
        out = max(out, float(means.max() - means.min()))
    return out


def _calibration_targets(y_true, S):
    """``[(y01, p), ...]`` one-vs-rest pairs for the sufficiency gap."""
    yt = _check_1d(y_true, "y_true", S.shape[0], ref_name="y_score")
    kind = type_of_target(yt, input_name="y_true")
    if kind == "continuous":
        raise ValueError(f"y_true {_CONTINUOUS_ADVICE}")
    labels = unique_labels(yt)
    values = labels.tolist()
    K = S.shape[1]
    if K == 1:
        if len(labels) > 2:
            raise ValueError(
                f"y_true has {len(labels)} classes but y_score is 1-D; pass the full "
                f"predict_proba output of shape (n_samples, n_classes)."
            )
        pos = _default_positive(labels)
        return [((yt == pos).astype(np.int64), S[:, 0])]
    if len(labels) == K:
        classes = values
    elif all(isinstance(v, (Integral, np.integer)) and 0 <= v < K for v in values):
        classes = list(range(K))
    else:
        raise ValueError(
            f"y_score has {K} columns (one per class, in the sorted order of "
            f"estimator.classes_) but y_true has {len(labels)} distinct labels {values}; "
            f"the columns cannot be matched to the labels. Pass y_true containing every "
            f"class, or integer labels 0..{K - 1}."
        )
    pairs = [((yt == c).astype(np.int64), S[:, j]) for j, c in enumerate(classes)]
    return pairs[1:] if K == 2 else pairs


def _sufficiency_gap_binary(y01, p, gid, n_groups, n_bins, strategy):
    t_all, p_all = calibration_curve(y01, p, pos_label=1, n_bins=n_bins, strategy=strategy)
    gaps = np.empty(n_groups)
    for g in range(n_groups):
        mask = gid == g
        t_g, p_g = calibration_curve(
            y01[mask], p[mask], pos_label=1, n_bins=n_bins, strategy=strategy
        )
        # p_g is strictly increasing (bin means of disjoint bins); np.interp holds the end
        # values outside [p_g[0], p_g[-1]] and is the constant t_g[0] for a single bin.
        gaps[g] = np.mean(np.abs(t_all - np.interp(p_all, p_g, t_g)))
    return float(gaps.mean())


def sufficiency_gap(y_true, y_score, *, sensitive_features, n_bins=5, strategy="uniform"):
    """Sufficiency gap (FACIMS): distance between group and overall calibration curves.

    1. The overall calibration curve ``(t_all, p_all) = calibration_curve(y, p, n_bins)``
       (:func:`sklearn.calibration.calibration_curve`; empty bins are dropped): ``p_all``
       the mean predicted probability and ``t_all`` the fraction of positives per bin.
    2. For each group ``a``, its own calibration curve ``(t_a, p_a)`` on its rows,
       linearly interpolated at ``p_all`` (:func:`numpy.interp`, ``p -> t``; outside the
       range of ``p_a`` the end values are held).
    3. ``SG = mean_a mean_bins |t_all - t_a(p_all)|`` (every group weighs the same).

    A group whose predictions all fall in one bin (for instance a group of one row) has a
    one-point curve and contributes that constant fraction of positives; no group is
    skipped or zero-filled (the FACIMS reference code silently zero-filled such groups).
    Groups without rows cannot occur: groups are the values present in
    ``sensitive_features``.

    Multi-class (``predict_proba`` output with three or more columns): the maximum over
    classes of the one-vs-rest gap, column ``j`` being the probability of the ``j``-th
    label in sorted order (``estimator.classes_``).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels. For a binary problem the positive class is 1 for ``{0, 1}`` or
        ``{-1, 1}`` labels, otherwise the greater label.
    y_score : array-like of shape (n_samples,) or (n_samples, n_classes)
        Predicted probabilities in ``[0, 1]``: of the positive class (1-D) or the
        ``predict_proba`` output (2-D; for two columns, column 1 is used).
    sensitive_features : array-like of shape (n_samples,) or (n_samples, n_features)
        Group membership. Several columns define intersectional groups.
    n_bins : int, default=5
        Number of bins of the calibration curves (FACIMS uses 5).
    strategy : {"uniform", "quantile"}, default="uniform"
        Binning strategy of :func:`~sklearn.calibration.calibration_curve`.

    Returns
    -------
    gap : float
        In ``[0, 1]``; 0 when every group's curve agrees with the overall curve.

    Examples
    --------
    >>> from skfairbilevel.metrics import sufficiency_gap
    >>> y_true = [0, 1, 0, 1]
    >>> proba = [0.1, 0.1, 0.9, 0.9]
    >>> A = ["a", "a", "b", "b"]
    >>> sufficiency_gap(y_true, proba, sensitive_features=A, n_bins=2)
    0.0
    >>> sufficiency_gap([0, 0, 1, 1], proba, sensitive_features=A, n_bins=2)
    0.5
    """
    if not isinstance(n_bins, (Integral, np.integer)) or isinstance(n_bins, bool) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer; got {n_bins!r}.")
    if strategy not in ("uniform", "quantile"):
        raise ValueError(f"strategy must be 'uniform' or 'quantile'; got {strategy!r}.")
    S = _check_scores(y_score)
    pairs = _calibration_targets(y_true, S)
    gid, groups = _check_groups(sensitive_features, S.shape[0], "y_score")
    return max(
        _sufficiency_gap_binary(y01, p, gid, len(groups), int(n_bins), strategy) for y01, p in pairs
    )


# ----------------------------------------------------------------------------------------
# signed two-group gaps (Fast & Fair)
# ----------------------------------------------------------------------------------------


def _two_groups(sensitive_features, n, func_name):
    gid, groups = _check_groups(sensitive_features, n, "y_true")
    if len(groups) != 2:
        shown = list(groups[:10])
        raise ValueError(
            f"{func_name} is a signed gap between exactly 2 groups (s1 - s0), but "
            f"sensitive_features has {len(groups)} group(s): {shown}"
            f"{' ...' if len(groups) > 10 else ''}. For more groups use the unsigned "
            f"differences (demographic_parity_difference, ...), or merge the groups."
        )
    return gid, groups


def _signed_gap(event, condition, gid, groups, sw, func_name, condition_text):
    w = np.ones(gid.shape[0]) if sw is None else sw
    rates = []
    for g in (0, 1):
        in_cell = (gid == g) & condition
        den = w[in_cell].sum()
        if den <= 0:
            warnings.warn(
                f"{func_name}: group {groups[g]!r} has no samples with {condition_text}, "
                f"so its rate is undefined and the gap is nan.",
                FairnessWarning,
                stacklevel=3,
            )
            rates.append(math.nan)
        else:
            rates.append(float(w[in_cell & event].sum() / den))
    return rates[1] - rates[0]


def _prepare_signed(y_true, y_pred, sensitive_features, sample_weight, func_name):
    yt, yp, _, _, sw = _prepare(y_true, y_pred, sensitive_features, sample_weight)
    labels = _check_labels(yt, yp)
    if len(labels) > 2:
        raise ValueError(
            f"{func_name} is defined for binary targets; y_true / y_pred have "
            f"{len(labels)} labels. Use the one-vs-rest differences "
            f"(demographic_parity_difference, ...) for multi-class targets."
        )
    gid, groups = _two_groups(sensitive_features, yt.shape[0], func_name)
    return yt, yp, gid, groups, sw, labels


def independence_gap(y_true, y_pred, *, sensitive_features, k=1, sample_weight=None):
    """Signed independence gap ``P(y_pred = k | s1) - P(y_pred = k | s0)``.

    Fast & Fair's "independence" (signed demographic parity). ``s0`` and ``s1`` are the
    two groups in sorted order of their labels (e.g. ``"f"`` then ``"m"``, or 0 then 1).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels (only checked to be binary and consistent with ``y_pred``).
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    sensitive_features : array-like of shape (n_samples,) or (n_samples, n_features)
        Exactly two groups are required.
    k : label, default=1
        The predicted label whose rate is compared. ``k=0`` gives the negated ``k=1`` gap.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights.

    Returns
    -------
    gap : float
        In ``[-1, 1]``; nan (with a :class:`~skfairbilevel.exceptions.FairnessWarning`)
        only if a group has zero total weight.

    Examples
    --------
    >>> from skfairbilevel.metrics import independence_gap
    >>> y_pred = [1, 0, 0, 0, 1, 1, 1, 0]
    >>> A = [0, 0, 0, 0, 1, 1, 1, 1]
    >>> independence_gap(y_pred, y_pred, sensitive_features=A)
    0.5
    """
    yt, yp, gid, groups, sw, labels = _prepare_signed(
        y_true, y_pred, sensitive_features, sample_weight, "independence_gap"
    )
    _check_label_arg(k, labels, "k")
    return _signed_gap(
        yp == k,
        np.ones(yp.shape[0], dtype=bool),
        gid,
        groups,
        sw,
        "independence_gap",
        "any prediction",
    )


def separation_gap(y_true, y_pred, *, sensitive_features, k=1, pos_label=1, sample_weight=None):
    """Signed separation gap ``P(y_pred = 1 | y = k, s1) - P(y_pred = 1 | y = k, s0)``.

    ``k=1``: the true-positive-rate gap; ``k=0``: the false-positive-rate gap (Fast &
    Fair's "separation"). ``s0``/``s1`` are the two groups in sorted order.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    sensitive_features : array-like of shape (n_samples,) or (n_samples, n_features)
        Exactly two groups are required.
    k : label, default=1
        The true label conditioned on.
    pos_label : label, default=1
        The predicted label counted as positive (the "1" of the formula).
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights.

    Returns
    -------
    gap : float
        In ``[-1, 1]``, or nan with a :class:`~skfairbilevel.exceptions.FairnessWarning`
        when a group has no sample with ``y = k``.

    Examples
    --------
    >>> from skfairbilevel.metrics import separation_gap
    >>> y_true = [1, 1, 0, 0, 1, 1, 0, 0]
    >>> y_pred = [1, 0, 0, 0, 1, 1, 1, 0]
    >>> A = [0, 0, 0, 0, 1, 1, 1, 1]
    >>> separation_gap(y_true, y_pred, sensitive_features=A, k=1)
    0.5
    >>> separation_gap(y_true, y_pred, sensitive_features=A, k=0)
    0.5
    """
    yt, yp, gid, groups, sw, labels = _prepare_signed(
        y_true, y_pred, sensitive_features, sample_weight, "separation_gap"
    )
    _check_label_arg(k, labels, "k")
    _check_label_arg(pos_label, labels, "pos_label")
    return _signed_gap(
        yp == pos_label, yt == k, gid, groups, sw, "separation_gap", f"y_true == {k!r}"
    )


def predictive_parity_gap(
    y_true, y_pred, *, sensitive_features, k=1, pos_label=1, sample_weight=None
):
    """Signed predictive parity gap ``P(y = 1 | y_pred = k, s1) - P(y = 1 | y_pred = k, s0)``.

    Fast & Fair's "sufficiency": ``k=1`` gives the positive-predictive-value (precision)
    gap, ``k=0`` the false-omission-rate gap. Not to be confused with
    :func:`sufficiency_gap`, the calibration-curve distance of FACIMS.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    sensitive_features : array-like of shape (n_samples,) or (n_samples, n_features)
        Exactly two groups are required.
    k : label, default=1
        The predicted label conditioned on.
    pos_label : label, default=1
        The true label counted as positive (the "1" of the formula).
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights.

    Returns
    -------
    gap : float
        In ``[-1, 1]``, or nan with a :class:`~skfairbilevel.exceptions.FairnessWarning`
        when a group has no sample with ``y_pred = k``.

    Examples
    --------
    >>> from skfairbilevel.metrics import predictive_parity_gap
    >>> y_true = [1, 0, 0, 0, 1, 1, 1, 0]
    >>> y_pred = [1, 1, 0, 0, 1, 1, 0, 0]
    >>> A = [0, 0, 0, 0, 1, 1, 1, 1]
    >>> predictive_parity_gap(y_true, y_pred, sensitive_features=A, k=1)
    0.5
    >>> predictive_parity_gap(y_true, y_pred, sensitive_features=A, k=0)
    0.5
    """
    yt, yp, gid, groups, sw, labels = _prepare_signed(
        y_true, y_pred, sensitive_features, sample_weight, "predictive_parity_gap"
    )
    _check_label_arg(k, labels, "k")
    _check_label_arg(pos_label, labels, "pos_label")
    return _signed_gap(
        yt == pos_label,
        yp == k,
        gid,
        groups,
        sw,
        "predictive_parity_gap",
        f"y_pred == {k!r}",
    )


# ----------------------------------------------------------------------------------------
# report
# ----------------------------------------------------------------------------------------


@dataclass
class FairnessReport:
    """Per-group and overall metrics plus the scalar fairness summary.

    Attributes
    ----------
    by_group : pandas.DataFrame
        One row per group (a MultiIndex for several sensitive columns), one column per
        metric.
    overall : pandas.Series
        The same metrics on all samples.
    summary : dict of str to float
        The scalar fairness metrics.
    """

    by_group: pd.DataFrame
    overall: pd.Series
    summary: dict = field(default_factory=dict)

    def __repr__(self):
        summary = "\n".join(f"  {k}: {v:.4f}" for k, v in self.summary.items())
        return (
            f"FairnessReport\nby_group:\n{self.by_group.to_string()}\n"
            f"overall:\n{self.overall.to_string()}\nsummary:\n{summary}"
        )


def _ovr_metric(metric, label):
    def ovr(y_true, y_pred, sample_weight=None):
        return metric(
            (y_true == label).astype(np.int64),
            (y_pred == label).astype(np.int64),
            sample_weight=sample_weight,
        )

    return ovr


def _balanced_accuracy(y_true, y_pred, sample_weight=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # classes of y_pred absent in y_true
        return balanced_accuracy_score(y_true, y_pred, sample_weight=sample_weight)


def _selection_rate(y_true, y_pred, sample_weight=None):
    return _fl.selection_rate(y_true, y_pred, pos_label=1, sample_weight=sample_weight)


def _tpr(y_true, y_pred, sample_weight=None):
    return _fl.true_positive_rate(y_true, y_pred, sample_weight=sample_weight, pos_label=1)


def _fpr(y_true, y_pred, sample_weight=None):
    return _fl.false_positive_rate(y_true, y_pred, sample_weight=sample_weight, pos_label=1)


def fairness_report(y_true, y_pred, *, sensitive_features, y_score=None, sample_weight=None):
    """Per-group metrics and the fairness summary of a set of predictions.

    Uses a fairlearn :class:`~fairlearn.metrics.MetricFrame` for the per-group table.
    Binary targets give the columns ``count``, ``selection_rate``, ``accuracy``,
    ``true_positive_rate``, ``false_positive_rate`` and ``balanced_accuracy`` (rates of
    the positive label, chosen as in :func:`demographic_parity_difference`).
    Multi-class targets give ``count``, ``accuracy``, ``balanced_accuracy`` and, for each
    class ``c``, one-vs-rest ``selection_rate[c]``, ``true_positive_rate[c]`` and
    ``false_positive_rate[c]``. ``count`` is the unweighted number of samples.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    sensitive_features : array-like of shape (n_samples,) or (n_samples, n_features)
        Group membership. Several columns define intersectional groups (a MultiIndex in
        ``by_group``; combinations that do not occur are left out).
    y_score : array-like of shape (n_samples,) or (n_samples, n_classes), default=None
        Predicted probabilities; adds the soft demographic parity difference and the
        sufficiency gap to ``summary``.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights (not used by ``count``, nor by the sufficiency gap, which
        :func:`~sklearn.calibration.calibration_curve` computes unweighted).

    Returns
    -------
    report : FairnessReport
        ``by_group`` (DataFrame), ``overall`` (Series) and ``summary`` (dict with keys
        ``demographic_parity_difference``, ``equalized_odds_difference``,
        ``equal_opportunity_difference``, ``accuracy_parity_difference`` and, with
        ``y_score``, ``soft_demographic_parity_difference`` and ``sufficiency_gap``), each
        equal to the function of the same name.

    Examples
    --------
    >>> from skfairbilevel.metrics import fairness_report
    >>> y_true = [0, 1, 1, 0, 1, 0]
    >>> y_pred = [0, 1, 1, 1, 0, 0]
    >>> report = fairness_report(y_true, y_pred, sensitive_features=["a"] * 3 + ["b"] * 3)
    >>> report.by_group["selection_rate"].round(4).tolist()
    [0.6667, 0.3333]
    >>> round(report.summary["accuracy_parity_difference"], 4)
    0.6667
    """
    yt, yp, gid, groups, sw = _prepare(y_true, y_pred, sensitive_features, sample_weight)
    frame = check_sensitive_features(
        _dataframe.to_pandas(sensitive_features), name="sensitive_features"
    )
    frame.columns = [
        f"sensitive_feature_{i}" if not isinstance(c, str) else c
        for i, c in enumerate(frame.columns)
    ]
    labels = _check_labels(yt, yp)
    if len(labels) <= 2:
        pos = _default_positive(labels)
        t, p = (yt == pos).astype(np.int64), (yp == pos).astype(np.int64)
        metrics = {
            "selection_rate": _selection_rate,
            "accuracy": accuracy_score,
            "true_positive_rate": _tpr,
            "false_positive_rate": _fpr,
            "balanced_accuracy": _balanced_accuracy,
        }
    else:
        t, p = yt, yp
        metrics = {"accuracy": accuracy_score, "balanced_accuracy": _balanced_accuracy}
        for c in labels:
            metrics[f"selection_rate[{c}]"] = _ovr_metric(_selection_rate, c)
        for c in labels:
            metrics[f"true_positive_rate[{c}]"] = _ovr_metric(_tpr, c)
        for c in labels:
            metrics[f"false_positive_rate[{c}]"] = _ovr_metric(_fpr, c)
    mf = _fl.MetricFrame(
        metrics={"count": _fl.count, **metrics},
        y_true=t,
        y_pred=p,
        sensitive_features=frame,
        sample_params={name: {"sample_weight": sw} for name in metrics},
    )
    by_group = mf.by_group.dropna(subset=["count"])
    by_group = by_group[by_group["count"] > 0].astype({"count": np.int64})
    overall = mf.overall

    # group ids as a categorical: already encoded (and warned about) above
    common = {"sensitive_features": pd.Categorical(gid), "sample_weight": sw}
    summary = {
        "demographic_parity_difference": demographic_parity_difference(yt, yp, **common),
        "equalized_odds_difference": equalized_odds_difference(yt, yp, **common),
        "equal_opportunity_difference": equal_opportunity_difference(yt, yp, **common),
        "accuracy_parity_difference": accuracy_parity_difference(yt, yp, **common),
    }
    if y_score is not None:
        summary["soft_demographic_parity_difference"] = soft_demographic_parity_difference(
            yt, y_score, **common
        )
        summary["sufficiency_gap"] = sufficiency_gap(
            yt, y_score, sensitive_features=common["sensitive_features"]
        )
    return FairnessReport(by_group=by_group, overall=overall, summary=summary)
