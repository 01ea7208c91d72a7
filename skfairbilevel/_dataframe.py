"""Dataframe-agnostic access to columns (pandas, polars, pyarrow, ... through narwhals).

The package reads three things from user dataframes: which columns there are, a few of
them by name or position, and their values as numpy arrays. These helpers do that for
every eager dataframe library narwhals supports (pandas, polars, pyarrow ``Table`` /
``ChunkedArray``, modin, cuDF), so no other module needs per-library code. Anything
that is not a dataframe or series (numpy arrays, lists, scipy sparse matrices) passes
through unchanged or goes through :func:`numpy.asarray`.

Values keep their meaning: numeric and boolean columns give numeric / boolean arrays
(missing values as NaN), string, categorical and other columns give object arrays of
the values themselves (missing values as ``None`` or NaN). Nothing here imports torch.
"""

import narwhals.stable.v2 as nw
import numpy as np
import pandas as pd

__all__ = [
    "is_dataframe",
    "is_series",
    "n_rows",
    "column_names",
    "n_columns",
    "take_columns",
    "column_kinds",
    "column_dtypes",
    "select_columns",
    "to_numpy",
    "to_pandas",
]


def _wrap(obj):
    """The narwhals DataFrame or Series of ``obj``, or ``obj`` itself; lazy frames raise."""
    wrapped = nw.from_native(obj, pass_through=True, allow_series=True)
    if isinstance(wrapped, nw.LazyFrame):
        raise TypeError(
            f"got a lazy {type(obj).__name__}; call .collect() on it first (the data "
            f"must be in memory)."
        )
    return wrapped


def is_dataframe(obj):
    """Whether ``obj`` is an eager dataframe (pandas, polars, pyarrow Table, ...)."""
    return isinstance(_wrap(obj), nw.DataFrame)


def is_series(obj):
    """Whether ``obj`` is a one-column series (pandas/polars Series, pyarrow ChunkedArray)."""
    return isinstance(_wrap(obj), nw.Series)


def n_rows(obj):
    """Number of rows of a dataframe, series, array or sequence."""
    wrapped = _wrap(obj)
    if isinstance(wrapped, nw.DataFrame | nw.Series):
        return len(wrapped)
    shape = getattr(obj, "shape", None)
    if shape is not None and len(shape) > 0:
        return int(shape[0])
    return len(obj)


def column_names(obj):
    """Column names of a dataframe as a list, or None for anything else."""
    wrapped = _wrap(obj)
    if isinstance(wrapped, nw.DataFrame):
        return list(wrapped.columns)
    return None


def n_columns(obj):
    """Number of columns of a dataframe, a 2-D array or sparse matrix, or a list of rows."""
    names = column_names(obj)
    if names is not None:
        return len(names)
    shape = getattr(obj, "shape", None)
    if shape is None:
        shape = np.shape(obj)
    if len(shape) != 2:
        raise ValueError(f"X must be 2-D (rows x columns); got shape {tuple(shape)}.")
    return int(shape[1])


def take_columns(obj, positions):
    """The columns at ``positions`` of a dataframe (same library, dtypes kept), of a
    scipy sparse matrix or array (as CSR) or of anything :func:`numpy.asarray` takes."""
    positions = [int(p) for p in positions]
    if isinstance(obj, pd.DataFrame):
        return obj.iloc[:, positions]
    if is_dataframe(obj):
        return select_columns(obj, positions)
    if hasattr(obj, "tocsr"):  # scipy sparse
        return obj.tocsr()[:, positions]
    return np.asarray(obj)[:, positions]


def _kind(dtype):
    if dtype == nw.Boolean:
        return "boolean"
    if dtype.is_numeric():
        return "numeric"
    if dtype == nw.String:
        return "string"
    if dtype in (nw.Categorical, nw.Enum):
        return "categorical"
    if dtype == nw.Object:
        return "object"
    return "other"


def column_kinds(df):
    """``{name: kind}`` for the columns of a dataframe.

    ``kind`` is ``"numeric"`` (integer, float, decimal), ``"boolean"``, ``"string"``,
    ``"categorical"`` (pandas ``category``, polars ``Categorical`` / ``Enum``, pyarrow
    dictionary), ``"object"`` (Python objects that are not all strings) or ``"other"``
    (datetimes, durations, nested types, ...).
    """
    return {name: _kind(dtype) for name, dtype in _schema(df).items()}


def column_dtypes(df):
    """``{name: dtype name}`` for the columns of a dataframe (for messages)."""
    return {name: str(dtype) for name, dtype in _schema(df).items()}


def _schema(df):
    wrapped = _wrap(df)
    if not isinstance(wrapped, nw.DataFrame):
        raise TypeError(f"expected a dataframe; got {type(df).__name__}.")
    return wrapped.schema


def select_columns(df, positions):
    """The columns at ``positions`` (integers, in that order) of a dataframe, same library."""
    wrapped = _wrap(df)
    if not isinstance(wrapped, nw.DataFrame):
        raise TypeError(f"expected a dataframe; got {type(df).__name__}.")
    names = wrapped.columns
    return wrapped.select([names[int(p)] for p in positions]).to_native()


def _series_to_numpy(series):
    kind = _kind(series.dtype)
    values = series.to_numpy()
    if kind in ("numeric", "boolean"):
        return values
    return np.asarray(values, dtype=object)


def to_numpy(obj):
    """Values of ``obj`` as a numpy array: 1-D for a series, 2-D for a dataframe.

    A dataframe is converted column by column, so a frame mixing numbers and strings
    gives an object array that keeps both. Anything else goes through
    :func:`numpy.asarray`.
    """
    wrapped = _wrap(obj)
    if isinstance(wrapped, nw.Series):
        return _series_to_numpy(wrapped)
    if isinstance(wrapped, nw.DataFrame):
        columns = [_series_to_numpy(wrapped.get_column(c)) for c in wrapped.columns]
        if not columns:
            return np.empty((len(wrapped), 0))
        if any(c.dtype == object for c in columns):
            out = np.empty((len(wrapped), len(columns)), dtype=object)
            for j, c in enumerate(columns):
                out[:, j] = c
            return out
        return np.column_stack(columns)
    return np.asarray(obj)


def _series_to_pandas(series):
    values = _series_to_numpy(series)
    if series.dtype == nw.Enum:  # declared category order: keep it
        categories = series.cat.get_categories().to_numpy()
        values = pd.Categorical(values, categories=categories)
    return pd.Series(values, name=series.name if series.name not in ("", None) else None)


def to_pandas(obj):
    """pandas objects unchanged; other dataframes / series as pandas, column by column.

    Column names and the values (strings, categories, numbers) are kept; the category
    order of a polars ``Enum`` is kept, other categoricals become their string values.
    pyarrow is not needed for the conversion. Anything that is not a dataframe or a
    series is returned unchanged.
    """
    if isinstance(obj, pd.DataFrame | pd.Series):
        return obj
    wrapped = _wrap(obj)
    if isinstance(wrapped, nw.Series):
        return _series_to_pandas(wrapped)
    if isinstance(wrapped, nw.DataFrame):
        return pd.DataFrame(
            {c: _series_to_pandas(wrapped.get_column(c)) for c in wrapped.columns},
            columns=list(wrapped.columns),
        )
    return obj
