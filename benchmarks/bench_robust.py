"""FairRobustClassifier (Fast & Fair): inner-solver speed and the fairness of robust
training over the radius grid.

Three parts (``--part``):

``correctness``
    The general trust-region solver on the affine model against the closed form (radii
    0.05 to 1.0, random data, both labels): ``nn.trust_region.trust_region_step`` on
    the ``torch.func`` input derivatives (``nn.perturbation.loss_input_derivatives``,
    one eigen-decomposition per sample) and ``nn.trust_region.trust_region_step_eig``
    in the eigenbasis the affine model's Hessians share (:func:`shared_eigenbasis_trs`,
    one per batch); and, on a small tanh / softplus MLP, the share of samples whose TRS
    loss is at least the PGD loss.
``speed``
    Mean epoch time of PGD / TRS (the paper's speed-up), on the paper's two settings:
    Unfair2D (the reference example: 200 training rows of ``make_unfair_2d(250)``,
    batch 5) at radii 0.10, 0.11, ..., 0.20 and Adult (the first 10,000 rows of the
    official training file, the 5 continuous features z-scored, batch 100) at radii
    0.10, 0.12, ..., 0.20 (10 epochs per Unfair2D cell, 3 per Adult cell). Affine
    model, Adam lr 1e-2; the outer step is the estimator's closed-form one for the
    affine model (gradient without autograd, flat Adam), the same for every inner
    solver. Two inner solvers per radius, fitted one after the other in the same
    process: "trs" (the estimator's default: the subproblem's closed-form solution for
    the affine model) and "pgd" (reference settings). Epoch times are the engine's
    ``history_[i]["seconds"]`` (``time.perf_counter`` around each epoch; no fairness
    logging). Then, on the weights of the TRS fit, the time per batch of each inner
    solver alone (``nn.perturbation.perturbation`` for "trs" and "pgd", and
    "trs-general": the general solver in the shared eigenbasis,
    :func:`shared_eigenbasis_trs`), and the mean loss at the TRS and at the PGD
    perturbation of the training rows (PGD on batches of the training batch size): the
    inner objective each solver reaches on the same problem. The estimator has no
    option that trains the affine model with the general solver, so the
    "TRS-general" epoch-time columns are left empty.
``fairness``
    Test accuracy and the signed gaps (group 1 minus group 0; Unfair2D s = 1 minus
    s = 0, Adult Male minus Female) of none / random / pgd / trs on Unfair2D (fresh test
    draw of 50 per class) and Adult (official test file), over the radius grids above,
    5 seeds, 10 epochs, the same batch sizes.

Usage::

    python benchmarks/bench_robust.py --quick            # about a minute
    python benchmarks/bench_robust.py --part speed       # ~15 min on a loaded 2-core box
    python benchmarks/bench_robust.py --part fairness    # ~1 h (PGD on Adult dominates)
    python benchmarks/bench_robust.py --report-only      # tables and plots from the CSVs

Torch runs on one thread (``torch.set_num_threads(1)``): on a shared machine two
threads oversubscribe the cores and make every small op orders of magnitude slower.
Rows are appended to ``robust_{speed,fairness}.csv`` as they finish, so an interrupted
run resumes; ``--fresh`` starts over. Results go to ``benchmarks/results/robust_*``
(``robust_quick_*`` with ``--quick``; another folder with ``--out``).
"""

import csv
import platform
import warnings
from pathlib import Path

import _common as shared
import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call

from skfairbilevel import FairRobustClassifier
from skfairbilevel.datasets import load_adult, make_unfair_2d
from skfairbilevel.exceptions import FairnessWarning
from skfairbilevel.metrics import independence_gap, predictive_parity_gap, separation_gap
from skfairbilevel.nn.perturbation import loss_input_derivatives, perturbation
from skfairbilevel.nn.trust_region import trust_region_step, trust_region_step_eig

ADULT_FEATURES = ["age", "education-num", "capital-gain", "capital-loss", "hours-per-week"]
GAPS = ("independence", "separation_y0", "separation_y1", "sufficiency_yhat1", "sufficiency_yhat0")
SOLVERS = ("none", "random", "pgd", "trs")
PREFIX = "robust"  # file prefix of the results; "robust_quick" with --quick

