"""The comparison behind ``python -m skfairbilevel compare``.

Every method sees the same data, the same split, the same preprocessing and is scored
with the same metrics:

* **data**: a bundled dataset (:data:`DATASETS`) with its sensitive column(s);
* **split**: Adult uses its official split (``adult.data`` for training, ``adult.test``
  for testing, rows with missing values dropped); the other datasets a stratified 70/30
  split with ``random_state=0`` (fixed, so that ``--seed`` changes the methods, not the
  data). ``quick`` subsamples both parts (stratified, ``random_state=0``);
* **preprocessing**: :func:`skfairbilevel.datasets.make_preprocessor` (one-hot +
  scaling) as the first step of every method's Pipeline, so it is fitted on the training
  rows only (on each training fold with ``cv``). The sensitive columns are **not** model
  inputs; they reach the methods that need them as ``sensitive_features`` through
  scikit-learn's metadata routing. CorrelationRemover is the exception: it needs them as
  a column of X (ordinal-encoded), and removes them;
* **metrics** on the test rows: accuracy, balanced accuracy, demographic parity
  difference, equalized odds difference (fairlearn's definitions, via
  :mod:`skfairbilevel.metrics`), the sufficiency gap of the predicted probabilities
  (:func:`~skfairbilevel.metrics.sufficiency_gap`, 5 bins; empty for a method without
  probabilities) and the fit time in seconds;
* **cv=K**: instead of the test split, ``cross_validate`` with those scorers on the
  training rows (StratifiedKFold, shuffled with ``seed``), metadata routing on; the table
  gives the mean (and the standard deviation, in the CSV/JSON) over folds.

ThresholdOptimizer needs the sensitive features at ``predict`` time, which
scikit-learn cannot route; it is evaluated in this module's own loop over the same split
or folds, and the output says so.

The methods are a registry (:data:`METHODS`): one :class:`Method` entry each. An entry
whose module cannot be imported is skipped with a note.
"""

import contextlib
import importlib
import json
import math
import platform
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
from sklearn.base import clone
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.model_selection import StratifiedKFold, cross_validate, train_test_split
from sklearn.pipeline import Pipeline

from . import __version__
from .metrics import (
    demographic_parity_difference,
    equalized_odds_difference,
    make_fairness_scorer,
    sufficiency_gap,
)

__all__ = [
    "METHODS",
    "DATASETS",
    "METRICS",
    "Method",
    "ComparisonResult",
    "run_comparison",
    "resolve_methods",
    "format_table",
    "draw_pareto",
    "plot_pareto",
]


# --------------------------------------------------------------------------- datasets


@dataclass(frozen=True)
class Dataset:
    """A bundled dataset as the comparison uses it."""

    loader: str  # function name in skfairbilevel.datasets
    sensitive: str  # default sensitive column
    kwargs: dict = field(default_factory=dict)
    split: str = "stratified 70/30, random_state=0"
    description: str = ""


DATASETS = {
    "adult": Dataset(
        "load_adult", "sex",
        split="official: adult.data (train) / adult.test (test), rows with missing values "
              "dropped",
        description="UCI Adult: income > 50K",
    ),
    "credit_default": Dataset("load_credit_default", "SEX",
                              description="UCI Default of Credit Card Clients: default"),
    "german_credit": Dataset("load_german_credit", "sex",
                             description="UCI Statlog German Credit: good risk"),
    "bank_marketing": Dataset("load_bank_marketing", "age_group",
                              description="UCI Bank Marketing: term deposit"),
    "drug_consumption": Dataset(
        "load_drug_consumption", "Gender", kwargs={"target": "Cannabis", "n_classes": 2},
        description="UCI Drug Consumption: Cannabis used in the last decade (binarised)",
    ),
}

#: --metric choices: name -> (result column, the constraint fairness-aware methods target)
METRICS = {
    "demographic_parity": ("dp_difference", "demographic_parity"),
    "equalized_odds": ("eo_difference", "equalized_odds"),
    "sufficiency": ("sufficiency_gap", "demographic_parity"),
}
_METRIC_ALIASES = {"dp": "demographic_parity", "eo": "equalized_odds",
                   "sg": "sufficiency"}

QUICK_ROWS = 3000  # per part (train, test) in quick mode

COLUMNS = ["method", "family", "accuracy", "balanced_accuracy", "dp_difference",
           "eo_difference", "sufficiency_gap", "fit_seconds"]
_METRIC_COLUMNS = COLUMNS[2:]


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Settings:
    """What a method's ``build`` may depend on."""

    seed: int
    quick: bool
    fairness: str  # "demographic_parity" or "equalized_odds"
    sensitive: tuple  # the sensitive column names
    n_train: int


