"""Our estimators with our fairness scorers in scikit-learn's tools, routing on and off."""

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skfairbilevel import FairMLPClassifier
from skfairbilevel.metrics import (
    demographic_parity_difference,
    fairness_constrained_refit,
    make_fairness_scorer,
)


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    n = 360
    sex = rng.integers(0, 2, n)
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    X["a"] += 1.0 * sex
    y = (X["a"] + 0.5 * X["b"] + 0.4 * rng.normal(size=n) > 0.5).astype(int).to_numpy()
    X["sex"] = sex.astype(float)
    return X, y, np.where(sex == 1, "f", "m")


def mlp(**kw):
    return FairMLPClassifier(
        (8,), fairness="demographic_parity", max_epochs=15, lr=1e-2, random_state=0, **kw
    )


SCORING_ON = {"acc": "accuracy", "dp": make_fairness_scorer("demographic_parity_difference")}


def test_routing_on_grid_search_pipeline_and_scores_match_by_hand(frame):
    X, y, A = frame
    cv = KFold(3, shuffle=True, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_pipeline(StandardScaler(), mlp())
        search = GridSearchCV(
            pipe,
            {"fairmlpclassifier__fairness_weight": [0.0, 30.0]},
            scoring=SCORING_ON,
            cv=cv,
            refit=fairness_constrained_refit("acc", "dp", 0.1),
        )
        search.fit(X, y, sensitive_features=A)
        res = search.cv_results_
        # the DP score of fold 0 / candidate 1 equals the metric on that fold by hand
        train, test = next(cv.split(X))
        est = make_pipeline(StandardScaler(), mlp(fairness_weight=30.0))
        est.fit(X.iloc[train], y[train], sensitive_features=A[train])
    by_hand = demographic_parity_difference(
        y[test], est.predict(X.iloc[test]), sensitive_features=A[test]
    )
    assert res["split0_test_dp"][1] == pytest.approx(-by_hand, abs=1e-12)
    # the penalty lowers the mean DP across folds
    assert -res["mean_test_dp"][1] < -res["mean_test_dp"][0]
    chosen = search.best_index_
    assert -res["mean_test_dp"][chosen] <= 0.1 or chosen == int(np.argmax(res["mean_test_dp"]))


def test_routing_on_cross_validate_and_cross_val_score(frame):
    X, y, A = frame
    with sklearn.config_context(enable_metadata_routing=True):
        out = cross_validate(
            mlp(), X, y, cv=3, scoring=SCORING_ON, params={"sensitive_features": A}
        )
        dp = cross_val_score(
            mlp(), X, y, cv=3, scoring=SCORING_ON["dp"], params={"sensitive_features": A}
        )
    np.testing.assert_allclose(out["test_dp"], dp)
    assert np.all((dp <= 0) & (dp >= -1))


def test_routing_off_column_of_X_everywhere(frame):
    X, y, _ = frame
    scoring = {
        "acc": "accuracy",
        "dp": make_fairness_scorer("demographic_parity_difference", sensitive_feature_ids="sex"),
    }
    # the estimator reads (and drops) the column itself; scaling keeps column names
    scale = ColumnTransformer(
        [("num", StandardScaler(), ["a", "b", "c"])],
        remainder="passthrough",
        verbose_feature_names_out=False,
    )
    pipe = make_pipeline(scale.set_output(transform="pandas"), mlp(sensitive_feature_ids="sex"))
    search = GridSearchCV(
        pipe,
        {"fairmlpclassifier__fairness_weight": [0.0, 30.0]},
        scoring=scoring,
        refit="acc",
        cv=3,
    )
    search.fit(X, y)
    assert search.best_estimator_[-1].fairness_aware_
    out = cross_validate(pipe, X, y, cv=3, scoring=scoring)
    assert np.all(np.isfinite(out["test_dp"]))


def test_scorer_without_any_sensitive_information_explains_both_fixes(frame):
    X, y, A = frame
    est = mlp().fit(X, y, sensitive_features=A)
    with pytest.raises(ValueError, match="(?s)enable_metadata_routing.*sensitive_feature_ids"):
        make_fairness_scorer("demographic_parity_difference")(est, X, y)
