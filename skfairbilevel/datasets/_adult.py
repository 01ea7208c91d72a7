"""Loader of the UCI Adult (Census Income) dataset."""

import pandas as pd
from sklearn.utils import Bunch

from ._base import check_bool, check_sensitive, load_descr, make_bunch, read_bundled

_SPLITS = (None, "train", "test")


def load_adult(
    *,
    sensitive: str | list[str] = "sex",
    split: str | None = None,
    drop_missing: bool = True,
    drop_fnlwgt: bool = True,
    return_X_y: bool = False,
) -> Bunch | tuple[pd.DataFrame, pd.Series]:
    """Load the UCI Adult (Census Income) dataset (bundled, CC BY 4.0).

    Binary classification: does a person earn more than $50K a year? 48,842 rows (the
    official 32,561 train + 16,281 test), 45,222 once rows with a missing value are
    dropped (30,162 train + 15,060 test).

    ================  ==========================================
    Classes           2 (1 = ``>50K``: 11,208 of 45,222, 24.8%)
    Samples total     45,222 (48,842 with ``drop_missing=False``)
    Features          13 (14 with ``drop_fnlwgt=False``)
    Sensitive         ``sex``, ``race`` (also ``age``)
    ================  ==========================================

    Read more in the ``DESCR`` field of the returned Bunch.

    Parameters
    ----------
    sensitive : str or list of str, default="sex"
        Column(s) of the data holding the sensitive feature(s), e.g. ``"sex"``,
        ``"race"`` or ``["sex", "race"]`` (intersectional groups). The columns stay in
        ``data``; they are also returned as ``sensitive_features``.
    split : {None, "train", "test"}, default=None
        ``"train"`` keeps the rows of ``adult.data``, ``"test"`` those of ``adult.test``
        (the official split); None keeps both, train first.
    drop_missing : bool, default=True
        Drop every row with a missing value (``?`` in the original files, which occurs
        in ``workclass``, ``occupation`` and ``native-country``). With False those rows
        are kept and the missing entries are NaN.
    drop_fnlwgt : bool, default=True
        Drop ``fnlwgt``, the census sampling weight, which is not a property of the
        person.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch. The sensitive column(s) are still
        in ``data``.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the fields:

        data : pandas.DataFrame
            The features, sensitive columns included. String columns have the pandas
            ``category`` dtype (categories: the sorted values of the whole file, so both
            splits share dtypes); numeric columns are ``int64``.
        target : pandas.Series named ``income``
            1 if the income is ``>50K``, else 0 (``int64``).
        sensitive_features : pandas.Series or pandas.DataFrame
            The ``sensitive`` column(s): a Series for one name, a DataFrame for a list.
        frame : pandas.DataFrame
            ``data`` and ``target`` side by side.
        feature_names : list of str
            Columns of ``data``.
        target_names : ndarray of str
            ``["<=50K", ">50K"]``, indexed by the target value.
        split : pandas.Series named ``split``
            ``"train"`` or ``"test"`` for every row (category dtype).
        DESCR : str
            Description and attribution of the dataset.

    (data, target) : tuple if ``return_X_y`` is True
        The DataFrame ``data`` and the Series ``target`` described above.

    Raises
    ------
    ValueError
        If ``sensitive`` names an unknown column or ``split`` is not one of the values
        above.

    See Also
    --------
    make_preprocessor : Encode the returned frame for an estimator.

    References
    ----------
    .. [1] B. Becker and R. Kohavi, "Adult", UCI Machine Learning Repository,
       https://doi.org/10.24432/C5XW20 (CC BY 4.0).
    .. [2] R. Kohavi, "Scaling Up the Accuracy of Naive-Bayes Classifiers: a
       Decision-Tree Hybrid", KDD 1996.

    Examples
    --------
    >>> from skfairbilevel.datasets import load_adult
    >>> bunch = load_adult(sensitive="sex")
    >>> bunch.data.shape
    (45222, 13)
    >>> bunch.sensitive_features.value_counts().to_dict()
    {'Male': 30527, 'Female': 14695}
    >>> X, y = load_adult(split="test", return_X_y=True)
    >>> X.shape, int(y.sum())
    ((15060, 13), 3700)
    """
    if split not in _SPLITS:
        raise ValueError(f"split must be None, 'train' or 'test'; got {split!r}.")
    drop_missing = check_bool(drop_missing, "drop_missing")
    drop_fnlwgt = check_bool(drop_fnlwgt, "drop_fnlwgt")
    return_X_y = check_bool(return_X_y, "return_X_y")

    frame = read_bundled("adult.csv.gz", na_values=("?",))
    if split is not None:
        frame = frame[frame["split"] == split]
    if drop_missing:
        frame = frame.dropna()
    frame = frame.reset_index(drop=True)

    target = (frame["income"] == ">50K").astype("int64").rename("income")
    split_col = frame["split"].copy()
    drop = ["income", "split"] + (["fnlwgt"] if drop_fnlwgt else [])
    data = frame.drop(columns=drop)

    names, single = check_sensitive(sensitive, data.columns)
    return make_bunch(
        data,
        target,
        sensitive_names=names,
        single=single,
        target_names=["<=50K", ">50K"],
        descr=load_descr("adult"),
        return_X_y=return_X_y,
        split=split_col,
    )
