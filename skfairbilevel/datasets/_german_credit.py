"""Loader of the UCI Statlog (German Credit Data) dataset."""

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from ._base import check_bool, check_sensitive, load_descr, make_bunch, read_bundled

_FEMALE_CODES = ("A92", "A95")  # personal_status_sex codes of women (german.doc)


def load_german_credit(
    *, sensitive: str | list[str] = "sex", return_X_y: bool = False
) -> Bunch | tuple[pd.DataFrame, pd.Series]:
    """Load the UCI Statlog German Credit dataset (bundled, CC BY 4.0).

    Binary classification: is a loan applicant a good or a bad credit risk? 1,000 rows,
    700 good and 300 bad.

    ================  ==========================================
    Classes           2 (1 = good: 700, 0 = bad: 300)
    Samples total     1,000
    Features          22 (the 20 attributes + derived ``sex`` and ``age_group``)
    Sensitive         ``sex``, ``age_group`` (also ``foreign_worker``)
    ================  ==========================================

    The 20 attributes keep the names and codes of the symbolic ``german.data`` file
    (``A11``, ``A34``, ...; their meaning is in UCI's ``german.doc``). Two columns are
    derived and appended:

    * ``sex``: ``"female"`` if ``personal_status_sex`` is A92 or A95, else ``"male"``
      (310 female, 690 male). ``personal_status_sex`` stays in the data, so drop it
      too when ``sex`` must not reach a model.
    * ``age_group``: ``"young"`` if ``age`` < 25, else ``"old"`` (149 young, 851 old).

    Parameters
    ----------
    sensitive : str or list of str, default="sex"
        Column(s) of the data holding the sensitive feature(s), e.g. ``"sex"``,
        ``"age_group"``, ``"foreign_worker"`` or ``["sex", "age_group"]``. The columns
        stay in ``data``.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch. The sensitive column(s) are still
        in ``data``.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the fields:

        data : pandas.DataFrame of shape (1000, 22)
            The attributes (``category`` for the coded ones, ``int64`` for the numeric
            ones) and the derived ``sex`` and ``age_group`` (``category``).
        target : pandas.Series named ``credit_risk``
            1 = good, 0 = bad (``int64``). The file codes good as 1 and bad as 2.
        sensitive_features : pandas.Series or pandas.DataFrame
            The ``sensitive`` column(s): a Series for one name, a DataFrame for a list.
        frame : pandas.DataFrame
            ``data`` and ``target`` side by side.
        feature_names : list of str
            Columns of ``data``.
        target_names : ndarray of str
            ``["bad", "good"]``, indexed by the target value.
        DESCR : str
            Description and attribution of the dataset.

    (data, target) : tuple if ``return_X_y`` is True
        The DataFrame ``data`` and the Series ``target`` described above.

    Raises
    ------
    ValueError
        If ``sensitive`` names an unknown column.

    References
    ----------
    .. [1] H. Hofmann, "Statlog (German Credit Data)", UCI Machine Learning Repository,
       https://doi.org/10.24432/C5NC77 (CC BY 4.0).

    Examples
    --------
    >>> from skfairbilevel.datasets import load_german_credit
    >>> bunch = load_german_credit(sensitive="sex")
    >>> bunch.sensitive_features.value_counts().to_dict()
    {'male': 690, 'female': 310}
    """
    return_X_y = check_bool(return_X_y, "return_X_y")
    frame = read_bundled("german_credit.csv.gz")
    target = (frame["credit_risk"] == 1).astype("int64").rename("credit_risk")
    data = frame.drop(columns=["credit_risk"])
    is_female = data["personal_status_sex"].astype(str).isin(_FEMALE_CODES).to_numpy()
    data["sex"] = pd.Categorical(
        np.where(is_female, "female", "male"), categories=["female", "male"]
    )
    data["age_group"] = pd.Categorical(
        np.where(data["age"].to_numpy() < 25, "young", "old"), categories=["young", "old"]
    )
    names, single = check_sensitive(sensitive, data.columns)
    return make_bunch(
        data,
        target,
        sensitive_names=names,
        single=single,
        target_names=["bad", "good"],
        descr=load_descr("german_credit"),
        return_X_y=return_X_y,
    )
