"""Synthetic classification data whose labels depend on a group, by a controlled amount."""

from numbers import Integral, Real

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.stats import norm
from sklearn.utils import check_random_state

from .._params import random_state as random_state_rule

_LATENT_NOISE = 0.5  # std of the noise added to the latent score
_PROXY_SHIFT = 1.0  # shift of the last feature between the two extreme groups


def _check_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}.")
    return int(value)


def _check_real(value, name):
    if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(value):
        raise TypeError(f"{name} must be a finite real number; got {value!r}.")
    return float(value)


def make_biased_classification(
    n_samples: int = 1000,
    n_features: int = 5,
    *,
    n_groups: int = 2,
    group_proportions: ArrayLike | None = None,
    bias: float = 1.0,
    label_noise: float = 0.05,
    n_classes: int = 2,
    random_state: int | np.random.RandomState | np.random.Generator | None = None,
    return_frame: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Generate a classification problem whose labels depend on a group through ``bias``.

    A test-bench for fairness methods: the amount of group dependence of the labels is
    set by one number, and a model can pick it up because one feature is a proxy of the
    group.

    The generative model, for row ``i`` of group ``a_i``:

    1. ``a_i`` is drawn with probabilities ``group_proportions``; group ``a`` gets the
       offset ``c_a`` from ``numpy.linspace(-0.5, 0.5, n_groups)`` (0 for one group).
    2. ``s_i ~ N(0, I)`` in ``n_features`` dimensions, independent of the group.
    3. The latent score is ``z_i = w @ s_i + bias * c_{a_i} + e_i`` with a random unit
       vector ``w`` and ``e_i ~ N(0, 0.5**2)``. The class is the bin of ``z_i`` between
       the ``k / n_classes`` quantiles of ``z`` at ``bias=0``, so classes are balanced
       when ``bias=0``. Then, with probability ``label_noise``, the class is replaced
       by a uniformly drawn different class.
    4. The features are ``X_i = s_i`` except the last one, which gets the proxy shift
       ``c_{a_i}`` (one unit between the extreme groups): ``X_i[-1] = s_i[-1] + c_{a_i}``.

    Hence with ``bias=0`` the labels are independent of the group (the features still
    carry the group through the proxy); with ``bias > 0`` groups with a larger ``c_a``
    get higher classes (a higher positive rate when ``n_classes=2``), the gap growing
    with ``bias``; ``bias < 0`` reverses it. For two groups and ``label_noise=0.05``,
    the demographic-parity gap of the labels is about 0.31 at ``bias=1`` and 0.57 at
    ``bias=2``, and the proxy feature correlates with the group at about 0.45.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of rows.
    n_features : int, default=5
        Number of features, at least 1. All carry signal; the last is also the proxy.
    n_groups : int, default=2
        Number of groups, at least 1.
    group_proportions : array-like of shape (n_groups,), default=None
        Probability of each group (non-negative, normalised to sum to 1). None gives
        equal probabilities.
    bias : float, default=1.0
        Strength of the group's effect on the labels (see above). 0 means no effect.
    label_noise : float, default=0.05
        Probability in [0, 1) that a label is replaced by a random other class.
    n_classes : int, default=2
        Number of classes, at least 2. Classes are ordered: a higher latent score gives
        a higher class.
    random_state : int, numpy.random.RandomState, numpy.random.Generator or None
        Seed of every random draw (``np.random.Generator``); the global numpy state is
        never used. Pass an int for reproducible output.
    return_frame : bool, default=False
        If True, return ``X`` as a DataFrame with columns ``x0 .. x{n_features-1}`` and
        an int column ``"group"`` (the group id, so an estimator can find it with
        ``sensitive_feature_ids="group"``), and ``y`` and ``A`` as Series named ``"y"``
        and ``"group"``.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features) or DataFrame
        Features (float64). With ``return_frame=True`` a DataFrame that also holds the
        ``"group"`` column.
    y : ndarray of shape (n_samples,) or Series
        Class labels 0 .. n_classes-1 (int64).
    A : ndarray of shape (n_samples,) or Series
        Group ids 0 .. n_groups-1 (int64).

    Raises
    ------
    TypeError, ValueError
        If an argument has a wrong type or value; the message names the argument.

    Examples
    --------
    >>> from skfairbilevel.datasets import make_biased_classification
    >>> X, y, A = make_biased_classification(20000, bias=2.0, random_state=0)
    >>> X.shape
    (20000, 5)
    >>> bool(abs(y[A == 1].mean() - y[A == 0].mean()) > 0.5)
    True
    """
    n_samples = _check_int(n_samples, "n_samples", 1)
    n_features = _check_int(n_features, "n_features", 1)
    n_groups = _check_int(n_groups, "n_groups", 1)
    n_classes = _check_int(n_classes, "n_classes", 2)
    bias = _check_real(bias, "bias")
    label_noise = _check_real(label_noise, "label_noise")
    if not 0.0 <= label_noise < 1.0:
        raise ValueError(f"label_noise must be in [0, 1); got {label_noise}.")
    if not isinstance(return_frame, bool | np.bool_):
        raise TypeError(f"return_frame must be True or False; got {return_frame!r}.")

    if group_proportions is None:
        p = np.full(n_groups, 1.0 / n_groups)
    else:
        p = np.asarray(group_proportions, dtype=float)
        if p.shape != (n_groups,):
            raise ValueError(
                f"group_proportions must have one entry per group (n_groups={n_groups}); "
                f"got shape {p.shape}."
            )
        if not np.all(np.isfinite(p)) or (p < 0).any() or p.sum() <= 0:
            raise ValueError(
                "group_proportions must be non-negative, finite and not all zero; "
                f"got {p.tolist()}."
            )
        p = p / p.sum()

    rng = _as_generator(random_state)
    offsets = np.linspace(-0.5, 0.5, n_groups) if n_groups > 1 else np.zeros(1)
    A = rng.choice(n_groups, size=n_samples, p=p).astype("int64")
    c = offsets[A]
    S = rng.standard_normal((n_samples, n_features))
    w = rng.standard_normal(n_features)
    w /= np.linalg.norm(w)
    z = S @ w + bias * c + _LATENT_NOISE * rng.standard_normal(n_samples)

    # class thresholds: quantiles of z under bias = 0, where z ~ N(0, 1 + noise^2)
    scale = np.sqrt(1.0 + _LATENT_NOISE**2)
    thresholds = norm.ppf(np.arange(1, n_classes) / n_classes) * scale
    y = np.searchsorted(thresholds, z).astype("int64")

    flip = rng.random(n_samples) < label_noise
    # a uniformly drawn *different* class: shift by 1 .. n_classes-1 (mod n_classes)
    shift = rng.integers(1, n_classes, size=n_samples)
    y = np.where(flip, (y + shift) % n_classes, y).astype("int64")

    X = S.copy()
    X[:, -1] += _PROXY_SHIFT * c
    if not return_frame:
        return X, y, A
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(n_features)])
    frame["group"] = A
    return frame, pd.Series(y, name="y"), pd.Series(A, name="group")


def _as_generator(random_state):
    """Turn ``random_state`` into a numpy Generator without touching global RNG state.

    None gives a fresh, OS-seeded Generator; an int seeds ``np.random.default_rng``; a
    Generator is used as is; a RandomState (the user's own object) seeds a Generator.
    """
    allowed = random_state_rule()(random_state)
    if allowed is not None:
        raise TypeError(f"random_state must be {allowed}; got {random_state!r}.")
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        rs = check_random_state(random_state)
        return np.random.default_rng(rs.randint(np.iinfo(np.int32).max))
    return np.random.default_rng(int(random_state))
