"""Tests of skfairbilevel.metrics._scorers with scikit-learn model selection."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score, cross_validate
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.metadata_routing import get_routing_for_object

from skfairbilevel.exceptions import FairnessWarning
from skfairbilevel.metrics import (
    FairnessScorer,
    demographic_parity_difference,
    equalized_odds_difference,
    fairness_constrained_refit,
    make_fairness_scorer,
    soft_demographic_parity_difference,
    sufficiency_gap,
)

CV = KFold(3, shuffle=True, random_state=0)
CS = [0.01, 1.0]


def _data(n=150, seed=0):
    """Numeric X (3 columns), binary y, and a string sensitive Series A ('f'/'m')."""
    rng = np.random.default_rng(seed)
    A = pd.Series(rng.choice(["f", "m"], n), name="sex")
    X = rng.normal(size=(n, 3))
    X[:, 0] += (A == "m").to_numpy() * 1.0
    y = (X[:, 0] + 0.5 * rng.normal(size=n) > 0.5).astype(int)
    return X, y, A


def _frame(X, A):
    """DataFrame X with the string sensitive column 'sex' appended."""
    df = pd.DataFrame(X, columns=["x0", "x1", "x2"])
    df["sex"] = A.to_numpy()
    return df


def _drop_sex_pipeline():
    pre = ColumnTransformer([("num", StandardScaler(), ["x0", "x1", "x2"])], remainder="drop")
    return Pipeline([("pre", pre), ("clf", LogisticRegression())])


def _by_hand(result, X, y, A, metric=demographic_parity_difference, proba=False, **kw):
    """The metric recomputed on each fold's predictions (negated, like the scorer)."""
    out = []
    for est, test in zip(result["estimator"], result["indices"]["test"], strict=True):
        Xt = X.iloc[test] if isinstance(X, pd.DataFrame) else X[test]
        pred = est.predict_proba(Xt) if proba else est.predict(Xt)
        out.append(-metric(y[test], pred, sensitive_features=A.iloc[test], **kw))
    return np.array(out)


# ---------------------------------------------------------------------------------------
# construction, repr, pickle
# ---------------------------------------------------------------------------------------


def test_repr_defaults_and_pickle():
    dp = make_fairness_scorer(
        "demographic_parity_difference", sensitive_feature_ids="sex", method="to_overall"
    )
    assert isinstance(dp, FairnessScorer)
    assert repr(dp) == (
        "make_fairness_scorer('demographic_parity_difference', sensitive_feature_ids='sex', "
        "response_method='predict', method='to_overall')"
    )
    assert make_fairness_scorer("sufficiency_gap").response_method == "predict_proba"
    assert make_fairness_scorer("soft_demographic_parity_difference").response_method == (
        "predict_proba"
    )
    clone = pickle.loads(pickle.dumps(dp))
    assert repr(clone) == repr(dp)
    X, y, A = _data()
    df = _frame(X, A)
    clf = _drop_sex_pipeline().fit(df, y)
    assert clone(clf, df, y) == dp(clf, df, y)


def test_construction_errors():
    with pytest.raises(ValueError, match="not a known fairness metric"):
        make_fairness_scorer("demographic_parity")
    with pytest.raises(TypeError, match="sensitive_features"):
        make_fairness_scorer(lambda y, p: 0.0)
    with pytest.raises(TypeError, match="no parameter 'n_bins'"):
        make_fairness_scorer("demographic_parity_difference", n_bins=3)
    with pytest.raises(ValueError, match="response_method"):
        make_fairness_scorer("demographic_parity_difference", response_method="transform")
    with pytest.raises(ValueError, match="sensitive_features cannot be fixed"):
        make_fairness_scorer("demographic_parity_difference", sensitive_features=[0, 1])


