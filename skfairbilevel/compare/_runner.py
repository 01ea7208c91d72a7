"""The runner: split, fit every knob value, score, cache, in parallel; then choose.

:func:`run_comparison` plans one fit per seed, part (hold-out or fold), method and knob
value; looks each up in the cache; runs the missing ones through scikit-learn's
``Parallel`` (joblib processes, or a Dask cluster with ``scheduler``), so the global
configuration reaches every worker; stores each result as it arrives; and finally chooses
the operating points on validation data and summarises them over seeds.
"""

import contextlib
import dataclasses
import json
import math
import os
import platform
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ._cache import FitCache, describe, fit_key
from ._data import load_table, make_splits, prepare
from ._methods import Settings, resolve_methods
from ._protocol import (
    METRICS,
    front_table,
    resolve_metric,
    select_operating_points,
    summarize,
)

__all__ = [
    "ComparisonResult",
    "run_comparison",
    "load_result",
    "evaluate_predictions",
    "parity_gaps",
    "signed_tpr_gap",
    "RUN_COLUMNS",
    "DEFAULT_EPSILONS",
]

#: the columns of runs.csv
RUN_COLUMNS = [
    "method",
    "family",
    "params",
    "seed",
    "split",
    "accuracy",
    "balanced_accuracy",
    "dp_difference",
    "eo_difference",
    "fit_seconds",
    "sufficiency_gap",
    "point",
    "fold",
    "tpr_gap",
]
DEFAULT_EPSILONS = (0.01, 0.02, 0.05)
DEVICES = ("cpu", "cuda", "auto")


@dataclass
class ComparisonResult:
    """What :func:`run_comparison` returns.

    Attributes
    ----------
    runs : pandas.DataFrame
        One row per fit and evaluated split (``runs.csv``; :data:`RUN_COLUMNS`).
    summary : pandas.DataFrame
        One row per method and epsilon (``summary.csv``; see
        :func:`~skfairbilevel.compare.summarize`), plus ``sensitive_at_predict``.
    chosen : pandas.DataFrame
        The chosen point of every method, epsilon and seed
        (:func:`~skfairbilevel.compare.select_operating_points`).
    fronts : pandas.DataFrame
        Every method's test front, mean and interval over seeds per knob value.
    info : dict
        Configuration, data, methods, fit counts, timing, versions.
    notes : list of str
        Skipped methods, failed fits, caveats.
    failed : dict
        ``{method: [error messages]}``.
    files : dict
        Paths written (``runs``, ``summary``, ``report_md``, ``report_html``, ``png``,
        ``info``).
    """

    runs: pd.DataFrame
    summary: pd.DataFrame
    chosen: pd.DataFrame
    fronts: pd.DataFrame
    info: dict
    notes: list
    failed: dict
    files: dict = field(default_factory=dict)

    @property
    def interrupted(self):
        return bool(self.info.get("interrupted"))


# --------------------------------------------------------------------------- one fit


def parity_gaps(y_true, y_pred, groups):
    """Demographic parity and equalized odds differences, as fairlearn defines them.

    Over the groups present in ``groups``: the largest minus the smallest selection
    rate, and the larger of the same range of true-positive rates and of false-positive
    rates (a group without positives, or without negatives, has rate 0 there, as in
    fairlearn). Equal to ``fairlearn.metrics.demographic_parity_difference`` and
    ``equalized_odds_difference`` for binary 0/1 labels, several hundred times faster
    (the runner scores thousands of prediction sets).
    """
    y_true = np.asarray(y_true).astype(np.int64)
    y_pred = np.asarray(y_pred).astype(np.float64)
    _, g = np.unique(np.asarray(groups), return_inverse=True)
    k = int(g.max()) + 1 if g.size else 0

    def rate_range(rows):
        hits = np.bincount(g[rows], weights=y_pred[rows], minlength=k)
        count = np.bincount(g[rows], minlength=k)
        rates = np.divide(hits, count, out=np.zeros(k), where=count > 0)
        return float(rates.max() - rates.min()) if k else 0.0

    everyone = np.ones(y_true.shape, dtype=bool)
    return (rate_range(everyone), max(rate_range(y_true == 1), rate_range(y_true == 0)))


