"""Input checking at predict time: one pass (current) vs the earlier three passes.

``predict`` refuses NaN, infinity and float64 values that overflow the model's float32.
The earlier check took scikit-learn's finiteness pass (a sum over X) plus a separate
``max`` and ``min`` over float64 data; now it is one ``sum`` (float32 data) or one
``aminmax`` (float64 data) over a zero-copy torch view, with the exact checks only when
that value is not finite (``skfairbilevel.base._check_predict_values``).

This script times ``predict_proba`` of fitted models on 100,000 Adult-like rows x 101
features (float32 and float64 input) with the current check and with the earlier one
(re-created here as the reference), interleaved in one process, one torch thread, and
reports the medians and the paired per-repetition ratios. Models: FairMLPClassifier
(64, 64) and FairPruningClassifier with structured 70 % sparsity (the issue 6 model).

Usage::

    python benchmarks/bench_predict.py [--repeats 40]
    python benchmarks/bench_predict.py --quick   # 20,000 rows, 5 repetitions

Writes ``benchmarks/results/predict.md``.
"""

import statistics
from pathlib import Path

import _common as shared
import numpy as np
from sklearn.utils.validation import validate_data

import skfairbilevel.base as base
from skfairbilevel import FairMLPClassifier, FairPruningClassifier


def earlier_check(self, X):
    """The predict-time validation as it was before (reference)."""
    X = validate_data(self, X, reset=False, dtype=[np.float32, np.float64])
    base._check_dtype_range(X, self._predict_dtype)
    if self._model_columns is not None:
        X = X[:, self._model_columns]
    return X


def main(argv=None):
    ap = shared.parser(__doc__, out=shared.RESULTS, quick="20,000 rows, 5 repetitions")
    ap.add_argument("--repeats", type=int, default=None)
    args = shared.parse(ap, argv)
    args.repeats = args.repeats or (5 if args.quick else 40)
    rng = np.random.default_rng(0)
    n, d = (20_000 if args.quick else 100_000), 101
    X = rng.standard_normal((n, d)).astype(np.float32)
    y = (X[:, :5].sum(1) + rng.standard_normal(n) > 0).astype(int)
    A = (X[:, 5] > 0).astype(int)
    fit = slice(0, 5000)
    models = {
        "FairMLPClassifier (64, 64)": FairMLPClassifier((64, 64), max_epochs=2, random_state=0),
        "FairPruningClassifier structured 70%": FairPruningClassifier(
            (64, 64),
            sparsity=0.7,
            structured=True,
            pretrain_epochs=2,
            max_epochs=1,
            finetune_epochs=0,
            random_state=0,
        ),
    }
    for m in models.values():
        m.fit(X[fit], y[fit], sensitive_features=A[fit])
    current = base.BaseFairEstimator._validate_predict_X
    inputs = {"float32": X, "float64": X.astype(np.float64)}
    times = {}
    pair = (("earlier", earlier_check), ("current", current))
    for rep in range(args.repeats):
        for mname, m in models.items():
            for dname, Xin in inputs.items():
                for check, fn in pair[:: 1 - 2 * (rep % 2)]:  # alternate the order
                    base.BaseFairEstimator._validate_predict_X = fn
                    try:
                        with shared.Clock() as clock:
                            m.predict_proba(Xin)
                        times.setdefault((mname, dname, check), []).append(clock.wall)
                    finally:
                        base.BaseFairEstimator._validate_predict_X = current
    lines = [
        "# Predict-time input checks",
        "",
        f"Run {shared.now()}, {shared.load_note()}, {args.threads} torch "
        f"thread(s), {args.repeats} interleaved repetitions (the two "
        "checks alternate which runs first); command "
        f"`{args.command}`. "
        f"`predict_proba` on {n:,} x {d} rows; "
        "*earlier* = validate_data's finiteness pass + the separate float32-range pass, "
        "*current* = one pass (`_check_predict_values`). Speed-up = earlier / current "
        "(median of the per-repetition ratios, quartiles in brackets).",
        "",
        "| model | input | earlier ms | current ms | speed-up |",
        "|---|---|---|---|---|",
    ]
    for mname in models:
        for dname in inputs:
            old = times[(mname, dname, "earlier")]
            new = times[(mname, dname, "current")]
            r = [a / b for a, b in zip(old, new, strict=True)]
            q1, q3 = np.percentile(r, [25, 75])
            lines.append(
                f"| {mname} | {dname} | {statistics.median(old) * 1e3:.1f} | "
                f"{statistics.median(new) * 1e3:.1f} | {statistics.median(r):.2f}x "
                f"({q1:.2f}-{q3:.2f}) |"
            )
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"predict{'_quick' if args.quick else ''}.md").write_text(text)


if __name__ == "__main__":
    main()
