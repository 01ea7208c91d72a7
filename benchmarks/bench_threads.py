"""Small fits on a busy machine: the thread rule against one thread and all threads.

``fit`` caps torch's intra-op threads at ``rows_per_step * n_weights // 2**26`` (at
least 1, at most ``torch.get_num_threads()``; ``skfairbilevel.nn.threads``), so a small
network trains on one thread. This script starts one other busy process (a Python loop
on one core) and times, interleaved in one process, the default fit of each estimator
(FACIMS with ``max_epochs=2``: its default fit takes minutes) under three settings:

* ``one``: ``torch.set_num_threads(1)``;
* ``rule``: torch's default thread count, capped by the rule (what ``fit`` does);
* ``all``: torch's default thread count with the cap switched off (the fit before the
  rule; FairMLPClassifier only, as it takes long),

and ``predict_proba`` on 100,000 rows (blocks spread over the threads, against one
thread). Ratios are per repetition, against ``one``; the report records ``uptime``
before and after, since the machine may be shared.

Usage::

    python benchmarks/bench_threads.py [--repeats 5] [--no-busy] [--quick]

Writes ``benchmarks/results/threads.md`` (``threads_quiet.md`` with ``--no-busy``).
"""

import argparse
import datetime
import multiprocessing
import statistics
import subprocess
import time
import warnings
from pathlib import Path

import _common as shared
import numpy as np
import torch

import skfairbilevel.base as base
from skfairbilevel import all_estimators
from skfairbilevel.datasets import make_biased_classification


def spin(stop):
    """The other busy process: a Python loop on one core until ``stop`` is set."""
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def uptime():
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-busy", action="store_true", help="no other busy process")
    ap.add_argument("--quick", action="store_true", help="FairMLPClassifier only, 2 repeats")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    default_threads = torch.get_num_threads()
    X, y, A = make_biased_classification(2000, 20, random_state=0)
    Xp = np.random.default_rng(0).standard_normal((100_000, 20)).astype(np.float32)
    names = ["FairMLPClassifier"] if args.quick else [n for n, _ in all_estimators()]
    repeats = 2 if args.quick else args.repeats
    estimators = dict(all_estimators())
    rule = base.BaseFairEstimator._fit_threads
    settings = {
        "one": (1, rule),
        "rule": (default_threads, rule),
        "all": (default_threads, lambda self, n: torch.get_num_threads()),
    }
    stop = multiprocessing.Event()
    busy = None if args.no_busy else multiprocessing.Process(target=spin, args=(stop,))
    before = uptime()
    if busy is not None:
        busy.start()
        time.sleep(1.0)
    times, used = {}, {}
    try:
        for rep in range(repeats):
            for name in names:
                cls = estimators[name]
                params = {"random_state": 0}
                if name == "FACIMSClassifier":
                    params["max_epochs"] = 2
                yy = X[:, 0] + y if name.endswith("Regressor") else y
                order = list(settings)[:: 1 - 2 * (rep % 2)]
                for setting in order:
                    if setting == "all" and name != "FairMLPClassifier":
                        continue
                    threads, fit_threads = settings[setting]
                    torch.set_num_threads(threads)
                    base.BaseFairEstimator._fit_threads = fit_threads
                    try:
                        est = cls(**params)
                        t0 = time.perf_counter()
                        est.fit(X, yy, sensitive_features=A)
                        times.setdefault((name, "fit", setting), []).append(
                            time.perf_counter() - t0
                        )
                        used[(name, setting)] = fit_threads(est, len(X))
                        if setting != "all":
                            t0 = time.perf_counter()
                            est.predict(Xp)
                            times.setdefault((name, "predict", setting), []).append(
                                time.perf_counter() - t0
                            )
                    finally:
                        base.BaseFairEstimator._fit_threads = rule
                        torch.set_num_threads(default_threads)
    finally:
        stop.set()
        if busy is not None:
            busy.join()
    after = uptime()
    command = (
        "python benchmarks/bench_threads.py"
        + (" --no-busy" if args.no_busy else "")
        + (" --quick" if args.quick else f" --repeats {repeats}")
    )
    lines = [
        "# Thread rule: small fits with another busy process",
        "",
        f"Run {datetime.datetime.now().isoformat(timespec='seconds')}, command `{command}`, "
        f"torch {torch.__version__}, default thread count {default_threads}, "
        + ("no other busy process" if args.no_busy else "one other busy process (the script's)")
        + f" on a machine that may be shared. `uptime` before: `{before}`; after: `{after}`. "
        f"Data: make_biased_classification(2000, 20); predict on 100,000 x 20 rows. "
        "Each estimator at its defaults (FACIMS: max_epochs=2). Ratio = time / time with "
        "one thread, median of the per-repetition ratios [min, max].",
        "",
        "| estimator | threads (rule) | fit one s | fit rule s | rule / one | "
        "fit all s | all / one | predict one s | predict rule s | rule / one |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(name, what, setting):
        t = times[(name, what, setting)]
        r = [a / b for a, b in zip(t, times[(name, what, "one")], strict=True)]
        return (
            f"{statistics.median(t):.3f}",
            f"{statistics.median(r):.2f} [{min(r):.2f}, {max(r):.2f}]",
        )

    for name in names:
        one = statistics.median(times[(name, "fit", "one")])
        fr, frr = cell(name, "fit", "rule")
        fa, far = cell(name, "fit", "all") if (name, "fit", "all") in times else ("", "")
        p1 = statistics.median(times[(name, "predict", "one")])
        pr, prr = cell(name, "predict", "rule")
        lines.append(
            f"| {name} | {used[(name, 'rule')]} | {one:.3f} | {fr} | {frr} | {fa} | "
            f"{far} | {p1:.3f} | {pr} | {prr} |"
        )
    name = f"threads{'_quiet' if args.no_busy else ''}{'_quick' if args.quick else ''}.md"
    shared.write_report(args.out, name, lines)


if __name__ == "__main__":
    main()
