"""Preprocessing recipe: from a loader's dataframe to an all-numeric frame for estimators.

The loaders return the sensitive column(s) inside ``X``. The estimators of
skfairbilevel need numbers, and must not learn from the sensitive attribute unless asked
to. :func:`make_preprocessor` builds the unfitted
:class:`~sklearn.compose.ColumnTransformer` that bridges the two:

* categorical columns (``category``, string, object or bool dtype) are one-hot encoded
  (``handle_unknown="ignore"``, dense), producing columns such as ``race_White``;
* numeric columns are standardised (:class:`~sklearn.preprocessing.StandardScaler`);
* the sensitive column(s) are **dropped** by default, so the model never sees them;
  give the sensitive features to the estimator's ``fit`` instead
  (``sensitive_features=A``, routed by scikit-learn with metadata routing on);
* with ``keep_sensitive=True`` every sensitive column passes through **under its own
  name**, so that an estimator can read it with ``sensitive_feature_ids`` (and drop it
  from its inputs with ``drop_sensitive=True``, the estimators' default):
  ordinal-encoded to 0, 1, ... (categories in sorted order) when it is categorical or
  string, cast to float when it is numeric. A category unseen during ``fit`` becomes -1;
* the output is a pandas DataFrame of floats (``set_output(transform="pandas")``,
  ``verbose_feature_names_out=False``), so a kept column ``"sex"`` is still called
  ``"sex"`` after the transform.

``X`` may be a pandas, polars or pyarrow dataframe (its column kinds are read through
narwhals). Because the transformer is unfitted, it goes first in a
:class:`~sklearn.pipeline.Pipeline` and is refitted on each training fold by
cross-validation, with no leakage from the test fold.

Examples
--------
>>> from skfairbilevel.datasets import load_adult, make_preprocessor
>>> X, y = load_adult(sensitive="sex", return_X_y=True)
>>> Xt = make_preprocessor(X, sensitive="sex").fit_transform(X)
>>> Xt.shape, "sex" in Xt.columns
((45222, 101), False)
>>> kept = make_preprocessor(X, sensitive="sex", keep_sensitive=True).fit_transform(X)
>>> sorted(kept["sex"].unique().tolist())  # 0 = Female, 1 = Male
[0.0, 1.0]

With metadata routing on, the estimator gets the sensitive features from ``fit``::

    sklearn.set_config(enable_metadata_routing=True)
    pipe = make_pipeline(make_preprocessor(X, sensitive="sex"), FairBiNNClassifier())
    pipe.fit(X, y, sensitive_features=X["sex"])

With routing off, keep the column and let the estimator find it by name (it drops the
column from its own inputs)::

    pipe = make_pipeline(
        make_preprocessor(X, sensitive="sex", keep_sensitive=True),
        FairBiNNClassifier(sensitive_feature_ids="sex"),
    )
    pipe.fit(X, y)

Integer-coded categorical columns (e.g. ``EDUCATION`` of
:func:`~skfairbilevel.datasets.load_credit_default`) look numeric; pass them in
``categorical=`` to one-hot encode them.
"""

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler

from .. import _dataframe
from ._base import check_bool, check_sensitive


def _as_float(X):
    """Cast to float64 (module level so that the fitted transformer pickles)."""
    return _dataframe.to_numpy(X).astype(np.float64)


# column kinds (skfairbilevel._dataframe.column_kinds) encoded as categories
_CATEGORICAL_KINDS = ("categorical", "string", "boolean", "object")


