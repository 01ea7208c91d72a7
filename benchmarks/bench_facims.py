"""FACIMS on credit default and drug consumption, next to ERM, balanced ERM and ablations.

Protocol (``--protocol paper``, the default: the paper's, see
``/work/shared/methods/facims.md`` section 5, with the recommended fixes of its quirks
11 and 14):

* **Credit default** (``load_credit_default``): 22 features (all but ``EDUCATION``),
  sensitive feature ``EDUCATION`` (7 groups, codes 0-6). Per seed: 30 % stratified test
  split (9,000 rows); of the rest, a stratified 30 % validation split (6,300 rows, their
  natural distribution, ``random_state=seed``); the remaining training part (14,700
  rows) resampled to 400 rows per group (without replacement for groups with 400 rows or
  more, with replacement otherwise): 2,800 training rows.
* **Drug consumption** (``load_drug_consumption(n_classes=4)``): 4-class alcohol use from
  age, gender and the 7 personality scores (9 features); sensitive feature education in
  the reference's 7 levels ("left at 16 or before", "left at 17 or 18", then the five
  other levels). Per seed: 30 % stratified test split, 30 % of the rest for validation,
  no resampling.
* Standard scaling fitted on the (resampled) training rows only, applied to the
  validation and test rows; the splits change with the seed.
* FACIMS and its ablations train the group models on the training rows and their upper
  level on the validation rows (``fit(..., X_val=, y_val=, sensitive_features_val=)``).
  ``ERM`` / ``BERM`` train on the training rows only, as in the paper. Because FACIMS sees
  the validation rows as well, ``BERM+val`` ("BERM (train+val)") is BERM trained on the
  training rows with the validation rows appended (not resampled): whether the extra data
  alone explain a gain.
* ``--protocol internal``: the earlier (sessions 1-4) protocol, kept to reproduce the
  earlier numbers: the whole 70 % resampled to 400 rows per group (credit), FACIMS holds
  out its own stratified 30 % of those resampled rows inside ``fit``
  (``validation_fraction=0.3``), ERM / BERM train on all of them.
* Methods: ``FACIMS`` (defaults), ``FACIMS-I`` (``sam=False``), ``FACIMS-II``
  (``learn_loss_params=False``), ``ERM`` / ``BERM`` = ``FairMLPClassifier`` with the same
  architecture (400, 200, 100, ELU), Adam lr 1e-3, batch 50, 50 epochs, with
  ``class_weight=None`` / ``"balanced"``.
* Test metrics: balanced accuracy, accuracy, fairlearn's demographic-parity and
  equalized-odds differences (max gap between groups; one-vs-rest maximum for 4
  classes), the sufficiency gap (``skfairbilevel.metrics.sufficiency_gap``, 5 uniform
  bins, no zero-filling), and, to compare with the paper's table, the reference code's
  definitions: ``dp_ref`` = mean over groups of ``|P(yhat=1) - P(yhat=1 | g)|`` and
  ``eop_ref`` = mean over groups of ``|TPR - TPR_g|`` (binary only).
  ``sg_large`` is the sufficiency gap restricted to the groups with at least 100 test
  rows (credit: EDUCATION 1, 2, 3; the other four groups have 2 to 90 test rows and
  their curves are mostly noise).
* Reference points (``--methods LR-balanced HGB-balanced``, not run by default):
  scikit-learn's ``LogisticRegression`` and ``HistGradientBoostingClassifier``
  (learning rate 0.05) with ``class_weight="balanced"``, group-unaware, on the same rows.
* Seeds 0, 42, 666, 777, 1009 (the paper's); mean +- population std.
* ``--out runs.json`` also writes the test-set ``predict_proba`` of every run to
  ``runs.json.proba.npz``.

Learning rates chosen on validation (``--tune``, credit only): for each tuning seed
(default 0 and 42) the seed's training part is taken exactly as above (its test rows are
removed first and never touched); a stratified 30 % of it (``random_state=seed``) is held
out as "tune-val" and the rest is resampled to 400 rows per group and scaled as above
(``tune_split``). ``FACIMSClassifier`` (defaults except the two learning rates, 50 epochs,
``random_state=seed``) is fitted for every ``lr_prior`` in {0.1, 0.01} x ``lr_post`` in
{0.4, 0.1, 0.01} (the reference code's sweep) and evaluated on tune-val. Choice: the
combination with the largest mean over the tuning seeds of
``balanced_accuracy - sg`` (a combination whose fit diverges on a seed is recorded as
diverged and excluded). It prints every record, the table of means and the choice;
run the choice on the test splits with ``--facims``.

Timing: wall-clock and process CPU seconds of each ``fit``, with ``torch`` limited to
``--threads`` threads. The machine is shared, so wall time depends on the load; CPU
time is the less noisy of the two.

Usage::

    python benchmarks/bench_facims.py --quick          # credit, 1 seed, 5 epochs (~1 min)
    python benchmarks/bench_facims.py                  # both datasets, 5 seeds, all methods
    python benchmarks/bench_facims.py --protocol internal   # the earlier protocol
    python benchmarks/bench_facims.py --datasets credit --seeds 0 42 --methods FACIMS BERM
    python benchmarks/bench_facims.py --summarize a.json b.json   # tables of saved runs
    python benchmarks/bench_facims.py --tune --threads 1 --out tune.json  # 12 fits (~20 min)
    python benchmarks/bench_facims.py --tune --quick   # the same, seed 0, 2 epochs
    python benchmarks/bench_facims.py --compare-commit 111c9b3 --threads 1  # CPU ratio
"""

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile

