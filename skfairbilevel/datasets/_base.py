"""Shared machinery of the bundled-dataset loaders.

Reading a bundled file, argument checks shared by every loader and the assembly of the
returned :class:`~sklearn.utils.Bunch` live here, so the ``load_*`` modules only hold what
is specific to one dataset.

Conventions of every loader
---------------------------
* String columns of a file become pandas ``category`` columns whose categories are the
  sorted distinct values of the **whole file**, so frames loaded with different options
  (for example the two Adult splits) have identical dtypes and concatenate cleanly.
  Numeric columns keep their integer/float dtype.
* The parsed file is cached (:func:`functools.lru_cache`); every loader works on, and
  returns, copies, so a caller can modify the result freely.
"""

import functools
from importlib import resources

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

_PACKAGE = "skfairbilevel.datasets"


@functools.lru_cache(maxsize=16)  # 5 bundled files, a few read options each
def _read_bundled(filename, na_values=None):
    """Parse one bundled ``data/<filename>`` and cache the result.

    String columns are turned into ``category`` columns (categories sorted). The cached
    frame is shared: callers must copy it before changing it (:func:`read_bundled` does).

    Parameters
    ----------
    filename : str
        Name of a file in ``skfairbilevel/datasets/data/``.
    na_values : tuple of str or None
        Extra strings read as missing; when given, pandas' default missing markers are
        switched off so that only these strings become NaN.
    """
    kwargs = {"compression": "gzip"}
    if na_values is not None:
        kwargs.update(na_values=list(na_values), keep_default_na=False)
    with resources.files(_PACKAGE).joinpath("data", filename).open("rb") as fh:
        frame = pd.read_csv(fh, **kwargs)
    for col in frame.columns:
        if pd.api.types.is_string_dtype(frame[col]) or pd.api.types.is_object_dtype(frame[col]):
            frame[col] = frame[col].astype("category")
    return frame


def read_bundled(filename, na_values=None):
    """Return a fresh copy of the parsed bundled file ``filename`` (see ``_read_bundled``)."""
    return _read_bundled(filename, na_values).copy(deep=True)


@functools.lru_cache(maxsize=16)
def load_descr(name):
    """Return the text of ``descr/<name>.rst``."""
    return resources.files(_PACKAGE).joinpath("descr", name + ".rst").read_text(encoding="utf-8")


def check_bool(value, name):
    """Raise a TypeError naming ``name`` unless ``value`` is a bool (or numpy bool)."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False; got {value!r}.")
    return bool(value)


def check_sensitive(sensitive, columns, *, name="sensitive"):
    """Validate a ``sensitive`` argument against the columns of the data.

    Parameters
    ----------
    sensitive : str or list of str
        One column name, or a list/tuple of column names (intersectional groups).
    columns : sequence of str
        The columns of the returned data, i.e. the valid names.
    name : str, default="sensitive"
        Argument name used in error messages.

    Returns
    -------
    names : list of str
        The sensitive column names.
    single : bool
        True when ``sensitive`` was one string (the loader returns a Series), False when
        it was a list (the loader returns a DataFrame, even for a list of one name).

    Raises
    ------
    TypeError
        If ``sensitive`` is neither a string nor a list/tuple of strings.
    ValueError
        If the list is empty, has duplicates, or names a column that does not exist.
    """
    columns = list(columns)
    if isinstance(sensitive, str):
        names, single = [sensitive], True
    elif isinstance(sensitive, list | tuple):
        names, single = list(sensitive), False
        bad = [s for s in names if not isinstance(s, str)]
        if bad:
            raise TypeError(
                f"{name} must be a column name or a list of column names (strings); "
                f"got non-string entries {bad!r}. Valid columns: {columns}."
            )
        if not names:
            raise ValueError(
                f"{name} is an empty list; pass at least one column name. Valid columns: {columns}."
            )
        dup = sorted({s for s in names if names.count(s) > 1})
        if dup:
            raise ValueError(f"{name} lists the column(s) {dup} more than once; list each once.")
    else:
        raise TypeError(
            f"{name} must be a column name (str) or a list of column names; got "
            f"{type(sensitive).__name__} {sensitive!r}. Valid columns: {columns}."
        )
    missing = [s for s in names if s not in columns]
    if missing:
        raise ValueError(
            f"{name}={sensitive!r}: unknown column(s) {missing}. Valid columns are "
            f"{columns}; pass one of them or a list of them."
        )
    return names, single


def make_bunch(
    data,
    target,
    *,
    sensitive_names,
    single,
    target_names,
    descr,
    return_X_y,
    **extra,
):
    """Assemble a loader's return value.

    ``(data, target)`` when ``return_X_y`` is True, otherwise a Bunch with ``data``,
    ``target``, ``sensitive_features``, ``frame``, ``feature_names``, ``target_names``,
    ``DESCR`` and any ``extra`` fields.
    """
    data = data.reset_index(drop=True)
    target = target.reset_index(drop=True)
    if return_X_y:
        return data, target
    if single:
        sensitive_features = data[sensitive_names[0]].copy()
    else:
        sensitive_features = data[list(sensitive_names)].copy()
    frame = pd.concat([data, target], axis=1)
    extra = {
        k: (v.reset_index(drop=True) if isinstance(v, pd.Series) else v) for k, v in extra.items()
    }
    return Bunch(
        data=data,
        target=target,
        sensitive_features=sensitive_features,
        frame=frame,
        feature_names=list(data.columns),
        target_names=np.asarray(target_names, dtype=object),
        DESCR=descr,
        **extra,
    )
