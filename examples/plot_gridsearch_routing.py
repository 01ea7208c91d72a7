"""
=================================================================
GridSearchCV + Pipeline with fairness scorers, routing on and off
=================================================================

A fairness metric needs the sensitive features ``A`` of the rows it scores. There are two
ways to get them through :class:`~sklearn.model_selection.GridSearchCV` and a
:class:`~sklearn.pipeline.Pipeline`:

1. **metadata routing on** (``sklearn.set_config(enable_metadata_routing=True)`` or a
   ``config_context``): pass ``sensitive_features=A`` to ``search.fit``. Our estimators
   request it for ``fit`` and the scorers of
   :func:`~skfairbilevel.metrics.make_fairness_scorer` request it for ``score`` by
   default, so every fold gets its slice, through the Pipeline;
2. **routing off**: keep ``A`` as a column of ``X``. The preprocessor keeps the column
   (ordinal-encoded, under its own name), the estimator finds it with
   ``sensitive_feature_ids="sex"`` (and drops it from its inputs) and the scorer reads
   it from the raw ``X`` of the test fold.

Both give a valid search of ``fairness_weight`` of
:class:`~skfairbilevel.FairMLPClassifier`. The refit rule
:func:`~skfairbilevel.metrics.fairness_constrained_refit` picks the most accurate
candidate whose mean demographic-parity difference is at most 0.05.

Last, fairlearn's own ``ExponentiatedGradient`` cannot be used in ``GridSearchCV`` with
routing on (its ``fit(**kwargs)`` cannot request ``A``), while the wrapper
:class:`~skfairbilevel.baselines.ExponentiatedGradientClassifier` can.

``SKFB_EXAMPLE_QUICK=1`` runs a tiny version.
"""

# %%
import os

import matplotlib

if not os.environ.get("DISPLAY") and "inline" not in matplotlib.get_backend():
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import sklearn
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline

from skfairbilevel import FairMLPClassifier
from skfairbilevel.baselines import ExponentiatedGradientClassifier
from skfairbilevel.datasets import load_adult, make_preprocessor
from skfairbilevel.metrics import fairness_constrained_refit, make_fairness_scorer

QUICK = os.environ.get("SKFB_EXAMPLE_QUICK", "0") == "1"
n_rows = 800 if QUICK else 6000
weights = [0.0, 5.0] if QUICK else [0.0, 1.0, 3.0, 10.0, 30.0]
mlp = dict(
    hidden_layer_sizes=(32,),
    fairness="demographic_parity",
    lr=1e-2,
    max_epochs=3 if QUICK else 15,
    batch_size=128,
    random_state=0,
)

bunch = load_adult(sensitive="sex", split="train")
rows = np.random.default_rng(0).choice(len(bunch.target), n_rows, replace=False)
X = bunch.data.iloc[rows].reset_index(drop=True)
y = bunch.target.iloc[rows].reset_index(drop=True)
A = bunch.sensitive_features.iloc[rows].reset_index(drop=True)
cv = StratifiedKFold(2 if QUICK else 3, shuffle=True, random_state=0)
refit = fairness_constrained_refit("acc", "dp", 0.05)

# %%
# Routing on: ``sensitive_features`` flows to the estimator and the scorer
# --------------------------------------------------------------------------
with sklearn.config_context(enable_metadata_routing=True):
    pipe = make_pipeline(
        make_preprocessor(X, sensitive="sex"), FairMLPClassifier(**mlp)  # drops "sex"
    )
    scoring = {"acc": "accuracy", "dp": make_fairness_scorer("demographic_parity_difference")}
    on = GridSearchCV(
        pipe, {"fairmlpclassifier__fairness_weight": weights}, scoring=scoring, refit=refit, cv=cv
    )
    on.fit(X, y, sensitive_features=A)
print("routing on,  chosen:", on.best_params_)

# %%
# Routing off: the sensitive column stays in ``X``
# -------------------------------------------------
# ``make_preprocessor`` passes ``sex`` through (0 = Female, 1 = Male) under its own name;
# the estimator reads it and removes it from its inputs (``drop_sensitive=True``).
pipe = make_pipeline(
    make_preprocessor(X, sensitive="sex", keep_sensitive=True),
    FairMLPClassifier(sensitive_feature_ids="sex", **mlp),
)
scoring = {
    "acc": "accuracy",
    "dp": make_fairness_scorer("demographic_parity_difference", sensitive_feature_ids="sex"),
}
off = GridSearchCV(
    pipe, {"fairmlpclassifier__fairness_weight": weights}, scoring=scoring, refit=refit, cv=cv
)
off.fit(X, y)
print("routing off, chosen:", off.best_params_)

# %%
# fairlearn's reductions in GridSearchCV
# --------------------------------------
# With routing on, fairlearn's ``ExponentiatedGradient`` never receives ``A`` (it cannot
# request it), so the fit fails; the wrapper requests it and makes its randomised
# predictions reproducible from ``random_state``.
from fairlearn.reductions import DemographicParity, ExponentiatedGradient  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

Xn = make_preprocessor(X, sensitive="sex").fit_transform(X)
with sklearn.config_context(enable_metadata_routing=True):
    try:
        GridSearchCV(
            ExponentiatedGradient(LogisticRegression(), DemographicParity()),
            {"eps": [0.01]},
            scoring="accuracy",
            cv=cv,
        ).fit(Xn, y, sensitive_features=A)
    except (TypeError, ValueError) as exc:
        print("fairlearn ExponentiatedGradient:", type(exc).__name__, str(exc)[:200])
    eg = GridSearchCV(
        ExponentiatedGradientClassifier(max_iter=5 if QUICK else 30, random_state=0),
        {"difference_bound": [0.05] if QUICK else [0.005, 0.02, 0.05, 0.1]},
        scoring={"acc": "accuracy", "dp": make_fairness_scorer("demographic_parity_difference")},
        refit="acc",
        cv=cv,
    ).fit(Xn, y, sensitive_features=A)


def summary(search, name):
    res = pd.DataFrame(search.cv_results_)
    return pd.DataFrame(
        {
            "search": name,
            "params": res["params"].astype(str),
            "accuracy": res["mean_test_acc"],
            "dp_difference": -res["mean_test_dp"],
        }
    )


table = pd.concat(
    [
        summary(on, "FairMLP, routing on"),
        summary(off, "FairMLP, routing off"),
        summary(eg, "EG wrapper, routing on"),
    ],
    ignore_index=True,
)
print(table.to_string(index=False, float_format="%.3f"))

# %%
# Plot: mean cross-validated accuracy against mean DP difference
# --------------------------------------------------------------
# The two FairMLP searches see the same rows, folds and model inputs (only the column
# order differs), so their curves nearly coincide.
fig, ax = plt.subplots(figsize=(6.5, 4.5))
for (name, sub), marker in zip(table.groupby("search", sort=False), "os^", strict=True):
    ax.plot(sub["dp_difference"], sub["accuracy"], marker=marker, ls="-", alpha=0.8, label=name)
ax.axvline(0.05, color="k", lw=0.8, ls=":", label="refit bound 0.05")
ax.set_xlabel("mean CV demographic parity difference")
ax.set_ylabel("mean CV accuracy")
ax.set_title("GridSearchCV with fairness scorers on Adult (sex)")
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
fig.tight_layout()
if matplotlib.get_backend().lower() == "agg":  # not interactive: save the figure
    fig.savefig(
        os.path.join(os.environ.get("SKFB_EXAMPLE_OUT", "."), "plot_gridsearch_routing.png")
    )
else:
    plt.show()