@dataclass(frozen=True)
class Method:
    """One row of the comparison.

    Parameters
    ----------
    name : str
        Key used by ``--methods``.
    family : str
        ``"skfairbilevel"``, ``"fairlearn"`` or ``"scikit-learn"``.
    build : callable
        ``build(settings) -> estimator``: the unfitted final step of the Pipeline (after
        the preprocessor).
    requires : str, optional
        A module that must be importable; otherwise the method is skipped with a note.
    uses_sensitive : bool
        Whether ``fit`` receives ``sensitive_features`` (requested via routing).
    predict_needs_sensitive : bool
        Whether ``predict`` needs them too (ThresholdOptimizer): evaluated outside
        scikit-learn's cross-validation.
    keep_sensitive : bool
        Whether the preprocessed X keeps the sensitive columns (CorrelationRemover).
    description : str
        One line for ``--list-methods`` and the docs.
    """

    name: str
    family: str
    build: Callable
    requires: str | None = None
    uses_sensitive: bool = True
    predict_needs_sensitive: bool = False
    keep_sensitive: bool = False
    description: str = ""


def _configure(cls, wanted, notes):
    """``cls()`` with the ``wanted`` parameters it has and accepts; the rest is noted."""
    est = cls()
    have = est.get_params(deep=False)
    dropped = sorted(k for k in wanted if k not in have)
    est.set_params(**{k: v for k, v in wanted.items() if k in have})
    from ._params import check_params

    for _ in range(len(wanted) + 1):
        try:
            check_params(est)
            break
        except ValueError as exc:
            bad = next((k for k in wanted if k in have and f"'{k}'" in str(exc)), None)
            if bad is None:
                raise
            est.set_params(**{bad: cls().get_params(deep=False)[bad]})
            dropped.append(bad)
    if dropped:
        notes.append(f"{cls.__name__}: left at their defaults: {', '.join(dropped)}")
    return est


def _ours(module, clsname, params):
    """Build function of one of our estimators: ``params(settings) -> dict``."""

    def build(s, notes):
        cls = getattr(importlib.import_module(module), clsname)
        return _configure(cls, params(s), notes)

    return build


def _epochs(s, full, quick):
    return quick if s.quick else full


# Settings of our estimators: full / quick. The default run (all methods, the full Adult
# split, one thread) stays well under 10 minutes on 2 CPU cores; see
# benchmarks/results/compare.md for the measured times.


def _fair_mlp(s):
    return dict(hidden_layer_sizes=(64,), fairness=s.fairness, fairness_weight=5.0,
                max_epochs=_epochs(s, 20, 5), batch_size=256, lr=_epochs(s, 1e-3, 1e-2),
                random_state=s.seed)


def _fairbinn(s):
    # the paper's Algorithm 1 and defaults (eta 100, batch 100), fewer epochs
    return dict(hidden_layer_sizes=(64, 64), fairness=s.fairness, eta=100.0,
                max_epochs=_epochs(s, 20, 5), batch_size=100, random_state=s.seed)


def _fairbinn_ref(s):
    # the reference code's update: follower first, the leader also descends the penalty
    return dict(hidden_layer_sizes=(64, 64), fairness=s.fairness, eta=10.0,
                update_order="follower_first", leader_includes_fairness_grad=True,
                max_epochs=_epochs(s, 20, 5), batch_size=100, random_state=s.seed)


def _badr(s):
    return dict(fairness=s.fairness, model="linear", solver="exact",
                max_iter=_epochs(s, 100, 30), random_state=s.seed)


def _facims(s):
    if not s.quick:  # the estimator's defaults are the paper's; its 50 "epochs"
        return dict(max_epochs=50, random_state=s.seed)
    # quick: a small network and lighter loops (an epoch is one batch per group)
    return dict(hidden_layer_sizes=(64, 32), n_mc=3, inner_steps=5, outer_steps=3,
                neumann_terms=5, max_epochs=4, random_state=s.seed)


def _pruning(s):
    return dict(hidden_layer_sizes=(64, 64), sparsity=0.7, fairness_weight=1.0,
                pretrain_epochs=_epochs(s, 8, 2), max_epochs=_epochs(s, 5, 2),
                finetune_epochs=_epochs(s, 3, 1), batch_size=256, random_state=s.seed)


def _robust(s):
    return dict(radius=0.1, inner_solver="trs", batch_size=256,
                max_epochs=_epochs(s, 10, 3), lr=1e-2, random_state=s.seed)


def _logistic():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=1000)


def _build_logreg(s, notes):
    return _logistic()


def _build_mlp(s, notes):
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(hidden_layer_sizes=(64,), early_stopping=True,
                         max_iter=_epochs(s, 50, 10), random_state=s.seed)


def _build_eg(constraint):
    def build(s, notes):
        from .baselines import ExponentiatedGradientClassifier

        return ExponentiatedGradientClassifier(
            _logistic(), constraint, max_iter=_epochs(s, 50, 10), random_state=s.seed)

    return build


def _build_gs(constraint):
    def build(s, notes):
        from .baselines import GridSearchReductionClassifier

        return GridSearchReductionClassifier(_logistic(), constraint,
                                             grid_size=_epochs(s, 10, 5))

    return build


