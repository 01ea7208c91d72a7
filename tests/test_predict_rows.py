"""Predictions of a row depend on that row only, for every estimator at its defaults.

Every output (``predict``, ``predict_proba``, ``decision_function``,
``predict_log_proba``) of a row is the same whether the row is predicted with all the
others, in a shuffled copy, alone or in a random subset, for float32 and float64 input,
with one or two torch threads, and for sparse input; labels are identical and scores
agree within scikit-learn's check tolerance (relative 1e-7, absolute 1e-9).
"""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from scipy import sparse

from skfairbilevel import all_estimators
from skfairbilevel.datasets import make_biased_classification

from ._fast import fast_instance

METHODS = ("predict", "predict_proba", "decision_function", "predict_log_proba")


def _data(regressor, n=80, d=5, seed=0):
    X, y, A = make_biased_classification(n, d, random_state=seed)
    if regressor:
        y = X[:, 0] + 0.5 * y + np.random.default_rng(seed).normal(0, 0.1, n)
    return X, y, A


def _outputs(est, X):
    return {m: getattr(est, m)(X) for m in METHODS if hasattr(est, m)}


def _assert_same_rows(got, want, rows, context):
    for method, values in got.items():
        expected = want[method][rows]
        msg = f"{context}: {method}"
        if method == "predict":
            assert_array_equal(values, expected, err_msg=msg)
        else:
            assert_allclose(values, expected, rtol=1e-7, atol=1e-9, err_msg=msg)


