"""Canonical training rows (skfairbilevel._rows): fingerprints, exact merging of
duplicates, an order that depends only on the rows, and the float32 model features."""

import numpy as np
import pytest
import scipy.sparse as sp

from skfairbilevel import _rows
from skfairbilevel._rows import canonical_index, model_features, row_fingerprints


def rows_with_duplicates(n=300, d=6, seed=0):
    rng = np.random.default_rng(seed)
    X = np.where(rng.random((n, d)) < 0.4, rng.integers(-2, 3, (n, d)), 0).astype(np.float32)
    y = rng.integers(0, 2, n)
    g = rng.integers(0, 3, n)
    return X, y, g


def merged(X, y, g, w):
    """The canonical rows as a list of (x, y, g, weight) tuples, in canonical order."""
    Xd = X.toarray() if sp.issparse(X) else X
    rows, weights = canonical_index(X, y, g, w)
    weights = np.ones(len(rows)) if weights is None else weights
    return [
        (tuple(Xd[i].tolist()), int(y[i]), int(g[i]), float(c))
        for i, c in zip(rows, weights, strict=True)
    ]


def by_hand(X, y, g, w):
    """Distinct (x, y, g) rows of positive weight with their summed weights."""
    w = np.ones(len(y)) if w is None else w
    out = {}
    for x, yy, gg, ww in zip(X.tolist(), y.tolist(), g.tolist(), w.tolist(), strict=True):
        if ww > 0:
            key = (tuple(x), yy, gg)
            out[key] = out.get(key, 0.0) + ww
    return out


@pytest.mark.parametrize("d", [1, 5, 6])  # odd widths take the blockwise path
def test_duplicates_merge_exactly_and_order_ignores_the_input_order(d):
    X, y, g = rows_with_duplicates(d=d)
    w = np.random.default_rng(1).choice([0.0, 0.5, 1.0, 2.0, 3.25], size=len(y))
    got = merged(X, y, g, w)
    assert {r[:3]: r[3] for r in got} == by_hand(X, y, g, w)
    assert len(got) < len(y)  # there were duplicates and zero weights
    perm = np.random.default_rng(2).permutation(len(y))
    assert merged(X[perm], y[perm], g[perm], w[perm]) == got  # same rows, same order
    # no weights: counts, the same order
    counts = merged(X, y, g, None)
    assert {r[:3]: r[3] for r in counts} == by_hand(X, y, g, None)


def test_no_duplicates_and_unit_weights_give_no_weights():
    X = np.arange(12, dtype=np.float32).reshape(6, 2)
    rows, weights = canonical_index(X, np.zeros(6, dtype=np.int64), np.zeros(6), None)
    assert weights is None and sorted(rows.tolist()) == list(range(6))


def test_target_and_group_are_part_of_the_row():
    X = np.ones((4, 3), dtype=np.float32)
    y = np.array([0, 0, 1, 1])
    g = np.array([0, 1, 0, 0])
    rows, weights = canonical_index(X, y, g, None)
    assert len(rows) == 3 and sorted(weights.tolist()) == [1.0, 1.0, 2.0]
    # float targets (regression): compared bit for bit
    yf = np.array([0.5, 0.5, 0.5 + 1e-12, 0.5])
    rows, weights = canonical_index(X, yf, np.zeros(4, dtype=np.int64), None)
    assert sorted(weights.tolist()) == [1.0, 3.0]


def test_merged_weights_do_not_depend_on_the_order_of_the_duplicates():
    """Non-integer weights of duplicates are summed in a fixed order: bit-identical
    weights whatever the input order."""
    X = np.zeros((5, 2), dtype=np.float32)
    y = np.zeros(5, dtype=np.int64)
    g = np.zeros(5, dtype=np.int64)
    w = np.array([0.1, 0.7, 1e-9, 0.2, 3.3])
    sums = {
        float(canonical_index(X, y, g, w[p])[1][0])
        for p in map(
            list, np.random.default_rng(0).permuted(np.tile(np.arange(5), (20, 1)), axis=1)
        )
    }
    assert len(sums) == 1


