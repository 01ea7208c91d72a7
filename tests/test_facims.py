"""FACIMSClassifier: the estimator contract, its options and the validation rows."""

import math

import numpy as np
import pytest
import torch

from skfairbilevel import FACIMSClassifier
from skfairbilevel.datasets import make_biased_classification
from skfairbilevel.nn.gaussian import gaussian_forward, sampled_forward

SMALL = dict(
    hidden_layer_sizes=(8,),
    max_epochs=4,
    n_mc=2,
    inner_steps=2,
    outer_steps=2,
    neumann_terms=3,
    lr_prior=0.05,
    random_state=0,
)


@pytest.fixture(scope="module")
def data3():
    X, y, A = make_biased_classification(240, 5, n_groups=3, random_state=0)
    return X, y, A


# ----------------------------------------------------------------------------- estimator
def test_binary_fit_predict_and_attributes(data3):
    X, y, A = data3
    clf = FACIMSClassifier(**SMALL).fit(X, y, sensitive_features=A)
    P = clf.predict_proba(X)
    assert P.shape == (len(X), 2)
    np.testing.assert_allclose(P.sum(1), 1.0, atol=1e-6)
    assert clf.n_groups_ == 3 and clf.fairness_aware_
    assert len(clf.history_) == clf.n_iter_ == 4
    assert {"lower", "val_loss", "divergence"} <= set(clf.history_[0])
    assert clf.n_train_rows_ + clf.n_validation_rows_ == len(
        np.unique(np.column_stack([X, y, np.asarray(A)]), axis=0)
    )
    # class weights: omega_c ~ N / n_c on the training split, unit L2 norm
    assert np.linalg.norm(clf.class_weight_) == pytest.approx(1.0)
    # the learned VS-loss parameters moved from their start (sigmoid(1), 0)
    assert not np.allclose(clf.loss_shift_, 0.0)
    assert clf.score(X, y) > 0.7


def test_multiclass_shapes_and_probabilities():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6)).astype(np.float32)
    y = np.digitize(X[:, 0] + 0.5 * X[:, 1], [-1.0, 0.0, 1.0])  # 4 ordered classes
    labels = np.array(["a", "b", "c", "d"])[y]
    A = rng.integers(0, 3, 300)
    clf = FACIMSClassifier(**SMALL).fit(X, labels, sensitive_features=A)
    P = clf.predict_proba(X)
    assert P.shape == (300, 4)
    assert np.all(P >= 0)
    np.testing.assert_allclose(P.sum(1), 1.0, atol=1e-6)
    assert set(clf.predict(X)) <= set(clf.classes_)
    assert list(clf.classes_) == ["a", "b", "c", "d"]
    assert clf.class_weight_.shape == (4,) and clf.loss_scale_.shape == (4,)


def test_reproducible_and_seed_dependent(data3):
    X, y, A = data3
    p1 = FACIMSClassifier(**SMALL).fit(X, y, sensitive_features=A).predict_proba(X)
    p2 = FACIMSClassifier(**SMALL).fit(X, y, sensitive_features=A).predict_proba(X)
    p3 = (
        FACIMSClassifier(**{**SMALL, "random_state": 1})
        .fit(X, y, sensitive_features=A)
        .predict_proba(X)
    )
    assert np.array_equal(p1, p2)
    assert not np.allclose(p1, p3)


def test_mc_averaging_reduces_prediction_variance(data3):
    """Averaging S weight samples divides the variance of the prediction by S."""
    X, y, A = data3
    clf = FACIMSClassifier(**{**SMALL, "eps_std": 0.3}).fit(X, y, sensitive_features=A)
    net = clf.module_
    params = [p.detach() for p in net.prior.parameter_list()]
    x = torch.as_tensor(X[:20], dtype=torch.float32)
    gen = torch.Generator().manual_seed(0)
    S, R = 16, 300
    zetas = [torch.randn((R * S,) + tuple(z.shape[1:]), generator=gen) for z in net.zetas()]
    probs = torch.softmax(
        sampled_forward(x, params, zetas, act=net.prior.act, eps_std=0.3), dim=-1
    )[..., 1]  # (R*S, 20)
    single = probs[:R].var(0)  # one sample per prediction
    averaged = probs.reshape(R, S, -1).mean(1).var(0)  # mean of S samples
    ratio = float(averaged.mean() / single.mean())
    assert 0.6 / S < ratio < 1.6 / S
    assert float(single.mean()) > 1e-4  # the noise is not negligible