def test_direct_call_sign_kwargs_and_sample_weight():
    X, y, A = _data()
    clf = LogisticRegression().fit(X, y)
    pred = clf.predict(X)
    dp = make_fairness_scorer("demographic_parity_difference")
    value = demographic_parity_difference(y, pred, sensitive_features=A)
    assert value > 0.1
    assert dp(clf, X, y, sensitive_features=A) == pytest.approx(-value, abs=1e-12)
    pos = make_fairness_scorer("demographic_parity_difference", greater_is_better=True)
    assert pos(clf, X, y, sensitive_features=A) == pytest.approx(value, abs=1e-12)
    # metric kwargs and sample_weight are forwarded
    w = np.linspace(0.5, 2.0, len(y))
    eo = make_fairness_scorer("equalized_odds_difference", agg="mean")
    assert eo(clf, X, y, sample_weight=w, sensitive_features=A) == pytest.approx(
        -equalized_odds_difference(y, pred, sensitive_features=A, agg="mean", sample_weight=w),
        abs=1e-12,
    )
    # probability metrics get predict_proba
    proba = clf.predict_proba(X)
    sdp = make_fairness_scorer("soft_demographic_parity_difference")
    assert sdp(clf, X, y, sensitive_features=A) == pytest.approx(
        -soft_demographic_parity_difference(y, proba[:, 1], sensitive_features=A)
    )
    sg = make_fairness_scorer("sufficiency_gap", n_bins=4)
    assert sg(clf, X, y, sensitive_features=A) == pytest.approx(
        -sufficiency_gap(y, proba, sensitive_features=A, n_bins=4)
    )
    with pytest.raises(TypeError, match="does not accept sample weights"):
        sg(clf, X, y, sensitive_features=A, sample_weight=w)

    # a user callable
    def max_rate(y_true, y_pred, *, sensitive_features, scale=1.0):
        return scale * pd.Series(y_pred).groupby(np.asarray(sensitive_features)).mean().max()

    custom = make_fairness_scorer(max_rate, scale=2.0, greater_is_better=True)
    expected = 2.0 * pd.Series(pred).groupby(A.to_numpy()).mean().max()
    assert custom(clf, X, y, sensitive_features=A) == pytest.approx(expected)


def test_no_sensitive_features_error_explains_both_fixes():
    X, y, A = _data()
    clf = LogisticRegression().fit(X, y)
    dp = make_fairness_scorer("demographic_parity_difference")
    msg = r"enable_metadata_routing=True.*sensitive_features=A.*sensitive_feature_ids"
    with pytest.raises(ValueError, match=msg):
        dp(clf, X, y)
    with pytest.raises(ValueError, match=msg):
        cross_val_score(LogisticRegression(), X, y, scoring=dp, cv=CV, error_score="raise")
    with sklearn.config_context(enable_metadata_routing=True):
        with pytest.raises(ValueError, match=msg):
            cross_validate(
                LogisticRegression(), X, y, scoring={"dp": dp}, cv=CV, error_score="raise"
            )


# ---------------------------------------------------------------------------------------
# routing ON
# ---------------------------------------------------------------------------------------


def test_routing_on_requests_sensitive_features_by_default():
    with sklearn.config_context(enable_metadata_routing=True):
        dp = make_fairness_scorer("demographic_parity_difference")
        requests = get_routing_for_object(dp).score.requests
        assert requests == {"sensitive_features": True, "sample_weight": None}
        sg = make_fairness_scorer("sufficiency_gap")
        assert get_routing_for_object(sg).score.requests == {"sensitive_features": True}
        with pytest.raises(ValueError, match="cannot be requested"):
            sg.set_score_request(sample_weight=True)
    with pytest.raises(RuntimeError, match="enable_metadata_routing"):
        dp.set_score_request(sensitive_features=True)