import _common as shared
import numpy as np

SEEDS = (0, 42, 666, 777, 1009)
TUNE_SEEDS = (0, 42)
# (lr_prior, lr_post): the reference code's sweep (spec section 4)
TUNE_GRID = tuple((p, q) for p in (0.1, 0.01) for q in (0.4, 0.1, 0.01))
LARGE = 100  # test rows for a group to count in ``sg_large``
METHODS = ("ERM", "BERM", "BERM+val", "FACIMS", "FACIMS-I", "FACIMS-II")
#: methods of the earlier, internal-split protocol (no separate validation rows)
INTERNAL_METHODS = ("ERM", "BERM", "FACIMS", "FACIMS-I", "FACIMS-II")
FACIMS_METHODS = ("FACIMS", "FACIMS-I", "FACIMS-II")
LABELS = {"BERM+val": "BERM (train+val)"}
# reference points outside the paper's table (opt-in with --methods): how far other model
# families get on the same protocol with the class-balanced loss
REFERENCE = ("LR-balanced", "HGB-balanced")
DRUG_EDUCATION = {
    "left school before 16": "<=16", "left at 16": "<=16",
    "left at 17": "17-18", "left at 18": "17-18",
}  # fmt: skip


def load(name):
    """(X DataFrame, y ndarray, A ndarray) of a dataset."""
    if name == "credit":
        from skfairbilevel.datasets import load_credit_default

        b = load_credit_default(sensitive="EDUCATION")
        X = b.data.drop(columns=["EDUCATION"]).astype(np.float64)
        return X, b.target.to_numpy(), b.sensitive_features.to_numpy()
    if name == "drug":
        from skfairbilevel.datasets import load_drug_consumption

        b = load_drug_consumption(
            target="Alcohol", sensitive="Education", n_classes=4, decode=False
        )
        cols = [
            "Age",
            "Gender",
            "Nscore",
            "Escore",
            "Oscore",
            "Ascore",
            "Cscore",
            "Impulsive",
            "SS",
        ]
        X = b.data[cols].astype(np.float64)
        labels = load_drug_consumption(n_classes=4).data["Education"].astype(str)
        A = labels.map(lambda v: DRUG_EDUCATION.get(v, v)).to_numpy()
        return X, b.target.to_numpy(), A
    raise ValueError(f"unknown dataset {name!r}")


def _outer(y, seed):
    """(train, test) row indices of one seed: 30 % stratified test split."""
    from sklearn.model_selection import train_test_split

    return train_test_split(np.arange(len(y)), test_size=0.3, stratify=y, random_state=seed)


