"""The methods of the comparison: each one's estimator, trade-off knob and grid.

This module is the one place where the compared methods are declared. A method is a
:class:`Method`: an estimator (or a function of the run's :class:`Settings` that builds
one), the name of the parameter that moves its fairness/accuracy trade-off (its *knob*)
and the values of that knob the runner fits (``grid``; ``full_grid`` with ``--full``).
Change a method's knob, grid or fixed settings in :data:`METHODS` below and every user
of the runner (command line, Python API, ``benchmarks/``) follows.
"""

import importlib
import inspect
import itertools
from dataclasses import dataclass
from typing import Any

__all__ = ["METHODS", "Method", "Settings", "resolve_methods", "grid_product"]


@dataclass(frozen=True)
class Settings:
    """What a method's estimator may depend on in one run.

    Attributes
    ----------
    seed : int
        The seed of this fit (``random_state`` of the estimator).
    quick : bool
        ``--quick``: fewer rows and epochs.
    full : bool
        ``--full``: the denser grids.
    fairness : str
        The constraint that fairness-aware methods target: ``"demographic_parity"`` or
        ``"equalized_odds"`` (from ``--metric``).
    device : str
        ``"cpu"``, ``"cuda"`` or ``"auto"``: passed to estimators with a ``device``
        parameter.
    n_sensitive : int
        Number of sensitive columns. Methods that take them as model inputs
        (``sensitive_as_input=True``) find them in the first ``n_sensitive`` columns of X.
    """

    seed: int = 0
    quick: bool = False
    full: bool = False
    fairness: str = "demographic_parity"
    device: str = "cpu"
    n_sensitive: int = 1

    def epochs(self, default, quick, full=None):
        """``default``, or ``quick`` with ``--quick``, or ``full`` with ``--full``."""
        if self.quick:
            return quick
        if self.full and full is not None:
            return full
        return default


