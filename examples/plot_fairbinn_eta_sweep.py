"""
===========================================================
FairBiNN: sweeping eta on Adult, bilevel against Lagrangian
===========================================================

:class:`~skfairbilevel.FairBiNNClassifier` splits one MLP in two players: the accuracy
layers (the *leader*) descend the cross-entropy, a width-preserving fairness layer
before the output (the *follower*) descends ``eta`` times a soft demographic-parity
loss, and the two alternate optimiser steps on every mini-batch.

This example sweeps ``eta``, the estimator's trade-off knob (larger is fairer), on the
UCI Adult data (sensitive feature ``sex``, official train/test split) for three ways
of training the same network:

* FairBiNN with its default update, the reference code's (``update_order=
  "follower_first"``, ``leader_includes_fairness_grad=True``): the follower steps
  first, and the fairness gradient left over from its backward pass also moves the
  leader, so ``eta`` weighs the penalty in the leader's step;
* ``mode="lagrangian"``: one optimiser on ``CE + eta * DP`` (the paper's baseline);
* FairBiNN as in the paper's Algorithm 1 (``update_order="leader_first",
  leader_includes_fairness_grad=False``).

With Adam, a step does not depend on the scale of the loss, and under Algorithm 1 the
follower's only loss is ``eta * DP``: there ``eta`` has no effect, and the curve stays
at the unconstrained model's demographic parity (the user guide explains why no
follower setting gives a trade-off there).

The validation split (``record_validation=True``) records per-epoch validation metrics
in ``history_``; model choices belong there, never on the test split. Here every model
is simply the last epoch's.

Set the environment variable ``SKFB_EXAMPLE_QUICK=1`` for a tiny run.
"""

# %%
import os

import matplotlib

if not os.environ.get("DISPLAY") and "inline" not in matplotlib.get_backend():
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from skfairbilevel import FairBiNNClassifier
from skfairbilevel.datasets import load_adult, make_preprocessor
from skfairbilevel.metrics import demographic_parity_difference

QUICK = os.environ.get("SKFB_EXAMPLE_QUICK", "0") == "1"

train = load_adult(sensitive="sex", split="train")
test = load_adult(sensitive="sex", split="test")
if QUICK:
    rng = np.random.default_rng(0)
    tr_rows = rng.choice(len(train.target), 1500, replace=False)
    te_rows = rng.choice(len(test.target), 1500, replace=False)
else:
    tr_rows, te_rows = slice(None), slice(None)
X_train, y_train = train.data.iloc[tr_rows], train.target.iloc[tr_rows]
X_test, y_test = test.data.iloc[te_rows], test.target.iloc[te_rows]
A_test = test.sensitive_features.iloc[te_rows]

# one-hot + scaling fitted on the training split only; "sex" stays a column (ordinal)
pre = make_preprocessor(X_train, sensitive="sex", keep_sensitive=True).fit(X_train)
Z_train, Z_test = pre.transform(X_train), pre.transform(X_test)
print(f"{Z_train.shape[0]} training rows, {Z_train.shape[1]} columns")

# %%
# The sweep
# ---------
# The estimator reads the groups from the "sex" column and drops it from its inputs
# (``drop_sensitive=True``, the default; the reference code also feeds it to the network,
# which ``drop_sensitive=False`` would do).
etas = [0.3, 30.0] if QUICK else [0.3, 1.0, 3.0, 10.0, 30.0]
common = dict(
    hidden_layer_sizes=(32, 32) if QUICK else (64, 64),
    max_epochs=4 if QUICK else 20,
    lr=1e-2 if QUICK else 1e-3,
    batch_size=100,
    sensitive_feature_ids="sex",
    record_validation=True,
    validation_fraction=0.2,
    random_state=0,
)
variants = {
    "FairBiNN (default: reference update)": dict(),
    "Lagrangian": dict(mode="lagrangian"),
    "FairBiNN (Algorithm 1)": dict(
        update_order="leader_first", leader_includes_fairness_grad=False
    ),
}


def evaluate(clf):
    pred = clf.predict(Z_test)
    return (
        float(np.mean(pred == y_test)),
        demographic_parity_difference(y_test, pred, sensitive_features=A_test),
    )


results = {}
for name, params in variants.items():
    results[name] = []
    for eta in etas:
        clf = FairBiNNClassifier(eta=eta, **params, **common).fit(Z_train, y_train)
        acc, dp = evaluate(clf)
        results[name].append((eta, acc, dp))
        print(
            f"{name:36s} eta {eta:5g}: test accuracy {acc:.3f}, DP difference {dp:.3f} "
            f"(validation: {clf.history_[-1]['val_accuracy']:.3f}, "
            f"{clf.history_[-1]['val_dp']:.3f})"
        )

# %%
# Plot
# ----
# Each point is labelled with its eta.
fig, ax = plt.subplots(figsize=(7, 5))
styles = ["o-", "s-", "^--"]
for (name, rows), style in zip(results.items(), styles, strict=True):
    knob, acc, dp = map(np.array, zip(*rows, strict=True))
    ax.plot(dp, acc, style, label=name, alpha=0.85)
    for x, y, k in zip(dp, acc, knob, strict=True):
        ax.annotate(f"{k:g}", (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7)
ax.set_xlabel("demographic parity difference on the test split (lower is fairer)")
ax.set_ylabel("test accuracy")
ax.set_title("FairBiNNClassifier on Adult (sex)")
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
fig.tight_layout()
if matplotlib.get_backend().lower() == "agg":  # not interactive: save the figure
    fig.savefig(
        os.path.join(os.environ.get("SKFB_EXAMPLE_OUT", "."), "plot_fairbinn_eta_sweep.png")
    )
else:
    plt.show()
