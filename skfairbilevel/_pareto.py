"""Pareto fronts of two objectives (e.g. accuracy against a fairness gap); no torch.

:func:`pareto_front` keeps the non-dominated points of a set of (x, y) pairs. The points
may be an array of shape (n, 2), a pandas DataFrame, or a sequence of mappings such as an
estimator's ``history_`` (one dict per epoch). The default orientation is the one of a
fairness/accuracy trade-off: ``x`` is a gap to minimise, ``y`` a score to maximise.
"""

from collections.abc import Mapping
from numbers import Integral

import numpy as np
import pandas as pd

__all__ = ["pareto_front", "pareto_mask"]


def _check_maximize(maximize):
    if isinstance(maximize, bool | np.bool_):
        return bool(maximize), bool(maximize)
    try:
        mx, my = maximize
    except (TypeError, ValueError):
        mx = my = None
    if not all(isinstance(v, bool | np.bool_) for v in (mx, my)):
        raise ValueError(
            f"maximize must be a bool or a pair of bools (for x and y); got {maximize!r}. "
            f"For a fairness gap (x) against accuracy (y) use maximize=(False, True)."
        )
    return bool(mx), bool(my)


def _column(values, name):
    try:
        out = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"the {name} values must be numbers; got {list(values)[:5]!r}.") from None
    if np.isnan(out).any():
        bad = np.flatnonzero(np.isnan(out))[:5].tolist()
        raise ValueError(
            f"the {name} values contain NaN (positions {bad}); points without a value "
            f"cannot be ranked, drop them first."
        )
    return out


def _coordinates(points, x, y):
    """(kind, xs, ys) for the supported point containers."""
    if isinstance(points, pd.DataFrame):
        for key, label in ((x, "x"), (y, "y")):
            if key not in points.columns:
                raise ValueError(
                    f"{label}={key!r} is not a column of the DataFrame; columns are "
                    f"{list(points.columns)}."
                )
        return "frame", _column(points[x], repr(x)), _column(points[y], repr(y))
    if isinstance(points, np.ndarray) or (
        isinstance(points, list | tuple) and points and not isinstance(points[0], Mapping)
    ):
        arr = np.asarray(points)
        if arr.ndim != 2 or arr.shape[1] < 2:
            raise ValueError(
                f"an array of points must have shape (n_points, >=2); got {arr.shape}."
            )
        ix = 0 if x is None else x
        iy = 1 if y is None else y
        for key, label in ((ix, "x"), (iy, "y")):
            if not isinstance(key, Integral) or not -arr.shape[1] <= key < arr.shape[1]:
                raise ValueError(
                    f"for an array of points, {label} must be a column index below "
                    f"{arr.shape[1]}; got {key!r}."
                )
        return (
            "array",
            _column(arr[:, ix], f"x (column {ix})"),
            _column(arr[:, iy], f"y (column {iy})"),
        )
    if isinstance(points, list | tuple):
        if x is None or y is None:
            raise ValueError(
                "points given as mappings (e.g. a history_) need the keys: pass "
                "x=<fairness key> and y=<score key>, e.g. x='val_dp', y='val_accuracy'."
            )
        for i, rec in enumerate(points):
            if not isinstance(rec, Mapping):
                raise ValueError(f"point {i} is a {type(rec).__name__}, not a mapping.")
            for key, label in ((x, "x"), (y, "y")):
                if key not in rec:
                    raise ValueError(
                        f"point {i} has no key {key!r} ({label}); its keys are "
                        f"{sorted(rec, key=str)}. Validation metrics such as "
                        f"'val_accuracy' are only recorded when the estimator holds out "
                        f"a validation split (e.g. record_validation=True or "
                        f"early_stopping=True)."
                    )
        return (
            "records",
            _column([r[x] for r in points], repr(x)),
            _column([r[y] for r in points], repr(y)),
        )
    raise TypeError(
        f"points must be an array of shape (n, 2), a DataFrame or a list of mappings; got "
        f"{type(points).__name__}."
    )


