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

from . import _fairness, _regression, _scorers
from ._fairness import *  # noqa: F403  (the names of _fairness.__all__)
from ._regression import *  # noqa: F403  (the names of _regression.__all__)
from ._scorers import *  # noqa: F403  (the names of _scorers.__all__)

__all__ = _fairness.__all__ + _regression.__all__ + _scorers.__all__
