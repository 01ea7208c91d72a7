"""
=====================================================
Penalised fair MLP: the accuracy / parity trade-off
=====================================================

:class:`~skfairbilevel.FairMLPClassifier` adds a soft demographic-parity penalty to the
cross-entropy of a small MLP::

    min_theta  CE(f_theta)  +  fairness_weight * DP_soft(f_theta)

Sweeping ``fairness_weight`` traces the accuracy / demographic-parity trade-off on the
UCI Adult data (sensitive feature: ``sex``), evaluated on the official test split. The
weight 0 model is the plain MLP.

The sensitive column is not a model input here: the preprocessor drops it and it
reaches the estimator as ``sensitive_features``.

Set the environment variable ``SKFB_EXAMPLE_QUICK=1`` for a tiny run (a subsample, a
few epochs, three weights), as the test-suite does.
"""

# %%
import os

import matplotlib

if not os.environ.get("DISPLAY") and "inline" not in matplotlib.get_backend():
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from skfairbilevel import FairMLPClassifier
from skfairbilevel.datasets import load_adult, make_preprocessor
from skfairbilevel.metrics import demographic_parity_difference, equalized_odds_difference

QUICK = os.environ.get("SKFB_EXAMPLE_QUICK", "0") == "1"

train = load_adult(sensitive="sex", split="train")
test = load_adult(sensitive="sex", split="test")
if QUICK:  # a stratified-enough random subsample keeps the run to seconds
    rng = np.random.default_rng(0)
    tr_rows = rng.choice(len(train.target), 1500, replace=False)
    te_rows = rng.choice(len(test.target), 1500, replace=False)
else:
    tr_rows, te_rows = slice(None), slice(None)
X_train, y_train = train.data.iloc[tr_rows], train.target.iloc[tr_rows]
A_train = train.sensitive_features.iloc[tr_rows]
X_test, y_test = test.data.iloc[te_rows], test.target.iloc[te_rows]
A_test = test.sensitive_features.iloc[te_rows]

pre = make_preprocessor(X_train, sensitive="sex")  # drops "sex": the model never sees it
Z_train = pre.fit_transform(X_train)
Z_test = pre.transform(X_test)
print(f"{Z_train.shape[0]} training rows, {Z_train.shape[1]} features after one-hot")

# %%
# The sweep
# ---------
# Same seed for every weight, so the only difference between two points is the penalty.
weights = [0.0, 2.0, 10.0] if QUICK else [0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0]
epochs, lr = (8, 1e-2) if QUICK else (20, 1e-3)
rows = []
for w in weights:
    clf = FairMLPClassifier(
        hidden_layer_sizes=(64,),
        fairness="demographic_parity",
        fairness_weight=w,
        max_epochs=epochs,
        lr=lr,
        random_state=0,
    )
    clf.fit(Z_train, y_train, sensitive_features=A_train)
    pred = clf.predict(Z_test)
    rows.append(
        (
            w,
            float(np.mean(pred == y_test)),
            demographic_parity_difference(y_test, pred, sensitive_features=A_test),
            equalized_odds_difference(y_test, pred, sensitive_features=A_test),
        )
    )
    print(
        f"weight {w:5.1f}: accuracy {rows[-1][1]:.3f}  DP diff {rows[-1][2]:.3f}  "
        f"EO diff {rows[-1][3]:.3f}"
    )

# %%
# Plot
# ----
# Larger weights move the model left (smaller demographic-parity difference), usually at
# some cost in accuracy.
w, acc, dp, eo = map(np.array, zip(*rows, strict=True))
fig, ax = plt.subplots(figsize=(6.5, 4.5))
ax.plot(dp, acc, "o-", color="tab:blue", label="DP difference")
ax.plot(eo, acc, "s--", color="tab:orange", alpha=0.7, label="EO difference")
for xi, yi, wi in zip(dp, acc, w, strict=True):
    ax.annotate(f"{wi:g}", (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=8)
ax.set_xlabel("fairness gap on the test split (lower is fairer)")
ax.set_ylabel("test accuracy")
ax.set_title("FairMLPClassifier on Adult (sex): fairness_weight sweep")
ax.grid(alpha=0.3)
ax.legend()
fig.tight_layout()
if matplotlib.get_backend().lower() == "agg":  # not interactive: save the figure
    fig.savefig(os.path.join(os.environ.get("SKFB_EXAMPLE_OUT", "."), "plot_fair_mlp.png"))
else:
    plt.show()