def _prepare(name, X, y, A, tr, others, seed):
    """Resample the training rows ``tr`` (credit: 400 per group), fit the scaler on them
    and return ``(Xtr, ytr, Atr)`` followed by ``(X, y, A)`` of every index array in
    ``others`` (scaled, not resampled)."""
    from sklearn.preprocessing import StandardScaler

    if name == "credit":
        rng = np.random.default_rng(seed)
        parts = []
        for g in np.unique(A[tr]):
            rows = tr[A[tr] == g]
            parts.append(rng.choice(rows, 400, replace=len(rows) < 400))
        tr = np.concatenate(parts)
    scaler = StandardScaler().fit(X.iloc[tr])
    out = []
    for rows in (tr, *others):
        out += [scaler.transform(X.iloc[rows]).astype(np.float32), y[rows], A[rows]]
    return tuple(out)


def split(name, X, y, A, seed):
    """Train / test arrays for one seed (scaled on train): the internal protocol."""
    tr, te = _outer(y, seed)
    return _prepare(name, X, y, A, tr, [te], seed)


def paper_split(name, X, y, A, seed):
    """Train / validation / test arrays for one seed: the paper's protocol.

    30 % stratified test split; of the rest, a stratified 30 % validation split
    (``random_state=seed``); the remaining training part resampled (credit: 400 rows per
    group) and the scaler fitted on it. The training and validation rows are exactly
    ``tune_split``'s; the test rows are ``split``'s."""
    from sklearn.model_selection import train_test_split

    tr, te = _outer(y, seed)
    fit_rows, val_rows = train_test_split(tr, test_size=0.3, stratify=y[tr], random_state=seed)
    return _prepare(name, X, y, A, fit_rows, [val_rows, te], seed)


def tune_split(name, X, y, A, seed):
    """Train / tune-val arrays for one seed, from that seed's training part only.

    The seed's test rows (``split``) are removed first and never touched; a stratified
    30 % of the remaining rows (``random_state=seed``) is held out as tune-val, and the
    rest is resampled and scaled exactly as ``split`` does with the full training part:
    ``paper_split``'s training and validation arrays."""
    return paper_split(name, X, y, A, seed)[:6]


def make(method, seed, epochs, facims_kw):
    from skfairbilevel import FACIMSClassifier, FairMLPClassifier

    if method in REFERENCE:
        return _reference(method, seed)
    if method in ("ERM", "BERM", "BERM+val"):
        return FairMLPClassifier(
            hidden_layer_sizes=(400, 200, 100),
            activation="elu",
            class_weight=None if method == "ERM" else "balanced",
            lr=1e-3,
            batch_size=50,
            max_epochs=epochs,
            random_state=seed,
        )
    kw = dict(facims_kw)
    if method == "FACIMS-I":
        kw["sam"] = False
    elif method == "FACIMS-II":
        kw["learn_loss_params"] = False
    return FACIMSClassifier(max_epochs=epochs, random_state=seed, **kw)


class _Unaware:
    """A scikit-learn classifier that ignores ``sensitive_features`` in ``fit``."""

    def __init__(self, est):
        self.est = est

    def fit(self, X, y, sensitive_features=None):
        self.est.fit(X, y)
        self.classes_ = self.est.classes_
        return self

    def predict_proba(self, X):
        return self.est.predict_proba(X)


def _reference(method, seed):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    if method == "LR-balanced":
        return _Unaware(LogisticRegression(class_weight="balanced", max_iter=3000))
    return _Unaware(
        HistGradientBoostingClassifier(
            class_weight="balanced", learning_rate=0.05, random_state=seed
        )
    )


def ref_gaps(y, pred, A):
    """The reference code's DP and 'EO' (TPR) gaps: mean-abs deviation from overall."""
    groups = np.unique(A)
    dp = np.mean([abs(np.mean(pred == 1) - np.mean(pred[A == g] == 1)) for g in groups])
    tpr = np.mean(pred[y == 1] == 1)
    eop = np.mean(
        [
            abs(tpr - np.mean(pred[(A == g) & (y == 1)] == 1))
            for g in groups
            if np.any((A == g) & (y == 1))
        ]
    )
    return float(dp), float(eop)


