"""BADR against its baselines on bundled data: 10 seeds of 70/30 splits.

For each dataset and each targeted fairness metric, every seed splits the data 70/30
(stratified by group and label), fits the preprocessing on the training split (the
sensitive column kept as an input, ``keep_sensitive=True``, as in the BADR toolbox) and
fits

* ``badr``: BADRClassifier with the exact solver (learned group weights),
* ``uniform`` (1/S per group), ``balanced`` (proportional to 1/n_a), ``minimax``
  (min-max group risk), ``one_group`` (the best vertex on training), and ``pooled``
  (plain ERM, for reference),

all with the same logistic lower level (alpha = 1e-2, the toolbox's experiment value).
It reports the targeted (differentiable) metric on the **test** split, test accuracy and
a hard test metric (fairlearn's demographic parity difference of the predictions), and
counts the seeds in which BADR's test metric is strictly lower than every baseline's
(uniform, balanced, minimax, one_group) at a test accuracy within 1 point of uniform's.

Datasets: Adult (sensitive ``sex``), credit default (``SEX``) and credit default
(``EDUCATION`` merged to two groups with ``merge_smallest_groups``, as BADR does). The
regressor: credit default's ``LIMIT_BAL`` predicted from the other columns, groups
``SEX``, ridge lower level (alpha = 0.1), demographic parity; RMSE in NT$.

Usage::

    python benchmarks/bench_badr.py                 # 10 seeds, full data (~30 min, 1 core)
    python benchmarks/bench_badr.py --quick         # 2 seeds, 4000-row subsample (~1 min)
"""

import json
import os

import _common as shared
import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from skfairbilevel import BADRClassifier, BADRRegressor
from skfairbilevel.datasets import (
    load_adult,
    load_credit_default,
    make_preprocessor,
    merge_smallest_groups,
)
from skfairbilevel.metrics import demographic_parity_difference

RESULTS = shared.RESULTS
BASELINES = ["uniform", "balanced", "minimax", "one_group"]
METHODS = ["badr"] + BASELINES + ["pooled"]


def load(name):
    """(X frame, y, groups, preprocessor kwargs) of a benchmark dataset."""
    if name == "adult_sex":
        b = load_adult(sensitive="sex")
        pre_kw = dict(sensitive="sex", keep_sensitive=True)
        return b.data, b.target.to_numpy(), b.sensitive_features.to_numpy(), pre_kw
    b = load_credit_default(sensitive="SEX")
    X, y = b.data, b.target.to_numpy()
    cat = ["EDUCATION", "MARRIAGE"]
    sex_kw = dict(sensitive="SEX", keep_sensitive=True, categorical=cat)
    if name == "credit_sex":
        return X, y, X["SEX"].to_numpy(), sex_kw
    if name == "credit_education":
        groups = merge_smallest_groups(X["EDUCATION"], 2).to_numpy()
        return X, y, groups, dict(categorical=cat)
    if name == "credit_limit_bal":
        Xr = X.drop(columns=["LIMIT_BAL"])
        Xr = Xr.assign(default=y)
        return Xr, X["LIMIT_BAL"].to_numpy(dtype=float), X["SEX"].to_numpy(), sex_kw
    raise ValueError(name)


def split(X, y, A, seed, n_max=None):
    idx = np.arange(len(y))
    if n_max is not None and len(idx) > n_max:
        idx = np.random.default_rng(seed).choice(idx, n_max, replace=False)
    strata = (
        pd.Series(A[idx]).astype(str)
        + "_"
        + (pd.Series(y[idx]).astype(str) if y.dtype.kind in "iub" else "")
    )
    tr, te = train_test_split(idx, test_size=0.3, random_state=seed, stratify=strata)
    return tr, te


def features(X, tr, te, pre_kw):
    """The training and test features: the preprocessing fitted on the training rows."""
    pre = make_preprocessor(X.iloc[tr], **pre_kw)
    return pre.fit_transform(X.iloc[tr]).to_numpy(), pre.transform(X.iloc[te]).to_numpy()


def progress(label, rows, column, spec):
    """Print the test metric and ``column`` of every method for the last seed."""
    last = {r["method"]: r for r in rows[-len(METHODS) :]}
    cells = (f"{m} {last[m]['test_metric']:.4f}/{last[m][column]:{spec}}" for m in METHODS)
    print(f"{label}: " + "  ".join(cells), flush=True)


