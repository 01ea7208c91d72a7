"""The data of the comparison: bundled datasets or the user's table, splits, preprocessing.

* :func:`load_table` reads a bundled dataset or a CSV / Parquet file into a
  :class:`Table`: features (sensitive columns included), a 0/1 target, the sensitive
  columns and the group of each row;
* :func:`make_splits` draws, for one seed, the train / validation / test rows
  (stratified by label and group; Adult keeps its official test file), or the folds of
  ``cv``;
* :func:`prepare` fits the preprocessing on a part's training rows and returns float32
  arrays: one-hot encoded categorical columns and standardised numeric columns, without
  the sensitive columns (which are prepended, encoded, only for methods that take them
  as inputs).
"""

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split

from .._groups import _CONTINUOUS_MAX_GROUPS, _continuous_columns

__all__ = [
    "DATASETS",
    "Table",
    "Part",
    "load_table",
    "make_splits",
    "prepare",
    "MAX_SENSITIVE_VALUES",
]


@dataclass(frozen=True)
class Dataset:
    """A bundled dataset as the comparison uses it."""

    loader: str  # function name in skfairbilevel.datasets
    sensitive: str  # default sensitive column
    kwargs: dict = field(default_factory=dict)
    description: str = ""


DATASETS = {
    "adult": Dataset("load_adult", "sex", description="UCI Adult: income > 50K"),
    "credit_default": Dataset(
        "load_credit_default", "SEX", description="UCI Default of Credit Card Clients: default"
    ),
    "german_credit": Dataset(
        "load_german_credit", "sex", description="UCI Statlog German Credit: good risk"
    ),
    "bank_marketing": Dataset(
        "load_bank_marketing", "age_group", description="UCI Bank Marketing: term deposit"
    ),
    "drug_consumption": Dataset(
        "load_drug_consumption",
        "Gender",
        kwargs={"target": "Cannabis", "n_classes": 2},
        description="UCI Drug Consumption: Cannabis used in the last decade (binarised)",
    ),
}

#: a numeric sensitive column with more distinct values than this is refused (bin it);
#: the same bound as the package's ContinuousSensitiveFeatureWarning
MAX_SENSITIVE_VALUES = _CONTINUOUS_MAX_GROUPS
#: share of all rows for the test part (Adult: its official test file instead)
TEST_FRACTION = 0.2
#: share of all rows for the validation part (Adult: of its training file)
VALIDATION_FRACTION = 0.2
#: --quick: at most this many rows per part (stratified subsample, seeded)
QUICK_ROWS = {"train": 3000, "validation": 1500, "test": 3000}