def evaluate(est, Xte, yte, Ate):
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, recall_score

    from skfairbilevel.metrics import (
        demographic_parity_difference,
        equalized_odds_difference,
        sufficiency_gap,
    )

    proba = est.predict_proba(Xte)
    pred = est.classes_[np.argmax(proba, axis=1)]
    out = {
        "balanced_accuracy": balanced_accuracy_score(yte, pred),
        "accuracy": accuracy_score(yte, pred),
        "dp": demographic_parity_difference(yte, pred, sensitive_features=Ate),
        "eo": equalized_odds_difference(yte, pred, sensitive_features=Ate),
        "sg": sufficiency_gap(yte, proba, sensitive_features=Ate, n_bins=5),
    }
    # the same on the groups with at least LARGE test rows: the small groups' calibration
    # curves rest on a handful of rows and dominate the mean over groups
    groups, counts = np.unique(Ate, return_counts=True)
    large = np.isin(Ate, groups[counts >= LARGE])
    if len(groups[counts >= LARGE]) >= 2:
        out["sg_large"] = sufficiency_gap(
            yte[large], proba[large], sensitive_features=Ate[large], n_bins=5
        )
    for k, r in enumerate(recall_score(yte, pred, average=None)):
        out[f"recall_{k}"] = float(r)
    if len(est.classes_) == 2:
        out["dp_ref"], out["eop_ref"] = ref_gaps(yte, pred, Ate)
    return {k: float(v) for k, v in out.items()}


def _fit(est, method, protocol, train, val):
    """Fit ``est`` on the rows ``method`` gets under ``protocol``."""
    Xtr, ytr, Atr = train
    if protocol == "internal":
        return est.fit(Xtr, ytr, sensitive_features=Atr)
    Xva, yva, Ava = val
    if method in FACIMS_METHODS:
        return est.fit(
            Xtr, ytr, sensitive_features=Atr, X_val=Xva, y_val=yva, sensitive_features_val=Ava
        )
    if method == "BERM+val":
        return est.fit(
            np.vstack([Xtr, Xva]),
            np.concatenate([ytr, yva]),
            sensitive_features=np.concatenate([Atr, Ava]),
        )
    return est.fit(Xtr, ytr, sensitive_features=Atr)


def _timing(clock):
    """The timing fields of a record: wall and CPU seconds, threads, load."""
    import torch

    return {
        "fit_wall_s": clock.wall,
        "fit_cpu_s": clock.cpu,
        "threads": torch.get_num_threads(),
        "load_avg": os.getloadavg()[0],
    }


def _emit(records, rec, out_json):
    """Append ``rec`` to ``records``, print it and rewrite ``out_json`` (if any)."""
    records.append(rec)
    print(json.dumps(rec), flush=True)
    if out_json:
        with open(out_json, "w") as fh:
            json.dump(records, fh, indent=1)


def run(datasets, methods, seeds, epochs, facims_kw, out_json, protocol="paper"):
    """Fit and evaluate every method on every seed; a fit that diverges
    (``NonFiniteLossError``) is recorded as ``{"diverged": message}`` and the run goes on."""

    from skfairbilevel.exceptions import NonFiniteLossError

    records, probas = [], {}
    for name in datasets:
        X, y, A = load(name)
        for seed in seeds:
            if protocol == "internal":
                Xtr, ytr, Atr, Xte, yte, Ate = split(name, X, y, A, seed)
                val = None
            else:
                Xtr, ytr, Atr, Xva, yva, Ava, Xte, yte, Ate = paper_split(name, X, y, A, seed)
                val = (Xva, yva, Ava)
            for method in methods:
                est = make(method, seed, epochs, facims_kw)
                with shared.Clock() as clock:
                    try:
                        _fit(est, method, protocol, (Xtr, ytr, Atr), val)
                    except NonFiniteLossError as exc:
                        diverged = str(exc).split(";")[0]
                    else:
                        diverged = None
                rec = {
                    "dataset": name,
                    "method": method,
                    "seed": seed,
                    "protocol": protocol,
                    "n_train": len(ytr),
                    "n_val": 0 if val is None else len(val[1]),
                    **_timing(clock),
                }
                if diverged is not None:
                    rec["diverged"] = diverged
                    _emit(records, rec, out_json)
                    continue
                rec.update(evaluate(est, Xte, yte, Ate))
                if hasattr(est, "n_validation_rows_"):
                    rec["facims_train_rows"] = int(est.n_train_rows_)
                    rec["facims_validation_rows"] = int(est.n_validation_rows_)
                probas[f"{name}/{method}/{seed}"] = est.predict_proba(Xte)
                _emit(records, rec, out_json)
                if out_json:
                    np.savez_compressed(out_json + ".proba.npz", **probas)
    return records


