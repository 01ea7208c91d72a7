"""FairMLPClassifier behaviour on real and synthetic data."""

import numpy as np
import pytest
from fairlearn.metrics import demographic_parity_difference
from sklearn.metrics import recall_score
from sklearn.model_selection import train_test_split

from skfairbilevel import FairMLPClassifier
from skfairbilevel.datasets import load_adult, make_preprocessor


@pytest.fixture(scope="module")
def adult_subset():
    bunch = load_adult(sensitive="sex")
    X, y = bunch.data, bunch.target.to_numpy()
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, train_size=6000, test_size=4000, stratify=y, random_state=0
    )
    pre = make_preprocessor(X_tr, sensitive="sex", keep_sensitive=True).fit(X_tr)
    return pre.transform(X_tr), y_tr, pre.transform(X_te), y_te


def test_penalty_lowers_demographic_parity_on_adult(adult_subset):
    X_tr, y_tr, X_te, y_te = adult_subset
    common = dict(
        hidden_layer_sizes=(32,),
        max_epochs=8,
        batch_size=128,
        lr=3e-3,
        sensitive_feature_ids="sex",
        random_state=0,
    )
    plain = FairMLPClassifier(**common).fit(X_tr, y_tr)
    fair = FairMLPClassifier(fairness="demographic_parity", fairness_weight=20.0, **common).fit(
        X_tr, y_tr
    )
    A_te = X_te["sex"]
    dp_plain = demographic_parity_difference(y_te, plain.predict(X_te), sensitive_features=A_te)
    dp_fair = demographic_parity_difference(y_te, fair.predict(X_te), sensitive_features=A_te)
    acc_plain, acc_fair = plain.score(X_te, y_te), fair.score(X_te, y_te)
    assert dp_plain > 0.12  # Adult's sex gap for an unconstrained model
    assert dp_fair < 0.5 * dp_plain  # the penalty at least halves it
    assert acc_plain > 0.82 and acc_fair > 0.78


def test_multiclass_with_penalty():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3)).astype(np.float32)
    y = np.digitize(X[:, 0] + 0.3 * rng.normal(size=300), [-0.5, 0.5])
    A = rng.integers(0, 3, 300)
    est = FairMLPClassifier(
        (8,), fairness="equalized_odds", max_epochs=30, lr=1e-2, random_state=0
    ).fit(X, y, sensitive_features=A)
    P = est.predict_proba(X)
    assert P.shape == (300, 3)
    np.testing.assert_allclose(P.sum(1), 1.0, rtol=1e-6)
    assert est.score(X, y) > 0.7


def test_balanced_class_weight_raises_minority_recall():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(1000, 2)).astype(np.float32)
    y = (X[:, 0] + 0.8 * rng.normal(size=1000) > 1.6).astype(int)  # ~10% positives
    common = dict(hidden_layer_sizes=(8,), max_epochs=20, lr=1e-2, random_state=0)
    plain = FairMLPClassifier(**common).fit(X, y)
    balanced = FairMLPClassifier(class_weight="balanced", **common).fit(X, y)
    assert recall_score(y, balanced.predict(X)) > recall_score(y, plain.predict(X)) + 0.2


def test_string_labels_round_trip():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 2)).astype(np.float32)
    y = np.where(X[:, 0] > 0, "yes", "no")
    est = FairMLPClassifier((4,), max_epochs=100, lr=3e-2, random_state=0).fit(X, y)
    assert set(est.predict(X)) <= {"yes", "no"}
    assert est.score(X, y) > 0.9
