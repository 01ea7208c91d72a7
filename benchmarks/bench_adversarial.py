"""Choosing the setting of fairlearn's adversarial baseline on validation data only.

``python -m skfairbilevel compare`` runs fairlearn's ``AdversarialFairnessClassifier``
with one fixed setting. This script is how that setting was chosen: the official Adult
training split is divided 80/20 (stratified by label x sex, ``random_state=0``) into a
fitting part and a validation part; every (alpha, epochs) pair of the grid is fitted on
the fitting part and scored on the validation part. The rule:

    among the settings whose validation accuracy is within ``--slack`` (default 0.02) of
    an unconstrained LogisticRegression's validation accuracy, and whose refit on the
    whole training split (what the comparison fits) keeps its training accuracy within
    the same slack of LogisticRegression's training accuracy, take the one with the
    smallest validation demographic parity difference.

The second condition is there because adversarial training on Adult is unstable: a
setting that works on 80 % of the rows can collapse (accuracy about 0.4) on all of them,
where each epoch has 25 % more steps. It uses training data only. The test split is
never used to choose; its numbers are printed for every setting so the record is
complete. fairlearn 0.15 seeds torch with a
float in [0, 1) that torch truncates to 0, so ``random_state`` does not change its
initialisation; we still fork the global RNGs so the rest of the process is unaffected.

Usage::

    python benchmarks/bench_adversarial.py                 # full grid (40 fits), ~3 min idle
    python benchmarks/bench_adversarial.py --quick         # 3 settings on 4000 rows
    python benchmarks/bench_adversarial.py --out benchmarks/results/adversarial.json
"""

import argparse
import itertools
import json
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from skfairbilevel import compare
from skfairbilevel.datasets import make_preprocessor
from skfairbilevel.metrics import demographic_parity_difference

ALPHAS = (0.1, 0.3, 1.0, 3.0, 10.0)
EPOCHS = (1, 3, 5, 10)


def _adversarial(alpha, epochs, seed):
    from fairlearn.adversarial import AdversarialFairnessClassifier

    return AdversarialFairnessClassifier(
        backend="torch", predictor_model=[50, "leaky_relu"],
        adversary_model=[3, "leaky_relu"], constraints="demographic_parity", alpha=alpha,
        learning_rate=1e-3, batch_size=256, epochs=epochs, shuffle=True, random_state=seed,
    )


def _scores(model, X, y, A):
    pred = np.asarray(model.predict(X))
    return float(np.mean(pred == np.asarray(y))), float(
        demographic_parity_difference(y, pred, sensitive_features=A))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--slack", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    data = compare.load_data("adult", quick=args.quick)
    sens = data["sensitive"]
    X, y, A = data["X_train"], data["y_train"], data["A_train"]
    strata = compare._strata(y, X[sens])
    i_fit, i_val = train_test_split(np.arange(len(y)), test_size=0.2, random_state=0,
                                    stratify=strata)
    Xf, yf, Af = X.iloc[i_fit], y.iloc[i_fit], A.iloc[i_fit]
    Xv, yv, Av = X.iloc[i_val], y.iloc[i_val], A.iloc[i_val]
    grid = [(0.3, 1), (1.0, 1), (0.3, 5)] if args.quick else list(
        itertools.product(ALPHAS, EPOCHS))

    with compare._threads(1):
        ref = Pipeline([("pre", make_preprocessor(Xf, sensitive=sens, keep_sensitive=False)),
                        ("lr", LogisticRegression(max_iter=1000))]).fit(Xf, yf)
        ref_acc, ref_dp = _scores(ref, Xv, yv, Av)
        ref_full = Pipeline([
            ("pre", make_preprocessor(X, sensitive=sens, keep_sensitive=False)),
            ("lr", LogisticRegression(max_iter=1000))]).fit(X, y)
        ref_train_acc, _ = _scores(ref_full, X, y, A)
        print(f"LogisticRegression: validation accuracy {ref_acc:.3f}, DP {ref_dp:.3f}; "
              f"refit training accuracy {ref_train_acc:.3f}")
        rows = []
        for alpha, epochs in grid:
            pipe = Pipeline([
                ("pre", make_preprocessor(Xf, sensitive=sens, keep_sensitive=False)),
                ("adv", _adversarial(alpha, epochs, args.seed))])
            with compare._isolated():
                start = time.perf_counter()
                pipe.fit(Xf, yf, adv__sensitive_features=Af)
                seconds = time.perf_counter() - start
                acc, dp = _scores(pipe, Xv, yv, Av)
                full = Pipeline([
                    ("pre", make_preprocessor(X, sensitive=sens, keep_sensitive=False)),
                    ("adv", _adversarial(alpha, epochs, args.seed))])
                full.fit(X, y, adv__sensitive_features=A)
                train_acc, _ = _scores(full, X, y, A)
                test_acc, test_dp = _scores(full, data["X_test"], data["y_test"],
                                            data["A_test"])
            rows.append(dict(alpha=alpha, epochs=epochs, val_accuracy=acc, val_dp=dp,
                             refit_train_accuracy=train_acc, test_accuracy=test_acc,
                             test_dp=test_dp, fit_seconds=seconds))
            print(f"alpha {alpha:5.1f} epochs {epochs:3d}: validation accuracy {acc:.3f} "
                  f"DP {dp:.3f}; refit training accuracy {train_acc:.3f} | test accuracy "
                  f"{test_acc:.3f} DP {test_dp:.3f}", flush=True)

    eligible = [r for r in rows if r["val_accuracy"] >= ref_acc - args.slack
                and r["refit_train_accuracy"] >= ref_train_acc - args.slack]
    chosen = min(eligible, key=lambda r: (r["val_dp"], -r["val_accuracy"])) if eligible \
        else None
    if chosen is None:
        print("no setting within the accuracy slack")
    else:
        print(f"chosen on validation: alpha {chosen['alpha']}, epochs {chosen['epochs']} "
              f"-> test accuracy {chosen['test_accuracy']:.3f}, DP {chosen['test_dp']:.3f}")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(dict(reference=dict(val_accuracy=ref_acc, val_dp=ref_dp,
                                          refit_train_accuracy=ref_train_acc),
                           slack=args.slack, rows=rows, chosen=chosen), fh, indent=1)


if __name__ == "__main__":
    main()
