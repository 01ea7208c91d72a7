"""Regression fairness metrics and their scorers: hand-computed values, fairlearn agreement,
errors, and cross_validate with BADRRegressor (metadata routing on and off)."""

import fairlearn.metrics as flm
import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.metrics import mean_absolute_error, mean_squared_error
from sklearn.model_selection import KFold, cross_validate

from skfairbilevel import BADRRegressor
from skfairbilevel.metrics import (
    accuracy_parity_difference,
    bounded_group_loss,
    demographic_parity_difference,
    equalized_odds_difference,
    fairness_report,
    group_loss_difference,
    group_loss_ratio,
    make_fairness_scorer,
    mean_prediction_difference,
    mean_prediction_ratio,
    sufficiency_gap,
)

TOL = 1e-12
METHODS = ("between_groups", "to_overall")

# ---------------------------------------------------------------------------------------
# hand-computed values
# ---------------------------------------------------------------------------------------

# group a: predictions 10, 20 (mean 15); group b: 30, 50 (mean 40); overall mean 27.5
Y_PRED = [10.0, 20.0, 30.0, 50.0]
A2 = ["a", "a", "b", "b"]


def test_mean_prediction_by_hand():
    assert mean_prediction_difference(None, Y_PRED, sensitive_features=A2) == 25.0
    assert (
        mean_prediction_difference(None, Y_PRED, sensitive_features=A2, method="to_overall") == 12.5
    )
    assert mean_prediction_ratio(None, Y_PRED, sensitive_features=A2) == pytest.approx(
        15 / 40, abs=TOL
    )
    # to_overall: min(15 / 27.5, 27.5 / 40)
    assert mean_prediction_ratio(
        None, Y_PRED, sensitive_features=A2, method="to_overall"
    ) == pytest.approx(15 / 27.5, abs=TOL)
    # weights 1, 3 in group a: mean (10 + 60) / 4 = 17.5
    w = [1.0, 3.0, 1.0, 1.0]
    assert mean_prediction_difference(
        None, Y_PRED, sensitive_features=A2, sample_weight=w
    ) == pytest.approx(22.5, abs=TOL)
    assert mean_prediction_ratio(
        None, Y_PRED, sensitive_features=A2, sample_weight=w
    ) == pytest.approx(17.5 / 40, abs=TOL)
    # y_true is ignored: any values of the right length give the same number
    assert mean_prediction_difference([0, 1, 0, 1], Y_PRED, sensitive_features=A2) == 25.0


# residuals: group a 0, -1 (MSE 0.5, MAE 0.5); group b 0, 3 (MSE 4.5, MAE 1.5);
# overall MSE 10 / 4 = 2.5, MAE 4 / 4 = 1
Y_TRUE_L = [1.0, 2.0, 3.0, 4.0]
Y_PRED_L = [1.0, 3.0, 3.0, 1.0]


def test_group_losses_by_hand():
    kw = {"sensitive_features": A2}
    assert bounded_group_loss(Y_TRUE_L, Y_PRED_L, **kw) == 4.5
    assert bounded_group_loss(Y_TRUE_L, Y_PRED_L, loss="absolute_error", **kw) == 1.5
    assert group_loss_difference(Y_TRUE_L, Y_PRED_L, **kw) == 4.0
    assert group_loss_difference(Y_TRUE_L, Y_PRED_L, loss="absolute_error", **kw) == 1.0
    assert group_loss_difference(Y_TRUE_L, Y_PRED_L, method="to_overall", **kw) == 2.0
    assert (
        group_loss_difference(Y_TRUE_L, Y_PRED_L, loss="absolute_error", method="to_overall", **kw)
        == 0.5
    )
    assert group_loss_ratio(Y_TRUE_L, Y_PRED_L, **kw) == pytest.approx(1 / 9, abs=TOL)
    assert group_loss_ratio(Y_TRUE_L, Y_PRED_L, loss="absolute_error", **kw) == (
        pytest.approx(1 / 3, abs=TOL)
    )
    # to_overall: min(0.5 / 2.5, 2.5 / 4.5) = 0.2
    assert group_loss_ratio(Y_TRUE_L, Y_PRED_L, method="to_overall", **kw) == (
        pytest.approx(0.2, abs=TOL)
    )
    # weight 3 on the residual 3 of group b: MSE_b = (0 + 3 * 9) / 4 = 6.75
    w = [1.0, 1.0, 1.0, 3.0]
    assert bounded_group_loss(Y_TRUE_L, Y_PRED_L, sample_weight=w, **kw) == 6.75


