"""What makes a row's prediction independent of the other rows, and what it costs.

A float32 matrix product takes different kernel paths for different row counts (one row
is a matrix-vector product), and an elementwise function (sigmoid, ELU, softplus) is
vectorised over the flat tensor with a scalar loop for the last elements, so a row's
output moves by about 1e-7 with the other rows of the call: above scikit-learn's check
tolerance (relative 1e-7, absolute 1e-9). Compared here, on the replaced chunked path:

* ``chunked float32``: the replaced path (chunks of up to 65,536 rows, every thread);
* ``chunked, float64 output layer``: the same with the last layer in float64
  (FairMLPClassifier: its network is a Sequential);
* ``chunked float64``: the whole network in float64;
* ``fixed blocks`` (current): blocks of a fixed number of rows (the last one
  overlapping the one before, a short input padded), one thread per block.

For each: the largest difference of ``predict_proba`` between a row predicted with all
300 test rows and alone, or in a shuffled copy; whether that passes the check tolerance;
labels that differ; and the time of ``predict_proba`` on 100,000 rows (median of
``--repeats``; ratio to ``chunked float32``). Models at their default network sizes.

Usage::

    python benchmarks/bench_row_independence.py [--repeats 5] [--threads 1]

Writes ``benchmarks/results/row_independence.md``.
"""

import copy
import statistics
import time
import warnings

import _common as shared
import numpy as np
import torch
from bench_predict import reference_predict_array

import skfairbilevel.base as base
from skfairbilevel import FACIMSClassifier, FairMLPClassifier, FairRobustClassifier


def float64_network(est):
    """A copy of ``est`` whose network and predict-time inputs are float64."""
    twin = copy.deepcopy(est)
    twin.module_ = twin.module_.double()
    twin._predict_dtype = torch.float64
    return twin


def float64_output_layer(est):
    """A copy of a FairMLPClassifier whose last layer runs in float64."""
    twin = copy.deepcopy(est)
    body, head = twin.module_[:-1], copy.deepcopy(twin.module_[-1]).double()
    twin._forward = lambda x: head(body(x).double())
    return twin


def deviations(est, X, rng):
    whole = est.predict_proba(X)
    labels = whole.argmax(1)
    single = np.vstack([est.predict_proba(X[i : i + 1]) for i in range(len(X))])
    perm = rng.permutation(len(X))
    shuffled = est.predict_proba(X[perm])
    d_single = float(np.abs(single - whole).max())
    d_shuffled = float(np.abs(shuffled - whole[perm]).max())
    ok = np.allclose(single, whole, rtol=1e-7, atol=1e-9) and np.allclose(
        shuffled, whole[perm], rtol=1e-7, atol=1e-9
    )
    flips = int((single.argmax(1) != labels).sum() + (shuffled.argmax(1) != labels[perm]).sum())
    return d_single, d_shuffled, ok, flips


def main(argv=None):
    ap = shared.parser(__doc__, out=shared.RESULTS)
    ap.add_argument("--repeats", type=int, default=5)
    args = shared.parse(ap, argv)
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(0)
    d = 101
    X = rng.standard_normal((100_300, d)).astype(np.float32)
    y = (X[:, :5].sum(1) + rng.standard_normal(len(X)) > 0).astype(int)
    A = (X[:, 5] > 0).astype(int)
    X_test, X_big = X[:300], X[300:]
    fit = slice(300, 2300)
    models = {
        "FairMLPClassifier (64, 64)": FairMLPClassifier(max_epochs=2, random_state=0),
        "FACIMSClassifier (400, 200, 100) x 5": FACIMSClassifier(max_epochs=1, random_state=0),
        "FairRobustClassifier linear": FairRobustClassifier(max_epochs=1, random_state=0),
    }
    for m in models.values():
        m.fit(X[fit], y[fit], sensitive_features=A[fit])
    current = base.BaseFairEstimator._predict_array
    rows = []
    for mname, m in models.items():
        variants = {"chunked float32": (m, reference_predict_array)}
        if isinstance(m, FairMLPClassifier):
            variants["chunked, float64 output layer"] = (
                float64_output_layer(m),
                reference_predict_array,
            )
        variants["chunked float64"] = (float64_network(m), reference_predict_array)
        variants["fixed blocks"] = (m, current)
        times = {v: [] for v in variants}
        result = {}
        try:
            for v, (est, path) in variants.items():
                base.BaseFairEstimator._predict_array = path
                result[v] = deviations(est, X_test, np.random.default_rng(1))
            for _ in range(args.repeats):
                for v, (est, path) in variants.items():
                    base.BaseFairEstimator._predict_array = path
                    t0 = time.perf_counter()
                    est.predict_proba(X_big)
                    times[v].append(time.perf_counter() - t0)
        finally:
            base.BaseFairEstimator._predict_array = current
        ref = times["chunked float32"]
        for v in variants:
            d_single, d_shuffled, ok, flips = result[v]
            ratio = statistics.median([a / b for a, b in zip(times[v], ref, strict=True)])
            rows.append(
                f"| {mname} | {v} | {d_single:.1e} | {d_shuffled:.1e} | "
                f"{'yes' if ok else 'no'} | {flips} | {statistics.median(times[v]) * 1e3:.0f} | "
                f"{ratio:.2f} |"
            )
    lines = [
        "# Row independence of predictions: the options and their cost",
        "",
        f"Run {shared.now()}, {shared.load_note()}, torch {torch.__version__}, "
        f"{args.threads} torch thread(s), {args.repeats} repetitions; command "
        f"`{args.command}`. Largest "
        "|predict_proba difference| of a row between the 300 test rows predicted together "
        "and the row alone (single) or in a shuffled copy; *passes* = within relative 1e-7, "
        "absolute 1e-9 (scikit-learn's check); *labels* = labels that differ; time of "
        "predict_proba on 100,000 x 101 rows and its ratio to the chunked float32 path "
        "(median of the per-repetition ratios).",
        "",
        "| model | path | single | shuffled | passes | labels | 100k ms | ratio |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
    ]
    shared.write_report(args.out, "row_independence.md", lines)


if __name__ == "__main__":
    main()
