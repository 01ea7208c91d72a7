"""Checksums of every estimator's predictions over a broad set of configurations.

Fits each estimator in the configurations its tests exercise (every solver, mode,
fairness option and loss variant; with and without sensitive features; with sample
weights, ``X_val``, early stopping and warm start; classifier and regressor; multi-class
where supported) on small synthetic data, and writes a JSON of sha256 checksums of
``predict`` / ``predict_proba`` and of the fitted attributes that matter (group weights,
masks, ``n_iter_``, the history without its timings, ...). Only the public API is used,
so the script runs unchanged on any version of the package: a refactoring that must not
change behaviour is checked by running it before and after and comparing the files.

Usage::

    python benchmarks/check_predictions.py --out /tmp/after.json
    python benchmarks/check_predictions.py --compare reference.json /tmp/after.json

One torch thread (the results of a float32 matrix product may depend on the thread
count). Takes a few minutes on one core.
"""

import argparse
import hashlib
import json
import sys
import time
import warnings

import numpy as np
import torch

torch.set_num_threads(1)


def digest(value):
    """sha256 of an array (dtype, shape and bytes), a number, or a nested structure."""
    h = hashlib.sha256()
    _feed(h, value)
    return h.hexdigest()[:32]


def _feed(h, value):
    if isinstance(value, dict):
        for key in sorted(value, key=str):
            h.update(repr(key).encode())
            _feed(h, value[key])
    elif isinstance(value, list | tuple):
        h.update(f"seq{len(value)}".encode())
        for item in value:
            _feed(h, item)
    elif value is None or isinstance(value, bool | int | float | str):
        h.update(repr(value).encode())
    else:
        arr = np.ascontiguousarray(np.asarray(value))
        if arr.dtype == object:
            h.update(repr(arr.tolist()).encode())
        else:
            h.update(f"{arr.dtype.str}{arr.shape}".encode())
            h.update(arr.tobytes())


def history_without_timings(history):
    return [{k: v for k, v in rec.items() if k != "seconds"} for rec in history]


# ----------------------------------------------------------------------------- data
def datasets():
    from skfairbilevel.datasets import make_biased_classification

    X, y, A = make_biased_classification(240, 5, n_groups=3, random_state=0)
    X2, y2, A2 = make_biased_classification(200, 4, n_groups=2, random_state=1)
    Xm, ym, Am = make_biased_classification(240, 5, n_groups=2, n_classes=3, random_state=2)
    Xv, yv, Av = make_biased_classification(90, 5, n_groups=3, random_state=3)
    rng = np.random.default_rng(4)
    w = rng.integers(0, 3, len(y)).astype(float)
    w[:3] = 1.0
    Ar = rng.integers(0, 2, 200)
    Xr = rng.normal(size=(200, 3)) + Ar[:, None] * 0.5
    yr = Xr @ [1.0, 2.0, 0.5] + Ar + rng.normal(size=200)
    Xt = np.column_stack([X, A])  # the sensitive feature as the last column
    return dict(
        bin3=(X, y, A),
        bin2=(X2, y2, A2),
        multi=(Xm, ym, Am),
        val=(Xv, yv, Av),
        weights=w,
        reg=(Xr, yr, Ar),
        with_column=Xt,
    )