def signed_tpr_gap(y_true, y_pred, groups):
    """The signed true-positive-rate gap of two groups: the rate of the second group
    (in sorted order) minus that of the first, as
    :func:`skfairbilevel.metrics.separation_gap` with ``k=1``; NaN unless there are
    exactly two groups with positives."""
    y_true = np.asarray(y_true).astype(np.int64)
    y_pred = np.asarray(y_pred).astype(np.float64)
    _, g = np.unique(np.asarray(groups), return_inverse=True)
    pos = y_true == 1
    count = np.bincount(g[pos], minlength=2)
    if g.size == 0 or int(g.max()) != 1 or (count == 0).any():
        return math.nan
    rates = np.bincount(g[pos], weights=y_pred[pos], minlength=2) / count
    return float(rates[1] - rates[0])


def evaluate_predictions(y_true, y_pred, y_score, sensitive_features):
    """Accuracy, balanced accuracy and the fairness metrics of one set of predictions.

    ``y_true`` and ``y_pred`` are 0/1. ``y_score`` (probability of the positive class)
    may be None: the sufficiency gap is then NaN. The demographic parity and equalized
    odds differences are fairlearn's (:func:`parity_gaps`); the sufficiency gap is
    :func:`skfairbilevel.metrics.sufficiency_gap` with 5 bins.
    """
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    from ..metrics import sufficiency_gap

    y_true = np.asarray(y_true)
    dp, eo = parity_gaps(y_true, y_pred, sensitive_features)
    out = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "dp_difference": dp,
        "eo_difference": eo,
        "sufficiency_gap": math.nan,
        "tpr_gap": signed_tpr_gap(y_true, y_pred, sensitive_features),
    }
    if y_score is not None:
        out["sufficiency_gap"] = float(
            sufficiency_gap(y_true, y_score, sensitive_features=sensitive_features, n_bins=5)
        )
    return out


@dataclass
class _Task:
    """One fit: what the worker needs besides the arrays."""

    method: str
    family: str
    point: int
    params: dict
    seed: int
    fold: int | None
    part: int
    estimator: object
    fit_sensitive: bool
    predict_sensitive: bool
    sensitive_input: bool
    splits: tuple
    key: str


@contextlib.contextmanager
def _threads(n):
    """Limit torch's intra-op threads and the BLAS/OpenMP pools to ``n``; restore after."""
    from threadpoolctl import threadpool_limits

    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        torch = None
    old = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        if torch is not None:
            torch.set_num_threads(old)


@contextlib.contextmanager
def _isolated():
    """Keep the global NumPy and torch RNGs untouched (fairlearn's adversarial classifier
    seeds torch's) and silence warnings that say nothing about the comparison."""
    import sklearn
    import torch

    state = np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            warnings.simplefilter("ignore", category=sklearn.exceptions.ConvergenceWarning)
            warnings.filterwarnings(
                "ignore", message="X has feature names, but", category=UserWarning
            )
            warnings.filterwarnings(
                "ignore", message="X does not have valid feature names", category=UserWarning
            )
            yield
    finally:
        np.random.set_state(state)


def _positive_score(est, X):
    proba = getattr(est, "predict_proba", None)
    if proba is None:
        return None
    p = np.asarray(proba(X))
    classes = list(getattr(est, "classes_", [0, 1]))
    return p[:, classes.index(1) if 1 in classes else -1]


def _predictions(est, X, A, task):
    """(y_pred, probability of class 1 or None) of a fitted estimator."""
    if not task.predict_sensitive:
        return est.predict(X), _positive_score(est, X)
    kwargs = {"sensitive_features": A}
    from ._methods import _accepts

    if _accepts(est, "predict", "random_state"):
        kwargs["random_state"] = task.seed
    y_pred = est.predict(X, **kwargs)
    pmf = getattr(est, "_pmf_predict", None)  # ThresholdOptimizer: P(y_hat = 1)
    score = None
    if pmf is not None:
        with contextlib.suppress(Exception):
            score = np.asarray(pmf(X, sensitive_features=A))[:, 1]
    return y_pred, score


