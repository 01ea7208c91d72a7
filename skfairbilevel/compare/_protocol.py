"""Operating points chosen on validation data, and intervals over seeds.

For a fairness bound epsilon, the operating point of a method in one seed is chosen on
the **validation** rows only: the knob value with the best validation accuracy among
those whose validation unfairness is at most epsilon; if there is none, the least unfair
one, flagged ``feasible=False``. Its **test** figures are then averaged over seeds, with
a 95% t-interval (:func:`t_interval`), and the share of seeds whose chosen point breaks
epsilon on the test rows is the violation rate.
"""

import math

import numpy as np
import pandas as pd

__all__ = ["METRICS", "select_operating_points", "summarize", "t_interval"]

#: --metric: name -> (the column of runs.csv, the constraint fairness-aware methods target)
METRICS = {
    "demographic_parity": ("dp_difference", "demographic_parity"),
    "equalized_odds": ("eo_difference", "equalized_odds"),
    "sufficiency": ("sufficiency_gap", "demographic_parity"),
}
METRIC_ALIASES = {"dp": "demographic_parity", "eo": "equalized_odds", "sg": "sufficiency"}

_KEY = ["method", "params", "seed"]


def resolve_metric(metric):
    """Canonical ``--metric`` name (aliases ``dp``, ``eo``, ``sg``)."""
    name = METRIC_ALIASES.get(metric, metric)
    if name not in METRICS:
        raise ValueError(
            f"unknown metric {metric!r}; choose from {list(METRICS)} (or the "
            f"aliases {list(METRIC_ALIASES)})."
        )
    return name