def run_classification(name, fairness, seeds, n_max):
    X, y, A, pre_kw = load(name)
    rows = []
    for seed in seeds:
        tr, te = split(X, y, A, seed, n_max)
        Ztr, Zte = features(X, tr, te, pre_kw)
        for method in METHODS:
            gw = None if method == "badr" else method
            with shared.Clock() as clock:
                clf = BADRClassifier(
                    fairness, alpha=1e-2, group_weights=gw, score_tolerance=None
                ).fit(Ztr, y[tr], sensitive_features=A[tr])
            seconds = clock.wall
            pred = clf.predict(Zte)
            rows.append(
                {
                    "dataset": name,
                    "fairness": fairness,
                    "seed": seed,
                    "method": method,
                    "test_metric": clf.fairness_objective(Zte, y[te], sensitive_features=A[te]),
                    "train_metric": clf.fairness_objective_,
                    "test_accuracy": float(np.mean(pred == y[te])),
                    "test_dp_difference": float(
                        demographic_parity_difference(y[te], pred, sensitive_features=A[te])
                    ),
                    "lambda": clf.group_weights_.tolist(),
                    "seconds": seconds,
                    "n_iter": clf.n_iter_,
                }
            )
        progress(f"{name:18s} {fairness:20s} seed {seed}", rows, "test_accuracy", ".4f")
    return rows


def run_regression(seeds, n_max):
    X, y, A, pre_kw = load("credit_limit_bal")
    rows = []
    for seed in seeds:
        tr, te = split(X, y, A, seed, n_max)
        Ztr, Zte = features(X, tr, te, pre_kw)
        for method in METHODS:
            gw = None if method == "badr" else method
            reg = BADRRegressor(
                "demographic_parity", alpha=0.1, group_weights=gw, score_tolerance=None
            ).fit(Ztr, y[tr], sensitive_features=A[tr])
            pred = reg.predict(Zte)
            gaps = [pred[A[te] == a].mean() for a in np.unique(A[te])]
            rows.append(
                {
                    "dataset": "credit_limit_bal",
                    "fairness": "demographic_parity",
                    "seed": seed,
                    "method": method,
                    "test_metric": reg.fairness_objective(Zte, y[te], sensitive_features=A[te]),
                    "train_metric": reg.fairness_objective_,
                    "test_rmse": float(np.sqrt(np.mean((pred - y[te]) ** 2))),
                    "test_mean_gap": float(max(gaps) - min(gaps)),
                    "lambda": reg.group_weights_.tolist(),
                }
            )
        progress(f"credit_limit_bal DP seed {seed}", rows, "test_rmse", ".0f")
    return rows


INTERIOR = 1e-6  # lambda counts as interior when every entry exceeds this


def overview(rows):
    """One row per (dataset, metric): BADR's seeds against the issue's target.

    * strict: test metric strictly lower (by more than 1e-9 relative, so not a rounding
      tie) than every baseline (uniform, balanced, minimax, one_group) with test
      accuracy >= uniform's - 1 point (RMSE <= 1.01 x);
    * leq: the same with "lower or equal" (a tie with one_group at a vertex counts);
    * strict_acc_free: strictly lower than every baseline, accuracy ignored;
    * vs_3: strictly lower than uniform, balanced and minimax (one_group left out);
      "strictly" always means by more than 1e-9 relative;
    * acc ok: seeds whose accuracy is within 1 point of uniform's;
    * d_acc: mean BADR - uniform test accuracy in points (RMSE: in %);
    * interior: BADR fits whose lambda has every entry > 1e-6 (off the vertices).
    """
    df = pd.DataFrame(rows)
    lines = [
        "| dataset | target | strict | leq | strict_acc_free | vs_3 | acc ok | d_acc | interior |",
        "|---" * 9 + "|",
    ]
    for (dataset, fairness), part in df.groupby(["dataset", "fairness"], sort=False):
        regression = "test_rmse" in part and part["test_rmse"].notna().all()
        n = part.seed.nunique()
        c = dict(strict=0, leq=0, free=0, vs3=0, ok=0, interior=0)
        d_acc = []
        for _, s in part.groupby("seed"):
            get = s.set_index("method")
            b = get.loc["badr"]
            base = get.loc[BASELINES].test_metric
            uni = get.loc["uniform"]
            if regression:
                ok = b.test_rmse <= 1.01 * uni.test_rmse
                d_acc.append(100 * (b.test_rmse / uni.test_rmse - 1))
            else:
                ok = b.test_accuracy >= uni.test_accuracy - 0.01
                d_acc.append(100 * (b.test_accuracy - uni.test_accuracy))
            strict = bool((b.test_metric < base * (1 - 1e-9)).all())  # not a rounding tie
            leq = bool((b.test_metric <= base * (1 + 1e-9) + 1e-15).all())
            c["strict"] += ok and strict
            c["leq"] += ok and leq
            c["free"] += strict
            c["vs3"] += bool(
                (
                    b.test_metric
                    < get.loc[["uniform", "balanced", "minimax"]].test_metric * (1 - 1e-9)
                ).all()
            )
            c["ok"] += bool(ok)
            c["interior"] += bool(min(b["lambda"]) > INTERIOR)
        unit = " %" if regression else ""
        worst = max(d_acc) if regression else min(d_acc)
        lines.append(
            f"| {dataset} | {fairness} | {c['strict']}/{n} | {c['leq']}/{n} | "
            f"{c['free']}/{n} | {c['vs3']}/{n} | {c['ok']}/{n} | "
            f"{np.mean(d_acc):+.2f}{unit} (worst {worst:+.2f}) | "
            f"{c['interior']}/{n} |"
        )
    return "\n".join(lines)