def test_zero_weight_group_is_left_out_and_equal_zeros_give_ratio_one():
    A = ["a", "a", "b", "b", "c"]
    y_pred = Y_PRED + [1000.0]
    w = [1.0, 1.0, 1.0, 1.0, 0.0]
    assert mean_prediction_difference(None, y_pred, sensitive_features=A, sample_weight=w) == 25.0
    assert (
        bounded_group_loss(
            Y_TRUE_L + [0.0], Y_PRED_L + [1000.0], sensitive_features=A, sample_weight=w
        )
        == 4.5
    )
    zeros = np.zeros(4)
    for method in METHODS:
        # every mean / loss 0: the groups are equal (fairlearn would give nan)
        assert mean_prediction_ratio(None, zeros, sensitive_features=A2, method=method) == 1.0
        assert group_loss_ratio(zeros, zeros, sensitive_features=A2, method=method) == 1.0
        # one group at 0, the other not: as unequal as can be
        assert (
            mean_prediction_ratio(None, [0, 0, 1, 3], sensitive_features=A2, method=method) == 0.0
        )
    assert group_loss_ratio(Y_TRUE_L, [1, 2, 3, 3], sensitive_features=A2) == 0.0


def test_intersectional_groups():
    A = pd.DataFrame({"sex": ["f", "f", "m", "m", "f", "m"], "age": ["y", "o", "y", "o", "y", "o"]})
    y_pred = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    # groups (f,o): 2; (f,y): 1, 5 -> 3; (m,o): 4, 6 -> 5; (m,y): 3
    assert mean_prediction_difference(None, y_pred, sensitive_features=A) == 3.0
    assert mean_prediction_ratio(None, y_pred, sensitive_features=A) == 2.0 / 5.0


# ---------------------------------------------------------------------------------------
# fairlearn agreement on random problems
# ---------------------------------------------------------------------------------------


def _random_regression(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(12, 150))
    if seed % 3 == 2:
        A = pd.DataFrame(
            {
                "sex": rng.choice(["f", "m"], n),
                "race": rng.choice(["x", "y", "z"], n, p=[0.5, 0.3, 0.2]),
            }
        )
    else:
        A = pd.Series(rng.choice([f"g{i}" for i in range(2 + seed % 4)], n), name="grp")
    y_true = rng.gamma(2.0, 3.0, n)
    y_pred = np.abs(y_true + rng.normal(0, 2.0, n))  # non-negative, for the ratio
    w = rng.uniform(0.1, 3.0, n) if seed % 2 else None
    return y_true, y_pred, A, w


@pytest.mark.parametrize("seed", range(40))
def test_agrees_with_fairlearn_metricframe(seed):
    y_true, y_pred, A, w = _random_regression(seed)
    metrics = {"mp": flm.mean_prediction, "mse": mean_squared_error, "mae": mean_absolute_error}
    mf = flm.MetricFrame(
        metrics=metrics,
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=A,
        sample_params={k: {"sample_weight": w} for k in metrics} if w is not None else None,
    )
    kw = {"sensitive_features": A, "sample_weight": w}
    for method in METHODS:
        diff, ratio = mf.difference(method=method), mf.ratio(method=method)
        assert mean_prediction_difference(y_true, y_pred, method=method, **kw) == (
            pytest.approx(diff["mp"], abs=1e-10)
        )
        assert mean_prediction_ratio(y_true, y_pred, method=method, **kw) == (
            pytest.approx(ratio["mp"], abs=1e-10)
        )
        for loss, key in (("squared_error", "mse"), ("absolute_error", "mae")):
            assert group_loss_difference(y_true, y_pred, loss=loss, method=method, **kw) == (
                pytest.approx(diff[key], abs=1e-10)
            )
            assert group_loss_ratio(y_true, y_pred, loss=loss, method=method, **kw) == (
                pytest.approx(ratio[key], abs=1e-10)
            )
    assert bounded_group_loss(y_true, y_pred, **kw) == pytest.approx(
        mf.group_max()["mse"], abs=1e-10
    )
    assert bounded_group_loss(y_true, y_pred, loss="absolute_error", **kw) == pytest.approx(
        mf.group_max()["mae"], abs=1e-10
    )
    # fairlearn's own derived metrics of the same quantity
    assert bounded_group_loss(y_true, y_pred, **kw) == pytest.approx(
        flm.mean_squared_error_group_max(y_true, y_pred, **kw), abs=1e-10
    )
    assert bounded_group_loss(y_true, y_pred, loss="absolute_error", **kw) == pytest.approx(
        flm.mean_absolute_error_group_max(y_true, y_pred, **kw), abs=1e-10
    )


# ---------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------