# ----------------------------------------------------------------------------- configs
def configs():
    """(name, estimator class name, params, fit recipe) for every configuration."""
    out = []

    def add(name, cls, params, recipe="plain"):
        out.append((name, cls, params, recipe))

    mlp = dict(hidden_layer_sizes=(8,), max_epochs=6, batch_size=32, lr=1e-2, random_state=0)
    add("mlp_plain", "FairMLPClassifier", mlp)
    for f in ("demographic_parity", "equalized_odds", "equal_opportunity"):
        add(f"mlp_{f}", "FairMLPClassifier", {**mlp, "fairness": f, "fairness_weight": 2.0})
    add("mlp_balanced", "FairMLPClassifier", {**mlp, "class_weight": "balanced"})
    add(
        "mlp_dp_nogroups",
        "FairMLPClassifier",
        {**mlp, "fairness": "demographic_parity"},
        "no_groups",
    )
    add("mlp_dp_weights", "FairMLPClassifier", {**mlp, "fairness": "demographic_parity"}, "weights")
    add(
        "mlp_es",
        "FairMLPClassifier",
        {**mlp, "fairness": "demographic_parity", "early_stopping": True, "n_iter_no_change": 2},
    )
    add(
        "mlp_es_xval",
        "FairMLPClassifier",
        {**mlp, "fairness": "demographic_parity", "early_stopping": True},
        "x_val",
    )
    add(
        "mlp_warm",
        "FairMLPClassifier",
        {**mlp, "fairness": "demographic_parity", "warm_start": True},
        "warm",
    )
    add(
        "mlp_warm_new_width",
        "FairMLPClassifier",
        {**mlp, "warm_start": True, "early_stopping": True},
        "warm_width",
    )
    add("mlp_multi", "FairMLPClassifier", {**mlp, "fairness": "equalized_odds"}, "multi")
    add(
        "mlp_ids_drop",
        "FairMLPClassifier",
        {**mlp, "fairness": "demographic_parity", "sensitive_feature_ids": [5]},
        "column",
    )
    add(
        "mlp_ids_keep",
        "FairMLPClassifier",
        {
            **mlp,
            "fairness": "demographic_parity",
            "sensitive_feature_ids": 5,
            "drop_sensitive": False,
        },
        "column",
    )

    binn = dict(
        hidden_layer_sizes=(8, 8),
        max_epochs=4,
        batch_size=32,
        lr=1e-2,
        fairness_lr=1e-3,
        random_state=0,
    )
    for order in ("leader_first", "follower_first", "simultaneous"):
        for carry in (False, True):
            add(
                f"binn_{order}_{carry}",
                "FairBiNNClassifier",
                {**binn, "update_order": order, "leader_includes_fairness_grad": carry},
            )
    for f in ("equalized_odds", "equal_opportunity"):
        add(f"binn_{f}", "FairBiNNClassifier", {**binn, "fairness": f})
    add("binn_lagrangian", "FairBiNNClassifier", {**binn, "mode": "lagrangian"})
    add("binn_repo_compat", "FairBiNNClassifier", {**binn, "repo_compat_dp_loss": True})
    add("binn_gelu", "FairBiNNClassifier", {**binn, "activation": "gelu"})
    add(
        "binn_tanh_pos0_2layers",
        "FairBiNNClassifier",
        {**binn, "activation": "tanh", "fairness_position": 0, "fairness_layers": 2},
    )
    add(
        "binn_sgd_decay",
        "FairBiNNClassifier",
        {
            **binn,
            "optimizer": "sgd",
            "lr_gamma": 0.5,
            "fairness_lr_gamma": 0.9,
            "lr_step_size": 2,
            "weight_decay": 1e-3,
        },
    )
    add("binn_record", "FairBiNNClassifier", {**binn, "record_validation": True})
    add(
        "binn_es",
        "FairBiNNClassifier",
        {**binn, "early_stopping": True, "n_iter_no_change": 1, "max_epochs": 8},
    )
    add("binn_es_xval", "FairBiNNClassifier", {**binn, "early_stopping": True}, "x_val")
    add("binn_nogroups", "FairBiNNClassifier", binn, "no_groups")
    add("binn_weights", "FairBiNNClassifier", binn, "weights")
    add("binn_multi", "FairBiNNClassifier", binn, "multi")
    add("binn_eta0", "FairBiNNClassifier", {**binn, "eta": 0.0})
    add("binn_warm", "FairBiNNClassifier", {**binn, "warm_start": True}, "warm")
    add("binn_ids", "FairBiNNClassifier", {**binn, "sensitive_feature_ids": [5]}, "column")

    for f in (
        "demographic_parity",
        "equal_opportunity",
        "equalized_odds",
        "group_variance",
        "disparate_mistreatment",
        "individual_fairness",
    ):
        add(f"badr_exact_{f}", "BADRClassifier", {"fairness": f, "random_state": 0})
    for solver in ("gd", "sgd"):
        add(
            f"badr_{solver}",
            "BADRClassifier",
            {"solver": solver, "max_iter": 15, "batch_size": 60, "random_state": 0},
        )
    add(
        "badr_sgd_batchfair_noavg",
        "BADRClassifier",
        {
            "solver": "sgd",
            "max_iter": 12,
            "batch_size": 60,
            "fairness_gradient": "batch",
            "average_lambda": False,
            "clip": None,
            "step_v": 0.05,
            "random_state": 0,
        },
    )
    add(
        "badr_init_uniform", "BADRClassifier", {"init": "uniform", "max_iter": 5, "random_state": 0}
    )
    for gw in ("uniform", "balanced", "pooled", "minimax", "one_group"):
        add(f"badr_fixed_{gw}", "BADRClassifier", {"group_weights": gw, "random_state": 0})
    add(
        "badr_fixed_vector", "BADRClassifier", {"group_weights": [1.0, 2.0, 3.0], "random_state": 0}
    )
    add(
        "badr_mlp_exact",
        "BADRClassifier",
        {
            "model": "mlp",
            "hidden_layer_sizes": (4,),
            "max_iter": 3,
            "lower_max_iter": 20,
            "random_state": 0,
        },
    )
    add(
        "badr_mlp_gd",
        "BADRClassifier",
        {
            "model": "mlp",
            "hidden_layer_sizes": (4,),
            "solver": "gd",
            "max_iter": 10,
            "lower_max_iter": 20,
            "random_state": 0,
        },
    )
    add(
        "badr_multi_eo",
        "BADRClassifier",
        {"fairness": "equalized_odds", "max_iter": 5, "random_state": 0},
        "multi",
    )
    add(
        "badr_multi_sgd",
        "BADRClassifier",
        {"solver": "sgd", "max_iter": 8, "batch_size": 60, "random_state": 0},
        "multi",
    )
    add("badr_nogroups", "BADRClassifier", {"random_state": 0}, "no_groups")
    add("badr_weights", "BADRClassifier", {"max_iter": 10, "random_state": 0}, "weights")
    add(
        "badr_warm",
        "BADRClassifier",
        {"max_iter": 5, "warm_start": True, "random_state": 0},
        "warm",
    )
    add(
        "badr_ids",
        "BADRClassifier",
        {"sensitive_feature_ids": [5], "max_iter": 5, "random_state": 0},
        "column",
    )
    for f in (
        "demographic_parity",
        "group_variance",
        "disparate_mistreatment",
        "individual_fairness",
    ):
        add(
            f"badrreg_exact_{f}",
            "BADRRegressor",
            {"fairness": f, "max_iter": 20, "max_pairs": 2000, "random_state": 0},
            "regression",
        )
    add(
        "badrreg_sgd_if_batch",
        "BADRRegressor",
        {
            "fairness": "individual_fairness",
            "solver": "sgd",
            "max_iter": 10,
            "batch_size": 40,
            "fairness_gradient": "batch",
            "max_pairs": 300,
            "random_state": 0,
        },
        "regression",
    )
    add(
        "badrreg_gd",
        "BADRRegressor",
        {"solver": "gd", "max_iter": 10, "random_state": 0},
        "regression",
    )
    add(
        "badrreg_mlp",
        "BADRRegressor",
        {
            "model": "mlp",
            "hidden_layer_sizes": (4,),
            "max_iter": 3,
            "lower_max_iter": 20,
            "random_state": 0,
        },
        "regression",
    )
    add("badrreg_fixed_balanced", "BADRRegressor", {"group_weights": "balanced"}, "regression")
    add("badrreg_nogroups", "BADRRegressor", {"random_state": 0}, "regression_no_groups")

    fac = dict(
        hidden_layer_sizes=(8,),
        max_epochs=3,
        n_mc=2,
        inner_steps=2,
        outer_steps=2,
        neumann_terms=3,
        lr_prior=0.05,
        random_state=0,
    )
    add("facims_default", "FACIMSClassifier", fac)
    variants = {
        "kl": {"divergence": "kl"},
        "nosam": {"sam": False},
        "sam_label_order": {"sam_rho": "label_order"},
        "sam_float": {"sam_rho": 0.01},
        "sam_array": {"sam_rho": [0.01, 0.02, 0.03]},
        "fixed_v": {"learn_loss_params": False},
        "mc_hyper": {"n_mc_hyper": 2},
        "convex": {"upper_weighting": "convex"},
        "reference": {"upper_weighting": "reference", "stale_graph": True},
        "per_group": {"validation_aggregation": "per_group"},
        "val_batch": {"val_batch_size": 20},
        "groups_per_epoch": {"groups_per_epoch": 2},
        "sigmoid": {"output_sigmoid": True},
        "predict_mean": {"eps_std_predict": 0.0},
        "no_prior_noise": {"prior_noise": 0.0},
        "upper_cw_val": {"upper_class_weight": "validation"},
        "lr_decay": {"prior_lr_decay": 0.5, "group_batch_size": 20},
    }
    for key, extra in variants.items():
        add(f"facims_{key}", "FACIMSClassifier", {**fac, **extra})
    add("facims_xval", "FACIMSClassifier", fac, "x_val")
    add("facims_xval_cw", "FACIMSClassifier", {**fac, "upper_class_weight": "validation"}, "x_val")
    add("facims_multi", "FACIMSClassifier", fac, "multi")
    add("facims_nogroups", "FACIMSClassifier", fac, "no_groups")
    add("facims_weights", "FACIMSClassifier", fac, "weights")
    add("facims_ids", "FACIMSClassifier", {**fac, "sensitive_feature_ids": [5]}, "column")

    prune = dict(
        hidden_layer_sizes=(8, 8),
        pretrain_epochs=3,
        max_epochs=2,
        finetune_epochs=2,
        batch_size=32,
        lr=1e-2,
        random_state=0,
    )
    for p in ("bilevel", "magnitude", "prune_then_fair", "fair_then_prune"):
        add(f"prune_{p}", "FairPruningClassifier", {**prune, "pruning": p})
        add(
            f"prune_{p}_structured",
            "FairPruningClassifier",
            {**prune, "pruning": p, "structured": True, "sparsity": 0.5},
        )
    add(
        "prune_es",
        "FairPruningClassifier",
        {**prune, "early_stopping": True, "n_iter_no_change": 1},
    )
    add("prune_es_xval", "FairPruningClassifier", {**prune, "early_stopping": True}, "x_val")
    add("prune_multi", "FairPruningClassifier", prune, "multi")
    add("prune_nogroups", "FairPruningClassifier", prune, "no_groups")
    add("prune_weights", "FairPruningClassifier", prune, "weights")
    add("prune_warm", "FairPruningClassifier", {**prune, "warm_start": True}, "warm_prune")
    add(
        "prune_warm_rebuild",
        "FairPruningClassifier",
        {**prune, "warm_start": True},
        "warm_prune_rebuild",
    )
    add(
        "prune_warm_es",
        "FairPruningClassifier",
        {**prune, "warm_start": True, "early_stopping": True},
        "warm_prune",
    )
    add("prune_sparsity0", "FairPruningClassifier", {**prune, "sparsity": 0.0})

    rob = dict(batch_size=16, max_epochs=3, lr=5e-2, radius=0.2, random_state=0)
    for s in ("trs", "pgd", "random", "exact", "none"):
        add(f"robust_{s}", "FairRobustClassifier", {**rob, "inner_solver": s}, "binary")
    add("robust_radius0", "FairRobustClassifier", {**rob, "radius": 0.0}, "binary")
    mlp_rob = {**rob, "hidden_layer_sizes": (6,), "max_epochs": 2}
    for steps in (1, 3):
        add(
            f"robust_mlp_trs{steps}",
            "FairRobustClassifier",
            {**mlp_rob, "trs_steps": steps},
            "binary",
        )
    add("robust_mlp_pgd", "FairRobustClassifier", {**mlp_rob, "inner_solver": "pgd"}, "binary")
    add(
        "robust_mlp_random_softplus",
        "FairRobustClassifier",
        {**mlp_rob, "inner_solver": "random", "activation": "softplus"},
        "binary",
    )
    add(
        "robust_es",
        "FairRobustClassifier",
        {**rob, "early_stopping": True, "n_iter_no_change": 1},
        "binary",
    )
    add("robust_es_xval", "FairRobustClassifier", {**rob, "early_stopping": True}, "binary_x_val")
    add("robust_nogroups", "FairRobustClassifier", rob, "binary_no_groups")
    add("robust_weights", "FairRobustClassifier", {**rob, "weight_decay": 1e-3}, "binary_weights")
    add("robust_3groups", "FairRobustClassifier", rob)
    add("robust_warm", "FairRobustClassifier", {**rob, "warm_start": True}, "binary_warm")
    return out


