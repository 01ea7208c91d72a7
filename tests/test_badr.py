"""BADRClassifier / BADRRegressor: hypergradient, solvers, metrics, baselines, contract."""

import pickle
import warnings

import numpy as np
import pytest
import sklearn
import torch
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skfairbilevel.estimators._badr as badr
from skfairbilevel import BADRClassifier, BADRRegressor
from skfairbilevel.exceptions import (
    NonFiniteLossError,
    NoSensitiveFeaturesWarning,
    TrainingInterruptedWarning,
)
from skfairbilevel.metrics import soft_demographic_parity_difference
from skfairbilevel.nn.smooth_fairness import CLASSIFIER_FAIRNESS


# --------------------------------------------------------------------- data
def classification_data(n=600, d=4, n_groups=2, seed=0):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, n_groups, n)
    X = rng.normal(size=(n, d))
    X[:, 0] += 0.8 * g
    logit = X[:, 0] + X[:, 1] - 0.5 + 0.7 * g + 0.5 * rng.normal(size=n)
    y = (logit > 0).astype(np.int64)
    return X, y, g


def regression_data(n=500, d=4, n_groups=2, seed=0):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, n_groups, n)
    X = rng.normal(size=(n, d))
    X[:, 0] += 0.8 * g
    y = 3.0 + X @ np.linspace(1.0, -0.5, d) + 0.8 * g + 0.5 * rng.normal(size=n)
    return X, y * 10.0, g


