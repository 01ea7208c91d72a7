"""Do the estimators' defaults deliver fairness, and do their knobs move it?

The check of the defaults chosen on validation data (user guide, "Trade-off knobs"), on
the bundled Adult, credit default and German credit data, 3 seeds, through the
package's runner (:func:`skfairbilevel.compare.run_comparison`: its stratified
train / validation / test splits, Adult's official test file, its fit cache). Test
figures are only reported; nothing here is chosen on them. Parts:

* ``done``: every estimator at its defaults, fitted with and without the sensitive
  features (FairBiNN, FairPruning, FACIMS; FACIMS also against the ERM MLP, plain and
  class-balanced: ``FairMLPClassifier()`` at its defaults); BADRClassifier against
  uniform group weights, its pure bilevel form and its own fixed-weight front
  ``group_weights=[t, 1 - t]``; FairRobust at its defaults;
* ``regressor``: BADRRegressor at its defaults against uniform weights on three
  regression tasks made from the bundled data (no regression target is bundled):
  Adult ``hours-per-week``, German log ``credit_amount``, credit ``LIMIT_BAL`` (the
  classification label becomes a feature; groups: sex), on the runner's splits;
* ``knobs``: every estimator's 5-point knob grid from the runner's registry on Adult,
  the seed-mean validation metric its knob targets against the knob value (Spearman);
  BADRRegressor's grid on Adult hours;
* ``quickstart``: the GridSearchCV examples of ``doc/quickstart.rst`` and of the README
  as written (their cross-validation folds are the validation data), and whether their
  constrained refit finds a candidate within the bound;
* ``timing``: BADRClassifier's fit with and without ``score_tolerance`` on Adult (CPU
  seconds, same process, alternating);
* ``fronts``: for every point of ``done`` that fails, the method's front over its
  registry grid on that dataset (test and validation means over the seeds).

``defaults.json`` keeps every part's numbers (a part run again replaces its entry);
``defaults.md`` is written from it with a PASS / FAIL per "done when" point.

Usage (resumable: fits are cached in ``--cache``)::

    nice -n 19 python benchmarks/bench_defaults.py                 # every part
    nice -n 19 python benchmarks/bench_defaults.py --part done knobs
    python benchmarks/bench_defaults.py --report                   # defaults.md only
"""

import json
import tempfile
from pathlib import Path

import numpy as np
from _common import RESULTS, Clock, machine, parse, parser, write_json

DATASETS = ("adult", "credit_default", "german_credit")
JSON = RESULTS / "defaults.json"
MD = RESULTS / "defaults.md"
T_FRONT = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 1.0)
REGRESSION_TASKS = {  # name: (dataset, target column, transform)
    "adult_hours": ("adult", "hours-per-week", None),
    "german_amount": ("german_credit", "credit_amount", "log"),
    "credit_limit": ("credit_default", "LIMIT_BAL", None),
}
#: Done-when thresholds of the issue
DP_CUT, ACC_LOSS, DP_DROP, FRONT_DP, R2_LOSS = 0.05, 0.02, 0.40, 0.01, 0.02
RHO_MIN = 0.9


# --------------------------------------------------------------------------- helpers
def _load():
    return json.loads(JSON.read_text()) if JSON.exists() else {}


