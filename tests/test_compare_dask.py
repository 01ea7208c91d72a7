"""The runner and scikit-learn's model selection on a Dask cluster (two worker processes).

The cluster is a ``distributed.LocalCluster`` started and closed inside the module; its
workers are separate processes, as on a real cluster, so the global configuration
(metadata routing) must travel with each task.
"""

import logging

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.model_selection import GridSearchCV, StratifiedKFold

distributed = pytest.importorskip("distributed")
joblib = pytest.importorskip("joblib")

from skfairbilevel import FairMLPClassifier  # noqa: E402
from skfairbilevel.compare import run_comparison  # noqa: E402
from skfairbilevel.datasets import make_biased_classification  # noqa: E402
from skfairbilevel.metrics import make_fairness_scorer  # noqa: E402

from .test_compare import _table_frame  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    ) as c:
        yield c


def test_runner_on_a_dask_cluster_gives_the_numbers_of_one_process(cluster):
    kwargs = dict(
        data=_table_frame(400, seed=1),
        target="label",
        sensitive="gender",
        positive="yes",
        methods="logreg,fair_mlp,threshold_dp",
        seeds=1,
        quick=True,
        progress=False,
        out=None,
    )
    local = run_comparison(n_jobs=1, **kwargs)
    remote = run_comparison(scheduler=cluster.scheduler_address, **kwargs)
    assert remote.info["fits_run"] == local.info["fits_run"] == 1 + 3 + 5
    pd.testing.assert_frame_equal(
        local.runs.drop(columns="fit_seconds"), remote.runs.drop(columns="fit_seconds")
    )


def test_gridsearchcv_with_routing_on_a_dask_cluster_equals_one_process(cluster):
    X, y, A = make_biased_classification(300, 4, bias=1.5, random_state=0)
    est = FairMLPClassifier(
        (8,), fairness="demographic_parity", max_epochs=20, lr=1e-2, random_state=0
    )
    grid = {"fairness_weight": [0.0, 20.0]}
    scoring = {"acc": "accuracy", "dp": make_fairness_scorer("demographic_parity_difference")}
    cv = StratifiedKFold(3, shuffle=True, random_state=0)

    def search(n_jobs):
        with sklearn.config_context(enable_metadata_routing=True):
            gs = GridSearchCV(est, grid, scoring=scoring, refit="acc", cv=cv, n_jobs=n_jobs)
            return gs.fit(X, y, sensitive_features=A)

    one = search(1)
    with distributed.Client(cluster.scheduler_address), joblib.parallel_config(backend="dask"):
        many = search(-1)
    for key, value in one.cv_results_.items():
        if "time" in key:
            continue
        if not isinstance(value, np.ndarray) or value.dtype == object:
            assert list(value) == list(many.cv_results_[key]), key
        else:
            np.testing.assert_array_equal(value, many.cv_results_[key], err_msg=key)
    # the fairness scorer saw the routed groups: the weight lowers the parity gap
    assert one.cv_results_["mean_test_dp"][1] > one.cv_results_["mean_test_dp"][0]