def t_interval(values, confidence=0.95):
    """Mean and two-sided Student-t confidence interval of the mean.

    ``mean +- t_{(1 + confidence) / 2, n - 1} * s / sqrt(n)`` with ``s`` the sample
    standard deviation (``ddof=1``). With fewer than two values there is no interval:
    ``low`` and ``high`` are NaN.

    Parameters
    ----------
    values : array-like of float
    confidence : float, default=0.95

    Returns
    -------
    mean, low, high : float

    Examples
    --------
    >>> mean, low, high = t_interval([0.80, 0.82, 0.84])
    >>> round(mean, 3), round(low, 4), round(high, 4)
    (0.82, 0.7703, 0.8697)
    """
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan, math.nan
    half = float(
        stats.t.ppf(0.5 + confidence / 2.0, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    )
    return mean, mean - half, mean + half


def _validation_table(runs, column):
    """Validation accuracy and unfairness per (method, params, seed): mean over folds."""
    val = runs[runs["split"] == "validation"]
    agg = (
        val.groupby(_KEY, sort=False)
        .agg(
            point=("point", "first"),
            val_accuracy=("accuracy", "mean"),
            val_fairness=(column, "mean"),
        )
        .reset_index()
    )
    return agg


def select_operating_points(runs, epsilons, metric="demographic_parity"):
    """The operating point of every method, seed and epsilon, chosen on validation.

    Parameters
    ----------
    runs : pandas.DataFrame
        The rows of ``runs.csv``: ``method``, ``family``, ``params``, ``seed``,
        ``split`` (``"validation"`` / ``"test"``), ``point`` (position in the grid) and
        the metric columns. Several validation rows of one (method, params, seed)
        (cross-validation folds) are averaged.
    epsilons : sequence of float
        Fairness bounds.
    metric : str, default="demographic_parity"
        ``"demographic_parity"``, ``"equalized_odds"`` or ``"sufficiency"``.

    Returns
    -------
    chosen : pandas.DataFrame
        One row per method, epsilon and seed: ``params`` and ``point`` of the chosen fit,
        ``feasible`` (some knob value met epsilon on validation), its validation
        accuracy and unfairness, its test ``accuracy``, ``balanced_accuracy`` and
        ``fairness``, and ``violated`` (test unfairness above epsilon).

    Notes
    -----
    Among the fits with validation unfairness <= epsilon, the highest validation
    accuracy wins (ties: the lower unfairness, then the earlier grid point). With none,
    the lowest validation unfairness wins (ties: the higher accuracy, then the earlier
    point) and ``feasible`` is False. Fits without a value of the metric (no
    probabilities for the sufficiency gap) are not candidates.
    """
    column = METRICS[resolve_metric(metric)][0]
    cols = [
        "method",
        "family",
        "epsilon",
        "seed",
        "params",
        "point",
        "feasible",
        "val_accuracy",
        "val_fairness",
        "accuracy",
        "balanced_accuracy",
        "fairness",
        "violated",
    ]
    if runs.empty:
        return pd.DataFrame(columns=cols)
    val = _validation_table(runs, column).dropna(subset=["val_accuracy", "val_fairness"])
    test = runs[runs["split"] == "test"].set_index(_KEY)
    family = runs.groupby("method", sort=False)["family"].first()
    out = []
    for eps in epsilons:
        for (method, seed), cand in val.groupby(["method", "seed"], sort=False):
            ok = cand[cand["val_fairness"] <= eps]
            if len(ok):
                best = ok.sort_values(
                    ["val_accuracy", "val_fairness", "point"], ascending=[False, True, True]
                ).iloc[0]
            else:
                best = cand.sort_values(
                    ["val_fairness", "val_accuracy", "point"], ascending=[True, False, True]
                ).iloc[0]
            key = (method, best["params"], seed)
            if key not in test.index:  # no test row (interrupted before the refit)
                continue
            t = test.loc[key]
            t = t.iloc[0] if isinstance(t, pd.DataFrame) else t
            fair = float(t[column])
            out.append(
                dict(
                    method=method,
                    family=family[method],
                    epsilon=float(eps),
                    seed=int(seed),
                    params=best["params"],
                    point=int(best["point"]),
                    feasible=bool(len(ok)),
                    val_accuracy=float(best["val_accuracy"]),
                    val_fairness=float(best["val_fairness"]),
                    accuracy=float(t["accuracy"]),
                    balanced_accuracy=float(t["balanced_accuracy"]),
                    fairness=fair,
                    violated=bool(fair > eps),
                )
            )
    return pd.DataFrame(out, columns=cols)


SUMMARY_COLUMNS = [
    "method",
    "epsilon",
    "n_seeds",
    "accuracy_mean",
    "accuracy_low",
    "accuracy_high",
    "fairness_mean",
    "violation_rate",
    "fairness_low",
    "fairness_high",
    "balanced_accuracy_mean",
    "none_feasible",
    "family",
]


def summarize(chosen, confidence=0.95):
    """Test figures of the chosen points: mean and t-interval over seeds.

    Parameters
    ----------
    chosen : pandas.DataFrame
        :func:`select_operating_points`' output.
    confidence : float, default=0.95

    Returns
    -------
    summary : pandas.DataFrame
        One row per method and epsilon: ``n_seeds``, ``accuracy_mean`` /
        ``accuracy_low`` / ``accuracy_high`` (:func:`t_interval`), ``fairness_mean``
        (test unfairness on the chosen metric), ``violation_rate`` (share of seeds whose
        chosen point has test unfairness above epsilon), ``fairness_low`` /
        ``fairness_high``, ``balanced_accuracy_mean``, ``none_feasible`` (seeds where no
        knob value met epsilon on validation) and ``family``.
    """
    rows = []
    for (method, eps), g in chosen.groupby(["method", "epsilon"], sort=False):
        acc, acc_lo, acc_hi = t_interval(g["accuracy"], confidence)
        fair, fair_lo, fair_hi = t_interval(g["fairness"], confidence)
        rows.append(
            dict(
                method=method,
                epsilon=float(eps),
                n_seeds=int(len(g)),
                accuracy_mean=acc,
                accuracy_low=acc_lo,
                accuracy_high=acc_hi,
                fairness_mean=fair,
                violation_rate=float(g["violated"].mean()),
                fairness_low=fair_lo,
                fairness_high=fair_hi,
                balanced_accuracy_mean=float(g["balanced_accuracy"].mean()),
                none_feasible=int((~g["feasible"].astype(bool)).sum()),
                family=g["family"].iloc[0],
            )
        )
    out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    return out.sort_values(
        ["epsilon", "accuracy_mean"], ascending=[True, False], kind="stable"
    ).reset_index(drop=True)


def front_table(runs, metric="demographic_parity", confidence=0.95, *, score=None, column=None):
    """Each method's test front: mean and t-interval over seeds of every knob value.

    Returns one row per method and grid point: ``params``, ``n_seeds``, ``accuracy_mean``
    / ``_low`` / ``_high`` and ``fairness_mean`` / ``_low`` / ``_high`` on the test rows.
    ``score`` and ``column`` name other columns of ``runs`` for the two axes (default:
    ``accuracy`` and the column of ``metric``); the output keeps the names
    ``accuracy_*`` and ``fairness_*``.
    """
    column = METRICS[resolve_metric(metric)][0] if column is None else column
    score = "accuracy" if score is None else score
    test = runs[runs["split"] == "test"]
    rows = []
    for (method, point), g in test.groupby(["method", "point"], sort=False):
        acc = t_interval(g[score], confidence)
        fair = t_interval(g[column], confidence)
        rows.append(
            dict(
                method=method,
                family=g["family"].iloc[0],
                point=int(point),
                params=g["params"].iloc[0],
                n_seeds=int(len(g)),
                accuracy_mean=acc[0],
                accuracy_low=acc[1],
                accuracy_high=acc[2],
                fairness_mean=fair[0],
                fairness_low=fair[1],
                fairness_high=fair[2],
            )
        )
    return pd.DataFrame(
        rows,
        columns=[
            "method",
            "family",
            "point",
            "params",
            "n_seeds",
            "accuracy_mean",
            "accuracy_low",
            "accuracy_high",
            "fairness_mean",
            "fairness_low",
            "fairness_high",
        ],
    )
