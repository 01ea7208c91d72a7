"""Each estimator's trade-off knob moves its targeted metric monotonically.

Small versions, on synthetic biased data, of the knob grids of the user guide's knob
table (the Adult figures are in benchmarks/results/defaults.md): 2000 rows to fit,
1000 held out to score, one seed.
"""

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import r2_score

from skfairbilevel import (
    BADRClassifier,
    BADRRegressor,
    FairBiNNClassifier,
    FairMLPClassifier,
    FairPruningClassifier,
    FairRobustClassifier,
)
from skfairbilevel.datasets import make_biased_classification
from skfairbilevel.metrics import demographic_parity_difference

WEIGHTS = (0.3, 1.0, 3.0, 10.0, 30.0)
RHO = -0.9 + 1e-9  # Spearman's rank correlation of -0.9: one swapped neighbour pair
ALG1 = dict(update_order="leader_first", leader_includes_fairness_grad=False)


@pytest.fixture(scope="module")
def biased():
    X, y, A = make_biased_classification(3000, 5, bias=1.5, random_state=0)
    return X[:2000], y[:2000], A[:2000], X[2000:], y[2000:], A[2000:]


def _sweep(biased, make, grid):
    """Held-out DP, held-out accuracy and the last epoch's training penalty per value."""
    X, y, A, Xv, yv, Av = biased
    dp, acc, penalty = [], [], []
    for v in grid:
        m = make(v).fit(X, y, sensitive_features=A)
        pred = m.predict(Xv)
        dp.append(demographic_parity_difference(yv, pred, sensitive_features=Av))
        acc.append(float(np.mean(pred == yv)))
        history = [h["fairness"] for h in getattr(m, "history_", []) if "fairness" in h]
        penalty.append(history[-1] if history else np.nan)
    return np.array(dp), np.array(acc), np.array(penalty)


def _spearman(x, y):
    return spearmanr(x, y).statistic


def test_fairbinn_eta_lowers_the_penalty_and_demographic_parity(biased):
    # the default (reference) update: eta weighs the penalty in the leader's step
    dp, _, penalty = _sweep(
        biased,
        lambda v: FairBiNNClassifier((32, 32), eta=v, max_epochs=10, random_state=0),
        WEIGHTS,
    )
    assert np.all(np.diff(penalty) < 0)  # larger eta, smaller penalty after the same steps
    assert _spearman(WEIGHTS, dp) <= RHO
    assert dp[-1] < 0.6 * dp[0]


def test_fairbinn_eta_has_no_effect_under_algorithm1_with_adam(biased):
    # documented property: Adam's steps do not depend on the scale of the follower's
    # only loss, eta * Fair (see the eta parameter)
    etas = (1.0, 100.0, 10_000.0)
    dp, acc, penalty = _sweep(
        biased,
        lambda v: FairBiNNClassifier((32, 32), eta=v, max_epochs=5, random_state=0, **ALG1),
        etas,
    )
    np.testing.assert_allclose(penalty, penalty[0], rtol=1e-2)
    assert np.ptp(dp) < 0.01 and np.ptp(acc) < 0.01


def test_pruning_fairness_weight_lowers_the_penalty_and_demographic_parity(biased):
    def make(v):
        return FairPruningClassifier(
            fairness_weight=v, pretrain_epochs=5, max_epochs=3, finetune_epochs=2, random_state=0
        )

    dp, _, penalty = _sweep(biased, make, WEIGHTS)
    assert np.all(np.diff(penalty) < 0)
    assert _spearman(WEIGHTS, dp) <= RHO


def test_fair_mlp_fairness_weight_lowers_demographic_parity(biased):
    def make(v):
        return FairMLPClassifier(
            fairness="demographic_parity", fairness_weight=v, max_epochs=10, random_state=0
        )

    dp, _, penalty = _sweep(biased, make, WEIGHTS)
    assert np.all(np.diff(penalty) < 0)
    assert _spearman(WEIGHTS, dp) <= RHO


def test_badr_score_tolerance_trades_training_accuracy_for_parity(biased):
    X, y, A, *_ = biased
    tolerances = (0.0, 0.01, 0.02, 0.05, 0.1)
    dp, _, _ = _sweep(biased, lambda v: BADRClassifier(score_tolerance=v), tolerances)
    assert np.all(np.diff(dp) < 0)
    uniform = BADRClassifier(group_weights="uniform").fit(X, y, sensitive_features=A).score(X, y)
    for tol in tolerances:
        clf = BADRClassifier(score_tolerance=tol).fit(X, y, sensitive_features=A)
        assert clf.score(X, y) >= uniform - tol - 1e-12  # within the budget, on training
    pure = BADRClassifier(score_tolerance=None).fit(X, y, sensitive_features=A)
    np.testing.assert_allclose(pure.group_weights_, [1.0, 0.0])  # the vertex: tol 0.1's end


@pytest.mark.parametrize("solver", ["gd", "sgd"])
def test_badr_single_loop_solvers_stay_within_the_budget(biased, solver):
    X, y, A, *_ = biased
    uniform = BADRClassifier(group_weights="uniform").fit(X, y, sensitive_features=A).score(X, y)
    clf = BADRClassifier(
        score_tolerance=0.02, solver=solver, init="uniform", max_iter=60, random_state=0
    ).fit(X, y, sensitive_features=A)
    assert clf.score(X, y) >= uniform - 0.02 - 1e-12
    assert not np.allclose(clf.group_weights_, 0.5)  # the weights did move


def test_badr_regressor_score_tolerance_lowers_the_mean_gap():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2, 3000)
    Z = rng.normal(size=(3000, 4)) + 0.7 * a[:, None] * np.array([1.0, 0.0, 0.0, 0.5])
    t = Z @ [1.0, 0.5, -0.5, 0.3] + 0.8 * a + rng.normal(size=3000)
    Zt, tt, at, Zv, av = Z[:2000], t[:2000], a[:2000], Z[2000:], a[2000:]
    uniform = BADRRegressor(group_weights="uniform").fit(Zt, tt, sensitive_features=at)
    gaps = []
    for tol in (0.0, 0.01, 0.02, 0.05, 0.1):
        reg = BADRRegressor(score_tolerance=tol).fit(Zt, tt, sensitive_features=at)
        p = reg.predict(Zv)
        gaps.append(abs(p[av == 1].mean() - p[av == 0].mean()))
        assert r2_score(tt, reg.predict(Zt)) >= r2_score(tt, uniform.predict(Zt)) - tol - 1e-9
    assert np.all(np.diff(gaps) < 0)


def test_robust_radius_lowers_accuracy(biased):
    radii = (0.0, 0.1, 0.2, 0.5, 1.0)
    _, acc, _ = _sweep(
        biased,
        lambda v: FairRobustClassifier(radius=v, batch_size=64, max_epochs=5, random_state=0),
        radii,
    )
    # the radius is not a fairness knob on this data (see the user guide): accuracy falls
    assert np.all(np.diff(acc) <= 0.005) and acc[-1] < acc[0] - 0.2
