"""Group-fairness metrics of a regressor's predictions (numpy / pandas; no torch).

Two quantities per group ``a``, both weighted means over the rows of the group:

* the mean prediction ``m_a = E[y_pred | A = a]``, whose spread between groups is
  demographic parity for regression (statistical parity of Agarwal, Dudík and Wu, "Fair
  regression", ICML 2019): :func:`mean_prediction_difference`,
  :func:`mean_prediction_ratio`;
* the group loss ``L_a = E[loss(y_true, y_pred) | A = a]`` (mean squared or absolute
  error), whose largest value is bounded group loss (ibid.): :func:`bounded_group_loss`,
  and whose spread is :func:`group_loss_difference`, :func:`group_loss_ratio`.

Differences and ratios follow :meth:`fairlearn.metrics.MetricFrame.difference` and
:meth:`fairlearn.metrics.MetricFrame.ratio` (``method="between_groups"`` or
``"to_overall"``), with fairlearn's :func:`~fairlearn.metrics.mean_prediction`,
:func:`~sklearn.metrics.mean_squared_error` and
:func:`~sklearn.metrics.mean_absolute_error` as the per-group metrics. Groups whose
sample weights sum to zero have no mean and are left out.
"""

import numpy as np

from .. import _dataframe
from .._params import check_sample_weight
from ._fairness import _check_1d, _check_groups, _check_method

__all__ = [
    "mean_prediction_difference",
    "mean_prediction_ratio",
    "bounded_group_loss",
    "group_loss_difference",
    "group_loss_ratio",
]

_LOSSES = ("squared_error", "absolute_error")


def _check_values(y, name, n_samples=None, ref_name="y_pred"):
    """``y`` as a finite 1-D float64 array (a regression target or prediction)."""
    arr = _check_1d(y, name, n_samples, ref_name=ref_name)
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"{name} must hold numbers (a regressor's predict); got values such as "
                f"{arr[:3].tolist()!r}. The classification metrics "
                f"(demographic_parity_difference, ...) take class labels."
            ) from exc
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.isfinite(arr))
        raise ValueError(
            f"{name} has {bad.size} infinite value(s) (first at position {int(bad[0])}); "
            f"pass finite values."
        )
    return arr


def _prepare_pred(y_true, y_pred, sensitive_features, sample_weight):
    """``(y_pred, gid, n_groups, w)`` for the mean-prediction metrics (y_true: length)."""
    yp = _check_values(y_pred, "y_pred")
    n = yp.shape[0]
    if y_true is not None and _dataframe.n_rows(y_true) != n:
        raise ValueError(
            f"y_true has {_dataframe.n_rows(y_true)} samples but y_pred has {n}; pass "
            f"arrays of the same length (y_true is not used by this metric, pass None)."
        )
    gid, groups = _check_groups(sensitive_features, n, "y_pred")
    sw = check_sample_weight(sample_weight, n, x_name="y_pred")
    return yp, gid, len(groups), np.ones(n) if sw is None else sw


def _prepare_loss(y_true, y_pred, sensitive_features, sample_weight, loss):
    """``(row_losses, gid, n_groups, w)`` for the group-loss metrics."""
    if loss not in _LOSSES:
        raise ValueError(f"loss must be one of {_LOSSES}; got {loss!r}.")
    yt = _check_values(y_true, "y_true")
    yp = _check_values(y_pred, "y_pred", yt.shape[0], ref_name="y_true")
    gid, groups = _check_groups(sensitive_features, yt.shape[0], "y_true")
    sw = check_sample_weight(sample_weight, yt.shape[0], x_name="y_true")
    residual = yt - yp
    row_loss = residual * residual if loss == "squared_error" else np.abs(residual)
    return row_loss, gid, len(groups), np.ones(yt.shape[0]) if sw is None else sw


def _group_means(values, gid, n_groups, w):
    """Weighted means of ``values`` per group (groups of zero weight left out) and over
    all rows."""
    den = np.bincount(gid, weights=w, minlength=n_groups)
    num = np.bincount(gid, weights=w * values, minlength=n_groups)
    present = den > 0
    return num[present] / den[present], float(np.dot(w, values) / w.sum())


def _difference(by_group, overall, method):
    if method == "between_groups":
        return float(by_group.max() - by_group.min())
    return float(np.abs(by_group - overall).max())


def _ratio(by_group, overall, method):
    """fairlearn's ratio (at most 1) of non-negative values; 0 / 0 counts as equal (1)."""
    if method == "between_groups":
        top = by_group.max()
        return 1.0 if top == 0 else float(by_group.min() / top)
    if overall == 0:
        return 1.0 if np.all(by_group == 0) else 0.0
    r = by_group / overall
    r[r > 1] = 1.0 / r[r > 1]
    return float(r.min())


