"""FairPruningClassifier (BiFP): accuracy and accuracy gap over sparsity, iterations to
a common quality, and prediction speed of the structured-pruned network.

Three parts (``--part``):

``sweep``
    Adult (sensitive ``sex``, official train/test split) and credit default (``SEX``,
    stratified 70/30 split), several seeds, unstructured sparsities with remaining ratio
    ``0.8**i`` (i = 1..18, down to 1.8%) plus 70% and 90%, for the four ``pruning``
    strategies.
    Test accuracy, accuracy-parity difference (Definition 1) and degradation fairness
    (Definition 3). The fairness weight is chosen once per dataset on a validation split
    of the training data (seed 0, 70% sparsity): the smallest validation accuracy gap
    among bilevel fits whose validation accuracy is at most half a point below
    magnitude pruning's. The same weight is used by all fairness-aware strategies. The
    dense pre-training is shared by all sparsities of a seed (``warm_start``), as BiP
    prunes each target directly from the dense model. Rows are appended to
    ``pruning_sweep.csv`` as they finish, so an interrupted run resumes.
``iterations``
    At 70% and 90% sparsity, bilevel vs the two-stage baselines with per-epoch
    validation (20% of the training rows): the cumulative number of weight updates
    ("iterations", pre-training included) and of forward-backward passes until the pruned
    model first reaches a common target quality ``(accuracy >= a*, gap <= g*)``, where
    ``a*``/``g*`` are the lower final accuracy and larger final gap of the pair.
``ablation``
    Bilevel without the fairness penalty (``fairness_weight=0``, i.e. BiP) at 70%, 90%
    and 96.5% sparsity, to separate the effect of learning the mask from that of the
    penalty.
``structured``
    The same four strategies with ``structured=True`` (whole hidden units removed) at a
    few sparsities, every seed of the sweep.
``speed``
    ``predict_proba`` on 100,000 rows: structured pruning at 70% sparsity vs the dense
    network of the same architecture, and vs unstructured pruning (masked dense
    matrices). Median of interleaved repetitions in one process; ratios only.

Usage::

    python benchmarks/bench_pruning.py --quick           # about a minute
    python benchmarks/bench_pruning.py                   # everything (hours on 2 cores)
    python benchmarks/bench_pruning.py --part speed      # or sweep, iterations, structured
    python benchmarks/bench_pruning.py --report-only     # tables and plot from the CSVs

Results go to ``benchmarks/results/pruning*.{csv,md,png}`` (``--out``).
"""

import csv
import platform
import statistics
import time
from pathlib import Path

import _common as shared
import numpy as np
import torch
from sklearn.model_selection import train_test_split

from skfairbilevel import FairPruningClassifier
from skfairbilevel.base import PREDICT_CHUNK
from skfairbilevel.datasets import load_adult, load_credit_default, make_preprocessor
from skfairbilevel.metrics import accuracy_parity_difference

STRATEGIES = ("bilevel", "magnitude", "prune_then_fair", "fair_then_prune")
FULL = dict(
    datasets=("adult", "credit"),
    seeds=(0, 1, 2, 3, 4),
    remaining=tuple(sorted({round(0.8**i, 4) for i in range(1, 19)} | {0.3, 0.1}, reverse=True)),
    lambdas=(0.25, 0.5, 0.75, 1.0),
    iter_sparsities=(0.7, 0.9),
    iter_seeds=(0, 1, 2),
    est=dict(
        hidden_layer_sizes=(64, 64),
        fairness="accuracy_parity",  # BiFP's penalty: the results measure its gap
        batch_size=512,
        lr=2e-3,
        pretrain_epochs=20,
        max_epochs=6,
        finetune_epochs=3,
    ),
    iter_est=dict(max_epochs=10, finetune_epochs=10),
    structured_sparsities=(0.5, 0.7, 0.9),
    ablation_sparsities=(0.7, 0.9, 0.9648),
    speed=dict(rows=100_000, hidden=((64, 64), (128, 128), (256, 256)), repeats=15),
)
QUICK = dict(
    datasets=("adult",),
    seeds=(0,),
    remaining=(0.3, 0.1),
    lambdas=(0.5,),
    iter_sparsities=(0.9,),
    iter_seeds=(0,),
    est=dict(
        hidden_layer_sizes=(32, 32),
        fairness="accuracy_parity",
        batch_size=1024,
        lr=3e-3,
        pretrain_epochs=4,
        max_epochs=2,
        finetune_epochs=1,
    ),
    iter_est=dict(max_epochs=3, finetune_epochs=2),
    structured_sparsities=(0.7,),
    ablation_sparsities=(0.9,),
    speed=dict(rows=100_000, hidden=((64, 64),), repeats=7),
)
SWEEP_FIELDS = [
    "dataset",
    "seed",
    "strategy",
    "sparsity",
    "achieved_sparsity",
    "fairness_weight",
    "accuracy",
    "accuracy_gap",
    "degradation_fairness",
    "dense_accuracy",
    "dense_gap",
    "iterations",
    "gradient_evaluations",
    "fit_seconds",
]