def _save(part, payload, args):
    """Replace ``part`` in defaults.json (under a lock: parts may run in parallel)."""
    import fcntl

    with open(RESULTS / ".defaults.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = _load()
        if part == "done" and "done" in data:  # a run on some datasets keeps the others
            payload["datasets"] = {**data["done"]["datasets"], **payload["datasets"]}
        data[part] = {"machine": machine(args.command), **payload}
        write_json(JSON, data)
    return data


def _test_means(runs):
    """Mean over seeds of the test rows, per method and knob value (params)."""
    test = runs[runs["split"] == "test"]
    cols = ["accuracy", "balanced_accuracy", "dp_difference", "sufficiency_gap"]
    return test.groupby(["method", "params"], sort=False)[cols].mean().reset_index()


def _row(means, method):
    r = means[means["method"] == method]
    return r.iloc[0].to_dict() if len(r) else None


def _run(methods, dataset, args, out=None):
    from skfairbilevel.compare import run_comparison

    return run_comparison(
        dataset=dataset,
        methods=methods,
        seeds=args.seeds,
        n_jobs=args.n_jobs,
        out=out,
        cache=args.cache,
        progress=False,
        command=args.command,
    )


# --------------------------------------------------------------------------- done
def _done_methods():
    from skfairbilevel import (
        BADRClassifier,
        FACIMSClassifier,
        FairBiNNClassifier,
        FairMLPClassifier,
        FairPruningClassifier,
        FairRobustClassifier,
    )
    from skfairbilevel.compare import Method

    def m(name, est, **kw):
        return Method(name, est, family="skfairbilevel", **kw)

    return [
        m("fairbinn", FairBiNNClassifier()),
        m("fairbinn_unaware", FairBiNNClassifier(), uses_sensitive=False),
        m("pruning", FairPruningClassifier()),
        m("pruning_unaware", FairPruningClassifier(), uses_sensitive=False),
        m("badr", BADRClassifier()),
        m("badr_uniform", BADRClassifier(group_weights="uniform")),
        m("badr_pure", BADRClassifier(score_tolerance=None)),
        m(
            "badr_front",
            BADRClassifier(),
            knob="group_weights",
            grid=[[t, 1.0 - t] for t in T_FRONT],
        ),
        m("facims", FACIMSClassifier()),
        m("facims_unaware", FACIMSClassifier(), uses_sensitive=False),
        m("erm_mlp", FairMLPClassifier(), uses_sensitive=False),
        m("erm_mlp_balanced", FairMLPClassifier(class_weight="balanced"), uses_sensitive=False),
        m("robust", FairRobustClassifier()),
    ]


def part_done(args):
    out = {}
    for ds in args.datasets:
        with Clock() as c:
            res = _run(_done_methods(), ds, args)
        means = _test_means(res.runs)
        front = means[means["method"] == "badr_front"]
        out[ds] = {
            "seconds": round(c.wall, 1),
            "cpu_seconds": round(c.cpu, 1),
            "fits_run": res.info["fits_run"],
            "fits_cached": res.info["fits_cached"],
            "notes": res.notes,
            "test_means": means.to_dict(orient="records"),
            "badr_front": front.to_dict(orient="records"),
            "per_seed": res.runs[res.runs["split"] == "test"][
                ["method", "params", "seed", "accuracy", "balanced_accuracy"]
                + ["dp_difference", "sufficiency_gap"]
            ].to_dict(orient="records"),
        }
        print(f"{ds}: {res.info['fits_run']} fits in {c.wall:.0f} s", flush=True)
    return {"datasets": out}


# --------------------------------------------------------------------------- regressor
def _regression_table(task):
    import dataclasses

    from skfairbilevel.compare import load_table

    dataset, column, transform = REGRESSION_TASKS[task]
    table = load_table(dataset)
    target = table.X[column].to_numpy(dtype=float)
    if transform == "log":
        target = np.log(target)
    X = table.X.drop(columns=[column]).assign(label=table.y)
    # the 0/1 label stays the stratification key of the runner's splits
    return dataclasses.replace(table, name=task, X=X), target


def _mean_gap(pred, groups):
    means = [pred[groups == g].mean() for g in np.unique(groups)]
    return float(max(means) - min(means))


def _regression_runs(task, args, tolerances):
    """Per seed: R^2 and mean-prediction gap on validation and test of BADRRegressor
    with uniform weights, at its defaults and at each of ``tolerances``."""
    from sklearn.metrics import r2_score

    from skfairbilevel import BADRRegressor
    from skfairbilevel.compare import make_splits, prepare

    table, target = _regression_table(task)
    configs = {"uniform": dict(group_weights="uniform"), "default": {}}
    configs.update({f"tol={t:g}": dict(score_tolerance=t) for t in tolerances})
    rows = []
    for seed in range(args.seeds):
        part = make_splits(table, seed)[0]
        P = prepare(table, part)
        y = {k: target[v] for k, v in {"train": part.train, **part.evaluate}.items()}
        for name, params in configs.items():
            est = BADRRegressor(random_state=seed, **params)
            with Clock() as c:
                est.fit(P.X["train"], y["train"], sensitive_features=P.groups["train"])
            rec = {"task": task, "seed": seed, "config": name, "fit_cpu": round(c.cpu, 3)}
            rec["group_weights"] = est.group_weights_.round(4).tolist()
            for split in ("validation", "test"):
                pred = est.predict(P.X[split])
                rec[f"{split}_r2"] = float(r2_score(y[split], pred))
                rec[f"{split}_gap"] = _mean_gap(pred, P.groups[split])
            rows.append(rec)
    return rows


def part_regressor(args):
    rows = []
    for task in REGRESSION_TASKS:
        rows += _regression_runs(task, args, ())
        print(f"{task}: done", flush=True)
    return {"rows": rows}


# --------------------------------------------------------------------------- knobs
#: method -> the validation column its knob targets (and the expected sign), others shown
KNOB_TARGETS = {
    "fair_mlp": ("dp_difference", -1),
    "fairbinn": ("dp_difference", -1),
    "pruning": ("dp_difference", -1),
    "badr": ("dp_difference", -1),
    "facims": ("balanced_accuracy", -1),
    "robust": ("tpr_gap", +1),  # its paper's signed gap; the grid spans radius 0-0.2
}
SHOWN = ["accuracy", "balanced_accuracy", "dp_difference", "sufficiency_gap", "tpr_gap"]


def _spearman(x, y):
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


def part_knobs(args):
    res = _run(list(KNOB_TARGETS), "adult", args, out=RESULTS / "defaults_knobs")
    val = res.runs[res.runs["split"] == "validation"]
    out = {}
    for method, (column, sign) in KNOB_TARGETS.items():
        sub = val[val["method"] == method]
        means = sub.groupby("point", sort=True)[SHOWN].mean()
        knob = [
            next(iter(json.loads(p).values()))
            for p in sub.groupby("point", sort=True)["params"].first()
        ]
        out[method] = {
            "knob": res.info["methods"][[m["name"] for m in res.info["methods"]].index(method)][
                "knob"
            ],
            "values": knob,
            "target": column,
            "expected_sign": sign,
            "means": {c: means[c].round(4).tolist() for c in SHOWN},
            "spearman": {c: round(_spearman(knob, means[c]), 3) for c in SHOWN},
        }
    tolerances = (0.005, 0.01, 0.015, 0.02, 0.03)
    rows = _regression_runs("adult_hours", args, tolerances)
    grid = [f"tol={t:g}" for t in tolerances]
    gaps = [np.mean([r["validation_gap"] for r in rows if r["config"] == g]) for g in grid]
    r2 = [np.mean([r["validation_r2"] for r in rows if r["config"] == g]) for g in grid]
    out["badr_regressor"] = {
        "knob": "score_tolerance",
        "values": list(tolerances),
        "target": "mean-prediction gap (Adult hours-per-week)",
        "expected_sign": -1,
        "means": {"gap": [round(g, 4) for g in gaps], "r2": [round(v, 4) for v in r2]},
        "spearman": {"gap": round(_spearman(tolerances, gaps), 3)},
    }
    return {"methods": out, "runner_seconds": res.info["seconds"], "notes": res.notes}


# --------------------------------------------------------------------------- quick start
def _search(pipe, knob, values, cv, X, y, A, bound=0.05):
    """A GridSearchCV of the documentation's examples, with their scorers and refit."""
    from sklearn.model_selection import GridSearchCV

    from skfairbilevel.metrics import fairness_constrained_refit, make_fairness_scorer

    search = GridSearchCV(
        pipe,
        {knob: values},
        scoring={"acc": "accuracy", "dp": make_fairness_scorer("demographic_parity_difference")},
        refit=fairness_constrained_refit("acc", "dp", bound=bound),
        cv=cv,
    )
    with Clock() as c:
        search.fit(X, y, sensitive_features=A)
    cv_res = search.cv_results_
    dp = [abs(float(v)) for v in cv_res["mean_test_dp"]]
    return {
        "knob": knob,
        "values": list(values),
        "bound": bound,
        "cv": cv,
        "cv_accuracy": [round(float(v), 4) for v in cv_res["mean_test_acc"]],
        "cv_dp": [round(v, 4) for v in dp],
        "best": search.best_params_[knob],
        "best_cv_dp": round(dp[search.best_index_], 4),
        "seconds": round(c.wall, 1),
    }


def part_quickstart(args):
    """The GridSearchCV examples of doc/quickstart.rst and of the README, as written."""
    import sklearn
    from sklearn.pipeline import make_pipeline

    from skfairbilevel import FairBiNNClassifier, FairMLPClassifier
    from skfairbilevel.datasets import load_adult, make_preprocessor

    sklearn.set_config(enable_metadata_routing=True)
    out = {}
    adult = load_adult(sensitive="sex", split="train")  # the README's
    X, y, A = adult.data, adult.target, adult.sensitive_features
    pipe = make_pipeline(
        make_preprocessor(X, sensitive="sex"),
        FairMLPClassifier(fairness="demographic_parity", max_epochs=20),
    )
    out["readme"] = _search(
        pipe, "fairmlpclassifier__fairness_weight", [0.0, 5.0, 20.0], 5, X, y, A
    )
    print("readme:", out["readme"], flush=True)
    X, y = load_adult(sensitive="sex", return_X_y=True)  # the quick start's
    A = X["sex"]
    pipe = make_pipeline(make_preprocessor(X, sensitive="sex"), FairBiNNClassifier(random_state=0))
    out["quickstart"] = _search(pipe, "fairbinnclassifier__eta", [1, 3, 10, 30], 3, X, y, A)
    return out


# --------------------------------------------------------------------------- timing
def part_timing(args):
    from skfairbilevel import BADRClassifier
    from skfairbilevel.compare import load_table, make_splits, prepare

    table = load_table("adult")
    P = prepare(table, make_splits(table, 0)[0])
    X, y, g = P.X["train"], P.y["train"], P.groups["train"]
    cpu = {"pure": [], "budget": []}
    for _ in range(3):
        for name, tol in (("pure", None), ("budget", 0.02)):
            with Clock() as c:
                BADRClassifier(score_tolerance=tol).fit(X, y, sensitive_features=g)
            cpu[name].append(round(c.cpu, 3))
    ratio = float(np.median(cpu["budget"]) / np.median(cpu["pure"]))
    return {"cpu_seconds": cpu, "ratio_median": round(ratio, 2), "rows": int(len(y))}


# --------------------------------------------------------------------------- fronts
def part_fronts(args):
    """The runner's swept front (the registry's knob grid) of every method whose
    "done when" point failed in the ``done`` part, on that dataset."""
    data = _load()
    if "done" not in data:
        raise SystemExit("run --part done first: the fronts are drawn for its failures")
    _, points = _done_tables(data["done"])
    failed = sorted({(est, ds) for (est, ds), ok in points.items() if ok is False})
    out = {}
    for est, ds in failed:
        res = _run([est], ds, args)
        cols = ["accuracy", "balanced_accuracy", "dp_difference", "sufficiency_gap"]
        table = res.runs.groupby(["split", "point", "params"], sort=True)[cols].mean()
        out[f"{est}@{ds}"] = {
            "method": est,
            "dataset": ds,
            "knob": res.info["methods"][0]["knob"],
            "rows": table.reset_index().to_dict(orient="records"),
        }
        print(f"front {est} on {ds}: {len(table)} rows", flush=True)
    if "regressor" in data:  # BADRRegressor: its score_tolerance grid on the task
        _, reg_points = _regressor_lines(data["regressor"])
        for (_, task), ok in reg_points.items():
            if ok is False:
                rows = _regression_runs(task, args, (0.0025, 0.005, 0.01, 0.02, 0.03))
                out[f"badr_regressor@{task}"] = {
                    "method": "badr_regressor",
                    "task": task,
                    "rows": rows,
                }
    return {"fronts": out}


def _front_lines(fronts):
    lines = []
    for f in fronts["fronts"].values():
        if f["method"] == "badr_regressor":
            lines += [
                f"### BADRRegressor on {f['task']}: R^2 and mean-prediction gap over "
                "`score_tolerance` (means over seeds)",
                "",
                "| config | validation R^2 | validation gap | test R^2 | test gap |",
                "|---|---|---|---|---|",
            ]
            for cfg in dict.fromkeys(r["config"] for r in f["rows"]):
                sel = [r for r in f["rows"] if r["config"] == cfg]
                vals = [
                    np.mean([r[k] for r in sel])
                    for k in ("validation_r2", "validation_gap", "test_r2", "test_gap")
                ]
                lines.append(f"| {cfg} | " + " | ".join(f"{v:.4f}" for v in vals) + " |")
            lines.append("")
            continue
        lines += [
            f"### {f['method']} on {f['dataset']}: the runner's front over `{f['knob']}`",
            "",
            "| split | knob | accuracy | balanced acc. | DP | sufficiency gap |",
            "|---|---|---|---|---|---|",
        ]
        for r in f["rows"]:
            value = ", ".join(f"{v}" for v in json.loads(r["params"]).values())
            lines.append(
                f"| {r['split']} | {value} | {r['accuracy']:.4f} | "
                f"{r['balanced_accuracy']:.4f} | {r['dp_difference']:.4f} | "
                f"{r['sufficiency_gap']:.4f} |"
            )
        lines.append("")
    return lines, {}


# --------------------------------------------------------------------------- report
def _pct(a, b):
    return f"{100 * (a - b) / b:+.0f}%" if b else "-"


def _verdict(ok):
    return "PASS" if ok else "FAIL"


def _done_tables(done):
    lines, points = [], {}
    for ds, d in done["datasets"].items():
        means = {(r["method"], r["params"]): r for r in d["test_means"]}
        one = {r["method"]: r for r in d["test_means"] if r["method"] != "badr_front"}
        lines += [f"### {ds}", ""]
        lines += ["| model | accuracy | balanced acc. | DP | sufficiency gap |"]
        lines += ["|---|---|---|---|---|"]
        for name, r in one.items():
            lines.append(
                f"| {name} | {r['accuracy']:.4f} | {r['balanced_accuracy']:.4f} | "
                f"{r['dp_difference']:.4f} | {r['sufficiency_gap']:.4f} |"
            )
        lines.append("")
        for est in ("fairbinn", "pruning"):
            a, u = one.get(est), one.get(f"{est}_unaware")
            if a is None or u is None:
                continue
            loss = u["accuracy"] - a["accuracy"]
            drop = 1 - a["dp_difference"] / u["dp_difference"] if u["dp_difference"] else 0
            applies = u["dp_difference"] > DP_CUT
            ok = (drop >= DP_DROP and loss <= ACC_LOSS) if applies else None
            points[(est, ds)] = ok
            lines.append(
                f"* {est}: DP {u['dp_difference']:.4f} (unaware) -> {a['dp_difference']:.4f} "
                f"({-100 * drop:+.0f}%), accuracy {-100 * loss:+.2f} points: "
                + (_verdict(ok) if applies else f"not checked (unaware DP <= {DP_CUT})")
            )
        b, bu = one.get("badr"), one.get("badr_uniform")
        if b and bu:
            front = [r for r in d["badr_front"] if bu["accuracy"] - r["accuracy"] <= ACC_LOSS]
            best = min(front, key=lambda r: r["dp_difference"]) if front else None
            loss = bu["accuracy"] - b["accuracy"]
            lower = b["dp_difference"] < bu["dp_difference"]
            near = best is not None and b["dp_difference"] <= best["dp_difference"] + FRONT_DP
            ok = lower and loss <= ACC_LOSS and near
            points[("badr", ds)] = ok
            lines.append(
                f"* badr: DP {bu['dp_difference']:.4f} (uniform) -> {b['dp_difference']:.4f}, "
                f"accuracy {-100 * loss:+.2f} points; best fixed-weight point within "
                f"{100 * ACC_LOSS:.0f} points of uniform: "
                + (
                    f"t = {json.loads(best['params'])['group_weights'][0]:g} DP "
                    f"{best['dp_difference']:.4f} (accuracy {best['accuracy']:.4f})"
                    if best
                    else "none"
                )
                + f"; pure BADR {one['badr_pure']['accuracy']:.4f} / "
                f"{one['badr_pure']['dp_difference']:.4f}: {_verdict(ok)}"
            )
        f, fu = one.get("facims"), one.get("facims_unaware")
        if f and fu:
            erm = [one[k] for k in ("erm_mlp", "erm_mlp_balanced") if k in one]
            ok = (
                f["sufficiency_gap"] < fu["sufficiency_gap"]
                and f["balanced_accuracy"] >= fu["balanced_accuracy"]
            )
            points[("facims", ds)] = ok
            lines.append(
                f"* facims: sufficiency gap {fu['sufficiency_gap']:.4f} (unaware) -> "
                f"{f['sufficiency_gap']:.4f}, balanced accuracy "
                f"{fu['balanced_accuracy']:.4f} -> {f['balanced_accuracy']:.4f}: "
                f"{_verdict(ok)}; ERM MLP (plain / balanced): sufficiency gap "
                + " / ".join(f"{e['sufficiency_gap']:.4f}" for e in erm)
                + ", balanced accuracy "
                + " / ".join(f"{e['balanced_accuracy']:.4f}" for e in erm)
            )
        lines += [
            "",
            "BADR's fixed-weight front (weights of the first group in sorted order, test means):",
            "",
            "| t | accuracy | DP |",
            "|---|---|---|",
        ]
        for r in d["badr_front"]:
            t = json.loads(r["params"])["group_weights"][0]
            lines.append(f"| {t:g} | {r['accuracy']:.4f} | {r['dp_difference']:.4f} |")
        lines.append("")
        del means
    return lines, points


def _regressor_lines(reg):
    lines, points = [], {}
    rows = reg["rows"]
    lines += [
        "| task | uniform R^2 / gap | default R^2 / gap | R^2 change | gap change | point |",
        "|---|---|---|---|---|---|",
    ]
    for task in REGRESSION_TASKS:

        def mean(cfg, key, task=task):
            sel = [r[key] for r in rows if r["task"] == task and r["config"] == cfg]
            return float(np.mean(sel))

        u_r2, u_gap = mean("uniform", "test_r2"), mean("uniform", "test_gap")
        d_r2, d_gap = mean("default", "test_r2"), mean("default", "test_gap")
        ok = u_r2 - d_r2 <= R2_LOSS and d_gap < u_gap
        points[("badr_regressor", task)] = ok
        lines.append(
            f"| {task} | {u_r2:.4f} / {u_gap:.4f} | {d_r2:.4f} / {d_gap:.4f} | "
            f"{d_r2 - u_r2:+.4f} | {_pct(d_gap, u_gap)} | {_verdict(ok)} |"
        )
    return lines, points


def _knob_lines(knobs):
    lines = [
        "| estimator | knob | values | targeted validation metric (seed means) | "
        "Spearman | point |",
        "|---|---|---|---|---|---|",
    ]
    points = {}
    for method, k in knobs["methods"].items():
        target = "gap" if method == "badr_regressor" else k["target"]
        rho = k["spearman"][target]
        ok = abs(rho) >= RHO_MIN
        points[("knob", method)] = ok
        vals = ", ".join(f"{v:g}" for v in k["values"])
        means = ", ".join(f"{v:.4f}" for v in k["means"][target])
        lines.append(
            f"| {method} | {k['knob']} | {vals} | {target}: {means} | {rho:+.2f} | {_verdict(ok)} |"
        )
    if "robust" in knobs["methods"]:
        lines += [
            "",
            "FairRobust's signed TPR gap (its paper's metric; Male minus Female) grows with "
            "the radius over its sensible range 0-0.2 (the runner's grid): the knob moves "
            "it monotonically, in the unfair direction on Adult; at radius 0.5 and more the "
            "model approaches the majority-class predictor (`--full` grid).",
        ]
    lines.append("")
    lines.append("Other metrics' Spearman (validation, seed means):")
    lines.append("")
    for method, k in knobs["methods"].items():
        others = ", ".join(f"{c} {v:+.2f}" for c, v in k["spearman"].items())
        lines.append(f"* {method}: {others}")
    return lines, points


#: what a failing point means, for the points the validation study expected to be fragile
EXPLAIN = {
    ("badr", "german_credit"): (
        "BADR on German credit: the budget is on training accuracy (600 rows per seed); "
        "the test split has 200 rows, so a point of accuracy is 2 rows. The runner's "
        "front over `score_tolerance` (section above) shows every budget from 0.005 to 0.03 "
        "losing more than 2 test points against uniform weights while the training "
        "loss stays within the budget: out of reach of this knob on this data. The "
        "default stays at the value chosen on Adult validation (one default for all "
        "datasets); the fixed-weight front's best point within 2 points is in the table "
        "above."
    ),
    ("facims", "credit_default"): (
        "FACIMS on credit default: its unaware form already has the smallest "
        "sufficiency gap. The runner's front over `lambda_up` (section above) trades balanced "
        "accuracy for the gap monotonically on test (a larger `lambda_up` lowers both), "
        "so no value gives a lower gap at equal or better balanced accuracy than the "
        "unaware model: out of reach of the knob on this data, as on validation in the "
        "study (doc/user_guide/facims.rst). The default stays at the paper's 0.7, which "
        "meets the point on Adult and German credit."
    ),
}


def write_report(data):
    lines = [
        "# Defaults and trade-off knobs (`benchmarks/bench_defaults.py`)",
        "",
        "Every estimator at its defaults (chosen on validation data of the bundled "
        "datasets, never on these test splits) against the same estimator without the "
        "sensitive features or its baseline, on the runner's splits (Adult: the "
        "official test file; credit default and German credit: stratified 60/20/20), "
        "seeds 0, 1, 2, test figures as means over seeds. Thresholds are the issue's "
        "'done when' points. The machine was shared; the load is recorded per part.",
        "",
    ]
    verdicts = {}
    for part, title in (
        ("done", "Defaults against the unaware model / baselines (test)"),
        ("regressor", "BADRRegressor at its defaults against uniform weights (test)"),
        ("knobs", "5-point knob grids on Adult (validation)"),
        ("quickstart", "The quick start's GridSearchCV"),
        ("timing", "BADRClassifier: the score budget's cost on Adult"),
        ("fronts", "Where a point failed: the method's swept front (the runner's registry)"),
    ):
        if part not in data:
            continue
        d = data[part]
        m = d["machine"]
        lines += [
            f"## {title}",
            "",
            f"`{m['command']}`; {m['date']}, load average "
            + " / ".join(f"{v:.1f}" for v in m["load_average"])
            + f" at the end, {m['cores']} cores (shared machine).",
            "",
        ]
        if part == "done":
            body, pts = _done_tables(d)
        elif part == "regressor":
            body, pts = _regressor_lines(d)
        elif part == "knobs":
            body, pts = _knob_lines(d)
            body += [
                "",
                "The runner's report of this sweep (with FACIMS on balanced accuracy "
                "and the sufficiency gap, FairRobust on the signed TPR gap): "
                "`defaults_knobs/report.md`.",
            ]
        elif part == "fronts":
            body, pts = _front_lines(d)
        elif part == "quickstart":
            pts, body = {}, []
            for where in ("quickstart", "readme"):
                if where not in d:
                    continue
                q = d[where]
                ok = q["best_cv_dp"] <= q["bound"]
                pts[("GridSearchCV example", where)] = ok
                body.append(
                    f"* {where}: `{q['knob']}` in {q['values']}, {q['cv']}-fold CV: accuracy "
                    f"{q['cv_accuracy']}, DP {q['cv_dp']}; the constrained refit picks "
                    f"{q['best']} (CV DP {q['best_cv_dp']}, bound {q['bound']}): "
                    f"{_verdict(ok)} ({q['seconds']:.0f} s)."
                )
        else:
            pts = {}
            body = [
                f"CPU seconds per fit on {d['rows']} rows, alternating, same process: pure "
                f"{d['cpu_seconds']['pure']}, with `score_tolerance=0.02` "
                f"{d['cpu_seconds']['budget']}; ratio of the medians "
                f"{d['ratio_median']}.",
            ]
        verdicts.update(pts)
        lines += body + [""]
    if verdicts:
        lines += ["## Done-when points", "", "| point | where | result |", "|---|---|---|"]
        for (point, where), ok in verdicts.items():
            if ok is not None:
                lines.append(f"| {point} | {where} | {_verdict(ok)} |")
        failed = [key for key, ok in verdicts.items() if ok is False]
        if failed:
            lines += ["", "Failing points:", ""]
            for key in failed:
                lines.append(f"* {key[0]} on {key[1]}: " + EXPLAIN.get(key, "see above."))
    MD.write_text("\n".join(lines) + "\n")
    return MD


PARTS = {
    "done": part_done,
    "regressor": part_regressor,
    "knobs": part_knobs,
    "quickstart": part_quickstart,
    "timing": part_timing,
    "fronts": part_fronts,
}


def main(argv=None):
    ap = parser(__doc__)
    ap.add_argument("--part", nargs="*", choices=list(PARTS), default=list(PARTS))
    # (the default order runs "fronts" after "done", whose failures it sweeps)
    ap.add_argument("--datasets", nargs="*", choices=DATASETS, default=list(DATASETS))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument(
        "--cache",
        default=str(Path(tempfile.gettempdir()) / "skfairbilevel_bench_defaults"),
        help="the runner's fit cache (resumes an interrupted run)",
    )
    ap.add_argument("--report", action="store_true", help="only rewrite defaults.md")
    args = parse(ap, argv)
    if not args.report:
        for part in args.part:
            payload = PARTS[part](args)
            _save(part, payload, args)
            write_report(_load())
            print(f"{part}: recorded", flush=True)
    print(write_report(_load()))


if __name__ == "__main__":
    main()
