"""FairRobustClassifier (Fast & Fair): the trust-region solver against closed forms and
brute force, the inner solvers against each other, the estimator contract, the
history's fairness gaps, and the Unfair2D generator."""

import copy
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.preprocessing import StandardScaler

from skfairbilevel import FairRobustClassifier
from skfairbilevel.datasets import make_unfair_2d
from skfairbilevel.metrics import independence_gap, predictive_parity_gap, separation_gap
from skfairbilevel.nn.perturbation import loss_input_derivatives
from skfairbilevel.nn.trust_region import trust_region_step

RADII = [0.05, 0.1, 0.25, 0.5, 1.0]


def _t(a):
    return torch.as_tensor(np.asarray(a), dtype=torch.float64)


@pytest.fixture(scope="module")
def affine_fit():
    """An affine model fitted briefly on random data with both labels."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    y = (X[:, 0] - 0.5 * X[:, 1] + 0.5 * rng.normal(size=120) > 0).astype(int)
    clf = FairRobustClassifier(radius=0.1, batch_size=32, max_epochs=3, random_state=0)
    return clf.fit(X, y), X, y


def _closed_form(clf, X, y, r):
    """delta* = -r (2y - 1) w / ||w|| and loss* = softplus(-(2y - 1) z + r ||w||)."""
    lin = clf.module_[-1]
    w = lin.weight.detach().double().numpy()[0]
    b = float(lin.bias.detach().double()[0])
    z = X.astype(np.float32).astype(np.float64) @ w + b
    sgn = 2.0 * y - 1.0
    delta = -r * sgn[:, None] * w / np.linalg.norm(w)
    loss = np.logaddexp(0.0, -sgn * z + r * np.linalg.norm(w))
    return delta, loss


# ---------------------------------------------------------------------- affine: trs == exact
@pytest.mark.parametrize("r", RADII)
def test_trs_matches_exact_affine(affine_fit, r):
    clf, X, y = affine_fit
    clf = clf.set_params(radius=r)
    assert set(np.unique(y)) == {0, 1}
    delta_star, loss_star = _closed_form(clf, X, y, r)
    x = torch.as_tensor(X, dtype=torch.float32)
    yt = torch.as_tensor(y)
    # 1. the general solver, one eigen-decomposition per sample, on the Hessians
    #    computed by torch.func and in closed form: the closed-form maximiser
    for autodiff in (True, False):
        _, g, H = loss_input_derivatives(clf.module_, x, yt, affine=True, autodiff=autodiff)
        p, _ = trust_region_step(-g, -H, r)
        assert np.abs(p.numpy() - delta_star).max() < 1e-5
    # 2. the estimator's public path, and the loss at the perturbed points
    for solver in ("trs", "exact"):
        np.testing.assert_allclose(clf.perturb(X, y, inner_solver=solver), delta_star, atol=1e-5)
        loss = clf.robust_loss(X, y, inner_solver=solver, per_sample=True)
        assert np.abs(loss - loss_star).max() < 1e-6


def test_trs_increases_loss_where_reference_interior_branch_fails():
    """With ||w|| = 10 and r = 0.5 the reference accepts the interior Newton step for
    every y = 1 sample with sigmoid(z) >= 0.2, which lowers the loss; ours raises it to
    the closed-form worst case."""
    clf = FairRobustClassifier(radius=0.5, max_epochs=1, random_state=0)
    X = np.array([[0.0, 0.0], [0.05, 0.0], [0.1, 0.02], [-0.05, 0.01]])
    y = np.array([1, 1, 1, 0])
    clf.fit(X, y)
    with torch.no_grad():
        clf.module_[-1].weight.copy_(torch.tensor([[6.0, 8.0]]))
        clf.module_[-1].bias.zero_()
    clean = clf.robust_loss(X, y, inner_solver="none", per_sample=True)
    robust = clf.robust_loss(X, y, per_sample=True)
    _, loss_star = _closed_form(clf, X, y, 0.5)
    z = X @ np.array([6.0, 8.0])
    s = 1 / (1 + np.exp(-z))
    assert np.all(1 / (s[:3] * 10) <= 0.5)  # the reference's interior branch
    np.testing.assert_allclose(robust, loss_star, rtol=1e-6)
    assert np.all(robust > clean + 1.0)


# ---------------------------------------------------------------------- other inner solvers
def test_inner_solvers_feasible_and_ordered(affine_fit):
    clf, X, y = affine_fit
    r = 0.3
    clf = clf.set_params(radius=r)
    clean = clf.robust_loss(X, y, inner_solver="none", per_sample=True)
    exact = clf.robust_loss(X, y, inner_solver="exact", per_sample=True)
    for solver in ("trs", "pgd", "random", "exact"):
        delta = clf.perturb(X, y, inner_solver=solver, random_state=0)
        assert np.all(np.linalg.norm(delta, axis=1) <= r * (1 + 1e-6))
        loss = clf.robust_loss(X, y, inner_solver=solver, per_sample=True, random_state=0)
        assert np.all(loss <= exact + 1e-6)  # nothing beats the exact maximiser
        if solver == "random":
            np.testing.assert_allclose(np.linalg.norm(delta, axis=1), r, rtol=1e-6)
        else:
            assert np.all(loss > clean)
    assert np.all(clf.perturb(X, y, inner_solver="none") == 0)
    # pgd converges close to the maximiser on the affine model
    pgd = clf.robust_loss(X, y, inner_solver="pgd")
    assert pgd > exact.mean() - 1e-2


def test_mlp_trs_loss_at_least_pgd_loss():
    """The issue's criterion: on an MLP the TRS perturbation's loss is >= the PGD
    perturbation's loss in >= 95% of samples (up to float32 rounding of the inputs,
    a relative 1e-6)."""
    X, y = make_classification(64, 4, n_informative=3, n_redundant=0, random_state=0)
    X = StandardScaler().fit_transform(X)
    clf = FairRobustClassifier(
        radius=0.3, hidden_layer_sizes=(8,), batch_size=32, max_epochs=10, random_state=0
    ).fit(X, y)
    pgd = clf.robust_loss(X, y, inner_solver="pgd", per_sample=True)
    trs = clf.robust_loss(X, y, inner_solver="trs", per_sample=True)
    assert np.mean(trs >= pgd * (1 - 1e-6)) >= 0.95
    assert trs.mean() >= pgd.mean()


# ---------------------------------------------------------------------- affine outer step
@pytest.mark.parametrize("solver", ["trs", "exact", "none"])
def test_affine_outer_step_is_adam_on_the_robust_loss(solver):
    """One full-batch epoch of the closed-form outer step equals one torch.optim.Adam
    step on the autograd loss at the closed-form worst-case inputs (up to float32
    rounding), with sample weights and weight decay; afterwards the layer's weight and
    bias own separate storage again."""
    X, y, s = make_unfair_2d(40, random_state=4)
    sw = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    kw = dict(
        radius=0.15,
        inner_solver=solver,
        batch_size=80,
        max_epochs=1,
        lr=0.05,
        weight_decay=1e-3,
        warm_start=True,
        random_state=0,
    )
    est = FairRobustClassifier(**kw).fit(X, y, sensitive_features=s, sample_weight=sw)
    lin = copy.deepcopy(est.module_[-1])
    est.fit(X, y, sensitive_features=s, sample_weight=sw)  # one more step, fresh Adam
    x = torch.as_tensor(X, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.float32)
    w = torch.as_tensor(sw / sw.mean(), dtype=torch.float32)
    if solver != "none":
        unit = lin.weight[0].detach() / lin.weight[0].detach().norm()
        x = x + (0.15 * (1 - 2 * yt))[:, None] * unit
    opt = torch.optim.Adam(lin.parameters(), lr=0.05, weight_decay=1e-3)
    per_row = torch.nn.functional.binary_cross_entropy_with_logits(
        lin(x)[:, 0], yt, reduction="none"
    )
    ((w * per_row).sum() / w.sum()).backward()
    opt.step()
    got = est.module_[-1]
    np.testing.assert_allclose(got.weight.detach().numpy(), lin.weight.detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(got.bias.detach().numpy(), lin.bias.detach().numpy(), atol=1e-6)
    assert got.weight.untyped_storage().data_ptr() != got.bias.untyped_storage().data_ptr()
    assert got.weight.requires_grad and got.bias.requires_grad


# ---------------------------------------------------------------------- estimator
def test_radius_zero_is_plain_training():
    X, y, s = make_unfair_2d(60, random_state=1)
    kw = dict(batch_size=20, max_epochs=5, random_state=3)
    a = FairRobustClassifier(radius=0.0, **kw).fit(X, y).predict_proba(X)
    b = FairRobustClassifier(radius=0.2, inner_solver="none", **kw).fit(X, y).predict_proba(X)
    c = FairRobustClassifier(radius=0.2, **kw).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(
    "params", [dict(), dict(inner_solver="random"), dict(hidden_layer_sizes=(4,), trs_steps=2)]
)
def test_reproducible_and_seed_dependent(params):
    X, y, s = make_unfair_2d(50, random_state=2)
    kw = dict(radius=0.15, batch_size=25, max_epochs=3, **params)
    p1 = FairRobustClassifier(random_state=0, **kw).fit(X, y).predict_proba(X)
    p2 = FairRobustClassifier(random_state=0, **kw).fit(X, y).predict_proba(X)
    p3 = FairRobustClassifier(random_state=1, **kw).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(p1, p2)
    assert not np.array_equal(p1, p3)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(radius=-0.1), "'radius'.*>= 0"),
        (dict(radius=float("nan")), "'radius'"),
        (dict(radius=float("inf")), "'radius'"),
        (dict(inner_solver="newton"), "'inner_solver'"),
        (dict(trs_steps=0), "'trs_steps'"),
        (dict(activation="relu", hidden_layer_sizes=(4,)), "twice-differentiable"),
        (dict(inner_solver="exact", hidden_layer_sizes=(4,)), "hidden_layer_sizes=\\(\\)"),
        (dict(lr=0.0), "'lr'"),
    ],
)
def test_bad_parameters(params, match):
    X, y, _ = make_unfair_2d(10, random_state=0)
    with pytest.raises(ValueError, match=match):
        FairRobustClassifier(**params).fit(X, y)


def test_binary_only_and_bad_perturb_input(affine_fit):
    X, y, _ = make_unfair_2d(10, random_state=0)
    with pytest.raises(ValueError, match="Only binary classification"):
        FairRobustClassifier().fit(X, np.arange(20) % 3)
    clf, X, y = affine_fit
    with pytest.raises(ValueError, match="not seen in fit"):
        clf.perturb(X, np.full(len(X), 7))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        clf.perturb(X, y[:-1])
    with pytest.raises(ValueError, match="inner_solver"):
        clf.perturb(X, y, inner_solver="bogus")


def test_no_sensitive_features_no_warning_no_gaps():
    X, y, _ = make_unfair_2d(40, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf = FairRobustClassifier(batch_size=20, max_epochs=2, random_state=0).fit(X, y)
    assert clf.fairness_aware_ is False
    assert set(clf.history_[-1]) == {"epoch", "loss", "inner_iter", "seconds"}


def test_history_gaps_match_metrics():
    X, y, s = make_unfair_2d(100, alpha=0.15, random_state=0)
    # a seed whose model predicts both labels in both groups (every gap is defined)
    clf = FairRobustClassifier(radius=0.15, batch_size=10, max_epochs=10, random_state=4)
    clf.fit(X, y, sensitive_features=s)
    assert clf.fairness_aware_ is False  # the groups are only logged
    last = clf.history_[-1]
    pred = clf.predict(X)
    expected = {
        "independence": independence_gap(y, pred, sensitive_features=s),
        "separation_y0": separation_gap(y, pred, sensitive_features=s, k=0),
        "separation_y1": separation_gap(y, pred, sensitive_features=s, k=1),
        "sufficiency_yhat1": predictive_parity_gap(y, pred, sensitive_features=s, k=1),
        "sufficiency_yhat0": predictive_parity_gap(y, pred, sensitive_features=s, k=0),
    }
    assert last["train_accuracy"] == pytest.approx(np.mean(pred == y))
    for key, value in expected.items():
        assert last["train_" + key] == pytest.approx(value, abs=1e-12)
        assert last["train_abs_" + key] == pytest.approx(abs(value), abs=1e-12)
    # hand-computed on the data: group rates of predicted positives
    hand = pred[s == 1].mean() - pred[s == 0].mean()
    assert last["train_independence"] == pytest.approx(hand)
    # with early stopping the gaps are those of the validation rows
    es = FairRobustClassifier(
        radius=0.15,
        batch_size=20,
        max_epochs=3,
        early_stopping=True,
        validation_fraction=0.3,
        random_state=0,
    )
    es.fit(X, y, sensitive_features=s)
    assert {"val_loss", "val_independence", "val_abs_separation_y1"} <= set(es.history_[-1])


def test_sensitive_feature_ids_drop_column():
    X, y, s = make_unfair_2d(40, random_state=0)
    Xs = np.column_stack([X, s])
    clf = FairRobustClassifier(
        sensitive_feature_ids=[2], batch_size=20, max_epochs=2, random_state=0
    ).fit(Xs, y)
    assert "train_independence" in clf.history_[-1]
    assert clf.perturb(Xs, y).shape == (80, 2)


def test_unfair2d_robust_training_beats_plain_on_robust_loss():
    """Robust training lowers the worst-case (robust) loss compared with plain training,
    on the data it was trained on (the objective it minimises)."""
    X, y, s = make_unfair_2d(100, random_state=0)
    kw = dict(batch_size=10, max_epochs=15, random_state=0)
    plain = FairRobustClassifier(radius=0.0, **kw).fit(X, y)
    robust = FairRobustClassifier(radius=0.15, **kw).fit(X, y)
    plain.set_params(radius=0.15)
    assert robust.robust_loss(X, y) < plain.robust_loss(X, y)


# ---------------------------------------------------------------------- Unfair2D
def test_make_unfair_2d_geometry_and_counts():
    n, alpha = 200, 0.1
    X, y, s = make_unfair_2d(n, alpha=alpha, p1=0.3, p2=0.6, random_state=0)
    assert X.shape == (2 * n, 2) and y.shape == s.shape == (2 * n,)
    assert np.bincount(y).tolist() == [n, n]
    assert int(s[y == 0].sum()) == 60 and int(s[y == 1].sum()) == 120
    shift = np.zeros(2 * n)
    shift[(s == 0) & (y == 1)] = -alpha
    shift[(s == 1) & (y == 0)] = alpha
    orig = X - shift[:, None]  # undo the shift: the classes split at x1 + x2 = 1
    assert np.all((orig.sum(1) >= 1) == (y == 1))
    assert orig.min() >= 0 and orig.max() <= 1
    X2, y2, s2 = make_unfair_2d(n, alpha=alpha, p1=0.3, p2=0.6, random_state=0)
    np.testing.assert_array_equal(X, X2)
    assert not np.array_equal(X, make_unfair_2d(n, random_state=1)[0])
    # tiny n: still n points per class
    assert np.bincount(make_unfair_2d(1, random_state=5)[1]).tolist() == [1, 1]


@pytest.mark.parametrize(
    "kwargs, err",
    [
        (dict(n_per_class=0), ValueError),
        (dict(n_per_class=2.5), TypeError),
        (dict(p1=1.5), ValueError),
        (dict(p2=-0.1), ValueError),
        (dict(alpha=float("nan")), TypeError),
    ],
)
def test_make_unfair_2d_bad_input(kwargs, err):
    with pytest.raises(err, match=next(iter(kwargs))):
        make_unfair_2d(**kwargs)


def test_gap_metrics_with_one_group_present_are_nan():
    from skfairbilevel.nn.engine import TensorData

    X, y, s = make_unfair_2d(30, random_state=0)
    clf = FairRobustClassifier(batch_size=20, max_epochs=2, random_state=0)
    clf.fit(X, y, sensitive_features=s)
    data = TensorData(
        torch.as_tensor(X, dtype=torch.float32),
        torch.as_tensor(y, dtype=torch.long),
        torch.zeros(60, dtype=torch.long),
        n_groups=2,
    )
    out = clf._gap_metrics(data, "val_")
    assert out["val_accuracy"] == pytest.approx(np.mean(clf.predict(X) == y))
    assert np.isnan(out["val_independence"]) and np.isnan(out["val_abs_separation_y1"])