def crossing_regression_data(n=1500, seed=0):
    """Regression whose group slopes differ in sign: the group-mean prediction gap
    changes sign along the Pareto front, so demographic parity has an interior optimum."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 3))
    X[:, 0] += 1.0 * g
    slope = np.where(g == 0, 1.0, -0.6)
    y = slope * X[:, 0] + 0.5 * X[:, 1] + 0.3 * rng.normal(size=n)
    return X, y, g


# --------------------------------------------------------------------- metrics by hand
def _linear_scores(clf, X):
    return X @ clf.coef_.ravel() + clf.intercept_.ravel()[0]


def test_metric_values_by_hand():
    X, y, g = classification_data(400)
    rho = 7.0
    for fairness in CLASSIFIER_FAIRNESS:
        clf = BADRClassifier(fairness, rho=rho, group_weights="uniform").fit(
            X, y, sensitive_features=g
        )
        s = _linear_scores(clf, X)
        p = 1 / (1 + np.exp(-s))
        if fairness == "demographic_parity":
            d = p[g == 0].mean() - p[g == 1].mean()
            expected = 2 / rho * np.log(np.cosh(rho * d / 2))
        elif fairness == "equal_opportunity":
            d = p[(g == 0) & (y == 1)].mean() - p[(g == 1) & (y == 1)].mean()
            expected = 2 / rho * np.log(np.cosh(rho * d / 2))
        elif fairness == "equalized_odds":
            parts = []
            for label in (1, 0):
                d = p[(g == 0) & (y == label)].mean() - p[(g == 1) & (y == label)].mean()
                parts.append(2 / rho * np.log(np.cosh(rho * d / 2)))
            expected = np.log(np.mean(np.exp(rho * np.array(parts)))) / rho
        elif fairness == "group_variance":
            loss = np.logaddexp(0, s) - y * s
            expected = np.var([loss[g == 0].mean(), loss[g == 1].mean()])
        elif fairness == "disparate_mistreatment":
            # the toolbox's cov(g, s)^2 with the group index as a number (two groups)
            expected = np.mean((g - g.mean()) * (s - s.mean())) ** 2
        else:  # individual fairness, brute force over all cross-group pairs
            i, j = np.nonzero(g[:, None] != g[None, :])
            k = np.exp(-np.abs(y[i] - y[j]))
            expected = (k * (s[i] - s[j]) ** 2).sum() / 2 / len(i)
        np.testing.assert_allclose(clf.fairness_objective_, expected, rtol=1e-7)
        np.testing.assert_allclose(
            clf.fairness_objective(X, y, sensitive_features=g), expected, rtol=1e-7
        )


def test_smooth_demographic_parity_tends_to_the_soft_gap():
    X, y, g = classification_data(400)
    clf = BADRClassifier(group_weights="uniform").fit(X, y, sensitive_features=g)
    gap = soft_demographic_parity_difference(y, clf.predict_proba(X), sensitive_features=g)
    values = [
        BADRClassifier(rho=rho)
        .set_params(group_weights="uniform")
        .fit(X, y, sensitive_features=g)
        .fairness_objective_
        for rho in (1e1, 1e3, 1e5)
    ]
    assert values[0] < values[1] < values[2] <= gap
    np.testing.assert_allclose(values[2], gap, atol=2 * np.log(2) / 1e5 + 1e-9)


# --------------------------------------------------------------------- lower level
def test_lower_level_equals_sklearn_weighted_logistic_and_ridge():
    X, y, g = classification_data(500)
    alpha = 0.05
    lam = np.array([0.3, 0.7])
    clf = BADRClassifier(alpha=alpha, group_weights=lam).fit(X, y, sensitive_features=g)
    sw = lam[g] / np.bincount(g)[g]
    ref = LogisticRegression(C=1 / alpha, tol=1e-12, max_iter=10_000).fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(clf.coef_, ref.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(clf.intercept_, ref.intercept_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(clf.predict_proba(X), ref.predict_proba(X), atol=1e-6)
    # regressor: y is standardised inside; the objective is ridge with alpha / 2
    X, yr, g = regression_data(400)
    reg = BADRRegressor(alpha=alpha, group_weights=lam).fit(X, yr, sensitive_features=g)
    sw = lam[g] / np.bincount(g)[g]
    ridge = Ridge(alpha=alpha / 2, tol=1e-12).fit(X, yr, sample_weight=sw)
    np.testing.assert_allclose(reg.coef_, ridge.coef_, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(reg.intercept_, ridge.intercept_, rtol=1e-6)
    np.testing.assert_allclose(reg.predict(X), ridge.predict(X), rtol=1e-6)


# --------------------------------------------------------------------- exact solver
@pytest.mark.parametrize(
    "fairness", ["demographic_parity", "individual_fairness", "equal_opportunity"]
)
def test_exact_solver_lands_on_the_grid_optimum(fairness):
    X, y, g = classification_data(300, seed=1)
    grid = np.linspace(0, 1, 201)
    values = [
        BADRClassifier(fairness, group_weights=[t, 1 - t])
        .fit(X, y, sensitive_features=g)
        .fairness_objective_
        for t in grid
    ]
    best = grid[int(np.argmin(values))]
    clf = BADRClassifier(fairness, score_tolerance=None).fit(X, y, sensitive_features=g)
    assert abs(clf.group_weights_[0] - best) <= 0.01
    assert clf.fairness_objective_ <= min(values) + 1e-9
    assert clf.n_iter_ < clf.max_iter  # stopped on tol
    ups = [h["upper"] for h in clf.history_]
    assert all(b <= a + 1e-12 for a, b in zip(ups, ups[1:], strict=False))  # monotone


def test_exact_solver_three_groups_beats_every_vertex_and_uniform():
    X, y, g = classification_data(900, n_groups=3, seed=2)
    clf = BADRClassifier("demographic_parity", score_tolerance=None).fit(X, y, sensitive_features=g)
    uni = BADRClassifier("demographic_parity", init="uniform", max_iter=1).fit(
        X, y, sensitive_features=g
    )
    np.testing.assert_allclose([uni.history_[0][f"lambda_{a}"] for a in range(3)], [1 / 3] * 3)
    assert clf.group_weights_.shape == (3,) and abs(clf.group_weights_.sum() - 1) < 1e-12
    for lam in ([1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]):
        other = BADRClassifier(group_weights=lam).fit(X, y, sensitive_features=g)
        assert clf.fairness_objective_ <= other.fairness_objective_ + 1e-10


# --------------------------------------------------------------------- BADR-GD / SGD
@pytest.mark.parametrize(
    "estimator,fairness,data,step,step_lambda",
    [
        (BADRClassifier, "demographic_parity", classification_data, 1.0, 1.0),
        (BADRClassifier, "individual_fairness", classification_data, 1.0, 1.0),
        (BADRRegressor, "demographic_parity", crossing_regression_data, 0.3, 0.1),
    ],
)
def test_gd_and_sgd_reach_the_exact_objective(estimator, fairness, data, step, step_lambda):
    # step_w below 2 / L (the squared loss is more curved than the logistic one); the
    # regressor's metric is in units of std(y), its hypergradient larger: smaller
    # lambda steps keep lambda slower than w and v (the single loop's time scales)
    X, y, g = data(1500, seed=3)
    X = StandardScaler().fit_transform(X)
    common = dict(alpha=0.1, step_lambda=step_lambda)
    exact = estimator(fairness, **common).fit(X, y, sensitive_features=g)
    gd = estimator(fairness, solver="gd", step_w=step, max_iter=300, **common).fit(
        X, y, sensitive_features=g
    )
    sgd = estimator(
        fairness, solver="sgd", step_w=step / 2, max_iter=300, random_state=0, **common
    ).fit(X, y, sensitive_features=g)
    assert abs(gd.fairness_objective_ - exact.fairness_objective_) <= 1e-3
    assert abs(sgd.fairness_objective_ - exact.fairness_objective_) <= 1e-3
    assert len(sgd.history_) == 300 and sgd.n_iter_ == 300
    for key in (
        "upper",
        "lower",
        "entropy",
        "v_norm",
        "hypergrad_norm",
        "grad_norm",
        "fair_grad_norm",
        "clipped_fraction",
        "lambda_0",
        "lambda_1",
    ):
        assert key in sgd.history_[-1]


def test_sgd_balanced_batches_and_clipping(monkeypatch):
    X, y, g = classification_data(700, n_groups=3, seed=4)
    seen = []
    original = badr.balanced_batches

    def spy(group_rows, *args, **kwargs):
        sampler = original(group_rows, *args, **kwargs)
        g_of = torch.zeros(sum(len(r) for r in group_rows), dtype=torch.long)
        for a, rows in enumerate(group_rows):
            g_of[rows] = a

        def wrapped(epoch):
            batches = list(sampler(epoch))
            seen.append(g_of[batches[0]])
            return batches

        return wrapped

    monkeypatch.setattr(badr, "balanced_batches", spy)
    clf = BADRClassifier(solver="sgd", batch_size=100, max_iter=5, clip=1e-9, random_state=0).fit(
        X, y, sensitive_features=g
    )
    monkeypatch.undo()
    assert len(seen) == 5
    for groups in seen:  # quotas: the first 100 % 3 groups get one more row
        assert torch.bincount(groups, minlength=3).tolist() == [34, 33, 33]
    assert clf.history_[-1]["clipped_fraction"] > 0.5
    lam = np.array([[h[f"lambda_{a}"] for a in range(3)] for h in clf.history_])
    assert np.all(np.abs(np.diff(lam, axis=0)).sum(1) <= 2e-9 + 1e-15)  # clipped steps


# --------------------------------------------------------------------- baselines
def test_fixed_baselines():
    X, y, g = classification_data(600, n_groups=3, seed=5)
    counts = np.bincount(g)
    fit = {
        gw: BADRClassifier(group_weights=gw).fit(X, y, sensitive_features=g)
        for gw in ("uniform", "balanced", "pooled", "minimax", "one_group")
    }
    np.testing.assert_allclose(fit["uniform"].group_weights_, [1 / 3] * 3)
    np.testing.assert_allclose(fit["balanced"].group_weights_, (1 / counts) / (1 / counts).sum())
    np.testing.assert_allclose(fit["pooled"].group_weights_, counts / counts.sum())
    # pooled = ordinary (unweighted) regularised logistic regression
    ref = LogisticRegression(C=1 / 0.01, tol=1e-12, max_iter=10_000).fit(
        X, y, sample_weight=np.full(len(y), 1 / len(y))
    )
    np.testing.assert_allclose(fit["pooled"].coef_, ref.coef_, rtol=1e-6)
    # one_group: the vertex whose model has the smallest training metric
    vertex = [
        BADRClassifier(group_weights=np.eye(3)[a])
        .fit(X, y, sensitive_features=g)
        .fairness_objective_
        for a in range(3)
    ]
    np.testing.assert_allclose(fit["one_group"].group_weights_, np.eye(3)[np.argmin(vertex)])
    assert all(len(f.history_) == 0 and f.n_iter_ >= 1 for k, f in fit.items() if k != "minimax")


def test_minimax_weights_equalise_the_active_group_risks():
    X, y, g = classification_data(800, seed=6)
    mm = BADRClassifier(group_weights="minimax").fit(X, y, sensitive_features=g)
    lam = mm.group_weights_
    assert np.all(lam > 0.05)  # interior here: both groups active
    prob_losses = []
    s = _linear_scores(mm, X)
    loss = np.logaddexp(0, s) - y * s
    for a in range(2):
        prob_losses.append(loss[g == a].mean())
    assert abs(prob_losses[0] - prob_losses[1]) < 1e-5
    # the max group risk is smaller than at any other weighting
    for t in (0.2, 0.4, 0.6, 0.8):
        other = BADRClassifier(group_weights=[t, 1 - t]).fit(X, y, sensitive_features=g)
        so = _linear_scores(other, X)
        lo = np.logaddexp(0, so) - y * so
        assert max(lo[g == 0].mean(), lo[g == 1].mean()) >= max(prob_losses) - 1e-9
    # group-variance BADR lands on the same equal-risk weights
    gv = BADRClassifier("group_variance").fit(X, y, sensitive_features=g)
    np.testing.assert_allclose(gv.group_weights_, lam, atol=1e-4)


# --------------------------------------------------------------------- contract
def test_without_sensitive_features_is_plain_erm():
    X, y, _ = classification_data(300)
    with pytest.warns(NoSensitiveFeaturesWarning):
        clf = BADRClassifier().fit(X, y)
    assert not clf.fairness_aware_ and clf.group_weights_.tolist() == [1.0]
    ref = LogisticRegression(C=100, tol=1e-12, max_iter=10_000).fit(
        X, y, sample_weight=np.full(len(y), 1 / len(y))
    )
    np.testing.assert_allclose(clf.coef_, ref.coef_, rtol=1e-6)


def test_sample_weight_is_repetition_with_groups():
    X, y, g = classification_data(200, seed=7)
    reps = np.random.default_rng(0).integers(1, 4, len(y))
    a = BADRClassifier().fit(X, y, sensitive_features=g, sample_weight=reps)
    b = BADRClassifier().fit(
        np.repeat(X, reps, 0), np.repeat(y, reps), sensitive_features=np.repeat(g, reps)
    )
    np.testing.assert_allclose(a.group_weights_, b.group_weights_, atol=1e-10)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-10)


def test_determinism_and_seeds():
    X, y, g = classification_data(400, seed=8)

    def proba(seed, **kw):
        return (
            BADRClassifier(random_state=seed, **kw).fit(X, y, sensitive_features=g).predict_proba(X)
        )

    sgd = dict(solver="sgd", max_iter=30, batch_size=64)
    assert np.array_equal(proba(0, **sgd), proba(0, **sgd))
    assert not np.array_equal(proba(0, **sgd), proba(1, **sgd))
    mlp = dict(model="mlp", hidden_layer_sizes=(4,), solver="sgd", max_iter=5, lower_max_iter=10)
    assert np.array_equal(proba(0, **mlp), proba(0, **mlp))
    assert not np.array_equal(proba(0, **mlp), proba(1, **mlp))


def test_mlp_exact_and_sgd_improve_on_uniform():
    X, y, g = classification_data(400, seed=9)
    kw = dict(model="mlp", hidden_layer_sizes=(6,), lower_max_iter=50, random_state=0)
    uni = BADRClassifier(group_weights="uniform", **kw).fit(X, y, sensitive_features=g)
    ex = BADRClassifier(max_iter=10, **kw).fit(X, y, sensitive_features=g)
    sgd = BADRClassifier(solver="sgd", max_iter=50, **kw).fit(X, y, sensitive_features=g)
    assert ex.fairness_objective_ < uni.fairness_objective_
    assert sgd.fairness_objective_ < uni.fairness_objective_
    assert not hasattr(ex, "coef_")
    one = BADRClassifier(group_weights="one_group", **kw).fit(X, y, sensitive_features=g)
    assert one.group_weights_.max() == 1.0
    assert ex.predict_proba(X).shape == (400, 2)


def test_multiclass_and_regressor_outputs():
    rng = np.random.default_rng(10)
    X, _, g = classification_data(450, seed=10)
    y3 = np.digitize(X[:, 0] + 0.5 * rng.normal(size=450), [-0.5, 0.8])
    clf = BADRClassifier("equalized_odds").fit(X, y3, sensitive_features=g)
    assert clf.coef_.shape == (3, 4) and clf.intercept_.shape == (3,)
    assert clf.predict_proba(X).shape == (450, 3)
    assert set(clf.predict(X)) <= {0, 1, 2}
    Xr, yr, gr = regression_data(300)
    reg = BADRRegressor("individual_fairness", max_pairs=2000, random_state=0).fit(
        Xr, yr, sensitive_features=gr
    )
    assert reg.coef_.shape == (4,) and isinstance(reg.intercept_, float)
    np.testing.assert_allclose(reg.predict(Xr), Xr @ reg.coef_ + reg.intercept_, rtol=1e-10)
    assert reg.score(Xr, yr) > 0.5


def test_interrupt_keeps_last_completed_iteration(monkeypatch):
    X, y, g = classification_data(400, seed=11)
    calls = {"n": 0}
    original = badr.project_simplex

    def flaky(v):
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt
        return original(v)

    monkeypatch.setattr(badr, "project_simplex", flaky)
    with pytest.warns(TrainingInterruptedWarning):
        clf = BADRClassifier(solver="sgd", max_iter=50, score_tolerance=None, random_state=0).fit(
            X, y, sensitive_features=g
        )
    assert clf.interrupted_ and clf.n_iter_ == 5
    last = clf.history_[-1]
    # the state after the 5th update: lambda from the 5th projection, not a refit
    assert abs(clf.group_weights_.sum() - 1) < 1e-12
    assert clf.predict(X).shape == (400,) and np.isfinite(last["upper"])


def test_divergence_raises_non_finite_error_naming_the_steps():
    X, y, g = classification_data(300, seed=12)
    with pytest.raises(NonFiniteLossError, match="step_w"):
        BADRRegressor(solver="gd", step_w=1e4, max_iter=50).fit(X, y * 1.0, sensitive_features=g)


@pytest.mark.parametrize(
    "param,value",
    [
        ("fairness", "accuracy"),
        ("model", "tree"),
        ("hidden_layer_sizes", (0,)),
        ("activation", "nope"),
        ("alpha", -1.0),
        ("rho", 0.0),
        ("group_weights", "equal"),
        ("group_weights", [-1, 2]),
        ("group_weights", [0, 0]),
        ("solver", "adam"),
        ("max_iter", 0),
        ("batch_size", 0),
        ("step_w", 0.0),
        ("step_v", -1.0),
        ("step_lambda", -0.1),
        ("clip", 0.0),
        ("fairness_gradient", "half"),
        ("average_lambda", "yes"),
        ("init", "random"),
        ("lower_max_iter", 0),
        ("tol", -1e-3),
        ("score_tolerance", -0.01),
        ("score_tolerance", float("nan")),
        ("score_tolerance", "0.02"),
        ("device", None),
        ("random_state", "seed"),
    ],
)
def test_bad_hyper_parameters_name_themselves(param, value):
    X, y, g = classification_data(100)
    with pytest.raises(ValueError, match=param):
        BADRClassifier(**{param: value}).fit(X, y, sensitive_features=g)


def test_bad_combinations():
    X, y, g = classification_data(100)
    with pytest.raises(ValueError, match="alpha"):
        BADRClassifier(alpha=0.0).fit(X, y, sensitive_features=g)
    with pytest.raises(ValueError, match="group_weights has 3 entries"):
        BADRClassifier(group_weights=[1, 1, 1]).fit(X, y, sensitive_features=g)
    with pytest.raises(ValueError, match="fairness"):
        BADRRegressor("equal_opportunity").fit(X, y * 1.0, sensitive_features=g)
    with pytest.raises(ValueError, match="max_pairs"):
        BADRRegressor(max_pairs=0).fit(X, y * 1.0, sensitive_features=g)
    y3 = y + (X[:, 1] > 1)
    with pytest.raises(ValueError, match="binary target"):
        BADRClassifier("individual_fairness").fit(X, y3, sensitive_features=g)
    with pytest.raises(ValueError, match="batch_size"):
        BADRClassifier(solver="sgd", batch_size=2).fit(X, y, sensitive_features=np.arange(100) % 3)
    with pytest.raises(ValueError, match="positive"):
        BADRClassifier().fit(X, y, sensitive_features=g, sample_weight=(g == 0).astype(float))
    clf = BADRClassifier().fit(X, y, sensitive_features=g)
    with pytest.raises(ValueError, match="not seen in fit"):
        clf.fairness_objective(X, y, sensitive_features=g + 5)


def test_pipeline_grid_search_routing_pickle_and_warm_start():
    X, y, g = classification_data(300, seed=13)
    with sklearn.config_context(enable_metadata_routing=True):
        search = GridSearchCV(
            make_pipeline(StandardScaler(), BADRClassifier()),
            {"badrclassifier__rho": [5.0, 20.0]},
            cv=2,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("error", NoSensitiveFeaturesWarning)
            search.fit(X, y, sensitive_features=g)
    assert search.best_estimator_[-1].fairness_aware_
    # sensitive_feature_ids: the group column of X
    Xg = np.column_stack([X, g])
    clf = BADRClassifier(sensitive_feature_ids=[4]).fit(Xg, y)
    ref = BADRClassifier().fit(X, y, sensitive_features=g)
    np.testing.assert_allclose(clf.group_weights_, ref.group_weights_, atol=1e-12)
    restored = pickle.loads(pickle.dumps(clf))
    assert np.array_equal(restored.predict_proba(Xg), clf.predict_proba(Xg))
    # warm start resumes from the learned weights (and appends to the history)
    warm = BADRClassifier(warm_start=True).fit(X, y, sensitive_features=g)
    first, lam = len(warm.history_), warm.group_weights_.copy()
    warm.fit(X, y, sensitive_features=g)
    assert warm.history_[first]["lambda_0"] == lam[0]
    np.testing.assert_allclose(warm.group_weights_, ref.group_weights_, atol=1e-6)