@dataclass(frozen=True, eq=False)
class Method:
    """A method of the comparison: an estimator, its trade-off knob and its grid.

    Parameters
    ----------
    name : str
        The name used by ``--methods`` and in every output.
    estimator : estimator or callable
        An unfitted scikit-learn estimator (cloned for every fit), or a function
        ``settings -> estimator`` (see :class:`Settings`). The runner sets
        ``random_state`` to the seed of the fit where the estimator has that parameter
        and it is None, and ``device`` where it has one.
    knob : str, default=None
        The parameter that moves the trade-off (a label when ``grid`` holds dicts). None
        for a method fitted once per seed.
    grid : sequence, default=()
        The knob's values fitted by default: plain values (set as ``knob``) or dicts of
        parameters (set together). Empty: one fit with the estimator as it is.
    full_grid : sequence, default=None
        The denser grid of ``--full``; None uses ``grid``.
    family : str, default="user"
        ``"skfairbilevel"``, ``"fairlearn"``, ``"scikit-learn"`` or anything else.
    description : str, default=""
        One line for ``--list-methods`` and the reports.
    uses_sensitive : bool, default=None
        Whether ``fit`` receives ``sensitive_features``. None: when ``fit`` accepts it.
    predict_needs_sensitive : bool, default=None
        Whether ``predict`` needs them too (ThresholdOptimizer). None: when ``predict``
        accepts them.
    sensitive_as_input : bool, default=False
        Whether X includes the sensitive columns (as its first columns, ordinal-encoded
        or numeric): only for methods that need them as inputs, such as
        CorrelationRemover, which removes them.
    requires : str, default=None
        A module that must be importable; otherwise the method is skipped with a note.
    plot_on : sequence of (str, str), default=()
        Further (score, unfairness) columns of ``runs.csv`` on which the report plots
        this method's test front, for a method whose knob targets another metric than
        the run's: e.g. ``(("balanced_accuracy", "sufficiency_gap"),)``.
    """

    name: str
    estimator: Any
    knob: str | None = None
    grid: tuple = ()
    full_grid: tuple | None = None
    family: str = "user"
    description: str = ""
    uses_sensitive: bool | None = None
    predict_needs_sensitive: bool | None = None
    sensitive_as_input: bool = False
    requires: str | None = None
    plot_on: tuple = ()

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(
                f"Method name must be a Python identifier such as 'my_logreg' (it is "
                f"used on the command line and in file names); got {self.name!r}."
            )
        if self.grid and self.knob is None and not all(isinstance(g, dict) for g in self.grid):
            raise ValueError(
                f"Method {self.name!r}: a grid of plain values needs knob=<parameter "
                f"name>; give knob or make every grid entry a dict of parameters."
            )
        object.__setattr__(self, "grid", tuple(self.grid))
        object.__setattr__(self, "plot_on", tuple(tuple(p) for p in self.plot_on))
        bad = [p for p in self.plot_on if len(p) != 2]
        if bad:
            raise ValueError(
                f"Method {self.name!r}: plot_on takes (score column, unfairness column) "
                f"pairs, e.g. (('balanced_accuracy', 'sufficiency_gap'),); got {bad}."
            )
        if self.full_grid is not None:
            object.__setattr__(self, "full_grid", tuple(self.full_grid))

    def param_grid(self, settings):
        """The list of parameter dicts fitted in a run with ``settings`` (at least one)."""
        values = self.full_grid if settings.full and self.full_grid else self.grid
        if not values:
            return [{}]
        return [dict(v) if isinstance(v, dict) else {self.knob: v} for v in values]

    def unavailable(self):
        """None, or why the method cannot run here (its ``requires`` cannot be imported)."""
        if self.requires is None:
            return None
        try:
            importlib.import_module(self.requires)
        except ImportError as exc:
            return f"{self.name}: skipped, {self.requires} cannot be imported ({exc})"
        return None

    def make(self, settings, params):
        """The unfitted estimator of one fit: built, seeded, ``params`` set."""
        from sklearn.base import clone

        if inspect.isclass(self.estimator):
            est = self.estimator()
        elif hasattr(self.estimator, "get_params"):
            est = clone(self.estimator)
        else:
            est = self.estimator(settings)
        have = est.get_params(deep=True)
        extra = {}
        if "random_state" in have and have["random_state"] is None:
            extra["random_state"] = settings.seed
        if "device" in have and settings.device != "cpu":
            extra["device"] = settings.device
        unknown = sorted(set(params) - set(have))
        if unknown:
            raise ValueError(
                f"Method {self.name!r}: {type(est).__name__} has no parameter(s) {unknown} "
                f"(from its knob/grid); valid ones are {sorted(have)}."
            )
        return est.set_params(**extra, **params)

    def fit_uses_sensitive(self, est):
        if self.uses_sensitive is not None:
            return self.uses_sensitive
        return _accepts(est, "fit", "sensitive_features")

    def predict_uses_sensitive(self, est):
        if self.predict_needs_sensitive is not None:
            return self.predict_needs_sensitive
        return _accepts(est, "predict", "sensitive_features")

    def knob_label(self):
        """The knob's name for tables (the dict keys when the grid holds dicts)."""
        if self.knob is not None:
            return self.knob
        keys = [k for g in (self.grid + (self.full_grid or ())) if isinstance(g, dict) for k in g]
        return " / ".join(dict.fromkeys(keys)) or "-"


def _accepts(est, method, name):
    fn = getattr(est, method, None)
    if fn is None:
        return False
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def grid_product(**values):
    """Every combination of several knobs, as a grid of dicts.

    >>> grid_product(sparsity=[0.5, 0.9], fairness_weight=[1.0])
    [{'sparsity': 0.5, 'fairness_weight': 1.0}, {'sparsity': 0.9, 'fairness_weight': 1.0}]
    """
    keys = list(values)
    return [
        dict(zip(keys, combo, strict=True))
        for combo in itertools.product(*(values[k] for k in keys))
    ]


# --------------------------------------------------------------------------- builders
# Fixed settings of each method; the knob's values are in METHODS below. Epoch counts are
# (default, --quick, --full); the default run (Adult, 3 seeds, every grid) is sized to
# finish within 10 minutes on 2 cores (benchmarks/results/compare.md).


def _ours(clsname, params):
    def build(s):
        import skfairbilevel

        return getattr(skfairbilevel, clsname)(**params(s))

    build.__name__ = clsname
    return build


def _fair_mlp(s):
    return dict(
        hidden_layer_sizes=(64,),
        fairness=s.fairness,
        batch_size=256,
        max_epochs=s.epochs(10, 5, 20),
        lr=s.epochs(1e-3, 1e-2, 1e-3),
    )


