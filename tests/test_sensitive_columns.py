"""The sensitive column is never a model input by default, whatever its type.

For every estimator: a string or category column named by ``sensitive_feature_ids`` is
read as it is (pandas, polars and pyarrow X) and dropped before X is made numeric;
flipping its value changes no prediction, in the default pipeline of the README (routing
on) and in its routing-off form; ``NoSensitiveFeaturesWarning`` is not raised after an
explicit ``set_fit_request(sensitive_features=False)``.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
from numpy.testing import assert_array_equal
from sklearn.pipeline import make_pipeline

from skfairbilevel import all_estimators
from skfairbilevel.datasets import make_preprocessor
from skfairbilevel.exceptions import NoSensitiveFeaturesWarning

from ._fast import fast_instance

IDS = [name for name, _ in all_estimators()]


def _frame(n=160, seed=0):
    """Numbers, a string job and a string sex that shifts the target."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["female", "male"], n)
    X = pd.DataFrame(
        {
            "x0": rng.normal(size=n),
            "x1": rng.normal(size=n),
            "job": rng.choice(["a", "b", "c"], n),
            "sex": sex,
            "x2": rng.normal(size=n),
        }
    )
    logit = X["x0"] - X["x1"] + (sex == "male") + (X["job"] == "a")
    y = (logit + rng.normal(0, 0.5, n) > 0.5).astype(int).to_numpy()
    return X, y


def _numeric(X):
    """X with its job column one-hot encoded (numbers), the string sex column kept."""
    out = X.drop(columns="job").copy()
    for level in ("a", "b"):
        out[f"job_{level}"] = (X["job"] == level).astype(float)
    return out


def _flip(X):
    flipped = X.copy()
    flipped["sex"] = X["sex"].map({"female": "male", "male": "female"}).astype(X["sex"].dtype)
    assert (flipped["sex"] != X["sex"]).all()
    return flipped


def _target(name, y, X):
    return X["x0"].to_numpy() + y if name.endswith("Regressor") else y


def _aware(name, cls, **params):
    """The small settings, fairness-aware where the estimator has a switch for it."""
    if name == "FairMLPClassifier":
        params.setdefault("fairness", "demographic_parity")
    return fast_instance(name, cls, **params)


def _outputs(est, X):
    methods = ("predict", "predict_proba", "decision_function")
    return {m: getattr(est, m)(X) for m in methods if hasattr(est, m)}


@pytest.mark.parametrize("name, cls", all_estimators(), ids=IDS)
def test_string_sensitive_column_by_id_in_every_dataframe_library(name, cls):
    pl = pytest.importorskip("polars")
    pa = pytest.importorskip("pyarrow")
    X, y = _frame()
    X = _numeric(X)
    y = _target(name, y, X)
    frames = {
        "pandas str": X,
        "pandas category": X.astype({"sex": "category"}),
        "polars": pl.from_pandas(X),
        "pyarrow": pa.Table.from_pandas(X),
    }
    reference = None
    for kind, frame in frames.items():
        est = fast_instance(name, cls, sensitive_feature_ids="sex").fit(frame, y)
        assert est.drop_sensitive is True  # the default
        assert list(est.groups_) == ["female", "male"], kind
        assert est.n_features_in_ == X.shape[1]
        assert list(est.feature_names_in_) == list(X.columns)
        out = _outputs(est, frame)
        # the dropped column is never a model input: flipping it changes nothing
        flipped = _flip(X)
        flipped_frame = {
            "pandas str": flipped,
            "pandas category": flipped.astype({"sex": "category"}),
            "polars": pl.from_pandas(flipped),
            "pyarrow": pa.Table.from_pandas(flipped),
        }[kind]
        for method, values in _outputs(est, flipped_frame).items():
            assert_array_equal(values, out[method], err_msg=f"{kind} {method}")
        # the same numbers from every library
        if reference is None:
            reference = out
        for method, values in out.items():
            assert_array_equal(values, reference[method], err_msg=f"{kind} {method}")


def test_string_sensitive_column_by_index_in_an_object_array():
    from skfairbilevel import FairMLPClassifier

    X, y = _frame()
    X = _numeric(X)
    params = dict(hidden_layer_sizes=(8,), max_epochs=5, random_state=0)
    by_name = FairMLPClassifier(sensitive_feature_ids="sex", **params).fit(X, y)
    position = list(X.columns).index("sex")
    arr = X.to_numpy(dtype=object)
    by_index = FairMLPClassifier(sensitive_feature_ids=position, **params).fit(arr, y)
    assert list(by_index.groups_) == ["female", "male"]
    assert_array_equal(by_index.predict_proba(arr), by_name.predict_proba(X))


def test_validation_rows_read_the_string_column_too():
    from skfairbilevel import FairMLPClassifier

    X, y = _frame()
    X = _numeric(X)
    est = FairMLPClassifier(
        hidden_layer_sizes=(8,), max_epochs=5, early_stopping=True, sensitive_feature_ids="sex"
    )
    est.fit(X[:120], y[:120], X_val=X[120:], y_val=y[120:])
    assert "val_dp" in est.history_[0]
    bad = X[120:].assign(sex="other")
    with pytest.raises(ValueError, match="not seen in fit"):
        est.fit(X[:120], y[:120], X_val=bad, y_val=y[120:])


