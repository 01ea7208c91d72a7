"""Sensitive features: validation, column lookup and encoding to integer group ids.

Everything that turns a user's ``sensitive_features`` (or ``sensitive_feature_ids``) into
numbers goes through this module, so estimators, metrics and scorers agree on what a
group is:

* one column (list, 1-D array, Series, Categorical) -> its distinct values are the groups;
* several columns (DataFrame, 2-D array, list of columns) -> every combination of values
  that occurs is one group, labelled by the tuple of values (intersectional groups).

Group ids are ``0 .. n_groups - 1`` in sorted order of the labels.

pandas, polars and pyarrow inputs are read through :mod:`skfairbilevel._dataframe`. A
numeric column with more than 20 distinct values is encoded all the same, with a
:class:`~skfairbilevel.exceptions.ContinuousSensitiveFeatureWarning` suggesting to bin
it.
"""

import warnings
from numbers import Integral

import numpy as np
import pandas as pd

from . import _dataframe
from .exceptions import ContinuousSensitiveFeatureWarning

__all__ = [
    "encode_groups",
    "encode_known_groups",
    "check_sensitive_features",
    "get_sensitive_columns",
    "resolve_column_ids",
    "resolve_sensitive",
]


def _is_missing(values):
    """Boolean mask of missing entries (None, NaN, pd.NA, NaT) of a 1-D array: numeric
    and datetime arrays directly, anything else through pandas on an object array."""
    kind = getattr(values, "dtype", np.dtype(object)).kind
    if kind in "iub":  # integers and booleans cannot be missing
        return np.zeros(len(values), dtype=bool)
    if kind in "fc":
        return np.isnan(values)
    if kind in "mM":
        return np.isnat(values)
    return np.asarray(pd.isna(pd.Series(values, dtype=object)))


def check_sensitive_features(sensitive_features, n_samples=None, *, name="sensitive_features"):
    """Validate sensitive features and return them as a DataFrame of one or more columns.

    Parameters
    ----------
    sensitive_features : array-like of shape (n_samples,) or (n_samples, n_columns)
        List, numpy array, pandas Series/Categorical/DataFrame, of strings, integers,
        booleans or categoricals.
    n_samples : int, optional
        Expected number of rows; a mismatch raises a ValueError naming ``name``.
    name : str
        Argument name used in error messages.

    Returns
    -------
    frame : pandas.DataFrame
        One column per sensitive feature, with a default RangeIndex.
    """
    A = sensitive_features
    if A is None:
        raise ValueError(f"{name} is None; pass one value per row of X.")
    if isinstance(A, pd.DataFrame):
        frame = A.reset_index(drop=True)
    elif isinstance(A, pd.Series):
        frame = A.reset_index(drop=True).to_frame(name=A.name if A.name is not None else 0)
    elif isinstance(A, pd.Categorical):
        frame = pd.DataFrame({0: A})
    else:
        if hasattr(A, "toarray"):
            A = A.toarray()
        arr = np.asarray(A, dtype=object) if not isinstance(A, np.ndarray) else A
        if arr.ndim == 0:
            raise ValueError(
                f"{name} must be one value per row of X (a 1-D array-like) or a 2-D "
                f"array-like of several columns; got a scalar {A!r}."
            )
        if arr.ndim == 1:
            frame = pd.DataFrame({0: arr})
        elif arr.ndim == 2:
            frame = pd.DataFrame(arr)
        else:
            raise ValueError(f"{name} must be 1-D or 2-D; got an array of shape {arr.shape}.")
    if frame.shape[1] == 0:
        raise ValueError(f"{name} has no columns; pass at least one sensitive feature.")
    if n_samples is not None and frame.shape[0] != n_samples:
        raise ValueError(
            f"{name} has {frame.shape[0]} rows but X has {n_samples}; pass one "
            f"sensitive-feature value per row of X (e.g. slice it the same way as X)."
        )
    for col in frame.columns:
        missing = _is_missing(frame[col].to_numpy())
        if missing.any():
            first = int(np.flatnonzero(missing)[0])
            raise ValueError(
                f"{name} has {int(missing.sum())} missing value(s) (first at row {first}"
                f"{'' if frame.shape[1] == 1 else f', column {col!r}'}); every row needs a "
                f"group. Fill them with an explicit category such as 'unknown' or drop "
                f"those rows."
            )
    return frame


def _column_labels(col):
    """Sorted distinct values of one column and the codes of each row."""
    values = col.to_numpy()
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes, uniques = pd.factorize(col, sort=True)
        return codes, np.asarray(uniques, dtype=object)
    try:
        codes, uniques = pd.factorize(values, sort=True)
    except TypeError:  # mixed, unorderable types: order by their string form
        as_str = np.array([f"{type(v).__name__}:{v}" for v in values], dtype=object)
        _, first = np.unique(as_str, return_index=True)
        order = np.argsort(as_str[first], kind="stable")
        uniques = values[first][order]
        lookup = {s: i for i, s in enumerate(as_str[first][order])}
        codes = np.array([lookup[s] for s in as_str], dtype=np.int64)
    return np.asarray(codes, dtype=np.int64), np.asarray(uniques, dtype=object)