FULL = dict(
    unfair2d=dict(
        radii=np.round(np.arange(0.10, 0.2001, 0.01), 2), batch_size=5, speed_epochs=10, n_train=200
    ),
    adult=dict(
        radii=np.round(np.arange(0.10, 0.2001, 0.02), 2),
        batch_size=100,
        speed_epochs=3,
        n_train=10_000,
        n_objective=2_000,
    ),
    seeds=(0, 1, 2, 3, 4),
    epochs=10,
    correct_n=1000,
    mlp_n=256,
    mlp_epochs=20,
    mlp_radii=(0.1, 0.3, 0.6, 1.0),
)
QUICK = dict(
    unfair2d=dict(radii=np.array([0.10, 0.20]), batch_size=5, speed_epochs=2, n_train=200),
    adult=dict(
        radii=np.array([0.10, 0.20]), batch_size=100, speed_epochs=1, n_train=1_000, n_objective=300
    ),
    seeds=(0,),
    epochs=2,
    correct_n=200,
    mlp_n=32,
    mlp_epochs=3,
    mlp_radii=(0.3,),
)


# ---------------------------------------------------------------------- data
def unfair2d_data(seed, n_train=200):
    """The reference example: 500 points, the first 200 train; a fresh 100-point test."""
    X, y, s = make_unfair_2d(250, random_state=seed)
    Xt, yt, st = make_unfair_2d(50, random_state=10_000 + seed)
    return (X[:n_train], y[:n_train], s[:n_train]), (Xt, yt, st)


def adult_data(n_train=10_000):
    """5 continuous features, z-scored with the training mean and std; y = 1 for >50K;
    s = sex (Female < Male, so the signed gaps are Male minus Female)."""
    train, test = load_adult(split="train"), load_adult(split="test")
    X = train.data[ADULT_FEATURES].to_numpy(np.float64)[:n_train]
    mean, std = X.mean(0), X.std(0)
    out = []
    for bunch, rows in ((train, slice(0, n_train)), (test, slice(None))):
        Xb = (bunch.data[ADULT_FEATURES].to_numpy(np.float64)[rows] - mean) / std
        out.append(
            (Xb, bunch.target.to_numpy()[rows], bunch.data["sex"].astype(str).to_numpy()[rows])
        )
    return out[0], out[1]


# ---------------------------------------------------------------------- helpers
def append_row(path, row):
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def read_rows(path):
    if not path.exists():
        return []
    with path.open() as f:
        return list(csv.DictReader(f))


def signed_gaps(y, pred, s):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FairnessWarning)
        return {
            "independence": independence_gap(y, pred, sensitive_features=s),
            "separation_y0": separation_gap(y, pred, sensitive_features=s, k=0),
            "separation_y1": separation_gap(y, pred, sensitive_features=s, k=1),
            "sufficiency_yhat1": predictive_parity_gap(y, pred, sensitive_features=s, k=1),
            "sufficiency_yhat0": predictive_parity_gap(y, pred, sensitive_features=s, k=0),
        }


def make_clf(solver, radius, batch_size, epochs, seed):
    return FairRobustClassifier(
        radius=float(radius),
        inner_solver=solver,
        batch_size=batch_size,
        max_epochs=epochs,
        lr=1e-2,
        random_state=seed,
    )


def shared_eigenbasis_trs(module, x, y, radius):
    """The general trust-region solver on the affine model z = w'x + b.

    The Hessians of the loss in the input, ``s (1 - s) w w'``, share their eigenvectors:
    ``w / ||w||`` (eigenvalue ``s (1 - s) ||w||^2``) and a basis of its orthogonal
    complement (eigenvalue 0). So one d x d eigen-decomposition per batch gives every
    sample's subproblem in its eigenbasis, solved by
    :func:`~skfairbilevel.nn.trust_region.trust_region_step_eig` (float64). Returns the
    perturbations (in the dtype of ``x``) and the multiplier iterations.
    """
    lin = module[-1]
    w = lin.weight[0].detach().double()
    z = x.double() @ w + lin.bias.detach().double()[0]
    s = torch.sigmoid(z)
    _, U = torch.linalg.eigh(-torch.outer(w, w))  # first column: w / ||w||
    lam = torch.zeros(x.shape, dtype=torch.float64, device=x.device)
    lam[:, 0] = -(s * (1.0 - s)) * (w @ w)  # Hessian of -loss
    gh = (y.double() - s)[:, None] * (w @ U)[None, :]  # U'(gradient of -loss)
    p_hat, n_iter = trust_region_step_eig(gh, lam, float(radius))
    return (p_hat @ U.T).to(x.dtype), n_iter


