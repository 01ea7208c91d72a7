"""The two-dimensional "Unfair2D" data of Fast & Fair (Minch, Vu, Warren, 2024)."""

from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["make_unfair_2d"]


def _check_count(value, name):
    if isinstance(value, bool) or not isinstance(value, Integral | np.integer):
        raise TypeError(f"{name} must be an int >= 1; got {value!r}.")
    if value < 1:
        raise ValueError(f"{name} must be an int >= 1; got {value}.")
    return int(value)


def _check_float(value, name, low=None, high=None):
    if (
        isinstance(value, bool)
        or not isinstance(value, Real | np.floating | np.integer)
        or not np.isfinite(value)
    ):
        raise TypeError(f"{name} must be a finite real number; got {value!r}.")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be in [{low}, {high}]; got {value}.")
    return float(value)


def make_unfair_2d(
    n_per_class: int = 250,
    *,
    alpha: float = 0.1,
    p1: float = 0.5,
    p2: float = 0.5,
    random_state: int | np.random.RandomState | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Generate the Unfair2D data of Fast & Fair: two classes in the unit square, with a
    group-dependent shift that makes a linear classifier unfair.

    The generative process:

    1. points are drawn uniformly in ``[0, 1]^2``; class 0 is made of the first
       ``n_per_class`` points with ``x1 + x2 < 1``, class 1 of the first ``n_per_class``
       points with ``x1 + x2 >= 1`` (so without the shift the classes are separated by
       the anti-diagonal);
    2. within class 0, ``floor(p1 * n_per_class)`` points chosen at random get
       ``s = 1``; within class 1, ``floor(p2 * n_per_class)`` points get ``s = 1``; the
       others have ``s = 0``;
    3. the *unfair shift*: points with ``s = 0, y = 1`` move by ``-alpha * (1, 1)``
       (towards class 0: group 0 is disadvantaged) and points with ``s = 1, y = 0``
       move by ``+alpha * (1, 1)`` (towards class 1: group 1 is advantaged);
    4. the rows are shuffled.

    Parameters
    ----------
    n_per_class : int, default=250
        Rows per class; ``2 * n_per_class`` rows in total.
    alpha : float, default=0.1
        Size of the shift along ``(1, 1)``. 0 gives fair (separable) data; a negative
        value reverses which group is advantaged.
    p1 : float in [0, 1], default=0.5
        Fraction of class 0 in group ``s = 1``.
    p2 : float in [0, 1], default=0.5
        Fraction of class 1 in group ``s = 1``.
    random_state : int, RandomState instance or None, default=None
        Seed of the draws.

    Returns
    -------
    X : ndarray of shape (2 * n_per_class, 2)
        The points (float64).
    y : ndarray of shape (2 * n_per_class,)
        Class labels 0/1 (int64).
    s : ndarray of shape (2 * n_per_class,)
        Sensitive group 0/1 (int64).

    Notes
    -----
    Differences from the reference ``generate_unfair_data`` (fast-n-fair, commit
    91f6713): it uses numpy and ``random_state`` instead of the global torch RNG; when
    the ``4 * n_per_class`` uniform points do not hold ``n_per_class`` of each class
    (likely only for tiny ``n_per_class``), more points are drawn instead of returning
    fewer rows; and ``floor(p * n_per_class)`` points get ``s = 1`` even when that is
    0 (the reference always gives at least one point ``s = 1``).

    The reference experiments draw ``n_per_class=250`` (the first 200 rows train, the
    other 300 validate) and a fresh test set of ``n_per_class=50``.

    References
    ----------
    .. [1] K. Minch, H. A. Vu, A. Warren, "Fast & Fair: Efficient Second-Order Robust
       Optimization for Fairness in Machine Learning", arXiv:2401.02012, 2024.

    Examples
    --------
    >>> from skfairbilevel.datasets import make_unfair_2d
    >>> X, y, s = make_unfair_2d(100, random_state=0)
    >>> X.shape, int(y.sum()), int(s.sum())
    ((200, 2), 100, 100)
    """
    n = _check_count(n_per_class, "n_per_class")
    alpha = _check_float(alpha, "alpha")
    p1 = _check_float(p1, "p1", 0.0, 1.0)
    p2 = _check_float(p2, "p2", 0.0, 1.0)
    rng = check_random_state(random_state)

    points = rng.uniform(size=(4 * n, 2))
    while True:
        above = points.sum(axis=1) >= 1.0
        if min(above.sum(), (~above).sum()) >= n:
            break
        points = np.vstack([points, rng.uniform(size=(4 * n, 2))])
    x0 = points[~above][:n]
    x1 = points[above][:n]

    s0 = np.zeros(n, dtype=np.int64)
    s0[rng.permutation(n)[: int(np.floor(p1 * n + 1e-9))]] = 1
    s1 = np.zeros(n, dtype=np.int64)
    s1[rng.permutation(n)[: int(np.floor(p2 * n + 1e-9))]] = 1

    X = np.vstack([x0, x1])
    y = np.repeat(np.array([0, 1], dtype=np.int64), n)
    s = np.concatenate([s0, s1])
    shift = alpha * np.ones(2)
    X[(s == 0) & (y == 1)] -= shift
    X[(s == 1) & (y == 0)] += shift

    order = rng.permutation(2 * n)
    return X[order], y[order], s[order]