def mean_prediction_difference(
    y_true, y_pred, *, sensitive_features, method="between_groups", sample_weight=None
):
    """Demographic parity difference for regression: spread of the group mean predictions.

    ``max_a m_a - min_a m_a`` with ``m_a`` the (weighted) mean of ``y_pred`` over group
    ``a`` (``method="between_groups"``), or ``max_a |m_a - m|`` with ``m`` the mean over
    all rows (``method="to_overall"``). It equals
    ``MetricFrame(metrics=fairlearn.metrics.mean_prediction, ...).difference(method)``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or None
        Not used (only its length is checked); accepted so that the function is a
        metric ``(y_true, y_pred)`` and a scorer.
    y_pred : array-like of shape (n_samples,)
        Predictions of a regressor (numbers).
    sensitive_features : array-like of shape (n_samples,) or (n_samples, n_features)
        Group membership. Several columns define intersectional groups.
    method : {"between_groups", "to_overall"}, default="between_groups"
        How differences are taken, as in :meth:`fairlearn.metrics.MetricFrame.difference`.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights; group means are weighted means.

    Returns
    -------
    difference : float
        In the units of ``y_pred``, at least 0; 0 means equal mean predictions.

    See Also
    --------
    mean_prediction_ratio : the same comparison as a ratio.
    demographic_parity_difference : the classification version (selection rates).

    Examples
    --------
    >>> from skfairbilevel.metrics import mean_prediction_difference
    >>> y_pred = [10.0, 20.0, 30.0, 50.0]
    >>> A = ["a", "a", "b", "b"]
    >>> mean_prediction_difference(None, y_pred, sensitive_features=A)
    25.0
    >>> mean_prediction_difference(None, y_pred, sensitive_features=A, method="to_overall")
    12.5
    """
    _check_method(method)
    yp, gid, n_groups, w = _prepare_pred(y_true, y_pred, sensitive_features, sample_weight)
    return _difference(*_group_means(yp, gid, n_groups, w), method)


def mean_prediction_ratio(
    y_true, y_pred, *, sensitive_features, method="between_groups", sample_weight=None
):
    """Demographic parity ratio for regression: smallest over largest group mean prediction.

    ``min_a m_a / max_a m_a`` (``method="between_groups"``), or
    ``min_a min(m_a / m, m / m_a)`` (``method="to_overall"``), with ``m_a`` the (weighted)
    mean prediction of group ``a`` and ``m`` the overall mean: the
    :meth:`fairlearn.metrics.MetricFrame.ratio` of
    :func:`fairlearn.metrics.mean_prediction`. 1 means equal means; the "four-fifths
    rule" asks for at least 0.8.

    A ratio of means only compares magnitudes of one sign, so it is meant for
    non-negative predictions (amounts, counts, durations, prices) and refuses a negative
    group mean. When every mean is 0 the groups are equal and the ratio is 1 (fairlearn
    gives nan).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or None
        Not used (only its length is checked).
    y_pred : array-like of shape (n_samples,)
        Predictions of a regressor, of a non-negative quantity.
    sensitive_features : array-like of shape (n_samples,) or (n_samples, n_features)
        Group membership. Several columns define intersectional groups.
    method : {"between_groups", "to_overall"}, default="between_groups"
        How ratios are taken, as in :meth:`fairlearn.metrics.MetricFrame.ratio`.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights; group means are weighted means.

    Returns
    -------
    ratio : float
        In ``[0, 1]``; greater is fairer.

    Raises
    ------
    ValueError
        If a group's mean prediction is negative (use
        :func:`mean_prediction_difference`).

    See Also
    --------
    mean_prediction_difference : the same comparison as a difference (any sign).

    Examples
    --------
    >>> from skfairbilevel.metrics import mean_prediction_ratio
    >>> y_pred = [10.0, 20.0, 30.0, 50.0]
    >>> A = ["a", "a", "b", "b"]
    >>> mean_prediction_ratio(None, y_pred, sensitive_features=A)
    0.375
    """
    _check_method(method)
    yp, gid, n_groups, w = _prepare_pred(y_true, y_pred, sensitive_features, sample_weight)
    by_group, overall = _group_means(yp, gid, n_groups, w)
    if by_group.min() < 0:
        raise ValueError(
            f"mean_prediction_ratio compares non-negative quantities, but a group's mean "
            f"prediction is negative ({by_group.min():.4g}); a ratio of means of "
            f"different signs has no meaning. Use mean_prediction_difference instead."
        )
    return _ratio(by_group, overall, method)


