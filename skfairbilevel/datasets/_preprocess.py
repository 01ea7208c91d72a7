"""Preprocessing recipe: from a loader's DataFrame to an all-numeric frame for estimators.

The loaders return the sensitive column(s) inside ``X``. The estimators of
skfairbilevel need numbers, and find the sensitive column by name through
``sensitive_feature_ids``. :func:`make_preprocessor` builds the unfitted
:class:`~sklearn.compose.ColumnTransformer` that bridges the two:

* categorical columns (``category``, string, object or bool dtype) are one-hot encoded
  (``handle_unknown="ignore"``, dense), producing columns such as ``race_White``;
* numeric columns are standardised (:class:`~sklearn.preprocessing.StandardScaler`);
* every sensitive column passes through **under its own name**: ordinal-encoded to
  0, 1, ... (categories in sorted order) when it is categorical, cast to float when it
  is numeric. A category unseen during ``fit`` becomes -1. With ``keep_sensitive=False``
  the sensitive columns are dropped instead;
* the output is a pandas DataFrame of floats (``set_output(transform="pandas")``,
  ``verbose_feature_names_out=False``), so the column ``"sex"`` is still called
  ``"sex"`` after the transform.

Because the transformer is unfitted, it goes first in a
:class:`~sklearn.pipeline.Pipeline` and is refitted on each training fold by
cross-validation, with no leakage from the test fold.

Examples
--------
>>> from skfairbilevel.datasets import load_adult, make_preprocessor
>>> X, y = load_adult(sensitive="sex", return_X_y=True)
>>> pre = make_preprocessor(X, sensitive="sex")
>>> Xt = pre.fit_transform(X)
>>> Xt.shape
(45222, 102)
>>> sorted(Xt["sex"].unique().tolist())  # 0 = Female, 1 = Male
[0.0, 1.0]

In a pipeline the estimator finds the sensitive column by its name::

    pipe = make_pipeline(
        make_preprocessor(X, sensitive="sex"),
        FairBiNNClassifier(sensitive_feature_ids="sex"),
    )
    pipe.fit(X, y)

Integer-coded categorical columns (e.g. ``EDUCATION`` of
:func:`~skfairbilevel.datasets.load_credit_default`) look numeric; pass them in
``categorical=`` to one-hot encode them.
"""

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler

from ._base import check_bool, check_sensitive


def _as_float(X):
    """Cast to float64 (module level so that the fitted transformer pickles)."""
    return X.astype("float64")


def _is_numeric(series):
    """True for int/float columns; bool, category and string columns are not numeric."""
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _is_categorical(series):
    dtype = series.dtype
    return (
        isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
        or pd.api.types.is_object_dtype(dtype)
    )


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


def make_preprocessor(X, *, sensitive=None, keep_sensitive=True, categorical=None, numeric=None):
    """Build an unfitted ColumnTransformer that makes ``X`` numeric, keeping ``sensitive``.

    One-hot encodes the categorical columns, standardises the numeric columns and passes
    the sensitive column(s) through under their own name, ordinal-encoded, so that an
    estimator can find them with ``sensitive_feature_ids``. See the module docstring
    for the recipe.

    Parameters
    ----------
    X : pandas.DataFrame
        Data whose columns and dtypes define the transformer (only the column names and
        dtypes are read; nothing is fitted).
    sensitive : str or list of str, default=None
        Sensitive column(s) of ``X``. They are neither scaled nor one-hot encoded.
    keep_sensitive : bool, default=True
        If True the sensitive columns are kept, ordinal-encoded (categorical: 0..k-1 in
        sorted order of the categories seen in ``fit``, unseen categories -1) or cast to
        float (numeric), under their own name. If False they are dropped.
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
        ``set_output(transform="pandas")``: ``fit_transform`` returns a DataFrame of
        float64 columns, the sensitive ones under their original names.

    Raises
    ------
    TypeError
        If ``X`` is not a DataFrame, or an argument has the wrong type.
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
    ['age', 'job_a', 'job_b', 'sex']
    """
    if not isinstance(X, pd.DataFrame):
        raise TypeError(
            f"X must be a pandas DataFrame (column names are needed); got "
            f"{type(X).__name__}. Wrap it with pandas.DataFrame(X, columns=...)."
        )
    keep_sensitive = check_bool(keep_sensitive, "keep_sensitive")
    columns = list(X.columns)
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
        categorical = [c for c in rest if c not in taken and _is_categorical(X[c])]
    if numeric is None:
        taken = set(categorical)
        numeric = [c for c in rest if c not in taken and _is_numeric(X[c])]
    if inferred:
        left = [c for c in rest if c not in categorical and c not in numeric]
        if left:
            raise ValueError(
                f"cannot infer how to encode column(s) {left} (dtypes "
                f"{[str(X[c].dtype) for c in left]}); list them in categorical= or "
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
        sens_cat = [c for c in sens if not _is_numeric(X[c])]
        sens_num = [c for c in sens if _is_numeric(X[c])]
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
            "keep_sensitive=False); keep the sensitive columns or add features."
        )
    preprocessor = ColumnTransformer(
        transformers,
        remainder="drop",
        sparse_threshold=0.0,
        verbose_feature_names_out=False,
    )
    return preprocessor.set_output(transform="pandas")
