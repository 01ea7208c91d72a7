"""Tests of skfairbilevel.datasets: bundled loaders, preprocessing recipe, generators.

The expected numbers (row counts, class balances, group counts) are those published for
the UCI originals and listed in the datasets README.
"""

import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from skfairbilevel.datasets import (
    load_adult,
    load_bank_marketing,
    load_credit_default,
    load_drug_consumption,
    load_german_credit,
    make_biased_classification,
    make_preprocessor,
    merge_smallest_groups,
)

# loader -> (default sensitive column, n_rows, n_columns of data, target name, DOI)
LOADERS = {
    load_adult: ("sex", 45222, 13, "income", "10.24432/C5XW20"),
    load_credit_default: ("SEX", 30000, 23, "default", "10.24432/C55S3H"),
    load_drug_consumption: ("Education", 1885, 12, "Alcohol", "10.24432/C5TC7S"),
    load_german_credit: ("sex", 1000, 22, "credit_risk", "10.24432/C5NC77"),
    load_bank_marketing: ("age_group", 45211, 16, "y", "10.24432/C5K306"),
}


def _dp_gap(y, A):
    rates = [y[A == g].mean() for g in np.unique(A)]
    return max(rates) - min(rates)


# --------------------------------------------------------------------------- common


@pytest.mark.parametrize("loader", list(LOADERS), ids=lambda f: f.__name__)
def test_loader_bunch_contract(loader):
    sens, n_rows, n_cols, target_name, doi = LOADERS[loader]
    bunch = loader()
    assert bunch.data.shape == (n_rows, n_cols)
    assert bunch.target.shape == (n_rows,)
    assert bunch.target.name == target_name
    assert bunch.target.dtype == np.int64
    assert bunch.feature_names == list(bunch.data.columns)
    # sensitive column stays in the data and is returned as a Series of the same values
    assert sens in bunch.data.columns
    assert isinstance(bunch.sensitive_features, pd.Series)
    assert bunch.sensitive_features.name == sens
    pd.testing.assert_series_equal(bunch.sensitive_features, bunch.data[sens])
    # frame = data + target
    assert list(bunch.frame.columns) == list(bunch.data.columns) + [target_name]
    assert bunch.frame.shape == (n_rows, n_cols + 1)
    assert len(bunch.target_names) == bunch.target.max() + 1
    # attribution
    assert "CC BY 4.0" in bunch.DESCR
    assert doi in bunch.DESCR
    # string columns are categoricals, nothing is left as object/str
    for col in bunch.data.columns:
        dtype = bunch.data[col].dtype
        assert isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_numeric_dtype(dtype)


@pytest.mark.parametrize("loader", list(LOADERS), ids=lambda f: f.__name__)
def test_loader_return_X_y(loader):
    sens, n_rows, n_cols, target_name, _ = LOADERS[loader]
    X, y = loader(return_X_y=True)
    assert isinstance(X, pd.DataFrame) and isinstance(y, pd.Series)
    assert X.shape == (n_rows, n_cols)
    assert y.shape == (n_rows,)
    assert sens in X.columns


@pytest.mark.parametrize("loader", list(LOADERS), ids=lambda f: f.__name__)
def test_loader_bad_sensitive(loader):
    with pytest.raises(ValueError, match="sensitive") as info:
        loader(sensitive="no_such_column")
    # the message lists the valid columns
    assert LOADERS[loader][0] in str(info.value)
    with pytest.raises(TypeError, match="sensitive"):
        loader(sensitive=3)
    with pytest.raises(ValueError, match="sensitive"):
        loader(sensitive=[])


@pytest.mark.parametrize("loader", list(LOADERS), ids=lambda f: f.__name__)
def test_loader_returns_copies(loader):
    first = loader()
    col = first.data.columns[0]
    del first.data[col]
    first.target.iloc[:] = 99
    second = loader()
    assert col in second.data.columns
    assert second.target.max() < 99