# ---------------------------------------------------------------------- data
def load(name, *, quick=False):
    """(X_train, y_train, A_train, X_test, y_test, A_test) as float32 / numpy."""
    if name == "adult":
        tr = load_adult(split="train", sensitive="sex")
        te = load_adult(split="test", sensitive="sex")
        Xtr, ytr, Atr = tr.data, tr.target.to_numpy(), tr.sensitive_features.to_numpy()
        Xte, yte, Ate = te.data, te.target.to_numpy(), te.sensitive_features.to_numpy()
        pre = make_preprocessor(Xtr, sensitive="sex", keep_sensitive=False)
    elif name == "credit":
        b = load_credit_default(sensitive="SEX")
        A = b.sensitive_features.to_numpy()
        y = b.target.to_numpy()
        idx = np.arange(len(y))
        tr, te = train_test_split(
            idx, test_size=0.3, random_state=0, stratify=np.column_stack([y, A])
        )
        Xtr, Xte = b.data.iloc[tr], b.data.iloc[te]
        ytr, yte, Atr, Ate = y[tr], y[te], A[tr], A[te]
        pre = make_preprocessor(
            Xtr, sensitive="SEX", keep_sensitive=False, categorical=["EDUCATION", "MARRIAGE"]
        )
    else:
        raise ValueError(name)
    Xtr = pre.fit_transform(Xtr).to_numpy(np.float32)
    Xte = pre.transform(Xte).to_numpy(np.float32)
    if quick:  # a third of the rows
        Xtr, ytr, Atr = Xtr[::3], ytr[::3], Atr[::3]
        Xte, yte, Ate = Xte[::3], yte[::3], Ate[::3]
    return Xtr, ytr, Atr, Xte, yte, Ate


def evaluate(clf, X, y, A):
    pred = clf.predict(X)
    dense = clf.predict_dense(X)
    return dict(
        accuracy=float(np.mean(pred == y)),
        accuracy_gap=accuracy_parity_difference(y, pred, sensitive_features=A),
        degradation_fairness=clf.degradation_fairness(X, y, sensitive_features=A),
        dense_accuracy=float(np.mean(dense == y)),
        dense_gap=accuracy_parity_difference(y, dense, sensitive_features=A),
    )


# ---------------------------------------------------------------------- lambda choice
def choose_lambda(name, data, cfg, log):
    Xtr, ytr, Atr = data[:3]
    tr, va = train_test_split(
        np.arange(len(ytr)), test_size=0.2, random_state=0, stratify=np.column_stack([ytr, Atr])
    )
    clf = FairPruningClassifier(**cfg["est"], sparsity=0.7, warm_start=True, random_state=0)
    clf.set_params(pruning="magnitude").fit(Xtr[tr], ytr[tr], sensitive_features=Atr[tr])
    mag = evaluate(clf, Xtr[va], ytr[va], Atr[va])
    rows = []
    for lam in cfg["lambdas"]:
        clf.set_params(pruning="bilevel", fairness_weight=lam)
        clf.fit(Xtr[tr], ytr[tr], sensitive_features=Atr[tr])
        rows.append((lam, evaluate(clf, Xtr[va], ytr[va], Atr[va])))
    ok = [(r["accuracy_gap"], lam) for lam, r in rows if r["accuracy"] >= mag["accuracy"] - 0.005]
    lam = min(ok)[1] if ok else min(cfg["lambdas"])
    log(
        f"[{name}] lambda selection (validation, 70% sparsity): magnitude acc "
        f"{mag['accuracy']:.4f} gap {mag['accuracy_gap']:.4f}; "
        + "; ".join(
            f"lambda={lam_}: acc {r['accuracy']:.4f} gap {r['accuracy_gap']:.4f}"
            for lam_, r in rows
        )
        + f" -> fairness_weight={lam}"
    )
    return lam, mag, rows


