"""Binary fairness penalties: the earlier autograd graph vs one node with a closed-form
gradient, fit time before / after.

The soft demographic-parity penalty (``nn.losses.demographic_parity_loss``) on binary
probabilities used to be a graph of about a dozen small operations, with a host
synchronisation (``int(present.sum())``) and boolean indexing of the groups present.
It is now one autograd node whose forward and backward are written out
(``nn.losses.fairness_loss_and_grad``), with the same values up to rounding.

This script fits the same models with the current penalty and with the earlier one
(re-created here as the reference and patched into ``FAIRNESS_LOSSES``), interleaved in
one process, one torch thread, and reports the median CPU time per fit and the ratio
earlier / current: FairMLPClassifier with the demographic-parity penalty and
FairBiNNClassifier with ``mode="lagrangian"`` (batch 100, the FairBiNN paper's setting).
(FairBiNN's bilevel follower computes its gradient in closed form either way.)

Usage::

    python benchmarks/bench_losses.py [--quick] [--repeats 7]

Writes ``benchmarks/results/losses.md``.
"""

import statistics

import _common as shared
import numpy as np

from skfairbilevel import FairBiNNClassifier, FairMLPClassifier
from skfairbilevel.datasets import load_adult, make_preprocessor
from skfairbilevel.nn import losses


def earlier_deviation_penalty(values, groups, n_groups, weight=None, mask=None):
    """The penalty's earlier autograd graph (the reference)."""
    means, totals = losses.group_means(values, groups, n_groups, weight, mask)
    present = totals > 0
    if int(present.sum()) < 2:
        return values.sum() * 0.0
    overall = (means * totals.reshape((-1,) + (1,) * (means.dim() - 1))).sum(0) / totals.sum()
    dev = (means - overall) ** 2
    return dev[present].sum()


def earlier_demographic_parity_loss(proba, y, groups, n_groups, weight=None):
    return earlier_deviation_penalty(proba, groups, n_groups, weight)


def main(argv=None):
    ap = shared.parser(__doc__, out=shared.RESULTS)
    ap.add_argument("--repeats", type=int, default=None)
    args = shared.parse(ap, argv)
    tr = load_adult(split="train", sensitive="sex")
    # sex stays an input column, the protocol of results/losses.md
    X = make_preprocessor(tr.data, sensitive="sex", keep_sensitive=True).fit_transform(tr.data)
    X = X.to_numpy(np.float32)
    y, A = tr.target.to_numpy(), tr.sensitive_features.to_numpy()
    if args.quick:
        X, y, A = X[:5000], y[:5000], A[:5000]
    repeats = args.repeats or (2 if args.quick else 7)
    epochs = 1 if args.quick else 2
    models = {
        "FairMLPClassifier, DP penalty, batch 256": FairMLPClassifier(
            (64, 64),
            fairness="demographic_parity",
            fairness_weight=1.0,
            batch_size=256,
            max_epochs=epochs,
            random_state=0,
        ),
        "FairBiNNClassifier lagrangian, batch 100": FairBiNNClassifier(
            mode="lagrangian", eta=1.0, batch_size=100, max_epochs=epochs, random_state=0
        ),
    }
    current = losses.FAIRNESS_LOSSES["demographic_parity"]
    variants = (("earlier", earlier_demographic_parity_loss), ("current", current))
    cpu = {}
    try:
        for rep in range(repeats + 1):  # the first round is a warm-up
            for name, est in models.items():
                for which, fn in variants[:: 1 - 2 * (rep % 2)]:
                    losses.FAIRNESS_LOSSES["demographic_parity"] = fn
                    with shared.Clock() as clock:
                        est.fit(X, y, sensitive_features=A)
                    if rep:
                        cpu.setdefault((name, which), []).append(clock.cpu)
    finally:
        losses.FAIRNESS_LOSSES["demographic_parity"] = current
    med = {k: statistics.median(v) for k, v in cpu.items()}
    lines = [
        "# Binary fairness penalties: autograd graph vs closed-form node",
        "",
        f"Run {shared.now()}, {shared.load_note()}, "
        f"{args.threads} torch thread(s), {repeats} interleaved rounds after a warm-up, "
        f"{epochs} epochs per fit on {len(y):,} Adult rows; command `{args.command}`. "
        "CPU seconds per fit (median); "
        "speed-up = earlier / current. The two give the same penalty values and "
        "gradients up to rounding (`tests/test_losses.py`).",
        "",
        "| model | earlier s | current s | speed-up |",
        "|---|---|---|---|",
    ]
    for name in models:
        e, c = med[(name, "earlier")], med[(name, "current")]
        lines.append(f"| {name} | {e:.2f} | {c:.2f} | {e / c:.2f}x |")
    shared.write_report(args.out, f"losses{'_quick' if args.quick else ''}.md", lines)


if __name__ == "__main__":
    main()