def _execute(task, n_threads, labels, X_train, y_train, g_train, *evaluated):
    """Fit one estimator and score it on each evaluated split (runs in a worker)."""
    est = task.estimator
    try:
        with _threads(n_threads), _isolated():
            start, cpu = time.perf_counter(), time.process_time()
            if task.fit_sensitive:
                est.fit(X_train, y_train, sensitive_features=labels[g_train])
            else:
                est.fit(X_train, y_train)
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
            rows = []
            for i, split in enumerate(task.splits):
                X, y, g = evaluated[3 * i : 3 * i + 3]
                y_pred, score = _predictions(est, X, labels[g], task)
                rows.append({"split": split, **evaluate_predictions(y, y_pred, score, g)})
    except Exception as exc:  # noqa: BLE001 - one failed fit is a result, not a crash
        return {"key": task.key, "error": f"{type(exc).__name__}: {exc}"}
    return {"key": task.key, "fit_seconds": seconds, "fit_cpu_seconds": cpu, "rows": rows}


# --------------------------------------------------------------------------- planning


def _check_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}.")
    return int(value)


def _check_epsilons(epsilons):
    if isinstance(epsilons, str):
        try:
            epsilons = [float(e) for e in epsilons.split(",") if e.strip()]
        except ValueError:
            raise ValueError(
                f"--epsilons must be comma-separated numbers such as 0.01,0.05; got {epsilons!r}."
            ) from None
    try:
        eps = sorted({float(e) for e in np.ravel(epsilons)})
    except (TypeError, ValueError):
        raise ValueError(f"epsilons must be numbers; got {epsilons!r}.") from None
    if not eps or any(not 0.0 < e <= 1.0 for e in eps):
        raise ValueError(
            f"--epsilons must be fairness bounds in (0, 1], e.g. 0.01,0.02,0.05; got {epsilons!r}."
        )
    return tuple(eps)


def _check_device(device):
    if not isinstance(device, str) or not (device in DEVICES or device.startswith("cuda:")):
        raise ValueError(f"device must be one of {DEVICES} (or 'cuda:<i>'); got {device!r}.")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ValueError(
                f"--device {device}: torch sees no CUDA device here; use "
                "--device cpu, or auto (GPU when there is one)."
            )
    return device


def _cores():
    from joblib import cpu_count

    return max(1, cpu_count())


def _plan(methods, table, seeds, run_settings, *, cv, notes, failed):
    """The parts of every seed, and every fit as a _Task (the cache key included).

    ``run_settings`` are the run's :class:`Settings`; each seed gets a copy with its seed.
    """
    parts, tasks, broken = [], [], set()
    device = run_settings.device
    for seed in seeds:
        settings = dataclasses.replace(run_settings, seed=seed)
        for part in make_splits(table, seed, quick=settings.quick, cv=cv):
            pid = len(parts)
            parts.append(part)
            for m in methods:
                if m.name in broken:
                    continue
                for point, params in enumerate(m.param_grid(settings)):
                    try:
                        est = m.make(settings, params)
                    except Exception as exc:  # noqa: BLE001 - reported per method
                        msg = f"cannot build the estimator: {type(exc).__name__}: {exc}"
                        failed.setdefault(m.name, []).append(msg)
                        notes.append(f"{m.name}: {msg}")
                        broken.add(m.name)
                        break
                    fit_s, pred_s = m.fit_uses_sensitive(est), m.predict_uses_sensitive(est)
                    splits = tuple(part.evaluate)
                    key = fit_key(
                        data=table.fingerprint,
                        rows=part.key,
                        method=m.name,
                        estimator=describe(est),
                        fit_sensitive=fit_s,
                        predict_sensitive=pred_s,
                        sensitive_input=m.sensitive_as_input,
                        splits=splits,
                        device=device,
                    )
                    tasks.append(
                        _Task(
                            m.name,
                            m.family,
                            point,
                            params,
                            seed,
                            part.fold,
                            pid,
                            est,
                            fit_s,
                            pred_s,
                            m.sensitive_as_input,
                            splits,
                            key,
                        )
                    )
    return parts, tasks


def _task_arrays(task, prepared, labels):
    p = prepared[task.part]
    X = p.X_sensitive if task.sensitive_input else p.X
    out = [labels, X["train"], p.y["train"], p.groups["train"]]
    for split in task.splits:
        out += [X[split], p.y[split], p.groups[split]]
    return out


