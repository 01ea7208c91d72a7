"""
============================================================
BADR: searching the Pareto front of group risks for fairness
============================================================

:class:`~skfairbilevel.BADRClassifier` trains a logistic model on the group-weighted risk
``sum_a lambda_a F_a(w)`` and moves the weights ``lambda`` (on the simplex) to minimise a
differentiable fairness metric of the trained model. Every ``lambda`` gives a
Pareto-efficient model for the group risks, so the search never leaves the front.

With two groups the front is a segment, ``lambda = (t, 1 - t)``, and we can scan it: here
on the credit-default data, with the ``EDUCATION`` codes merged into two groups (as BADR
does) and the individual-fairness metric of Berk et al. We plot the training metric along
the segment, where the exact solver and BADR-SGD land, and the baselines (uniform,
balanced, minimax, one group) - then compare them on the test split. The learned
weights here solve the pure bilevel problem (``score_tolerance=None``); by default the
estimator keeps them within a budget of training accuracy against uniform weights
(``score_tolerance=0.02``), its trade-off knob (see the user guide).

Set the environment variable ``SKFB_EXAMPLE_QUICK=1`` for a tiny run (a subsample, a
coarse scan, few SGD iterations), as the test-suite does.
"""

# %%
import os

import matplotlib

if not os.environ.get("DISPLAY") and "inline" not in matplotlib.get_backend():
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import train_test_split

from skfairbilevel import BADRClassifier
from skfairbilevel.datasets import load_credit_default, make_preprocessor, merge_smallest_groups

QUICK = os.environ.get("SKFB_EXAMPLE_QUICK", "0") == "1"

data = load_credit_default(sensitive="EDUCATION")
X, y = data.data, data.target.to_numpy()
A = merge_smallest_groups(data.sensitive_features, 2).to_numpy()  # 2 groups
rows = np.arange(len(y))
if QUICK:
    rows = np.random.default_rng(0).choice(rows, 2000, replace=False)
tr, te = train_test_split(rows, test_size=0.3, random_state=0, stratify=A[rows])
# EDUCATION defines the groups and is dropped from the model's inputs
pre = make_preprocessor(X.iloc[tr], sensitive="EDUCATION", categorical=["MARRIAGE"])
Z_train, Z_test = pre.fit_transform(X.iloc[tr]).to_numpy(), pre.transform(X.iloc[te]).to_numpy()
print("groups:", {g: int((A[tr] == g).sum()) for g in np.unique(A)})

# %%
# Scan the front, then solve
# --------------------------
# ``group_weights=[t, 1 - t]`` fixes lambda; ``fairness_objective_`` is the training value
# of the metric. The exact solver (implicit hypergradient + projected gradient) and
# BADR-SGD (balanced mini-batches, Hessian-vector products) learn lambda.
common = dict(fairness="individual_fairness", alpha=1e-2, score_tolerance=None)
grid = np.linspace(0, 1, 11 if QUICK else 41)
scan = [
    BADRClassifier(group_weights=[t, 1 - t], **common)
    .fit(Z_train, y[tr], sensitive_features=A[tr])
    .fairness_objective_
    for t in grid
]

exact = BADRClassifier(**common).fit(Z_train, y[tr], sensitive_features=A[tr])
# BADR-SGD starts at uniform weights here (``init="uniform"``) to show its path; its
# lambda direction is a noisy estimate, hence large batches and small lambda steps.
sgd = BADRClassifier(
    solver="sgd",
    init="uniform",
    max_iter=60 if QUICK else 300,
    batch_size=4096,
    step_w=0.5,
    step_lambda=0.1,
    random_state=0,
    **common,
)
sgd.fit(Z_train, y[tr], sensitive_features=A[tr])
baselines = {
    name: BADRClassifier(group_weights=name, **common).fit(Z_train, y[tr], sensitive_features=A[tr])
    for name in ("uniform", "balanced", "minimax", "one_group")
}

models = {"BADR exact": exact, "BADR-SGD": sgd, **baselines}
for name, model in models.items():
    test_metric = model.fairness_objective(Z_test, y[te], sensitive_features=A[te])
    print(
        f"{name:11s} lambda_0 {model.group_weights_[0]:.3f}  train IF "
        f"{model.fairness_objective_:.4f}  test IF {test_metric:.4f}  test accuracy "
        f"{model.score(Z_test, y[te]):.4f}"
    )

# %%
# Plot
# ----
# Left: the training metric along the front and the chosen weights. Right: lambda_0 over
# the BADR-SGD iterations (the refit uses the average of the second half).
fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
ax.plot(grid, scan, "-", color="0.6", label="fixed lambda = (t, 1 - t)")
markers = dict(zip(models, ["*", "P", "o", "s", "^", "v"], strict=True))
for name, model in models.items():
    ax.plot(
        model.group_weights_[0],
        model.fairness_objective_,
        markers[name],
        markersize=12 if name.startswith("BADR") else 8,
        label=name,
    )
ax.set_xlabel("lambda_0 (weight of the first group)")
ax.set_ylabel("individual unfairness (training)")
ax.set_title("The Pareto front of the two group risks")
ax.legend(fontsize=8)
ax2.plot([h["lambda_0"] for h in sgd.history_], color="tab:orange", label="BADR-SGD")
ax2.axhline(exact.group_weights_[0], color="tab:blue", ls="--", label="exact")
ax2.set_xlabel("iteration")
ax2.set_ylabel("lambda_0")
ax2.set_title("BADR-SGD iterates")
ax2.legend(fontsize=8)
fig.tight_layout()
if matplotlib.get_backend().lower() == "agg":  # not interactive: save the figure
    fig.savefig(os.path.join(os.environ.get("SKFB_EXAMPLE_OUT", "."), "plot_badr.png"))
else:
    plt.show()
