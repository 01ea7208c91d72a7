"""Property-based tests of the fairness metrics (hypothesis).

Each example draws one metric and one problem, so that the fairlearn-backed metrics
(~30 ms per call) keep the file fast while all metrics are exercised.
"""

import warnings
from functools import partial

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skfairbilevel.exceptions import FairnessWarning
from skfairbilevel.metrics import (
    accuracy_parity_difference,
    bounded_group_loss,
    demographic_parity_difference,
    equal_opportunity_difference,
    equalized_odds_difference,
    group_loss_difference,
    group_loss_ratio,
    independence_gap,
    mean_prediction_difference,
    mean_prediction_ratio,
    predictive_parity_gap,
    separation_gap,
    soft_demographic_parity_difference,
    sufficiency_gap,
)

# name -> (function, uses "pred" or "score", signed, accepts sample_weight)
METRICS = {
    "dp": (demographic_parity_difference, "pred", False, True),
    "dp_to_overall": (
        partial(demographic_parity_difference, method="to_overall"),
        "pred",
        False,
        True,
    ),
    "eo": (equalized_odds_difference, "pred", False, True),
    "eo_mean": (partial(equalized_odds_difference, agg="mean"), "pred", False, True),
    "eop": (equal_opportunity_difference, "pred", False, True),
    "acc": (accuracy_parity_difference, "pred", False, True),
    "soft_dp": (soft_demographic_parity_difference, "score", False, True),
    "sg": (sufficiency_gap, "score", False, False),
    "sg_3bins": (partial(sufficiency_gap, n_bins=3), "score", False, False),
    "independence": (independence_gap, "pred", True, True),
    "separation_tpr": (partial(separation_gap, k=1), "pred", True, True),
    "separation_fpr": (partial(separation_gap, k=0), "pred", True, True),
    "ppv_gap": (partial(predictive_parity_gap, k=1), "pred", True, True),
    "for_gap": (partial(predictive_parity_gap, k=0), "pred", True, True),
}
NAMES = ["g0", "g1", "g2", "g3"]
PROBS = st.integers(0, 20).map(lambda i: i / 20)  # a grid, so bins are stable
BITS = st.integers(0, 1)


def _evaluate(name, y, pred, score, groups, weights):
    func, kind, _, takes_weights = METRICS[name]
    kw = {"sensitive_features": groups}
    if weights is not None and takes_weights:
        kw["sample_weight"] = weights
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FairnessWarning)  # nan of an empty cell
        return func(y, pred if kind == "pred" else score, **kw)


@st.composite
def problems(draw):
    name = draw(st.sampled_from(sorted(METRICS)))
    signed = METRICS[name][2]
    n_groups = 2 if signed else draw(st.integers(2, 4))
    n = draw(st.integers(n_groups + 1, 40))
    g = np.array(
        list(range(n_groups))
        + draw(st.lists(st.integers(0, n_groups - 1), min_size=n - n_groups, max_size=n - n_groups))
    )  # every group occurs
    y = np.array(draw(st.lists(BITS, min_size=n, max_size=n)))
    pred = np.array(draw(st.lists(BITS, min_size=n, max_size=n)))
    score = np.array(draw(st.lists(PROBS, min_size=n, max_size=n)))
    weights = None
    if draw(st.booleans()):
        weights = np.array(draw(st.lists(st.integers(1, 4), min_size=n, max_size=n)), float)
    return name, y, pred, score, g, weights


def _same(a, b, tol=1e-9):
    return (np.isnan(a) and np.isnan(b)) or abs(a - b) <= tol


