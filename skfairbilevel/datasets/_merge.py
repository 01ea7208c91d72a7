"""Merging of small sensitive groups (the rule used by BADR for Credit ``EDUCATION``)."""

from numbers import Integral

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike


def _sorted_labels(values):
    """Distinct labels of ``values`` in sorted order (by ``str`` if types do not compare)."""
    labels = list(pd.unique(pd.Series(values, dtype=object)))
    try:
        return sorted(labels)
    except TypeError:
        return sorted(labels, key=str)


def merge_smallest_groups(
    groups: ArrayLike, n_groups: int, *, return_mapping: bool = False
) -> np.ndarray | tuple[np.ndarray, dict]:
    """Merge the two smallest groups, repeatedly, until ``n_groups`` groups remain.

    This is the rule BADR uses to turn a sensitive attribute with many small groups
    (e.g. the seven ``EDUCATION`` codes of the credit-default data) into a few groups of
    workable size: count the rows of every group, merge the two groups with the fewest
    rows into one, and repeat until ``n_groups`` groups are left.

    Parameters
    ----------
    groups : array-like of shape (n_samples,)
        Group label of every row (list, numpy array, pandas Series or Categorical).
        Missing values are not allowed.
    n_groups : int
        Number of groups to keep, at least 1. If the data already have ``n_groups``
        groups or fewer, nothing is merged.
    return_mapping : bool, default=False
        Also return the dict mapping every original label to its new label, to apply
        the same merge to other data (e.g. a test set).

    Returns
    -------
    merged : ndarray of str of shape (n_samples,), or pandas.Series
        New label of every row. A merged group is named by its original labels, in
        sorted order, joined with ``"+"`` (e.g. ``"0+4+5+6"``); an unmerged group keeps
        its label, as a string (``2`` becomes ``"2"``). When ``groups`` is a Series, a
        Series with the same index and name is returned.
    mapping : dict
        Only if ``return_mapping`` is True: ``{original label: new label}``.

    Raises
    ------
    TypeError
        If ``n_groups`` is not an integer.
    ValueError
        If ``n_groups`` < 1, ``groups`` is not 1-D, or ``groups`` has missing values.

    Notes
    -----
    Ties are broken deterministically: among groups of equal size, the group whose
    smallest original label sorts first is merged first. Labels are sorted by value, or
    by their string form when they are of types that cannot be compared.

    Examples
    --------
    >>> from skfairbilevel.datasets import merge_smallest_groups
    >>> groups = [1] * 50 + [2] * 30 + [3] * 10 + [4] * 5 + [5] * 3
    >>> labels, mapping = merge_smallest_groups(groups, 3, return_mapping=True)
    >>> mapping
    {1: '1', 2: '2', 3: '3+4+5', 4: '3+4+5', 5: '3+4+5'}
    >>> sorted(set(labels))
    ['1', '2', '3+4+5']
    """
    if isinstance(n_groups, bool) or not isinstance(n_groups, Integral):
        raise TypeError(f"n_groups must be an integer >= 1; got {n_groups!r}.")
    if n_groups < 1:
        raise ValueError(f"n_groups must be at least 1; got {n_groups}.")

    index = name = None
    if isinstance(groups, pd.Series):
        index, name = groups.index, groups.name
    values = np.asarray(groups, dtype=object)
    if values.ndim != 1:
        raise ValueError(
            f"groups must be 1-D (one label per row); got an array of shape {values.shape}. "
            "Combine several sensitive columns into one label first."
        )
    if pd.isna(pd.Series(values, dtype=object)).any():
        raise ValueError("groups has missing values; fill or drop them before merging.")

    labels = _sorted_labels(values)
    rank = {label: i for i, label in enumerate(labels)}
    counts = pd.Series(values, dtype=object).value_counts()
    # every current group: (row count, its original labels in sorted order)
    current = [(int(counts[label]), [label]) for label in labels]
    while len(current) > n_groups:
        current.sort(key=lambda g: (g[0], rank[g[1][0]]))
        (n_a, members_a), (n_b, members_b) = current[0], current[1]
        members = sorted(members_a + members_b, key=rank.__getitem__)
        current = [(n_a + n_b, members)] + current[2:]

    mapping = {}
    for _, members in current:
        new = "+".join(str(m) for m in members)
        for m in members:
            mapping[m] = new
    mapping = {label: mapping[label] for label in labels}

    merged = np.array([mapping[v] for v in values], dtype=object)
    if index is not None:
        merged = pd.Series(merged, index=index, name=name, dtype=object)
    if return_mapping:
        return merged, mapping
    return merged
