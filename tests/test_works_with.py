"""What ``doc/works_with.rst`` promises, for every estimator.

scikit-learn's model selection, calibration and ensembles and fairlearn's
post-processing, reductions and MetricFrame around our estimators, with metadata routing
(the sensitive features reach every inner fit, sliced like X); ColumnTransformer with
sparse and dense one-hot output; polars through ``set_output``; the two upstream
issues of the page (StackingClassifier's final estimator, fairlearn's ThresholdOptimizer
with float32 pandas data) and their workarounds.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    BaggingClassifier,
    BaggingRegressor,
    StackingClassifier,
    VotingClassifier,
    VotingRegressor,
)
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, HalvingGridSearchCV, RandomizedSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import skfairbilevel.base as base
from skfairbilevel import all_estimators
from skfairbilevel.metrics import (
    bounded_group_loss,
    demographic_parity_difference,
    make_fairness_scorer,
)

from ._fast import fast_instance

IDS = [name for name, _ in all_estimators()]
CLASSIFIERS = [(n, c) for n, c in all_estimators() if not n.endswith("Regressor")]
#: fewer iterations than tests/_fast.py: these tests fit many times
TINY = {"max_epochs": 2, "pretrain_epochs": 2, "finetune_epochs": 1, "max_iter": 5}


def tiny(name, cls, **params):
    own = cls().get_params()
    return fast_instance(name, cls, **{k: v for k, v in TINY.items() if k in own}, **params)


def group_of(X):
    """The sensitive feature is a function of the row, so each fit's A can be checked."""
    return np.where(np.asarray(X)[:, 0] > 0, "b", "a")