def _check_row_independence(est, X, seed=0):
    """Whole set, shuffled copy, single rows, a random subset and slices; both dtypes."""
    rng = np.random.default_rng(seed)
    n = X.shape[0]
    for dtype in (np.float32, np.float64):
        Z = X.astype(dtype)
        whole = _outputs(est, Z)
        perm = rng.permutation(n)
        _assert_same_rows(_outputs(est, Z[perm]), whole, perm, f"{dtype.__name__} shuffled")
        subset = np.sort(rng.choice(n, size=n // 3, replace=False))
        _assert_same_rows(_outputs(est, Z[subset]), whole, subset, f"{dtype.__name__} subset")
        # a view that starts one row in: its rows lie off the 16-byte boundaries of Z's
        for first in (1, 3):
            view = slice(first, None)
            _assert_same_rows(_outputs(est, Z[view]), whole, view, f"{dtype.__name__} view")
        for i in rng.choice(n, size=6, replace=False).tolist() + [n - 1]:
            _assert_same_rows(_outputs(est, Z[i : i + 1]), whole, [i], f"{dtype.__name__} row {i}")
    return whole


@pytest.mark.defaults
@pytest.mark.parametrize("name, cls", all_estimators(), ids=[n for n, _ in all_estimators()])
def test_predictions_depend_on_the_row_only_at_defaults(name, cls):
    regressor = name.endswith("Regressor")
    X, y, A = _data(regressor, n=40)
    est = cls(random_state=0).fit(X, y, sensitive_features=A)
    block = est._predict_block_rows()
    # more rows than one block: the last block overlaps the one before, and the rows of
    # the second block are computed by another thread when two are available
    X_test, _, _ = _data(regressor, n=block + 37, seed=1)
    torch.set_num_threads(2)
    try:
        two_threads = _check_row_independence(est, X_test)
    finally:
        torch.set_num_threads(1)
    one_thread = _outputs(est, X_test.astype(np.float64))
    _assert_same_rows(one_thread, two_threads, slice(None), "one thread vs two")
    # sparse input is densified a block at a time: the same numbers
    for fmt in (sparse.csr_matrix, sparse.csc_array, sparse.coo_matrix):
        _assert_same_rows(_outputs(est, fmt(X_test)), one_thread, slice(None), fmt.__name__)


@pytest.mark.parametrize("name, cls", all_estimators(), ids=[n for n, _ in all_estimators()])
def test_decision_function_and_log_proba(name, cls):
    if name.endswith("Regressor"):
        assert not hasattr(cls(), "decision_function")
        return
    for n_classes in (2, 3):
        X, y, A = _data(False, n=120, seed=n_classes)
        if n_classes == 3:
            if cls._binary_only:
                continue
            y = np.where(X[:, 1] > 0.5, 2, y)
        labels = np.array(["no", "yes", "maybe"])[y]
        est = fast_instance(name, cls).fit(X, labels, sensitive_features=A)
        proba, scores = est.predict_proba(X), est.decision_function(X)
        pred = est.predict(X)
        with np.errstate(divide="ignore"):
            assert_allclose(est.predict_log_proba(X), np.log(proba))
        if len(est.classes_) == 2:
            assert scores.shape == (len(X),)
            # the log-odds of classes_[1]: positive exactly where it is predicted, and
            # the probability is its logistic function (float32 rounding)
            assert_array_equal(est.classes_[(scores > 0).astype(int)], pred)
            assert_allclose(proba[:, 1], 1 / (1 + np.exp(-scores)), atol=1e-6)
        else:
            assert scores.shape == (len(X), 3)
            assert_array_equal(est.classes_[scores.argmax(1)], pred)
            # logits (or log-probabilities): their softmax is predict_proba
            soft = np.exp(scores - scores.max(1, keepdims=True))
            assert_allclose(proba, soft / soft.sum(1, keepdims=True), atol=1e-6)


def test_padding_rows_do_not_leak_into_outputs():
    # the zero rows that pad an X shorter than a block are computed but never returned
    from skfairbilevel import FairMLPClassifier

    X, y, A = _data(False, n=60)
    est = FairMLPClassifier(hidden_layer_sizes=(8,), max_epochs=5, random_state=0)
    est.fit(X, y, sensitive_features=A)
    calls = []
    forward = est._forward

    def spy(x):
        calls.append(tuple(x.shape))
        return forward(x)

    est._forward = spy
    scores = est.decision_function(X[:3])
    assert scores.shape == (3,)
    assert calls == [(est._predict_block_rows(), X.shape[1])]
    # the padding rows are zeros: the first output row of an all-zero block is the
    # network's output at 0, which the real rows do not change
    zero = est.decision_function(np.zeros((1, X.shape[1])))
    with torch.no_grad():
        direct = forward(torch.zeros(1, X.shape[1])).double().numpy().ravel()
    assert_allclose(zero, direct, rtol=1e-6)


def test_predict_restores_the_thread_count():
    from skfairbilevel import FairMLPClassifier

    X, y, A = _data(False, n=60)
    est = FairMLPClassifier(hidden_layer_sizes=(8,), max_epochs=2, random_state=0)
    est.fit(X, y, sensitive_features=A)
    X_big = np.repeat(X, 2 * est._predict_block_rows() // len(X) + 1, axis=0)
    for threads in (1, 2, 3):
        torch.set_num_threads(threads)
        try:
            est.predict(X_big)
            est.predict(X[:1])
            assert torch.get_num_threads() == threads
        finally:
            torch.set_num_threads(1)


def test_sparse_predict_densifies_one_block_at_a_time(monkeypatch):
    from skfairbilevel import FairMLPClassifier

    X, y, A = _data(False, n=60)
    est = FairMLPClassifier(hidden_layer_sizes=(8,), max_epochs=2, random_state=0)
    est.fit(X, y, sensitive_features=A)
    monkeypatch.setattr(type(est), "_predict_block_rows", lambda self: 16)
    X_sparse = sparse.random(200, X.shape[1], density=0.3, format="csr", random_state=0)
    densified = []
    toarray = sparse.csr_matrix.toarray

    def spy(self, *args, **kwargs):
        densified.append(self.shape)
        return toarray(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(sparse.csr_matrix, "toarray", spy)
        proba = est.predict_proba(X_sparse)
    # 200 rows: 12 blocks of 16, and a 13th ending at the last row (overlapping)
    assert densified == [(16, X.shape[1])] * 13
    assert_array_equal(proba, est.predict_proba(X_sparse.toarray()))


def test_sparse_predict_refuses_nan_and_overflow():
    from skfairbilevel import FairMLPClassifier

    X, y, A = _data(False, n=60)
    est = FairMLPClassifier(hidden_layer_sizes=(8,), max_epochs=2, random_state=0)
    est.fit(X, y, sensitive_features=A)
    bad = sparse.csr_matrix(X)
    bad.data[3] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        est.predict(bad)
    big = sparse.csr_matrix(X)
    big.data[3] = 1e39
    with pytest.raises(ValueError, match="too large for float32"):
        est.predict(big)
