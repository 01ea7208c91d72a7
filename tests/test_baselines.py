"""Tests of the fairlearn wrappers in skfairbilevel.baselines."""

import pickle

import numpy as np
import pytest
import sklearn
from fairlearn.reductions import DemographicParity, EqualizedOdds, ExponentiatedGradient, GridSearch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score, cross_validate

from skfairbilevel.baselines import (
    ExponentiatedGradientClassifier,
    GridSearchReductionClassifier,
    float64_scores,
    row_uniforms,
)
from skfairbilevel.datasets import make_biased_classification
from skfairbilevel.metrics import demographic_parity_difference, make_fairness_scorer


@pytest.fixture(scope="module")
def data():
    X, y, A = make_biased_classification(400, 4, bias=1.5, random_state=0)
    return X, y, A


@pytest.fixture(scope="module")
def fitted_eg(data):
    X, y, A = data
    return ExponentiatedGradientClassifier(max_iter=20, random_state=0).fit(
        X, y, sensitive_features=A
    )


@pytest.fixture
def routing():
    with sklearn.config_context(enable_metadata_routing=True):
        yield


# ---------------------------------------------------------------- same model as fairlearn


def test_eg_proba_equals_fairlearn_pmf(data, fitted_eg):
    X, y, A = data
    ref = ExponentiatedGradient(
        LogisticRegression(max_iter=1000), DemographicParity(), max_iter=20
    ).fit(X, y, sensitive_features=A)
    np.testing.assert_allclose(fitted_eg.predict_proba(X), ref._pmf_predict(X), atol=1e-12)
    np.testing.assert_allclose(fitted_eg.mitigator_.weights_.to_numpy(), ref.weights_.to_numpy())
    assert fitted_eg.nu_ == pytest.approx(ref.nu)
    # the reduction must be doing something: a real mixture on this biased data
    p = fitted_eg.predict_proba(X)[:, 1]
    assert ((p > 0) & (p < 1)).sum() > 20


def test_gs_equals_fairlearn_gridsearch(data):
    X, y, A = data
    ours = GridSearchReductionClassifier(constraints="equalized_odds", grid_size=7).fit(
        X, y, sensitive_features=A
    )
    ref = GridSearch(LogisticRegression(max_iter=1000), EqualizedOdds(), grid_size=7).fit(
        X, y, sensitive_features=A
    )
    assert ours.mitigator_.best_idx_ == ref.best_idx_
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X))


def test_string_labels_and_moment_object(data):
    X, y, A = data
    labels = np.array(["no", "yes"])[y]
    eg = ExponentiatedGradientClassifier(
        DemographicParity(difference_bound=0.02), max_iter=10, random_state=0
    )
    # a moment object as the first positional argument is a mistake: it is `estimator`
    with pytest.raises(ValueError, match="estimator"):
        eg.fit(X, labels, sensitive_features=A)
    eg = ExponentiatedGradientClassifier(
        constraints=DemographicParity(difference_bound=0.02), max_iter=10, random_state=0
    )
    eg.fit(X, labels, sensitive_features=A)
    assert set(eg.predict(X)) <= {"no", "yes"}
    np.testing.assert_array_equal(eg.classes_, ["no", "yes"])
    gs = GridSearchReductionClassifier(grid_size=5).fit(X, labels, sensitive_features=A)
    ref = GridSearchReductionClassifier(grid_size=5).fit(X, y, sensitive_features=A)
    np.testing.assert_array_equal(gs.predict(X), np.array(["no", "yes"])[ref.predict(X)])


# ---------------------------------------------------------------- reproducible randomisation


def test_randomised_predict_is_reproducible_and_row_wise(data, fitted_eg):
    X, _, _ = data
    pred = fitted_eg.predict(X)
    np.testing.assert_array_equal(pred, fitted_eg.predict(X))
    perm = np.random.default_rng(1).permutation(len(X))
    np.testing.assert_array_equal(fitted_eg.predict(X[perm]), pred[perm])
    np.testing.assert_array_equal(fitted_eg.predict(X[:7]), pred[:7])
    # same random_state, fresh fit -> same labels; another seed -> other labels
    again = clone(fitted_eg).fit(*data[:2], sensitive_features=data[2])
    np.testing.assert_array_equal(again.predict(X), pred)
    other = clone(fitted_eg).set_params(random_state=1).fit(*data[:2], sensitive_features=data[2])
    assert (other.predict(X) != pred).any()


