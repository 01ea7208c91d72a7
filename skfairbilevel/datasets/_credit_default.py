"""Loader of the UCI Default of Credit Card Clients (Taiwan) dataset."""

import pandas as pd
from sklearn.utils import Bunch

from ._base import check_bool, check_sensitive, load_descr, make_bunch, read_bundled


def load_credit_default(
    *, sensitive: str | list[str] = "SEX", return_X_y: bool = False
) -> Bunch | tuple[pd.DataFrame, pd.Series]:
    """Load the UCI Default of Credit Card Clients dataset (bundled, CC BY 4.0).

    Binary classification: does a Taiwanese credit-card client default on the next
    month's payment? 30,000 rows, 23 features, 6,636 defaults (22.1%).

    ================  ==========================================
    Classes           2 (1 = default: 6,636 of 30,000, 22.1%)
    Samples total     30,000
    Features          23 (all integer-coded)
    Sensitive         ``SEX``, ``EDUCATION``, ``MARRIAGE``, ``AGE``
    ================  ==========================================

    The columns keep the integer codes of the original file. The codes of the usual
    sensitive columns are:

    * ``SEX``: 1 = male (11,888), 2 = female (18,112).
    * ``EDUCATION``: 1 = graduate school (10,585), 2 = university (14,030),
      3 = high school (4,917), 4 = others (123), 5 and 6 = unknown (280, 51),
      0 = undocumented (14).
    * ``MARRIAGE``: 1 = married (13,659), 2 = single (15,964), 3 = others (323),
      0 = undocumented (54).
    * ``AGE``: years.

    Because they are integers, :func:`make_preprocessor` treats these columns as numeric
    unless told otherwise: pass them in ``categorical=`` (or as ``sensitive=``) to
    one-hot encode them. :func:`merge_smallest_groups` merges the small ``EDUCATION``
    groups as BADR does.

    Parameters
    ----------
    sensitive : str or list of str, default="SEX"
        Column(s) of the data holding the sensitive feature(s), e.g. ``"SEX"``,
        ``"EDUCATION"`` or ``["SEX", "MARRIAGE"]``. The columns stay in ``data``.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch. The sensitive column(s) are still
        in ``data``.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the fields:

        data : pandas.DataFrame of shape (30000, 23)
            ``LIMIT_BAL, SEX, EDUCATION, MARRIAGE, AGE, PAY_0, PAY_2..PAY_6,
            BILL_AMT1..BILL_AMT6, PAY_AMT1..PAY_AMT6`` (``int64``). The ``ID`` column
            of the file is dropped.
        target : pandas.Series named ``default``
            1 = default next month, 0 = no default (``int64``). In the file this column
            is called ``default payment next month``.
        sensitive_features : pandas.Series or pandas.DataFrame
            The ``sensitive`` column(s): a Series for one name, a DataFrame for a list.
        frame : pandas.DataFrame
            ``data`` and ``target`` side by side.
        feature_names : list of str
            Columns of ``data``.
        target_names : ndarray of str
            ``["no default", "default"]``, indexed by the target value.
        DESCR : str
            Description and attribution of the dataset.

    (data, target) : tuple if ``return_X_y`` is True
        The DataFrame ``data`` and the Series ``target`` described above.

    Raises
    ------
    ValueError
        If ``sensitive`` names an unknown column.

    See Also
    --------
    merge_smallest_groups : Merge small groups such as rare ``EDUCATION`` codes.

    References
    ----------
    .. [1] I.-C. Yeh, "Default of Credit Card Clients", UCI Machine Learning Repository,
       https://doi.org/10.24432/C55S3H (CC BY 4.0).
    .. [2] I.-C. Yeh and C.-H. Lien, "The comparisons of data mining techniques for the
       predictive accuracy of probability of default of credit card clients", Expert
       Systems with Applications 36(2), 2009.

    Examples
    --------
    >>> from skfairbilevel.datasets import load_credit_default
    >>> bunch = load_credit_default(sensitive="EDUCATION")
    >>> bunch.data.shape, int(bunch.target.sum())
    ((30000, 23), 6636)
    """
    return_X_y = check_bool(return_X_y, "return_X_y")
    frame = read_bundled("default_of_credit_card_clients.csv.gz")
    target = frame["default payment next month"].astype("int64").rename("default")
    data = frame.drop(columns=["ID", "default payment next month"])
    names, single = check_sensitive(sensitive, data.columns)
    return make_bunch(
        data,
        target,
        sensitive_names=names,
        single=single,
        target_names=["no default", "default"],
        descr=load_descr("credit_default"),
        return_X_y=return_X_y,
    )