def data(name, n=160, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    A = group_of(X)
    y = (X[:, 1] + (A == "b") + rng.normal(0, 0.5, n) > 0.5).astype(int)
    if name.endswith("Regressor"):
        y = X[:, 1] + (A == "b") + rng.normal(0, 0.1, n)
    return X, y, A


@pytest.fixture
def fits(monkeypatch):
    """Every fit of one of our estimators: (rows of X, its sensitive features)."""
    seen = []
    fit = base.BaseFairEstimator.fit

    def spy(self, X, y, *, sensitive_features=None, **kwargs):
        seen.append((np.asarray(X), sensitive_features))
        return fit(self, X, y, sensitive_features=sensitive_features, **kwargs)

    monkeypatch.setattr(base.BaseFairEstimator, "fit", spy)
    return seen


def assert_routed(fits, n_fits=None):
    """Each inner fit got the sensitive features of its own rows."""
    assert fits and (n_fits is None or len(fits) == n_fits)
    for X, A in fits:
        assert A is not None and len(A) == len(X)
        assert_array_equal(np.asarray(A), group_of(X))


def scorers(name):
    if name.endswith("Regressor"):
        return {"r2": "r2", "bgl": make_fairness_scorer("bounded_group_loss")}
    return {"acc": "accuracy", "dp": make_fairness_scorer("demographic_parity_difference")}


# ---------------------------------------------------------------- model selection
@pytest.mark.parametrize("name, cls", all_estimators(), ids=IDS)
def test_grid_randomized_and_halving_search_route_sensitive_features(name, cls, fits):
    X, y, A = data(name)
    refit = "r2" if name.endswith("Regressor") else "acc"
    grid = {"random_state": [0, 1]}
    with sklearn.config_context(enable_metadata_routing=True):
        searches = [
            GridSearchCV(tiny(name, cls), grid, scoring=scorers(name), refit=refit, cv=2),
            RandomizedSearchCV(
                tiny(name, cls), grid, n_iter=2, scoring=scorers(name), refit=refit, cv=2
            ),
            HalvingGridSearchCV(tiny(name, cls), grid, factor=2, cv=2, min_resources=80),
        ]
        for search in searches:
            fits.clear()
            search.fit(X, y, sensitive_features=A)
            assert_routed(fits)
            assert list(search.best_estimator_.groups_) == ["a", "b"]
    # the fairness score of a candidate is the metric on its held-out fold
    cv = searches[0].cv_results_
    assert np.all(np.isfinite(cv["mean_test_" + list(scorers(name))[1]]))


# ---------------------------------------------------------------- calibration, ensembles
@pytest.mark.parametrize("name, cls", CLASSIFIERS, ids=[n for n, _ in CLASSIFIERS])
def test_calibrated_classifier_cv(name, cls, fits):
    X, y, A = data(name)
    for method in ("sigmoid", "isotonic"):
        with sklearn.config_context(enable_metadata_routing=True):
            fits.clear()
            cal = CalibratedClassifierCV(tiny(name, cls), method=method, cv=2)
            cal.fit(X, y, sensitive_features=A)
        assert_routed(fits, n_fits=2)
        proba = cal.predict_proba(X)
        assert proba.shape == (len(X), 2)
        assert_allclose(proba.sum(1), 1.0)
        # calibration reads the estimator's decision_function
        inner = cal.calibrated_classifiers_[0]
        assert hasattr(inner.estimator, "decision_function")


@pytest.mark.parametrize("name, cls", all_estimators(), ids=IDS)
def test_bagging_and_voting(name, cls, fits):
    X, y, A = data(name)
    regressor = name.endswith("Regressor")
    Bagging, Voting = (
        (BaggingRegressor, VotingRegressor)
        if regressor
        else (
            BaggingClassifier,
            VotingClassifier,
        )
    )
    members = [("a", tiny(name, cls)), ("b", tiny(name, cls, random_state=1))]
    voting = Voting(members) if regressor else Voting(members, voting="soft")
    with sklearn.config_context(enable_metadata_routing=True):
        for meta in (Bagging(tiny(name, cls), n_estimators=2, random_state=0), voting):
            fits.clear()
            meta.fit(X, y, sensitive_features=A)
            assert_routed(fits, n_fits=2)
            assert meta.predict(X).shape == (len(X),)
    # soft voting averages the members' probabilities
    if not regressor:
        mean = np.mean([m.predict_proba(X) for m in voting.estimators_], axis=0)
        assert_allclose(voting.predict_proba(X), mean)


def test_stacking_classifier_passes_routed_parameters_to_its_final_estimator():
    """scikit-learn 1.9 passes every fit parameter to the final estimator, requested or
    not: a LogisticRegression there fails. Workarounds: one of our estimators as final
    estimator (it takes the sensitive features), or routing off with the column named."""
    from skfairbilevel import BADRClassifier, FairMLPClassifier

    X, y, A = data("FairMLPClassifier")
    members = [("mlp", tiny("FairMLPClassifier", FairMLPClassifier)), ("lr", LogisticRegression())]
    with sklearn.config_context(enable_metadata_routing=True):
        stack = StackingClassifier(members, final_estimator=LogisticRegression(), cv=2)
        with pytest.raises(TypeError, match="unexpected keyword argument 'sensitive_features'"):
            stack.fit(X, y, sensitive_features=A)
        stack = StackingClassifier(members, final_estimator=BADRClassifier(), cv=2)
        stack.fit(X, y, sensitive_features=A)
        assert list(stack.final_estimator_.groups_) == ["a", "b"]
    # routing off: the group column stays in X, named by the estimators that use it
    Xa = pd.DataFrame(X, columns=["x0", "x1", "x2", "x3"]).assign(group=A)
    members = [
        ("mlp", tiny("FairMLPClassifier", FairMLPClassifier, sensitive_feature_ids="group")),
        ("badr", BADRClassifier(sensitive_feature_ids="group")),
    ]
    stack = StackingClassifier(members, final_estimator=LogisticRegression(), cv=2)
    stack.fit(Xa, y)
    assert stack.predict(Xa).shape == (len(X),)
    assert list(stack.named_estimators_["badr"].groups_) == ["a", "b"]


# ---------------------------------------------------------------- fairlearn
@pytest.mark.parametrize("name, cls", CLASSIFIERS, ids=[n for n, _ in CLASSIFIERS])
def test_fairlearn_threshold_optimizer_metric_frame_exponentiated_gradient(name, cls):
    from fairlearn.metrics import MetricFrame, selection_rate
    from fairlearn.postprocessing import ThresholdOptimizer
    from fairlearn.reductions import DemographicParity, ExponentiatedGradient

    X, y, A = data(name)
    Xf = pd.DataFrame(X.astype(np.float32), columns=["x0", "x1", "x2", "x3"])
    est = tiny(name, cls).fit(Xf, y, sensitive_features=A)
    post = ThresholdOptimizer(
        estimator=est, constraints="demographic_parity", prefit=True, predict_method="predict_proba"
    )
    post.fit(Xf, y, sensitive_features=A)
    pred = post.predict(Xf, sensitive_features=A, random_state=0)  # float32 pandas X
    frame = MetricFrame(
        metrics=selection_rate, y_true=y, y_pred=pred, sensitive_features=pd.Series(A)
    )
    # MetricFrame and our metric agree, and the post-processing equalises selection
    assert frame.difference() == pytest.approx(
        demographic_parity_difference(y, pred, sensitive_features=A)
    )
    before = demographic_parity_difference(y, est.predict(Xf), sensitive_features=A)
    assert frame.difference() <= max(before, 0.1)
    # a reduction around our estimator: fairlearn re-weights the rows; the inner model is
    # told that it gets no sensitive features (no warning)
    with sklearn.config_context(enable_metadata_routing=True):
        inner = tiny(name, cls).set_fit_request(sensitive_features=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        reduction = ExponentiatedGradient(inner, DemographicParity(), max_iter=3)
        reduction.fit(X, y, sensitive_features=A)
    assert set(np.unique(reduction.predict(X))) <= {0, 1}


def test_threshold_optimizer_float32_pandas_issue_and_workaround():
    """fairlearn 0.15 under pandas 3: ThresholdOptimizer.predict fails when the base
    model's scores are float32 (LogisticRegression on float32 X); float64 scores work,
    which is what our estimators return, and what float64 X gives LogisticRegression."""
    from fairlearn.postprocessing import ThresholdOptimizer

    X, y, A = data("FairMLPClassifier")
    Xf = pd.DataFrame(X.astype(np.float32), columns=["x0", "x1", "x2", "x3"])
    post = ThresholdOptimizer(
        estimator=LogisticRegression(),
        constraints="demographic_parity",
        predict_method="predict_proba",
    )
    post.fit(Xf, y, sensitive_features=A)
    if int(pd.__version__.split(".")[0]) >= 3:
        with pytest.raises(TypeError, match="Invalid value"):
            post.predict(Xf, sensitive_features=A, random_state=0)
    workaround = post.predict(Xf.astype(np.float64), sensitive_features=A, random_state=0)
    assert workaround.shape == (len(X),)
    # the workaround of the baselines and the runner: float64 scores from the base model
    from skfairbilevel.baselines import float64_scores

    wrapped = ThresholdOptimizer(
        estimator=float64_scores(LogisticRegression()),
        constraints="demographic_parity",
        predict_method="predict_proba",
    ).fit(Xf, y, sensitive_features=A)
    pred = wrapped.predict(Xf, sensitive_features=A, random_state=0)
    assert set(np.unique(pred)) <= {0, 1}
    assert np.mean(pred == workaround) > 0.95  # the same model, up to float32 scores


# ---------------------------------------------------------------- preprocessing
def _mixed_frame(n=160, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "x0": rng.normal(size=n),
            "x1": rng.normal(size=n),
            "job": rng.choice(["a", "b", "c", "d"], n),
            "city": rng.choice(["p", "q"], n),
        }
    )
    A = np.where(X["x0"] > 0, "b", "a")
    y = ((X["x1"] + (X["job"] == "a") + rng.normal(0, 0.5, n)) > 0.3).astype(int).to_numpy()
    return X, y, A


def _column_transformer(sparse_output):
    return ColumnTransformer(
        [
            ("cat", OneHotEncoder(sparse_output=sparse_output), ["job", "city"]),
            ("num", StandardScaler(), ["x0", "x1"]),
        ],
        sparse_threshold=1.0 if sparse_output else 0.0,
    )


@pytest.mark.parametrize("name, cls", all_estimators(), ids=IDS)
def test_pipeline_with_dense_column_transformer(name, cls):
    X, y, A = _mixed_frame()
    if name.endswith("Regressor"):
        y = X["x1"].to_numpy() + y
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_pipeline(_column_transformer(False), tiny(name, cls))
        pipe.fit(X, y, sensitive_features=A)
    assert list(pipe[-1].groups_) == ["a", "b"]
    assert pipe[-1].n_features_in_ == 4 + 2 + 2
    assert pipe.predict(X).shape == (len(X),)


def _fits_sparse(cls):
    return cls().__sklearn_tags__().input_tags.sparse


@pytest.mark.parametrize("name, cls", all_estimators(), ids=IDS)
def test_pipeline_with_sparse_column_transformer(name, cls):
    """OneHotEncoder's default sparse output: predict densifies a block of rows at a
    time; fit takes sparse X where the estimator's sparse tag says so."""
    X, y, A = _mixed_frame()
    if name.endswith("Regressor"):
        y = X["x1"].to_numpy() + y
    dense = make_pipeline(_column_transformer(False), tiny(name, cls))
    sparse_pipe = make_pipeline(_column_transformer(True), tiny(name, cls))
    dense.fit(X, y, **{f"{dense.steps[-1][0]}__sensitive_features": A})
    assert sparse_pipe[0].fit_transform(X).format == "csr"
    if not _fits_sparse(cls):
        with pytest.raises(TypeError, match="[Ss]parse"):
            sparse_pipe.fit(X, y, **{f"{sparse_pipe.steps[-1][0]}__sensitive_features": A})
        # a dense fit predicts sparse rows: the same numbers as dense rows
        Z = sparse_pipe[0].fit(X).transform(X)
        method = "predict" if name.endswith("Regressor") else "predict_proba"
        assert_array_equal(getattr(dense[-1], method)(Z), getattr(dense[-1], method)(Z.toarray()))
        return
    sparse_pipe.fit(X, y, **{f"{sparse_pipe.steps[-1][0]}__sensitive_features": A})
    method = "predict" if name.endswith("Regressor") else "predict_proba"
    assert_allclose(getattr(sparse_pipe, method)(X), getattr(dense, method)(X), atol=1e-6)


@pytest.mark.parametrize("name, cls", all_estimators(), ids=IDS)
def test_polars_output_of_a_transformer(name, cls):
    pl = pytest.importorskip("polars")
    X, y, A = _mixed_frame()
    if name.endswith("Regressor"):
        y = X["x1"].to_numpy() + y
    Xa = X.assign(group=A)
    pre = ColumnTransformer(
        [
            ("cat", OneHotEncoder(sparse_output=False), ["job", "city"]),
            ("num", StandardScaler(), ["x0", "x1"]),
            ("keep", "passthrough", ["group"]),
        ],
        verbose_feature_names_out=False,
    ).set_output(transform="polars")
    assert isinstance(pre.fit_transform(Xa), pl.DataFrame)
    pipe = make_pipeline(pre, tiny(name, cls, sensitive_feature_ids="group"))
    pipe.fit(Xa, y)
    assert list(pipe[-1].groups_) == ["a", "b"]
    assert "group" in pipe[-1].feature_names_in_ and pipe[-1].n_features_in_ == 9
    scorer = (
        make_fairness_scorer("bounded_group_loss", sensitive_feature_ids="group")
        if name.endswith("Regressor")
        else make_fairness_scorer("demographic_parity_difference", sensitive_feature_ids="group")
    )
    Z = pre.transform(Xa)
    metric = bounded_group_loss if name.endswith("Regressor") else demographic_parity_difference
    by_hand = metric(y, pipe[-1].predict(Z), sensitive_features=A)
    # a difference or a worst-group loss: lower is better, so the scorer negates it
    assert scorer(pipe[-1], Z, y) == pytest.approx(-by_hand)
