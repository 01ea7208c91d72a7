"""Bundled fairness benchmark datasets, a preprocessing recipe and a synthetic generator.

This sub-package does not import torch.

Loaders (data bundled with the package, UCI Machine Learning Repository, CC BY 4.0;
see ``data/README.md`` and each loader's ``DESCR`` for the attribution):

* :func:`load_adult` -- census income (>50K), sensitive ``sex`` / ``race``;
* :func:`load_credit_default` -- credit-card default in Taiwan, ``SEX`` / ``EDUCATION``;
* :func:`load_drug_consumption` -- drug usage classes, ``Education`` / ``Gender`` / ...;
* :func:`load_german_credit` -- good/bad credit risk, ``sex`` / ``age_group``;
* :func:`load_bank_marketing` -- term-deposit subscription, ``age_group`` / ``marital``.

Every loader returns a :class:`~sklearn.utils.Bunch` (or ``(X, y)`` with
``return_X_y=True``) whose ``data`` still holds the sensitive column(s); they are also
given as ``sensitive_features``. String columns are pandas ``category`` columns.

Tools:

* :func:`make_preprocessor` -- unfitted ColumnTransformer: one-hot + scaling, sensitive
  columns dropped (or, with ``keep_sensitive=True``, kept by name and ordinal-encoded);
* :func:`make_biased_classification` -- synthetic data with a tunable group bias;
* :func:`merge_smallest_groups` -- merge the smallest groups until ``n_groups`` remain.
"""

from ._adult import load_adult
from ._bank_marketing import load_bank_marketing
from ._credit_default import load_credit_default
from ._drug_consumption import load_drug_consumption
from ._german_credit import load_german_credit
from ._merge import merge_smallest_groups
from ._preprocess import make_preprocessor
from ._synthetic import make_biased_classification
from ._unfair2d import make_unfair_2d

__all__ = [
    "load_adult",
    "load_bank_marketing",
    "load_credit_default",
    "load_drug_consumption",
    "load_german_credit",
    "make_biased_classification",
    "make_preprocessor",
    "make_unfair_2d",
    "merge_smallest_groups",
]
