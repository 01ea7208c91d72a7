"""Running time of ``python -m skfairbilevel compare``, measured against a reference.

The machine this is run on may be shared, so absolute wall-clock times are noisy. The
script therefore measures, in the same process:

* the reference: ``LogisticRegression(max_iter=1000)`` fitted on the preprocessed
  training rows of the run (the cheapest baseline, wall and CPU seconds, best of 3),
  single-threaded like the comparison;
* the comparison itself (``run_comparison``), per method: fit seconds (wall) and the
  process CPU seconds spent on the method (fit + prediction + scoring);

and reports every time also as a multiple of the reference, plus the load average. The
CPU seconds are the best estimate of the time on an idle 2-core machine (the numerical
work is mostly single-threaded at these sizes), the wall seconds an upper bound under
the load at hand.

Usage::

    python benchmarks/bench_compare.py --quick        # the --quick comparison (~1 min idle)
    python benchmarks/bench_compare.py                # the default comparison (~10 min idle)
    python benchmarks/bench_compare.py --methods ours,logreg --out results.json

Prints a table and writes JSON (``--out``; default
``benchmarks/results/compare_quick.json`` or ``compare_full.json``).
"""

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np


def _cpu():
    """CPU seconds of this process and its finished children (user + system)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def reference_fit(data, repeats=3):
    """Best-of-``repeats`` wall and CPU seconds of the reference LogisticRegression fit."""
    from sklearn.linear_model import LogisticRegression

    from skfairbilevel.datasets import make_preprocessor

    pre = make_preprocessor(data["X_train"], sensitive=data["sensitive"],
                            keep_sensitive=False)
    X = pre.fit_transform(data["X_train"])
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), _cpu()
        LogisticRegression(max_iter=1000).fit(X, data["y_train"])
        walls.append(time.perf_counter() - w)
        cpus.append(_cpu() - c)
    return min(walls), min(cpus)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the --quick comparison")
    parser.add_argument("--methods", default="all", help="as for the compare command")
    parser.add_argument("--dataset", default="adult")
    parser.add_argument("--out", default=None, help="JSON output path")
    args = parser.parse_args(argv)

    from skfairbilevel import compare

    names = compare.resolve_methods(args.methods)
    load_before = os.getloadavg()
    t0, c0 = time.perf_counter(), _cpu()
    data = compare.load_data(args.dataset, quick=args.quick)
    with compare._threads(1):  # the comparison runs single-threaded too
        ref_wall, ref_cpu = reference_fit(data)
    rows = []
    for name in names:
        w, c = time.perf_counter(), _cpu()
        res = compare.run_comparison(dataset=args.dataset, methods=name, quick=args.quick,
                                     out=None, progress=False)
        wall, cpu = time.perf_counter() - w, _cpu() - c
        fit = float(res.table["fit_seconds"].iloc[0]) if len(res.table) else float("nan")
        rows.append(dict(method=name, fit_wall=fit, method_wall=wall, method_cpu=cpu,
                         wall_over_ref=wall / ref_wall, cpu_over_ref=cpu / ref_cpu,
                         failed=res.failed.get(name)))
        print(f"{name:20s} fit {fit:7.1f} s  wall {wall:7.1f} s  cpu {cpu:7.1f} s  "
              f"(x{wall / ref_wall:6.1f} / x{cpu / ref_cpu:6.1f} of the reference)",
              flush=True)
    total_wall, total_cpu = time.perf_counter() - t0, _cpu() - c0
    load_after = os.getloadavg()
    summary = dict(
        quick=args.quick, dataset=args.dataset, n_train=len(data["y_train"]),
        reference_wall=ref_wall, reference_cpu=ref_cpu,
        total_wall=total_wall, total_cpu=total_cpu,
        total_wall_over_ref=total_wall / ref_wall, total_cpu_over_ref=total_cpu / ref_cpu,
        load_average_before=load_before, load_average_after=load_after,
        cores=os.cpu_count(), date=time.strftime("%Y-%m-%d %H:%M"),
        command="python benchmarks/bench_compare.py " + " ".join(sys.argv[1:]),
        methods=rows,
    )
    print(f"\nreference LogisticRegression fit: {ref_wall:.2f} s wall, {ref_cpu:.2f} s CPU")
    print(f"total: {total_wall:.0f} s wall, {total_cpu:.0f} s CPU "
          f"(x{total_wall / ref_wall:.0f} / x{total_cpu / ref_cpu:.0f} of the reference); "
          f"load average {load_before[0]:.1f} -> {load_after[0]:.1f} on {os.cpu_count()} cores")
    out = Path(args.out) if args.out else Path(__file__).resolve().parent / "results" / (
        "compare_quick.json" if args.quick else "compare_full.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2, default=lambda o: None
                              if isinstance(o, float) and np.isnan(o) else str(o)) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
