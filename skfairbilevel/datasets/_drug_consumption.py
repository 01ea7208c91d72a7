"""Loader of the UCI Drug Consumption (Quantified) dataset."""

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from ._base import check_bool, check_sensitive, load_descr, make_bunch, read_bundled

SUBSTANCES = (
    "Alcohol", "Amphet", "Amyl", "Benzos", "Caff", "Cannabis", "Choc", "Coke", "Crack",
    "Ecstasy", "Heroin", "Ketamine", "Legalh", "LSD", "Meth", "Mushrooms", "Nicotine",
    "Semer", "VSA",
)  # fmt: skip

_FEATURES = (
    "Age", "Gender", "Education", "Country", "Ethnicity",
    "Nscore", "Escore", "Oscore", "Ascore", "Cscore", "Impulsive", "SS",
)  # fmt: skip

# quantified code -> label, in the natural order of the categories (UCI variable list;
# every code was checked against the category counts of the bundled file)
_DECODE = {
    "Age": [
        (-0.95197, "18-24"),
        (-0.07854, "25-34"),
        (0.49788, "35-44"),
        (1.09449, "45-54"),
        (1.82213, "55-64"),
        (2.59171, "65+"),
    ],
    "Gender": [
        (0.48246, "Female"),
        (-0.48246, "Male"),
    ],
    "Education": [
        (-2.43591, "left school before 16"),
        (-1.73790, "left at 16"),
        (-1.43719, "left at 17"),
        (-1.22751, "left at 18"),
        (-0.61113, "some college, no degree"),
        (-0.05921, "professional certificate/diploma"),
        (0.45468, "university degree"),
        (1.16365, "masters"),
        (1.98437, "doctorate"),
    ],
    "Country": [
        (-0.09765, "Australia"),
        (0.24923, "Canada"),
        (0.21128, "Ireland"),
        (-0.46841, "New Zealand"),
        (-0.28519, "Other"),
        (0.96082, "UK"),
        (-0.57009, "USA"),
    ],
    "Ethnicity": [
        (-0.50212, "Asian"),
        (-1.10702, "Black"),
        (1.90725, "Mixed-Black/Asian"),
        (0.12600, "Mixed-White/Asian"),
        (-0.22166, "Mixed-White/Black"),
        (0.11440, "Other"),
        (-0.31685, "White"),
    ],
}

# usage class CL0..CL6 -> class index, for each supported n_classes
_RECODE = {
    None: ([0, 1, 2, 3, 4, 5, 6], [f"CL{k}" for k in range(7)]),
    7: ([0, 1, 2, 3, 4, 5, 6], [f"CL{k}" for k in range(7)]),
    # FACIMS: never / used, not in the last year / used in the last year, not today /
    # used in the last day. Found from the published class counts 34/102/1,243/505 of
    # Alcohol: CL0 = 34, CL1+CL2 = 34+68 = 102, CL3+CL4+CL5 = 198+287+759 = 1,244,
    # CL6 = 505 (the only contiguous merge giving these counts; 1,244 vs 1,243 because
    # FACIMS used 1,884 rows, the UCI file has 1,885).
    4: ([0, 1, 1, 2, 2, 2, 3], ["CL0", "CL1-CL2", "CL3-CL5", "CL6"]),
    2: ([0, 0, 1, 1, 1, 1, 1], ["non-user", "user"]),
}


def _decode(codes, table, column):
    """Map quantified float codes to a categorical of labels (categories in table order)."""
    values = np.asarray(codes, dtype=float)
    ref = np.array([c for c, _ in table])
    labels = [lab for _, lab in table]
    dist = np.abs(values[:, None] - ref[None, :])
    idx = dist.argmin(axis=1)
    if (dist[np.arange(len(values)), idx] > 1e-4).any():  # pragma: no cover - data check
        raise RuntimeError(f"unexpected quantified code in column {column!r} of the bundled file")
    return pd.Categorical.from_codes(idx, categories=labels)