# ---------------------------------------------------------------------- sweep
def run_sweep(cfg, out, log, quick):
    path = out / ("pruning_sweep_quick.csv" if quick else "pruning_sweep.csv")
    done = set()
    if path.exists():
        with path.open() as f:
            for r in csv.DictReader(f):
                done.add(
                    (r["dataset"], int(r["seed"]), r["strategy"], round(float(r["sparsity"]), 4))
                )
    new_file = not path.exists()
    lambdas = {}
    lam_path = out / ("pruning_lambda_quick.txt" if quick else "pruning_lambda.txt")
    if lam_path.exists():
        for line in lam_path.read_text().splitlines():
            key, value = line.split("=")
            lambdas[key] = float(value)
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=SWEEP_FIELDS)
        if new_file:
            writer.writeheader()
        for name in cfg["datasets"]:
            data = load(name, quick=quick)
            if name not in lambdas:
                lambdas[name] = choose_lambda(name, data, cfg, log)[0]
                with lam_path.open("a") as lf:
                    lf.write(f"{name}={lambdas[name]}\n")
            lam = lambdas[name]
            Xtr, ytr, Atr, Xte, yte, Ate = data
            for seed in cfg["seeds"]:
                # one dense model per seed for the strategies that pre-train on CE, one
                # (fair) for fair_then_prune; warm_start reuses them across sparsities
                plain = FairPruningClassifier(
                    **cfg["est"], fairness_weight=lam, warm_start=True, random_state=seed
                )
                fair = FairPruningClassifier(
                    **cfg["est"], fairness_weight=lam, warm_start=True, random_state=seed
                )
                for remaining in cfg["remaining"]:
                    for strategy in STRATEGIES:
                        clf = fair if strategy == "fair_then_prune" else plain
                        sparsity = round(1 - remaining, 4)
                        if (name, seed, strategy, sparsity) in done:
                            continue
                        clf.set_params(pruning=strategy, sparsity=sparsity)
                        with shared.Clock() as clock:
                            clf.fit(Xtr, ytr, sensitive_features=Atr)
                        secs = clock.wall
                        row = dict(
                            dataset=name,
                            seed=seed,
                            strategy=strategy,
                            sparsity=sparsity,
                            achieved_sparsity=clf.sparsity_,
                            fairness_weight=lam,
                            fit_seconds=round(secs, 2),
                            iterations=clf.history_[-1]["iterations"],
                            gradient_evaluations=clf.history_[-1]["gradient_evaluations"],
                            **evaluate(clf, Xte, yte, Ate),
                        )
                        writer.writerow(row)
                        f.flush()
                        log(
                            f"[{name} seed {seed}] {strategy:16s} sparsity {sparsity:.4f}: "
                            f"acc {row['accuracy']:.4f} gap {row['accuracy_gap']:.4f} "
                            f"({secs:.1f}s)"
                        )
    return path, lambdas


# ---------------------------------------------------------------------- structured
def run_structured(cfg, out, lambdas, log, quick):
    rows = []
    for name in cfg["datasets"]:
        Xtr, ytr, Atr, Xte, yte, Ate = load(name, quick=quick)
        lam = lambdas[name]
        for seed in cfg["seeds"]:
            plain = FairPruningClassifier(
                **cfg["est"],
                fairness_weight=lam,
                structured=True,
                warm_start=True,
                random_state=seed,
            )
            fair = FairPruningClassifier(
                **cfg["est"],
                fairness_weight=lam,
                structured=True,
                warm_start=True,
                random_state=seed,
            )
            for sparsity in cfg["structured_sparsities"]:
                for strategy in STRATEGIES:
                    clf = fair if strategy == "fair_then_prune" else plain
                    clf.set_params(pruning=strategy, sparsity=sparsity)
                    clf.fit(Xtr, ytr, sensitive_features=Atr)
                    row = dict(
                        dataset=name,
                        seed=seed,
                        strategy=strategy,
                        sparsity=sparsity,
                        achieved_sparsity=clf.sparsity_,
                        **evaluate(clf, Xte, yte, Ate),
                    )
                    rows.append(row)
                    log(
                        f"[structured {name} seed {seed}] {strategy:16s} sparsity "
                        f"{sparsity}: acc {row['accuracy']:.4f} gap {row['accuracy_gap']:.4f}"
                    )
    path = out / ("pruning_structured_quick.csv" if quick else "pruning_structured.csv")
    return _write_csv(path, rows)


def _write_csv(path, rows):
    """Write ``rows`` (dicts with the same keys) as CSV; returns ``path``."""
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


