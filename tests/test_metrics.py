"""Tests of skfairbilevel.metrics._fairness: fairlearn agreement and hand-computed values."""

import warnings

import fairlearn.metrics as flm
import numpy as np
import pandas as pd
import pytest

from skfairbilevel.exceptions import FairnessWarning
from skfairbilevel.metrics import (
    FairnessReport,
    accuracy_parity_difference,
    demographic_parity_difference,
    equal_opportunity_difference,
    equalized_odds_difference,
    fairness_report,
    independence_gap,
    predictive_parity_gap,
    separation_gap,
    soft_demographic_parity_difference,
    sufficiency_gap,
)

TOL = 1e-12


# ---------------------------------------------------------------------------------------
# fairlearn agreement on random binary problems
# ---------------------------------------------------------------------------------------


def _random_case(seed):
    """A random binary problem; cycles through 1-column (2-5 groups) and 2-column A."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(15, 120))
    labels = np.array([-1, 1]) if seed % 7 == 3 else np.array([0, 1])
    y_true = labels[rng.integers(0, 2, n)]
    y_pred = np.where(rng.random(n) < 0.7, y_true, labels[rng.integers(0, 2, n)])
    if seed % 3 == 2:  # two columns: intersectional groups
        A = pd.DataFrame(
            {
                "sex": rng.choice(["f", "m"], n),
                "race": rng.choice(["x", "y", "z"], n, p=[0.5, 0.3, 0.2]),
            }
        )
    else:
        n_groups = 2 + seed % 4
        A = pd.Series(rng.choice([f"g{i}" for i in range(n_groups)], n), name="grp")
        if seed % 5 == 0:
            A = A.to_numpy()  # plain object array
    sample_weight = rng.uniform(0.1, 3.0, n) if seed % 2 else None
    return y_true, y_pred, A, sample_weight


CASES = list(range(50))


def test_binary_metrics_equal_fairlearn():
    # 50 random cases; method and agg cycle with the seed so that each of the four
    # combinations meets every kind of A (fairlearn is slow: ~30 ms per call)
    seen, dp_values = set(), []
    n_multi_col = n_many_groups = n_weighted = 0
    for seed in CASES:
        y_true, y_pred, A, sw = _random_case(seed)
        method = ("between_groups", "to_overall")[(seed // 2) % 2]
        agg = ("worst_case", "mean")[(seed // 4) % 2]
        kw = dict(sensitive_features=A, method=method, sample_weight=sw)
        dp = demographic_parity_difference(y_true, y_pred, **kw)
        assert dp == pytest.approx(
            flm.demographic_parity_difference(y_true, y_pred, **kw), abs=TOL
        ), seed
        dp_values.append(dp)
        assert equalized_odds_difference(y_true, y_pred, agg=agg, **kw) == pytest.approx(
            flm.equalized_odds_difference(y_true, y_pred, agg=agg, **kw), abs=TOL
        ), seed
        assert equal_opportunity_difference(y_true, y_pred, **kw) == pytest.approx(
            flm.equal_opportunity_difference(y_true, y_pred, **kw), abs=TOL
        ), seed
        n_multi_col += isinstance(A, pd.DataFrame)
        n_many_groups += len(np.unique(np.asarray(A).astype(str), axis=0)) >= 3
        n_weighted += sw is not None
        seen.add((method, agg, type(A).__name__, sw is None))
    # the loop really covered the advertised cases
    assert n_multi_col >= 15 and n_many_groups >= 30 and n_weighted >= 25
    assert len(seen) >= 16
    # and the values compared are not all alike
    assert np.std(dp_values) > 0.02 and max(dp_values) > 0.2


def test_returns_python_float():
    y_true, y_pred, A, sw = _random_case(1)
    for f in (
        demographic_parity_difference,
        equalized_odds_difference,
        equal_opportunity_difference,
        accuracy_parity_difference,
    ):
        assert type(f(y_true, y_pred, sensitive_features=A)) is float


def test_string_binary_labels_use_greater_label():
    rng = np.random.default_rng(3)
    n = 80
    y01 = rng.integers(0, 2, n)
    p01 = np.where(rng.random(n) < 0.6, y01, 1 - y01)
    A = rng.choice(["a", "b", "c"], n)
    y_s = np.array(["no", "yes"])[y01]
    p_s = np.array(["no", "yes"])[p01]
    assert demographic_parity_difference(y_s, p_s, sensitive_features=A) == pytest.approx(
        flm.demographic_parity_difference(y01, p01, sensitive_features=A), abs=TOL
    )
    assert equalized_odds_difference(y_s, p_s, sensitive_features=A) == pytest.approx(
        flm.equalized_odds_difference(y01, p01, sensitive_features=A), abs=TOL
    )
    # "yes" is the positive label by default ...
    assert equal_opportunity_difference(y_s, p_s, sensitive_features=A) == pytest.approx(
        flm.true_positive_rate_difference(y01, p01, sensitive_features=A), abs=TOL
    )
    # ... and pos_label="no" makes it the TNR spread, which is the FPR spread of "yes"
    assert equal_opportunity_difference(
        y_s, p_s, sensitive_features=A, pos_label="no"
    ) == pytest.approx(flm.false_positive_rate_difference(y01, p01, sensitive_features=A), abs=TOL)
    # fairlearn itself cannot do this
    with pytest.raises(ValueError):
        flm.equalized_odds_difference(y_s, p_s, sensitive_features=A)
    with pytest.raises(ValueError, match="pos_label"):
        demographic_parity_difference(y_s, p_s, sensitive_features=A, pos_label="maybe")


# ---------------------------------------------------------------------------------------
# multi-class: hand-computed
# ---------------------------------------------------------------------------------------

# group a is classified perfectly; group b's predictions for rows with
# y = 0, 0, 1, 1, 2, 2 are 0, 1, 1, 1, 2, 0
MC_Y = [0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2]
MC_P = [0, 0, 1, 1, 2, 2, 0, 1, 1, 1, 2, 0]
MC_A = ["a"] * 6 + ["b"] * 6


def test_multiclass_demographic_parity_hand():
    # selection rates a: 1/3 each; b: 2/6, 3/6, 1/6 -> per-class gaps 0, 1/6, 1/6
    assert demographic_parity_difference(MC_Y, MC_P, sensitive_features=MC_A) == (
        pytest.approx(1 / 6, abs=TOL)
    )
    # to overall: class 1 overall 5/12 vs 4/12, 6/12; class 2 3/12 vs 4/12, 2/12
    assert demographic_parity_difference(
        MC_Y, MC_P, sensitive_features=MC_A, method="to_overall"
    ) == pytest.approx(1 / 12, abs=TOL)
    assert demographic_parity_difference(
        MC_Y, MC_P, sensitive_features=MC_A, pos_label=0
    ) == pytest.approx(0.0, abs=TOL)
    with pytest.raises(ValueError):  # fairlearn raises on 3 classes
        flm.equalized_odds_difference(MC_Y, MC_P, sensitive_features=MC_A)


def test_multiclass_equalized_odds_and_opportunity_hand():
    # b: recall per class 0.5, 1, 0.5; one-vs-rest FPR per class 1/4, 1/4, 0; a: 1 and 0
    # worst case per class: max(.5, .25), max(0, .25), max(.5, 0) -> 0.5
    assert equalized_odds_difference(MC_Y, MC_P, sensitive_features=MC_A) == pytest.approx(
        0.5, abs=TOL
    )
    # mean per class: .375, .125, .25 -> 0.375
    assert equalized_odds_difference(
        MC_Y, MC_P, sensitive_features=MC_A, agg="mean"
    ) == pytest.approx(0.375, abs=TOL)
    assert equal_opportunity_difference(MC_Y, MC_P, sensitive_features=MC_A) == (
        pytest.approx(0.5, abs=TOL)
    )
    assert equal_opportunity_difference(
        MC_Y, MC_P, sensitive_features=MC_A, pos_label=1
    ) == pytest.approx(0.0, abs=TOL)


def test_multiclass_string_labels_hand():
    names = np.array(["cat", "dog", "eel"])
    y, p = names[MC_Y], names[MC_P]
    assert demographic_parity_difference(y, p, sensitive_features=MC_A) == pytest.approx(
        1 / 6, abs=TOL
    )
    assert equalized_odds_difference(y, p, sensitive_features=MC_A) == pytest.approx(0.5, abs=TOL)


# ---------------------------------------------------------------------------------------
# accuracy parity
# ---------------------------------------------------------------------------------------


def test_accuracy_parity_hand():
    y_true = [1, 1, 0, 0, 1, 0, 1, 0, 1]
    y_pred = [1, 1, 0, 0, 0, 0, 0, 1, 0]
    A = ["a"] * 4 + ["b"] * 2 + ["c"] * 3  # accuracies 1, 0.5, 0
    assert accuracy_parity_difference(y_true, y_pred, sensitive_features=A) == 1.0
    # overall accuracy 5/9: largest |acc_g - 5/9| is 5/9 (group c)
    assert accuracy_parity_difference(
        y_true, y_pred, sensitive_features=A, method="to_overall"
    ) == pytest.approx(5 / 9, abs=TOL)


def test_accuracy_parity_weighted_and_multiclass_hand():
    # a: right (w=3), wrong (w=1) -> 0.75; b: right, right -> 1
    got = accuracy_parity_difference(
        [1, 1, 0, 0],
        [1, 0, 0, 0],
        sensitive_features=["a", "a", "b", "b"],
        sample_weight=[3, 1, 1, 1],
    )
    assert got == pytest.approx(0.25, abs=TOL)
    # multi-class: a 6/6, b 4/6
    assert accuracy_parity_difference(MC_Y, MC_P, sensitive_features=MC_A) == (
        pytest.approx(1 / 3, abs=TOL)
    )


# ---------------------------------------------------------------------------------------
# soft demographic parity
# ---------------------------------------------------------------------------------------


def test_soft_dp_hand():
    p = [0.9, 0.7, 0.2, 0.4]
    A = ["a", "a", "b", "b"]
    assert soft_demographic_parity_difference(None, p, sensitive_features=A) == (
        pytest.approx(0.5, abs=TOL)
    )
    # predict_proba output: column 1 is used, y_true ignored
    proba = np.column_stack([1 - np.array(p), p])
    assert soft_demographic_parity_difference(
        [0, 1, 1, 0], proba, sensitive_features=A
    ) == pytest.approx(0.5, abs=TOL)
    # weights: a (0.9 + 3 * 0.7) / 4 = 0.75, b 0.3
    assert soft_demographic_parity_difference(
        None, p, sensitive_features=A, sample_weight=[1, 3, 1, 1]
    ) == pytest.approx(0.45, abs=TOL)


def test_soft_dp_multiclass_hand():
    P = [[0.2, 0.3, 0.5], [0.4, 0.4, 0.2], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]]
    # means a: .3 .35 .35; b: .2 .2 .6 -> class gaps .1 .15 .25
    got = soft_demographic_parity_difference(None, P, sensitive_features=[0, 0, 1, 1])
    assert got == pytest.approx(0.25, abs=TOL)


def test_soft_dp_rejects_non_probabilities():
    with pytest.raises(ValueError, match="y_score.*outside"):
        soft_demographic_parity_difference(None, [0.2, 1.5], sensitive_features=[0, 1])
    with pytest.raises(ValueError, match="y_score"):
        soft_demographic_parity_difference(None, [0.2, np.nan], sensitive_features=[0, 1])


# ---------------------------------------------------------------------------------------
# sufficiency gap
# ---------------------------------------------------------------------------------------


def test_sufficiency_gap_hand_interpolation():
    # n_bins=2: bins [0, .5) and [.5, 1]
    p = [0.2, 0.4, 0.8, 0.1, 0.6, 0.9]
    y = [0, 1, 1, 0, 0, 1]
    A = ["a", "a", "a", "b", "b", "b"]
    # overall: bin 1 {.2,.4,.1} t=1/3; bin 2 {.8,.6,.9} t=2/3
    p1, p2 = (0.2 + 0.4 + 0.1) / 3, (0.8 + 0.6 + 0.9) / 3
    t1, t2 = 1 / 3, 2 / 3
    # a: points (.3, .5), (.8, 1); p1 < .3 -> held at .5; p2 interpolated
    ta1, ta2 = 0.5, 0.5 + (p2 - 0.3) / (0.8 - 0.3) * 0.5
    # b: points (.1, 0), (.75, .5); p1 interpolated; p2 > .75 -> held at .5
    assert p2 > 0.75
    tb1, tb2 = 0 + (p1 - 0.1) / (0.75 - 0.1) * 0.5, 0.5
    gap_a = (abs(t1 - ta1) + abs(t2 - ta2)) / 2
    gap_b = (abs(t1 - tb1) + abs(t2 - tb2)) / 2
    expected = (gap_a + gap_b) / 2
    got = sufficiency_gap(y, p, sensitive_features=A, n_bins=2)
    assert got == pytest.approx(expected, abs=TOL)
    assert got == pytest.approx(0.216026, abs=1e-6)
    # the same through a two-column predict_proba output
    proba = np.column_stack([1 - np.array(p), p])
    assert sufficiency_gap(y, proba, sensitive_features=A, n_bins=2) == pytest.approx(
        expected, abs=TOL
    )


def test_sufficiency_gap_single_row_group_uses_constant():
    p = [0.2, 0.4, 0.8, 0.1, 0.6, 0.9, 0.55]
    y = [0, 1, 1, 0, 0, 1, 1]
    A = ["a", "a", "a", "b", "b", "b", "c"]
    # overall: bin 1 {.2,.4,.1} t=1/3; bin 2 {.8,.6,.9,.55} t=3/4
    p1, p2 = 0.7 / 3, (0.8 + 0.6 + 0.9 + 0.55) / 4
    t1, t2 = 1 / 3, 3 / 4
    ta = [0.5, 0.5 + (p2 - 0.3) / 0.5 * 0.5]
    tb = [(p1 - 0.1) / 0.65 * 0.5, (p2 - 0.1) / 0.65 * 0.5]  # p2 < .75: interpolated
    tc = [1.0, 1.0]  # one row: a one-point curve, held constant
    gaps = [(abs(t1 - t[0]) + abs(t2 - t[1])) / 2 for t in (ta, tb, tc)]
    got = sufficiency_gap(y, p, sensitive_features=A, n_bins=2)
    assert got == pytest.approx(np.mean(gaps), abs=TOL)
    assert gaps[2] > 0.4  # group c is not zero-filled


def test_sufficiency_gap_multiclass_hand():
    # n_bins=1: each curve is one point, so a group's gap is |t_all - t_g|
    y = [0, 1, 2, 0, 0, 2]
    A = ["a"] * 3 + ["b"] * 3
    P = np.full((6, 3), 1 / 3)
    # class 0: t_all=1/2, a 1/3, b 2/3 -> 1/6; class 1: 1/6 vs 1/3, 0 -> 1/6; class 2: 0
    got = sufficiency_gap(y, P, sensitive_features=A, n_bins=1)
    assert got == pytest.approx(1 / 6, abs=TOL)
    # equals the max of the one-vs-rest binary gaps
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 90)
    P = rng.dirichlet([1, 1, 1], 90)
    A = rng.choice(["u", "v", "w"], 90)
    ovr = [sufficiency_gap((y == c).astype(int), P[:, c], sensitive_features=A) for c in range(3)]
    assert sufficiency_gap(y, P, sensitive_features=A) == pytest.approx(max(ovr), abs=TOL)
    assert len(set(np.round(ovr, 10))) == 3


def test_sufficiency_gap_zero_and_errors():
    y = [0, 1, 0, 1]
    p = [0.1, 0.1, 0.9, 0.9]
    assert sufficiency_gap(y, p, sensitive_features=["a", "a", "b", "b"], n_bins=2) == 0.0
    with pytest.raises(ValueError, match="n_bins"):
        sufficiency_gap(y, p, sensitive_features=[0, 0, 1, 1], n_bins=0)
    with pytest.raises(ValueError, match="strategy"):
        sufficiency_gap(y, p, sensitive_features=[0, 0, 1, 1], strategy="kmeans")
    with pytest.raises(ValueError, match="y_score"):
        sufficiency_gap(y, [0.1, 0.1, 1.9, 0.9], sensitive_features=[0, 0, 1, 1])
    with pytest.raises(ValueError, match="columns"):  # 3 columns, 2 string labels
        sufficiency_gap(
            ["x", "y", "x", "y"], np.full((4, 3), 1 / 3), sensitive_features=[0, 0, 1, 1]
        )
    with pytest.raises(ValueError, match="predict_proba"):  # 3 classes, 1-D score
        sufficiency_gap([0, 1, 2, 0], p, sensitive_features=[0, 0, 1, 1])


# ---------------------------------------------------------------------------------------
# signed two-group gaps
# ---------------------------------------------------------------------------------------

SG_Y = [1, 1, 0, 0, 1, 1, 0, 0]
SG_P = [1, 0, 0, 0, 1, 1, 1, 0]
SG_A = ["f", "f", "f", "f", "m", "m", "m", "m"]  # s0 = "f", s1 = "m"


def test_independence_gap_hand():
    # P(yhat=1 | m) = 3/4, P(yhat=1 | f) = 1/4
    assert independence_gap(SG_Y, SG_P, sensitive_features=SG_A) == pytest.approx(0.5)
    assert independence_gap(SG_Y, SG_P, sensitive_features=SG_A, k=0) == pytest.approx(-0.5)
    # groups are ordered by sorted label, not by first appearance
    A_rev = ["m"] * 4 + ["f"] * 4
    assert independence_gap(SG_Y, SG_P, sensitive_features=A_rev) == pytest.approx(-0.5)
    # weights: f (3*1 + 0)/(3+1+1+1) = 0.5 -> 3/4 - 1/2
    assert independence_gap(
        SG_Y, SG_P, sensitive_features=SG_A, sample_weight=[3, 1, 1, 1, 1, 1, 1, 1]
    ) == pytest.approx(0.25)


def test_separation_gap_hand():
    # TPR: f 1/2, m 1 ; FPR: f 0, m 1/2
    assert separation_gap(SG_Y, SG_P, sensitive_features=SG_A, k=1) == pytest.approx(0.5)
    assert separation_gap(SG_Y, SG_P, sensitive_features=SG_A, k=0) == pytest.approx(0.5)
    P2 = [1, 1, 1, 0, 0, 1, 0, 0]  # TPR f 1, m 1/2; FPR f 1/2, m 0
    assert separation_gap(SG_Y, P2, sensitive_features=SG_A, k=1) == pytest.approx(-0.5)
    assert separation_gap(SG_Y, P2, sensitive_features=SG_A, k=0) == pytest.approx(-0.5)


def test_predictive_parity_gap_hand():
    y = [1, 0, 0, 0, 1, 1, 1, 0]
    p = [1, 1, 0, 0, 1, 1, 0, 0]
    # PPV: f 1/2, m 1 ; FOR: f 0/2, m 1/2
    assert predictive_parity_gap(y, p, sensitive_features=SG_A, k=1) == pytest.approx(0.5)
    assert predictive_parity_gap(y, p, sensitive_features=SG_A, k=0) == pytest.approx(0.5)
    # string labels with explicit pos_label / k
    ys = np.where(np.array(y) == 1, "bad", "good")
    ps = np.where(np.array(p) == 1, "bad", "good")
    assert predictive_parity_gap(
        ys, ps, sensitive_features=SG_A, k="bad", pos_label="bad"
    ) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="k="):
        predictive_parity_gap(ys, ps, sensitive_features=SG_A)


def test_signed_gap_empty_cell_is_nan_with_warning():
    y = [0, 0, 1, 0]  # group "f" has no positives
    p = [0, 1, 1, 0]
    A = ["f", "f", "m", "m"]
    with pytest.warns(FairnessWarning, match="'f'.*nan"):
        assert np.isnan(separation_gap(y, p, sensitive_features=A, k=1))
    with pytest.warns(FairnessWarning):
        assert np.isnan(predictive_parity_gap(y, [0, 0, 1, 0], sensitive_features=A, k=1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert separation_gap(y, p, sensitive_features=A, k=0) == pytest.approx(-0.5)


def test_signed_gap_needs_two_groups():
    with pytest.raises(ValueError, match="exactly 2 groups.*3 group"):
        independence_gap([0, 1, 1], [0, 1, 1], sensitive_features=["a", "b", "c"])
    with pytest.raises(ValueError, match="exactly 2 groups.*1 group"):
        separation_gap([0, 1], [0, 1], sensitive_features=["a", "a"])
    with pytest.raises(ValueError, match="binary"):
        independence_gap([0, 1, 2, 0], [0, 1, 2, 0], sensitive_features=[0, 0, 1, 1])


# ---------------------------------------------------------------------------------------
# fairness_report
# ---------------------------------------------------------------------------------------


def test_fairness_report_binary_matches_scalars():
    y_true, y_pred, A, sw = _random_case(13)  # 3 groups, weighted
    assert isinstance(A, pd.Series) and sw is not None
    rng = np.random.default_rng(13)
    score = np.clip(y_pred * 0.6 + rng.random(len(y_pred)) * 0.4, 0, 1)
    report = fairness_report(y_true, y_pred, sensitive_features=A, y_score=score, sample_weight=sw)
    assert isinstance(report, FairnessReport)
    assert list(report.by_group.columns) == [
        "count",
        "selection_rate",
        "accuracy",
        "true_positive_rate",
        "false_positive_rate",
        "balanced_accuracy",
    ]
    common = dict(sensitive_features=A, sample_weight=sw)
    expected = {
        "demographic_parity_difference": demographic_parity_difference(y_true, y_pred, **common),
        "equalized_odds_difference": equalized_odds_difference(y_true, y_pred, **common),
        "equal_opportunity_difference": equal_opportunity_difference(y_true, y_pred, **common),
        "accuracy_parity_difference": accuracy_parity_difference(y_true, y_pred, **common),
        "soft_demographic_parity_difference": soft_demographic_parity_difference(
            y_true, score, **common
        ),
        "sufficiency_gap": sufficiency_gap(y_true, score, sensitive_features=A),
    }
    assert report.summary.keys() == expected.keys()
    for key, value in expected.items():
        assert report.summary[key] == pytest.approx(value, abs=TOL), key
    bg = report.by_group
    sr = bg["selection_rate"]
    assert sr.max() - sr.min() == pytest.approx(expected["demographic_parity_difference"])
    acc = bg["accuracy"]
    assert acc.max() - acc.min() == pytest.approx(expected["accuracy_parity_difference"])
    eo = max(np.ptp(bg["true_positive_rate"]), np.ptp(bg["false_positive_rate"]))
    assert eo == pytest.approx(expected["equalized_odds_difference"])
    assert bg["count"].sum() == len(y_true) and bg["count"].dtype == np.int64
    # a group's selection rate by hand
    w = np.asarray(sw)
    mask = np.asarray(A) == "g2"
    assert bg.loc["g2", "selection_rate"] == pytest.approx(
        np.sum(w[mask] * (y_pred[mask] == 1)) / np.sum(w[mask])
    )
    assert report.overall["accuracy"] == pytest.approx(np.sum(w * (y_true == y_pred)) / w.sum())
    assert "demographic_parity_difference" in repr(report)


def test_fairness_report_two_columns_and_multiclass():
    A = pd.DataFrame({"sex": ["f"] * 6 + ["m"] * 6, "old": [0, 1] * 3 + [0] * 6})
    report = fairness_report(MC_Y, MC_P, sensitive_features=A)
    # the combination (m, 1) does not occur and is left out
    assert list(report.by_group.index) == [("f", 0), ("f", 1), ("m", 0)]
    assert report.by_group.index.names == ["sex", "old"]
    assert report.by_group["count"].tolist() == [3, 3, 6]
    for c in (0, 1, 2):
        assert f"selection_rate[{c}]" in report.by_group.columns
    # group m: predictions 0,1,1,1,2,0 -> selection rates 2/6, 3/6, 1/6
    assert report.by_group.loc[("m", 0), "selection_rate[1]"] == pytest.approx(0.5)
    assert report.by_group.loc[("m", 0), "true_positive_rate[0]"] == pytest.approx(0.5)
    assert report.by_group.loc[("m", 0), "false_positive_rate[0]"] == pytest.approx(0.25)
    assert report.summary["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(MC_Y, MC_P, sensitive_features=A)
    )
    assert report.summary["accuracy_parity_difference"] == pytest.approx(1 / 3)
    assert "sufficiency_gap" not in report.summary


# ---------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------

ALL_LABEL_METRICS = [
    demographic_parity_difference,
    equalized_odds_difference,
    equal_opportunity_difference,
    accuracy_parity_difference,
    independence_gap,
    separation_gap,
    predictive_parity_gap,
]


@pytest.mark.parametrize("metric", ALL_LABEL_METRICS)
def test_length_mismatch_names_sensitive_features(metric):
    with pytest.raises(ValueError, match="sensitive_features has 3 rows"):
        metric([0, 1, 1, 0], [0, 1, 0, 0], sensitive_features=["a", "b", "a"])


@pytest.mark.parametrize("metric", ALL_LABEL_METRICS)
@pytest.mark.parametrize("missing", [None, np.nan])
def test_missing_sensitive_values_named(metric, missing):
    with pytest.raises(ValueError, match="sensitive_features has 1 missing"):
        metric([0, 1, 1, 0], [0, 1, 0, 0], sensitive_features=["a", "b", missing, "a"])


@pytest.mark.parametrize(
    "metric, args",
    [
        (soft_demographic_parity_difference, (None, [0.1, 0.2, 0.3])),
        (sufficiency_gap, ([0, 1, 1], [0.1, 0.2, 0.3])),
    ],
)
def test_score_metrics_validate_sensitive_features(metric, args):
    with pytest.raises(ValueError, match="sensitive_features has 2 rows"):
        metric(*args, sensitive_features=["a", "b"])
    with pytest.raises(ValueError, match="sensitive_features has 1 missing"):
        metric(*args, sensitive_features=["a", None, "b"])
    with pytest.raises(ValueError, match="sensitive_features is None"):
        metric(*args, sensitive_features=None)


def test_other_input_errors():
    with pytest.raises(ValueError, match="y_pred has 3 samples but y_true has 4"):
        demographic_parity_difference([0, 1, 1, 0], [0, 1, 0], sensitive_features=[0] * 4)
    with pytest.raises(ValueError, match="y_pred holds continuous"):
        demographic_parity_difference([0, 1], [0.2, 0.7], sensitive_features=[0, 1])
    with pytest.raises(ValueError, match="method must be one of"):
        demographic_parity_difference([0, 1], [0, 1], sensitive_features=[0, 1], method="ratio")
    with pytest.raises(ValueError, match="agg must be one of"):
        equalized_odds_difference([0, 1], [0, 1], sensitive_features=[0, 1], agg="max")
    with pytest.raises(ValueError, match="sample_weight"):
        demographic_parity_difference(
            [0, 1], [0, 1], sensitive_features=[0, 1], sample_weight=[1.0, -1.0]
        )
    with pytest.raises(ValueError, match="y_true is empty"):
        demographic_parity_difference([], [], sensitive_features=[])
    with pytest.raises(ValueError, match="y_true has 1 missing"):
        accuracy_parity_difference(["a", None], ["a", "b"], sensitive_features=[0, 1])


def test_sample_weight_one_rule_for_metrics_and_estimators():
    # the metrics and the estimators check weights with the same function: same errors,
    # and series or one-column frames of any dataframe library are accepted
    from skfairbilevel._params import check_sample_weight

    args = ([0, 1, 1, 0], [0, 1, 0, 0])
    A = [0, 0, 1, 1]
    w = [1.0, 2.0, 1.0, 3.0]
    expected = demographic_parity_difference(*args, sensitive_features=A, sample_weight=w)
    for weights in (pd.Series(w), pd.DataFrame({"w": w}), np.array(w)[:, None]):
        got = demographic_parity_difference(*args, sensitive_features=A, sample_weight=weights)
        assert got == expected
    for bad, message in (
        ([1.0, -1.0, 1.0, 1.0], "contains negative values"),
        ([0.0] * 4, "is all zero"),
        ([1.0, np.nan, 1.0, 1.0], "NaN or infinity"),
        ([1.0, 1.0], r"has shape \(2,\) but y_true has 4 rows"),
    ):
        with pytest.raises(ValueError, match=message):
            demographic_parity_difference(*args, sensitive_features=A, sample_weight=bad)
        with pytest.raises(ValueError, match=message.replace("y_true", "X")):
            check_sample_weight(bad, 4)
