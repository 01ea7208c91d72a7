"""Sparse X in ``fit``: peak memory against the sparse matrix's size, and the time per
epoch against the same data given dense.

The data is what ``OneHotEncoder`` makes of categorical columns: ``--columns``
categorical features of ``--categories`` values each, one-hot encoded into a CSR matrix
of float64 ones (with 10 x 500 the matrix has 5,000 columns and a density of 0.2 %), a
binary target depending on a few categories, and two groups.

* ``memory``: each case runs in a fresh subprocess; the peak resident memory of
  ``fit`` (``VmHWM`` after resetting it through ``/proc/self/clear_refs`` just before
  the fit) minus the resident memory before it, divided by the size of the sparse
  matrix (data + indices + indptr). Target: under 3x at 1,000,000 rows. A warm-up fit
  of the same estimator on the first 2,000 rows runs first: torch's one-time costs
  (code pages of its kernels, thread pools, allocator arenas), the same for any data,
  are recorded separately (``warmup_bytes``) rather than charged to the data. A
  sampling thread (every 2 ms) records the largest resident memory of each stage of
  ``fit`` (``prepare``: validation, float32 copy, canonical rows; ``tensors``: the
  rows on the device; ``train``: ``_fit_torch``) and the code running at the peak.
* ``epoch``: the median epoch time (``history_``) of the same fit on the same rows given
  sparse and given dense (float32), in the same process, alternating (BADR, which has
  no epochs: the whole fit). Target: sparse at most 1.5x dense.
* ``kernels``: one training step's first layer on a batch, made dense then multiplied,
  against ``torch.sparse.mm`` on the sparse batch (what a sparse-kernel first layer
  would do), forward and backward.

Usage::

    python benchmarks/bench_sparse.py                          # all parts, the target sizes
    python benchmarks/bench_sparse.py --part memory --rows 1000000
    python benchmarks/bench_sparse.py --quick                  # small sizes
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

PARTS = ("memory", "epoch", "kernels")
ESTIMATORS = (
    "FairMLPClassifier",
    "FairBiNNClassifier",
    "FairPruningClassifier",
    "FairRobustClassifier",
    "FACIMSClassifier",
    "BADRClassifier",
)


def one_hot(n, columns=10, categories=500, seed=0):
    """CSR float64 one-hot matrix (n, columns * categories), target, groups."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    codes = rng.integers(0, categories, size=(n, columns), dtype=np.int32)
    indices = (codes + np.arange(columns, dtype=np.int32) * categories).reshape(-1)
    indptr = np.arange(0, n * columns + 1, columns, dtype=np.int32)
    X = sp.csr_matrix((np.ones(n * columns), indices, indptr), shape=(n, columns * categories))
    score = (codes[:, 0] < categories // 3).astype(float) + (codes[:, 1] % 2) + rng.random(n)
    y = (score > 1.2).astype(np.int64)
    A = (codes[:, 2] < categories // 2).astype(np.int64)
    return X, y, A


def nbytes(X):
    return X.data.nbytes + X.indices.nbytes + X.indptr.nbytes


def rss(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def estimator(name, **kw):
    import skfairbilevel

    params = {
        "FairMLPClassifier": dict(hidden_layer_sizes=(64, 64), batch_size=256),
        "FairBiNNClassifier": dict(hidden_layer_sizes=(64, 64), batch_size=256),
        "FairPruningClassifier": dict(
            hidden_layer_sizes=(64, 64), batch_size=256, pretrain_epochs=1, finetune_epochs=0
        ),
        "FairRobustClassifier": dict(batch_size=256),
        "FACIMSClassifier": dict(hidden_layer_sizes=(64, 32)),
        "BADRClassifier": dict(max_iter=1),
    }.get(name, {})
    params.update(kw)
    return getattr(skfairbilevel, name)(random_state=0, **params)


class _StagePeaks:
    """The largest resident memory of each stage of ``fit`` (sampled by a thread), and
    the innermost frames of the package running at the overall peak."""

    STAGES = {"_prepare": "prepare", "_tensors": "tensors", "_fit_torch": "train"}

    def __init__(self, interval=0.002):
        import threading

        self.stage, self.peaks, self.where, self.top = "other", {}, None, 0
        self.interval, self.done = interval, threading.Event()
        self.main = threading.main_thread().ident
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        import traceback

        while not self.done.is_set():
            r = rss("VmRSS")
            self.peaks[self.stage] = max(self.peaks.get(self.stage, 0), r)
            if r > self.top:
                self.top = r
                frame = sys._current_frames().get(self.main)
                if frame is not None:
                    stack = traceback.extract_stack(frame)
                    ours = [f for f in stack if "skfairbilevel" in f.filename][-3:]
                    self.where = [
                        f"{f.filename.split('skfairbilevel')[-1]}:{f.lineno} {f.name}" for f in ours
                    ]
            time.sleep(self.interval)

    def wrap(self, cls):
        """Mark the stages while ``fit`` runs (patched on the class's own MRO)."""
        for method, stage in self.STAGES.items():
            owner = next(k for k in cls.__mro__ if method in k.__dict__)
            original = owner.__dict__[method]

            def marked(obj, *args, _original=original, _stage=stage, **kw):
                previous, self.stage = self.stage, _stage
                try:
                    return _original(obj, *args, **kw)
                finally:
                    self.stage = previous

            setattr(cls, method, marked)


def memory_case(name, n, columns, categories, epochs):
    """In this process: build the matrix, warm up, reset the peak, fit, report."""
    import torch

    torch.set_num_threads(int(os.environ.get("SKFB_THREADS", "1")))
    X, y, A = one_hot(n, columns, categories)
    kw = {"max_epochs": epochs} if name != "BADRClassifier" else {}
    start = rss("VmRSS")
    estimator(name, **kw).fit(X[:2000], y[:2000], sensitive_features=A[:2000])
    est = estimator(name, **kw)
    stages = _StagePeaks()
    stages.wrap(type(est))
    before = rss("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset VmHWM to the current resident size
    stages.thread.start()
    t0 = time.perf_counter()
    est.fit(X, y, sensitive_features=A)
    seconds = time.perf_counter() - t0
    peak = rss("VmHWM")
    stages.done.set()
    stages.thread.join()
    return {
        "estimator": name,
        "rows": n,
        "columns": X.shape[1],
        "density": X.nnz / (X.shape[0] * X.shape[1]),
        "sparse_bytes": nbytes(X),
        "dense_float32_bytes": X.shape[0] * X.shape[1] * 4,
        "fit_extra_peak_bytes": peak - before,
        "ratio_to_sparse": (peak - before) / nbytes(X),
        "warmup_bytes": before - start,
        "stage_extra_peak_bytes": {k: v - before for k, v in stages.peaks.items()},
        "peak_at": stages.where,
        "fit_s": seconds,
    }


def part_memory(args):
    out = []
    for name in args.estimators:
        cmd = [
            sys.executable,
            __file__,
            "--_case",
            json.dumps([name, args.rows, args.columns, args.categories, 1]),
        ]
        run = subprocess.run(cmd, capture_output=True, text=True)
        if run.returncode:
            raise RuntimeError(run.stderr[-3000:])
        row = json.loads(run.stdout.strip().splitlines()[-1])
        out.append(row)
        print(
            f"memory {name}: {row['rows']} x {row['columns']} (density "
            f"{100 * row['density']:.2f} %), sparse {row['sparse_bytes'] / 2**20:.0f} MiB, "
            f"fit's extra peak {row['fit_extra_peak_bytes'] / 2**20:.0f} MiB = "
            f"{row['ratio_to_sparse']:.2f}x the sparse matrix (target < 3x); fit "
            f"{row['fit_s']:.1f} s; by stage (MiB) "
            f"{ {k: round(v / 2**20) for k, v in row['stage_extra_peak_bytes'].items()} }; "
            f"peak at {row['peak_at']}"
        )
    return out


def part_epoch(args):
    import torch

    torch.set_num_threads(int(os.environ.get("SKFB_THREADS", "1")))
    n = args.dense_rows
    X, y, A = one_hot(n, args.columns, args.categories)
    D = X.toarray().astype(np.float32)
    out = {}
    for name in args.estimators:
        times = {"sparse": [], "dense": []}
        for _ in range(args.repeats):
            for kind, data in (("sparse", X), ("dense", D)):
                if name == "BADRClassifier":  # no epochs: the whole fit
                    t0 = time.perf_counter()
                    estimator(name).fit(data, y, sensitive_features=A)
                    times[kind].append(time.perf_counter() - t0)
                    continue
                est = estimator(name, max_epochs=2).fit(data, y, sensitive_features=A)
                times[kind].append(statistics.median(r["seconds"] for r in est.history_))
        med = {k: statistics.median(v) for k, v in times.items()}
        out[name] = {
            "rows": n,
            "columns": X.shape[1],
            "epoch_s": times,
            "median_epoch_s": med,
            "ratio_sparse_over_dense": med["sparse"] / med["dense"],
        }
        print(
            f"epoch {name}: {n} x {X.shape[1]}: sparse {med['sparse']:.3f} s, dense "
            f"{med['dense']:.3f} s per epoch, ratio {med['sparse'] / med['dense']:.2f} "
            f"(target <= 1.5)"
        )
    return out


def part_kernels(args):
    import torch

    from skfairbilevel._rows import model_features
    from skfairbilevel.nn.engine import SparseRows

    X, _, _ = one_hot(100_000, args.columns, args.categories)
    rows = SparseRows.from_scipy(model_features(X), torch.device("cpu"))
    d = X.shape[1]
    W = torch.randn(64, d, requires_grad=True)
    b = torch.zeros(64, requires_grad=True)
    gen = torch.Generator().manual_seed(0)
    out = {}
    for batch in (256, 4096):
        pos = torch.randperm(X.shape[0], generator=gen)[:batch]

        def densified(pos=pos):
            h = torch.nn.functional.linear(rows.dense(pos), W, b)
            h.sum().backward()

        def sparse_mm(pos=pos):
            sub = X[pos.numpy()].tocsr().astype(np.float32)
            t = torch.sparse_csr_tensor(
                torch.from_numpy(sub.indptr.astype(np.int64)),
                torch.from_numpy(sub.indices.astype(np.int64)),
                torch.from_numpy(sub.data),
                size=sub.shape,
            )
            h = torch.sparse.mm(t, W.t()) + b
            h.sum().backward()

        res = {}
        for label, fn in (("densify_then_linear", densified), ("torch_sparse_mm", sparse_mm)):
            fn()
            ts = []
            for _ in range(20):
                t0 = time.perf_counter()
                fn()
                ts.append(time.perf_counter() - t0)
            res[label] = statistics.median(ts)
        out[f"batch_{batch}"] = res
        print(f"kernels batch {batch}: { ({k: f'{v * 1e3:.2f} ms' for k, v in res.items()}) }")
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", action="append", choices=PARTS)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the memory part")
    parser.add_argument("--dense-rows", type=int, default=50_000, help="rows of the epoch part")
    parser.add_argument("--columns", type=int, default=10)
    parser.add_argument("--categories", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--estimators", nargs="*", default=list(ESTIMATORS))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out")
    parser.add_argument("--_case", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._case:
        print(json.dumps(memory_case(*json.loads(args._case))))
        return None
    if args.quick:
        args.rows, args.dense_rows, args.repeats = 50_000, 5_000, 1
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    results = {
        "command": "python " + " ".join(sys.argv),
        "uptime_before": uptime,
        "threads": int(os.environ.get("SKFB_THREADS", "1")),
        "parts": {},
    }
    for part in args.part or PARTS:
        results["parts"][part] = globals()[f"part_{part}"](args)
    results["uptime_after"] = subprocess.run(
        ["uptime"], capture_output=True, text=True
    ).stdout.strip()
    print(f"{uptime}\n{results['uptime_after']}")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=2)
        print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