def loss_at(module, x, y, delta):
    """Per-sample logistic loss at ``x + delta``, in float64 (as ``robust_loss``)."""
    params = {k: v.detach().double() for k, v in module.named_parameters()}
    with torch.no_grad():
        z = functional_call(module, params, (x.double() + delta.double(),))[:, 0]
        loss = F.binary_cross_entropy_with_logits(z, y.double(), reduction="none")
    return loss.numpy()


# ---------------------------------------------------------------------- correctness
def run_correctness(cfg, out):
    """Affine: the general trust-region solver (per-sample eigen-decompositions of the
    torch.func Hessians, and the shared eigenbasis) vs the closed form, radii 0.05..1.0,
    both labels. MLP: fraction of samples whose TRS loss is >= the PGD loss (relative
    1e-6 for the float32 inputs), for trs_steps=1 (the paper's single subproblem) and 3."""
    path = out / f"{PREFIX}_correctness.csv"
    path.unlink(missing_ok=True)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(cfg["correct_n"], 5))
    y = (X @ rng.normal(size=5) + rng.normal(size=len(X)) > 0).astype(int)
    affine = FairRobustClassifier(radius=0.1, batch_size=50, max_epochs=3, random_state=0).fit(X, y)
    lin = affine.module_[-1]
    w = lin.weight.detach().double().numpy()[0]
    z = X.astype(np.float32).astype(np.float64) @ w + float(lin.bias.detach()[0])
    sgn = 2.0 * y - 1.0
    x = torch.as_tensor(X, dtype=torch.float32)
    yt = torch.as_tensor(y)
    _, g, H = loss_input_derivatives(affine.module_, x, yt, affine=True, autodiff=True)
    for r in (0.05, 0.1, 0.25, 0.5, 1.0):
        d_star = -r * sgn[:, None] * w / np.linalg.norm(w)
        l_star = np.logaddexp(0.0, -sgn * z + r * np.linalg.norm(w))
        p_eig, _ = trust_region_step(-g, -H, r)
        p_shared, _ = shared_eigenbasis_trs(affine.module_, x, yt, r)
        l_shared = loss_at(affine.module_, x, yt, p_shared)
        append_row(
            path,
            dict(
                model="affine",
                activation="",
                radius=r,
                rows=len(X),
                max_delta_err_per_sample_eigh=float(np.abs(p_eig.numpy() - d_star).max()),
                max_delta_err_shared_eigenbasis=float(
                    np.abs(p_shared.double().numpy() - d_star).max()
                ),
                max_loss_err=float(np.abs(l_shared - l_star).max()),
                frac_ge_pgd_steps1="",
                frac_ge_pgd_steps3="",
                mean_trs1="",
                mean_trs3="",
                mean_pgd="",
            ),
        )
    Xm, ym = X[: cfg["mlp_n"], :4], y[: cfg["mlp_n"]]
    for activation in ("tanh", "softplus"):
        mlp = FairRobustClassifier(
            radius=0.3,
            hidden_layer_sizes=(16,),
            activation=activation,
            batch_size=32,
            max_epochs=cfg["mlp_epochs"],
            random_state=0,
        ).fit(Xm, ym)
        for r in cfg["mlp_radii"]:
            mlp.set_params(radius=r)
            lp = mlp.robust_loss(Xm, ym, inner_solver="pgd", per_sample=True)
            l1 = mlp.set_params(trs_steps=1).robust_loss(Xm, ym, per_sample=True)
            l3 = mlp.set_params(trs_steps=3).robust_loss(Xm, ym, per_sample=True)
            append_row(
                path,
                dict(
                    model="mlp (16,)",
                    activation=activation,
                    radius=r,
                    rows=len(Xm),
                    max_delta_err_per_sample_eigh="",
                    max_delta_err_shared_eigenbasis="",
                    max_loss_err="",
                    frac_ge_pgd_steps1=float(np.mean(l1 >= lp * (1 - 1e-6))),
                    frac_ge_pgd_steps3=float(np.mean(l3 >= lp * (1 - 1e-6))),
                    mean_trs1=float(l1.mean()),
                    mean_trs3=float(l3.mean()),
                    mean_pgd=float(lp.mean()),
                ),
            )
            print(
                f"correctness mlp {activation} r={r}: TRS>=PGD {np.mean(l1 >= lp * (1 - 1e-6)):.3f}"
                f" (steps=1), {np.mean(l3 >= lp * (1 - 1e-6)):.3f} (steps=3)",
                flush=True,
            )