def load_drug_consumption(
    *,
    target: str = "Alcohol",
    sensitive: str | list[str] = "Education",
    n_classes: int | None = None,
    decode: bool = True,
    return_X_y: bool = False,
) -> Bunch | tuple[pd.DataFrame, pd.Series]:
    """Load the UCI Drug Consumption (Quantified) dataset (bundled, CC BY 4.0).

    Classification of the usage of a substance (19 to choose from) from demographics and
    personality scores of 1,885 respondents.

    ================  ==========================================
    Classes           7 usage classes CL0..CL6, or 4 or 2 (``n_classes``)
    Samples total     1,885
    Features          12 (5 demographic, 7 personality scores)
    Sensitive         ``Education``, ``Gender``, ``Ethnicity``, ``Age``, ``Country``
    ================  ==========================================

    Usage classes: CL0 = never used, CL1 = used over a decade ago, CL2 = in the last
    decade, CL3 = in the last year, CL4 = in the last month, CL5 = in the last week,
    CL6 = in the last day.

    Parameters
    ----------
    target : str, default="Alcohol"
        The substance whose usage class is the target: one of ``Alcohol, Amphet, Amyl,
        Benzos, Caff, Cannabis, Choc, Coke, Crack, Ecstasy, Heroin, Ketamine, Legalh,
        LSD, Meth, Mushrooms, Nicotine, Semer, VSA`` (``Semer`` is a fictitious drug,
        meant to detect over-claimers). The other 18 substance columns are not returned.
    sensitive : str or list of str, default="Education"
        Column(s) of the data holding the sensitive feature(s): usually ``"Education"``,
        ``"Gender"``, ``"Ethnicity"``, ``"Age"`` or ``"Country"``, or a list of them.
        The columns stay in ``data``.
    n_classes : {None, 7, 4, 2}, default=None
        How the seven usage classes are grouped:

        * None or 7: the classes CL0..CL6 as 0..6.
        * 4: the FACIMS recoding: 0 = CL0, 1 = CL1-CL2, 2 = CL3-CL5, 3 = CL6. For
          ``Alcohol`` this gives 34 / 102 / 1,244 / 505 rows (FACIMS reports
          34 / 102 / 1,243 / 505 on 1,884 rows).
        * 2: 1 = "user" (CL2 or more: used in the last decade), 0 = "non-user".
    decode : bool, default=True
        Replace the quantified real-valued codes of ``Age``, ``Gender``, ``Education``,
        ``Country`` and ``Ethnicity`` by their labels (``category`` dtype, categories in
        their natural order, e.g. ``"left school before 16"``, ``"left at 16"``, ...,
        ``"doctorate"``). With False the float codes of the file are kept.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch. The sensitive column(s) are still
        in ``data``.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the fields:

        data : pandas.DataFrame of shape (1885, 12)
            ``Age, Gender, Education, Country, Ethnicity`` (categories, or float codes
            with ``decode=False``) and the float scores ``Nscore, Escore, Oscore,
            Ascore, Cscore, Impulsive, SS``. The ``ID`` column is dropped.
        target : pandas.Series named after ``target``
            Class index 0..K-1 (``int64``).
        sensitive_features : pandas.Series or pandas.DataFrame
            The ``sensitive`` column(s): a Series for one name, a DataFrame for a list.
        frame : pandas.DataFrame
            ``data`` and ``target`` side by side.
        feature_names : list of str
            Columns of ``data``.
        target_names : ndarray of str
            Name of every class, indexed by the target value (e.g. ``"CL1-CL2"``).
        DESCR : str
            Description and attribution of the dataset.

    (data, target) : tuple if ``return_X_y`` is True
        The DataFrame ``data`` and the Series ``target`` described above.

    Raises
    ------
    ValueError
        If ``target``, ``sensitive`` or ``n_classes`` is not one of the values above.

    References
    ----------
    .. [1] E. Fehrman, V. Egan and E. Mirkes, "Drug Consumption (Quantified)", UCI
       Machine Learning Repository, https://doi.org/10.24432/C5TC7S (CC BY 4.0).
    .. [2] E. Fehrman, A. K. Muhammad, E. M. Mirkes, V. Egan and A. N. Gorban, "The Five
       Factor Model of personality and evaluation of drug consumption risk", 2017.

    Examples
    --------
    >>> from skfairbilevel.datasets import load_drug_consumption
    >>> bunch = load_drug_consumption(n_classes=4)
    >>> bunch.target.value_counts().sort_index().tolist()
    [34, 102, 1244, 505]
    >>> list(bunch.target_names)
    ['CL0', 'CL1-CL2', 'CL3-CL5', 'CL6']
    """
    if not isinstance(target, str) or target not in SUBSTANCES:
        raise ValueError(
            f"target must be the name of a substance column, one of {list(SUBSTANCES)}; "
            f"got {target!r}."
        )
    if isinstance(n_classes, bool) or n_classes not in _RECODE:
        raise ValueError(f"n_classes must be None, 7, 4 or 2; got {n_classes!r}.")
    decode = check_bool(decode, "decode")
    return_X_y = check_bool(return_X_y, "return_X_y")

    frame = read_bundled("drug_consumption.csv.gz")
    data = frame[list(_FEATURES)].copy()
    if decode:
        for column, table in _DECODE.items():
            data[column] = _decode(data[column], table, column)

    level = frame[target].astype(str).str.slice(2).astype("int64").to_numpy()
    mapping, target_names = _RECODE[n_classes]
    y = pd.Series(np.asarray(mapping, dtype="int64")[level], name=target)

    names, single = check_sensitive(sensitive, data.columns)
    return make_bunch(
        data,
        y,
        sensitive_names=names,
        single=single,
        target_names=target_names,
        descr=load_descr("drug_consumption"),
        return_X_y=return_X_y,
    )