def _assert_predicts_with_the_mean_network(clf, X):
    x = torch.as_tensor(X, dtype=torch.float32)
    with torch.no_grad():
        logits = gaussian_forward(
            x, clf.module_.prior.parameter_list(), act=clf.module_.prior.act, eps_std=0.0
        )[0]
    np.testing.assert_allclose(
        clf.predict_proba(X), torch.softmax(logits, 1).numpy(), rtol=1e-5, atol=1e-6
    )


def test_eps_std_predict_zero_is_the_mean_network(data3):
    X, y, A = data3
    clf = FACIMSClassifier(**{**SMALL, "eps_std_predict": 0.0}).fit(X, y, sensitive_features=A)
    _assert_predicts_with_the_mean_network(clf, X)


def test_no_weight_noise_trains_the_mean_networks(data3):
    """eps_std=0: the networks are deterministic, the log-variances get no gradient from
    the loss (only from the divergence), and the prediction is the mean network's."""
    X, y, A = data3
    clf = FACIMSClassifier(**{**SMALL, "eps_std": 0.0}).fit(X, y, sensitive_features=A)
    assert clf.eps_std_predict_ == 0.0 and clf.n_iter_ == SMALL["max_epochs"]
    _assert_predicts_with_the_mean_network(clf, X)
    again = FACIMSClassifier(**{**SMALL, "eps_std": 0.0}).fit(X, y, sensitive_features=A)
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))


def test_prediction_is_row_independent(data3):
    X, y, A = data3
    clf = FACIMSClassifier(**SMALL).fit(X, y, sensitive_features=A)
    full = clf.predict_proba(X)
    single = np.vstack([clf.predict_proba(X[i : i + 1]) for i in range(0, len(X), 37)])
    np.testing.assert_allclose(full[::37], single, rtol=1e-6, atol=1e-7)  # BLAS rounding


def test_output_sigmoid_compresses_probabilities(data3):
    X, y, A = data3
    clf = FACIMSClassifier(**{**SMALL, "output_sigmoid": True}).fit(X, y, sensitive_features=A)
    # softmax of two numbers in (0, 1): max probability < e / (1 + e)
    assert clf.predict_proba(X).max() < math.e / (1 + math.e)