@settings(max_examples=50, deadline=None, database=None)
@given(problem=problems(), data=st.data())
def test_range_renaming_and_row_permutation(problem, data):
    name, y, pred, score, g, weights = problem
    signed = METRICS[name][2]
    groups = np.array(NAMES, dtype=object)[g]
    value = _evaluate(name, y, pred, score, groups, weights)

    # documented range
    if signed:
        assert np.isnan(value) or -1 <= value <= 1
    else:
        assert 0 <= value <= 1

    # renaming the groups: unsigned metrics do not change; a signed gap keeps its value
    # when the sorted order of the two groups is kept and flips its sign otherwise
    pool = ["alpha", "beta", "zeta", "omega"]
    perm = data.draw(st.permutations(range(len(NAMES))), label="renaming")
    renamed = np.array([pool[perm[i]] for i in range(len(NAMES))], dtype=object)[g]
    value_renamed = _evaluate(name, y, pred, score, renamed, weights)
    n_groups = len(np.unique(g))
    if signed:
        order_kept = sorted(range(n_groups), key=lambda i: pool[perm[i]]) == [0, 1]
        assert _same(value_renamed, value if order_kept else -value)
    else:
        assert _same(value_renamed, value)

    # permuting the rows
    rows = np.array(data.draw(st.permutations(range(len(y))), label="rows"))
    value_perm = _evaluate(
        name,
        y[rows],
        pred[rows],
        score[rows],
        groups[rows],
        None if weights is None else weights[rows],
    )
    assert _same(value_perm, value)


@st.composite
def group_blind_problems(draw):
    """The same (y, y_pred, score, weight) rows repeated for every group."""
    name = draw(st.sampled_from(sorted(METRICS)))
    n_groups = 2 if METRICS[name][2] else draw(st.integers(2, 4))
    m = draw(st.integers(1, 15))
    y = draw(st.lists(BITS, min_size=m, max_size=m))
    pred = draw(st.lists(BITS, min_size=m, max_size=m))
    score = draw(st.lists(PROBS, min_size=m, max_size=m))
    weights = draw(st.one_of(st.none(), st.lists(st.integers(1, 4), min_size=m, max_size=m)))
    tile = partial(np.tile, reps=n_groups)
    groups = np.repeat(np.array(NAMES[:n_groups], dtype=object), m)
    return (
        name,
        tile(np.array(y)),
        tile(np.array(pred)),
        tile(np.array(score)),
        groups,
        None if weights is None else tile(np.array(weights, float)),
    )


@settings(max_examples=50, deadline=None, database=None)
@given(problem=group_blind_problems())
def test_zero_when_predictions_do_not_depend_on_group(problem):
    name, y, pred, score, groups, weights = problem
    value = _evaluate(name, y, pred, score, groups, weights)
    if METRICS[name][2] and np.isnan(value):
        return  # signed gap with an empty cell in both groups
    assert value == pytest.approx(0.0, abs=1e-9)


# ---------------------------------------------------------------------------------------
# regression metrics
# ---------------------------------------------------------------------------------------

# name -> (function, kind): "difference" (>= 0, 0 at parity), "ratio" (in [0, 1], 1 at
# parity) or "max" (bounded group loss)
REGRESSION = {
    "mp_diff": (mean_prediction_difference, "difference"),
    "mp_diff_overall": (partial(mean_prediction_difference, method="to_overall"), "difference"),
    "mp_ratio": (mean_prediction_ratio, "ratio"),
    "mp_ratio_overall": (partial(mean_prediction_ratio, method="to_overall"), "ratio"),
    "bgl_mse": (bounded_group_loss, "max"),
    "bgl_mae": (partial(bounded_group_loss, loss="absolute_error"), "max"),
    "gl_diff": (group_loss_difference, "difference"),
    "gl_diff_mae_overall": (
        partial(group_loss_difference, loss="absolute_error", method="to_overall"),
        "difference",
    ),
    "gl_ratio": (group_loss_ratio, "ratio"),
    "gl_ratio_overall": (partial(group_loss_ratio, method="to_overall"), "ratio"),
}
VALUES = st.integers(0, 40).map(lambda i: i / 4)  # non-negative, exact in binary