def bounded_group_loss(
    y_true, y_pred, *, sensitive_features, loss="squared_error", sample_weight=None
):
    """Bounded group loss: the largest group loss, ``max_a L_a``.

    ``L_a`` is the (weighted) mean squared error or mean absolute error over the rows of
    group ``a``. The fairness constraint "bounded group loss" of Agarwal, Dudík and Wu
    (2019) asks ``L_a <= zeta`` for every group; this is the smallest such ``zeta``.
    It equals :func:`fairlearn.metrics.mean_squared_error_group_max` (or
    :func:`~fairlearn.metrics.mean_absolute_error_group_max`).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True target values.
    y_pred : array-like of shape (n_samples,)
        Predictions of a regressor.
    sensitive_features : array-like of shape (n_samples,) or (n_samples, n_features)
        Group membership. Several columns define intersectional groups.
    loss : {"squared_error", "absolute_error"}, default="squared_error"
        The group loss: mean squared error or mean absolute error of the group's rows.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights; group losses are weighted means.

    Returns
    -------
    loss : float
        At least 0, in the units of the loss (squared units of ``y`` for
        ``"squared_error"``); smaller is better.

    See Also
    --------
    group_loss_difference, group_loss_ratio : how unequal the group losses are.

    Examples
    --------
    >>> from skfairbilevel.metrics import bounded_group_loss
    >>> y_true = [1.0, 2.0, 3.0, 4.0]
    >>> y_pred = [1.0, 3.0, 3.0, 1.0]
    >>> A = ["a", "a", "b", "b"]
    >>> bounded_group_loss(y_true, y_pred, sensitive_features=A)
    4.5
    >>> bounded_group_loss(y_true, y_pred, sensitive_features=A, loss="absolute_error")
    1.5
    """
    row_loss, gid, n_groups, w = _prepare_loss(
        y_true, y_pred, sensitive_features, sample_weight, loss
    )
    by_group, _ = _group_means(row_loss, gid, n_groups, w)
    return float(by_group.max())


def group_loss_difference(
    y_true,
    y_pred,
    *,
    sensitive_features,
    loss="squared_error",
    method="between_groups",
    sample_weight=None,
):
    """Spread of the group losses: ``max_a L_a - min_a L_a``.

    With ``method="to_overall"``, ``max_a |L_a - L|`` where ``L`` is the loss over all
    rows. ``L_a`` is the (weighted) mean squared or absolute error of group ``a``; the
    value equals ``MetricFrame(metrics=mean_squared_error, ...).difference(method)``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True target values.
    y_pred : array-like of shape (n_samples,)
        Predictions of a regressor.
    sensitive_features : array-like of shape (n_samples,) or (n_samples, n_features)
        Group membership. Several columns define intersectional groups.
    loss : {"squared_error", "absolute_error"}, default="squared_error"
        The group loss: mean squared error or mean absolute error of the group's rows.
    method : {"between_groups", "to_overall"}, default="between_groups"
        How differences are taken, as in :meth:`fairlearn.metrics.MetricFrame.difference`.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights; group losses are weighted means.

    Returns
    -------
    difference : float
        At least 0; 0 means every group has the same loss.

    See Also
    --------
    bounded_group_loss : the largest group loss.
    group_loss_ratio : the same comparison as a ratio.

    Examples
    --------
    >>> from skfairbilevel.metrics import group_loss_difference
    >>> y_true = [1.0, 2.0, 3.0, 4.0]
    >>> y_pred = [1.0, 3.0, 3.0, 1.0]
    >>> group_loss_difference(y_true, y_pred, sensitive_features=["a", "a", "b", "b"])
    4.0
    """
    _check_method(method)
    row_loss, gid, n_groups, w = _prepare_loss(
        y_true, y_pred, sensitive_features, sample_weight, loss
    )
    return _difference(*_group_means(row_loss, gid, n_groups, w), method)


def group_loss_ratio(
    y_true,
    y_pred,
    *,
    sensitive_features,
    loss="squared_error",
    method="between_groups",
    sample_weight=None,
):
    """Smallest over largest group loss: ``min_a L_a / max_a L_a``.

    With ``method="to_overall"``, ``min_a min(L_a / L, L / L_a)`` where ``L`` is the loss
    over all rows: the :meth:`fairlearn.metrics.MetricFrame.ratio` of the group mean
    squared (or absolute) errors. 1 means every group has the same loss; when every
    group loss is 0 (perfect predictions) the ratio is 1 (fairlearn gives nan).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True target values.
    y_pred : array-like of shape (n_samples,)
        Predictions of a regressor.
    sensitive_features : array-like of shape (n_samples,) or (n_samples, n_features)
        Group membership. Several columns define intersectional groups.
    loss : {"squared_error", "absolute_error"}, default="squared_error"
        The group loss: mean squared error or mean absolute error of the group's rows.
    method : {"between_groups", "to_overall"}, default="between_groups"
        How ratios are taken, as in :meth:`fairlearn.metrics.MetricFrame.ratio`.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights; group losses are weighted means.

    Returns
    -------
    ratio : float
        In ``[0, 1]``; greater is fairer.

    See Also
    --------
    group_loss_difference : the same comparison as a difference.

    Examples
    --------
    >>> from skfairbilevel.metrics import group_loss_ratio
    >>> y_true = [1.0, 2.0, 3.0, 4.0]
    >>> y_pred = [1.0, 3.0, 3.0, 1.0]
    >>> group_loss_ratio(y_true, y_pred, sensitive_features=["a", "a", "b", "b"])
    0.1111111111111111
    """
    _check_method(method)
    row_loss, gid, n_groups, w = _prepare_loss(
        y_true, y_pred, sensitive_features, sample_weight, loss
    )
    return _ratio(*_group_means(row_loss, gid, n_groups, w), method)