def tune(seeds, epochs, out_json):
    """Choose FACIMS's ``lr_prior`` and ``lr_post`` on tune-val (credit only).

    For every seed in ``seeds`` and every combination in ``TUNE_GRID``, fit
    ``FACIMSClassifier`` (defaults except the two learning rates) on ``tune_split``'s
    training rows and evaluate on its tune-val rows. The choice is the combination with the
    largest mean over the seeds of ``balanced_accuracy - sg``; a combination whose fit
    diverges (``NonFiniteLossError``) on any seed is recorded as diverged and cannot be
    chosen. Returns (records, choice)."""

    from skfairbilevel.exceptions import NonFiniteLossError

    X, y, A = load("credit")
    records = []
    for seed in seeds:
        Xtr, ytr, Atr, Xva, yva, Ava = tune_split("credit", X, y, A, seed)
        for lr_prior, lr_post in TUNE_GRID:
            kw = {"lr_prior": lr_prior, "lr_post": lr_post}
            est = make("FACIMS", seed, epochs, kw)
            with shared.Clock() as clock:
                try:
                    est.fit(Xtr, ytr, sensitive_features=Atr)
                except NonFiniteLossError as exc:  # a diverged combination cannot be chosen
                    m = {"diverged": str(exc).split(";")[0]}
                else:
                    m = evaluate(est, Xva, yva, Ava)
            rec = {
                "dataset": "credit",
                "split": "tune-val",
                "method": "FACIMS",
                "seed": seed,
                **kw,
                "objective": m["balanced_accuracy"] - m["sg"] if "sg" in m else None,
                **_timing(clock),
                **m,
            }
            _emit(records, rec, out_json)
    table, choice = tune_table(records)
    print(table)
    print(
        f"chosen (largest mean balanced_accuracy - sg on tune-val): "
        f"lr_prior={choice[0]}, lr_post={choice[1]}"
    )
    return records, choice


