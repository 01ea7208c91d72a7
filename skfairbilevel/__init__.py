"""skfairbilevel: scikit-learn compatible fairness estimators from bilevel optimisation.

The estimators live in :mod:`skfairbilevel.estimators` and are re-exported here. They
are imported lazily, so ``import skfairbilevel`` stays cheap and the torch-free parts
(:mod:`skfairbilevel.metrics`, :mod:`skfairbilevel.datasets`) can be used without
paying for the torch import.
"""

import importlib

__version__ = "0.1.0.dev0"

# public name -> module that defines it
_ESTIMATORS = {
    "FairMLPClassifier": "skfairbilevel.estimators.mlp",
    "FairBiNNClassifier": "skfairbilevel.estimators.fairbinn",
    "BADRClassifier": "skfairbilevel.estimators.badr",
    "BADRRegressor": "skfairbilevel.estimators.badr",
    "FACIMSClassifier": "skfairbilevel.estimators.facims",
    "FairPruningClassifier": "skfairbilevel.estimators.pruning",
    "FairRobustClassifier": "skfairbilevel.estimators.robust",
}

__all__ = sorted(_ESTIMATORS) + ["__version__", "all_estimators"]


def __getattr__(name):
    if name in _ESTIMATORS:
        module = importlib.import_module(_ESTIMATORS[name])
        return getattr(module, name)
    raise AttributeError(f"module 'skfairbilevel' has no attribute {name!r}")


def __dir__():
    return __all__


def all_estimators() -> list[tuple[str, type]]:
    """Return ``[(name, class)]`` for every public estimator whose module is installed.

    The test-suite parametrises its common checks over this list, so a new estimator
    joins them by being added to ``_ESTIMATORS``.
    """
    out = []
    for name, mod in sorted(_ESTIMATORS.items()):
        try:
            module = importlib.import_module(mod)
        except ModuleNotFoundError as exc:  # an estimator module not written yet
            if exc.name != mod:
                raise
            continue
        out.append((name, getattr(module, name)))
    return out
