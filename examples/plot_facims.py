"""
==================================================================
FACIMS: class imbalance on small subgroups (drug consumption data)
==================================================================

:class:`~skfairbilevel.FACIMSClassifier` learns a global Bayesian network (a diagonal
Gaussian over its weights) together with one local distribution per sensitive group and
the parameters of a vector-scaling loss, by tri-level optimisation: each group's
distribution fits that group's rows under a sharpness-aware, class-weighted loss while
staying close to the global one; the global distribution minimises a class-balanced
loss on a validation split plus its distance to the group solutions (implicit
gradient).

The data: alcohol use of 1,885 respondents in four classes (34 / 102 / 1,244 / 505:
heavily imbalanced), sensitive feature education (seven groups, 89 to 506 rows). We
compare FACIMS with balanced ERM (the same network without the Bayesian and group
machinery, trained with class weights) on a 30 % stratified test split: balanced
accuracy per education group, and the sufficiency gap (distance between the groups'
calibration curves and the overall one).

Set the environment variable ``SKFB_EXAMPLE_QUICK=1`` for a tiny run (a small network
and two epochs), as the test-suite does.
"""

# %%
import os
import warnings

import matplotlib

if not os.environ.get("DISPLAY") and "inline" not in matplotlib.get_backend():
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skfairbilevel import FACIMSClassifier, FairMLPClassifier
from skfairbilevel.datasets import load_drug_consumption
from skfairbilevel.metrics import sufficiency_gap

QUICK = os.environ.get("SKFB_EXAMPLE_QUICK", "0") == "1"

bunch = load_drug_consumption(target="Alcohol", sensitive="Education", n_classes=4, decode=False)
features = ["Age", "Gender", "Nscore", "Escore", "Oscore", "Ascore", "Cscore", "Impulsive", "SS"]
X = bunch.data[features].to_numpy(dtype=np.float64)
y = bunch.target.to_numpy()
# education labels, with the four "left school at ..." levels merged into two groups
education = load_drug_consumption(n_classes=4).data["Education"].astype(str)
merge = {
    "left school before 16": "<=16",
    "left at 16": "<=16",
    "left at 17": "17-18",
    "left at 18": "17-18",
}
A = education.map(lambda v: merge.get(v, v)).to_numpy()

X_tr, X_te, y_tr, y_te, A_tr, A_te = train_test_split(
    X, y, A, test_size=0.3, stratify=y, random_state=0
)
scaler = StandardScaler().fit(X_tr)
X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
print(f"{len(y_tr)} training rows, class counts {np.bincount(y_tr).tolist()}")

# %%
# Fit FACIMS and balanced ERM
# ---------------------------
# Same architecture for both. FACIMS holds out 30 % of its training rows (stratified by
# group and class) for the upper level; the balanced ERM trains on all of them.
if QUICK:
    hidden, epochs, extra = (16,), 2, dict(inner_steps=2, outer_steps=1, neumann_terms=2)
else:
    hidden, epochs, extra = (400, 200, 100), 50, {}
facims = FACIMSClassifier(hidden_layer_sizes=hidden, max_epochs=epochs, random_state=0, **extra)
facims.fit(X_tr, y_tr, sensitive_features=A_tr)
berm = FairMLPClassifier(
    hidden_layer_sizes=hidden,
    activation="elu",
    class_weight="balanced",
    batch_size=50,
    max_epochs=epochs,
    random_state=0,
)
berm.fit(X_tr, y_tr)

groups = np.unique(A_te)
results = {}
for name, model in [("balanced ERM", berm), ("FACIMS", facims)]:
    proba = model.predict_proba(X_te)
    pred = model.classes_[proba.argmax(1)]
    with warnings.catch_warnings():  # a group's test rows may miss a rare class
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        per_group = [balanced_accuracy_score(y_te[A_te == g], pred[A_te == g]) for g in groups]
    results[name] = dict(
        bacc=balanced_accuracy_score(y_te, pred),
        per_group=per_group,
        sg=sufficiency_gap(y_te, proba, sensitive_features=A_te),
    )
    print(
        f"{name:13s} balanced accuracy {results[name]['bacc']:.3f}  "
        f"sufficiency gap {results[name]['sg']:.3f}"
    )
print(
    "learned VS-loss scale",
    np.round(facims.loss_scale_, 3),
    "shift",
    np.round(facims.loss_shift_, 3),
)

# %%
# Plot
# ----
# Left: balanced accuracy within each education group (groups without all four classes
# in the test split use the classes present). Right: FACIMS's upper-level validation
# loss and the mean divergence between the group distributions and the global one, per
# epoch.
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
pos = np.arange(len(groups))
for k, (name, res) in enumerate(results.items()):
    ax1.bar(
        pos + (k - 0.5) * 0.38,
        res["per_group"],
        width=0.38,
        label=f"{name} (all: {res['bacc']:.3f}, SG {res['sg']:.3f})",
    )
ax1.set_xticks(pos, groups, rotation=30, ha="right", fontsize=8)
ax1.set_ylabel("balanced accuracy (test)")
ax1.set_title("Per education group")
ax1.legend(fontsize=8)
epochs_run = [h["epoch"] for h in facims.history_]
ax2.plot(epochs_run, [h["val_loss"] for h in facims.history_], "o-", label="val loss")
ax2b = ax2.twinx()
ax2b.plot(
    epochs_run,
    [h["divergence"] for h in facims.history_],
    "s--",
    color="tab:orange",
    label="mean divergence",
)
ax2.set_xlabel("epoch")
ax2.set_ylabel("balanced validation loss")
ax2b.set_ylabel("mean W2 divergence")
ax2.set_title("FACIMS training")
ax2.legend(loc="upper left", fontsize=8)
ax2b.legend(loc="upper right", fontsize=8)
fig.tight_layout()
if matplotlib.get_backend().lower() == "agg":  # not interactive: save the figure
    fig.savefig(os.path.join(os.environ.get("SKFB_EXAMPLE_OUT", "."), "plot_facims.png"))
else:
    plt.show()