def _fairbinn(s):
    # the estimator's default update (the reference code's), on which eta is the knob
    return dict(
        hidden_layer_sizes=(64, 64),
        fairness=s.fairness,
        batch_size=s.epochs(256, 100, 100),
        max_epochs=s.epochs(10, 5, 20),
    )


def _badr(s):
    return dict(
        fairness=s.fairness, model="linear", solver="exact", max_iter=s.epochs(100, 30, 200)
    )


def _facims(s):
    if s.full:  # the paper's network and loop
        return dict(max_epochs=50)
    return dict(
        hidden_layer_sizes=(64, 32),
        n_mc=3,
        inner_steps=5,
        outer_steps=3,
        neumann_terms=5,
        max_epochs=s.epochs(20, 6),
    )


def _pruning(s):
    return dict(
        hidden_layer_sizes=(64, 64),
        fairness=s.fairness,
        sparsity=0.7,
        batch_size=256,
        pretrain_epochs=s.epochs(4, 2, 10),
        max_epochs=s.epochs(3, 2, 8),
        finetune_epochs=s.epochs(2, 1, 4),
    )


def _robust(s):
    return dict(inner_solver="trs", batch_size=256, lr=1e-2, max_epochs=s.epochs(10, 3, 20))


def _logistic(s=None):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=1000, solver="newton-cholesky")


def _hgb(s):
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=s.epochs(100, 50), random_state=s.seed)


def _mlp(s):
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(
        hidden_layer_sizes=(64,),
        early_stopping=True,
        max_iter=s.epochs(50, 10),
        random_state=s.seed,
    )


def _eg(constraint):
    def build(s):
        from ..baselines import ExponentiatedGradientClassifier

        return ExponentiatedGradientClassifier(_logistic(), constraint, max_iter=s.epochs(50, 20))

    return build


def _gs(constraint):
    def build(s):
        from ..baselines import GridSearchReductionClassifier

        return GridSearchReductionClassifier(_logistic(), constraint, grid_size=s.epochs(10, 5, 20))

    return build


def _threshold(constraint, base):
    def build(s):
        from fairlearn.postprocessing import ThresholdOptimizer

        from ..baselines import float64_scores

        return ThresholdOptimizer(
            estimator=float64_scores(base(s)),
            constraints=constraint,
            objective="accuracy_score",
            predict_method="predict_proba",
        )

    return build


def _adversarial(s):
    # fairlearn's example architecture; 5 epochs at batch 256 (more collapse on Adult:
    # benchmarks/bench_adversarial.py)
    from fairlearn.adversarial import AdversarialFairnessClassifier

    return AdversarialFairnessClassifier(
        backend="torch",
        predictor_model=[50, "leaky_relu"],
        adversary_model=[3, "leaky_relu"],
        constraints=s.fairness,
        learning_rate=1e-3,
        batch_size=256,
        epochs=s.epochs(5, 2),
        shuffle=True,
        cuda=s.device if s.device.startswith("cuda") else None,
    )


def _correlation_remover(s):
    from fairlearn.preprocessing import CorrelationRemover
    from sklearn.pipeline import Pipeline

    return Pipeline(
        [
            (
                "correlationremover",
                CorrelationRemover(sensitive_feature_ids=list(range(s.n_sensitive))),
            ),
            ("logisticregression", _logistic()),
        ]
    )


# --------------------------------------------------------------------------- registry
# One line per method: its estimator, its knob and the knob's default and --full grids.

_FL = "fairlearn"
_SK = "scikit-learn"
_US = "skfairbilevel"
_BOUNDS = (0.005, 0.01, 0.03)  # ExponentiatedGradient's difference_bound
_BOUNDS_FULL = (0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1)
_WEIGHTS = (0.2, 0.5, 0.8)  # GridSearch's constraint_weight
_WEIGHTS_FULL = (0.1, 0.3, 0.5, 0.7, 0.9, 0.95)
_TOLS = (0.0, 0.01, 0.03)  # ThresholdOptimizer's tol
_TOLS_FULL = (0.0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.08)
#: the estimators' knobs (larger is fairer, except FACIMS and FairRobust: see the user
#: guide's knob table); the grids span the ranges measured on Adult validation data
_PENALTY_WEIGHTS = (0.3, 1.0, 3.0, 10.0, 30.0)
_PENALTY_WEIGHTS_FULL = (0.1, 0.3, 1.0, 3.0, 5.0, 10.0, 30.0, 100.0)
_BADR_TOLERANCES = (0.005, 0.01, 0.015, 0.02, 0.03)