# ---------------------------------------------------------------------- speed
def inner_seconds(clf, X, y, batch_size, reps=3):
    """Milliseconds per batch spent in each inner solver alone (the perturbations of
    consecutive batches of ``X`` for the weights of the affine model ``clf``), median
    of ``reps`` interleaved repetitions: "trs" and "pgd" as the estimator calls them
    (``nn.perturbation.perturbation``), "trs-general" :func:`shared_eigenbasis_trs`."""
    x = torch.as_tensor(X, dtype=torch.float32)
    yt = torch.as_tensor(np.searchsorted(clf.classes_, y))
    gen = torch.Generator().manual_seed(0)
    module, r = clf.module_, clf.radius
    solvers = {
        "trs": lambda xb, yb: perturbation("trs", module, xb, yb, r, affine=True, generator=gen),
        "trs-general": lambda xb, yb: shared_eigenbasis_trs(module, xb, yb, r),
        "pgd": lambda xb, yb: perturbation("pgd", module, xb, yb, r, affine=True, generator=gen),
    }
    starts = range(0, len(x), batch_size)
    times = {k: [] for k in solvers}
    for _ in range(reps):
        for name, solve in solvers.items():
            with shared.Clock() as clock, torch.no_grad():
                for i in starts:
                    solve(x[i : i + batch_size], yt[i : i + batch_size])
            times[name].append(1e3 * clock.wall / len(starts))
    return {k: float(np.median(v)) for k, v in times.items()}


def run_speed(cfg, out):
    path = out / f"{PREFIX}_speed.csv"
    done = {(r["dataset"], r["radius"]) for r in read_rows(path)}
    data = {
        "unfair2d": unfair2d_data(42, cfg["unfair2d"]["n_train"])[0],
        "adult": adult_data(cfg["adult"]["n_train"])[0],
    }
    # warm-up (first-call overheads) on a small problem
    Xw, yw, _ = data["unfair2d"]
    for solver in ("trs", "pgd"):
        make_clf(solver, 0.1, 50, 1, 0).fit(Xw, yw)
    for name in ("unfair2d", "adult"):
        c = cfg[name]
        X, y, _ = data[name]
        for i, r in enumerate(c["radii"]):
            if (name, f"{r:.2f}") in done:
                continue
            order = ("trs", "pgd") if i % 2 == 0 else ("pgd", "trs")
            fits, secs, iters = {}, {}, {}
            load_before = shared.load_note()
            for solver in order:
                clf = make_clf(solver, r, c["batch_size"], c["speed_epochs"], 0).fit(X, y)
                fits[solver] = clf
                secs[solver] = float(np.mean([h["seconds"] for h in clf.history_]))
                iters[solver] = float(np.mean([h["inner_iter"] for h in clf.history_]))
            model = fits["trs"]
            n_obj = c.get("n_objective", len(X))
            lt = model.robust_loss(X[:n_obj], y[:n_obj], inner_solver="trs", per_sample=True)
            lp = model.robust_loss(X[:n_obj], y[:n_obj], inner_solver="pgd", per_sample=True)
            inner = inner_seconds(model, X[:n_obj], y[:n_obj], c["batch_size"])
            row = dict(
                dataset=name,
                radius=f"{r:.2f}",
                batch_size=c["batch_size"],
                n_train=len(X),
                epochs=c["speed_epochs"],
                trs_s=secs["trs"],
                trs_general_s="",  # no longer an option of the estimator (see the docstring)
                pgd_s=secs["pgd"],
                ratio=secs["pgd"] / secs["trs"],
                ratio_general="",
                pgd_iter=iters["pgd"],
                trs_general_iter="",
                inner_trs_ms=inner["trs"],
                inner_trs_general_ms=inner["trs-general"],
                inner_pgd_ms=inner["pgd"],
                inner_ratio=inner["pgd"] / inner["trs"],
                inner_ratio_general=inner["pgd"] / inner["trs-general"],
                obj_rows=n_obj,
                obj_trs=float(lt.mean()),
                obj_pgd=float(lp.mean()),
                frac_trs_ge_pgd=float(np.mean(lt >= lp * (1 - 1e-6))),
                load=f"{load_before} -> {shared.load_note()}",
            )
            append_row(path, row)
            print(
                f"speed {name} r={r:.2f}: pgd/trs {row['ratio']:.1f}x, inner solver alone "
                f"pgd/trs {row['inner_ratio']:.0f}x, pgd/trs-general "
                f"{row['inner_ratio_general']:.1f}x, objective trs {row['obj_trs']:.5f} vs "
                f"pgd {row['obj_pgd']:.5f}",
                flush=True,
            )