@pytest.mark.parametrize("pipeline", [False, True])
def test_routing_on_grid_search(pipeline):
    X, y, A = _data()
    est = (
        make_pipeline(StandardScaler(), LogisticRegression())
        if pipeline
        else (LogisticRegression())
    )
    key = "logisticregression__C" if pipeline else "C"
    dp = make_fairness_scorer("demographic_parity_difference")
    with sklearn.config_context(enable_metadata_routing=True):
        search = GridSearchCV(
            est, {key: CS}, scoring={"acc": "accuracy", "dp": dp}, refit="acc", cv=CV
        )
        search.fit(X, y, sensitive_features=A)
        # per candidate, the mean over folds of the metric computed by hand
        for i, C in enumerate(CS):
            model = (
                make_pipeline(StandardScaler(), LogisticRegression(C=C))
                if pipeline
                else LogisticRegression(C=C)
            )
            res = cross_validate(model, X, y, cv=CV, return_estimator=True, return_indices=True)
            by_hand = _by_hand(res, X, y, A)
            for fold in range(3):
                assert search.cv_results_[f"split{fold}_test_dp"][i] == pytest.approx(
                    by_hand[fold], abs=1e-12
                )
        assert np.all(search.cv_results_["mean_test_dp"] < -0.05)
        # refit="acc": search.score uses the accuracy scorer
        assert search.score(X, y) == pytest.approx(search.best_estimator_.score(X, y))
        single = GridSearchCV(est, {key: CS}, scoring=dp, cv=CV).fit(X, y, sensitive_features=A)
        assert single.cv_results_["mean_test_score"] == pytest.approx(
            search.cv_results_["mean_test_dp"], abs=1e-12
        )
        assert single.score(X, y, sensitive_features=A) == pytest.approx(
            -demographic_parity_difference(y, single.predict(X), sensitive_features=A)
        )


def test_routing_on_cross_validate_and_cross_val_score():
    X, y, A = _data(seed=1)
    dp = make_fairness_scorer("demographic_parity_difference")
    sg = make_fairness_scorer("sufficiency_gap")
    with sklearn.config_context(enable_metadata_routing=True):
        res = cross_validate(
            LogisticRegression(),
            X,
            y,
            cv=CV,
            scoring={"acc": "accuracy", "dp": dp, "sg": sg},
            params={"sensitive_features": A},
            return_estimator=True,
            return_indices=True,
        )
        assert res["test_dp"] == pytest.approx(_by_hand(res, X, y, A), abs=1e-12)
        assert res["test_sg"] == pytest.approx(
            _by_hand(res, X, y, A, metric=sufficiency_gap, proba=True), abs=1e-12
        )
        assert len(set(np.round(res["test_dp"], 8))) == 3  # folds really differ
        scores = cross_val_score(
            LogisticRegression(), X, y, cv=CV, scoring=dp, params={"sensitive_features": A}
        )
        assert scores == pytest.approx(res["test_dp"], abs=1e-12)


def test_routing_on_alias_and_sample_weight_request():
    X, y, A = _data(seed=2)
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    with sklearn.config_context(enable_metadata_routing=True):
        dp = make_fairness_scorer("demographic_parity_difference").set_score_request(
            sensitive_features="A_eval", sample_weight=True
        )
        clf = LogisticRegression().set_fit_request(sample_weight=False)
        res = cross_validate(
            clf,
            X,
            y,
            cv=CV,
            scoring={"dp": dp},
            params={"A_eval": A, "sample_weight": w},
            return_estimator=True,
            return_indices=True,
        )
        expected = [
            -demographic_parity_difference(
                y[te], est.predict(X[te]), sensitive_features=A.iloc[te], sample_weight=w[te]
            )
            for est, te in zip(res["estimator"], res["indices"]["test"], strict=True)
        ]
        assert res["test_dp"] == pytest.approx(expected, abs=1e-12)
        unweighted = _by_hand(res, X, y, A)
        assert not np.allclose(res["test_dp"], unweighted)
        # sample_weight left unset (the default) raises like scikit-learn's scorers
        default = make_fairness_scorer("demographic_parity_difference")
        with pytest.raises(Exception, match=r"\[sample_weight\].*make_fairness_scorer"):
            cross_validate(
                clf,
                X,
                y,
                cv=CV,
                scoring={"dp": default},
                params={"sensitive_features": A, "sample_weight": w},
            )


