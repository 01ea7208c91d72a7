"""scikit-learn's estimator checks, with no expected-failure list, for every estimator:
with the small settings of ``tests/_fast.py`` and with the default parameters."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skfairbilevel import all_estimators

from ._fast import fast_instance

ESTIMATORS = [fast_instance(name, cls) for name, cls in all_estimators()]

#: estimators whose default fit is too slow for the CI budget: scikit-learn's checks fit
#: about 80 times, and FACIMS's default (400, 200, 100) network with 5 weight samples,
#: 50 epochs of 10 inner and 5 outer steps takes 15-60 s per fit on 2 cores (over 20
#: minutes in all); they run with -m slow
SLOW_AT_DEFAULTS = {"FACIMSClassifier"}
DEFAULTS = [cls() for name, cls in all_estimators() if name not in SLOW_AT_DEFAULTS]
DEFAULTS_SLOW = [cls() for name, cls in all_estimators() if name in SLOW_AT_DEFAULTS]

# scikit-learn's checks fit without sensitive features: every estimator then trains its
# fairness-unaware form and says so with this warning, which is expected here
no_groups_warning = pytest.mark.filterwarnings(
    "ignore::skfairbilevel.exceptions.NoSensitiveFeaturesWarning"
)


@no_groups_warning
@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.defaults
@no_groups_warning
@parametrize_with_checks(DEFAULTS)
def test_sklearn_compatible_at_defaults(estimator, check):
    check(estimator)


@pytest.mark.slow
@no_groups_warning
@parametrize_with_checks(DEFAULTS_SLOW)
def test_sklearn_compatible_at_defaults_slow(estimator, check):
    check(estimator)


def test_every_estimator_is_listed():
    names = {name for name, _ in all_estimators()}
    assert "FairMLPClassifier" in names


@pytest.mark.parametrize("name_cls", all_estimators(), ids=lambda nc: nc[0])
def test_requests_sensitive_features_by_default(name_cls):
    import sklearn

    name, cls = name_cls
    with sklearn.config_context(enable_metadata_routing=True):
        routing = cls().get_metadata_routing()
        assert routing.fit.requests["sensitive_features"] is True