def select_upper_class_weight(seeds, epochs, out_json):
    """Choose FACIMS's ``upper_class_weight`` on validation data only (paper protocol).

    For every seed: ``tune_split``'s training and validation rows (the paper protocol's;
    the test rows are never loaded); the validation rows are split again, stratified by
    y (``random_state=seed``), into 70 % "val-fit" (given to ``fit`` as ``X_val``) and
    30 % "val-eval" (6,300 -> 4,410 / 1,890 rows on credit). FACIMS (defaults, 50 epochs)
    is fitted with ``upper_class_weight`` "training" and "validation" and evaluated on
    val-eval. Choice: the larger mean over the seeds of ``balanced_accuracy - sg``.
    Returns (records, choice)."""
    from sklearn.model_selection import train_test_split

    X, y, A = load("credit")
    records = []
    for seed in seeds:
        Xtr, ytr, Atr, Xva, yva, Ava = tune_split("credit", X, y, A, seed)
        fit_v, eval_v = train_test_split(
            np.arange(len(yva)), test_size=0.3, stratify=yva, random_state=seed
        )
        for choice in ("training", "validation"):
            est = make("FACIMS", seed, epochs, {"upper_class_weight": choice})
            with shared.Clock() as clock:
                est.fit(
                    Xtr,
                    ytr,
                    sensitive_features=Atr,
                    X_val=Xva[fit_v],
                    y_val=yva[fit_v],
                    sensitive_features_val=Ava[fit_v],
                )
            m = evaluate(est, Xva[eval_v], yva[eval_v], Ava[eval_v])
            rec = {
                "dataset": "credit",
                "split": "val-eval",
                "method": "FACIMS",
                "seed": seed,
                "upper_class_weight": choice,
                "objective": m["balanced_accuracy"] - m["sg"],
                **_timing(clock),
                **m,
            }
            _emit(records, rec, out_json)
    keys = ["objective", "balanced_accuracy", "sg", "sg_large", "dp", "eo", "accuracy", "fit_cpu_s"]
    lines = ["| upper_class_weight | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    best, chosen = -np.inf, None
    for choice in ("training", "validation"):
        rs = [r for r in records if r["upper_class_weight"] == choice]
        lines.append(f"| {choice} | " + _cells(rs, keys) + " |")
        score = np.mean([r["objective"] for r in rs])
        if score > best:
            best, chosen = score, choice
    print("\n".join(lines))
    print(
        f"chosen (largest mean balanced_accuracy - sg on val-eval): upper_class_weight={chosen!r}"
    )
    return records, chosen


def tune_table(records):
    """Markdown table of the tune records (mean +- population std over seeds) and the
    chosen (lr_prior, lr_post)."""
    keys = ["objective", "balanced_accuracy", "sg", "sg_large", "dp", "eo", "accuracy", "fit_cpu_s"]
    lines = [
        "| lr_prior | lr_post | seeds | " + " | ".join(keys) + " |",
        "|---|---|---|" + "---|" * len(keys),
    ]
    best, choice = -np.inf, None
    for lr_prior, lr_post in TUNE_GRID:
        rs = [r for r in records if (r["lr_prior"], r["lr_post"]) == (lr_prior, lr_post)]
        if not rs:
            continue
        if any(r["objective"] is None for r in rs):
            lines.append(
                f"| {lr_prior} | {lr_post} | {len(rs)} | diverged (seeds "
                f"{[r['seed'] for r in rs if r['objective'] is None]}) |" + " |" * (len(keys) - 1)
            )
            continue
        lines.append(f"| {lr_prior} | {lr_post} | {len(rs)} | " + _cells(rs, keys) + " |")
        score = np.mean([r["objective"] for r in rs])
        if score > best:
            best, choice = score, (lr_prior, lr_post)
    return "\n".join(lines), choice


def compare_commit(commit, epochs, seed, reps, threads):
    """CPU-time ratio of one credit fit of FACIMS: working tree / ``commit``.

    The whole package of ``commit`` is extracted (``git archive``) into a temporary
    directory. Every fit runs in a fresh process (:func:`fit_worker`) whose
    ``PYTHONPATH`` is either that directory or the working tree, on the same arrays
    (written once by this process), the two versions alternating ``reps`` times; each
    process makes a small warm-up fit (lazy torch imports) before the timed one. Their
    test probabilities are compared."""
    here = os.path.dirname(os.path.abspath(__file__))
    root = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"],
        capture_output=True,
        text=True,
        check=True,
        cwd=here,
    ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="facims_compare_") as tmp:
        times, probas = _compare_fits(root, commit, tmp, epochs, seed, reps, threads)
    ratio = float(np.median(times["new"]) / np.median(times["old"]))
    diff = float(np.abs(probas["new"] - probas["old"]).max())
    agree = float(np.mean(probas["new"].argmax(1) == probas["old"].argmax(1)))
    print(f"credit seed {seed}, {epochs} epochs, {reps} rep(s), 1 fit each per rep")
    print(
        f"CPU s  {commit}: {np.round(times['old'], 1).tolist()}  working tree: "
        f"{np.round(times['new'], 1).tolist()}"
    )
    print(f"ratio working tree / {commit} (median CPU): {ratio:.3f}")
    print(f"max |predict_proba difference|: {diff:.2e}, argmax agreement: {agree:.4f}")
    print(f"at the end: {shared.load_note()}")


def _compare_fits(root, commit, tmp, epochs, seed, reps, threads):
    """The fits of :func:`compare_commit` in the folder ``tmp``: ``(times, probas)``."""
    old_tree = os.path.join(tmp, "old")
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit, "skfairbilevel"],
        capture_output=True,
        check=True,
        cwd=root,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(old_tree, filter="data")
    X, y, A = load("credit")
    Xtr, ytr, Atr, Xte, _, _ = split("credit", X, y, A, seed)
    data = os.path.join(tmp, "data.npz")
    np.savez(data, Xtr=Xtr, ytr=ytr, Atr=Atr, Xte=Xte)
    trees = {"old": old_tree, "new": root}
    times, probas = {"old": [], "new": []}, {}
    for rep in range(reps):
        for name, tree in trees.items():
            result = os.path.join(tmp, f"{name}_{rep}.npz")
            cmd = [sys.executable, os.path.abspath(__file__), "--fit-worker", data, result]
            cmd += ["--epochs", str(epochs), "--seeds", str(seed), "--threads", str(threads)]
            subprocess.run(cmd, check=True, cwd=tmp, env=dict(os.environ, PYTHONPATH=tree))
            with np.load(result) as fit:
                times[name].append(float(fit["cpu"]))
                probas[name] = fit["proba"]
    return times, probas


