"""Loader of the UCI Bank Marketing (bank-full) dataset."""

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from ._base import check_bool, check_sensitive, load_descr, make_bunch, read_bundled

AGE_GROUPS = ("<25", "25-60", ">60")


def load_bank_marketing(
    *,
    sensitive: str | list[str] = "age_group",
    drop_duration: bool = True,
    return_X_y: bool = False,
) -> Bunch | tuple[pd.DataFrame, pd.Series]:
    """Load the UCI Bank Marketing dataset, file ``bank-full`` (bundled, CC BY 4.0).

    Binary classification: does a client of a Portuguese bank subscribe a term deposit
    after a phone campaign? 45,211 rows, 5,289 subscriptions (11.7%).

    ================  ==========================================
    Classes           2 (1 = ``yes``: 5,289 of 45,211, 11.7%)
    Samples total     45,211
    Features          16 (17 with ``drop_duration=False``)
    Sensitive         ``age_group``, ``marital`` (also ``age``)
    ================  ==========================================

    A column ``age_group`` is derived from ``age`` and appended: ``"<25"`` (age < 25,
    809 rows), ``"25-60"`` (25 to 60, 43,214 rows), ``">60"`` (over 60, 1,188 rows).
    ``pdays`` = -1 means the client was not contacted in a previous campaign.

    Parameters
    ----------
    sensitive : str or list of str, default="age_group"
        Column(s) of the data holding the sensitive feature(s), e.g. ``"age_group"``,
        ``"marital"`` or ``["age_group", "marital"]``. The columns stay in ``data``.
    drop_duration : bool, default=True
        Drop ``duration``, the length of the last call: it is only known after the call
        and leaks the target (UCI advises dropping it for realistic models).
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch. The sensitive column(s) are still
        in ``data``.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the fields:

        data : pandas.DataFrame of shape (45211, 16)
            ``age, job, marital, education, default, balance, housing, loan, contact,
            day, month, (duration,) campaign, pdays, previous, poutcome, age_group``;
            string columns as ``category``, numbers as ``int64``.
        target : pandas.Series named ``y``
            1 = subscribed (``yes``), 0 = not (``int64``).
        sensitive_features : pandas.Series or pandas.DataFrame
            The ``sensitive`` column(s): a Series for one name, a DataFrame for a list.
        frame : pandas.DataFrame
            ``data`` and ``target`` side by side.
        feature_names : list of str
            Columns of ``data``.
        target_names : ndarray of str
            ``["no", "yes"]``, indexed by the target value.
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
    .. [1] S. Moro, P. Rita and P. Cortez, "Bank Marketing", UCI Machine Learning
       Repository, https://doi.org/10.24432/C5K306 (CC BY 4.0).
    .. [2] S. Moro, P. Cortez and P. Rita, "A data-driven approach to predict the
       success of bank telemarketing", Decision Support Systems 62, 2014.

    Examples
    --------
    >>> from skfairbilevel.datasets import load_bank_marketing
    >>> bunch = load_bank_marketing()
    >>> bunch.sensitive_features.value_counts().sort_index().to_dict()
    {'<25': 809, '25-60': 43214, '>60': 1188}
    """
    drop_duration = check_bool(drop_duration, "drop_duration")
    return_X_y = check_bool(return_X_y, "return_X_y")
    frame = read_bundled("bank_marketing_full.csv.gz")
    target = (frame["y"] == "yes").astype("int64").rename("y")
    data = frame.drop(columns=["y"] + (["duration"] if drop_duration else []))
    age = data["age"].to_numpy()
    codes = np.where(age < 25, 0, np.where(age <= 60, 1, 2))
    data["age_group"] = pd.Categorical.from_codes(codes, categories=list(AGE_GROUPS))
    names, single = check_sensitive(sensitive, data.columns)
    return make_bunch(
        data,
        target,
        sensitive_names=names,
        single=single,
        target_names=["no", "yes"],
        descr=load_descr("bank_marketing"),
        return_X_y=return_X_y,
    )
