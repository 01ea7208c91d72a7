"""Hyper-parameter rules: each estimator declares ``_parameter_rules = {name: rule}``
and :func:`check_params` turns a violation into a ValueError/TypeError that names the
parameter, the estimator, what was wrong and what is allowed.

A rule is a callable ``rule(value) -> None | str``: ``None`` when the value is fine, else
a description of what is allowed ("a float in (0, inf)").
"""

from numbers import Integral, Real

import numpy as np

__all__ = ["check_params", "number", "one_of", "layer_sizes", "any_of", "is_array_like", "text"]


class _Rule:
    def __init__(self, accept, allowed):
        self.accept = accept
        self.allowed = allowed

    def __call__(self, value):
        return None if self.accept(value) else self.allowed


def number(low=None, high=None, *, integer=False, low_open=False, high_open=False,
           none=False):
    """A real (or integer) in an interval; ``none=True`` also allows None."""
    kind = "an int" if integer else "a finite float"
    lo = "-inf" if low is None else low
    hi = "inf" if high is None else high
    text = f"{kind} in {'(' if low_open or low is None else '['}{lo}, {hi}" \
           f"{')' if high_open or high is None else ']'}"
    if none:
        text += " or None"

    def accept(v):
        if v is None:
            return none
        if isinstance(v, bool):
            return False
        if integer and not isinstance(v, Integral | np.integer):
            return False
        if not isinstance(v, Real | np.floating | np.integer):
            return False
        if not np.isfinite(v):  # inf and nan are never valid hyper-parameters
            return False
        if low is not None and (v < low or (low_open and v == low)):
            return False
        if high is not None and (v > high or (high_open and v == high)):
            return False
        return True

    return _Rule(accept, text)


def one_of(*options):
    """One of the listed values (compared with ==)."""
    shown = ", ".join(repr(o) for o in options)
    return _Rule(lambda v: any(v is o or (type(v) is type(o) and v == o) for o in options),
                 f"one of {{{shown}}}")


def any_of(*rules):
    """Accept when any of the rules accepts."""
    return _Rule(lambda v: any(r(v) is None for r in rules),
                 " or ".join(r.allowed for r in rules))


def text():
    """A string."""
    return _Rule(lambda v: isinstance(v, str), "a str")


def is_array_like(min_len=1):
    """A non-string sequence or array."""
    def accept(v):
        return (not isinstance(v, str | bytes) and hasattr(v, "__len__")
                and len(v) >= min_len)
    return _Rule(accept, f"an array-like of length >= {min_len}")


def layer_sizes(allow_empty=True):
    """A tuple/list of positive ints (hidden layer widths)."""
    def accept(v):
        if isinstance(v, Integral) and not isinstance(v, bool):
            v = (v,)
        if not isinstance(v, tuple | list):
            return False
        if not v and not allow_empty:
            return False
        return all(isinstance(h, Integral | np.integer) and not isinstance(h, bool) and h > 0
                   for h in v)
    return _Rule(accept, "a tuple of positive ints" + (" (may be empty)" if allow_empty else ""))


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
