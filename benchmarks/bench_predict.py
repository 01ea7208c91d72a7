"""Prediction in fixed row blocks (current) against one pass over 65,536-row chunks.

``predict`` computes every row in a block of a fixed number of rows (the last block
overlapping the one before; an input shorter than a block padded with zero rows), one
thread per block, so that a row's output does not depend on
the other rows (``skfairbilevel.base.BaseFairEstimator._predict_array``). The reference
is the path it replaced, re-created here: chunks of up to 65,536 rows, each computed
by every intra-op thread. Both run interleaved in one process on the same fitted models.

Timed: ``predict_proba`` on 100,000 x 101 rows (float32 and float64 input) and on small
inputs (1 and 100 rows: the cost of a whole block). Models, at their default network
sizes: FairMLPClassifier (64, 64), FairPruningClassifier structured 70 %, FACIMSClassifier
(400, 200, 100) x 5 weight samples, BADRClassifier (float64 affine model),
FairRobustClassifier (affine model).

Usage::

    python benchmarks/bench_predict.py [--threads 1] [--repeats 15]
    python benchmarks/bench_predict.py --quick   # 20,000 rows, 3 repetitions

Writes ``benchmarks/results/predict.md`` (``predict_threads<T>.md`` for ``--threads T``
other than 1; ``_quick`` for ``--quick``).
"""

import statistics
import time
import warnings

import _common as shared
import numpy as np
import torch

import skfairbilevel.base as base
from skfairbilevel import (
    BADRClassifier,
    FACIMSClassifier,
    FairMLPClassifier,
    FairPruningClassifier,
    FairRobustClassifier,
)
from skfairbilevel.nn.engine import numpy_view


@torch.no_grad()
def reference_predict_array(self, X, fn):
    """The replaced path: chunks of up to 65,536 rows on every intra-op thread."""
    self.module_.eval()
    outs = []
    for start in range(0, X.shape[0], 65536):
        xb = numpy_view(
            np.ascontiguousarray(X[start : start + 65536]),
            dtype=self._predict_dtype,
            device=self.device_,
        )
        outs.append(fn(xb).detach().to("cpu", torch.float64))
    return torch.cat(outs).numpy()


def timed(fn, *args):
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def summary(old, new):
    r = [b / a for a, b in zip(old, new, strict=True)]
    q1, q3 = np.percentile(r, [25, 75])
    return statistics.median(old), statistics.median(new), statistics.median(r), q1, q3


def main(argv=None):
    ap = shared.parser(__doc__, out=shared.RESULTS, quick="20,000 rows, 3 repetitions")
    ap.add_argument("--repeats", type=int, default=None)
    args = shared.parse(ap, argv)
    warnings.simplefilter("ignore")
    args.repeats = args.repeats or (3 if args.quick else 15)
    rng = np.random.default_rng(0)
    n, d = (20_000 if args.quick else 100_000), 101
    X = rng.standard_normal((n, d)).astype(np.float32)
    y = (X[:, :5].sum(1) + rng.standard_normal(n) > 0).astype(int)
    A = (X[:, 5] > 0).astype(int)
    fit = slice(0, 2000)
    models = {
        "FairMLPClassifier (64, 64)": FairMLPClassifier(max_epochs=2, random_state=0),
        "FairPruningClassifier structured 70%": FairPruningClassifier(
            sparsity=0.7,
            structured=True,
            pretrain_epochs=2,
            max_epochs=1,
            finetune_epochs=0,
            random_state=0,
        ),
        "FACIMSClassifier (400, 200, 100) x 5": FACIMSClassifier(max_epochs=1, random_state=0),
        "BADRClassifier linear (float64)": BADRClassifier(max_iter=5, random_state=0),
        "FairRobustClassifier linear": FairRobustClassifier(max_epochs=1, random_state=0),
    }
    for m in models.values():
        m.fit(X[fit], y[fit], sensitive_features=A[fit])
    current = base.BaseFairEstimator._predict_array
    paths = (("reference", reference_predict_array), ("current", current))
    inputs = {"float32": X, "float64": X.astype(np.float64)}
    small = {"1 row": X[:1], "100 rows": X[:100]}
    times = {}
    for rep in range(args.repeats):
        for mname, m in models.items():
            for path, fn in paths[:: 1 - 2 * (rep % 2)]:  # alternate which runs first
                base.BaseFairEstimator._predict_array = fn
                try:
                    for dname, Xin in inputs.items():
                        times.setdefault((mname, dname, path), []).append(
                            timed(m.predict_proba, Xin)
                        )
                    for sname, Xin in small.items():
                        times.setdefault((mname, sname, path), []).append(
                            min(timed(m.predict_proba, Xin) for _ in range(5))
                        )
                finally:
                    base.BaseFairEstimator._predict_array = current
    lines = [
        "# Prediction in fixed row blocks against the replaced chunked path",
        "",
        f"Run {shared.now()}, {shared.load_note()}, torch {torch.__version__}, "
        f"{args.threads} torch thread(s), {args.repeats} interleaved repetitions; command "
        f"`{args.command}`. `predict_proba` of each model, *reference* = chunks of up to 65,536 "
        "rows on every intra-op thread (the replaced path), *current* = fixed row blocks, "
        "one thread per block (`_predict_array`). Ratio = current / reference, median of "
        "the per-repetition ratios (quartiles in brackets); small inputs: best of 5 calls "
        "per repetition.",
        "",
        "| model | block rows | input | reference ms | current ms | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for mname, m in models.items():
        for dname in list(inputs) + list(small):
            old, new, r, q1, q3 = summary(
                times[(mname, dname, "reference")], times[(mname, dname, "current")]
            )
            label = f"{n:,} x {d} {dname}" if dname in inputs else dname
            lines.append(
                f"| {mname} | {m._predict_block_rows()} | {label} | {old * 1e3:.2f} | "
                f"{new * 1e3:.2f} | {r:.2f} ({q1:.2f}-{q3:.2f}) |"
            )
    suffix = (f"_threads{args.threads}" if args.threads != 1 else "") + (
        "_quick" if args.quick else ""
    )
    shared.write_report(args.out, f"predict{suffix}.md", lines)


if __name__ == "__main__":
    main()