# ---------------------------------------------------------------------- fairness
def run_fairness(cfg, out):
    path = out / f"{PREFIX}_fairness.csv"
    done = {(r["dataset"], r["solver"], r["radius"], r["seed"]) for r in read_rows(path)}
    adult = adult_data(cfg["adult"]["n_train"])
    for name in ("unfair2d", "adult"):
        c = cfg[name]
        # the cheap solvers for every seed first, then PGD (hours on Adult)
        jobs = [(seed, "none", 0.0) for seed in cfg["seeds"]]
        jobs += [
            (seed, solver, r)
            for seed in cfg["seeds"]
            for r in c["radii"]
            for solver in ("random", "trs")
        ]
        jobs += [(seed, "pgd", r) for seed in cfg["seeds"] for r in c["radii"]]
        for seed, solver, r in jobs:
            if (name, solver, f"{r:.2f}", str(seed)) in done:
                continue
            train, test = unfair2d_data(seed, c["n_train"]) if name == "unfair2d" else adult
            clf = make_clf(solver, r, c["batch_size"], cfg["epochs"], seed)
            with shared.Clock() as clock:
                clf.fit(train[0], train[1])
            fit_s = clock.wall
            pred = clf.predict(test[0])
            row = dict(
                dataset=name,
                solver=solver,
                radius=f"{r:.2f}",
                seed=seed,
                accuracy=float(np.mean(pred == test[1])),
                fit_s=fit_s,
                **signed_gaps(test[1], pred, test[2]),
            )
            append_row(path, row)
            print(
                f"fairness {name} {solver} r={r:.2f} seed={seed}: acc "
                f"{row['accuracy']:.3f} ind {row['independence']:+.3f} ({fit_s:.1f}s)",
                flush=True,
            )


# ---------------------------------------------------------------------- report
def _cell(value, spec, suffix=""):
    """A table cell of a CSV value; "n/a" for a column that was not measured."""
    return "n/a" if value == "" else f"{float(value):{spec}}{suffix}"


def _ms(values):
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return "nan"
    return f"{v.mean():+.3f} ± {v.std():.3f}" if v.size > 1 else f"{v.mean():+.3f}"


