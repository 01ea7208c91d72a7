"""A numeric sensitive feature with more than 20 distinct values warns (suggesting to bin
it) wherever groups are encoded: the estimators, the metrics and the scorers."""

import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.base import is_regressor
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, cross_validate
from sklearn.preprocessing import KBinsDiscretizer

from skfairbilevel import FairMLPClassifier, all_estimators
from skfairbilevel._groups import encode_groups
from skfairbilevel.exceptions import ContinuousSensitiveFeatureWarning, FairnessWarning
from skfairbilevel.metrics import (
    demographic_parity_difference,
    fairness_report,
    make_fairness_scorer,
    mean_prediction_difference,
)

from ._fast import fast_instance


def _continuous_warnings(func, *args, **kwargs):
    """Run ``func`` and return the ContinuousSensitiveFeatureWarning messages it emitted."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        func(*args, **kwargs)
    return [
        str(w.message) for w in caught if issubclass(w.category, ContinuousSensitiveFeatureWarning)
    ]


def test_warning_class():
    assert issubclass(ContinuousSensitiveFeatureWarning, FairnessWarning)


def test_threshold_and_what_counts_as_numeric():
    ages21 = np.arange(21) + 18
    (message,) = _continuous_warnings(encode_groups, ages21)
    assert "21 distinct values" in message
    assert "pandas.cut" in message and "KBinsDiscretizer" in message
    assert _continuous_warnings(encode_groups, np.arange(20)) == []  # 20: still groups
    assert len(_continuous_warnings(encode_groups, ages21.astype(float) / 3)) == 1
    assert len(_continuous_warnings(encode_groups, list(ages21))) == 1  # plain list of ints
    pl = pytest.importorskip("polars")
    assert len(_continuous_warnings(encode_groups, pl.Series("age", ages21))) == 1
    # strings, categories and booleans are never "continuous", however many values
    names = np.array([f"country{i}" for i in range(30)])
    assert _continuous_warnings(encode_groups, names) == []
    assert _continuous_warnings(encode_groups, pd.Categorical(np.arange(30))) == []
    # the group ids are those of every distinct value, warning or not
    with pytest.warns(ContinuousSensitiveFeatureWarning):
        gid, groups = encode_groups(ages21[::-1])
    assert groups.tolist() == ages21.tolist() and gid.tolist() == list(range(20, -1, -1))


def test_several_columns_name_the_continuous_one():
    rng = np.random.default_rng(0)
    A = pd.DataFrame({"sex": rng.choice(["f", "m"], 100), "age": rng.integers(18, 90, 100)})
    (message,) = _continuous_warnings(encode_groups, A)
    assert "column 'age'" in message and "column 'sex'" not in message


def test_binned_feature_does_not_warn():
    rng = np.random.default_rng(0)
    age = rng.integers(18, 90, 200)
    assert _continuous_warnings(encode_groups, pd.cut(age, bins=[0, 30, 50, 70, 120])) == []
    kbins = KBinsDiscretizer(n_bins=4, encode="ordinal", quantile_method="averaged_inverted_cdf")
    binned = kbins.fit_transform(age[:, None]).ravel()
    assert _continuous_warnings(encode_groups, binned) == []


def test_metrics_warn_once():
    rng = np.random.default_rng(1)
    n = 200
    age = rng.integers(18, 90, n)
    y_true = rng.integers(0, 2, n)
    y_pred = rng.integers(0, 2, n)
    assert (
        len(
            _continuous_warnings(
                demographic_parity_difference, y_true, y_pred, sensitive_features=age
            )
        )
        == 1
    )
    assert (
        len(
            _continuous_warnings(
                mean_prediction_difference, None, rng.normal(size=n), sensitive_features=age
            )
        )
        == 1
    )
    assert len(_continuous_warnings(fairness_report, y_true, y_pred, sensitive_features=age)) == 1
    # 25 string groups: fairness_report's internal group ids are not taken for numbers
    many = np.array([f"g{i}" for i in range(25)])[rng.integers(0, 25, n)]
    assert (
        _continuous_warnings(
            fairness_report, y_true, y_pred, sensitive_features=many, y_score=rng.random(n)
        )
        == []
    )


def _scorer_data(n=200, seed=2):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 2)), columns=["x0", "x1"])
    X["age"] = rng.integers(18, 90, n)
    y = (X["x0"] > 0).astype(int).to_numpy()
    return X, y


def test_scorers_warn_routing_on_and_off():
    X, y = _scorer_data()
    clf = LogisticRegression().fit(X, y)
    dp = make_fairness_scorer("demographic_parity_difference", sensitive_feature_ids="age")
    assert len(_continuous_warnings(dp, clf, X, y)) == 1
    with sklearn.config_context(enable_metadata_routing=True):
        messages = _continuous_warnings(
            cross_validate,
            LogisticRegression(),
            X,
            y,
            cv=KFold(2),
            scoring={"dp": make_fairness_scorer("demographic_parity_difference")},
            params={"sensitive_features": X["age"]},
            error_score="raise",
        )
    assert len(messages) == 2  # one per test fold


@pytest.mark.parametrize("name_cls", all_estimators(), ids=lambda nc: nc[0])
def test_estimators_warn(name_cls):
    name, cls = name_cls
    rng = np.random.default_rng(3)
    n = 120
    X = rng.normal(size=(n, 3))
    age = rng.integers(18, 80, n)
    est = fast_instance(name, cls)
    if is_regressor(est):
        y = X[:, 0] + 0.1 * rng.normal(size=n)
    else:
        y = (X[:, 0] > 0).astype(int)
    messages = _continuous_warnings(est.fit, X, y, sensitive_features=age)
    assert len(messages) == 1 and "distinct values" in messages[0]


def test_estimator_warns_for_a_column_read_by_id():
    X, y = _scorer_data(n=120, seed=4)
    est = FairMLPClassifier(
        hidden_layer_sizes=(4,), max_epochs=2, random_state=0, sensitive_feature_ids="age"
    )
    assert len(_continuous_warnings(est.fit, X, y)) == 1
    assert est.n_groups_ == X["age"].nunique()  # encoded all the same, one group per value