#: A numeric sensitive column with more distinct values than this looks continuous.
_CONTINUOUS_MAX_GROUPS = 20


def _is_numeric_column(col):
    """Numbers (not bool, not category), whatever the dtype holding them (object too)."""
    dtype = col.dtype
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(dtype):
        return False
    if pd.api.types.is_numeric_dtype(dtype):
        return True
    if pd.api.types.is_object_dtype(dtype):
        kind = pd.api.types.infer_dtype(col, skipna=True)
        return kind in ("integer", "floating", "mixed-integer-float", "decimal")
    return False


def _continuous_columns(frame):
    """``[(column, n_distinct), ...]``: the numeric columns of ``frame`` (a DataFrame as
    returned by :func:`check_sensitive_features`) with more than 20 distinct values."""
    out = []
    for col in frame.columns:
        if _is_numeric_column(frame[col]):
            n_distinct = frame[col].nunique()
            if n_distinct > _CONTINUOUS_MAX_GROUPS:
                out.append((col, int(n_distinct)))
    return out


def _warn_continuous(frame, name):
    found = _continuous_columns(frame)
    if not found:
        return
    which = ", ".join(
        f"{n} distinct values" if frame.shape[1] == 1 else f"column {c!r}: {n} distinct values"
        for c, n in found
    )
    warnings.warn(
        f"The sensitive feature ({name}) looks continuous ({which}): every distinct "
        f"value becomes a group, so the groups are tiny and their rates are noise. Bin "
        f"it into a few groups first, e.g. pandas.cut(age, bins=[0, 25, 45, 65, 120]) or "
        f"sklearn.preprocessing.KBinsDiscretizer(n_bins=4, encode='ordinal'). If the "
        f"values are category codes, pass them as a string or category column.",
        ContinuousSensitiveFeatureWarning,
        stacklevel=3,
    )


def encode_groups(sensitive_features, n_samples=None, *, name="sensitive_features"):
    """Map sensitive features to integer group ids.

    Accepts everything :func:`check_sensitive_features` does, and polars / pyarrow
    series and dataframes. A numeric column with more than 20 distinct values emits a
    :class:`~skfairbilevel.exceptions.ContinuousSensitiveFeatureWarning` (it is still
    encoded, one group per value).

    Returns
    -------
    group_ids : ndarray of int64, shape (n_samples,)
        ``groups[group_ids[i]]`` is the group of row ``i``.
    groups : ndarray of object, shape (n_groups,)
        The group labels in sorted order: the values themselves for one column, tuples
        of values for several columns (only combinations that occur are groups).
    """
    frame = check_sensitive_features(_dataframe.to_pandas(sensitive_features), n_samples, name=name)
    _warn_continuous(frame, name)
    per_col = [_column_labels(frame[c]) for c in frame.columns]
    if len(per_col) == 1:
        codes, uniques = per_col[0]
        return codes, uniques
    # combinations: mixed-radix key, then compress to the combinations that occur
    key = np.zeros(frame.shape[0], dtype=np.int64)
    for codes, uniques in per_col:
        key = key * len(uniques) + codes
    combo, group_ids = np.unique(key, return_inverse=True)
    labels = np.empty(len(combo), dtype=object)
    for j, k in enumerate(combo):
        parts = []
        for _codes, uniques in reversed(per_col):
            parts.append(uniques[k % len(uniques)])
            k //= len(uniques)
        labels[j] = tuple(reversed(parts))
    return group_ids.astype(np.int64), labels


def resolve_column_ids(X, ids, *, name="sensitive_feature_ids"):
    """Positions of the columns of ``X`` named by ``ids`` (names or integer indices).

    Names need a dataframe ``X`` (pandas, polars, pyarrow, ...); integer indices work on
    any 2-D ``X``.
    """
    if ids is None:
        raise ValueError(f"{name} is None.")
    if isinstance(ids, (str, Integral)):
        ids = [ids]
    ids = list(ids)
    if not ids:
        raise ValueError(f"{name} is empty; name at least one column of X.")
    columns = _dataframe.column_names(X)
    try:
        n_cols = _dataframe.n_columns(X)
    except ValueError:  # not 2-D
        n_cols = None
    positions = []
    for ident in ids:
        if isinstance(ident, (Integral, np.integer)) and not isinstance(ident, bool):
            pos = int(ident)
            if n_cols is None or not -n_cols <= pos < n_cols:
                raise ValueError(
                    f"{name} contains the column index {pos}, but X has {n_cols} columns."
                )
            positions.append(pos % n_cols)
        elif isinstance(ident, str):
            if columns is None:
                raise ValueError(
                    f"{name} names the column {ident!r}, but X has no column names (it is "
                    f"a {type(X).__name__}, not a dataframe). Pass integer column indices "
                    f"instead, or pass X as a dataframe (pandas, polars, pyarrow)."
                )
            if ident not in columns:
                raise ValueError(
                    f"{name} names the column {ident!r}, which is not a column of X. "
                    f"Columns of X: {columns[:20]}{' ...' if len(columns) > 20 else ''}. "
                    f"(skfairbilevel.datasets.make_preprocessor drops the sensitive "
                    f"columns unless keep_sensitive=True.)"
                )
            positions.append(columns.index(ident))
        else:
            raise TypeError(
                f"{name} must hold column names (str) or integer indices; got {ident!r}."
            )
    if len(set(positions)) != len(positions):
        raise ValueError(f"{name} names the same column twice: {ids!r}.")
    return positions