def test_routing_on_without_A_falls_back_to_column():
    X, y, A = _data(seed=3)
    df = _frame(X, A)
    dp = make_fairness_scorer("demographic_parity_difference", sensitive_feature_ids="sex")
    with sklearn.config_context(enable_metadata_routing=True):
        res = cross_validate(
            _drop_sex_pipeline(),
            df,
            y,
            cv=CV,
            scoring={"dp": dp},
            return_estimator=True,
            return_indices=True,
        )
    assert res["test_dp"] == pytest.approx(_by_hand(res, df, y, A), abs=1e-12)


# ---------------------------------------------------------------------------------------
# routing OFF: A read from X
# ---------------------------------------------------------------------------------------


def test_routing_off_grid_search_reads_column():
    X, y, A = _data(seed=4)
    Xn = pd.DataFrame(X, columns=["x0", "x1", "x2"])
    Xn["sex"] = (A == "m").astype(int).to_numpy()  # numeric: LogisticRegression takes it
    dp = make_fairness_scorer("demographic_parity_difference", sensitive_feature_ids="sex")
    assert not sklearn.get_config()["enable_metadata_routing"]
    search = GridSearchCV(
        LogisticRegression(), {"C": CS}, scoring={"acc": "accuracy", "dp": dp}, refit="acc", cv=CV
    )
    search.fit(Xn, y)
    for i, C in enumerate(CS):
        res = cross_validate(
            LogisticRegression(C=C), Xn, y, cv=CV, return_estimator=True, return_indices=True
        )
        expected = _by_hand(res, Xn, y, A)
        got = [search.cv_results_[f"split{f}_test_dp"][i] for f in range(3)]
        assert got == pytest.approx(expected, abs=1e-12)
    # integer column index works too, on a numpy X
    dp_idx = make_fairness_scorer("demographic_parity_difference", sensitive_feature_ids=3)
    s_idx = cross_val_score(LogisticRegression(C=1.0), Xn.to_numpy(), y, cv=CV, scoring=dp_idx)
    expected_c1 = [search.cv_results_[f"split{f}_test_dp"][1] for f in range(3)]
    assert s_idx == pytest.approx(expected_c1, abs=1e-12)


def test_routing_off_pipeline_string_column():
    X, y, A = _data(seed=5)
    df = _frame(X, A)
    dp = make_fairness_scorer("demographic_parity_difference", sensitive_feature_ids="sex")
    sdp = make_fairness_scorer("soft_demographic_parity_difference", sensitive_feature_ids=["sex"])
    res = cross_validate(
        _drop_sex_pipeline(),
        df,
        y,
        cv=CV,
        scoring={"acc": "accuracy", "dp": dp, "sdp": sdp},
        return_estimator=True,
        return_indices=True,
    )
    assert res["test_dp"] == pytest.approx(_by_hand(res, df, y, A), abs=1e-12)
    assert res["test_sdp"] == pytest.approx(
        _by_hand(res, df, y, A, metric=soft_demographic_parity_difference, proba=True), abs=1e-12
    )
    scores = cross_val_score(_drop_sex_pipeline(), df, y, cv=CV, scoring=dp)
    assert scores == pytest.approx(res["test_dp"], abs=1e-12)
    search = GridSearchCV(
        _drop_sex_pipeline(),
        {"clf__C": CS},
        scoring={"acc": "accuracy", "dp": dp},
        refit="acc",
        cv=CV,
    )
    search.fit(df, y)
    assert search.cv_results_["mean_test_dp"][1] == pytest.approx(res["test_dp"].mean(), abs=1e-12)