def _front_indices(xs, ys, maximize):
    """Indices of the non-dominated points, sorted by x from best to worst."""
    mx, my = maximize
    # work with "smaller is better" on both axes
    a = -xs if mx else xs
    b = -ys if my else ys
    order = np.lexsort((np.arange(len(a)), b, a))  # by a, then b, then position
    keep, best_b = [], np.inf
    for i in order:
        if b[i] < best_b:  # strictly better on b than every point at least as good on a
            keep.append(int(i))
            best_b = b[i]
    return np.asarray(keep, dtype=np.int64)


def pareto_mask(xs, ys, *, maximize=(False, True)):
    """Boolean mask of the non-dominated points among ``(xs[i], ys[i])``.

    Of several identical points only the first is marked. See :func:`pareto_front`.
    """
    mx = _check_maximize(maximize)
    xs = _column(np.ravel(xs), "x")
    ys = _column(np.ravel(ys), "y")
    if xs.shape != ys.shape:
        raise ValueError(f"xs and ys differ in length ({xs.size} and {ys.size}).")
    mask = np.zeros(xs.size, dtype=bool)
    mask[_front_indices(xs, ys, mx)] = True
    return mask


def pareto_front(points, *, x=None, y=None, maximize=(False, True), return_indices=False):
    """The non-dominated points of a two-objective set, sorted along ``x``.

    Point ``p`` dominates ``q`` when it is at least as good on both objectives and
    strictly better on one. Of several identical points only the first (lowest
    position) is kept, so on an estimator's ``history_`` ties go to the earliest epoch.

    Parameters
    ----------
    points : array-like of shape (n, k), pandas.DataFrame or list of mappings
        The candidates: rows of an array, rows of a DataFrame, or dicts such as the
        per-epoch records of an estimator's ``history_``.
    x, y : str or int, default=None
        The two objectives: keys of the mappings or columns of the DataFrame (required
        there), or column indices of an array (default 0 and 1).
    maximize : bool or (bool, bool), default=(False, True)
        Whether ``x`` and ``y`` are maximised. The default minimises ``x`` (a fairness
        gap) and maximises ``y`` (an accuracy).
    return_indices : bool, default=False
        Also return the positions of the kept points in ``points``.

    Returns
    -------
    front : same kind as ``points``
        A list of the original mappings, a DataFrame (original index kept) or an array
        of the kept rows, ordered from the best ``x`` to the worst (so ``y`` gets better
        along the list).
    indices : ndarray of int, only if ``return_indices``
        Positions of the kept points in ``points``.

    Raises
    ------
    ValueError
        If a key or column is missing, a value is NaN, or ``maximize`` is malformed.

    Examples
    --------
    >>> from skfairbilevel._pareto import pareto_front
    >>> pts = [[0.02, 0.83], [0.01, 0.80], [0.03, 0.82], [0.18, 0.85]]
    >>> pareto_front(pts).tolist()
    [[0.01, 0.8], [0.02, 0.83], [0.18, 0.85]]
    >>> history = [{"epoch": 0, "val_dp": 0.05, "val_accuracy": 0.81},
    ...            {"epoch": 1, "val_dp": 0.04, "val_accuracy": 0.82}]
    >>> [r["epoch"] for r in pareto_front(history, x="val_dp", y="val_accuracy")]
    [1]
    """
    mx = _check_maximize(maximize)
    if isinstance(points, list | tuple) and not points:
        empty = np.zeros(0, dtype=np.int64)
        return (type(points)(), empty) if return_indices else type(points)()
    kind, xs, ys = _coordinates(points, x, y)
    idx = _front_indices(xs, ys, mx)
    if kind == "frame":
        front = points.iloc[idx]
    elif kind == "array":
        front = np.asarray(points)[idx]
    else:
        front = [points[i] for i in idx]
    return (front, idx) if return_indices else front
