"""pandas, polars and pyarrow inputs: the _dataframe helpers, sensitive columns by id, the
metrics and the scorers give the same answers whatever the dataframe library."""

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OrdinalEncoder, StandardScaler

from skfairbilevel import _dataframe
from skfairbilevel._groups import encode_groups, get_sensitive_columns, resolve_column_ids
from skfairbilevel.datasets import make_preprocessor
from skfairbilevel.metrics import (
    bounded_group_loss,
    demographic_parity_difference,
    equalized_odds_difference,
    fairness_report,
    group_loss_ratio,
    make_fairness_scorer,
    mean_prediction_difference,
    soft_demographic_parity_difference,
    sufficiency_gap,
)

pl = pytest.importorskip("polars")  # the test extra installs polars and pyarrow
pa = pytest.importorskip("pyarrow")

FRAME = pd.DataFrame(
    {
        "x": [0.5, 1.5, 2.5, 3.5],
        "n": [1, 2, 3, 4],
        "sex": ["f", "m", "m", "f"],
        "ok": [True, False, True, True],
    }
)

# one constructor per library: pandas frame -> that library's frame
TO_FRAME = {
    "pandas": lambda df: df,
    "polars": pl.from_pandas,
    "pyarrow": lambda df: pa.Table.from_pandas(df, preserve_index=False),
}
# numpy 1-D array (with a name) -> that library's series
TO_SERIES = {
    "pandas": lambda a, name=None: pd.Series(a, name=name),
    "polars": lambda a, name=None: pl.Series(name or "", a),
    "pyarrow": lambda a, name=None: pa.chunked_array([a]),
}


# ---------------------------------------------------------------------------------------
# the helpers
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("lib", TO_FRAME)
def test_helpers_on_each_library(lib):
    df = TO_FRAME[lib](FRAME)
    assert _dataframe.is_dataframe(df) and not _dataframe.is_series(df)
    assert _dataframe.n_rows(df) == 4
    assert _dataframe.column_names(df) == ["x", "n", "sex", "ok"]
    assert _dataframe.column_kinds(df) == {
        "x": "numeric",
        "n": "numeric",
        "sex": "string",
        "ok": "boolean",
    }
    values = _dataframe.to_numpy(df)
    assert values.dtype == object and values.shape == (4, 4)
    assert values[:, 2].tolist() == ["f", "m", "m", "f"]
    assert values[:, 1].tolist() == [1, 2, 3, 4]
    sub = _dataframe.select_columns(df, [2, 0])
    assert type(sub) is type(df) and _dataframe.column_names(sub) == ["sex", "x"]
    assert _dataframe.to_numpy(_dataframe.select_columns(df, [0, 1])).dtype == np.float64
    pdf = _dataframe.to_pandas(df)
    assert isinstance(pdf, pd.DataFrame) and pdf["sex"].tolist() == ["f", "m", "m", "f"]
    series = TO_SERIES[lib](np.array([3.0, 1.0]), "s")
    assert _dataframe.is_series(series) and not _dataframe.is_dataframe(series)
    assert _dataframe.n_rows(series) == 2
    np.testing.assert_array_equal(_dataframe.to_numpy(series), [3.0, 1.0])


def test_helpers_on_non_dataframes_and_categories():
    for obj in (np.zeros((3, 2)), [1, 2, 3]):
        assert not _dataframe.is_dataframe(obj) and not _dataframe.is_series(obj)
        assert _dataframe.column_names(obj) is None
        assert _dataframe.n_rows(obj) == 3
        assert _dataframe.to_pandas(obj) is obj
    enum = pl.Series("g", ["b", "a", "b"], dtype=pl.Enum(["b", "a"]))
    converted = _dataframe.to_pandas(enum)
    assert list(converted.cat.categories) == ["b", "a"]  # the declared order is kept
    assert _dataframe.column_kinds(enum.to_frame()) == {"g": "categorical"}
    cat = pd.Series(["y", "x"], dtype="category")
    assert _dataframe.to_numpy(cat).tolist() == ["y", "x"]
    with pytest.raises(TypeError, match="collect"):
        _dataframe.is_dataframe(pl.LazyFrame({"a": [1]}))