METHODS = {
    m.name: m
    for m in [
        Method(
            "fair_mlp",
            _ours("FairMLPClassifier", _fair_mlp),
            family=_US,
            knob="fairness_weight",
            grid=_PENALTY_WEIGHTS,
            full_grid=_PENALTY_WEIGHTS_FULL,
            description="FairMLPClassifier: MLP (64,) + soft fairness penalty",
        ),
        Method(
            "fairbinn",
            _ours("FairBiNNClassifier", _fairbinn),
            family=_US,
            knob="eta",
            grid=_PENALTY_WEIGHTS,
            full_grid=_PENALTY_WEIGHTS_FULL,
            description="FairBiNNClassifier: leader/follower network (the reference "
            "code's update, the default); knob: the penalty weight eta",
        ),
        Method(
            "badr",
            _ours("BADRClassifier", _badr),
            family=_US,
            knob="score_tolerance",
            grid=_BADR_TOLERANCES,
            full_grid=(0.0025,)
            + _BADR_TOLERANCES
            + (
                0.05,
                None,
                {"fairness": "equalized_odds"},
                {"group_weights": "uniform"},
                {"group_weights": "balanced"},
                {"group_weights": "minimax"},
                {"group_weights": "pooled"},
            ),
            description="BADRClassifier: bilevel group weights (linear, exact) within a "
            "budget of training accuracy against uniform weights (None: the pure "
            "bilevel solution); --full adds its fixed-weight baselines",
        ),
        Method(
            "facims",
            _ours("FACIMSClassifier", _facims),
            family=_US,
            knob="lambda_up",
            grid=(0.0, 0.7, 1.5, 3.0, 6.0),
            full_grid=(0.0, 0.3, 0.7, 1.5, 3.0, 6.0),
            plot_on=(("balanced_accuracy", "sufficiency_gap"),),
            description="FACIMSClassifier: Bayesian bilevel learning on subgroups (a (64, 32) "
            "network; --full: the paper's network and loop); targets balanced accuracy "
            "and the sufficiency gap",
        ),
        Method(
            "pruning",
            _ours("FairPruningClassifier", _pruning),
            family=_US,
            knob="fairness_weight",
            grid=_PENALTY_WEIGHTS,
            full_grid=grid_product(sparsity=(0.5, 0.7, 0.9), fairness_weight=_PENALTY_WEIGHTS),
            description="FairPruningClassifier: bilevel fair pruning, 70% sparsity, "
            "demographic-parity penalty",
        ),
        Method(
            "robust",
            _ours("FairRobustClassifier", _robust),
            family=_US,
            knob="radius",
            grid=(0.0, 0.025, 0.05, 0.1, 0.2),
            full_grid=(0.0, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0),
            plot_on=(("accuracy", "tpr_gap"),),
            description="FairRobustClassifier: input-perturbation robust training (affine); "
            "its radius moves accuracy and the signed TPR gap",
        ),
        Method(
            "eg_dp",
            _eg("demographic_parity"),
            family=_FL,
            requires="fairlearn",
            knob="difference_bound",
            grid=_BOUNDS,
            full_grid=_BOUNDS_FULL,
            description="ExponentiatedGradient(LogisticRegression, DemographicParity)",
        ),
        Method(
            "eg_eo",
            _eg("equalized_odds"),
            family=_FL,
            requires="fairlearn",
            knob="difference_bound",
            grid=_BOUNDS,
            full_grid=_BOUNDS_FULL,
            description="ExponentiatedGradient(LogisticRegression, EqualizedOdds)",
        ),
        Method(
            "gs_dp",
            _gs("demographic_parity"),
            family=_FL,
            requires="fairlearn",
            knob="constraint_weight",
            grid=_WEIGHTS,
            full_grid=_WEIGHTS_FULL,
            description="GridSearch(LogisticRegression, DemographicParity)",
        ),
        Method(
            "gs_eo",
            _gs("equalized_odds"),
            family=_FL,
            requires="fairlearn",
            knob="constraint_weight",
            grid=_WEIGHTS,
            full_grid=_WEIGHTS_FULL,
            description="GridSearch(LogisticRegression, EqualizedOdds)",
        ),
        Method(
            "threshold_dp",
            _threshold("demographic_parity", _logistic),
            family=_FL,
            requires="fairlearn",
            knob="tol",
            grid=_TOLS,
            full_grid=_TOLS_FULL,
            description="ThresholdOptimizer(LogisticRegression, demographic parity); uses "
            "the sensitive features at predict time",
        ),
        Method(
            "threshold_eo",
            _threshold("equalized_odds", _logistic),
            family=_FL,
            requires="fairlearn",
            description="ThresholdOptimizer(LogisticRegression, equalized odds; no "
            "relaxation); uses the sensitive features at predict time",
        ),
        Method(
            "threshold_dp_hgb",
            _threshold("demographic_parity", _hgb),
            family=_FL,
            requires="fairlearn",
            knob="tol",
            grid=_TOLS,
            full_grid=_TOLS_FULL,
            description="ThresholdOptimizer(HistGradientBoosting, demographic parity); "
            "uses the sensitive features at predict time",
        ),
        Method(
            "threshold_eo_hgb",
            _threshold("equalized_odds", _hgb),
            family=_FL,
            requires="fairlearn",
            description="ThresholdOptimizer(HistGradientBoosting, equalized odds); uses "
            "the sensitive features at predict time",
        ),
        Method(
            "adversarial",
            _adversarial,
            family=_FL,
            requires="fairlearn.adversarial",
            knob="alpha",
            grid=(0.1, 0.3, 1.0),
            full_grid=(0.03, 0.1, 0.3, 1.0, 3.0),
            description="AdversarialFairnessClassifier (torch backend, 5 epochs)",
        ),
        Method(
            "correlation_remover",
            _correlation_remover,
            family=_FL,
            requires="fairlearn.preprocessing",
            uses_sensitive=False,
            sensitive_as_input=True,
            knob="correlationremover__alpha",
            grid=(0.25, 0.5, 0.75, 1.0),
            full_grid=(0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0),
            description="CorrelationRemover + LogisticRegression; takes the sensitive "
            "columns as inputs and removes them",
        ),
        Method(
            "logreg",
            _logistic,
            family=_SK,
            uses_sensitive=False,
            description="LogisticRegression, unconstrained",
        ),
        Method(
            "mlp",
            _mlp,
            family=_SK,
            uses_sensitive=False,
            description="MLPClassifier(64,), unconstrained, early stopping",
        ),
        Method(
            "hgb",
            _hgb,
            family=_SK,
            uses_sensitive=False,
            description="HistGradientBoostingClassifier, unconstrained",
        ),
    ]
}