def _build_threshold(constraint):
    def build(s, notes):
        from fairlearn.postprocessing import ThresholdOptimizer

        return ThresholdOptimizer(estimator=_logistic(), constraints=constraint,
                                  objective="accuracy_score", predict_method="predict_proba")

    return build


def _build_adversarial(s, notes):
    # fairlearn's example architecture; alpha and epochs chosen without the test split
    # (benchmarks/bench_adversarial.py, results/compare.md): the smallest validation DP
    # among the settings within 0.02 of logistic regression's accuracy on a validation
    # split and whose refit on all training rows does not collapse (alpha 0.3, 10 epochs
    # has validation DP 0.069 but collapses to accuracy 0.41 when refitted).
    from fairlearn.adversarial import AdversarialFairnessClassifier

    return AdversarialFairnessClassifier(
        backend="torch", predictor_model=[50, "leaky_relu"],
        adversary_model=[3, "leaky_relu"], constraints=s.fairness, alpha=0.3,
        learning_rate=1e-3, batch_size=256, epochs=5, shuffle=True,
        random_state=s.seed,
    )


def _build_correlation_remover(s, notes):
    from fairlearn.preprocessing import CorrelationRemover

    return Pipeline([
        ("correlationremover", CorrelationRemover(sensitive_feature_ids=list(s.sensitive),
                                                  alpha=1.0)),
        ("logisticregression", _logistic()),
    ])


_EST = "skfairbilevel.estimators."

METHODS = {m.name: m for m in [
    Method("fair_mlp", "skfairbilevel", _ours(_EST + "mlp", "FairMLPClassifier", _fair_mlp),
           requires=_EST + "mlp",
           description="FairMLPClassifier: MLP + soft fairness penalty (weight 5)"),
    Method("fairbinn", "skfairbilevel",
           _ours(_EST + "fairbinn", "FairBiNNClassifier", _fairbinn), requires=_EST + "fairbinn",
           description="FairBiNNClassifier: leader/follower network, the paper's "
                       "Algorithm 1 (eta 100)"),
    Method("fairbinn_ref", "skfairbilevel",
           _ours(_EST + "fairbinn", "FairBiNNClassifier", _fairbinn_ref),
           requires=_EST + "fairbinn",
           description="FairBiNNClassifier with the reference code's update (follower "
                       "first, leader sees the penalty; eta 10)"),
    Method("badr", "skfairbilevel", _ours(_EST + "badr", "BADRClassifier", _badr),
           requires=_EST + "badr",
           description="BADRClassifier: bilevel group-weight rescalarisation (linear, exact)"),
    Method("facims", "skfairbilevel", _ours(_EST + "facims", "FACIMSClassifier", _facims),
           requires=_EST + "facims",
           description="FACIMSClassifier: Bayesian bilevel learning on subgroups (paper's "
                       "network and loop, 50 epochs)"),
    Method("pruning", "skfairbilevel",
           _ours(_EST + "pruning", "FairPruningClassifier", _pruning), requires=_EST + "pruning",
           description="FairPruningClassifier: bilevel fair pruning (70% sparsity)"),
    Method("robust", "skfairbilevel", _ours(_EST + "robust", "FairRobustClassifier", _robust),
           requires=_EST + "robust",
           description="FairRobustClassifier: input-perturbation robust training (radius 0.1)"),
    Method("eg_dp", "fairlearn", _build_eg("demographic_parity"), requires="fairlearn",
           description="ExponentiatedGradient(LogisticRegression, DemographicParity)"),
    Method("eg_eo", "fairlearn", _build_eg("equalized_odds"), requires="fairlearn",
           description="ExponentiatedGradient(LogisticRegression, EqualizedOdds)"),
    Method("gs_dp", "fairlearn", _build_gs("demographic_parity"), requires="fairlearn",
           description="GridSearch(LogisticRegression, DemographicParity)"),
    Method("gs_eo", "fairlearn", _build_gs("equalized_odds"), requires="fairlearn",
           description="GridSearch(LogisticRegression, EqualizedOdds)"),
    Method("threshold_dp", "fairlearn", _build_threshold("demographic_parity"),
           requires="fairlearn", predict_needs_sensitive=True,
           description="ThresholdOptimizer(LogisticRegression, demographic parity); "
                       "uses the sensitive features at predict time"),
    Method("threshold_eo", "fairlearn", _build_threshold("equalized_odds"),
           requires="fairlearn", predict_needs_sensitive=True,
           description="ThresholdOptimizer(LogisticRegression, equalized odds); "
                       "uses the sensitive features at predict time"),
    Method("adversarial", "fairlearn", _build_adversarial, requires="fairlearn.adversarial",
           description="AdversarialFairnessClassifier (torch backend, alpha 0.3, 5 epochs)"),
    Method("correlation_remover", "fairlearn", _build_correlation_remover,
           requires="fairlearn.preprocessing", uses_sensitive=False, keep_sensitive=True,
           description="CorrelationRemover + LogisticRegression"),
    Method("logreg", "scikit-learn", _build_logreg, uses_sensitive=False,
           description="LogisticRegression, unconstrained"),
    Method("mlp", "scikit-learn", _build_mlp, uses_sensitive=False,
           description="MLPClassifier(64,), unconstrained, early stopping"),
]}