def _require_distributed():
    try:
        import dask  # noqa: F401
        import distributed
    except ImportError:
        raise ValueError(
            "--scheduler needs dask and distributed; install them with "
            "pip install 'skfairbilevel[dask]'."
        ) from None
    return distributed


@contextlib.contextmanager
def _backend(scheduler):
    """joblib's default backend, or the Dask backend connected to ``scheduler``."""
    if scheduler is None:
        yield None
        return
    distributed = _require_distributed()
    from joblib import parallel_config

    try:
        client = distributed.Client(scheduler, timeout="20s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise ValueError(
            f"--scheduler {scheduler!r}: cannot reach the Dask scheduler "
            f"({type(exc).__name__}: {exc})."
        ) from None
    try:
        with parallel_config(backend="dask"):
            yield client
    finally:
        client.close()


def _run_tasks(todo, prepared_for, labels, *, n_jobs, n_threads, scheduler, on_result):
    """Run the fits; ``on_result(record)`` for each as it finishes (any order).

    The calls are built before the first is dispatched: joblib's Dask backend pulls the
    next calls from its event-loop thread, where preparing data (and scattering it)
    can deadlock.
    """
    from sklearn.utils.parallel import Parallel, delayed

    if not todo:
        return
    calls = [
        delayed(_execute)(t, n_threads, *_task_arrays(t, prepared_for(t), labels)) for t in todo
    ]
    with _backend(scheduler):
        jobs = -1 if scheduler is not None else min(n_jobs, len(todo))
        for record in Parallel(n_jobs=jobs, return_as="generator_unordered")(calls):
            on_result(record)


# --------------------------------------------------------------------------- the run