def fit_worker(data, result, epochs, seed):
    """One timed ``FACIMSClassifier`` fit on the arrays of ``data`` (``.npz``), after a
    warm-up fit, with the package found on ``PYTHONPATH``; writes the fit's CPU and wall
    seconds and the test probabilities to ``result`` (``.npz``)."""
    from skfairbilevel import FACIMSClassifier

    with np.load(data, allow_pickle=True) as arrays:
        Xtr, ytr, Atr, Xte = (arrays[k] for k in ("Xtr", "ytr", "Atr", "Xte"))
    FACIMSClassifier(max_epochs=1, random_state=0).fit(  # warm-up: lazy torch imports
        Xtr[::10], ytr[::10], sensitive_features=Atr[::10]
    )
    clf = FACIMSClassifier(max_epochs=epochs, random_state=seed)
    with shared.Clock() as clock:
        clf.fit(Xtr, ytr, sensitive_features=Atr)
    np.savez(result, cpu=clock.cpu, wall=clock.wall, proba=clf.predict_proba(Xte))


def _cells(rs, keys):
    """Table cells ``mean ± std`` (population std) of ``keys`` over the records ``rs``."""
    cells = []
    for k in keys:
        v = np.array([r[k] for r in rs])
        cells.append(
            f"{v.mean():.1f}" if k.startswith("fit") else f"{v.mean():.4f} ± {v.std():.4f}"
        )
    return " | ".join(cells)


def summary(records):
    """Markdown table: mean +- population std per dataset and method (diverged fits
    are left out of the means and counted in the method's label)."""
    keys = [
        "balanced_accuracy",
        "dp",
        "eo",
        "sg",
        "sg_large",
        "dp_ref",
        "eop_ref",
        "accuracy",
        "fit_wall_s",
        "fit_cpu_s",
    ]
    lines = []
    for name in dict.fromkeys(r["dataset"] for r in records):
        every = [r for r in records if r["dataset"] == name]
        rows = [r for r in every if "diverged" not in r]
        present = [k for k in keys if k in rows[0]]
        n_seeds = len({r["seed"] for r in rows})
        lines.append(f"\n### {name} ({n_seeds} seed(s))\n")
        lines.append("| method | " + " | ".join(present) + " |")
        lines.append("|---|" + "---|" * len(present))
        for method in dict.fromkeys(r["method"] for r in every):
            rs = [r for r in rows if r["method"] == method]
            bad = [r["seed"] for r in every if r["method"] == method and "diverged" in r]
            label = LABELS.get(method, method) + (
                f" ({len(rs)} seeds; diverged: seed {', '.join(map(str, bad))})" if bad else ""
            )
            cells = _cells(rs, present) if rs else " | ".join("-" for _ in present)
            lines.append(f"| {label} | " + cells + " |")
    return "\n".join(lines)