# ---------------------------------------------------------------------- ablation
def run_ablation(cfg, out, log, quick):
    """Bilevel with fairness_weight=0 (BiP, learned masks without the fairness penalty):
    separates what the learned mask brings from what the penalty brings."""
    rows = []
    for name in cfg["datasets"]:
        Xtr, ytr, Atr, Xte, yte, Ate = load(name, quick=quick)
        for seed in cfg["seeds"]:
            clf = FairPruningClassifier(
                **cfg["est"], fairness_weight=0.0, warm_start=True, random_state=seed
            )
            for sparsity in cfg["ablation_sparsities"]:
                clf.set_params(sparsity=sparsity).fit(Xtr, ytr, sensitive_features=Atr)
                row = dict(
                    dataset=name,
                    seed=seed,
                    strategy="bilevel, fairness_weight=0",
                    sparsity=sparsity,
                    **evaluate(clf, Xte, yte, Ate),
                )
                rows.append(row)
                log(
                    f"[ablation {name} seed {seed}] bilevel lambda=0 sparsity {sparsity}: "
                    f"acc {row['accuracy']:.4f} gap {row['accuracy_gap']:.4f}"
                )
    path = out / ("pruning_ablation_quick.csv" if quick else "pruning_ablation.csv")
    return _write_csv(path, rows)


# ---------------------------------------------------------------------- iterations
def iterations_to(history, acc, gap):
    """(iterations, gradient evaluations) at the first pruned epoch (pruning or
    fine-tuning phase) whose validation accuracy >= acc and gap <= gap; None if never."""
    for h in history:
        if h["phase"] == "pretrain":
            continue
        if h["val_accuracy"] >= acc - 1e-12 and h["val_accuracy_gap"] <= gap + 1e-12:
            return h["iterations"], h["gradient_evaluations"]
    return None


def run_iterations(cfg, out, lambdas, log, quick):
    rows = []
    for name in cfg["datasets"]:
        data = load(name, quick=quick)
        Xtr, ytr, Atr = data[:3]
        lam = lambdas[name]
        for seed in cfg["iter_seeds"]:
            for sparsity in cfg["iter_sparsities"]:
                hist = {}
                for strategy in ("bilevel", "prune_then_fair", "fair_then_prune"):
                    est = {**cfg["est"], **cfg["iter_est"]}
                    clf = FairPruningClassifier(
                        **est,
                        pruning=strategy,
                        sparsity=sparsity,
                        fairness_weight=lam,
                        early_stopping=True,
                        validation_fraction=0.2,
                        n_iter_no_change=10_000,
                        random_state=seed,
                    )
                    clf.fit(Xtr, ytr, sensitive_features=Atr)
                    hist[strategy] = clf.history_
                b_last = hist["bilevel"][-1]
                for base in ("prune_then_fair", "fair_then_prune"):
                    s_last = hist[base][-1]
                    acc = min(b_last["val_accuracy"], s_last["val_accuracy"])
                    gap = max(b_last["val_accuracy_gap"], s_last["val_accuracy_gap"])
                    rb = iterations_to(hist["bilevel"], acc, gap) or (None, None)
                    rs = iterations_to(hist[base], acc, gap) or (None, None)
                    row = dict(
                        dataset=name,
                        seed=seed,
                        sparsity=sparsity,
                        baseline=base,
                        target_accuracy=acc,
                        target_gap=gap,
                        bilevel_final=(b_last["val_accuracy"], b_last["val_accuracy_gap"]),
                        baseline_final=(s_last["val_accuracy"], s_last["val_accuracy_gap"]),
                        bilevel_iterations=rb[0],
                        bilevel_evaluations=rb[1],
                        baseline_iterations=rs[0],
                        baseline_evaluations=rs[1],
                        pretrain_iterations=max(
                            h["iterations"] for h in hist[base] if h["phase"] == "pretrain"
                        ),
                    )
                    rows.append(row)
                    log(
                        f"[{name} seed {seed} sparsity {sparsity}] target acc>={acc:.4f} "
                        f"gap<={gap:.4f}: bilevel {rb[0]} it / {rb[1]} evals, {base} "
                        f"{rs[0]} it / {rs[1]} evals"
                    )
    path = out / ("pruning_iterations_quick.csv" if quick else "pruning_iterations.csv")
    return _write_csv(path, rows)


