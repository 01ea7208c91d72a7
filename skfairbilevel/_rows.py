"""Training rows in canonical form: float32 model features, and duplicates merged.

:func:`model_features` turns validated X (dense, or scipy CSR/CSC) into the float32
values the model trains on, copying only when it must. :func:`canonical_index` drops
zero-weight rows, merges exact duplicates of (x, y, group) into one row carrying their
summed weight, and puts the rows in an order that depends only on their contents, so a
fit does not depend on the order of the input rows and an integer sample weight is
exactly a repeated row.

The canonical order is that of a 64-bit fingerprint of each row, computed over whole
rows at once (no loop over columns): the float32 bit patterns of a row, as integers,
dotted with fixed odd multipliers modulo 2**64 (the same for dense and sparse rows,
whose zeros contribute nothing), plus the target and the group, then mixed. Equal
fingerprints are only candidates: rows are merged after an exact comparison, and the
rare different rows that share a fingerprint are ordered by their contents, so a
collision can neither merge different rows nor make the order depend on the input.
"""

import numpy as np
import scipy.sparse as sp

__all__ = ["canonical_index", "model_features", "row_fingerprints"]

#: rows per block of the dense passes (about 1 MB of float32 at 256 columns)
_BLOCK_ROWS = 1024
#: stored entries per block of the sparse passes
_BLOCK_NNZ = 1 << 20

_SEED = 0x5EED_F1B3
_MASK64 = (1 << 64) - 1


def _multipliers(n_words):
    """Fixed odd 64-bit multipliers, one per pair of float32 columns."""
    rng = np.random.default_rng(_SEED)
    odd = rng.integers(0, 2**63, size=max(n_words, 1), dtype=np.uint64) * np.uint64(2)
    return odd + np.uint64(1)