def report(out):
    lines = []
    corr = read_rows(out / f"{PREFIX}_correctness.csv")
    if corr:
        lines += [
            "## Correctness",
            "",
            "Affine model: trs vs the closed form "
            "(perturbation max abs error; loss max abs error).",
            "",
            "| radius | rows | per-sample eigh solver | shared-eigenbasis solver | loss |",
            "|---|---|---|---|---|",
        ]
        for r in corr:
            if r["model"] == "affine":
                lines.append(
                    f"| {r['radius']} | {r['rows']} | "
                    f"{float(r['max_delta_err_per_sample_eigh']):.1e} | "
                    f"{float(r['max_delta_err_shared_eigenbasis']):.1e} | "
                    f"{float(r['max_loss_err']):.1e} |"
                )
        lines += [
            "",
            "MLP: share of samples with TRS loss >= PGD loss (relative 1e-6), mean robust losses.",
            "",
            "| activation | radius | rows | trs_steps=1 | trs_steps=3 | mean TRS (1) | "
            "mean TRS (3) | mean PGD |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in corr:
            if r["model"] != "affine":
                lines.append(
                    f"| {r['activation']} | {r['radius']} | {r['rows']} | "
                    f"{100 * float(r['frac_ge_pgd_steps1']):.1f}% | "
                    f"{100 * float(r['frac_ge_pgd_steps3']):.1f}% | "
                    f"{float(r['mean_trs1']):.6f} | {float(r['mean_trs3']):.6f} | "
                    f"{float(r['mean_pgd']):.6f} |"
                )
        lines.append("")
    speed = read_rows(out / f"{PREFIX}_speed.csv")
    if speed:
        lines += [
            "## Speed: mean epoch time, PGD / TRS",
            "",
            "| dataset | radius | TRS s/epoch | TRS-general s/epoch | PGD s/epoch | "
            "PGD/TRS | PGD/TRS-general | PGD iters/batch | inner solver alone: "
            "TRS / TRS-general / PGD ms per batch | inner-only PGD/TRS | "
            "inner objective TRS | inner objective PGD | rows TRS >= PGD | "
            "load (1/5/15 min) |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in speed:
            lines.append(
                f"| {r['dataset']} | {r['radius']} | {float(r['trs_s']):.4f} | "
                f"{_cell(r['trs_general_s'], '.4f')} | {float(r['pgd_s']):.3f} | "
                f"{float(r['ratio']):.1f}x | {_cell(r['ratio_general'], '.1f', 'x')} | "
                f"{float(r['pgd_iter']):.0f} | {float(r['inner_trs_ms']):.3f} / "
                f"{float(r['inner_trs_general_ms']):.3f} / {float(r['inner_pgd_ms']):.1f} | "
                f"{float(r['inner_ratio']):.0f}x | {float(r['obj_trs']):.6f} | "
                f"{float(r['obj_pgd']):.6f} | {100 * float(r['frac_trs_ge_pgd']):.1f}% | "
                f"{r['load']} |"
            )
        for name in sorted({r["dataset"] for r in speed}):
            ratios = [float(r["ratio"]) for r in speed if r["dataset"] == name]
            gen = [
                float(r["ratio_general"])
                for r in speed
                if r["dataset"] == name and r["ratio_general"]
            ]
            lines.append(
                f"\n{name}: PGD/TRS min {min(ratios):.1f}x, max {max(ratios):.1f}x"
                + (f"; PGD/TRS-general min {min(gen):.1f}x, max {max(gen):.1f}x." if gen else ".")
            )
        lines.append("")
        plot_speed(speed, out)
    fair = read_rows(out / f"{PREFIX}_fairness.csv")
    if fair:
        lines += [
            "## Fairness on the test set (mean ± std over seeds)",
            "",
            "Signed gaps, group 1 minus group 0 (Unfair2D: s=1 - s=0; Adult: Male - Female).",
            "",
            "| dataset | solver | radius | seeds | accuracy | independence | "
            "separation y=0 (FPR) | separation y=1 (TPR) | sufficiency yhat=1 (PPV) "
            "| sufficiency yhat=0 (FOR) | mean abs gap |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        groups = {}
        for r in fair:
            groups.setdefault((r["dataset"], r["solver"], r["radius"]), []).append(r)
        order = {s: i for i, s in enumerate(SOLVERS)}
        for (name, solver, radius), rows in sorted(
            groups.items(), key=lambda kv: (kv[0][0] != "unfair2d", order[kv[0][1]], kv[0][2])
        ):
            absmean = [np.nanmean([abs(float(r[g])) for g in GAPS]) for r in rows]
            acc = [float(r["accuracy"]) for r in rows]
            lines.append(
                f"| {name} | {solver} | {radius} | {len(rows)} | "
                f"{np.mean(acc):.3f} ± {np.std(acc):.3f} | "
                + " | ".join(_ms([float(r[g]) for r in rows]) for g in GAPS)
                + f" | {np.mean(absmean):.3f} |"
            )
        lines.append("")
        plot_fairness(fair, out)
    text = "\n".join(lines)
    (out / f"{PREFIX}_tables.md").write_text(text + "\n")
    print(text)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_speed(rows, out):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for name, marker in (("unfair2d", "o"), ("adult", "s")):
        sub = [r for r in rows if r["dataset"] == name]
        if not sub:
            continue
        rad = [float(r["radius"]) for r in sub]
        ax.plot(rad, [float(r["ratio"]) for r in sub], marker=marker, label=f"{name}: PGD/TRS")
        general = [r for r in sub if r["ratio_general"]]  # rows with a TRS-general epoch time
        if general:
            ax.plot(
                [float(r["radius"]) for r in general],
                [float(r["ratio_general"]) for r in general],
                marker=marker,
                ls="--",
                label=f"{name}: PGD/TRS-general",
            )
    ax.axhline(10, color="grey", lw=0.8, ls=":", label="target 10x")
    ax.set_yscale("log")
    ax.set_xlabel("radius")
    ax.set_ylabel("epoch time ratio")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / f"{PREFIX}_speed.png", dpi=120)
    plt.close(fig)


def plot_fairness(rows, out):
    warnings.simplefilter("ignore", RuntimeWarning)  # all-nan cells (undefined gaps)
    plt = _plt()
    names = [n for n in ("unfair2d", "adult") if any(r["dataset"] == n for r in rows)]
    metrics = ("accuracy", "independence", "separation_y0", "separation_y1", "sufficiency_yhat1")
    fig, axes = plt.subplots(
        len(names), len(metrics), figsize=(3.2 * len(metrics), 2.8 * len(names)), squeeze=False
    )
    for i, name in enumerate(names):
        sub = [r for r in rows if r["dataset"] == name]
        for j, metric in enumerate(metrics):
            ax = axes[i, j]
            base = [float(r[metric]) for r in sub if r["solver"] == "none"]
            if base:
                m = np.nanmean(base)
                ax.axhline(m, color="k", lw=1, label="none (r=0)")
            # small horizontal offsets: pgd and trs coincide on the affine model
            for solver, color, dx, marker in (
                ("random", "tab:green", -0.0015, "."),
                ("trs", "tab:blue", 0.0, "."),
                ("pgd", "tab:orange", 0.0015, "x"),
            ):
                radii = sorted({r["radius"] for r in sub if r["solver"] == solver})
                if not radii:
                    continue
                vals = [
                    [float(r[metric]) for r in sub if r["solver"] == solver and r["radius"] == rad]
                    for rad in radii
                ]
                ax.errorbar(
                    [float(x) + dx for x in radii],
                    [np.nanmean(v) for v in vals],
                    yerr=[np.nanstd(v) for v in vals],
                    color=color,
                    marker=marker,
                    capsize=2,
                    label=solver,
                    alpha=0.85,
                    ls="--" if solver == "pgd" else "-",
                )
            ax.set_title(f"{name}: {metric}", fontsize=9)
            ax.set_xlabel("radius", fontsize=8)
            ax.tick_params(labelsize=7)
            if i == 0 and j == 0:
                ax.legend(fontsize=7)
    fig.suptitle(
        "Fast & Fair: test accuracy and signed gaps (group 1 - group 0), mean ± std over seeds",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(out / f"{PREFIX}_fairness.png", dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = shared.parser(__doc__, out=shared.RESULTS, quick="tiny settings (~1 min)")
    parser.add_argument(
        "--part", choices=("correctness", "speed", "fairness", "all"), default="all"
    )
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--fresh", action="store_true", help="discard existing CSV rows")
    args = shared.parse(parser, argv)
    global PREFIX
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = QUICK if args.quick else FULL
    PREFIX = "robust_quick" if args.quick else "robust"
    if (args.fresh or args.quick) and not args.report_only:
        for part in ("speed", "fairness"):
            if args.part in (part, "all"):
                (out / f"{PREFIX}_{part}.csv").unlink(missing_ok=True)
    print(
        f"# bench_robust {shared.now()} on {platform.node()} (torch {torch.__version__}, "
        f"{args.threads} thread(s)), {shared.load_note()}",
        flush=True,
    )
    if not args.report_only:
        if args.part in ("correctness", "all"):
            run_correctness(cfg, out)
        if args.part in ("speed", "all"):
            run_speed(cfg, out)
        if args.part in ("fairness", "all"):
            run_fairness(cfg, out)
    report(out)


if __name__ == "__main__":
    main()