# ---------------------------------------------------------------------- speed
def run_speed(cfg, log):
    """predict_proba on 100k Adult rows: dense vs structured / unstructured 70%.

    The models are timed interleaved (dense, structured, unstructured, dense, ...) in one
    process. Per repetition: wall-clock and thread CPU time (``time.thread_time``, which
    leaves out the time the process waits for a core on a loaded machine) of
    ``predict_proba``, and the CPU time of the network forward pass alone (the same
    chunks, no input validation or conversion). Speed-ups are dense / model, of the
    medians, and the quartiles of the per-repetition (paired) wall-clock ratios.
    """
    Xtr, ytr, Atr = load("adult")[:3]
    rng = np.random.default_rng(0)
    X = Xtr[rng.integers(0, len(Xtr), cfg["speed"]["rows"])]
    fit_rows = slice(0, 5000)
    results = []
    for hidden in cfg["speed"]["hidden"]:
        kw = dict(
            hidden_layer_sizes=hidden,
            pretrain_epochs=2,
            max_epochs=1,
            finetune_epochs=0,
            batch_size=512,
            random_state=0,
        )
        models = {
            "dense": FairPruningClassifier(**kw, sparsity=0.0, pruning="magnitude"),
            "structured 70%": FairPruningClassifier(**kw, sparsity=0.7, structured=True),
            "unstructured 70%": FairPruningClassifier(**kw, sparsity=0.7),
        }
        for m in models.values():
            m.fit(Xtr[fit_rows], ytr[fit_rows], sensitive_features=Atr[fit_rows])
            m.predict_proba(X[:1000])  # warm-up
        chunks = torch.as_tensor(X).split(PREDICT_CHUNK)  # as predict_proba does
        wall = {k: [] for k in models}
        cpu = {k: [] for k in models}
        fwd = {k: [] for k in models}
        for _ in range(cfg["speed"]["repeats"]):
            for k, m in models.items():  # interleaved
                c0, t0 = time.thread_time(), time.perf_counter()
                m.predict_proba(X)
                wall[k].append(time.perf_counter() - t0)
                cpu[k].append(time.thread_time() - c0)
                with torch.inference_mode():
                    c0 = time.thread_time()
                    for c in chunks:
                        m.model_(c)
                    fwd[k].append(time.thread_time() - c0)
        med = {k: statistics.median(v) for k, v in wall.items()}
        cmed = {k: statistics.median(v) for k, v in cpu.items()}
        fmed = {k: statistics.median(v) for k, v in fwd.items()}
        for k, m in models.items():
            paired = np.percentile(
                [d / t for d, t in zip(wall["dense"], wall[k], strict=True)], [25, 75]
            )
            linears = [mod for mod in m.model_ if isinstance(mod, torch.nn.Linear)]
            results.append(
                dict(
                    hidden=hidden,
                    model=k,
                    seconds=med[k],
                    cpu_seconds=cmed[k],
                    speedup=med["dense"] / med[k],
                    speedup_q25=paired[0],
                    speedup_q75=paired[1],
                    speedup_cpu=cmed["dense"] / cmed[k],
                    forward_speedup=fmed["dense"] / fmed[k],
                    fixed_cpu_share=1 - fmed[k] / cmed[k],
                    widths=" ".join(str(lin.out_features) for lin in linears[:-1]),
                    params=sum(int((p != 0).sum()) for p in m.model_.parameters()),
                    stored_params=sum(p.numel() for p in m.model_.parameters()),
                    repeats=cfg["speed"]["repeats"],
                )
            )
            r = results[-1]
            log(
                f"[speed {hidden}] {k:17s} wall {med[k] * 1e3:7.1f} ms, cpu "
                f"{cmed[k] * 1e3:6.1f} ms; speed-up vs dense: wall {r['speedup']:.2f}x "
                f"(paired q25-q75 {paired[0]:.2f}-{paired[1]:.2f}), cpu "
                f"{r['speedup_cpu']:.2f}x, forward only {r['forward_speedup']:.2f}x; "
                f"widths {r['widths']}, params {r['params']} / {r['stored_params']}"
            )
    return results


# ---------------------------------------------------------------------- report
def summarise_sweep(path):
    with path.open() as f:
        rows = list(csv.DictReader(f))
    table = {}
    for r in rows:
        key = (r["dataset"], r["strategy"], float(r["sparsity"]))
        table.setdefault(key, []).append(r)
    return rows, table


def mean_sd(values):
    v = np.asarray(values, float)
    return v.mean(), (v.std(ddof=1) if len(v) > 1 else 0.0)


def plot_sweep(table, datasets, png):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(
        2, len(datasets), figsize=(5.5 * len(datasets), 7), squeeze=False, sharex=True
    )
    for j, name in enumerate(datasets):
        for strategy in STRATEGIES:
            sp = sorted({k[2] for k in table if k[0] == name and k[1] == strategy})
            if not sp:
                continue
            remaining = [1 - s for s in sp]
            for i, metric in enumerate(("accuracy", "accuracy_gap")):
                stats = [
                    mean_sd([float(r[metric]) for r in table[(name, strategy, s)]]) for s in sp
                ]
                m = np.array([s[0] for s in stats])
                sd = np.array([s[1] for s in stats])
                ax = axes[i, j]
                ax.plot(remaining, m, marker="o", ms=3, label=strategy)
                ax.fill_between(remaining, m - sd, m + sd, alpha=0.15)
        for i, label in enumerate(("test accuracy", "accuracy-parity difference")):
            ax = axes[i, j]
            ax.set_xscale("log")
            ticks = [0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8]
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.invert_xaxis()
            ax.axvline(0.3, color="grey", lw=0.8, ls=":")
            ax.axvline(0.1, color="grey", lw=0.8, ls=":")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
        axes[0, j].set_title(
            {"adult": "Adult (sex)", "credit": "Credit default (SEX)"}.get(name, name)
        )
        axes[1, j].set_xlabel("fraction of weights remaining (log scale)")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("FairPruningClassifier: unstructured pruning, mean ± sd over seeds", fontsize=10)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)