def get_sensitive_columns(X, ids, *, name="sensitive_feature_ids"):
    """The columns of X named by ``ids``, as a pandas DataFrame (one column per id).

    ``X`` may be any dataframe (the columns keep their names and values: strings,
    categories, numbers), a numpy array or a scipy sparse matrix.
    """
    return _columns_frame(X, resolve_column_ids(X, ids, name=name), name)


def _columns_frame(X, positions, name):
    if isinstance(X, pd.DataFrame):
        return X.iloc[:, positions].reset_index(drop=True)
    if _dataframe.is_dataframe(X):
        return _dataframe.to_pandas(_dataframe.select_columns(X, positions))
    if hasattr(X, "toarray"):  # sparse
        return pd.DataFrame(X.tocsc()[:, positions].toarray())
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise ValueError(f"X must be 2-D to read the columns named by {name}.")
    return pd.DataFrame(arr[:, positions], columns=positions)


def resolve_sensitive(
    X,
    sensitive_features=None,
    sensitive_feature_ids=None,
    *,
    drop=True,
    name="sensitive_feature_ids",
):
    """Where the sensitive features of the rows of ``X`` come from, in one rule.

    They are either given (``sensitive_features``) or read from the columns of ``X``
    named by ``sensitive_feature_ids`` (names need a dataframe, indices work on any
    2-D X), never both. The named columns are read as they are (strings, categories,
    numbers), before X is converted to numbers.

    Parameters
    ----------
    X : array-like or sparse matrix of shape (n_samples, n_features)
        The data as the user passed it (its column names are looked up).
    sensitive_features : array-like, optional
        The sensitive features, given directly.
    sensitive_feature_ids : str, int or list of them, optional
        Column names or indices of X holding the sensitive features.
    drop : bool, default=True
        With ``sensitive_feature_ids``: whether those columns are removed from the
        model's inputs.
    name : str
        Argument name used in error messages.

    Returns
    -------
    A : DataFrame, array-like or None
        The sensitive features: ``sensitive_features`` as given, or a DataFrame of the
        named columns, or None when neither was given.
    model_columns : list of int or None
        Positions of the columns of X the model uses; None for all of them.
    """
    if sensitive_feature_ids is None:
        return sensitive_features, None
    if sensitive_features is not None:
        raise ValueError(
            "Got both sensitive_features and sensitive_feature_ids; pass the sensitive "
            "features one way only (set sensitive_feature_ids=None to use the "
            "sensitive_features argument)."
        )
    positions = resolve_column_ids(X, sensitive_feature_ids, name=name)
    A = _columns_frame(X, positions, name)
    if not drop:
        return A, None
    dropped = set(positions)
    keep = [j for j in range(_dataframe.n_columns(X)) if j not in dropped]
    if not keep:
        raise ValueError(
            f"{name} names every column of X, and drop_sensitive=True removes them, "
            f"leaving no features; set drop_sensitive=False or add features."
        )
    return A, keep


def encode_known_groups(sensitive_features, n_samples, groups, *, name="sensitive_features"):
    """Group ids of rows in an existing list of groups (e.g. the fitted ``groups_``).

    Raises a ValueError naming ``name`` when the number of sensitive columns differs
    from that of ``groups`` or when a row's group is not in ``groups``.
    """
    ids, labels = encode_groups(sensitive_features, n_samples, name=name)

    def n_columns(label):
        return len(label) if isinstance(label, tuple) else 1

    n_known, n_given = n_columns(groups[0]), n_columns(labels[0])
    if n_given != n_known:
        raise ValueError(
            f"{name} has {n_given} column(s) but the training sensitive features have "
            f"{n_known}; pass the same sensitive columns for these rows."
        )
    lookup = {label: i for i, label in enumerate(groups)}
    unseen = [label for label in labels if label not in lookup]
    if unseen:
        raise ValueError(
            f"{name} contains group(s) {unseen[:5]} not seen in fit (training groups: "
            f"{list(groups)[:20]}); every group must occur in the training rows. Drop "
            f"those rows or add training rows of those groups."
        )
    return np.array([lookup[label] for label in labels], dtype=np.int64)[ids]
