"""The parameter vocabulary: one rule per kind of value, applied the same way everywhere.

Each estimator declares ``_parameter_rules = {name: rule}`` and :func:`check_params`
turns a violation into a ValueError that names the parameter, the estimator, what was
wrong and what is allowed. A rule is a callable ``rule(value) -> None | str``: ``None``
when the value is fine, else a description of what is allowed ("a finite float in
(0, inf)").

The checks of fit-time arguments shared by the estimators and the metrics live here too
(:func:`check_sample_weight`), so that both give the same errors; this module needs no
torch.
"""

from numbers import Integral, Real

import numpy as np

from . import _dataframe

__all__ = [
    "check_params",
    "check_sample_weight",
    "number",
    "one_of",
    "any_of",
    "text",
    "is_array_like",
    "array_of",
    "tuple_of",
    "instance_of",
    "layer_sizes",
    "random_state",
]


class _Rule:
    def __init__(self, accept, allowed):
        self.accept = accept
        self.allowed = allowed

    def __call__(self, value):
        return None if self.accept(value) else self.allowed


def _is_number(v):
    return not isinstance(v, bool) and isinstance(v, Real | np.floating | np.integer)


def number(
    low=None, high=None, *, integer=False, low_open=False, high_open=False, none=False, hint=None
):
    """A finite real (or integer) in an interval; ``none=True`` also allows None.

    ``hint`` replaces the generated description in error messages (e.g. to say what
    the value means).
    """
    kind = "an int" if integer else "a finite float"
    lo = "-inf" if low is None else low
    hi = "inf" if high is None else high
    allowed = (
        f"{kind} in {'(' if low_open or low is None else '['}{lo}, {hi}"
        f"{')' if high_open or high is None else ']'}"
    )
    if none:
        allowed += " or None"

    def accept(v):
        if v is None:
            return none
        if not _is_number(v) or (integer and not isinstance(v, Integral | np.integer)):
            return False
        if not np.isfinite(v):  # inf and nan are never valid hyper-parameters
            return False
        if low is not None and (v < low or (low_open and v == low)):
            return False
        if high is not None and (v > high or (high_open and v == high)):
            return False
        return True

    return _Rule(accept, allowed if hint is None else hint)


def one_of(*options):
    """One of the listed values (compared with ``==`` within the same type)."""
    shown = ", ".join(repr(o) for o in options)
    return _Rule(
        lambda v: any(v is o or (type(v) is type(o) and v == o) for o in options),
        f"one of {{{shown}}}",
    )


def any_of(*rules, hint=None):
    """Accept when any of the rules accepts."""
    return _Rule(
        lambda v: any(r(v) is None for r in rules),
        " or ".join(r.allowed for r in rules) if hint is None else hint,
    )


def text():
    """A string."""
    return _Rule(lambda v: isinstance(v, str), "a str")


def is_array_like(min_len=1):
    """A non-string sequence or array."""

    def accept(v):
        return not isinstance(v, str | bytes) and hasattr(v, "__len__") and len(v) >= min_len

    return _Rule(accept, f"an array-like of length >= {min_len}")


def array_of(rule, *, nonzero=False, hint=None):
    """A non-empty 1-D array-like whose every entry ``rule`` accepts (``nonzero``: and
    whose entries are not all 0)."""

    def accept(v):
        if is_array_like()(v) is not None:
            return False
        try:
            arr = np.asarray(v, dtype=np.float64)
        except (TypeError, ValueError):
            return False
        if arr.ndim != 1 or not all(rule(float(a)) is None for a in arr):
            return False
        return not nonzero or bool(np.any(arr != 0))

    allowed = f"a 1-D array-like of values that are each {rule.allowed}"
    if nonzero:
        allowed += ", not all zero"
    return _Rule(accept, allowed if hint is None else hint)


def tuple_of(*rules):
    """A tuple or list with one entry per rule, each accepted by its rule."""

    def accept(v):
        return (
            isinstance(v, tuple | list)
            and len(v) == len(rules)
            and all(r(x) is None for r, x in zip(rules, v, strict=True))
        )

    return _Rule(
        accept,
        f"a pair ({', '.join(r.allowed for r in rules)})"
        if len(rules) == 2
        else f"a tuple of {len(rules)} values",
    )


def instance_of(types, allowed):
    """An instance of ``types`` (described as ``allowed``)."""
    return _Rule(lambda v: isinstance(v, types), allowed)


def layer_sizes(allow_empty=True):
    """A tuple/list of positive ints (hidden layer widths); an int is one layer."""

    def accept(v):
        if isinstance(v, Integral) and not isinstance(v, bool):
            v = (v,)
        if not isinstance(v, tuple | list):
            return False
        if not v and not allow_empty:
            return False
        return all(
            isinstance(h, Integral | np.integer) and not isinstance(h, bool) and h > 0 for h in v
        )

    return _Rule(accept, "a tuple of positive ints" + (" (may be empty)" if allow_empty else ""))


def random_state():
    """None, an int >= 0 (numpy's seeds), a numpy RandomState or a numpy Generator."""

    def accept(v):
        return (
            v is None
            or isinstance(v, np.random.RandomState | np.random.Generator)
            or (isinstance(v, Integral | np.integer) and not isinstance(v, bool) and v >= 0)
        )

    return _Rule(accept, "None, an int >= 0, a numpy RandomState or Generator")


def check_params(estimator):
    """Check every parameter of ``estimator`` that has a rule in ``_parameter_rules``
    (merged over the class hierarchy). Raises ValueError naming the parameter."""
    rules = {}
    for klass in reversed(type(estimator).__mro__):
        rules.update(getattr(klass, "_parameter_rules", {}))
    params = estimator.get_params(deep=False)
    name = type(estimator).__name__
    for key, rule in rules.items():
        if key not in params:
            continue
        allowed = rule(params[key])
        if allowed is not None:
            raise ValueError(
                f"The {key!r} parameter of {name} must be {allowed}; got "
                f"{params[key]!r}. Set it with {name}({key}=...) or set_params({key}=...)."
            )


def check_sample_weight(sample_weight, n_samples, *, name="sample_weight", x_name="X"):
    """Float64 sample weights of length ``n_samples``: finite, non-negative, not all 0.

    The one rule of the estimators and the metrics. A scalar is one weight for every
    row; a series or one-column dataframe (pandas, polars, pyarrow) its values; None is
    returned as None. ``name`` and ``x_name`` name the arguments in the error messages
    (e.g. ``sample_weight_val`` and ``X_val``; ``y_true`` for a metric).
    """
    if sample_weight is None:
        return None
    sw = _dataframe.to_numpy(sample_weight)  # arrays, lists, pandas / polars / pyarrow
    if sw.ndim == 0:
        sw = np.full(n_samples, float(sw))
    if sw.ndim == 2 and sw.shape[1] == 1:  # a one-column frame
        sw = sw.ravel()
    if sw.ndim != 1 or sw.shape[0] != n_samples:
        raise ValueError(
            f"{name} has shape {sw.shape} but {x_name} has {n_samples} rows; pass one "
            f"weight per row of {x_name}."
        )
    try:
        sw = sw.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must hold numbers (one weight per row).") from None
    if not np.all(np.isfinite(sw)):
        raise ValueError(f"{name} contains NaN or infinity; pass finite weights.")
    if np.any(sw < 0):
        raise ValueError(f"{name} contains negative values; weights must be >= 0.")
    if not np.any(sw > 0):
        raise ValueError(
            f"{name} is all zero: sample weights must contain at least one non-zero number."
        )
    return sw