_GROUPS = {
    "all": list(METHODS),
    "ours": [n for n, m in METHODS.items() if m.family == "skfairbilevel"],
    "fairlearn": [n for n, m in METHODS.items() if m.family == "fairlearn"],
    "sklearn": [n for n, m in METHODS.items() if m.family == "scikit-learn"],
}


def resolve_methods(spec):
    """Method names from a comma-separated ``spec`` of names and groups.

    Groups: ``all``, ``ours``, ``fairlearn``, ``sklearn``. None means ``all``.

    Raises
    ------
    ValueError
        Naming the unknown entries and listing the valid ones.
    """
    if spec is None:
        return list(METHODS)
    items = [spec] if isinstance(spec, str) else list(spec)
    parts = [p.strip() for item in items for p in str(item).split(",") if p.strip()]
    if not parts:
        raise ValueError("--methods is empty; give method names or groups, e.g. "
                         "'ours,logreg'.")
    unknown = [p for p in parts if p not in METHODS and p not in _GROUPS]
    if unknown:
        raise ValueError(
            f"unknown method(s) {unknown}; choose from {list(METHODS)} or the groups "
            f"{list(_GROUPS)} (comma-separated)."
        )
    names = []
    for p in parts:
        for n in _GROUPS.get(p, [p]):
            if n not in names:
                names.append(n)
    return names


def _available(method):
    if method.requires is None:
        return None
    try:
        importlib.import_module(method.requires)
    except ImportError as exc:
        return f"{method.name}: skipped, {method.requires} cannot be imported ({exc})"
    return None


def resolve_metric(metric):
    """Canonical ``--metric`` name (aliases dp, eo, sg)."""
    name = _METRIC_ALIASES.get(metric, metric)
    if name not in METRICS:
        raise ValueError(
            f"unknown metric {metric!r}; choose from {list(METRICS)} (or the aliases "
            f"{list(_METRIC_ALIASES)})."
        )
    return name


# --------------------------------------------------------------------------- data


def load_data(dataset, sensitive=None, *, quick=False):
    """Training and test parts of a bundled dataset, as the comparison uses them.

    Returns
    -------
    data : dict
        ``X_train, y_train, A_train, X_test, y_test, A_test`` (pandas), ``sensitive``
        (list of column names) and ``split`` (its description).
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose from {list(DATASETS)}.")
    spec = DATASETS[dataset]
    from . import datasets as ds

    loader = getattr(ds, spec.loader)
    if sensitive is None:
        sens = [spec.sensitive]
    elif isinstance(sensitive, str):
        sens = [c.strip() for c in sensitive.split(",") if c.strip()]
    else:
        sens = list(sensitive)
    if not sens:
        raise ValueError("--sensitive is empty; give a column name such as 'sex'.")
    arg = sens[0] if len(sens) == 1 else sens
    if dataset == "adult":
        train = loader(sensitive=arg, split="train", **spec.kwargs)
        test = loader(sensitive=arg, split="test", **spec.kwargs)
        parts = [(train.data, train.target), (test.data, test.target)]
    else:
        bunch = loader(sensitive=arg, **spec.kwargs)
        X, y = bunch.data, bunch.target
        strata = _strata(y, X[sens])
        idx_tr, idx_te = train_test_split(np.arange(len(y)), test_size=0.3, random_state=0,
                                          stratify=strata)
        parts = [(X.iloc[idx_tr], y.iloc[idx_tr]), (X.iloc[idx_te], y.iloc[idx_te])]
    split = spec.split
    if quick:
        parts = [_subsample(X, y, sens, QUICK_ROWS) for X, y in parts]
        split += f"; quick: at most {QUICK_ROWS} rows of each part (stratified, " \
                 f"random_state=0)"
    (X_tr, y_tr), (X_te, y_te) = [(X.reset_index(drop=True), y.reset_index(drop=True))
                                  for X, y in parts]
    y_tr, y_te = _binary_target(y_tr, dataset), _binary_target(y_te, dataset)
    A_tr = X_tr[sens[0]] if len(sens) == 1 else X_tr[sens]
    A_te = X_te[sens[0]] if len(sens) == 1 else X_te[sens]
    return dict(X_train=X_tr, y_train=y_tr, A_train=A_tr, X_test=X_te, y_test=y_te,
                A_test=A_te, sensitive=sens, split=split)


def _binary_target(y, dataset):
    values = np.unique(y)
    if len(values) != 2:
        raise ValueError(
            f"the comparison needs a binary target; {dataset} has {len(values)} classes "
            f"{values.tolist()}."
        )
    return y


def _strata(y, A):
    """Stratification labels (target x groups), falling back to y for tiny cells."""
    key = pd.Series(np.asarray(y).astype(str))
    for col in A.columns:
        key = key + "|" + A[col].astype(str).to_numpy()
    counts = key.value_counts()
    if (counts < 2).any():
        return np.asarray(y)
    return key.to_numpy()


def _subsample(X, y, sens, n):
    if len(y) <= n:
        return X, y
    idx, _ = train_test_split(np.arange(len(y)), train_size=n, random_state=0,
                              stratify=_strata(y, X[sens]))
    idx = np.sort(idx)
    return X.iloc[idx], y.iloc[idx]


# --------------------------------------------------------------------------- evaluation


def evaluate_predictions(y_true, y_pred, y_score, sensitive_features):
    """The comparison's metrics of one set of predictions (``y_score`` may be None)."""
    y_true = np.asarray(y_true)
    out = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "dp_difference": float(demographic_parity_difference(
            y_true, y_pred, sensitive_features=sensitive_features)),
        "eo_difference": float(equalized_odds_difference(
            y_true, y_pred, sensitive_features=sensitive_features)),
        "sufficiency_gap": math.nan,
    }
    if y_score is not None:
        out["sufficiency_gap"] = float(sufficiency_gap(
            y_true, y_score, sensitive_features=sensitive_features, n_bins=5))
    return out


