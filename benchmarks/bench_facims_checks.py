"""Where a default FACIMS fit spends its time on scikit-learn's check data, and its floor.

``check_estimator(FACIMSClassifier())`` fits about 80 times on tiny data (2 to 300 rows,
1 to 30 features, no sensitive features: one group). A default fit is 50 epochs of 10
sharpness-aware lower steps (two forward/backward passes of the 5 Monte Carlo copies of
the group batch, at most 50 rows) and 5 upper steps (10 Neumann terms: 11 Hessian-vector
products each) on the (400, 200, 100) network, whatever the data size.

For each training size (``--rows``; 3 features, two classes; 30 % held out as
validation rows, as ``fit`` does), with one torch thread:

* ``fit``: CPU seconds of a default ``fit``, and the share of its lower steps, upper
  steps and Hessian-vector products;
* ``floor``: CPU seconds of the lower level's forward/backward passes alone (the
  ``50 * 10 * 2`` passes every default fit must make, timed on 20 of them and scaled),
  i.e. what a fit would cost with every other operation free.

``--checks`` also runs ``check_estimator`` once with ``max_epochs=1`` and records the
training sizes of its fits; the estimate of the default checks' CPU time is then the sum
over those fits of the fitted cost per size (linear interpolation in the batch rows).

Usage::

    python benchmarks/bench_facims_checks.py            # the sizes 8, 26, 56, 140, 210
    python benchmarks/bench_facims_checks.py --checks   # also the sizes of check_estimator

Writes ``benchmarks/results/facims_checks.md``.
"""

import time
import warnings
from collections import Counter

import _common as shared
import numpy as np
import torch

import skfairbilevel.nn.bilevel as bilevel
import skfairbilevel.nn.trilevel as trilevel
from skfairbilevel import FACIMSClassifier
from skfairbilevel.nn.gaussian import draw_noise


def _data(n_train, d=3, seed=0):
    """``n_train`` training rows after the 30 % validation split (two classes)."""
    n = int(np.ceil(n_train / 0.7))
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.standard_normal((n, d)) + 2.0 * y[:, None]
    return X, y


class _Timers:
    """CPU seconds spent in the wrapped functions (cumulative, by name)."""

    def __init__(self):
        self.seconds, self.problem, self._undo = Counter(), None, []

    def wrap(self, owner, name, key):
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            t0 = time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[key] += time.process_time() - t0

        setattr(owner, name, timed)
        self._undo.append((owner, name, original))

    def __enter__(self):
        timers = self
        init = trilevel.TriLevelProblem.__init__

        def capture(problem, *args, **kwargs):
            init(problem, *args, **kwargs)
            timers.problem = problem

        trilevel.TriLevelProblem.__init__ = capture
        self._undo.append((trilevel.TriLevelProblem, "__init__", init))
        self.wrap(trilevel.TriLevelProblem, "lower_step", "lower steps")
        self.wrap(trilevel.TriLevelProblem, "upper_step", "upper steps")
        self.wrap(bilevel, "hvp", "Hessian-vector products")
        return self

    def __exit__(self, *exc):
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)
        return False


def floor_seconds(problem, n_passes, sample=20):
    """CPU seconds of ``n_passes`` lower-level forward/backward passes (timed on
    ``sample`` of them)."""
    groups, rows, _ = problem.group_batch(list(range(problem.n_groups)))
    scale, shift = problem._scale_shift(detach=True)
    noise = draw_noise(rows[0], problem.posts, problem.gen)

    def one():
        loss = problem._lower_vs(problem.posts, rows, scale, shift, noise)
        torch.autograd.grad(loss.sum(), problem.posts)

    one()
    t0 = time.process_time()
    for _ in range(sample):
        one()
    return (time.process_time() - t0) / sample * n_passes, int(rows[0].shape[1])


def measure(n_train):
    X, y = _data(n_train)
    est = FACIMSClassifier(random_state=0)
    with warnings.catch_warnings(), _Timers() as timers:
        warnings.simplefilter("ignore")
        with shared.Clock() as clock:
            est.fit(X, y)
    n_passes = est.max_epochs * est.inner_steps * 2
    floor, batch_rows = floor_seconds(timers.problem, n_passes)
    return {
        "train rows": est.n_train_rows_,
        "batch rows": batch_rows,
        "fit cpu s": clock.cpu,
        "fit wall s": clock.wall,
        **{k: v for k, v in timers.seconds.items()},
        "floor cpu s": floor,
    }


def check_sizes():
    """Training rows of every fit of ``check_estimator(FACIMSClassifier(max_epochs=1))``."""
    from sklearn.utils.estimator_checks import check_estimator

    sizes = []
    original = FACIMSClassifier._fit_torch

    def record(self, train, val):
        sizes.append(len(train))
        return original(self, train, val)

    FACIMSClassifier._fit_torch = record
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check_estimator(FACIMSClassifier(max_epochs=1), on_fail=None)
    finally:
        FACIMSClassifier._fit_torch = original
    return sizes


def main(argv=None):
    ap = shared.parser(__doc__, out=shared.RESULTS, quick="the sizes 8 and 26 only")
    ap.add_argument("--rows", type=int, nargs="*", default=None)
    ap.add_argument("--checks", action="store_true", help="the sizes of check_estimator's fits")
    args = shared.parse(ap, argv)
    sizes = args.rows or ([8, 26] if args.quick else [8, 26, 56, 140, 210])
    load_before = shared.load_note()
    rows = [measure(n) for n in sizes]
    keys = ["lower steps", "upper steps", "Hessian-vector products"]
    lines = [
        "# A default FACIMS fit on scikit-learn's check data: profile and floor",
        "",
        f"Run {shared.now()} on a shared machine ({load_before} before, "
        f"{shared.load_note()} after), torch {torch.__version__}, {args.threads} torch "
        f"thread(s); command `{args.command}`. CPU seconds of this process (robust to the "
        "load, unlike wall time). *floor*: the lower level's 1,000 forward/backward passes "
        "alone (50 epochs x 10 steps x 2 sharpness-aware passes).",
        "",
        "| train rows | batch rows (5 copies) | fit CPU s | fit wall s | lower steps | "
        "upper steps | of which Hessian-vector products | floor CPU s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['train rows']} | {r['batch rows']} | {r['fit cpu s']:.1f} | "
            f"{r['fit wall s']:.1f} | "
            + " | ".join(f"{r.get(k, 0):.1f} ({r.get(k, 0) / r['fit cpu s']:.0%})" for k in keys)
            + f" | {r['floor cpu s']:.1f} |"
        )
    if args.checks:
        found = check_sizes()
        batch = [min(n, 50) for n in found]
        xs = [min(r["train rows"], 50) for r in rows]
        order = np.argsort(xs)
        xs = np.asarray(xs)[order]

        def total(key):
            ys = np.asarray([r[key] for r in rows])[order]
            return float(np.interp(batch, xs, ys).sum())

        lines += [
            "",
            f"`check_estimator(FACIMSClassifier())` fits {len(found)} times; training rows "
            f"per fit (count): {dict(sorted(Counter(found).items()))}. Estimated CPU time of "
            f"its fits at the default parameters: {total('fit cpu s'):.0f} s; with every "
            f"operation but the lower level's passes free: {total('floor cpu s'):.0f} s "
            "(one core; the suite's two workers at best halve the wall time).",
        ]
    shared.write_report(args.out, f"facims_checks{'_quick' if args.quick else ''}.md", lines)


if __name__ == "__main__":
    main()
