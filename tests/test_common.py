"""scikit-learn's estimator checks, with no expected-failure list, for every estimator."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skfairbilevel import all_estimators

from ._fast import fast_instance

ESTIMATORS = [fast_instance(name, cls) for name, cls in all_estimators()]


# scikit-learn's checks fit without sensitive features: every estimator then trains its
# fairness-unaware form and says so with this warning, which is expected here
@pytest.mark.filterwarnings("ignore::skfairbilevel.exceptions.NoSensitiveFeaturesWarning")
@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible(estimator, check):
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