# ----------------------------------------------------------------------------- fitting
def fit(est, recipe, data):
    """Fit ``est`` by ``recipe``; returns ``(est, X, y, A)`` of its training data. A
    ``binary_`` recipe is the same recipe on the two-group binary data."""
    key, warm_rows = ("bin2", 120) if recipe.startswith("binary") else ("bin3", 150)
    recipe = recipe.removeprefix("binary").removeprefix("_") or "plain"
    X, y, A = data[key]
    if recipe == "plain":
        return est.fit(X, y, sensitive_features=A), X, y, A
    if recipe == "no_groups":
        return est.fit(X, y), X, y, None
    if recipe == "weights":
        w = data["weights"][: len(y)]
        return est.fit(X, y, sensitive_features=A, sample_weight=w), X, y, A
    if recipe == "x_val" and key == "bin3":
        Xv, yv, Av = data["val"]
        est.fit(
            X,
            y,
            sensitive_features=A,
            X_val=Xv,
            y_val=yv,
            sensitive_features_val=Av,
            sample_weight_val=np.linspace(0.5, 1.5, len(yv)),
        )
        return est, X, y, A
    if recipe == "x_val":  # the last 50 rows of the binary data validate
        est.fit(
            X[:150],
            y[:150],
            sensitive_features=A[:150],
            X_val=X[150:],
            y_val=y[150:],
            sensitive_features_val=A[150:],
        )
        return est, X, y, A
    if recipe == "warm":
        est.fit(X[:warm_rows], y[:warm_rows], sensitive_features=A[:warm_rows])
        return est.fit(X, y, sensitive_features=A), X, y, A
    if recipe == "warm_width":
        est.fit(X[:, :4], y, sensitive_features=A)
        return est.fit(X, y, sensitive_features=A), X, y, A
    if recipe in ("warm_prune", "warm_prune_rebuild"):
        est.fit(X, y, sensitive_features=A)
        est.set_params(
            **(
                {"pretrain_epochs": 2}
                if recipe == "warm_prune_rebuild"
                else {"sparsity": 0.5, "pruning": "magnitude"}
            )
        )
        return est.fit(X, y, sensitive_features=A), X, y, A
    if recipe == "multi":
        Xm, ym, Am = data["multi"]
        return est.fit(Xm, ym, sensitive_features=Am), Xm, ym, Am
    if recipe == "column":
        Xt = data["with_column"]
        return est.fit(Xt, y), Xt, y, A
    if recipe in ("regression", "regression_no_groups"):
        Xr, yr, Ar = data["reg"]
        if recipe == "regression_no_groups":
            return est.fit(Xr, yr), Xr, yr, None
        return est.fit(Xr, yr, sensitive_features=Ar), Xr, yr, Ar
    raise ValueError(recipe)