def run_comparison(
    *,
    dataset="adult",
    data=None,
    target=None,
    sensitive=None,
    positive=None,
    methods=None,
    metric="demographic_parity",
    epsilons=DEFAULT_EPSILONS,
    seeds=3,
    seed=0,
    cv=None,
    quick=False,
    full=False,
    n_jobs=None,
    scheduler=None,
    device="cpu",
    n_threads=1,
    out="compare_out",
    cache=True,
    progress=True,
    command=None,
):
    """Run the comparison: every method's knob swept, operating points chosen on validation.

    Parameters
    ----------
    dataset : str, default="adult"
        A bundled dataset (:data:`~skfairbilevel.compare.DATASETS`); ignored with ``data``.
    data : str, path or pandas.DataFrame, default=None
        Your own table (CSV or Parquet file, or a DataFrame), with ``target`` and
        ``sensitive``.
    target : str, default=None
        The target column of ``data``.
    sensitive : str or list of str, default=None
        Sensitive column(s); several give intersectional groups. None: the bundled
        dataset's default. The sensitive columns are never model inputs, except for
        methods declared with ``sensitive_as_input`` (CorrelationRemover).
    positive : str, default=None
        The positive class of a target that is not 0/1.
    methods : str, Method or list, default=None
        Names and groups of :data:`~skfairbilevel.compare.METHODS` (comma-separated) or
        your own :class:`~skfairbilevel.compare.Method` objects; None: all.
    metric : str, default="demographic_parity"
        The unfairness that epsilon bounds: ``"demographic_parity"``,
        ``"equalized_odds"`` or ``"sufficiency"`` (aliases ``dp``, ``eo``, ``sg``). It
        also sets the constraint of the methods that follow it (equalized odds for
        ``"equalized_odds"``, demographic parity otherwise).
    epsilons : sequence of float or str, default=(0.01, 0.02, 0.05)
        Fairness bounds, each giving one operating point per method.
    seeds : int, default=3
        Number of seeds: ``seed``, ``seed + 1``, ... Each seed draws its own split and
        seeds every method.
    seed : int, default=0
        The first seed.
    cv : int, default=None
        Choose on K-fold cross-validation of the training and validation rows (then
        refit on all of them for the test figures) instead of the validation split.
    quick : bool, default=False
        Fewer rows (:data:`~skfairbilevel.compare._data.QUICK_ROWS`) and epochs.
    full : bool, default=False
        The denser ``full_grid`` of every method (and the paper settings of FACIMS).
    n_jobs : int, default=None
        Fits in parallel (joblib processes); None: the number of cores.
    scheduler : str, default=None
        Address of a Dask scheduler (``tcp://host:8786``): the fits run on that cluster
        through joblib's Dask backend (``n_jobs`` is then the cluster's).
    device : {"cpu", "cuda", "auto"}, default="cpu"
        Passed to the estimators that have a ``device`` parameter (ours) and to
        fairlearn's adversarial classifier.
    n_threads : int, default=1
        torch and BLAS threads per fit; keep ``n_jobs * n_threads`` at most the number
        of cores. One is the fastest for these small models.
    out : str, path or None, default="compare_out"
        Output directory (``runs.csv``, ``summary.csv``, ``report.md``, ``report.html``,
        ``pareto.png``, ``info.json``); None writes nothing.
    cache : bool or str or path, default=True
        Fit results cached on disk: True uses ``<out>/cache``, a path that directory,
        False nothing.
    progress : bool, default=True
        A progress bar on stderr: fits done of fits planned, with the time left.
    command : str, default=None
        The command line, recorded in ``info``.

    Returns
    -------
    result : ComparisonResult
    """
    started = time.perf_counter()
    load_start = _load()
    metric = resolve_metric(metric)
    eps = _check_epsilons(epsilons)
    seeds = _check_int(seeds, "seeds", 1)
    seed = _check_int(seed, "seed", 0)
    n_threads = _check_int(n_threads, "n_threads", 1)
    if cv is not None:
        cv = _check_int(cv, "cv", 2)
    if quick and full:
        raise ValueError("quick and full exclude each other: choose one.")
    n_jobs = (
        _cores()
        if n_jobs is None
        else (_cores() if n_jobs == -1 else _check_int(n_jobs, "n_jobs", 1))
    )
    device = _check_device(device)
    if scheduler is not None:
        _require_distributed()
    chosen_methods = resolve_methods(methods)
    notes, failed = [], {}
    runnable = []
    for m in chosen_methods:
        why = m.unavailable()
        if why:
            notes.append(why)
        else:
            runnable.append(m)
    table = load_table(dataset, data=data, target=target, sensitive=sensitive, positive=positive)
    notes.extend(table.notes)
    if len(table.group_labels) > 2 and any(m.sensitive_as_input for m in runnable):
        notes.append(
            f"correlation_remover: the sensitive column is ordinal-encoded "
            f"({len(table.group_labels)} groups), so CorrelationRemover removes a "
            f"linear dependence on the group code, not on each group."
        )
    if scheduler is None and n_jobs * n_threads > _cores():
        notes.append(
            f"{n_jobs} jobs x {n_threads} threads exceed the {_cores()} cores; "
            "fits will compete for them."
        )

    out_dir = None if out is None else Path(out)
    if cache is True:
        cache_dir = None if out_dir is None else out_dir / "cache"
    else:
        cache_dir = Path(cache) if cache else None
    store = FitCache(cache_dir)
    seed_list = list(range(seed, seed + seeds))
    run_settings = Settings(
        seed=seed,
        quick=quick,
        full=full,
        fairness=METRICS[metric][1],
        device=device,
        n_sensitive=len(table.sensitive),
    )
    parts, tasks = _plan(
        runnable, table, seed_list, run_settings, cv=cv, notes=notes, failed=failed
    )
    records, todo = {}, []
    for t in tasks:
        rec = store.get(t.key)
        if rec is not None and "rows" in rec:
            records[t.key] = rec
        else:
            todo.append(t)
    n_cached = len(records)

    prepared = {}

    def prepared_for(task):
        if task.part not in prepared:
            need = any(t.sensitive_input for t in todo if t.part == task.part)
            prepared[task.part] = prepare(table, parts[task.part], sensitive_block=need)
        return prepared

    from tqdm.auto import tqdm

    bar = tqdm(
        total=len(tasks),
        initial=n_cached,
        disable=not progress,
        unit="fit",
        file=sys.stderr,
        dynamic_ncols=True,
        desc="compare",
    )
    by_key = {t.key: t for t in tasks}
    interrupted = False
    labels = np.asarray(table.group_labels, dtype=object)

    def on_result(record):
        task = by_key[record["key"]]
        if "error" in record:
            failed.setdefault(task.method, []).append(record["error"])
            notes.append(
                f"{task.method} {json.dumps(task.params, default=str)} seed "
                f"{task.seed}: FAILED ({record['error']})"
            )
        else:
            records[task.key] = record
            store.put(task.key, record)
        bar.update(1)

    fit_start = time.perf_counter()
    try:
        import sklearn

        with sklearn.config_context(enable_metadata_routing=True):
            _run_tasks(
                todo,
                prepared_for,
                labels,
                n_jobs=n_jobs,
                n_threads=n_threads,
                scheduler=scheduler,
                on_result=on_result,
            )
    except KeyboardInterrupt:
        interrupted = True
        notes.append(
            f"interrupted after {len(records) - n_cached} of {len(todo)} fits; "
            "run the same command again to resume (finished fits are cached)."
        )
    finally:
        bar.close()
    fit_seconds = time.perf_counter() - fit_start

    cpu_by_method = {}
    for t in tasks:
        if t.key in records:
            cpu_by_method[t.method] = cpu_by_method.get(t.method, 0.0) + float(
                records[t.key].get("fit_cpu_seconds", math.nan)
            )
    runs = _runs_frame(tasks, records, runnable)
    chosen, summary, fronts = _assemble(
        runs, eps, metric, {t.method: t.predict_sensitive for t in tasks}
    )
    unranked = [m for m in dict.fromkeys(runs["method"]) if m not in set(summary["method"])]
    if unranked:
        notes.append(
            f"{', '.join(unranked)}: no {METRICS[metric][0]} on the validation "
            "rows (no predict_proba for the sufficiency gap, or no refit for the "
            "test rows), so no operating point was chosen."
        )
    info = _info(
        table,
        parts,
        runnable,
        locals_=dict(
            metric=metric,
            epsilons=list(eps),
            seeds=seed_list,
            cv=cv,
            quick=quick,
            full=full,
            n_jobs=n_jobs,
            n_threads=n_threads,
            scheduler=scheduler,
            device=device,
            cache=None if cache_dir is None else str(cache_dir),
            command=command,
            fits_planned=len(tasks),
            fits_cached=n_cached,
            fits_run=len(records) - n_cached,
            fits_failed=sum(len(v) for v in failed.values()),
            interrupted=interrupted,
            fits_wall_seconds=round(fit_seconds, 2),
            fit_cpu_seconds_by_method={k: round(v, 2) for k, v in cpu_by_method.items()},
            seconds=round(time.perf_counter() - started, 2),
            load_start=load_start,
            load_end=_load(),
        ),
        settings=run_settings,
    )
    result = ComparisonResult(
        runs=runs,
        summary=summary,
        chosen=chosen,
        fronts=fronts,
        info=info,
        notes=notes,
        failed=failed,
    )
    if out_dir is not None:
        from ._report import write_outputs

        result.files = write_outputs(result, out_dir)
    return result