@st.composite
def regression_problems(draw):
    name = draw(st.sampled_from(sorted(REGRESSION)))
    n_groups = draw(st.integers(2, 4))
    n = draw(st.integers(n_groups + 1, 40))
    g = np.array(
        list(range(n_groups))
        + draw(st.lists(st.integers(0, n_groups - 1), min_size=n - n_groups, max_size=n - n_groups))
    )
    y = np.array(draw(st.lists(VALUES, min_size=n, max_size=n)))
    pred = np.array(draw(st.lists(VALUES, min_size=n, max_size=n)))
    weights = None
    if draw(st.booleans()):
        weights = np.array(draw(st.lists(st.integers(1, 4), min_size=n, max_size=n)), float)
    return name, y, pred, np.array(NAMES, dtype=object)[g], weights


def _regression(name, y, pred, groups, weights):
    return REGRESSION[name][0](y, pred, sensitive_features=groups, sample_weight=weights)


@settings(max_examples=60, deadline=None, database=None)
@given(problem=regression_problems(), data=st.data())
def test_regression_range_invariances_and_repetition(problem, data):
    name, y, pred, groups, weights = problem
    kind = REGRESSION[name][1]
    value = _regression(name, y, pred, groups, weights)
    assert np.isfinite(value)
    if kind == "ratio":
        assert 0 <= value <= 1
    else:
        assert value >= 0
    if kind == "max":  # the largest group loss is at least the overall loss
        overall = _regression(name, y, pred, np.zeros(len(y)), weights)
        assert value >= overall - 1e-12

    # renaming the groups and permuting the rows change nothing
    pool = np.array(["alpha", "beta", "zeta", "omega"], dtype=object)
    perm = np.array(data.draw(st.permutations(range(len(NAMES))), label="renaming"))
    renamed = pool[perm][np.searchsorted(NAMES, groups.astype(str))]
    assert _same(_regression(name, y, pred, renamed, weights), value)
    rows = np.array(data.draw(st.permutations(range(len(y))), label="rows"))
    value_perm = _regression(
        name, y[rows], pred[rows], groups[rows], None if weights is None else weights[rows]
    )
    assert _same(value_perm, value)

    # integer weights are repetitions of the rows
    if weights is not None:
        reps = weights.astype(int)
        repeated = _regression(
            name, np.repeat(y, reps), np.repeat(pred, reps), np.repeat(groups, reps), None
        )
        assert _same(repeated, value)


@settings(max_examples=40, deadline=None, database=None)
@given(problem=regression_problems(), shift=VALUES, scale=st.integers(1, 8))
def test_mean_prediction_shift_and_scale(problem, shift, scale):
    name, _, pred, groups, weights = problem
    diff = mean_prediction_difference(None, pred, sensitive_features=groups, sample_weight=weights)
    assert _same(
        mean_prediction_difference(
            None, pred + shift, sensitive_features=groups, sample_weight=weights
        ),
        diff,
    )
    assert _same(
        mean_prediction_difference(
            None, scale * pred, sensitive_features=groups, sample_weight=weights
        ),
        scale * diff,
    )
    ratio = mean_prediction_ratio(None, pred, sensitive_features=groups, sample_weight=weights)
    assert _same(
        mean_prediction_ratio(None, scale * pred, sensitive_features=groups, sample_weight=weights),
        ratio,
    )


@settings(max_examples=40, deadline=None, database=None)
@given(
    name=st.sampled_from(sorted(REGRESSION)),
    n_groups=st.integers(2, 4),
    rows=st.lists(st.tuples(VALUES, VALUES, st.integers(1, 4)), min_size=1, max_size=15),
)
def test_regression_parity_when_every_group_has_the_same_rows(name, n_groups, rows):
    y, pred, w = (np.tile(np.array(col, float), n_groups) for col in zip(*rows, strict=True))
    groups = np.repeat(np.array(NAMES[:n_groups], dtype=object), len(rows))
    value = _regression(name, y, pred, groups, w)
    kind = REGRESSION[name][1]
    if kind == "ratio":
        assert value == pytest.approx(1.0, abs=1e-12)
    elif kind == "difference":
        assert value == pytest.approx(0.0, abs=1e-9)
    else:  # every group's loss is the overall loss
        assert value == pytest.approx(_regression(name, y, pred, np.zeros(len(y)), w), abs=1e-9)