def test_tiny_groups_work():
    """A group of 2 rows and one of 14 (like credit EDUCATION 0) next to large ones."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(216, 4)).astype(np.float32)
    y = (X[:, 0] > 0.3).astype(int)
    A = np.array([0] * 2 + [1] * 14 + [2] * 100 + [3] * 100)
    clf = FACIMSClassifier(**SMALL).fit(X, y, sensitive_features=A)
    assert clf.n_groups_ == 4
    assert np.all(np.isfinite(clf.predict_proba(X)))
    assert np.all(np.isfinite(clf.sam_rho_)) and clf.sam_rho_.shape == (4,)


def test_sam_rho_rules():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    A = np.array([0] * 50 + [1] * 150)
    base = {**SMALL, "max_epochs": 1, "validation_fraction": 0.2}
    c = FACIMSClassifier(**base, sam_rho="label_order").fit(X, y, sensitive_features=A)
    np.testing.assert_allclose(c.sam_rho_, [5e-5, 5e-4])
    c = FACIMSClassifier(**base).fit(X, y, sensitive_features=A)
    # inverse frequency: 0.05 * n_min / n_a, n_a = training rows of the group
    g = np.asarray(A)
    n0 = 50 - sum(round(0.2 * k) for k in np.bincount(y[g == 0]))
    n1 = 150 - sum(round(0.2 * k) for k in np.bincount(y[g == 1]))
    np.testing.assert_allclose(c.sam_rho_, [0.05, 0.05 * n0 / n1], rtol=1e-6)
    c = FACIMSClassifier(**base, sam_rho=[0.1, 0.2]).fit(X, y, sensitive_features=A)
    np.testing.assert_allclose(c.sam_rho_, [0.1, 0.2])
    with pytest.raises(ValueError, match="sam_rho has 3 radii but the data have 2 groups"):
        FACIMSClassifier(**base, sam_rho=[0.1, 0.2, 0.3]).fit(X, y, sensitive_features=A)
    assert FACIMSClassifier(**base, sam=False).fit(X, y, sensitive_features=A).sam_rho_ is None


def test_ablations_and_compat_switches(data3):
    X, y, A = data3
    fixed = FACIMSClassifier(**SMALL, learn_loss_params=False).fit(X, y, sensitive_features=A)
    np.testing.assert_allclose(fixed.loss_scale_, 1 / (1 + math.exp(-1)), rtol=1e-6)
    np.testing.assert_array_equal(fixed.loss_shift_, 0.0)
    for kw in [
        dict(sam=False),
        dict(stale_graph=True),
        dict(divergence="kl"),
        dict(upper_weighting="reference"),
        dict(upper_weighting="convex"),
        dict(validation_aggregation="per_group"),
        dict(groups_per_epoch=1),
        dict(val_batch_size=10),
        dict(prior_noise=0.0),
        dict(n_mc_hyper=2),
    ]:
        clf = FACIMSClassifier(**SMALL, **kw).fit(X, y, sensitive_features=A)
        assert np.all(np.isfinite(clf.predict_proba(X))), kw


def test_sample_weight_is_repetition(data3):
    X, y, A = data3
    w = np.tile([1, 2, 3], len(y) // 3)
    Xr, yr, Ar = np.repeat(X, w, 0), np.repeat(y, w), np.repeat(np.asarray(A), w)
    a = FACIMSClassifier(**SMALL).fit(X, y, sensitive_features=A, sample_weight=w)
    b = FACIMSClassifier(**SMALL).fit(Xr, yr, sensitive_features=Ar)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


@pytest.mark.parametrize(
    "param, value, match",
    [
        ("n_mc", 0, "'n_mc'"),
        ("n_mc_hyper", -1, "'n_mc_hyper'"),
        ("eps_std", -0.1, "'eps_std'"),
        ("eps_std_predict", -1.0, "'eps_std_predict'"),
        ("logvar_init", (0.0, -1.0), "'logvar_init'"),
        ("logvar_init", 0.1, "'logvar_init'"),
        ("divergence", "js", "'divergence'"),
        ("prior_noise", -1e-3, "'prior_noise'"),
        ("lambda_low", -0.5, "'lambda_low'"),
        ("lambda_up", -0.5, "'lambda_up'"),
        ("upper_weighting", "both", "'upper_weighting'"),
        ("inner_steps", 0, "'inner_steps'"),
        ("outer_steps", 0, "'outer_steps'"),
        ("group_batch_size", 0, "'group_batch_size'"),
        ("lr_post", 0.0, "'lr_post'"),
        ("lr_prior", -1.0, "'lr_prior'"),
        ("prior_lr_decay", 0.0, "'prior_lr_decay'"),
        ("prior_lr_decay", 1.5, "'prior_lr_decay'"),
        ("lr_hyper", 0.0, "'lr_hyper'"),
        ("sam", "yes", "'sam'"),
        ("sam_rho", -0.1, "'sam_rho'"),
        ("sam_rho", [0.1, -0.1, 0.2], "'sam_rho'"),
        ("sam_rho", "by_size", "'sam_rho'"),
        ("learn_loss_params", 1, "'learn_loss_params'"),
        ("neumann_terms", -1, "'neumann_terms'"),
        ("neumann_lr", 0.0, "'neumann_lr'"),
        ("validation_fraction", 1.0, "'validation_fraction'"),
        ("validation_aggregation", "mean", "'validation_aggregation'"),
        ("upper_class_weight", "balanced", "'upper_class_weight'"),
        ("val_batch_size", 0, "'val_batch_size'"),
        ("groups_per_epoch", 0, "'groups_per_epoch'"),
        ("stale_graph", None, "'stale_graph'"),
        ("output_sigmoid", "no", "'output_sigmoid'"),
        ("hidden_layer_sizes", (8, 0), "'hidden_layer_sizes'"),
    ],
)
def test_bad_parameters(data3, param, value, match):
    X, y, A = data3
    with pytest.raises(ValueError, match=match):
        FACIMSClassifier(**{**SMALL, param: value}).fit(X, y, sensitive_features=A)


def test_lambda_up_above_one_needs_paper_weighting(data3):
    X, y, A = data3
    with pytest.raises(ValueError, match="lambda_up=1.5 must be in \\[0, 1\\]"):
        FACIMSClassifier(**SMALL, lambda_up=1.5, upper_weighting="convex").fit(
            X, y, sensitive_features=A
        )
    FACIMSClassifier(**{**SMALL, "max_epochs": 1}, lambda_up=1.5).fit(X, y, sensitive_features=A)


# ----------------------------------------------------------------------------- X_val
FACIMS_SMALL = {**SMALL, "max_epochs": 3}


def test_facims_uses_the_given_validation_rows():
    X, y, A = make_biased_classification(300, 4, n_groups=3, random_state=0)
    Xv, yv, Av = make_biased_classification(120, 4, n_groups=3, random_state=1)
    # a duplicated validation row is merged into one row of weight 2
    Xv2, yv2, Av2 = np.vstack([Xv, Xv[:1]]), np.append(yv, yv[0]), np.append(Av, Av[0])
    kw = dict(sensitive_features=A, X_val=Xv2, y_val=yv2, sensitive_features_val=Av2)
    clf = FACIMSClassifier(**FACIMS_SMALL).fit(X, y, **kw)
    assert clf.n_validation_rows_ == len(Xv)
    assert clf.n_train_rows_ == len(np.unique(X, axis=0)) == len(X)
    again = FACIMSClassifier(**FACIMS_SMALL).fit(X, y, **kw)
    np.testing.assert_array_equal(clf.predict_proba(Xv), again.predict_proba(Xv))
    internal = FACIMSClassifier(**FACIMS_SMALL).fit(X, y, sensitive_features=A)
    assert internal.n_train_rows_ + internal.n_validation_rows_ == len(X)
    assert internal.n_validation_rows_ == pytest.approx(0.3 * len(X), abs=3)
    assert np.abs(internal.predict_proba(Xv) - clf.predict_proba(Xv)).max() > 1e-4
    # the upper level sees the validation rows: other rows, another model
    other = FACIMSClassifier(**FACIMS_SMALL).fit(
        X, y, sensitive_features=A, X_val=Xv[:60], y_val=yv[:60], sensitive_features_val=Av[:60]
    )
    assert other.n_validation_rows_ == 60
    assert np.abs(other.predict_proba(Xv) - clf.predict_proba(Xv)).max() > 1e-6
    # an integer validation weight is exactly a repeated validation row
    w = np.arange(len(yv)) % 3 + 1
    rep = np.repeat(np.arange(len(yv)), w)
    weighted = FACIMSClassifier(**FACIMS_SMALL).fit(
        X,
        y,
        sensitive_features=A,
        X_val=Xv,
        y_val=yv,
        sensitive_features_val=Av,
        sample_weight_val=w,
    )
    repeated = FACIMSClassifier(**FACIMS_SMALL).fit(
        X, y, sensitive_features=A, X_val=Xv[rep], y_val=yv[rep], sensitive_features_val=Av[rep]
    )
    np.testing.assert_array_equal(weighted.predict_proba(Xv), repeated.predict_proba(Xv))
    assert np.abs(weighted.predict_proba(Xv) - clf.predict_proba(Xv)).max() > 1e-6


def test_facims_X_val_errors():
    X, y, A = make_biased_classification(100, 4, n_groups=3, random_state=0)
    Xv, yv, Av = make_biased_classification(50, 4, n_groups=3, random_state=1)
    with pytest.raises(ValueError, match="without sensitive_features_val"):
        FACIMSClassifier(**FACIMS_SMALL).fit(X, y, sensitive_features=A, X_val=Xv, y_val=yv)
    with pytest.raises(ValueError, match=r"group\(s\) \[7\] not seen"):
        FACIMSClassifier(**FACIMS_SMALL).fit(
            X,
            y,
            sensitive_features=A,
            X_val=Xv,
            y_val=yv,
            sensitive_features_val=np.where(Av == Av[0], 7, Av),
        )


def test_upper_class_weight_from_the_validation_counts():
    X, y, A = make_biased_classification(200, 4, n_groups=3, random_state=0)
    Xv, yv, Av = make_biased_classification(90, 4, n_groups=3, random_state=1)
    keep = (yv == 1) | (np.arange(len(yv)) % 3 == 0)  # validation class ratio != training
    Xv, yv, Av = Xv[keep], yv[keep], Av[keep]
    kw = dict(sensitive_features=A, X_val=Xv, y_val=yv, sensitive_features_val=Av)
    own = FACIMSClassifier(**FACIMS_SMALL, upper_class_weight="validation").fit(X, y, **kw)
    train = FACIMSClassifier(**FACIMS_SMALL).fit(X, y, **kw)

    def balanced(labels):  # omega_c ~ N / n_c, unit L2 norm
        n = np.bincount(labels, minlength=2).astype(float)
        w = n.sum() / n
        return w / np.linalg.norm(w)

    np.testing.assert_allclose(own.upper_class_weight_, balanced(yv), rtol=1e-6)
    np.testing.assert_allclose(own.class_weight_, balanced(y), rtol=1e-6)
    np.testing.assert_array_equal(train.upper_class_weight_, train.class_weight_)
    assert np.abs(own.predict_proba(Xv) - train.predict_proba(Xv)).max() > 1e-6
