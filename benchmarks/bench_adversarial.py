"""The setting of fairlearn's adversarial baseline: alpha x epochs through the runner.

fairlearn's ``AdversarialFairnessClassifier`` (torch backend, predictor [50, leaky_relu],
adversary [3, leaky_relu], batch 256, learning rate 1e-3, shuffled) is unstable on Adult:
the result depends on alpha and on the number of steps. This script sweeps both with the
package's runner (:func:`skfairbilevel.compare.run_comparison`): Adult, sensitive feature
``sex``, 3 seeds, validation carved from the training file, operating points chosen on
validation only for each epsilon, test figures with 95% intervals; unconstrained
LogisticRegression alongside. The registry's ``adversarial`` method fixes the epochs and
sweeps alpha; this sweep is the evidence for its epoch count.

Usage::

    python benchmarks/bench_adversarial.py            # 5 alphas x 4 epoch counts, 3 seeds
    python benchmarks/bench_adversarial.py --quick    # 3 x 2, quick rows, 2 seeds

Writes the runner's outputs (``report.md``, ``summary.csv``, ``runs.csv``, ...) into
``benchmarks/results/adversarial/`` (``--out``).
"""

import sys

from _common import RESULTS, parse, parser

from skfairbilevel.compare import METHODS, Method, grid_product, run_comparison

ALPHAS = (0.1, 0.3, 1.0, 3.0, 10.0)
EPOCHS = (1, 3, 5, 10)


def main(argv=None):
    ap = parser(__doc__, out=RESULTS / "adversarial")
    ap.add_argument("--n-jobs", type=int, default=None, help="fits in parallel")
    args = parse(ap, argv)
    alphas, epochs = ((0.3, 1.0, 3.0), (1, 5)) if args.quick else (ALPHAS, EPOCHS)
    sweep = Method(
        "adversarial_sweep",
        METHODS["adversarial"].estimator,
        family="fairlearn",
        grid=grid_product(alpha=alphas, epochs=epochs),
        description="AdversarialFairnessClassifier, alpha x epochs",
    )
    result = run_comparison(
        dataset="adult",
        methods=[sweep, "logreg"],
        seeds=2 if args.quick else 3,
        quick=args.quick,
        n_jobs=args.n_jobs,
        out=args.out,
        command=args.command,
    )
    fronts = result.fronts[result.fronts["method"] == "adversarial_sweep"]
    print(
        fronts[
            ["params", "accuracy_mean", "fairness_mean", "accuracy_low", "accuracy_high"]
        ].to_string(index=False)
    )
    print(
        result.summary[
            [
                "method",
                "epsilon",
                "accuracy_mean",
                "fairness_mean",
                "violation_rate",
                "none_feasible",
            ]
        ].to_string(index=False)
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