def _assemble(runs, epsilons, metric, at_predict):
    """The chosen points, the summary (marking methods that use A at predict) and fronts."""
    chosen = select_operating_points(runs, epsilons, metric)
    summary = summarize(chosen)
    summary["sensitive_at_predict"] = [bool(at_predict.get(m, False)) for m in summary["method"]]
    return chosen, summary, front_table(runs, metric)


def load_result(out, *, epsilons=None, metric=None):
    """A finished run read back from its output directory, without fitting anything.

    Reads ``runs.csv`` and ``info.json`` and chooses the operating points again, for
    the run's epsilons and metric or for others (the choice only needs the validation
    and test rows already recorded). ``write_outputs(result, directory)`` then writes
    the reports again.

    Parameters
    ----------
    out : str or path
        The ``out`` directory of a run.
    epsilons : sequence of float, default=None
        None: the run's.
    metric : str, default=None
        None: the run's.

    Returns
    -------
    result : ComparisonResult
    """
    out = Path(out)
    try:
        runs = pd.read_csv(out / "runs.csv", dtype={"params": str})
        saved = json.loads((out / "info.json").read_text())
    except OSError as exc:
        raise ValueError(f"{str(out)!r} holds no finished run ({exc}).") from None
    runs["fold"] = runs["fold"].astype("Int64")
    info = dict(saved["info"])
    info["epsilons"] = list(_check_epsilons(info["epsilons"] if epsilons is None else epsilons))
    info["metric"] = resolve_metric(info["metric"] if metric is None else metric)
    at_predict = {m["name"]: m["sensitive"] == "at fit and predict" for m in info["methods"]}
    chosen, summary, fronts = _assemble(runs, info["epsilons"], info["metric"], at_predict)
    return ComparisonResult(
        runs=runs,
        summary=summary,
        chosen=chosen,
        fronts=fronts,
        info=info,
        notes=list(saved.get("notes", [])),
        failed=dict(saved.get("failed", {})),
    )