def _column_multipliers(d):
    """The multiplier of each float32 column: columns ``2k`` and ``2k+1`` form one 64-bit
    word ``x_2k + 2**32 x_2k+1`` multiplied by ``A_k``, i.e. column ``2k`` by ``A_k`` and
    column ``2k+1`` by ``A_k * 2**32`` (mod 2**64)."""
    A = _multipliers((d + 1) // 2)
    M = np.empty(d, dtype=np.uint64)
    M[0::2] = A[: (d + 1) // 2]
    M[1::2] = A[: d // 2] << np.uint64(32)
    return M


def _fmix(h):
    """The 64-bit finaliser of MurmurHash3, in place: every output bit depends on every
    input bit (the canonical order uses the high bits)."""
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return h


def _dense_fingerprints(X):
    """``sum_j bits(x_ij) * M_j`` (mod 2**64) of every row of a C-contiguous float32 X."""
    n, d = X.shape
    if n == 0 or d == 0:
        return np.zeros(n, dtype=np.uint64)
    if d % 2 == 0:  # two float32 per uint64 word: one integer dot product per row
        return X.view(np.uint64) @ _multipliers(d // 2)
    M = _column_multipliers(d)
    bits = X.view(np.uint32)
    out = np.empty(n, dtype=np.uint64)
    for start in range(0, n, _BLOCK_ROWS * 8):
        stop = min(start + _BLOCK_ROWS * 8, n)
        np.dot(bits[start:stop].astype(np.uint64), M, out=out[start:stop])
    return out


def _sparse_fingerprints(X):
    """The same sums for a CSR float32 X (canonical format): over the stored entries."""
    n, d = X.shape
    M = _column_multipliers(max(d, 1))
    bits = X.data.view(np.uint32)
    out = np.zeros(n, dtype=np.uint64)
    indptr = X.indptr
    start = 0
    while start < n:
        # a block of rows holding about _BLOCK_NNZ entries
        stop = int(np.searchsorted(indptr, indptr[start] + _BLOCK_NNZ, side="right")) - 1
        stop = min(max(stop, start + 1), n)
        lo, hi = int(indptr[start]), int(indptr[stop])
        terms = bits[lo:hi].astype(np.uint64)
        terms *= M[X.indices[lo:hi]]
        sums = np.zeros(hi - lo + 1, dtype=np.uint64)
        np.cumsum(terms, out=sums[1:])
        ends = indptr[start + 1 : stop + 1] - lo
        begins = indptr[start:stop] - lo
        out[start:stop] = sums[ends] - sums[begins]
        start = stop
    return out


def row_fingerprints(X, y, g):
    """64-bit fingerprints of the rows of (X, y, g): equal rows get equal fingerprints.

    ``X`` is a C-contiguous float32 array or a CSR float32 matrix in canonical format
    (the same rows give the same fingerprints in both forms); ``y`` holds int64 labels
    or float64 targets; ``g`` int64 group ids.
    """
    h = _sparse_fingerprints(X) if sp.issparse(X) else _dense_fingerprints(X)
    y = np.ascontiguousarray(y)
    y_bits = y.view(np.uint64) if y.dtype.itemsize == 8 else y.astype(np.int64).view(np.uint64)
    h += y_bits * np.uint64(0x9E3779B97F4A7C15)
    h += np.ascontiguousarray(g, dtype=np.int64).view(np.uint64) * np.uint64(0xD6E8FEB86659FD93)
    return _fmix(h)


# ----------------------------------------------------------------------------- equality
def _same_rows(X, y, g, a, b):
    """Whether rows ``a[k]`` and ``b[k]`` of (X, y, g) are equal, bit for bit."""
    same = (g[a] == g[b]) & (_bits(y)[a] == _bits(y)[b])
    if sp.issparse(X):
        return same & _same_sparse_rows(X, a, b)
    bits = X.view(np.uint32)
    step = max(1, (1 << 22) // max(X.shape[1], 1))  # pairs per block: bounded memory
    for start in range(0, len(a), step):
        sl = slice(start, start + step)
        same[sl] &= (bits[a[sl]] == bits[b[sl]]).all(axis=1)
    return same


def _bits(y):
    y = np.ascontiguousarray(y)
    return y.view(np.uint64) if y.dtype.itemsize == 8 else y


def _same_sparse_rows(X, a, b):
    indptr, bits = X.indptr, X.data.view(np.uint32)
    counts = indptr[a + 1] - indptr[a]
    same = counts == (indptr[b + 1] - indptr[b])
    todo = np.flatnonzero(same & (counts > 0))
    start = 0
    while start < len(todo):  # blocks of about _BLOCK_NNZ entries
        total = np.cumsum(counts[todo[start:]])
        stop = start + max(1, int(np.searchsorted(total, _BLOCK_NNZ, side="right")))
        pairs = todo[start:stop]
        c = counts[pairs]
        owner = np.repeat(np.arange(len(pairs)), c)
        offset = np.arange(int(c.sum())) - np.repeat(np.cumsum(c) - c, c)
        ia = np.repeat(indptr[a[pairs]], c) + offset
        ib = np.repeat(indptr[b[pairs]], c) + offset
        differ = (X.indices[ia] != X.indices[ib]) | (bits[ia] != bits[ib])
        same[pairs[np.bincount(owner[differ], minlength=len(pairs)) > 0]] = False
        start = stop
    return same


def _content_order(X, y, g, rows):
    """``rows`` sorted by their contents (group, target, then the feature bits):
    a deterministic order for rows that share a fingerprint."""
    feats = X[rows].toarray() if sp.issparse(X) else X[rows]
    bits = np.ascontiguousarray(feats, dtype=np.float32).view(np.uint32)
    keys = [bits[:, j] for j in range(bits.shape[1])]
    keys = keys[::-1] + [_bits(y)[rows], g[rows]]  # np.lexsort: last key is primary
    return rows[np.lexsort(keys)]


# ----------------------------------------------------------------------------- canonical
def canonical_index(X, y, g, w):
    """Canonical training rows without copying X.

    Rows with zero weight are dropped; exact duplicates of (x, y, g) are merged into one
    row carrying the sum of their weights (row counts when ``w`` is None); rows are put
    in a canonical order (by a fingerprint of their contents, ties by the contents), so
    the result does not depend on the order of the input rows.

    Parameters
    ----------
    X : ndarray of float32 (C-contiguous) or CSR matrix of float32 (canonical format)
        The model features (as from :func:`model_features`).
    y : ndarray of shape (n,)
        Encoded targets (int64 labels or float64 values).
    g : ndarray of int64, shape (n,)
        Group ids.
    w : ndarray of float64 or None
        Sample weights (None: every row weighs 1).

    Returns
    -------
    rows : ndarray of int64
        Indices into X of the kept rows, in canonical order.
    weights : ndarray of float64 or None
        The merged weight of each kept row; None when every weight is 1.
    """
    g = np.ascontiguousarray(g, dtype=np.int64)
    h = row_fingerprints(X, y, g)
    keep = None if w is None or np.all(w > 0) else np.flatnonzero(w > 0)
    if keep is not None:
        h = h[keep]
    m = len(h)
    if m == 0:
        return np.zeros(0, dtype=np.int64), (None if w is None else np.zeros(0))
    # one sort of uint64 keys: the fingerprint's high bits and the position in the low bits
    shift = max(1, int(m - 1).bit_length())
    low = np.uint64((1 << shift) - 1)
    key = h & ~low
    key |= np.arange(m, dtype=np.uint64)
    key.sort()
    order = (key & low).astype(np.int64)
    key >>= np.uint64(shift)  # the fingerprint's high bits, in sorted order
    rows = order if keep is None else keep[order]
    candidate = np.flatnonzero(key[1:] == key[:-1]) + 1  # same high bits as the previous
    same = np.zeros(m, dtype=bool)
    if len(candidate):
        same[candidate] = _same_rows(X, y, g, rows[candidate], rows[candidate - 1])
        # a run of equal fingerprints holding different rows: order it by content
        settled = 0
        for pos in candidate[~same[candidate]]:
            if pos < settled:  # in a run already ordered
                continue
            lo = pos - 1
            while lo > 0 and key[lo - 1] == key[pos]:
                lo -= 1
            hi = pos + 1
            while hi < m and key[hi] == key[pos]:
                hi += 1
            rows[lo:hi] = _content_order(X, y, g, rows[lo:hi])
            settled = hi
            inner = np.arange(lo + 1, hi)
            same[inner] = _same_rows(X, y, g, rows[inner], rows[inner - 1])
    starts = np.flatnonzero(~same)
    kept = rows[starts]
    if w is None:
        counts = np.diff(np.append(starts, m))
        return kept, (None if len(kept) == m else counts.astype(np.float64))
    weights = w[rows]
    if len(kept) < m:  # sum each run's weights in a fixed order (the input's is arbitrary)
        run = np.cumsum(~same) - 1
        dup = np.flatnonzero(np.bincount(run)[run] > 1)
        weights[dup] = weights[dup[np.lexsort((weights[dup], run[dup]))]]
        weights = np.add.reduceat(weights, starts)
    return kept, weights


# ----------------------------------------------------------------------------- features
def model_features(X, columns=None):
    """The float32 values the model trains on, from validated X.

    Dense X becomes a C-contiguous float32 array: X itself when it already is one (and
    all its columns are used), otherwise one copy, made by blocks of rows (the columns
    ``columns`` only, when given). Sparse X becomes a CSR float32 matrix in canonical
    format without explicitly stored +0.0 (the same rows as dense X); its index arrays
    are shared with X where possible.

    Raises
    ------
    ValueError
        When a float64 value overflows float32 (it would train as infinity).
    """
    if sp.issparse(X):
        return _sparse_model_features(X, columns)
    if columns is None and X.dtype == np.float32 and X.flags.c_contiguous:
        return X
    n = X.shape[0]
    cols = None if columns is None else np.asarray(columns, dtype=np.intp)
    out = np.empty((n, X.shape[1] if cols is None else len(cols)), dtype=np.float32)
    step = _BLOCK_ROWS * 16
    with np.errstate(over="ignore"):  # float64 overflow: checked below
        for start in range(0, n, step):
            block = X[start : start + step]
            out[start : start + step] = block if cols is None else block[:, cols]
    if X.dtype != np.float32:
        _check_float32(out, X)
    return out


def _sparse_model_features(X, columns):
    X = X.tocsr() if X.format != "csr" else X
    if columns is not None:
        X = X[:, np.asarray(columns, dtype=np.intp)]
    if X.dtype != np.float32:  # new values, the index arrays shared (scipy's astype
        with np.errstate(over="ignore"):  # would copy them too)
            data = X.data.astype(np.float32)
        _check_float32(data, X.data)
        X32 = sp.csr_matrix((data, X.indices, X.indptr), shape=X.shape, copy=False)
        X32.has_canonical_format = X.has_canonical_format
    else:
        X32 = X
    if not X32.has_canonical_format:
        X32 = X32.copy()  # sum_duplicates sorts in place: never the caller's arrays
        X32.sum_duplicates()
    stored = X32.data.view(np.uint32) != 0  # a stored +0.0 is the same as no entry
    if not stored.all():  # (eliminate_zeros would drop -0.0 too)
        ends = np.concatenate([[0], np.cumsum(stored)])[X32.indptr]
        X32 = sp.csr_matrix(
            (X32.data[stored], X32.indices[stored], ends.astype(X32.indptr.dtype)),
            shape=X32.shape,
        )
        X32.has_canonical_format = True
    return X32


def _check_float32(values32, values):
    """Refuse finite values that became infinite in float32."""
    if np.isfinite(values32.sum(dtype=np.float64)) or not np.isinf(values32).any():
        return
    big = float(np.abs(np.asarray(values, dtype=np.float64)).max())
    raise ValueError(
        f"Input X contains a value too large for float32 (largest |x| = {big:.3g} > "
        f"{float(np.finfo(np.float32).max):.3g}), the precision the model computes in. "
        f"Rescale the features, e.g. with sklearn.preprocessing.StandardScaler."
    )