@dataclass
class Table:
    """One dataset, ready to split.

    Attributes
    ----------
    name, description : str
    X : pandas.DataFrame
        Features, sensitive columns included (the preprocessing drops them).
    y : ndarray of int
        0/1 target.
    sensitive : list of str
        The sensitive columns.
    groups : ndarray of int
        Group of each row (a code into ``group_labels``; several sensitive columns give
        their combinations).
    group_labels : list of str
    fixed_test : ndarray of bool or None
        Rows that are always the test part (Adult's official test file).
    notes : list of str
        What was done to the data (dropped rows, ...).
    """

    name: str
    description: str
    X: pd.DataFrame
    y: np.ndarray
    sensitive: list
    groups: np.ndarray
    group_labels: list
    fixed_test: np.ndarray | None = None
    target: str = ""
    positive: str = "1"
    notes: list = field(default_factory=list)
    _fingerprint: str | None = field(default=None, init=False, repr=False)

    @property
    def fingerprint(self):
        """A hash of the features, the target and the groups (part of the cache key)."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            h.update(pd.util.hash_pandas_object(self.X, index=False).to_numpy().tobytes())
            h.update(repr(list(self.X.columns)).encode())
            h.update(np.ascontiguousarray(self.y, dtype=np.int64).tobytes())
            h.update(np.ascontiguousarray(self.groups, dtype=np.int64).tobytes())
            h.update(repr((self.sensitive, self.group_labels)).encode())
            if self.fixed_test is not None:
                h.update(np.packbits(self.fixed_test).tobytes())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def group_counts(self):
        counts = np.bincount(self.groups, minlength=len(self.group_labels))
        return dict(zip(self.group_labels, counts.tolist(), strict=True))


# --------------------------------------------------------------------------- loading


def _sensitive_list(sensitive, default):
    if sensitive is None:
        if default is None:
            raise ValueError(
                "--sensitive is required with --data: name the sensitive "
                "column(s), e.g. --sensitive sex or --sensitive sex,race."
            )
        return [default]
    if isinstance(sensitive, str):
        names = [c.strip() for c in sensitive.split(",") if c.strip()]
    else:
        names = [str(c) for c in sensitive]
    if not names:
        raise ValueError("--sensitive is empty; give a column name such as 'sex'.")
    if len(set(names)) != len(names):
        raise ValueError(f"--sensitive names a column twice: {names}.")
    return names


def _check_columns(frame, names, option, source):
    missing = [c for c in names if c not in frame.columns]
    if missing:
        cols = list(frame.columns)
        shown = cols if len(cols) <= 30 else cols[:30] + ["..."]
        raise ValueError(
            f"{option} names column(s) {missing} that {source} does not have; "
            f"its columns are {shown}."
        )


def _check_sensitive_values(frame, names):
    found = _continuous_columns(frame[list(names)])
    if found:
        c, k = found[0]
        raise ValueError(
            f"sensitive column {c!r} is numeric with {k} distinct values (more than "
            f"{MAX_SENSITIVE_VALUES}); bin it into a few groups first (e.g. "
            f"pandas.cut into age ranges) and pass the binned column."
        )


def _encode_groups(frame, names):
    parts = [frame[c].astype(str).to_numpy() for c in names]
    if len(parts) == 1:
        labels = parts[0]
    else:
        labels = np.array(
            [
                ", ".join(f"{n}={v}" for n, v in zip(names, row, strict=True))
                for row in zip(*parts, strict=True)
            ],
            dtype=object,
        )
    uniq, codes = np.unique(labels.astype(str), return_inverse=True)
    return codes.astype(np.int64), [str(u) for u in uniq]


def _binary_target(values, positive, target):
    values = pd.Series(values).reset_index(drop=True)
    distinct = pd.unique(values.dropna())
    if positive is None:
        as_set = set(distinct.tolist())
        if as_set <= {0, 1} or as_set <= {False, True}:
            if len(as_set) < 2:
                raise ValueError(
                    f"the target {target!r} has a single value {sorted(as_set)}; "
                    "a classifier needs two."
                )
            return values.astype(np.int64).to_numpy(), "1"
        shown = sorted(map(str, distinct))[:10]
        raise ValueError(
            f"the target {target!r} is not 0/1 (values {shown}); say which "
            f"value is the positive class with --positive VALUE."
        )
    text = values.astype(str)
    positive = str(positive)
    if positive not in set(text):
        shown = sorted(set(text))[:10]
        raise ValueError(
            f"--positive {positive!r} is not a value of the target {target!r}; "
            f"its values are {shown}."
        )
    y = (text == positive).to_numpy().astype(np.int64)
    if y.min() == y.max():
        raise ValueError(
            f"every row of the target {target!r} is {positive!r}; a classifier needs two classes."
        )
    return y, positive


def _read_file(path):
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--data {str(path)!r} is not a file.")
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        try:
            return pd.read_parquet(path)
        except ImportError as exc:
            raise ValueError(
                f"reading Parquet needs pyarrow ({exc}); install it with "
                "pip install 'skfairbilevel[parquet]', or give a CSV file."
            ) from None
    if name.endswith((".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz", ".txt")):
        try:
            return pd.read_csv(path)
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise ValueError(
                f"--data {str(path)!r} is not a readable CSV file: {str(exc).splitlines()[0]}"
            ) from None
    raise ValueError(f"--data {str(path)!r}: give a .csv or .parquet file (optionally .csv.gz).")


def load_table(dataset="adult", *, data=None, target=None, sensitive=None, positive=None):
    """A bundled dataset, or your own table, as a :class:`Table`.

    Parameters
    ----------
    dataset : str, default="adult"
        A key of :data:`DATASETS` (ignored when ``data`` is given).
    data : str, path or pandas.DataFrame, default=None
        Your own data: a CSV or Parquet file, or a DataFrame.
    target : str, default=None
        The target column of ``data`` (required with it).
    sensitive : str or list of str, default=None
        Sensitive column(s), comma-separated or a list; several give intersectional
        groups. None: the bundled dataset's default (required with ``data``).
    positive : str, default=None
        The target value of the positive class, when the target is not 0/1 (other
        values are the negative class).

    Raises
    ------
    ValueError
        For an unknown dataset, a missing column, a target that is not binary without
        ``positive``, or a numeric sensitive column with more than
        :data:`MAX_SENSITIVE_VALUES` distinct values.
    """
    from .. import datasets as ds

    if data is None:
        if target is not None or positive is not None:
            raise ValueError(
                "--target and --positive are for your own --data; the bundled datasets have theirs."
            )
        if dataset not in DATASETS:
            raise ValueError(f"unknown dataset {dataset!r}; choose from {list(DATASETS)}.")
        spec = DATASETS[dataset]
        names = _sensitive_list(sensitive, spec.sensitive)
        loader = getattr(ds, spec.loader)
        arg = names[0] if len(names) == 1 else names
        try:
            if dataset == "adult":
                train = loader(sensitive=arg, split="train", **spec.kwargs)
                test = loader(sensitive=arg, split="test", **spec.kwargs)
                X = pd.concat([train.data, test.data], ignore_index=True)
                y = np.concatenate([train.target.to_numpy(), test.target.to_numpy()])
                fixed_test = np.r_[
                    np.zeros(len(train.target), bool), np.ones(len(test.target), bool)
                ]
            else:
                bunch = loader(sensitive=arg, **spec.kwargs)
                X, y, fixed_test = bunch.data.reset_index(drop=True), bunch.target.to_numpy(), None
                train = bunch
        except (ValueError, TypeError) as exc:
            raise ValueError(f"--sensitive: {exc}") from None
        _check_sensitive_values(X, names)
        y, pos = _binary_target(y, None, dataset)
        groups, labels = _encode_groups(X, names)
        return Table(
            dataset,
            spec.description,
            X,
            y,
            names,
            groups,
            labels,
            fixed_test,
            target=str(train.target.name),
            positive=pos,
        )

    if target is None:
        raise ValueError("--target is required with --data: name the column to predict.")
    frame = data.copy() if isinstance(data, pd.DataFrame) else _read_file(data)
    source = "the data" if isinstance(data, pd.DataFrame) else f"--data {str(data)!r}"
    frame.columns = [str(c) for c in frame.columns]
    _check_columns(frame, [target], "--target", source)
    names = _sensitive_list(sensitive, None)
    _check_columns(frame, names, "--sensitive", source)
    if target in names:
        raise ValueError(f"--target {target!r} is also a --sensitive column.")
    notes = []
    n = len(frame)
    frame = frame.dropna().reset_index(drop=True)
    if len(frame) < n:
        notes.append(f"dropped {n - len(frame)} of {n} rows with missing values")
    if len(frame) < 20:
        raise ValueError(
            f"{source} has {len(frame)} complete rows; the comparison needs at least 20."
        )
    _check_sensitive_values(frame, names)
    y, pos = _binary_target(frame[target], positive, target)
    X = frame.drop(columns=[target])
    if X.shape[1] == len(names):
        raise ValueError(f"{source} has no feature besides the target and the sensitive column(s).")
    groups, labels = _encode_groups(X, names)
    if len(labels) < 2:
        raise ValueError(
            f"the sensitive column(s) {names} hold a single group "
            f"({labels[0]!r}); fairness needs at least two."
        )
    name = Path(data).name if not isinstance(data, pd.DataFrame) else "data"
    return Table(
        name,
        f"{name}: {target} = {pos}",
        X,
        y,
        names,
        groups,
        labels,
        None,
        target=target,
        positive=pos,
        notes=notes,
    )


# --------------------------------------------------------------------------- splits


@dataclass(frozen=True)
class Part:
    """Rows of one fit: the training rows and the rows it is evaluated on.

    ``evaluate`` maps a split name (``"validation"`` or ``"test"``) to row indices.
    ``fold`` is the cross-validation fold (None for the hold-out validation split and
    for the refit on all training rows).
    """

    seed: int
    train: np.ndarray
    evaluate: dict
    fold: int | None = None

    @property
    def key(self):
        """A hash of the rows (part of the cache key)."""
        h = hashlib.sha256(np.ascontiguousarray(self.train, dtype=np.int64).tobytes())
        for name in sorted(self.evaluate):
            h.update(name.encode())
            h.update(np.ascontiguousarray(self.evaluate[name], dtype=np.int64).tobytes())
        return h.hexdigest()[:24]


def _strata(y, groups):
    """Label x group; label alone when a cell has fewer than 2 rows."""
    key = y.astype(np.int64) * (int(groups.max()) + 1) + groups
    _, counts = np.unique(key, return_counts=True)
    return key if counts.min() >= 2 else y


def _take(idx, n, table, rng_seed):
    if n is None or len(idx) <= n:
        return np.sort(idx)
    keep, _ = train_test_split(
        idx, train_size=n, random_state=rng_seed, stratify=_strata(table.y[idx], table.groups[idx])
    )
    return np.sort(keep)


def make_splits(table, seed, *, quick=False, cv=None):
    """The parts (rows to fit and to evaluate) of one seed.

    Hold-out (``cv=None``): one part; it trains on the training rows and is evaluated
    on the validation and the test rows. ``cv=K``: the training and validation rows
    together are divided into K stratified folds; K parts are evaluated on their fold
    (``"validation"``), and one more trains on all of them and is evaluated on the test
    rows.

    Stratified by label x group (label alone when a cell is too small). Adult's test part
    is its official test file; elsewhere the test part is :data:`TEST_FRACTION` of the
    rows. The validation part is :data:`VALIDATION_FRACTION` of the rows (Adult: of its
    training file). ``quick`` keeps at most :data:`QUICK_ROWS` of each part.
    """
    n = len(table.y)
    idx = np.arange(n)
    strata = _strata(table.y, table.groups)
    if table.fixed_test is not None:
        test, rest = idx[table.fixed_test], idx[~table.fixed_test]
        val_share = VALIDATION_FRACTION
    else:
        rest, test = train_test_split(
            idx, test_size=TEST_FRACTION, random_state=seed, stratify=strata
        )
        val_share = VALIDATION_FRACTION / (1.0 - TEST_FRACTION)
    caps = QUICK_ROWS if quick else dict.fromkeys(QUICK_ROWS)
    test = _take(test, caps["test"], table, seed)
    if cv is None:
        train, val = train_test_split(
            rest,
            test_size=val_share,
            random_state=seed,
            stratify=_strata(table.y[rest], table.groups[rest]),
        )
        train, val = (
            _take(train, caps["train"], table, seed),
            _take(val, caps["validation"], table, seed),
        )
        return [Part(seed, train, {"validation": val, "test": test})]
    if quick:
        rest = _take(rest, caps["train"] + caps["validation"], table, seed)
    rest = np.sort(rest)
    folds = StratifiedKFold(cv, shuffle=True, random_state=seed)
    r_strata = _strata(table.y[rest], table.groups[rest])
    _, counts = np.unique(r_strata, return_counts=True)
    if counts.min() < cv:
        r_strata = table.y[rest]
    parts = [
        Part(seed, rest[tr], {"validation": rest[va]}, fold=k)
        for k, (tr, va) in enumerate(folds.split(rest, r_strata))
    ]
    parts.append(Part(seed, rest, {"test": test}))
    return parts


# --------------------------------------------------------------------------- arrays


@dataclass
class Prepared:
    """The float32 arrays of one part (what a fit receives)."""

    X: dict  # split name ("train", "validation", "test") -> float32 array
    y: dict
    groups: dict
    X_sensitive: dict | None = None  # the same with the encoded sensitive columns first
    n_features: int = 0


def _sensitive_block(table):
    cols = []
    for c in table.sensitive:
        col = table.X[c]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            cols.append(col.to_numpy(np.float32))
        else:
            _, codes = np.unique(col.astype(str).to_numpy(), return_inverse=True)
            cols.append(codes.astype(np.float32))
    return np.column_stack(cols)


def prepare(table, part, *, sensitive_block=False):
    """Fit the preprocessing on the part's training rows; float32 arrays of every split.

    The sensitive columns are never among the features. With ``sensitive_block``,
    ``X_sensitive`` holds the same arrays with the sensitive columns prepended, encoded
    (categorical: codes of the sorted values; numeric: as they are), for the methods that
    take them as inputs.
    """
    from ..datasets import make_preprocessor

    pre = make_preprocessor(table.X, sensitive=list(table.sensitive), keep_sensitive=False)
    pre.fit(table.X.iloc[part.train])
    rows = {"train": part.train, **part.evaluate}
    X = {
        k: np.ascontiguousarray(pre.transform(table.X.iloc[v]).to_numpy(np.float32))
        for k, v in rows.items()
    }
    out = Prepared(
        X=X,
        y={k: table.y[v] for k, v in rows.items()},
        groups={k: table.groups[v] for k, v in rows.items()},
        n_features=X["train"].shape[1],
    )
    if sensitive_block:
        block = _sensitive_block(table)
        out.X_sensitive = {
            k: np.ascontiguousarray(np.hstack([block[v], X[k]])) for k, v in rows.items()
        }
    return out