def test_errors_name_the_argument_and_the_fix():
    with pytest.raises(ValueError, match="negative.*mean_prediction_difference"):
        mean_prediction_ratio(None, [-1.0, -2.0, 3.0, 4.0], sensitive_features=A2)
    # negative predictions with non-negative group means are accepted
    assert mean_prediction_ratio(None, [-1.0, 3.0, 2.0, 2.0], sensitive_features=A2) == 0.5
    with pytest.raises(TypeError, match="y_pred must hold numbers"):
        mean_prediction_difference(None, ["a", "b", "c", "d"], sensitive_features=A2)
    with pytest.raises(ValueError, match="y_pred has 1 missing"):
        bounded_group_loss(Y_TRUE_L, [1.0, np.nan, 3.0, 1.0], sensitive_features=A2)
    with pytest.raises(ValueError, match="y_true has 1 infinite"):
        bounded_group_loss([1.0, np.inf, 3.0, 1.0], Y_PRED_L, sensitive_features=A2)
    with pytest.raises(ValueError, match="y_pred has 3 samples but y_true has 4"):
        group_loss_difference(Y_TRUE_L, Y_PRED_L[:3], sensitive_features=A2)
    with pytest.raises(ValueError, match="y_true has 3 samples but y_pred has 4"):
        mean_prediction_difference([1, 2, 3], Y_PRED, sensitive_features=A2)
    with pytest.raises(ValueError, match="sensitive_features has 3 rows"):
        mean_prediction_difference(None, Y_PRED, sensitive_features=A2[:3])
    with pytest.raises(ValueError, match="loss must be one of"):
        bounded_group_loss(Y_TRUE_L, Y_PRED_L, sensitive_features=A2, loss="huber")
    with pytest.raises(ValueError, match="method must be one of"):
        group_loss_ratio(Y_TRUE_L, Y_PRED_L, sensitive_features=A2, method="worst")
    with pytest.raises(ValueError, match="1-D"):
        bounded_group_loss(Y_TRUE_L, np.ones((4, 2)), sensitive_features=A2)
    with pytest.raises(ValueError, match="negative values"):
        bounded_group_loss(Y_TRUE_L, Y_PRED_L, sensitive_features=A2, sample_weight=[1, -1, 1, 1])


@pytest.mark.parametrize(
    "metric", [demographic_parity_difference, equalized_odds_difference, accuracy_parity_difference]
)
def test_classification_metrics_refuse_continuous_and_point_to_regression(metric):
    rng = np.random.default_rng(0)
    y = rng.normal(size=20)
    A = np.repeat(["a", "b"], 10)
    for y_true, y_pred, name in ((y, y + 0.1, "y_true"), ((y > 0).astype(int), y, "y_pred")):
        with pytest.raises(ValueError, match=f"{name} holds continuous values") as info:
            metric(y_true, y_pred, sensitive_features=A)
        message = str(info.value)
        assert "mean_prediction_difference" in message and "bounded_group_loss" in message
    with pytest.raises(ValueError, match="mean_prediction_difference"):
        fairness_report(y, y, sensitive_features=A)
    with pytest.raises(ValueError, match="bounded_group_loss"):
        sufficiency_gap(y, np.full(20, 0.5), sensitive_features=A)


# ---------------------------------------------------------------------------------------
# scorers
# ---------------------------------------------------------------------------------------


def _regression_data(n=240, seed=0):
    """Positive target (so that the ratios apply) with a group offset; A is 'f' / 'm'."""
    rng = np.random.default_rng(seed)
    A = pd.Series(rng.choice(["f", "m"], n), name="sex")
    X = rng.normal(size=(n, 3))
    y = 10.0 + 2.0 * X[:, 0] + 1.5 * (A == "m").to_numpy() + 0.3 * rng.normal(size=n)
    return X, y, A


SCORING = {
    "mpd": make_fairness_scorer("mean_prediction_difference"),
    "mpr": make_fairness_scorer("mean_prediction_ratio"),
    "bgl": make_fairness_scorer("bounded_group_loss"),
    "bgl_mae": make_fairness_scorer("bounded_group_loss", loss="absolute_error"),
    "gld": make_fairness_scorer("group_loss_difference", method="to_overall"),
    "glr": make_fairness_scorer("group_loss_ratio"),
}
# metric, its keyword arguments, and the sign of the score (+1: greater is better)
BY_HAND = {
    "mpd": (mean_prediction_difference, {}, -1),
    "mpr": (mean_prediction_ratio, {}, 1),
    "bgl": (bounded_group_loss, {}, -1),
    "bgl_mae": (bounded_group_loss, {"loss": "absolute_error"}, -1),
    "gld": (group_loss_difference, {"method": "to_overall"}, -1),
    "glr": (group_loss_ratio, {}, 1),
}


