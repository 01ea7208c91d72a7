"""
==============================================
Comparing our estimators with fairlearn's
==============================================

:func:`skfairbilevel.compare.run_comparison` is the runner behind the command line
``python -m skfairbilevel compare``. For every method it fits each value of the
method's trade-off knob on the training rows of several seeds, chooses the operating
point for each fairness bound epsilon on the validation rows, and reports the chosen
points' test accuracy and demographic parity difference with 95% intervals over the
seeds.

This example runs it in its quick setting on the UCI Adult data (3,000 training, 1,500
validation and 3,000 test rows per seed; few epochs) for a selection of methods, plus a
method of our own (a random forest and its ``min_samples_leaf``), and draws the test
fronts with the chosen points. The full comparison (every method, every row) is
``python -m skfairbilevel compare``.

ThresholdOptimizer uses the sensitive feature at prediction time; the other methods do
not.

``SKFB_EXAMPLE_QUICK=1`` uses the small German credit data and fewer methods.
"""

# %%
import os

import matplotlib

if not os.environ.get("DISPLAY") and "inline" not in matplotlib.get_backend():
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
from sklearn.ensemble import RandomForestClassifier

from skfairbilevel.compare import Method, draw_pareto, format_table, run_comparison

QUICK = os.environ.get("SKFB_EXAMPLE_QUICK", "0") == "1"
forest = Method(
    "forest",
    RandomForestClassifier(n_estimators=50),
    knob="min_samples_leaf",
    grid=[1, 20, 200],
    description="unconstrained random forest",
)
if QUICK:
    dataset, methods, seeds = "german_credit", ["fair_mlp,gs_dp,threshold_dp,logreg", forest], 2
else:
    dataset, seeds = "adult", 3
    methods = [
        "fair_mlp,fairbinn,badr,eg_dp,gs_dp,threshold_dp,threshold_dp_hgb,"
        "adversarial,correlation_remover,logreg,hgb",
        forest,
    ]

result = run_comparison(
    dataset=dataset,
    methods=methods,
    quick=True,
    seeds=seeds,
    epsilons=(0.02, 0.05),
    n_jobs=1,
    out=None,
    progress=False,
)
print(format_table(result.summary, result.chosen, epsilon=0.05))
for note in result.notes:
    print("*", note)

# %%
# The test fronts and the chosen points
# -------------------------------------
# Each line is one method's knob swept (mean over seeds, with 95% intervals); the
# large markers are the points chosen on validation data for epsilon = 0.02 and 0.05 (the
# dotted lines).
fig, ax = plt.subplots(figsize=(10, 5.5))
draw_pareto(
    result.fronts,
    result.summary,
    ax=ax,
    title=f"{dataset} ({', '.join(result.info['sensitive'])}), quick settings, "
    f"{len(result.info['seeds'])} seeds",
)
fig.tight_layout()
if matplotlib.get_backend().lower() == "agg":  # not interactive: save the figure
    fig.savefig(os.path.join(os.environ.get("SKFB_EXAMPLE_OUT", "."), "plot_compare_fairlearn.png"))
else:
    plt.show()