def _load():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on every platform
        return None


def _runs_frame(tasks, records, methods):
    order = {m.name: i for i, m in enumerate(methods)}
    split_order = {"validation": 0, "test": 1}
    rows = []
    for t in tasks:
        rec = records.get(t.key)
        if rec is None:
            continue
        for r in rec["rows"]:
            rows.append(
                {
                    "method": t.method,
                    "family": t.family,
                    "params": json.dumps(t.params, default=str),
                    "seed": t.seed,
                    "split": r["split"],
                    **{c: r[c] for c in RUN_COLUMNS[5:9]},
                    "fit_seconds": rec["fit_seconds"],
                    "sufficiency_gap": r["sufficiency_gap"],
                    "point": t.point,
                    "fold": t.fold,
                    "tpr_gap": r.get("tpr_gap", math.nan),
                    "_order": (
                        order[t.method],
                        t.seed,
                        t.point,
                        -1 if t.fold is None else t.fold,
                        split_order.get(r["split"], 2),
                    ),
                }
            )
    if not rows:
        return pd.DataFrame(columns=RUN_COLUMNS)
    frame = pd.DataFrame(rows).sort_values("_order", kind="stable")
    frame["fold"] = frame["fold"].astype("Int64")
    return frame[RUN_COLUMNS].reset_index(drop=True)


def _info(table, parts, methods, locals_, settings):
    import sklearn

    from .. import __version__
    from ._cache import _versions

    first = parts[0] if parts else None
    sizes = {}
    if first is not None:
        sizes = {
            "train": int(len(first.train)),
            **{k: int(len(v)) for k, v in first.evaluate.items()},
        }
        if first.fold is not None:
            sizes = {
                "train (per fold)": int(len(first.train)),
                "validation (per fold)": int(len(first.evaluate["validation"])),
                "test": int(len(parts[-1].evaluate.get("test", []))),
            }
    described = []
    for m in methods:
        try:
            est = m.make(settings, {})
        except Exception as exc:  # noqa: BLE001 - already reported by _plan
            est_text, uses = f"(cannot build: {exc})", "-"
        else:
            est_text = _short_repr(est)
            uses = (
                "as inputs"
                if m.sensitive_as_input
                else "at fit and predict"
                if m.predict_uses_sensitive(est)
                else "at fit"
                if m.fit_uses_sensitive(est)
                else "no"
            )
        described.append(
            {
                "name": m.name,
                "family": m.family,
                "knob": m.knob_label(),
                "grid": [json.dumps(p, default=str) for p in m.param_grid(settings)],
                "description": m.description,
                "plot_on": [list(pair) for pair in m.plot_on],
                "estimator": est_text,
                "sensitive": uses,
            }
        )
    info = {
        "dataset": table.name,
        "description": table.description,
        "target": table.target,
        "positive": table.positive,
        "sensitive": list(table.sensitive),
        "groups": table.group_counts(),
        "n_rows": int(len(table.y)),
        "n_features_raw": int(table.X.shape[1] - len(table.sensitive)),
        "split": (
            "Adult's official test file; validation: 20% of its training file"
            if table.fixed_test is not None
            else "stratified 60/20/20"
        ),
        "split_sizes": sizes,
        **locals_,
        "methods": described,
        "cores": _cores(),
        "versions": {**_versions(), "python": platform.python_version()},
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    info["versions"]["skfairbilevel"] = __version__
    info["versions"]["scikit-learn"] = sklearn.__version__
    return info


def _short_repr(est):
    import sklearn

    with sklearn.config_context(print_changed_only=True):
        return " ".join(repr(est).split())