def _check_columns(value, columns, name):
    """Validate an explicit list of column names (``categorical`` or ``numeric``)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(c, str) for c in value):
        raise TypeError(f"{name} must be None or a list of column names; got {value!r}.")
    missing = [c for c in value if c not in columns]
    if missing:
        raise ValueError(
            f"{name} names column(s) {missing} that are not in X; valid columns are "
            f"{list(columns)}."
        )
    return list(dict.fromkeys(value))


def make_preprocessor(X, *, sensitive=None, keep_sensitive=False, categorical=None, numeric=None):
    """Build an unfitted ColumnTransformer that makes ``X`` numeric, without ``sensitive``.

    One-hot encodes the categorical columns, standardises the numeric columns and drops
    the sensitive column(s), so that a model trained on the output cannot use them.
    With ``keep_sensitive=True`` they pass through instead, under their own names and
    ordinal-encoded, so that an estimator can find them with ``sensitive_feature_ids``.
    See the module docstring for the recipe.

    Parameters
    ----------
    X : pandas, polars or pyarrow DataFrame
        Data whose columns and dtypes define the transformer (only the column names and
        dtypes are read; nothing is fitted).
    sensitive : str or list of str, default=None
        Sensitive column(s) of ``X``. They are neither scaled nor one-hot encoded.
    keep_sensitive : bool, default=False
        If False (the default) the sensitive columns are dropped: the model never sees
        them, and the estimator gets the sensitive features from ``fit``
        (``sensitive_features=A``). If True they are kept, under their own names, for
        an estimator that reads them with ``sensitive_feature_ids``: ordinal-encoded
        (categorical, string or bool columns: 0..k-1 in sorted order of the categories
        seen in ``fit``, unseen categories -1) or cast to float (numeric). Such an
        estimator drops them from its inputs by default (``drop_sensitive=True``);
        any other model that is given the output trains on them.
    categorical : list of str, default=None
        Columns to one-hot encode. None infers them from the dtypes: ``category``,
        string, object and bool columns that are not sensitive.
    numeric : list of str, default=None
        Columns to standardise. None infers them: int and float columns that are neither
        sensitive nor in ``categorical``. When both ``categorical`` and ``numeric`` are
        given, every other non-sensitive column is dropped.

    Returns
    -------
    preprocessor : sklearn.compose.ColumnTransformer
        Unfitted, with ``verbose_feature_names_out=False``, dense output and
        ``set_output(transform="pandas")``: ``fit_transform`` returns a pandas DataFrame
        of float64 columns (the kept sensitive ones under their original names), also
        for a polars or pyarrow ``X``.

    Raises
    ------
    TypeError
        If ``X`` is not a dataframe, or an argument has the wrong type.
    ValueError
        If a named column is not in ``X``, a column is listed in two roles, or a column
        of an unsupported dtype (e.g. datetime) would be left unassigned.

    See Also
    --------
    load_adult, load_credit_default, load_german_credit : Loaders whose output this
        transformer is made for.

    Examples
    --------
    >>> import pandas as pd
    >>> from skfairbilevel.datasets import make_preprocessor
    >>> X = pd.DataFrame({"age": [25, 40, 61], "job": ["a", "b", "a"],
    ...                   "sex": ["F", "M", "M"]})
    >>> make_preprocessor(X, sensitive="sex").fit_transform(X).columns.tolist()
    ['age', 'job_a', 'job_b']
    >>> pre = make_preprocessor(X, sensitive="sex", keep_sensitive=True)
    >>> pre.fit_transform(X)["sex"].tolist()
    [0.0, 1.0, 1.0]
    """
    if not _dataframe.is_dataframe(X):
        raise TypeError(
            f"X must be a dataframe (pandas, polars or pyarrow; column names are "
            f"needed); got {type(X).__name__}. Wrap it with pandas.DataFrame(X, "
            f"columns=...)."
        )
    keep_sensitive = check_bool(keep_sensitive, "keep_sensitive")
    columns = _dataframe.column_names(X)
    kinds = _dataframe.column_kinds(X)
    if not all(isinstance(c, str) for c in columns):
        raise TypeError("X must have string column names; rename its columns first.")
    sens = [] if sensitive is None else check_sensitive(sensitive, columns)[0]
    categorical = _check_columns(categorical, columns, "categorical")
    numeric = _check_columns(numeric, columns, "numeric")

    for name, cols in (("categorical", categorical), ("numeric", numeric)):
        both = [c for c in (cols or []) if c in sens]
        if both:
            raise ValueError(
                f"column(s) {both} are both sensitive and in {name}; remove them from "
                f"{name} (sensitive columns are handled by keep_sensitive)."
            )
    if categorical is not None and numeric is not None:
        both = [c for c in categorical if c in numeric]
        if both:
            raise ValueError(
                f"column(s) {both} are in both categorical and numeric; list each once."
            )

    rest = [c for c in columns if c not in sens]
    inferred = categorical is None or numeric is None
    if categorical is None:
        taken = set(numeric or [])
        categorical = [c for c in rest if c not in taken and kinds[c] in _CATEGORICAL_KINDS]
    if numeric is None:
        taken = set(categorical)
        numeric = [c for c in rest if c not in taken and kinds[c] == "numeric"]
    if inferred:
        left = [c for c in rest if c not in categorical and c not in numeric]
        if left:
            dtypes = _dataframe.column_dtypes(X)
            raise ValueError(
                f"cannot infer how to encode column(s) {left} (dtypes "
                f"{[dtypes[c] for c in left]}); list them in categorical= or "
                "numeric=, or drop them from X."
            )

    transformers = []
    if numeric:
        transformers.append(("numeric", StandardScaler(), numeric))
    if categorical:
        transformers.append(
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                categorical,
            )
        )
    if keep_sensitive and sens:
        sens_cat = [c for c in sens if kinds[c] != "numeric"]
        sens_num = [c for c in sens if kinds[c] == "numeric"]
        if sens_cat:
            transformers.append(
                (
                    "sensitive",
                    OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
                    sens_cat,
                )
            )
        if sens_num:
            transformers.append(
                (
                    "sensitive_numeric",
                    FunctionTransformer(_as_float, feature_names_out="one-to-one"),
                    sens_num,
                )
            )
    if not transformers:
        raise ValueError(
            "X has no column left to transform (every column is sensitive and "
            "keep_sensitive=False); keep them (keep_sensitive=True) or add features."
        )
    preprocessor = ColumnTransformer(
        transformers,
        remainder="drop",
        sparse_threshold=0.0,
        verbose_feature_names_out=False,
    )
    return preprocessor.set_output(transform="pandas")