def plot(records, path):
    """Balanced accuracy against sufficiency gap, mean +- std per method and dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["dataset"] for r in records))
    fig, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 4.5), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        rows = [r for r in records if r["dataset"] == name and "diverged" not in r]
        for method in dict.fromkeys(r["method"] for r in rows):
            rs = [r for r in rows if r["method"] == method]
            sg = np.array([r["sg"] for r in rs])
            ba = np.array([r["balanced_accuracy"] for r in rs])
            ax.errorbar(
                sg.mean(),
                ba.mean(),
                xerr=sg.std(),
                yerr=ba.std(),
                fmt="o",
                capsize=3,
                label=LABELS.get(method, method),
            )
            ax.scatter(sg, ba, s=8, alpha=0.35)
        if name == "credit":
            ax.axhline(0.67, color="grey", lw=0.8, ls=":")
            ax.axvline(0.14, color="grey", lw=0.8, ls=":")
        ax.set_xlabel("sufficiency gap (test, lower is fairer)")
        ax.set_ylabel("balanced accuracy (test)")
        ax.set_title(f"{name}: {len({r['seed'] for r in rows})} seeds (mean ± std, dots: seeds)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    p = shared.parser(__doc__, threads=2, quick="credit only, seed 0, FACIMS and BERM, 5 epochs")
    p.add_argument("--datasets", nargs="+", default=["credit", "drug"])
    p.add_argument(
        "--protocol",
        choices=("paper", "internal"),
        default="paper",
        help="paper (default): separate validation rows for FACIMS's upper "
        "level; internal: the earlier protocol (FACIMS splits its "
        "resampled training rows itself)",
    )
    p.add_argument(
        "--methods",
        nargs="+",
        default=None,
        choices=METHODS + REFERENCE,
        help=f"default: {list(METHODS)} ({list(INTERNAL_METHODS)} with --protocol internal)",
    )
    p.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=None,
        help=f"default: {list(SEEDS)} ({list(TUNE_SEEDS)} with --tune)",
    )
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--facims", default="{}", help="JSON dict of extra FACIMSClassifier parameters")
    p.add_argument(
        "--summarize",
        nargs="+",
        default=None,
        metavar="JSON",
        help="only print the tables of earlier --out files",
    )
    p.add_argument("--plot", default=None, help="PNG file for the accuracy / SG figure")
    p.add_argument(
        "--tune",
        action="store_true",
        help="only choose FACIMS's lr_prior x lr_post on tune-val (credit; "
        "--quick: seed 0, 2 epochs); records to --out",
    )
    p.add_argument(
        "--select-upper-class-weight",
        action="store_true",
        help="only choose FACIMS's upper_class_weight on validation data "
        "(credit, paper protocol, seeds 0 and 42 unless --seeds; "
        "--quick: seed 0, 2 epochs); records to --out",
    )
    p.add_argument(
        "--compare-commit",
        default=None,
        metavar="SHA",
        help="only time one credit fit (seed --seeds[0], --epochs, 2 reps; "
        "--quick: 4 epochs) against the FACIMS code of that commit",
    )
    p.add_argument("--fit-worker", nargs=2, default=None, help=argparse.SUPPRESS)
    args = shared.parse(p, argv)
    if args.seeds is None:
        args.seeds = list(TUNE_SEEDS if args.tune or args.select_upper_class_weight else SEEDS)
    if args.methods is None:
        args.methods = list(METHODS if args.protocol == "paper" else INTERNAL_METHODS)
    if args.protocol == "internal" and "BERM+val" in args.methods:
        p.error("BERM+val needs validation rows: use --protocol paper")
    if args.summarize:
        records = []
        for path in args.summarize:
            with open(path) as fh:
                records += json.load(fh)
        print(summary(records))
        if args.plot:
            plot(records, args.plot)
        return
    if args.fit_worker:
        fit_worker(*args.fit_worker, args.epochs, args.seeds[0])
        return
    if args.compare_commit:
        epochs = 4 if args.quick else args.epochs
        reps = 1 if epochs > 10 else 2
        compare_commit(args.compare_commit, epochs, args.seeds[0], reps, args.threads)
        return
    # the two choices made on validation data only (training rows of the tuning seeds)
    for wanted, choose in (
        (args.select_upper_class_weight, select_upper_class_weight),
        (args.tune, tune),
    ):
        if wanted:
            if args.quick:
                args.seeds, args.epochs = [0], 2
            started = shared.now()
            choose(args.seeds, args.epochs, args.out)
            print(f"\nstarted {started}; at the end: {shared.load_note()}")
            return
    if args.quick:
        args.datasets, args.seeds, args.epochs = ["credit"], [0], 5
        args.methods = ["BERM", "FACIMS"]
    started = shared.now()
    records = run(
        args.datasets,
        args.methods,
        args.seeds,
        args.epochs,
        json.loads(args.facims),
        args.out,
        protocol=args.protocol,
    )
    print(f"\nstarted {started}; at the end: {shared.load_note()}")
    print(summary(records))
    if args.plot:
        plot(records, args.plot)


if __name__ == "__main__":
    main()