ATTRIBUTES = (
    "n_iter_",
    "classes_",
    "groups_",
    "n_groups_",
    "fairness_aware_",
    "group_weights_",
    "fairness_objective_",
    "coef_",
    "intercept_",
    "sam_rho_",
    "class_weight_",
    "upper_class_weight_",
    "loss_scale_",
    "loss_shift_",
    "n_train_rows_",
    "n_validation_rows_",
    "sparsity_",
    "masks_",
    "units_kept_",
    "dense_score_",
    "interrupted_",
    "n_features_in_",
)


def checksums(est, X, y, A):
    out = {}
    X_eval = X[:80]
    out["predict"] = digest(est.predict(X_eval))
    if hasattr(est, "predict_proba"):
        out["predict_proba"] = digest(est.predict_proba(X_eval))
    for attr in ATTRIBUTES:
        if hasattr(est, attr):
            out[attr] = digest(getattr(est, attr))
    out["history"] = digest(history_without_timings(est.history_))
    name = type(est).__name__
    if name.startswith("BADR") and A is not None and est.sensitive_feature_ids is None:
        out["fairness_objective"] = digest(est.fairness_objective(X, y, sensitive_features=A))
    if name == "FairPruningClassifier":
        out["predict_dense"] = digest(est.predict_dense(X_eval))
    if name == "FairRobustClassifier":
        for solver in ("trs", "pgd", "random"):
            out[f"perturb_{solver}"] = digest(
                est.perturb(X_eval, y[:80], inner_solver=solver, random_state=0)
            )
        out["robust_loss"] = digest(est.robust_loss(X_eval, y[:80], random_state=0))
    return out