@pytest.mark.parametrize("lib", TO_FRAME)
def test_sensitive_columns_by_name_or_position(lib):
    df = TO_FRAME[lib](FRAME)
    assert resolve_column_ids(df, "sex") == [2]
    assert resolve_column_ids(df, ["ok", -4]) == [3, 0]
    A = get_sensitive_columns(df, ["sex", "ok"])
    assert isinstance(A, pd.DataFrame) and list(A.columns) == ["sex", "ok"]
    assert A["sex"].tolist() == ["f", "m", "m", "f"] and A["ok"].tolist() == [
        True,
        False,
        True,
        True,
    ]
    gid, groups = encode_groups(A)
    assert groups.tolist() == [("f", True), ("m", False), ("m", True)]
    assert gid.tolist() == [0, 1, 2, 0]
    with pytest.raises(ValueError, match="'age', which is not a column of X"):
        resolve_column_ids(df, "age")


def test_column_names_need_a_dataframe():
    with pytest.raises(ValueError, match="X has no column names.*ndarray.*integer column"):
        resolve_column_ids(np.zeros((2, 3)), "sex")
    assert get_sensitive_columns(np.arange(6).reshape(3, 2), 1)[1].tolist() == [1, 3, 5]


# ---------------------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------------------


def _classification_case(n=80, seed=0):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 2, n)
    y_pred = np.where(rng.random(n) < 0.7, y_true, 1 - y_true)
    proba = np.clip(0.5 * y_pred + 0.5 * rng.random(n), 0, 1)
    sex = rng.choice(["f", "m"], n)
    race = rng.choice(["x", "y", "z"], n)
    w = rng.uniform(0.5, 2.0, n)
    return y_true, y_pred, proba, sex, race, w


@pytest.mark.parametrize("lib", ["polars", "pyarrow"])
def test_classification_metrics_accept_series_and_frames(lib):
    y_true, y_pred, proba, sex, race, w = _classification_case()
    S = TO_SERIES[lib]
    two = TO_FRAME[lib](pd.DataFrame({"sex": sex, "race": race}))
    one = TO_FRAME[lib](pd.DataFrame({"y": y_pred}))
    for A_np, A_df in ((sex, S(sex, "sex")), (np.column_stack([sex, race]), two)):
        for metric in (demographic_parity_difference, equalized_odds_difference):
            expected = metric(y_true, y_pred, sensitive_features=A_np, sample_weight=w)
            got = metric(S(y_true), S(y_pred), sensitive_features=A_df, sample_weight=S(w))
            assert got == expected
            assert metric(y_true, one, sensitive_features=A_df) == metric(
                y_true, y_pred, sensitive_features=A_np
            )
        assert soft_demographic_parity_difference(
            S(y_true), S(proba), sensitive_features=A_df, sample_weight=S(w)
        ) == (
            soft_demographic_parity_difference(
                y_true, proba, sensitive_features=A_np, sample_weight=w
            )
        )
        assert sufficiency_gap(S(y_true), S(proba), sensitive_features=A_df) == (
            sufficiency_gap(y_true, proba, sensitive_features=A_np)
        )
    report = fairness_report(S(y_true), S(y_pred), sensitive_features=two)
    assert report.by_group.index.names == ["sex", "race"]
    assert (
        report.summary
        == fairness_report(
            y_true, y_pred, sensitive_features=pd.DataFrame({"sex": sex, "race": race})
        ).summary
    )
    with pytest.raises(ValueError, match="y_pred must be 1-D.*2 columns"):
        demographic_parity_difference(y_true, two, sensitive_features=sex)