def test_fingerprint_collisions_never_merge_different_rows(monkeypatch):
    """With every fingerprint equal (the worst case) the exact comparison still merges
    only equal rows, and the order is still the same for any input order."""
    X, y, g = rows_with_duplicates(n=120, d=3, seed=3)
    expected = by_hand(X, y, g, None)
    monkeypatch.setattr(_rows, "row_fingerprints", lambda X, y, g: np.zeros(len(y), np.uint64))
    got = merged(X, y, g, None)
    assert {r[:3]: r[3] for r in got} == expected
    perm = np.random.default_rng(4).permutation(len(y))
    assert merged(X[perm], y[perm], g[perm], None) == got
    # a few distinct fingerprints, shared by different rows
    monkeypatch.setattr(
        _rows,
        "row_fingerprints",
        lambda X, y, g: (np.asarray(X.sum(1) if not sp.issparse(X) else X.sum(1).A1) > 0).astype(
            np.uint64
        ),
    )
    got = merged(X, y, g, None)
    assert {r[:3]: r[3] for r in got} == expected
    assert merged(X[perm], y[perm], g[perm], None) == got


def test_sparse_rows_fingerprint_and_merge_as_dense_rows():
    X, y, g = rows_with_duplicates(d=7)
    dense = row_fingerprints(X, y, g)
    for fmt in (sp.csr_matrix, sp.csc_matrix, sp.coo_array):
        Xs = model_features(fmt(X))
        assert Xs.format == "csr" and Xs.dtype == np.float32
        np.testing.assert_array_equal(row_fingerprints(Xs, y, g), dense)
        assert merged(Xs, y, g, None) == merged(X, y, g, None)
    # a stored -0.0 differs from 0.0 bit for bit, in both forms
    X[0] = 0.0
    X[0, 0] = -0.0
    Xs = sp.csr_matrix((np.array([-0.0], np.float32), [0], [0, 1]), shape=(1, 7))
    Xs = sp.vstack([Xs, sp.csr_matrix(X[1:])], format="csr")
    np.testing.assert_array_equal(
        row_fingerprints(model_features(Xs), y, g), row_fingerprints(X, y, g)
    )
    assert row_fingerprints(X, y, g)[0] != row_fingerprints(np.abs(X), y, g)[0]


def test_sparse_model_features_canonical_form_without_touching_the_input():
    data = np.array([1.0, 0.0, -0.0, 2.0, 3.0], dtype=np.float64)
    indices = np.array([2, 0, 1, 2, 0])  # row 0: a duplicate of column 2, unsorted
    indptr = np.array([0, 4, 5])
    X = sp.csr_matrix((data, indices, indptr), shape=(2, 3))
    before = (X.data.copy(), X.indices.copy(), X.indptr.copy())
    F = model_features(X)
    for a, b in zip(before, (X.data, X.indices, X.indptr), strict=True):
        np.testing.assert_array_equal(a, b)  # the user's matrix is unchanged
    assert F.dtype == np.float32 and F.has_canonical_format
    # +0.0 dropped, -0.0 kept (its bits differ), duplicates summed, indices sorted
    assert F.indices.tolist() == [1, 2, 0] and F.indptr.tolist() == [0, 2, 3]
    assert F.data.tolist() == [0.0, 3.0, 3.0] and np.signbit(F.data[0])
    np.testing.assert_array_equal(F.toarray(), X.toarray().astype(np.float32))
    # the sensitive columns dropped: the other columns only
    np.testing.assert_array_equal(model_features(X, [0, 2]).toarray(), F.toarray()[:, [0, 2]])


def test_dense_model_features_copy_only_where_needed():
    X = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    assert model_features(X) is X  # float32, C-contiguous, every column: no copy
    for other in (X.astype(np.float64), np.asfortranarray(X)):
        F = model_features(other)
        assert F.dtype == np.float32 and F.flags.c_contiguous
        np.testing.assert_array_equal(F, X)
    F = model_features(X, [3, 1])
    np.testing.assert_array_equal(F, X[:, [3, 1]])
    assert F.flags.c_contiguous and not np.shares_memory(F, X)


def test_float64_values_that_overflow_float32_are_refused():
    X = np.ones((3, 2))
    X[1, 1] = 1e39
    with pytest.raises(ValueError, match="too large for float32"):
        model_features(X)
    with pytest.raises(ValueError, match="too large for float32"):
        model_features(sp.csr_matrix(X))
    huge = np.full((4, 2), 3e38)  # finite in float32, although their sum is not
    np.testing.assert_array_equal(model_features(huge), huge.astype(np.float32))