def _scorers(with_proba):
    scoring = {
        "accuracy": "accuracy",
        "balanced_accuracy": "balanced_accuracy",
        "dp_difference": make_fairness_scorer("demographic_parity_difference",
                                              greater_is_better=True),
        "eo_difference": make_fairness_scorer("equalized_odds_difference",
                                              greater_is_better=True),
    }
    if with_proba:
        scoring["sufficiency_gap"] = make_fairness_scorer("sufficiency_gap",
                                                          greater_is_better=True)
    return scoring


def _make_pipeline(method, settings, X_train, notes):
    from .datasets import make_preprocessor

    pre = make_preprocessor(X_train, sensitive=list(settings.sensitive),
                            keep_sensitive=method.keep_sensitive)
    est = method.build(settings, notes)
    if method.uses_sensitive:
        est.set_fit_request(sensitive_features=True)
    return Pipeline([("preprocess", pre), ("model", est)])


def _has_proba(pipe):
    return hasattr(pipe, "predict_proba")


@contextlib.contextmanager
def _isolated():
    """Keep the global RNGs untouched (fairlearn's adversarial classifier seeds torch's
    global generator) and silence warnings that say nothing about the comparison."""
    import torch

    state = np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            warnings.simplefilter("ignore", category=sklearn.exceptions.ConvergenceWarning)
            # fairlearn's adversarial classifier drops the feature names in fit, then warns
            warnings.filterwarnings("ignore", message="X has feature names, but",
                                    category=UserWarning)
            yield
    finally:
        np.random.set_state(state)


@contextlib.contextmanager
def _threads(n):
    """Limit torch's intra-op threads and the BLAS/OpenMP pools to ``n``; restore after.

    At the sizes of these datasets a second thread mostly adds synchronisation: a
    FairMLPClassifier fit on Adult took 0.6-0.8 s with one torch thread and about 20 s
    with two on a shared, loaded 2-core machine (benchmarks/results/compare.md).
    """
    import torch
    from threadpoolctl import threadpool_limits

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(old)


def _scores_of(model, X, A, method, seed):
    """(y_pred, y_score or None) of a fitted pipeline on X."""
    with _isolated():
        return _predictions(model, X, A, method, seed)


def _predictions(model, X, A, method, seed):
    if method.predict_needs_sensitive:
        Xt = model[:-1].transform(X)
        est = model[-1]
        y_pred = est.predict(Xt, sensitive_features=A, random_state=seed)
        score = None
        pmf = getattr(est, "_pmf_predict", None)  # fairlearn-private: P(y_hat = 1)
        if pmf is not None:
            try:
                score = np.asarray(pmf(Xt, sensitive_features=A))[:, 1]
            except Exception:  # noqa: BLE001 - the private API changed: no scores
                score = None
        return y_pred, score
    y_pred = model.predict(X)
    score = model.predict_proba(X)[:, 1] if _has_proba(model) else None
    return y_pred, score


def _fit(model, X, y, A, method):
    """Fit (metadata routing is on); returns the seconds taken."""
    with _isolated():
        start = time.perf_counter()
        if method.uses_sensitive:
            model.fit(X, y, sensitive_features=A)
        else:
            model.fit(X, y)
        return time.perf_counter() - start


