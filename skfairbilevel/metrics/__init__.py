"""Fairness metrics and scikit-learn scorers (numpy / pandas / fairlearn; no torch).

Every argument may be a list, a numpy array or a pandas, polars or pyarrow series /
dataframe.

Classification metrics
----------------------
- fairlearn-compatible differences (delegate to fairlearn for binary targets, one-vs-rest
  maximum for multi-class): :func:`demographic_parity_difference`,
  :func:`equalized_odds_difference`, :func:`equal_opportunity_difference`;
- :func:`accuracy_parity_difference` (BiFP), :func:`soft_demographic_parity_difference`
  (on probabilities), :func:`sufficiency_gap` (FACIMS calibration-curve gap);
- signed two-group gaps (Fast & Fair): :func:`independence_gap`, :func:`separation_gap`,
  :func:`predictive_parity_gap`;
- :func:`fairness_report`: per-group table, overall values and the scalar summary.

Regression metrics
------------------
- demographic parity for regression: :func:`mean_prediction_difference`,
  :func:`mean_prediction_ratio` (group mean predictions);
- bounded group loss: :func:`bounded_group_loss` (largest group MSE or MAE),
  :func:`group_loss_difference`, :func:`group_loss_ratio`.

Model selection
---------------
- :func:`make_fairness_scorer`: routing-aware scorers (metadata routing on: requests
  ``sensitive_features``; off: reads ``sensitive_feature_ids`` columns of X);
- :func:`fairness_constrained_refit`: ``GridSearchCV(refit=...)`` rule "best objective
  subject to a fairness bound".
"""

from ._fairness import (
    FairnessReport,
    accuracy_parity_difference,
    demographic_parity_difference,
    equal_opportunity_difference,
    equalized_odds_difference,
    fairness_report,
    independence_gap,
    predictive_parity_gap,
    separation_gap,
    soft_demographic_parity_difference,
    sufficiency_gap,
)
from ._regression import (
    bounded_group_loss,
    group_loss_difference,
    group_loss_ratio,
    mean_prediction_difference,
    mean_prediction_ratio,
)
from ._scorers import FairnessScorer, fairness_constrained_refit, make_fairness_scorer

__all__ = [
    "demographic_parity_difference",
    "equalized_odds_difference",
    "equal_opportunity_difference",
    "accuracy_parity_difference",
    "soft_demographic_parity_difference",
    "sufficiency_gap",
    "independence_gap",
    "separation_gap",
    "predictive_parity_gap",
    "fairness_report",
    "FairnessReport",
    "mean_prediction_difference",
    "mean_prediction_ratio",
    "bounded_group_loss",
    "group_loss_difference",
    "group_loss_ratio",
    "make_fairness_scorer",
    "FairnessScorer",
    "fairness_constrained_refit",
]