@pytest.mark.parametrize("lib", ["polars", "pyarrow"])
def test_regression_metrics_accept_series_and_frames(lib):
    rng = np.random.default_rng(1)
    n = 60
    y_true = rng.gamma(2.0, 2.0, n)
    y_pred = y_true + rng.normal(0, 1, n)
    sex = rng.choice(["f", "m"], n)
    w = rng.uniform(0.5, 2.0, n)
    S = TO_SERIES[lib]
    kw_np = {"sensitive_features": sex, "sample_weight": w}
    kw_df = {"sensitive_features": TO_FRAME[lib](pd.DataFrame({"sex": sex})), "sample_weight": S(w)}
    for metric in (mean_prediction_difference, bounded_group_loss, group_loss_ratio):
        assert metric(S(y_true), S(y_pred), **kw_df) == metric(y_true, y_pred, **kw_np)


def test_missing_values_in_polars_are_refused():
    with pytest.raises(ValueError, match="sensitive_features has 1 missing"):
        demographic_parity_difference(
            [0, 1, 1], [0, 1, 0], sensitive_features=pl.Series("s", ["a", None, "b"])
        )
    with pytest.raises(ValueError, match="y_pred has 1 missing"):
        mean_prediction_difference(
            None, pl.Series([1.0, None, 2.0]), sensitive_features=["a", "b", "b"]
        )


# ---------------------------------------------------------------------------------------
# scorers reading sensitive_feature_ids from a polars / pyarrow X
# ---------------------------------------------------------------------------------------


def _scoring_data(n=150, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.choice(["f", "m"], n)
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=["x0", "x1", "x2"]).assign(sex=A)
    y = (X["x0"] + (A == "m") > 0.5).astype(int).to_numpy()
    return X, y


@pytest.mark.parametrize("lib", ["polars", "pyarrow"])
def test_scorer_reads_columns_of_any_dataframe_in_cross_validate(lib):
    X, y = _scoring_data()
    Xlib = TO_FRAME[lib](X)
    dp = make_fairness_scorer("demographic_parity_difference", sensitive_feature_ids="sex")
    cv = KFold(3, shuffle=True, random_state=0)
    results = {}
    for name, data in (("pandas", X), (lib, Xlib)):
        pipe = make_pipeline(make_preprocessor(data, sensitive="sex"), LogisticRegression())
        results[name] = cross_validate(
            pipe,
            data,
            y,
            cv=cv,
            scoring={"dp": dp},
            return_estimator=True,
            return_indices=True,
            error_score="raise",
        )
    np.testing.assert_array_equal(results[lib]["test_dp"], results["pandas"]["test_dp"])
    # and by hand: each fold's predictions and the fold's slice of the sex column
    for score, est, test in zip(
        results[lib]["test_dp"],
        results[lib]["estimator"],
        results[lib]["indices"]["test"],
        strict=True,
    ):
        Xt = X.iloc[test]
        assert score == -demographic_parity_difference(
            y[test], est.predict(Xt), sensitive_features=Xt["sex"]
        )
    assert len(set(np.round(results[lib]["test_dp"], 12))) > 1  # folds differ


def test_scorer_on_polars_output_of_set_output():
    X, y = _scoring_data(seed=1)
    encode = ColumnTransformer(
        [("num", StandardScaler(), ["x0", "x1", "x2"]), ("sex", OrdinalEncoder(), ["sex"])],
        verbose_feature_names_out=False,
    ).set_output(transform="polars")
    Xpl = encode.fit_transform(X)
    assert isinstance(Xpl, pl.DataFrame) and "sex" in Xpl.columns
    model = make_pipeline(
        ColumnTransformer([("drop_sex", "drop", ["sex"])], remainder="passthrough"),
        LogisticRegression(),
    )
    model.fit(Xpl, y)
    expected = demographic_parity_difference(y, model.predict(Xpl), sensitive_features=X["sex"])
    assert expected > 0
    for metric_ids in ("sex", 3, ["sex"]):
        dp = make_fairness_scorer("demographic_parity_difference", sensitive_feature_ids=metric_ids)
        assert dp(model, Xpl, y) == -expected
    with sklearn.config_context(enable_metadata_routing=True):
        dp = make_fairness_scorer("demographic_parity_difference", sensitive_feature_ids="sex")
        assert dp(model, Xpl, y) == -expected  # routing on, nothing routed: reads X