def _run_split(method, settings, data, notes):
    model = _make_pipeline(method, settings, data["X_train"], notes)
    seconds = _fit(model, data["X_train"], data["y_train"], data["A_train"], method)
    y_pred, score = _scores_of(model, data["X_test"], data["A_test"], method, settings.seed)
    row = evaluate_predictions(data["y_test"], y_pred, score, data["A_test"])
    row["fit_seconds"] = seconds
    return row


def _run_cv(method, settings, data, k, notes, tick):
    X, y, A = data["X_train"], data["y_train"], data["A_train"]
    splitter = StratifiedKFold(k, shuffle=True, random_state=settings.seed)
    model = _make_pipeline(method, settings, X, notes)
    if method.predict_needs_sensitive:  # our own loop over the same folds
        rows = []
        for tr, te in splitter.split(X, y):
            m = clone(model)
            m[-1].set_fit_request(sensitive_features=True)
            sec = _fit(m, X.iloc[tr], y.iloc[tr], A.iloc[tr], method)
            y_pred, score = _scores_of(m, X.iloc[te], A.iloc[te], method, settings.seed)
            r = evaluate_predictions(y.iloc[te], y_pred, score, A.iloc[te])
            r["fit_seconds"] = sec
            rows.append(r)
            tick()
        frame = pd.DataFrame(rows)
    else:
        with _isolated():
            res = cross_validate(model, X, y, cv=splitter,
                                 scoring=_scorers(_has_proba(model)),
                                 params={"sensitive_features": A})
        frame = pd.DataFrame({c: res.get(f"test_{c}", np.full(k, np.nan))
                              for c in _METRIC_COLUMNS if c != "fit_seconds"})
        frame["fit_seconds"] = res["fit_time"]
        tick(k)
    row = {c: float(frame[c].mean()) for c in _METRIC_COLUMNS}
    row.update({f"{c}_std": float(frame[c].std(ddof=1)) for c in _METRIC_COLUMNS})
    return row


# --------------------------------------------------------------------------- output


@dataclass
class ComparisonResult:
    """What :func:`run_comparison` returns.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per method that ran: :data:`COLUMNS` (+ ``*_std`` with ``cv``) and
        ``note``.
    info : dict
        Configuration, data description, versions.
    notes : list of str
        Skipped methods, failures, parameters left at defaults, caveats.
    failed : dict
        ``{method: error message}``.
    files : dict
        Paths written (``csv``, ``json``, ``png``).
    """

    table: pd.DataFrame
    info: dict
    notes: list
    failed: dict
    files: dict = field(default_factory=dict)


def format_table(table, metric="demographic_parity"):
    """The terminal table: one line per method, sorted by the chosen fairness metric."""
    if table.empty:
        return "(no results)"
    col = METRICS[resolve_metric(metric)][0]
    shown = table.sort_values([col, "accuracy"], ascending=[True, False],
                              na_position="last")
    headers = {"method": "method", "family": "family", "accuracy": "acc",
               "balanced_accuracy": "bal_acc", "dp_difference": "DP diff",
               "eo_difference": "EO diff", "sufficiency_gap": "suff gap",
               "fit_seconds": "fit s"}
    lines = []
    cv = "accuracy_std" in shown.columns
    cells = []
    for _, r in shown.iterrows():
        row = [str(r["method"]), str(r["family"])]
        for c in _METRIC_COLUMNS:
            v = r[c]
            if pd.isna(v):
                row.append("-")
            elif c == "fit_seconds":
                row.append(f"{v:.1f}")
            elif cv and not pd.isna(r.get(f"{c}_std", np.nan)):
                row.append(f"{v:.3f}±{r[f'{c}_std']:.3f}")
            else:
                row.append(f"{v:.3f}")
        row.append("*" if r.get("note") else "")
        cells.append(row)
    head = [headers[c] for c in COLUMNS] + [""]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:<{w}}}" if i < 2 else f"{{:>{w}}}" for i, w in enumerate(widths))
    lines.append(fmt.format(*head).rstrip())
    lines.append("  ".join("-" * w for w in widths).rstrip())
    lines.extend(fmt.format(*c).rstrip() for c in cells)
    return "\n".join(lines)