def test_fairlearn_eg_uses_global_rng_but_ours_does_not(data, fitted_eg):
    X, y, A = data
    ref = ExponentiatedGradient(
        LogisticRegression(max_iter=1000), DemographicParity(), max_iter=20
    ).fit(X, y, sensitive_features=A)
    state = np.random.get_state()
    try:
        np.random.seed(0)
        a = ref.predict(X)
        b = ref.predict(X)
        assert (a != b).any()  # fairlearn: same call, other labels
        np.random.seed(0)
        before = np.random.get_state()[1].copy()
        fitted_eg.predict(X)
        np.testing.assert_array_equal(np.random.get_state()[1], before)
    finally:
        np.random.set_state(state)


def test_randomised_predict_matches_probabilities(data, fitted_eg):
    X, _, _ = data
    p = fitted_eg.predict_proba(X)[:, 1]
    pred = fitted_eg.predict(X)
    # rows with p in {0, 1} are deterministic
    np.testing.assert_array_equal(pred[p == 0], 0)
    np.testing.assert_array_equal(pred[p == 1], 1)
    mixed = (p > 0) & (p < 1)
    # the count of positives among mixed rows is a sum of Bernoulli(p_i): within 4 sd
    mean, sd = p[mixed].sum(), np.sqrt((p[mixed] * (1 - p[mixed])).sum())
    assert abs(pred[mixed].sum() - mean) < 4 * sd
    det = clone(fitted_eg).set_params(randomized=False).fit(X, data[1], sensitive_features=data[2])
    np.testing.assert_array_equal(det.predict(X), (p >= 0.5).astype(int))


def test_row_uniforms_are_uniform_and_seed_dependent():
    X = np.random.default_rng(0).normal(size=(20000, 3))
    u = row_uniforms(X, 5)
    assert u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 4 * np.sqrt(1 / 12 / len(u))
    assert abs(u.var() - 1 / 12) < 0.003
    # decile counts: chi-square with 9 dof, 99.9% quantile 27.9
    counts = np.histogram(u, bins=10, range=(0, 1))[0]
    assert ((counts - 2000) ** 2 / 2000).sum() < 27.9
    v = row_uniforms(X, 6)
    assert abs(np.corrcoef(u, v)[0, 1]) < 4 / np.sqrt(len(u))
    np.testing.assert_array_equal(row_uniforms(X, 5), u)
    assert row_uniforms(np.array([[0.0, 1.0]]), 3)[0] == row_uniforms(np.array([[-0.0, 1.0]]), 3)[0]
    # a near-grid of inputs (one-hot like rows) is still spread out
    grid = np.eye(8)[np.arange(8)]
    assert len(np.unique(row_uniforms(grid, 0))) == 8


# ---------------------------------------------------------------- scikit-learn tools


def test_cross_validate_identical_runs_with_routing(data, routing):
    X, y, A = data
    scoring = {"acc": "accuracy", "dp": make_fairness_scorer("demographic_parity_difference")}
    runs = [
        cross_validate(
            ExponentiatedGradientClassifier(max_iter=8, random_state=0),
            X,
            y,
            scoring=scoring,
            params={"sensitive_features": A},
            cv=KFold(3, shuffle=True, random_state=0),
        )
        for _ in range(2)
    ]
    np.testing.assert_array_equal(runs[0]["test_dp"], runs[1]["test_dp"])
    np.testing.assert_array_equal(runs[0]["test_acc"], runs[1]["test_acc"])
    # the fold scores are the metric of the wrapper's predictions on each test fold
    first_train, first_test = next(KFold(3, shuffle=True, random_state=0).split(X))
    est = ExponentiatedGradientClassifier(max_iter=8, random_state=0).fit(
        X[first_train], y[first_train], sensitive_features=A[first_train]
    )
    dp = demographic_parity_difference(
        y[first_test], est.predict(X[first_test]), sensitive_features=A[first_test]
    )
    assert runs[0]["test_dp"][0] == pytest.approx(-dp)


def test_gridsearchcv_routes_sensitive_features(data, routing):
    X, y, A = data
    dp = make_fairness_scorer("demographic_parity_difference")
    search = GridSearchCV(
        GridSearchReductionClassifier(grid_size=5),
        {"constraints": ["demographic_parity", "equalized_odds"]},
        scoring={"acc": "accuracy", "dp": dp},
        refit="acc",
        cv=3,
    ).fit(X, y, sensitive_features=A)
    assert np.all(np.isfinite(search.cv_results_["mean_test_dp"]))
    assert search.best_estimator_.n_groups_ == 2
    assert (
        ExponentiatedGradientClassifier().get_metadata_routing().fit.requests["sensitive_features"]
        is True
    )