def test_datasets_do_not_import_torch():
    code = (
        "import sys, skfairbilevel.datasets as d; d.load_german_credit(); "
        "d.make_biased_classification(10, random_state=0); "
        "sys.exit(1 if 'torch' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# --------------------------------------------------------------------------- adult


def test_adult_raw_counts():
    bunch = load_adult(drop_missing=False)
    assert bunch.data.shape == (48842, 13)
    assert bunch.split.value_counts().to_dict() == {"train": 32561, "test": 16281}
    assert int(bunch.target.sum()) == 11687
    assert bunch.data["sex"].value_counts().to_dict() == {"Male": 32650, "Female": 16192}
    # the "?" of the original files are missing values
    missing = bunch.data.isna().sum()
    assert missing["workclass"] == 2799
    assert missing["occupation"] == 2809
    assert missing["native-country"] == 857
    assert missing.drop(["workclass", "occupation", "native-country"]).sum() == 0


def test_adult_drop_missing_and_split():
    bunch = load_adult()
    assert bunch.data.shape == (45222, 13)
    assert "fnlwgt" not in bunch.data.columns
    assert bunch.data.isna().sum().sum() == 0
    assert bunch.split.value_counts().to_dict() == {"train": 30162, "test": 15060}
    assert int(bunch.target.sum()) == 11208
    assert bunch.target.mean() == pytest.approx(0.248, abs=5e-4)
    assert bunch.sensitive_features.value_counts().to_dict() == {"Male": 30527, "Female": 14695}
    assert list(bunch.target_names) == ["<=50K", ">50K"]

    train = load_adult(split="train")
    test = load_adult(split="test")
    assert train.data.shape == (30162, 13) and test.data.shape == (15060, 13)
    assert set(train.split) == {"train"} and set(test.split) == {"test"}
    assert int(test.target.sum()) == 3700
    # both splits share the categories of the whole file
    assert (train.data.dtypes == test.data.dtypes).all()
    raw_train = load_adult(split="train", drop_missing=False)
    assert raw_train.data.shape[0] == 32561
    assert load_adult(drop_fnlwgt=False).data.shape == (45222, 14)


def test_adult_several_sensitive_columns():
    bunch = load_adult(sensitive=["sex", "race"])
    A = bunch.sensitive_features
    assert isinstance(A, pd.DataFrame)
    assert list(A.columns) == ["sex", "race"]
    assert A["race"].value_counts()["White"] == 38903
    assert len(A.drop_duplicates()) == 10


def test_adult_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        load_adult(split="validation")
    with pytest.raises(TypeError, match="drop_missing"):
        load_adult(drop_missing="yes")
    with pytest.raises(ValueError, match="sensitive"):
        load_adult(sensitive="fnlwgt")  # dropped by default
    with pytest.raises(ValueError, match="sensitive"):
        load_adult(sensitive="income")  # the target is not a feature


# --------------------------------------------------------------------------- credit


def test_credit_default_counts():
    bunch = load_credit_default(sensitive="EDUCATION")
    assert "ID" not in bunch.data.columns
    assert "default payment next month" not in bunch.frame.columns
    assert {"SEX", "EDUCATION", "MARRIAGE", "AGE"} <= set(bunch.data.columns)
    assert int(bunch.target.sum()) == 6636
    assert bunch.target.mean() == pytest.approx(6636 / 30000)
    counts = bunch.sensitive_features.value_counts().sort_index()
    assert counts.to_dict() == {0: 14, 1: 10585, 2: 14030, 3: 4917, 4: 123, 5: 280, 6: 51}
    assert bunch.data["SEX"].value_counts().to_dict() == {2: 18112, 1: 11888}


# --------------------------------------------------------------------------- drug


def test_drug_decoded_groups():
    bunch = load_drug_consumption()
    edu = bunch.sensitive_features
    assert edu.value_counts(sort=False).tolist() == [28, 99, 30, 100, 506, 270, 480, 283, 89]
    assert edu.value_counts()["university degree"] == 480
    assert bunch.data["Gender"].value_counts().to_dict() == {"Male": 943, "Female": 942}
    assert bunch.data["Ethnicity"].value_counts()["White"] == 1720
    assert bunch.data["Age"].value_counts()["18-24"] == 643
    assert bunch.data["Country"].value_counts()["UK"] == 1044
    assert "ID" not in bunch.data.columns and "Cannabis" not in bunch.data.columns


def test_drug_target_classes():
    seven = load_drug_consumption()
    assert seven.target.value_counts().sort_index().tolist() == [34, 34, 68, 198, 287, 759, 505]
    assert list(seven.target_names) == [f"CL{k}" for k in range(7)]
    # FACIMS 4-class recoding: CL0 / CL1-CL2 / CL3-CL5 / CL6. FACIMS reports
    # 34 / 102 / 1,243 / 505 on 1,884 rows; the UCI file has one more row (1,244).
    four = load_drug_consumption(n_classes=4)
    counts = four.target.value_counts().sort_index().tolist()
    assert counts == [34, 102, 1244, 505]
    assert np.abs(np.array(counts) - [34, 102, 1243, 505]).sum() == 1
    assert list(four.target_names) == ["CL0", "CL1-CL2", "CL3-CL5", "CL6"]
    two = load_drug_consumption(n_classes=2)
    assert two.target.value_counts().sort_index().tolist() == [68, 1817]
    assert list(two.target_names) == ["non-user", "user"]
    assert load_drug_consumption(n_classes=7).target.equals(seven.target)
    cannabis = load_drug_consumption(target="Cannabis", n_classes=2)
    assert cannabis.target.name == "Cannabis"
    assert cannabis.target.sum() == 1885 - cannabis.target.eq(0).sum()


def test_drug_raw_codes_and_errors():
    raw = load_drug_consumption(decode=False, sensitive="Gender")
    assert raw.sensitive_features.dtype == np.float64
    assert raw.sensitive_features.round(5).value_counts().to_dict() == {-0.48246: 943, 0.48246: 942}
    with pytest.raises(ValueError, match="target"):
        load_drug_consumption(target="Beer")
    with pytest.raises(ValueError, match="n_classes"):
        load_drug_consumption(n_classes=3)


# --------------------------------------------------------------------------- german


def test_german_credit_derived_columns():
    bunch = load_german_credit()
    assert bunch.sensitive_features.value_counts().to_dict() == {"male": 690, "female": 310}
    assert bunch.target.value_counts().to_dict() == {1: 700, 0: 300}
    assert list(bunch.target_names) == ["bad", "good"]
    assert bunch.data["age_group"].value_counts().to_dict() == {"old": 851, "young": 149}
    assert "personal_status_sex" in bunch.data.columns
    both = load_german_credit(sensitive=["sex", "age_group"]).sensitive_features
    assert len(both.drop_duplicates()) == 4
    foreign = load_german_credit(sensitive="foreign_worker").sensitive_features
    assert foreign.value_counts().to_dict() == {"A201": 963, "A202": 37}


# --------------------------------------------------------------------------- bank


def test_bank_marketing():
    bunch = load_bank_marketing()
    assert int(bunch.target.sum()) == 5289
    assert "duration" not in bunch.data.columns
    counts = bunch.sensitive_features.value_counts().to_dict()
    assert counts == {"25-60": 43214, ">60": 1188, "<25": 809}
    assert list(bunch.sensitive_features.cat.categories) == ["<25", "25-60", ">60"]
    assert load_bank_marketing(drop_duration=False).data.shape == (45211, 17)
    marital = load_bank_marketing(sensitive="marital").sensitive_features
    assert marital.value_counts().to_dict() == {"married": 27214, "single": 12790, "divorced": 5207}


# --------------------------------------------------------------------------- preprocess


def test_preprocessor_adult():
    X, y = load_adult(return_X_y=True)
    pre = make_preprocessor(X, sensitive="sex", keep_sensitive=True)
    assert not hasattr(pre, "transformers_")  # unfitted
    Xt = pre.fit_transform(X)
    assert isinstance(Xt, pd.DataFrame)
    assert Xt.shape[0] == X.shape[0] == 45222
    assert (Xt.dtypes == np.float64).all()
    assert Xt.isna().sum().sum() == 0
    assert "sex" in Xt.columns
    assert set(Xt["sex"].unique()) == {0.0, 1.0}
    assert int((Xt["sex"] == 1.0).sum()) == 30527  # Male, after Female in sorted order
    assert "race_White" in Xt.columns and "sex_Male" not in Xt.columns
    assert Xt["age"].mean() == pytest.approx(0.0, abs=1e-9)
    assert Xt["age"].std(ddof=0) == pytest.approx(1.0)
    # 5 numeric + one-hot of 8 categorical columns (96 levels) + sex
    assert Xt.shape[1] == 5 + 96 + 1

    # the default drops the sensitive column, and only it
    dropped = make_preprocessor(X, sensitive="sex").fit_transform(X)
    assert "sex" not in dropped.columns and dropped.shape[1] == Xt.shape[1] - 1
    pd.testing.assert_frame_equal(dropped, Xt.drop(columns="sex"))

    # unseen categories are ignored by the one-hot part and -1 in the sensitive column
    X_new = X.head(2).copy()
    X_new["workclass"] = X_new["workclass"].cat.add_categories("Moon").fillna("Moon")
    X_new.loc[0, "workclass"] = "Moon"
    X_new["sex"] = X_new["sex"].cat.add_categories("Other")
    X_new.loc[0, "sex"] = "Other"
    out = pre.transform(X_new)
    assert out.loc[0, "sex"] == -1.0
    assert out.filter(like="workclass_").loc[0].sum() == 0.0


def test_preprocessor_missing_values_and_several_sensitive():
    X, _ = load_adult(drop_missing=False, return_X_y=True)
    Xt = make_preprocessor(X, sensitive=["sex", "race"], keep_sensitive=True).fit_transform(X)
    assert Xt.shape[0] == 48842
    assert Xt.isna().sum().sum() == 0
    assert "workclass_nan" in Xt.columns
    assert sorted(Xt["race"].unique()) == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_preprocessor_integer_codes_and_pipeline():
    bunch = load_credit_default(sensitive="SEX")
    pre = make_preprocessor(
        bunch.data, sensitive="SEX", categorical=["EDUCATION", "MARRIAGE"], keep_sensitive=True
    )
    Xt = pre.fit_transform(bunch.data)
    assert sorted(Xt["SEX"].unique()) == [1.0, 2.0]  # numeric sensitive: cast, not recoded
    assert Xt.filter(like="EDUCATION_").shape[1] == 7
    assert Xt.shape == (30000, 20 + 7 + 4 + 1)  # numeric + EDUCATION + MARRIAGE + SEX
    # end to end in a pipeline, and the fitted pipeline pickles
    g = load_german_credit()
    pipe = make_pipeline(make_preprocessor(g.data, sensitive="sex"), LogisticRegression())
    pipe.fit(g.data, g.target)
    assert pipe.score(g.data, g.target) > 0.75
    clone = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_array_equal(clone.predict(g.data), pipe.predict(g.data))


def test_preprocessor_errors():
    X, _ = load_german_credit(return_X_y=True)
    with pytest.raises(TypeError, match="X must be a dataframe"):
        make_preprocessor(X.to_numpy())
    with pytest.raises(ValueError, match="sensitive"):
        make_preprocessor(X, sensitive="gender")
    with pytest.raises(ValueError, match="categorical"):
        make_preprocessor(X, sensitive="sex", categorical=["sex"])
    with pytest.raises(ValueError, match="numeric"):
        make_preprocessor(X, numeric=["not_a_column"])
    with pytest.raises(ValueError, match="both categorical and numeric"):
        make_preprocessor(X, categorical=["age"], numeric=["age"])
    dated = X.assign(when=pd.Timestamp("2020-01-01"))
    with pytest.raises(ValueError, match="when"):
        make_preprocessor(dated)
    with pytest.raises(TypeError, match="keep_sensitive"):
        make_preprocessor(X, sensitive="sex", keep_sensitive="no")
    with pytest.raises(ValueError, match="keep_sensitive=True"):
        make_preprocessor(X[["sex"]], sensitive="sex")


def _to(lib, df):
    module = pytest.importorskip(lib)
    if lib == "polars":
        return module.from_pandas(df)
    return module.Table.from_pandas(df, preserve_index=False)


@pytest.mark.parametrize("lib", ["polars", "pyarrow"])
def test_preprocessor_polars_and_pyarrow_give_the_pandas_output(lib):
    # string and category columns, an integer-coded categorical, a numeric sensitive column
    credit = load_credit_default(sensitive="SEX").data.head(3000)
    german = load_german_credit().data
    for X, kw in (
        (german, {"sensitive": "sex"}),
        (german, {"sensitive": ["sex", "age_group"], "keep_sensitive": True}),
        (credit, {"sensitive": "SEX", "categorical": ["EDUCATION"], "keep_sensitive": True}),
        (credit, {"sensitive": "SEX", "categorical": ["EDUCATION"]}),
    ):
        expected = make_preprocessor(X, **kw).fit_transform(X)
        X_lib = _to(lib, X)
        pre = make_preprocessor(X_lib, **kw)
        got = pre.fit_transform(X_lib)
        pd.testing.assert_frame_equal(got, expected)
        clone = pickle.loads(pickle.dumps(pre))
        pd.testing.assert_frame_equal(clone.transform(X_lib), expected)


def test_preprocessor_string_and_bool_sensitive_columns():
    X = pd.DataFrame(
        {
            "x": [0.0, 1.0, 2.0, 3.0],
            "sex": pd.Series(["F", "M", "M", "F"], dtype="str"),
            "old": [True, False, True, False],
            "race": pd.Series(["b", "a", "c", "a"], dtype=object),
        }
    )
    sens = ["sex", "old", "race"]
    assert make_preprocessor(X, sensitive=sens).fit_transform(X).columns.tolist() == ["x"]
    kept = make_preprocessor(X, sensitive=sens, keep_sensitive=True).fit_transform(X)
    assert kept["sex"].tolist() == [0.0, 1.0, 1.0, 0.0]
    assert kept["old"].tolist() == [1.0, 0.0, 1.0, 0.0]
    assert kept["race"].tolist() == [1.0, 0.0, 2.0, 0.0]


def test_default_preprocessor_makes_predictions_blind_to_the_sensitive_column():
    """Flip the sensitive value of every row: the default pipeline predicts the same."""
    import sklearn

    from skfairbilevel import FairMLPClassifier

    g = load_german_credit()
    X, y, A = g.data, g.target, g.sensitive_features
    flipped = X.copy()
    flipped["sex"] = X["sex"].map({"female": "male", "male": "female"}).astype(X["sex"].dtype)
    assert (flipped["sex"] != X["sex"]).all()
    params = dict(
        hidden_layer_sizes=(16,),
        fairness="demographic_parity",
        max_epochs=15,
        lr=1e-2,
        random_state=0,
    )
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_pipeline(make_preprocessor(X, sensitive="sex"), FairMLPClassifier(**params))
        pipe.fit(X, y, sensitive_features=A)
        assert pipe[-1].fairness_aware_ and "sex" not in pipe[0].get_feature_names_out()
        np.testing.assert_array_equal(pipe.predict(flipped), pipe.predict(X))
        np.testing.assert_array_equal(pipe.predict_proba(flipped), pipe.predict_proba(X))
        # the opt-in keeps the column as a model input: then the flip does change
        # predictions, so the check above could fail
        kept = make_pipeline(
            make_preprocessor(X, sensitive="sex", keep_sensitive=True), FairMLPClassifier(**params)
        )
        kept.fit(X, y, sensitive_features=A)
        assert np.abs(kept.predict_proba(flipped) - kept.predict_proba(X)).max() > 1e-3


# --------------------------------------------------------------------------- merge


def test_merge_smallest_groups_credit_education():
    # the EDUCATION counts of the credit data: 0..6 -> 14/10,585/14,030/4,917/123/280/51
    groups = np.repeat(np.arange(7), [14, 10585, 14030, 4917, 123, 280, 51])
    merged, mapping = merge_smallest_groups(groups, 4, return_mapping=True)
    # 0 (14) + 6 (51) -> 65; + 4 (123) -> 188; + 5 (280) -> 468
    assert mapping == {
        0: "0+4+5+6",
        1: "1",
        2: "2",
        3: "3",
        4: "0+4+5+6",
        5: "0+4+5+6",
        6: "0+4+5+6",
    }
    counts = pd.Series(merged).value_counts().to_dict()
    assert counts == {"2": 14030, "1": 10585, "3": 4917, "0+4+5+6": 468}
    # one more merge joins the merged group with 3 (4,917)
    assert set(merge_smallest_groups(groups, 3)) == {"0+3+4+5+6", "1", "2"}


def test_merge_smallest_groups_hand_example():
    groups = ["b", "a", "c", "c", "d", "d", "d", "e", "e", "e", "e"]
    # sizes a=1, b=1, c=2, d=3, e=4; ties go to the label that sorts first
    assert (
        merge_smallest_groups(groups, 4).tolist()
        == ["a+b"] * 2 + ["c", "c"] + ["d"] * 3 + ["e"] * 4
    )
    # a+b (2) + c (2) -> a+b+c (4); then d (3) merges with a+b+c (4), not with e (4):
    # the tie between the two groups of 4 goes to the one whose smallest label sorts first
    assert merge_smallest_groups(groups, 2).tolist() == ["a+b+c+d"] * 7 + ["e"] * 4
    assert set(merge_smallest_groups(groups, 1)) == {"a+b+c+d+e"}
    # nothing to merge: labels unchanged, as strings
    assert merge_smallest_groups([2, 1, 2], 5).tolist() == ["2", "1", "2"]
    # a Series comes back as a Series with its index and name
    s = pd.Series(groups, index=range(10, 21), name="g")
    out = merge_smallest_groups(s, 4)
    assert isinstance(out, pd.Series) and out.name == "g" and out.index[0] == 10


def test_merge_smallest_groups_errors():
    with pytest.raises(ValueError, match="n_groups"):
        merge_smallest_groups([1, 2], 0)
    with pytest.raises(TypeError, match="n_groups"):
        merge_smallest_groups([1, 2], 1.5)
    with pytest.raises(ValueError, match="missing"):
        merge_smallest_groups(["a", None, "b"], 1)
    with pytest.raises(ValueError, match="1-D"):
        merge_smallest_groups(np.zeros((3, 2)), 1)


# --------------------------------------------------------------------------- synthetic


def test_biased_classification_bias_controls_parity_gap():
    X, y, A = make_biased_classification(20000, bias=0.0, random_state=0)
    assert _dp_gap(y, A) < 0.05
    X, y, A = make_biased_classification(20000, bias=2.0, random_state=0)
    assert _dp_gap(y, A) > 0.2
    assert y[A == 1].mean() > y[A == 0].mean()  # the larger offset gets more positives
    # the last feature is a proxy of the group, the others are not
    assert np.corrcoef(X[:, -1], A)[0, 1] > 0.3
    assert abs(np.corrcoef(X[:, 0], A)[0, 1]) < 0.05
    # negative bias reverses the direction
    _, y, A = make_biased_classification(20000, bias=-2.0, random_state=0)
    assert y[A == 1].mean() < y[A == 0].mean() - 0.2


def test_biased_classification_reproducible_and_seeded_locally():
    a = make_biased_classification(500, random_state=42)
    b = make_biased_classification(500, random_state=42)
    c = make_biased_classification(500, random_state=43)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[0], c[0])
    state = np.random.get_state()[1].copy()
    make_biased_classification(100, random_state=None)
    make_biased_classification(100, random_state=np.random.default_rng(0))
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_biased_classification_shapes_and_options():
    X, y, A = make_biased_classification(
        3000, 4, n_groups=3, group_proportions=[0.6, 0.3, 0.1], n_classes=3, random_state=0
    )
    assert X.shape == (3000, 4) and X.dtype == np.float64
    assert y.dtype == np.int64 and set(np.unique(y)) == {0, 1, 2}
    assert A.dtype == np.int64 and set(np.unique(A)) == {0, 1, 2}
    np.testing.assert_allclose(np.bincount(A) / 3000, [0.6, 0.3, 0.1], atol=0.03)
    # balanced classes without bias
    _, y0, _ = make_biased_classification(30000, n_classes=3, bias=0.0, random_state=1)
    np.testing.assert_allclose(np.bincount(y0) / 30000, [1 / 3] * 3, atol=0.02)
    # label noise is a fraction of flipped labels
    _, y_clean, _ = make_biased_classification(20000, label_noise=0.0, random_state=3)
    _, y_noisy, _ = make_biased_classification(20000, label_noise=0.2, random_state=3)
    assert np.mean(y_clean != y_noisy) == pytest.approx(0.2, abs=0.015)

    Xf, yf, Af = make_biased_classification(200, 3, return_frame=True, random_state=0)
    assert list(Xf.columns) == ["x0", "x1", "x2", "group"]
    np.testing.assert_array_equal(Xf["group"].to_numpy(), Af.to_numpy())
    assert yf.name == "y" and Af.name == "group"
    X_arr, y_arr, _ = make_biased_classification(200, 3, random_state=0)
    np.testing.assert_array_equal(Xf[["x0", "x1", "x2"]].to_numpy(), X_arr)
    np.testing.assert_array_equal(yf.to_numpy(), y_arr)


@pytest.mark.parametrize(
    "kwargs, exc, word",
    [
        ({"n_samples": 0}, ValueError, "n_samples"),
        ({"n_features": 2.5}, TypeError, "n_features"),
        ({"n_classes": 1}, ValueError, "n_classes"),
        ({"label_noise": 1.0}, ValueError, "label_noise"),
        ({"bias": float("nan")}, TypeError, "bias"),
        ({"group_proportions": [1.0]}, ValueError, "group_proportions"),
        ({"group_proportions": [-1.0, 2.0]}, ValueError, "group_proportions"),
        ({"random_state": "seed"}, TypeError, "random_state"),
    ],
)
def test_biased_classification_errors(kwargs, exc, word):
    with pytest.raises(exc, match=word):
        make_biased_classification(**kwargs)