def draw_pareto(table, metric="demographic_parity", ax=None, title="", legend=True):
    """Draw accuracy against the chosen fairness metric, with the Pareto front.

    Parameters
    ----------
    table : pandas.DataFrame
        ``ComparisonResult.table``.
    metric : str, default="demographic_parity"
        ``"demographic_parity"``, ``"equalized_odds"`` or ``"sufficiency"``.
    ax : matplotlib Axes, default=None
        Where to draw; None creates a figure.
    title : str, default=""
    legend : bool, default=True
        Draw the legend (to the right of the axes).

    Returns
    -------
    ax : matplotlib Axes
    """
    import matplotlib.pyplot as plt

    from ._pareto import pareto_front

    col = METRICS[resolve_metric(metric)][0]
    if ax is None:
        _, ax = plt.subplots(figsize=(9.0, 5.0))
    pts = table.dropna(subset=[col, "accuracy"]).reset_index(drop=True)
    colors = {"skfairbilevel": "tab:blue", "fairlearn": "tab:orange",
              "scikit-learn": "tab:gray"}
    uses_a = pts["note"].fillna("").str.contains("uses A at predict") if "note" in pts \
        else pd.Series(False, index=pts.index)
    for fam, sub in pts.groupby("family"):
        color = colors.get(fam, "k")
        special = uses_a[sub.index]
        ax.scatter(sub[col][~special], sub["accuracy"][~special], s=40, marker="o",
                   color=color, zorder=3)
        ax.scatter(sub[col][special], sub["accuracy"][special], s=40, marker="D",
                   color=color, zorder=3)
        ax.scatter([], [], marker="o", color=color, label=fam)
    # one label per distinct point (methods with identical results share it); a label
    # whose point is close to an already labelled one goes to another side of its point
    keys = pts[[col, "accuracy"]].round(6).apply(tuple, axis=1)
    span_x = max(float(np.ptp(pts[col])), 1e-9) if len(pts) else 1.0
    span_y = max(float(np.ptp(pts["accuracy"])), 1e-9) if len(pts) else 1.0
    offsets = [((4, 3), "left"), ((4, -10), "left"), ((-4, 3), "right"),
               ((-4, -10), "right")]
    placed = []
    x_min = float(pts[col].min()) if len(pts) else 0.0
    for key, sub in pts.groupby(keys, sort=False):
        near = sum(abs(key[0] - x) / span_x < 0.06 and abs(key[1] - y) / span_y < 0.06
                   for x, y in placed)
        right_edge = (key[0] - x_min) / span_x > 0.75  # label to the left of the point
        (dx, dy), ha = offsets[(near + 2 * right_edge) % len(offsets)]
        ax.annotate(", ".join(sub["method"]), key, textcoords="offset points",
                    xytext=(dx, dy), fontsize=8, ha=ha)
        placed.append(key)
    if uses_a.any():
        ax.scatter([], [], marker="D", color="w", edgecolor="k",
                   label="uses A at predict")
    if len(pts):
        front = pareto_front(pts, x=col, y="accuracy")
        ax.step(front[col], front["accuracy"], where="post", color="k", lw=1, alpha=0.6,
                label="Pareto front", zorder=2)
    ax.margins(x=0.08, y=0.08)
    ax.set_xlabel(f"{col.replace('_', ' ')} (lower is fairer)")
    ax.set_ylabel("accuracy")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  borderaxespad=0)
    return ax


def plot_pareto(table, metric, path, title=""):
    """:func:`draw_pareto` into a new figure saved as PNG at ``path`` (Agg backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 5.0))
    FigureCanvasAgg(fig)
    draw_pareto(table, metric, ax=fig.add_subplot(), title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def _json_safe(obj):
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float | np.floating):
        return None if not math.isfinite(obj) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def write_outputs(result, out, metric):
    """CSV, JSON and PNG into directory ``out``; returns ``{kind: path}``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {"csv": out / "results.csv", "json": out / "results.json",
             "png": out / "pareto.png"}
    result.table.to_csv(files["csv"], index=False)
    payload = {"info": result.info, "notes": result.notes, "failed": result.failed,
               "results": result.table.to_dict(orient="records")}
    files["json"].write_text(json.dumps(_json_safe(payload), indent=2) + "\n")
    title = (f"{result.info['dataset']} ({', '.join(result.info['sensitive'])}), "
             f"{result.info['evaluation']}")
    plot_pareto(result.table, metric, files["png"], title=title)
    return {k: str(v) for k, v in files.items()}


# --------------------------------------------------------------------------- runner