def run(only=None):
    import skfairbilevel

    data = datasets()
    results = {}
    for name, cls_name, params, recipe in configs():
        if only and not any(name.startswith(o) for o in only):
            continue
        cls = getattr(skfairbilevel, cls_name)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est, X, y, A = fit(cls(**params), recipe, data)
            results[name] = checksums(est, X, y, A)
        print(f"{name:40s} {time.perf_counter() - t0:6.2f} s", file=sys.stderr, flush=True)
    return results


def compare(ref_path, new_path):
    with open(ref_path) as f:
        ref = json.load(f)["checksums"]
    with open(new_path) as f:
        new = json.load(f)["checksums"]
    lines, n_same, n_diff = [], 0, 0
    for name in sorted(set(ref) | set(new)):
        if name not in ref or name not in new:
            lines.append(f"{name}: only in {'new' if name in new else 'reference'}")
            n_diff += 1
            continue
        keys = sorted(set(ref[name]) | set(new[name]))
        bad = [k for k in keys if ref[name].get(k) != new[name].get(k)]
        if bad:
            n_diff += 1
            lines.append(f"{name}: differs in {', '.join(bad)}")
        else:
            n_same += 1
    lines.append(f"{n_same} configurations identical, {n_diff} different")
    return n_diff == 0, "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the checksums to this JSON file")
    parser.add_argument(
        "--only", nargs="*", help="run only the configurations whose names start with these"
    )
    parser.add_argument(
        "--compare",
        nargs=2,
        metavar=("REFERENCE", "NEW"),
        help="compare two JSON files; exit status 1 when they differ",
    )
    args = parser.parse_args(argv)
    if args.compare:
        same, report = compare(*args.compare)
        print(report)
        return 0 if same else 1
    t0 = time.perf_counter()
    results = run(args.only)
    payload = {
        "command": " ".join(
            ["python", "benchmarks/check_predictions.py"]
            + (argv if argv is not None else sys.argv[1:])
        ),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "seconds": round(time.perf_counter() - t0, 1),
        "checksums": results,
    }
    text = json.dumps(payload, indent=1, sort_keys=True)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