def summarise(rows, score="test_accuracy"):
    """Markdown tables: mean +- std per method, and BADR's win count."""
    df = pd.DataFrame(rows)
    lines = []
    for (dataset, fairness), part in df.groupby(["dataset", "fairness"], sort=False):
        lines.append(f"\n**{dataset}**, target `{fairness}` ({part.seed.nunique()} seeds)\n")
        cols = ["test_metric", score] + (
            ["test_dp_difference"] if "test_dp_difference" in part else ["test_mean_gap"]
        )
        lines.append("| method | " + " | ".join(cols) + " | mean lambda_0 |")
        lines.append("|---" * (len(cols) + 2) + "|")
        for method in METHODS:
            m = part[part.method == method]
            cells = [
                f"{m[c].mean():.4f} ± {m[c].std():.4f}"
                if c != "test_rmse"
                else f"{m[c].mean():.0f} ± {m[c].std():.0f}"
                for c in cols
            ]
            lam0 = np.mean([lam[0] for lam in m["lambda"]])
            lines.append(f"| {method} | " + " | ".join(cells) + f" | {lam0:.3f} |")
        wins = ties = 0
        for _, s in part.groupby("seed"):
            get = s.set_index("method")
            b = get.loc["badr"]
            base = get.loc[BASELINES]
            if score == "test_accuracy":
                ok = b[score] >= get.loc["uniform", score] - 0.01
            else:  # RMSE within 1 % of uniform's
                ok = b[score] <= 1.01 * get.loc["uniform", score]
            if ok and (b.test_metric < base.test_metric * (1 - 1e-9)).all():
                wins += 1
            if ok and (b.test_metric <= base.test_metric * (1 + 1e-9) + 1e-15).all():
                ties += 1
        lines.append(
            f"\nBADR strictly lower than every baseline at {score} within "
            f"1 point/1 % of uniform: **{wins}/{part.seed.nunique()}** seeds "
            f"(lower or equal: {ties}/{part.seed.nunique()})\n"
        )
    return "\n".join(lines)


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = pd.DataFrame(rows)
    df = df[df.dataset != "credit_limit_bal"]
    groups = list(df.groupby(["dataset", "fairness"], sort=False))
    n_rows = df.fairness.nunique()
    n_cols = int(np.ceil(len(groups) / n_rows))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.2 * n_cols, 3.6 * n_rows), squeeze=False)
    for ax, ((dataset, fairness), part) in zip(axes.ravel(), groups, strict=False):
        for method in METHODS:
            m = part[part.method == method]
            big = method == "badr"  # drawn first and larger: one_group often hides it
            ax.errorbar(
                m.test_metric.mean(),
                m.test_accuracy.mean(),
                xerr=m.test_metric.std(),
                yerr=m.test_accuracy.std(),
                fmt="*" if big else "o",
                markersize=14 if big else 6,
                label=method,
                capsize=2,
            )
        ax.set_title(f"{dataset}\n{fairness}", fontsize=9)
        ax.set_xlabel("test metric (lower is fairer)")
        ax.set_ylabel("test accuracy")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = shared.parser(
        __doc__, out=RESULTS / "badr_results.json", quick="2 seeds on 4000-row subsamples"
    )
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument(
        "--targets", nargs="+", default=["individual_fairness", "demographic_parity"]
    )
    parser.add_argument(
        "--datasets", nargs="+", default=["adult_sex", "credit_sex", "credit_education"]
    )
    parser.add_argument("--no-regression", action="store_true")
    parser.add_argument(
        "--report-only", action="store_true", help="only redo the tables and the plot from --out"
    )
    args = shared.parse(parser, argv)
    png = os.path.splitext(args.out)[0].replace("_results", "") + "_tradeoff.png"
    if args.report_only:
        with open(args.out) as fh:
            saved = json.load(fh)["rows"]
        cls = [r for r in saved if r["dataset"] != "credit_limit_bal"]
        reg = [r for r in saved if r["dataset"] == "credit_limit_bal"]
        print(overview(saved) + "\n")
        print(summarise(cls) + ("\n" + summarise(reg, score="test_rmse") if reg else ""))
        plot(cls, png)
        return
    seeds = list(range(2 if args.quick else args.seeds))
    n_max = 4000 if args.quick else None
    rows, reg_rows = [], []
    for fairness in args.targets:
        for name in args.datasets:
            rows += run_classification(name, fairness, seeds, n_max)
    if not args.no_regression:
        reg_rows = run_regression(seeds, n_max)
    text = summarise(rows) if rows else ""
    if reg_rows:
        text += "\n" + summarise(reg_rows, score="test_rmse")
    print(text)
    meta = {**shared.machine(args.command), "quick": args.quick}
    shared.write_json(args.out, {"meta": meta, "rows": rows + reg_rows, "summary": text})
    if rows:
        plot(rows, png)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