GROUPS = {
    "all": None,
    "ours": _US,
    "fairlearn": _FL,
    "sklearn": _SK,
}


def resolve_methods(spec, registry=None):
    """Methods from names, groups and :class:`Method` objects.

    Parameters
    ----------
    spec : None, str, Method or list of str / Method
        Comma-separated names (of ``registry``) and groups (``all``, ``ours``,
        ``fairlearn``, ``sklearn``), or :class:`Method` objects (your own methods). None
        means ``all``.
    registry : dict, default=None
        ``{name: Method}``; None is :data:`METHODS`.

    Returns
    -------
    methods : list of Method
        In the order given, without repeats.

    Raises
    ------
    ValueError
        Naming the unknown entries and listing the valid ones.
    """
    registry = METHODS if registry is None else registry
    if spec is None:
        return list(registry.values())
    items = [spec] if isinstance(spec, str | Method) else list(spec)
    parts = []
    for item in items:
        if isinstance(item, Method):
            parts.append(item)
        else:
            parts.extend(p.strip() for p in str(item).split(",") if p.strip())
    if not parts:
        raise ValueError("--methods is empty; give method names or groups, e.g. 'ours,logreg'.")
    unknown = [p for p in parts if isinstance(p, str) and p not in registry and p not in GROUPS]
    if unknown:
        raise ValueError(
            f"unknown method(s) {unknown}; choose from {list(registry)} or the groups "
            f"{list(GROUPS)} (comma-separated)."
        )
    out = {}
    for p in parts:
        if isinstance(p, Method):
            out.setdefault(p.name, p)
        elif p in GROUPS:
            for m in registry.values():
                if GROUPS[p] is None or m.family == GROUPS[p]:
                    out.setdefault(m.name, m)
        else:
            out.setdefault(p, registry[p])
    return list(out.values())
