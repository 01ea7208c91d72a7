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
    demographic_parity_difference,
    equal_opportunity_difference,
    equalized_odds_difference,
    independence_gap,
    predictive_parity_gap,
    separation_gap,
    soft_demographic_parity_difference,
    sufficiency_gap,
)

# name -> (function, uses "pred" or "score", signed, accepts sample_weight)
METRICS = {
    "dp": (demographic_parity_difference, "pred", False, True),
    "dp_to_overall": (partial(demographic_parity_difference, method="to_overall"),
                      "pred", False, True),
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
    g = np.array(list(range(n_groups)) + draw(
        st.lists(st.integers(0, n_groups - 1), min_size=n - n_groups, max_size=n - n_groups)
    ))  # every group occurs
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
        name, y[rows], pred[rows], score[rows], groups[rows],
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
        name, tile(np.array(y)), tile(np.array(pred)), tile(np.array(score)), groups,
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
