"""The on-disk cache of fit results: one small JSON file per fit.

A fit's key is a hash of everything its numbers depend on: the data (features, target,
groups), the rows it trains and is evaluated on, the method's name and every parameter
of its estimator, whether it receives the sensitive features, and the versions of
skfairbilevel, scikit-learn, fairlearn and torch. A result is written as soon as its fit
returns (atomically: a temporary file, then a rename), so an interrupted run keeps every
finished fit and a repeated run fits nothing.
"""

import hashlib
import inspect
import json
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["FitCache", "describe", "fit_key"]


def describe(value):
    """A deterministic, JSON-able description of an estimator or parameter value.

    Estimators become their class and parameters (recursively), functions and classes
    their qualified name, arrays their values; no memory address ever enters it.
    """
    if hasattr(value, "get_params") and not inspect.isclass(value):
        cls = type(value)
        return {
            "class": f"{cls.__module__}.{cls.__qualname__}",
            "params": {k: describe(v) for k, v in sorted(value.get_params(deep=False).items())},
        }
    if (
        inspect.isclass(value)
        or inspect.isfunction(value)
        or inspect.ismethod(value)
        or inspect.isbuiltin(value)
    ):
        return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', value)}"
    if isinstance(value, dict):
        return {str(k): describe(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [describe(v) for v in value]
    if isinstance(value, np.ndarray):
        return {"array": value.tolist()}
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "to_dict"):  # pandas objects
        return {"frame": describe(value.to_dict())}
    return f"{type(value).__module__}.{type(value).__qualname__}:{value!r}"


def _versions():
    import sklearn

    from .. import __version__

    out = {"skfairbilevel": __version__, "scikit-learn": sklearn.__version__}
    for mod in ("fairlearn", "torch"):
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:
            out[mod] = None
    return out


def fit_key(**parts):
    """The cache key of one fit: a SHA-256 of ``parts`` and the library versions."""
    payload = json.dumps(
        {"parts": describe(parts), "versions": _versions()}, sort_keys=True, default=str
    )
    return hashlib.sha256(payload.encode()).hexdigest()


class FitCache:
    """Fit results stored as ``<directory>/<key[:2]>/<key>.json``; None disables it."""

    def __init__(self, directory):
        self.directory = None if directory is None else Path(directory)

    def _path(self, key):
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key):
        """The stored record, or None (missing, unreadable or disabled)."""
        if self.directory is None:
            return None
        try:
            return json.loads(self._path(key).read_text())
        except (OSError, ValueError):
            return None

    def put(self, key, record):
        if self.directory is None:
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(record, fh)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