def test_a_kept_string_column_is_refused_with_the_fix():
    from skfairbilevel import FairMLPClassifier

    X, y = _frame()
    est = FairMLPClassifier(max_epochs=2, sensitive_feature_ids="sex", drop_sensitive=False)
    with pytest.raises(ValueError, match="drop_sensitive=False.*must be numeric"):
        est.fit(_numeric(X), y)
    # a string column that is not sensitive: the message says to encode it
    with pytest.raises(ValueError, match="could not convert.*encode string columns"):
        FairMLPClassifier(max_epochs=2, sensitive_feature_ids="sex").fit(X, y)


def test_predict_checks_all_columns_of_x():
    from skfairbilevel import FairMLPClassifier

    X, y = _frame()
    X = _numeric(X)
    est = FairMLPClassifier(max_epochs=2, sensitive_feature_ids="sex").fit(X, y)
    with (
        pytest.warns(UserWarning, match="does not have valid feature names"),
        pytest.raises(ValueError, match="X has 5 features, but FairMLPClassifier is expecting 6"),
    ):
        est.predict(X.drop(columns="x2").to_numpy(dtype=object))
    with pytest.raises(ValueError, match="feature names"):
        est.predict(X.rename(columns={"x0": "other"}))


@pytest.mark.parametrize("name, cls", all_estimators(), ids=IDS)
def test_flipping_the_sensitive_value_changes_no_prediction_of_the_default_pipeline(name, cls):
    X, y = _frame(seed=1)
    y = _target(name, y, X)
    flipped = _flip(X)
    # the README's pipeline: make_preprocessor drops the column, routing passes A
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_pipeline(make_preprocessor(X, sensitive="sex"), _aware(name, cls))
        pipe.fit(X, y, sensitive_features=X["sex"])
        assert list(pipe[-1].groups_) == ["female", "male"]
        assert pipe[-1].fairness_aware_ == pipe[-1]._uses_groups()
        assert "sex" not in pipe[0].get_feature_names_out()
        out = _outputs(pipe, X)
        for method, values in _outputs(pipe, flipped).items():
            assert_array_equal(values, out[method], err_msg=method)
    # routing off: the column is kept (ordinal-encoded) and named; the estimator drops it
    pipe = make_pipeline(
        make_preprocessor(X, sensitive="sex", keep_sensitive=True),
        _aware(name, cls, sensitive_feature_ids="sex"),
    )
    pipe.fit(X, y)
    assert list(pipe[-1].groups_) == [0.0, 1.0]
    out = _outputs(pipe, X)
    for method, values in _outputs(pipe, flipped).items():
        assert_array_equal(values, out[method], err_msg=method)


@pytest.mark.parametrize("name, cls", all_estimators(), ids=IDS)
def test_no_warning_after_declining_sensitive_features(name, cls):
    X, y = _frame()
    X = _numeric(X).drop(columns="sex")
    y = _target(name, y, X)
    est = _aware(name, cls)
    if est._uses_groups():  # FairRobustClassifier never does: it never warns
        with pytest.warns(NoSensitiveFeaturesWarning):
            est.fit(X, y)
    with sklearn.config_context(enable_metadata_routing=True):
        est = _aware(name, cls).set_fit_request(sensitive_features=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoSensitiveFeaturesWarning)
        est.fit(X, y)
        with sklearn.config_context(enable_metadata_routing=True):
            make_pipeline(est).fit(X, y)
    assert not est.fairness_aware_


def test_boolean_sensitive_column_by_id():
    from skfairbilevel import FairMLPClassifier

    X, y = _frame()
    X = _numeric(X).assign(sex=lambda f: f["sex"] == "male")
    est = FairMLPClassifier(hidden_layer_sizes=(8,), max_epochs=3, sensitive_feature_ids="sex")
    est.fit(X, y)
    assert list(est.groups_) == [False, True]
    flipped = X.assign(sex=~X["sex"])
    assert_array_equal(est.predict_proba(flipped), est.predict_proba(X))


@pytest.mark.parametrize("name, cls", all_estimators(), ids=IDS)
def test_sensitive_features_and_X_from_every_dataframe_library(name, cls):
    """``sensitive_features`` (a series, a one-column or two-column frame) and ``X`` (a
    numeric frame) from pandas, polars or pyarrow train the model of numpy arrays."""
    pl = pytest.importorskip("polars")
    pa = pytest.importorskip("pyarrow")
    X, y = _frame()
    A = X[["sex", "job"]]
    X = _numeric(X).drop(columns="sex")
    y = _target(name, y, X)
    Xn = X.to_numpy()
    series = {
        "numpy": A["sex"].to_numpy(),
        "pandas": A["sex"],
        "polars": pl.Series("sex", A["sex"].to_numpy()),
        "pyarrow": pa.chunked_array([A["sex"].to_numpy()]),
        "polars frame": pl.from_pandas(A[["sex"]]),
    }
    frames = {"pandas": X, "polars": pl.from_pandas(X), "pyarrow": pa.Table.from_pandas(X)}
    reference = _outputs(_aware(name, cls).fit(Xn, y, sensitive_features=series["numpy"]), Xn)
    for kind, A_kind in series.items():
        X_kind = frames.get(kind, Xn)
        est = _aware(name, cls).fit(X_kind, y, sensitive_features=A_kind)
        assert list(est.groups_) == ["female", "male"], kind
        for method, values in _outputs(est, X_kind).items():
            assert_array_equal(values, reference[method], err_msg=f"{kind} {method}")
    # two columns: the groups are their combinations, in every library
    two = {"pandas": A, "polars": pl.from_pandas(A), "pyarrow": pa.Table.from_pandas(A)}
    groups = [_aware(name, cls).fit(Xn, y, sensitive_features=a).n_groups_ for a in two.values()]
    assert groups == [6, 6, 6]