def run_comparison(*, dataset="adult", sensitive=None, methods=None,
                   metric="demographic_parity", cv=None, quick=False, seed=0,
                   out="compare_out", progress=True, n_threads=1, command=None):
    """Run the comparison and write its outputs.

    Parameters
    ----------
    dataset : str, default="adult"
        A key of :data:`DATASETS`.
    sensitive : str or list of str, default=None
        Sensitive column(s) (comma-separated string or list); None: the dataset's
        default. Several columns give intersectional groups.
    methods : str or list of str, default=None
        Method names and groups (see :func:`resolve_methods`); None: all.
    metric : str, default="demographic_parity"
        The fairness axis of the Pareto plot and the sort key of the table:
        ``"demographic_parity"``, ``"equalized_odds"`` or ``"sufficiency"``. It also
        sets the constraint our estimators and the adversarial baseline target
        (equalized odds for ``"equalized_odds"``, else demographic parity);
        ExponentiatedGradient, GridSearch and ThresholdOptimizer run both constraints.
    cv : int, default=None
        Number of cross-validation folds on the training rows; None evaluates on the
        test split.
    quick : bool, default=False
        Small settings: subsampled data, few epochs/iterations.
    seed : int, default=0
        Seeds every method (not the data split).
    out : str or path or None, default="compare_out"
        Directory for ``results.csv``, ``results.json`` and ``pareto.png``; None writes
        nothing.
    progress : bool, default=True
        Show a tqdm progress bar on stderr.
    n_threads : int, default=1
        Threads of torch and of the BLAS/OpenMP pools during the run (restored
        afterwards). One is the fastest at these sizes.
    command : str, default=None
        The command line, recorded in ``info`` (set by the command-line interface).

    Returns
    -------
    result : ComparisonResult
    """
    metric = resolve_metric(metric)
    names = resolve_methods(methods)
    if cv is not None and (isinstance(cv, bool) or not isinstance(cv, int) or cv < 2):
        raise ValueError(f"cv must be an int >= 2 (number of folds) or None; got {cv!r}.")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an int >= 0; got {seed!r}.")
    if isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1:
        raise ValueError(f"n_threads must be an int >= 1; got {n_threads!r}.")
    data = load_data(dataset, sensitive, quick=quick)
    fairness = METRICS[metric][1]
    settings = Settings(seed=seed, quick=quick, fairness=fairness,
                        sensitive=tuple(data["sensitive"]), n_train=len(data["y_train"]))
    notes, failed, rows = [], {}, []
    runnable = []
    for name in names:
        skip = _available(METHODS[name])
        if skip:
            notes.append(skip)
        else:
            runnable.append(METHODS[name])

    A_all = data["A_train"]
    n_groups = len(pd.DataFrame(A_all).drop_duplicates())
    if any(m.keep_sensitive for m in runnable) and n_groups > 2:
        notes.append("correlation_remover: the sensitive column is ordinal-encoded "
                     f"({n_groups} groups), so CorrelationRemover removes a linear "
                     "dependence on the group code, not on each group.")
    if any(m.predict_needs_sensitive for m in runnable):
        notes.append("threshold_*: ThresholdOptimizer uses the sensitive features at "
                     "predict time (the other methods do not); scikit-learn cannot route "
                     "them to predict, so it is evaluated in this module's own loop"
                     + (" over the same folds." if cv else "."))

    from tqdm.auto import tqdm

    total = len(runnable) * (cv or 1)
    bar = tqdm(total=total, disable=not progress, unit="fit", file=sys.stderr,
               dynamic_ncols=True, leave=False)
    started = time.perf_counter()
    interrupted = False
    try:
        with sklearn.config_context(enable_metadata_routing=True), _threads(n_threads):
            for method in runnable:
                bar.set_description(method.name)
                m_notes = []
                try:
                    if cv:
                        row = _run_cv(method, settings, data, cv, m_notes, bar.update)
                    else:
                        row = _run_split(method, settings, data, m_notes)
                        bar.update(1)
                except KeyboardInterrupt:
                    interrupted = True
                    notes.append(f"{method.name}: interrupted; the remaining methods "
                                 f"were not run.")
                    break
                except Exception as exc:  # noqa: BLE001 - one method failing is a result
                    failed[method.name] = f"{type(exc).__name__}: {exc}"
                    notes.append(f"{method.name}: FAILED ({type(exc).__name__}: {exc})")
                    bar.update(cv or 1)
                    continue
                notes.extend(m_notes)
                row = {"method": method.name, "family": method.family, **row,
                       "note": "; ".join(m_notes)}
                if method.predict_needs_sensitive:
                    row["note"] = "; ".join(filter(None, [row["note"],
                                                          "uses A at predict"]))
                rows.append(row)
    finally:
        bar.close()

    table = pd.DataFrame(rows)
    if table.empty:
        table = pd.DataFrame(columns=COLUMNS + ["note"])
    ordered = COLUMNS + [c for c in table.columns if c not in COLUMNS]
    table = table[ordered]
    info = {
        "dataset": dataset,
        "description": DATASETS[dataset].description,
        "sensitive": data["sensitive"],
        "groups": int(n_groups),
        "split": data["split"],
        "n_train": int(len(data["y_train"])),
        "n_test": int(len(data["y_test"])),
        "evaluation": f"{cv}-fold CV on the training rows" if cv else "test split",
        "metric": metric,
        "fairness_target": fairness,
        "quick": bool(quick),
        "seed": seed,
        "threads": n_threads,
        "methods": names,
        "seconds": round(time.perf_counter() - started, 2),
        "interrupted": interrupted,
        "command": command,
        "versions": {"skfairbilevel": __version__, "scikit-learn": sklearn.__version__,
                     "fairlearn": _version("fairlearn"), "torch": _version("torch"),
                     "python": platform.python_version()},
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    result = ComparisonResult(table=table, info=info, notes=notes, failed=failed)
    if out is not None:
        result.files = write_outputs(result, out, metric)
    return result


def _version(module):
    try:
        return importlib.import_module(module).__version__
    except Exception:  # noqa: BLE001
        return None