def test_routing_off_sample_weight_forwarded_by_search():
    X, y, A = _data(seed=6)
    Xn = pd.DataFrame(X, columns=["x0", "x1", "x2"])
    Xn["sex"] = (A == "m").astype(int).to_numpy()
    w = np.random.default_rng(1).uniform(0.2, 3.0, len(y))
    dp = make_fairness_scorer("demographic_parity_difference", sensitive_feature_ids="sex")
    search = GridSearchCV(
        LogisticRegression(),
        {"C": [1.0]},
        scoring={"acc": "accuracy", "dp": dp},
        refit="acc",
        cv=CV,
    )
    search.fit(Xn, y, sample_weight=w)
    expected = []
    for f, (train, test) in enumerate(CV.split(Xn, y)):
        est = LogisticRegression().fit(Xn.iloc[train], y[train], sample_weight=w[train])
        expected.append(
            -demographic_parity_difference(
                y[test],
                est.predict(Xn.iloc[test]),
                sensitive_features=A.iloc[test],
                sample_weight=w[test],
            )
        )
        assert search.cv_results_[f"split{f}_test_dp"][0] == pytest.approx(expected[-1], abs=1e-12)


# ---------------------------------------------------------------------------------------
# constrained refit
# ---------------------------------------------------------------------------------------


def test_constrained_refit_on_hand_made_results():
    cv_results = {
        "mean_test_acc": np.array([0.95, 0.90, 0.88, 0.91, np.nan]),
        "mean_test_dp": np.array([-0.30, -0.04, 0.02, -0.06, -0.00]),
    }
    refit = fairness_constrained_refit("acc", "dp", 0.05)
    assert refit(cv_results) == 1  # 0.90 beats 0.88; index 3 violates, index 4 is nan
    assert fairness_constrained_refit("acc", "dp", 0.06)(cv_results) == 3
    assert fairness_constrained_refit("acc", "dp", 1.0)(cv_results) == 0
    assert repr(refit) == "fairness_constrained_refit(objective='acc', constraint='dp', bound=0.05)"
    assert pickle.loads(pickle.dumps(refit))(cv_results) == 1
    with pytest.warns(FairnessWarning, match="smallest violation"):
        assert (
            fairness_constrained_refit("acc", "dp", 0.001)(
                {"mean_test_acc": [0.9, 0.8, 0.85], "mean_test_dp": [-0.2, 0.1, -0.1]}
            )
            == 2
        )  # ties on |dp| = 0.1: the better objective wins
    with pytest.raises(ValueError, match=r"mean_test_fair.*\['acc', 'dp'\]"):
        fairness_constrained_refit("acc", "fair", 0.05)(cv_results)
    with pytest.raises(ValueError, match="objective='accuracy'"):
        fairness_constrained_refit("accuracy", "dp", 0.05)(cv_results)
    with pytest.raises(ValueError, match="bound"):
        fairness_constrained_refit("acc", "dp", -0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fairness_constrained_refit("acc", "dp", 0.05)(cv_results)


def test_constrained_refit_inside_grid_search():
    X, y, A = _data(seed=7)
    dp = make_fairness_scorer("demographic_parity_difference")
    grid = {"C": [1e-4, 1e-3, 1e-2, 1.0]}
    with sklearn.config_context(enable_metadata_routing=True):
        plain = GridSearchCV(
            LogisticRegression(), grid, cv=CV, refit="acc", scoring={"acc": "accuracy", "dp": dp}
        ).fit(X, y, sensitive_features=A)
        res = plain.cv_results_
        acc, viol = res["mean_test_acc"], np.abs(res["mean_test_dp"])
        bound = float(np.sort(viol)[1]) + 1e-9  # two candidates feasible
        feasible = np.flatnonzero(viol <= bound)
        expected = int(feasible[np.argmax(acc[feasible])])
        search = GridSearchCV(
            LogisticRegression(),
            grid,
            cv=CV,
            scoring={"acc": "accuracy", "dp": dp},
            refit=fairness_constrained_refit("acc", "dp", bound),
        ).fit(X, y, sensitive_features=A)
    assert search.best_index_ == expected
    assert search.best_params_ == res["params"][expected]
    assert abs(res["mean_test_dp"][search.best_index_]) <= bound
    assert np.argmax(acc) != expected  # the constraint changed the choice