def _check_folds(result, X, y, A):
    for key, (metric, kw, sign) in BY_HAND.items():
        expected = []
        for est, test in zip(result["estimator"], result["indices"]["test"], strict=True):
            Xt = X.iloc[test] if isinstance(X, pd.DataFrame) else X[test]
            expected.append(
                sign * metric(y[test], est.predict(Xt), sensitive_features=A.iloc[test], **kw)
            )
        np.testing.assert_allclose(result[f"test_{key}"], expected, rtol=0, atol=1e-12)
        assert np.all(np.isfinite(result[f"test_{key}"]))


def test_directions_and_repr():
    assert make_fairness_scorer("mean_prediction_ratio").greater_is_better is True
    assert make_fairness_scorer("group_loss_ratio").greater_is_better is True
    for name in ("mean_prediction_difference", "bounded_group_loss", "group_loss_difference"):
        assert make_fairness_scorer(name).greater_is_better is False
    assert repr(make_fairness_scorer("mean_prediction_ratio")) == (
        "make_fairness_scorer('mean_prediction_ratio', response_method='predict')"
    )
    assert repr(make_fairness_scorer("mean_prediction_ratio", greater_is_better=False)) == (
        "make_fairness_scorer('mean_prediction_ratio', response_method='predict', "
        "greater_is_better=False)"
    )
    with pytest.raises(TypeError, match="greater_is_better must be True, False or None"):
        make_fairness_scorer("bounded_group_loss", greater_is_better="yes")


def test_cross_validate_badr_regressor_routing_on():
    X, y, A = _regression_data()
    with sklearn.config_context(enable_metadata_routing=True):
        result = cross_validate(
            BADRRegressor(random_state=0),
            X,
            y,
            cv=KFold(3, shuffle=True, random_state=0),
            scoring=SCORING,
            params={"sensitive_features": A},
            return_estimator=True,
            return_indices=True,
            error_score="raise",
        )
    assert all(est.fairness_aware_ for est in result["estimator"])
    _check_folds(result, X, y, A)
    assert np.all(result["test_mpr"] > 0) and np.all(result["test_mpr"] <= 1)
    assert np.all(result["test_bgl"] < 0)


def test_cross_validate_badr_regressor_routing_off_with_column_ids():
    X, y, A = _regression_data(seed=1)
    Xdf = pd.DataFrame(X, columns=["x0", "x1", "x2"]).assign(grp=(A == "m").astype(float))
    scoring = {
        key: make_fairness_scorer(metric.__name__, sensitive_feature_ids="grp", **kw)
        for key, (metric, kw, _) in BY_HAND.items()
    }
    result = cross_validate(
        BADRRegressor(random_state=0, sensitive_feature_ids="grp"),
        Xdf,
        y,
        cv=KFold(3, shuffle=True, random_state=0),
        scoring=scoring,
        return_estimator=True,
        return_indices=True,
        error_score="raise",
    )
    assert all(est.fairness_aware_ and est.n_features_in_ == 4 for est in result["estimator"])
    _check_folds(result, Xdf, y, Xdf["grp"])


def test_scorer_sample_weight_routed():
    X, y, A = _regression_data(seed=2)
    w = np.random.default_rng(2).uniform(0.5, 2.0, y.shape[0])
    bgl = make_fairness_scorer("bounded_group_loss")
    with sklearn.config_context(enable_metadata_routing=True):
        bgl.set_score_request(sample_weight=True)
        result = cross_validate(
            BADRRegressor(random_state=0).set_fit_request(sample_weight=False),
            X,
            y,
            cv=KFold(2, shuffle=True, random_state=0),
            scoring={"bgl": bgl},
            params={"sensitive_features": A, "sample_weight": w},
            return_estimator=True,
            return_indices=True,
            error_score="raise",
        )
    for score, est, test in zip(
        result["test_bgl"], result["estimator"], result["indices"]["test"], strict=True
    ):
        weighted = bounded_group_loss(
            y[test], est.predict(X[test]), sensitive_features=A.iloc[test], sample_weight=w[test]
        )
        unweighted = bounded_group_loss(
            y[test], est.predict(X[test]), sensitive_features=A.iloc[test]
        )
        assert score == pytest.approx(-weighted, abs=1e-12)
        assert abs(weighted - unweighted) > 1e-6  # the weights did change the value


def test_classification_scorer_on_a_regressor_points_to_regression_metrics():
    X, y, A = _regression_data(n=60)
    reg = BADRRegressor(random_state=0).fit(X, y, sensitive_features=A)
    scorer = make_fairness_scorer("demographic_parity_difference")
    with pytest.raises(ValueError, match="mean_prediction_difference"):
        scorer(reg, X, y, sensitive_features=A)
