"""
==============================================
Comparing our estimators with fairlearn's
==============================================

:func:`skfairbilevel.compare.run_comparison` is the function behind the command line
``python -m skfairbilevel compare``. It fits every method on the same split of a
bundled dataset with the same preprocessing and reports accuracy, balanced accuracy,
demographic parity difference, equalized odds difference, sufficiency gap and fit time.

This example runs it in its quick setting on the UCI Adult data (3,000 training and
3,000 test rows drawn from the official split; few epochs), for a selection of
methods, and draws the accuracy / demographic-parity plane with the Pareto front.
The full comparison (all methods, all rows) is ``python -m skfairbilevel compare``.

ThresholdOptimizer (diamond marker) uses the sensitive feature at prediction time; the
other methods do not.

``SKFB_EXAMPLE_QUICK=1`` uses the small German credit data and fewer methods.
"""

# %%
import os

import matplotlib

if not os.environ.get("DISPLAY") and "inline" not in matplotlib.get_backend():
    matplotlib.use("Agg")
import matplotlib.pyplot as plt

from skfairbilevel.compare import draw_pareto, format_table, run_comparison

QUICK = os.environ.get("SKFB_EXAMPLE_QUICK", "0") == "1"
if QUICK:
    dataset, methods = "german_credit", "fair_mlp,badr,gs_dp,threshold_dp,logreg"
else:
    dataset = "adult"
    methods = ("fair_mlp,fairbinn,badr,eg_dp,eg_eo,gs_dp,threshold_dp,threshold_eo,"
               "adversarial,correlation_remover,logreg,mlp")

result = run_comparison(dataset=dataset, methods=methods, quick=True, seed=0, out=None,
                        progress=False)
print(format_table(result.table, "demographic_parity"))
for note in result.notes:
    print("*", note)

# %%
# The accuracy / demographic-parity plane
# ---------------------------------------
# A point on the black staircase is not beaten on both axes by any other method.
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
draw_pareto(result.table, "demographic_parity", ax=axes[0], title="demographic parity",
            legend=False)
draw_pareto(result.table, "equalized_odds", ax=axes[1], title="equalized odds")
fig.suptitle(f"{dataset} ({', '.join(result.info['sensitive'])}), quick settings, "
             f"{result.info['n_train']} training rows")
fig.tight_layout()
if matplotlib.get_backend().lower() == "agg":  # not interactive: save the figure
    fig.savefig(os.path.join(os.environ.get("SKFB_EXAMPLE_OUT", "."),
                             "plot_compare_fairlearn.png"))
else:
    plt.show()