def test_sensitive_feature_ids_with_routing_off(data):
    X, y, A = data
    XA = np.column_stack([X, A])
    dp = make_fairness_scorer("demographic_parity_difference", sensitive_feature_ids=4)
    est = GridSearchReductionClassifier(grid_size=5, sensitive_feature_ids=4)
    scores = cross_val_score(est, XA, y, scoring=dp, cv=3)
    assert np.all(np.isfinite(scores))
    a = est.fit(XA, y)
    b = GridSearchReductionClassifier(grid_size=5).fit(X, y, sensitive_features=A)
    np.testing.assert_allclose(a.predict_proba(XA), b.predict_proba(X))
    kept = GridSearchReductionClassifier(
        grid_size=5, sensitive_feature_ids=4, drop_sensitive=False
    ).fit(XA, y)
    assert kept.best_estimator_.n_features_in_ == 5
    assert a.best_estimator_.n_features_in_ == 4


def test_pickle_and_clone(data, fitted_eg):
    X, _, _ = data
    restored = pickle.loads(pickle.dumps(fitted_eg))
    np.testing.assert_array_equal(restored.predict(X), fitted_eg.predict(X))
    assert not hasattr(clone(fitted_eg), "mitigator_")


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "cls, params, match",
    [
        (ExponentiatedGradientClassifier, dict(eps=0), "'eps'"),
        (ExponentiatedGradientClassifier, dict(max_iter=0), "'max_iter'"),
        (ExponentiatedGradientClassifier, dict(nu=-1.0), "'nu'"),
        (ExponentiatedGradientClassifier, dict(difference_bound=0.0), "'difference_bound'"),
        (ExponentiatedGradientClassifier, dict(random_state=-3), "'random_state'"),
        (ExponentiatedGradientClassifier, dict(constraints="fair"), "'constraints'"),
        (ExponentiatedGradientClassifier, dict(randomized="yes"), "'randomized'"),
        (GridSearchReductionClassifier, dict(constraint_weight=1.5), "'constraint_weight'"),
        (GridSearchReductionClassifier, dict(grid_size=0), "'grid_size'"),
        (GridSearchReductionClassifier, dict(grid_limit=0), "'grid_limit'"),
        (GridSearchReductionClassifier, dict(grid=[[0.0]]), "'grid'"),
    ],
)
def test_bad_parameters(data, cls, params, match):
    X, y, A = data
    with pytest.raises(ValueError, match=match):
        cls(**params).fit(X, y, sensitive_features=A)


def test_bad_data(data):
    X, y, A = data
    est = GridSearchReductionClassifier(grid_size=3)
    with pytest.raises(ValueError, match="needs the sensitive features"):
        est.fit(X, y)
    with pytest.raises(ValueError, match="one way only"):
        GridSearchReductionClassifier(sensitive_feature_ids=0).fit(X, y, sensitive_features=A)
    with pytest.raises(ValueError, match="binary classifier"):
        est.fit(X, np.arange(len(y)) % 3, sensitive_features=A)
    with pytest.raises(ValueError, match="single group"):
        est.fit(X, y, sensitive_features=np.zeros(len(y)))
    with pytest.raises(ValueError, match="rows"):
        est.fit(X, y, sensitive_features=A[:-1])
    fitted = est.fit(X, y, sensitive_features=A)
    with pytest.raises(ValueError, match="features"):
        fitted.predict(X[:, :3])


def test_float64_scores_lets_threshold_optimizer_predict_on_float32():
    from fairlearn.postprocessing import ThresholdOptimizer

    X, y, A = make_biased_classification(300, random_state=0)
    X32 = X.astype(np.float32)
    ours = ThresholdOptimizer(
        estimator=float64_scores(LogisticRegression()), predict_method="predict_proba"
    ).fit(X32, y, sensitive_features=A)
    ref = ThresholdOptimizer(estimator=LogisticRegression(), predict_method="predict_proba").fit(
        X32.astype(np.float64), y, sensitive_features=A
    )
    np.testing.assert_array_equal(
        ours.predict(X32, sensitive_features=A, random_state=0),
        ref.predict(X32.astype(np.float64), sensitive_features=A, random_state=0),
    )