def report(out, quick, lambdas, speed, iter_path, command, load_note):
    sfx = "_quick" if quick else ""
    cmd_path = out / f"pruning_commands{sfx}.txt"
    commands = cmd_path.read_text().splitlines() if cmd_path.exists() else [command]
    lines = [f"# FairPruningClassifier (BiFP) results{' (quick run)' if quick else ''}", ""]
    notes = out / f"pruning_notes{sfx}.md"
    if notes.exists():  # hand-written targets and findings, kept across --report-only runs
        lines += [notes.read_text().rstrip(), ""]
    lines += [
        "## Runs",
        "",
        "Commands (in order):",
        "",
        *[f"    {c}" for c in commands],
        "",
        f"Report date: {shared.now()[:10]}  ",
        f"Machine: {platform.processor() or platform.machine()}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} intra-op thread(s). "
        f"{load_note}",
        "",
    ]
    cfg = QUICK if quick else FULL
    lines += [
        "Estimator settings: `"
        + ", ".join(f"{k}={v}" for k, v in cfg["est"].items())
        + "`; baselines fine-tune for `max_epochs + finetune_epochs` epochs.",
        "",
    ]
    sweep_path = out / f"pruning_sweep{sfx}.csv"
    if sweep_path.exists():
        rows, table = summarise_sweep(sweep_path)
        datasets = [d for d in cfg["datasets"] if any(k[0] == d for k in table)]
        seeds = sorted({int(r["seed"]) for r in rows})
        lines += [
            "## Accuracy and accuracy gap over sparsity",
            "",
            f"Seeds {seeds}; fairness_weight per dataset (chosen on validation): "
            + ", ".join(f"{k}={v}" for k, v in lambdas.items())
            + ".",
            "",
            f"![sweep](pruning_sparsity{sfx}.png)",
            "",
        ]
        plot_sweep(table, datasets, out / f"pruning_sparsity{sfx}.png")
        for name in datasets:
            lines += [
                f"### {name}",
                "",
                "| sparsity | strategy | accuracy | accuracy gap (Def. 1) | "
                "degradation fairness (Def. 3) |",
                "|---|---|---|---|---|",
            ]
            sps = sorted({k[2] for k in table if k[0] == name})
            for s in sps:
                for strategy in STRATEGIES:
                    rs = table.get((name, strategy, s))
                    if not rs:
                        continue
                    a, asd = mean_sd([float(r["accuracy"]) for r in rs])
                    g, gsd = mean_sd([float(r["accuracy_gap"]) for r in rs])
                    d, dsd = mean_sd([float(r["degradation_fairness"]) for r in rs])
                    lines.append(
                        f"| {s:.4f} | {strategy} | {a:.4f} ± {asd:.4f} | "
                        f"{g:.4f} ± {gsd:.4f} | {d:.4f} ± {dsd:.4f} |"
                    )
            lines.append("")
        lines += [
            "### Target: at 70% and 90% sparsity, bilevel gap <= magnitude gap with "
            "accuracy within 1 point (means over seeds)",
            "",
            "| dataset | sparsity | bilevel acc | magnitude acc | bilevel gap | "
            "magnitude gap | seeds with bilevel gap <= magnitude gap | met? |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name in datasets:
            for s in (0.7, 0.9):
                b = table.get((name, "bilevel", s))
                m = table.get((name, "magnitude", s))
                if not b or not m:
                    continue
                ba = np.mean([float(r["accuracy"]) for r in b])
                ma = np.mean([float(r["accuracy"]) for r in m])
                bg = np.mean([float(r["accuracy_gap"]) for r in b])
                mg = np.mean([float(r["accuracy_gap"]) for r in m])
                met = bg <= mg and ba >= ma - 0.01
                by_seed = {r["seed"]: float(r["accuracy_gap"]) for r in m}
                wins = sum(
                    float(r["accuracy_gap"]) <= by_seed[r["seed"]]
                    for r in b
                    if r["seed"] in by_seed
                )
                lines.append(
                    f"| {name} | {s} | {ba:.4f} | {ma:.4f} | {bg:.4f} | {mg:.4f} "
                    f"| {wins}/{len(b)} | {'met' if met else 'NOT met'} |"
                )
        lines.append("")
    ab_path = out / f"pruning_ablation{sfx}.csv"
    if ab_path.exists() and sweep_path.exists():
        _, ab = summarise_sweep(ab_path)
        lines += [
            "## Ablation: learned mask without the fairness penalty (BiP)",
            "",
            "Bilevel with `fairness_weight=0` next to the sweep's strategies at the "
            "same sparsity (mean ± sd over seeds).",
            "",
            "| dataset | sparsity | strategy | accuracy | accuracy gap |",
            "|---|---|---|---|---|",
        ]
        for (name, strategy, s), rs in sorted(ab.items()):
            for label, group in [(strategy, rs)] + [
                (st, table.get((name, st, s), [])) for st in STRATEGIES
            ]:
                if not group:
                    continue
                a, asd = mean_sd([float(r["accuracy"]) for r in group])
                g, gsd = mean_sd([float(r["accuracy_gap"]) for r in group])
                lines.append(
                    f"| {name} | {s} | {label} | {a:.4f} ± {asd:.4f} | {g:.4f} ± {gsd:.4f} |"
                )
        lines.append("")
    st_path = out / f"pruning_structured{sfx}.csv"
    if st_path.exists():
        _, st = summarise_sweep(st_path)
        lines += [
            "## Structured pruning (hidden units removed), mean ± sd over seeds",
            "",
            "| dataset | sparsity | strategy | accuracy | accuracy gap | degradation fairness |",
            "|---|---|---|---|---|---|",
        ]
        for (name, strategy, s), rs in sorted(
            st.items(), key=lambda kv: (kv[0][0], kv[0][2], STRATEGIES.index(kv[0][1]))
        ):
            a, asd = mean_sd([float(r["accuracy"]) for r in rs])
            g, gsd = mean_sd([float(r["accuracy_gap"]) for r in rs])
            d, dsd = mean_sd([float(r["degradation_fairness"]) for r in rs])
            lines.append(
                f"| {name} | {s} | {strategy} | {a:.4f} ± {asd:.4f} | "
                f"{g:.4f} ± {gsd:.4f} | {d:.4f} ± {dsd:.4f} |"
            )
        lines.append("")
    if iter_path is not None and iter_path.exists():
        with iter_path.open() as f:
            it = list(csv.DictReader(f))
        lines += [
            "## Iterations to a common quality (validation split)",
            "",
            "Target = (lower final validation accuracy, larger final validation gap) "
            "of the pair; count = cumulative weight updates (iterations) and "
            "forward-backward passes (evaluations) from the start of the fit, "
            "pre-training included, at the first pruned epoch meeting it. "
            "A bilevel iteration makes two passes (weights and scores).",
            "",
        ]
        summary = {}
        for r in it:
            if r["bilevel_iterations"] and r["baseline_iterations"]:
                bi, si = int(r["bilevel_iterations"]), int(r["baseline_iterations"])
                pre = int(r.get("pretrain_iterations") or 0)
                summary.setdefault((r["dataset"], r["baseline"]), []).append(
                    (1 - bi / si, 1 - (bi - pre) / max(si - pre, 1), bi < si)
                )
        lines += [
            "Summary: share of iterations bilevel saves against each two-stage "
            "baseline (positive: bilevel needs fewer), over seeds and sparsities; "
            "'after pre-training' counts only the iterations that follow the "
            f"{cfg['est']['pretrain_epochs']}-epoch dense pre-training (the same "
            "number of updates for every strategy).",
            "",
            "| dataset | baseline | pairs | bilevel faster in | saved (mean, all "
            "iterations) | saved (mean, after pre-training) | saved (median, after "
            "pre-training) |",
            "|---|---|---|---|---|---|---|",
        ]
        for (name, base), v in sorted(summary.items()):
            v = np.array(v, float)
            lines.append(
                f"| {name} | {base} | {len(v)} | {int(v[:, 2].sum())} | "
                f"{100 * v[:, 0].mean():.1f}% | {100 * v[:, 1].mean():.1f}% | "
                f"{100 * np.median(v[:, 1]):.1f}% |"
            )
        lines += [
            "",
            "Per pair:",
            "",
            "| dataset | sparsity | seed | baseline | target acc | target gap | "
            "bilevel it / evals | baseline it / evals | iterations saved |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in it:
            if not r["bilevel_iterations"] or not r["baseline_iterations"]:
                lines.append(
                    f"| {r['dataset']} | {r['sparsity']} | {r['seed']} | "
                    f"{r['baseline']} | target not reached by both | | | | |"
                )
                continue
            bi, si = int(r["bilevel_iterations"]), int(r["baseline_iterations"])
            lines.append(
                f"| {r['dataset']} | {r['sparsity']} | {r['seed']} | {r['baseline']} | "
                f"{float(r['target_accuracy']):.4f} | {float(r['target_gap']):.4f} | "
                f"{bi} / {r['bilevel_evaluations']} | {si} / {r['baseline_evaluations']} | "
                f"{100 * (1 - bi / si):.1f}% |"
            )
        lines.append("")
    if speed:
        lines += [
            "## Prediction speed (predict_proba, 100,000 Adult rows)",
            "",
            "Models timed interleaved in one process, median over the repetitions. "
            "Wall = what the caller waits; CPU = thread CPU time (leaves out waiting "
            "for a core on the loaded machine). Paired q25-q75 = quartiles of the "
            "per-repetition wall-clock ratios dense / model. Forward only = CPU time "
            "of the network on the same chunks, without input validation and "
            "conversion; fixed share = the part of the model's predict_proba CPU "
            "time outside the network. Widths = hidden widths of the prediction "
            "network (structured: kept units padded to a multiple of 8); parameters "
            "= non-zero / stored.",
            "",
            "| hidden | model | repeats | wall ms | CPU ms | speed-up wall | "
            "paired q25-q75 | speed-up CPU | forward-only speed-up | fixed share | "
            "widths | parameters |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in speed:
            if "cpu_seconds" not in r or r["cpu_seconds"] in (None, ""):
                continue  # a CSV from before the CPU-time columns
            lines.append(
                f"| {r['hidden']} | {r['model']} | {r['repeats']} | "
                f"{1e3 * float(r['seconds']):.1f} | {1e3 * float(r['cpu_seconds']):.1f} | "
                f"{float(r['speedup']):.2f}x | {float(r['speedup_q25']):.2f}-"
                f"{float(r['speedup_q75']):.2f} | {float(r['speedup_cpu']):.2f}x | "
                f"{float(r['forward_speedup']):.2f}x | {100 * float(r['fixed_cpu_share']):.0f}% | "
                f"{r['widths']} | {r['params']} / {r['stored_params']} |"
            )
        lines.append("")
    md = out / f"pruning{sfx}.md"
    md.write_text("\n".join(lines))
    return md


def main(argv=None):
    parser = shared.parser(__doc__, out=shared.RESULTS)
    parser.add_argument(
        "--part",
        choices=["all", "sweep", "iterations", "structured", "ablation", "speed"],
        default="all",
    )
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--load-note", default="", help="text about the machine load")
    args = shared.parse(parser, argv)
    cfg = QUICK if args.quick else FULL
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sfx = "_quick" if args.quick else ""
    log_path = out / f"pruning{sfx}.log"

    def log(msg):
        print(msg, flush=True)
        with log_path.open("a") as f:
            f.write(msg + "\n")

    command = args.command
    load_note = args.load_note or f"At the start: {shared.load_note()}."
    if not args.report_only:
        with (out / f"pruning_commands{sfx}.txt").open("a") as f:
            f.write(f"{shared.now()[:16]}  {command}\n")
    lambdas = {}
    lam_path = out / f"pruning_lambda{sfx}.txt"
    speed = None
    iter_path = out / f"pruning_iterations{sfx}.csv"
    if not args.report_only:
        if args.part in ("all", "sweep"):
            _, lambdas = run_sweep(cfg, out, log, args.quick)
        if args.part in ("all", "iterations", "structured"):
            if not lambdas and lam_path.exists():
                lambdas = dict(
                    (k, float(v))
                    for k, v in (ln.split("=") for ln in lam_path.read_text().splitlines())
                )
            for name in cfg["datasets"]:
                if name not in lambdas:
                    lambdas[name] = choose_lambda(name, load(name, quick=args.quick), cfg, log)[0]
        if args.part in ("all", "iterations"):
            iter_path = run_iterations(cfg, out, lambdas, log, args.quick)
        if args.part in ("all", "structured"):
            run_structured(cfg, out, lambdas, log, args.quick)
        if args.part in ("all", "ablation"):
            run_ablation(cfg, out, log, args.quick)
        if args.part in ("all", "speed"):
            speed = run_speed(cfg, log)
            _write_csv(out / f"pruning_speed{sfx}.csv", speed)
    if not lambdas and lam_path.exists():
        lambdas = dict(
            (k, float(v)) for k, v in (ln.split("=") for ln in lam_path.read_text().splitlines())
        )
    if speed is None and (out / f"pruning_speed{sfx}.csv").exists():
        with (out / f"pruning_speed{sfx}.csv").open() as f:
            speed = [
                dict(r, seconds=float(r["seconds"]), speedup=float(r["speedup"]))
                for r in csv.DictReader(f)
            ]
    md = report(out, args.quick, lambdas, speed, iter_path, command, load_note)
    print(f"wrote {md}")


if __name__ == "__main__":
    main()
