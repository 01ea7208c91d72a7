"""Scale: fit time and peak memory of every estimator on 1e4, 1e5 and 1e6 rows.

Synthetic data: 50 float32 features, a binary target (a continuous one for regressors)
and two groups. Each fit runs in a fresh subprocess; a sampling thread reads the
process's resident set size every 2 ms during ``fit``, and the figure reported is the
peak RSS during fit minus the RSS just before it (the data already in memory), compared
with the float32 size of X (n x 50 x 4 bytes). Targets: time grows about linearly in n;
peak extra memory under 3x the data size.

Settings are fixed per estimator (a few epochs / iterations, so that the runs finish);
what is measured is growth with n, not the absolute time of a full training run.

Usage::

    python benchmarks/bench_scale.py                 # 1e4, 1e5, 1e6 rows
    python benchmarks/bench_scale.py --quick         # 1e4, 3e4 rows
    python benchmarks/bench_scale.py --sizes 10000 100000 --estimators FairMLPClassifier

Two torch threads per fit unless ``--threads`` (or ``SKFB_THREADS``) says otherwise.
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time

import _common as shared

N_FEATURES = 50

# Per-estimator settings for the scale runs (constructor keyword arguments).
SCALE_PARAMS = {
    "FairMLPClassifier": dict(
        hidden_layer_sizes=(64, 64), fairness="demographic_parity", max_epochs=2, batch_size=1024
    ),
    "FairBiNNClassifier": dict(hidden_layer_sizes=(64, 64), max_epochs=2, batch_size=1024),
    "BADRClassifier": dict(solver="sgd", max_iter=50),
    "BADRRegressor": dict(solver="sgd", max_iter=50),
    "FACIMSClassifier": dict(hidden_layer_sizes=(64, 32), max_epochs=5),
    "FairPruningClassifier": dict(
        hidden_layer_sizes=(64, 64),
        pretrain_epochs=1,
        max_epochs=1,
        finetune_epochs=0,
        batch_size=1024,
    ),
    "FairRobustClassifier": dict(max_epochs=2, batch_size=1024),
}


def rss_bytes():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def one_run(name, n, seed=0):
    """Fit one estimator on n rows in this process; return a result dict."""
    import inspect

    import numpy as np
    from sklearn.base import is_regressor

    import skfairbilevel

    cls = getattr(skfairbilevel, name)
    valid = inspect.signature(cls).parameters
    params = {k: v for k, v in SCALE_PARAMS.get(name, {}).items() if k in valid}
    if "random_state" in valid:
        params["random_state"] = seed
    rng = np.random.default_rng(seed)
    X = np.empty((n, N_FEATURES), dtype=np.float32)
    for start in range(0, n, 100_000):  # chunked, to keep the RSS high-water mark low
        X[start : start + 100_000] = rng.standard_normal(
            (min(100_000, n - start), N_FEATURES), dtype=np.float32
        )
    A = (rng.random(n) < 0.4).astype(np.int64)
    score = X[:, 0] + 0.5 * X[:, 1] + 0.5 * A + 0.3 * rng.standard_normal(n, dtype=np.float32)
    est = cls(**params)
    if is_regressor(est):
        y = score.astype(np.float64)
    else:
        y = (score > 0.3).astype(int)

    base = rss_bytes()
    peak = [base]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_bytes())
            time.sleep(0.002)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    with shared.Clock() as clock:
        est.fit(X, y, sensitive_features=A)
    seconds = clock.wall
    stop.set()
    thread.join()
    peak[0] = max(peak[0], rss_bytes())
    data_bytes = X.nbytes
    return {
        "estimator": name,
        "n": n,
        "seconds": seconds,
        "peak_extra_mb": (peak[0] - base) / 2**20,
        "data_mb": data_bytes / 2**20,
        "peak_over_data": (peak[0] - base) / data_bytes,
    }


def main(argv=None):
    parser = shared.parser(__doc__, threads=2, quick="1e4 and 3e4 rows")
    parser.add_argument("--sizes", type=int, nargs="+")
    parser.add_argument("--estimators", nargs="+")
    parser.add_argument("--one", nargs=2, metavar=("NAME", "N"), help=argparse.SUPPRESS)
    args = shared.parse(parser, argv)
    if args.one:
        print(json.dumps(one_run(args.one[0], int(args.one[1]))))
        return None

    import skfairbilevel

    sizes = args.sizes or ([10_000, 30_000] if args.quick else [10_000, 100_000, 1_000_000])
    names = args.estimators or [name for name, _ in skfairbilevel.all_estimators()]
    results = []
    for name in names:
        for n in sizes:
            proc = subprocess.run(
                [sys.executable, __file__, "--one", name, str(n), "--threads", str(args.threads)],
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                print(f"{name:24s} n={n:>9,d}  FAILED: {proc.stderr.strip().splitlines()[-1:]}")
                continue
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            results.append(res)
            print(
                f"{name:24s} n={n:>9,d}  {res['seconds']:8.2f} s   peak extra "
                f"{res['peak_extra_mb']:8.1f} MB = {res['peak_over_data']:.2f} x data "
                f"({res['data_mb']:.1f} MB)",
                flush=True,
            )
    print("\ntime growth per 10x rows (ideal linear: 10.0):")
    for name in names:
        rows = [r for r in results if r["estimator"] == name]
        for a, b in zip(rows[:-1], rows[1:], strict=True):
            print(
                f"  {name:24s} {a['n']:>9,d} -> {b['n']:>9,d}: x{b['seconds'] / a['seconds']:.2f}"
                f" time for x{b['n'] / a['n']:.0f} rows"
            )
    if args.out:
        shared.write_json(args.out, {"machine": shared.machine(args.command), "rows": results})
    return results


if __name__ == "__main__":
    main()
