"""Tests of the experiment runner (skfairbilevel.compare) and its command line."""

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import demographic_parity_difference as fl_dpd
from fairlearn.metrics import equalized_odds_difference as fl_eod
from fairlearn.postprocessing import ThresholdOptimizer
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score

from skfairbilevel import compare
from skfairbilevel.__main__ import main
from skfairbilevel.baselines import float64_scores
from skfairbilevel.compare import (
    METHODS,
    RUN_COLUMNS,
    Method,
    load_table,
    make_splits,
    prepare,
    run_comparison,
    select_operating_points,
    summarize,
    t_interval,
)
from skfairbilevel.datasets import make_preprocessor
from skfairbilevel.metrics import separation_gap, sufficiency_gap

QUICK = dict(quick=True, progress=False, n_jobs=1, epsilons=(0.02, 0.1))


def _table_frame(n=600, seed=0):
    """A small biased table with a string feature, a string sensitive column."""
    rng = np.random.default_rng(seed)
    gender = rng.choice(["female", "male"], size=n, p=[0.4, 0.6])
    job = rng.choice(["clerk", "manager", "nurse"], size=n)
    age = rng.integers(18, 70, size=n)
    score = (
        0.04 * (age - 40) + 0.8 * (gender == "male") + 0.7 * (job == "manager") + rng.normal(size=n)
    )
    label = np.where(score > 0.4, "yes", "no")
    return pd.DataFrame({"age": age, "job": job, "gender": gender, "label": label})


@pytest.fixture(scope="module")
def frame():
    return _table_frame()


# ---------------------------------------------------------------- splits


def test_split_is_stratified_disjoint_and_seeded():
    table = load_table("german_credit")
    (part,) = make_splits(table, 0)
    train, val, test = part.train, part.evaluate["validation"], part.evaluate["test"]
    assert (len(train), len(val), len(test)) == (600, 200, 200)
    assert not set(train) & set(val) and not set(train) & set(test) and not set(val) & set(test)
    cells = pd.crosstab(table.y, table.groups, normalize=True).to_numpy()
    for rows in (train, val, test):  # label x group shares within one row of the whole
        share = pd.crosstab(table.y[rows], table.groups[rows], normalize=True).to_numpy()
        assert np.abs(share - cells).max() <= 1.0 / len(rows) + 1e-12
    (again,) = make_splits(table, 0)
    np.testing.assert_array_equal(again.evaluate["test"], test)
    (other,) = make_splits(table, 1)
    assert set(other.evaluate["test"]) != set(test)


def test_adult_keeps_its_test_file_and_carves_validation_from_training():
    table = load_table("adult")
    (p0,) = make_splits(table, 0)
    (p1,) = make_splits(table, 1)
    np.testing.assert_array_equal(p0.evaluate["test"], np.flatnonzero(table.fixed_test))
    assert len(p0.evaluate["test"]) == 15060
    assert len(p0.train) + len(p0.evaluate["validation"]) == 30162
    assert len(p0.evaluate["validation"]) == pytest.approx(0.2 * 30162, abs=1)
    assert set(p0.evaluate["validation"]) != set(p1.evaluate["validation"])
    (quick,) = make_splits(table, 0, quick=True)
    assert (len(quick.train), len(quick.evaluate["validation"]), len(quick.evaluate["test"])) == (
        3000,
        1500,
        3000,
    )


def test_cv_folds_cover_the_training_rows_once():
    table = load_table("german_credit")
    parts = make_splits(table, 0, cv=3)
    folds, refit = parts[:-1], parts[-1]
    val = np.concatenate([p.evaluate["validation"] for p in folds])
    assert sorted(val) == sorted(refit.train) and len(set(val)) == len(val) == 800
    assert list(refit.evaluate) == ["test"] and refit.fold is None
    assert [p.fold for p in folds] == [0, 1, 2]


def test_sensitive_columns_are_never_features(frame):
    table = load_table(data=frame, target="label", sensitive="gender", positive="yes")
    (part,) = make_splits(table, 0)
    flipped = frame.assign(gender=frame["gender"].map({"female": "male", "male": "female"}))
    table2 = load_table(data=flipped, target="label", sensitive="gender", positive="yes")
    a, b = prepare(table, part), prepare(table2, part)
    assert a.n_features == 1 + 3  # age + one-hot job; no gender column
    for split in ("train", "validation", "test"):
        np.testing.assert_array_equal(a.X[split], b.X[split])
    with_sensitive = prepare(table, part, sensitive_block=True)
    np.testing.assert_array_equal(
        with_sensitive.X_sensitive["train"][:, 0],
        (frame["gender"].iloc[part.train] == "male").astype(float),
    )


def test_numeric_sensitive_column_with_many_values_is_refused(frame):
    with pytest.raises(ValueError, match="bin it"):
        load_table(data=frame, target="label", sensitive="age", positive="yes")


# ---------------------------------------------------------------- selection and intervals


def _runs(rows):
    """runs.csv rows from (method, point, seed, split, accuracy, dp)."""
    out = []
    for method, point, seed, split, acc, dp in rows:
        out.append(
            dict(
                method=method,
                family="f",
                params=json.dumps({"k": point}),
                seed=seed,
                split=split,
                accuracy=acc,
                balanced_accuracy=acc,
                dp_difference=dp,
                eo_difference=0.0,
                fit_seconds=1.0,
                sufficiency_gap=np.nan,
                point=point,
                fold=None,
            )
        )
    return pd.DataFrame(out)


HAND = _runs(
    [
        # seed 0: validation (accuracy, DP) of points 0, 1, 2; then their test figures
        ("m", 0, 0, "validation", 0.80, 0.005),
        ("m", 1, 0, "validation", 0.84, 0.015),
        ("m", 2, 0, "validation", 0.86, 0.060),
        ("m", 0, 0, "test", 0.79, 0.008),
        ("m", 1, 0, "test", 0.83, 0.025),
        ("m", 2, 0, "test", 0.85, 0.070),
        # seed 1: nothing meets 0.01; point 1 is the least unfair
        ("m", 0, 1, "validation", 0.81, 0.030),
        ("m", 1, 1, "validation", 0.78, 0.012),
        ("m", 2, 1, "validation", 0.87, 0.090),
        ("m", 0, 1, "test", 0.80, 0.020),
        ("m", 1, 1, "test", 0.77, 0.009),
        ("m", 2, 1, "test", 0.86, 0.080),
    ]
)


def test_selection_rule_on_a_hand_made_table():
    chosen = select_operating_points(HAND, [0.01, 0.02, 0.1]).set_index(["epsilon", "seed"])
    # eps 0.01, seed 0: only point 0 is feasible on validation
    assert chosen.loc[(0.01, 0), "point"] == 0 and chosen.loc[(0.01, 0), "feasible"]
    assert chosen.loc[(0.01, 0), "accuracy"] == 0.79 and not chosen.loc[(0.01, 0), "violated"]
    # eps 0.01, seed 1: none feasible -> the least unfair (point 1), flagged
    assert chosen.loc[(0.01, 1), "point"] == 1 and not chosen.loc[(0.01, 1), "feasible"]
    assert chosen.loc[(0.01, 1), "fairness"] == 0.009
    # eps 0.02: best validation accuracy among feasible; seed 0 point 1 breaks it on test
    assert chosen.loc[(0.02, 0), "point"] == 1 and chosen.loc[(0.02, 0), "violated"]
    assert chosen.loc[(0.02, 1), "point"] == 1 and chosen.loc[(0.02, 1), "feasible"]
    # eps 0.1: everything is feasible -> the most accurate point on validation
    assert list(chosen.loc[0.1, "point"]) == [2, 2]


def test_selection_breaks_ties_by_unfairness_then_grid_order():
    runs = _runs(
        [
            ("m", 0, 0, "validation", 0.85, 0.010),
            ("m", 1, 0, "validation", 0.85, 0.004),
            ("m", 2, 0, "validation", 0.85, 0.004),
            ("m", 0, 0, "test", 0.8, 0.0),
            ("m", 1, 0, "test", 0.8, 0.0),
            ("m", 2, 0, "test", 0.8, 0.0),
        ]
    )
    assert select_operating_points(runs, [0.02])["point"].tolist() == [1]


def test_cross_validation_folds_are_averaged_before_choosing():
    rows = _runs(
        [
            ("m", 0, 0, "validation", 0.90, 0.001),
            ("m", 0, 0, "validation", 0.70, 0.040),
            ("m", 1, 0, "validation", 0.78, 0.015),
            ("m", 1, 0, "validation", 0.78, 0.015),
            ("m", 0, 0, "test", 0.8, 0.0),
            ("m", 1, 0, "test", 0.7, 0.0),
        ]
    )
    # point 0: mean accuracy 0.80 but mean DP 0.0205 > 0.02; point 1 is feasible
    assert select_operating_points(rows, [0.02])["point"].tolist() == [1]


def test_t_interval_matches_a_hand_computation():
    mean, low, high = t_interval([0.80, 0.82, 0.84])
    half = 4.302652729911275 * 0.02 / math.sqrt(3)  # t_{0.975, 2} * s / sqrt(n)
    assert mean == pytest.approx(0.82)
    assert (low, high) == (pytest.approx(0.82 - half), pytest.approx(0.82 + half))
    assert t_interval([0.5])[0] == 0.5 and math.isnan(t_interval([0.5])[1])
    assert t_interval([0.7, 0.7, 0.7])[1:] == (pytest.approx(0.7), pytest.approx(0.7))


def test_summary_of_the_hand_made_table():
    frame = summarize(select_operating_points(HAND, [0.01, 0.02]))
    summary = frame.set_index("epsilon")
    s = summary.loc[0.01]
    assert s["n_seeds"] == 2 and s["none_feasible"] == 1
    assert s["accuracy_mean"] == pytest.approx(0.78)
    half = 12.706204736174698 * np.std([0.79, 0.77], ddof=1) / math.sqrt(2)
    assert s["accuracy_low"] == pytest.approx(0.78 - half)
    assert s["accuracy_high"] == pytest.approx(0.78 + half)
    assert s["fairness_mean"] == pytest.approx((0.008 + 0.009) / 2)
    assert s["violation_rate"] == 0.0
    assert summary.loc[0.02, "violation_rate"] == 0.5  # seed 0's point breaks 0.02 on test
    assert list(frame.columns[:8]) == [
        "method",
        "epsilon",
        "n_seeds",
        "accuracy_mean",
        "accuracy_low",
        "accuracy_high",
        "fairness_mean",
        "violation_rate",
    ]


@pytest.mark.parametrize("seed", range(4))
def test_parity_gaps_equal_fairlearn(seed):
    rng = np.random.default_rng(seed)
    n = 200
    groups = rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.4, 0.1])
    y = rng.integers(0, 2, n)
    y[groups == "c"] = 1  # a group without negatives: its false-positive rate is 0
    pred = rng.integers(0, 2, n)
    dp, eo = compare.parity_gaps(y, pred, groups)
    assert dp == pytest.approx(fl_dpd(y, pred, sensitive_features=groups), abs=1e-12)
    assert eo == pytest.approx(fl_eod(y, pred, sensitive_features=groups), abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_signed_tpr_gap_equals_separation_gap(seed):
    rng = np.random.default_rng(seed)
    groups = rng.choice(["m", "f"], size=300)
    y, pred = rng.integers(0, 2, 300), rng.integers(0, 2, 300)
    expected = separation_gap(y, pred, sensitive_features=groups, k=1)
    assert compare.signed_tpr_gap(y, pred, groups) == pytest.approx(expected, abs=1e-12)
    assert math.isnan(compare.signed_tpr_gap(y, pred, rng.choice(list("abc"), size=300)))
    row = compare.evaluate_predictions(y, pred, None, groups)
    assert row["tpr_gap"] == pytest.approx(expected, abs=1e-12)


def test_plot_on_names_score_and_unfairness_columns():
    m = Method("m", LogisticRegression(), plot_on=[("balanced_accuracy", "sufficiency_gap")])
    assert m.plot_on == (("balanced_accuracy", "sufficiency_gap"),)
    with pytest.raises(ValueError, match="plot_on takes"):
        Method("m", LogisticRegression(), plot_on=["sufficiency_gap"])
    assert METHODS["facims"].plot_on == (("balanced_accuracy", "sufficiency_gap"),)
    assert METHODS["robust"].plot_on == (("accuracy", "tpr_gap"),)


# ---------------------------------------------------------------- the runner's numbers


class _Counting(ClassifierMixin, BaseEstimator):
    """LogisticRegression that counts its fits, and can stop a run like Ctrl-C."""

    fits = 0
    interrupt_at = None

    def __init__(self, C=1.0):
        self.C = C

    def fit(self, X, y):
        type(self).fits += 1
        if type(self).interrupt_at is not None and type(self).fits >= type(self).interrupt_at:
            raise KeyboardInterrupt
        self.lr_ = LogisticRegression(C=self.C, max_iter=1000).fit(X, y)
        self.classes_ = self.lr_.classes_
        return self

    def predict(self, X):
        return self.lr_.predict(X)


COUNTING = Method("counting", _Counting(), knob="C", grid=(0.01, 0.1, 1.0))


@pytest.fixture(scope="module")
def small_run(frame, tmp_path_factory):
    out = tmp_path_factory.mktemp("cmp")
    result = run_comparison(
        data=frame,
        target="label",
        sensitive="gender",
        positive="yes",
        methods=["logreg,threshold_dp,fair_mlp", COUNTING],
        seeds=2,
        out=out,
        **QUICK,
    )
    return result, out


def test_logreg_rows_equal_a_direct_computation(small_run, frame):
    result, _ = small_run
    table = load_table(data=frame, target="label", sensitive="gender", positive="yes")
    (part,) = make_splits(table, 1, quick=True)
    pre = make_preprocessor(table.X, sensitive="gender", keep_sensitive=False)
    Xtr = pre.fit_transform(table.X.iloc[part.train]).to_numpy(np.float32)
    lr = LogisticRegression(max_iter=1000, solver="newton-cholesky").fit(Xtr, table.y[part.train])
    runs = result.runs
    for split, rows in part.evaluate.items():
        X = pre.transform(table.X.iloc[rows]).to_numpy(np.float32)
        y, A = table.y[rows], frame["gender"].to_numpy()[rows]
        pred, proba = lr.predict(X), lr.predict_proba(X)[:, 1]
        row = runs[
            (runs["method"] == "logreg") & (runs["seed"] == 1) & (runs["split"] == split)
        ].iloc[0]
        assert row["accuracy"] == pytest.approx(accuracy_score(y, pred))
        assert row["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
        assert row["dp_difference"] == pytest.approx(fl_dpd(y, pred, sensitive_features=A))
        assert row["eo_difference"] == pytest.approx(fl_eod(y, pred, sensitive_features=A))
        assert row["sufficiency_gap"] == pytest.approx(
            sufficiency_gap(y, proba, sensitive_features=A, n_bins=5)
        )
        assert row["fit_seconds"] > 0 and row["params"] == "{}"


def test_threshold_optimizer_rows_use_the_sensitive_features_at_predict(small_run, frame):
    result, _ = small_run
    table = load_table(data=frame, target="label", sensitive="gender", positive="yes")
    (part,) = make_splits(table, 0, quick=True)
    p = prepare(table, part)
    A = frame["gender"].to_numpy()
    to = ThresholdOptimizer(
        estimator=float64_scores(LogisticRegression(max_iter=1000, solver="newton-cholesky")),
        constraints="demographic_parity",
        predict_method="predict_proba",
        tol=0.01,
    )
    to.fit(p.X["train"], p.y["train"], sensitive_features=A[part.train])
    rows = part.evaluate["test"]
    pred = to.predict(p.X["test"], sensitive_features=A[rows], random_state=0)
    runs = result.runs
    row = runs[
        (runs["method"] == "threshold_dp")
        & (runs["seed"] == 0)
        & (runs["split"] == "test")
        & (runs["params"] == '{"tol": 0.01}')
    ].iloc[0]
    assert row["accuracy"] == pytest.approx(accuracy_score(p.y["test"], pred))
    assert row["dp_difference"] == pytest.approx(
        fl_dpd(p.y["test"], pred, sensitive_features=A[rows])
    )


def test_user_method_runs_every_knob_value(small_run):
    result, _ = small_run
    mine = result.runs[result.runs["method"] == "counting"]
    assert sorted(mine["params"].unique()) == ['{"C": 0.01}', '{"C": 0.1}', '{"C": 1.0}']
    assert len(mine) == 3 * 2 * 2  # knob values x seeds x (validation, test)
    assert set(result.summary["method"]) == {"logreg", "threshold_dp", "fair_mlp", "counting"}


def test_outputs_are_written(small_run):
    result, out = small_run
    runs = pd.read_csv(out / "runs.csv")
    assert list(runs.columns[:10]) == [
        "method",
        "family",
        "params",
        "seed",
        "split",
        "accuracy",
        "balanced_accuracy",
        "dp_difference",
        "eo_difference",
        "fit_seconds",
    ]
    assert list(runs.columns) == RUN_COLUMNS and set(runs["split"]) == {"validation", "test"}
    np.testing.assert_allclose(runs["accuracy"], result.runs["accuracy"])
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 4 * 2  # methods x epsilons
    html_text = (out / "report.html").read_text()
    assert "<table" in html_text
    assert 'src="http' not in html_text and "src='http" not in html_text
    md = (out / "report.md").read_text()
    assert "## Best method per bound" in md and "epsilon = 0.02" in md
    assert json.loads((out / "info.json").read_text())["info"]["seeds"] == [0, 1]


def test_the_pareto_plot_is_written_and_inlined(small_run):
    pytest.importorskip("matplotlib")  # the plot extra
    _, out = small_run
    assert "data:image/png;base64," in (out / "report.html").read_text()
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_finished_run_reads_back_and_chooses_for_other_epsilons(small_run):
    result, out = small_run
    again = compare.load_result(out)
    pd.testing.assert_frame_equal(again.runs, result.runs)
    pd.testing.assert_frame_equal(again.summary, result.summary)
    other = compare.load_result(out, epsilons=[0.05])
    assert set(other.summary["epsilon"]) == {0.05}
    assert other.summary.set_index("method").loc["threshold_dp", "sensitive_at_predict"]
    assert "threshold_dp (A at predict)" in (out / "report.md").read_text()


def test_without_matplotlib_the_plot_is_skipped_with_a_note(small_run, tmp_path, monkeypatch):
    result, _ = small_run
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    files = compare.write_outputs(result, tmp_path)
    assert "png" not in files and not (tmp_path / "pareto.png").exists()
    assert "skfairbilevel[plot]" in (tmp_path / "report.md").read_text()


def test_second_run_fits_nothing_and_gives_the_same_rows(small_run, frame):
    result, out = small_run
    _Counting.fits = 0
    again = run_comparison(
        data=frame,
        target="label",
        sensitive="gender",
        positive="yes",
        methods=["logreg,threshold_dp,fair_mlp", COUNTING],
        seeds=2,
        out=out,
        **QUICK,
    )
    assert _Counting.fits == 0
    assert again.info["fits_run"] == 0
    assert again.info["fits_cached"] == again.info["fits_planned"] == result.info["fits_planned"]
    pd.testing.assert_frame_equal(again.runs, result.runs)


def test_an_interrupted_run_resumes_where_it_stopped(frame, tmp_path):
    kwargs = dict(
        data=frame,
        target="label",
        sensitive="gender",
        positive="yes",
        methods=["logreg", COUNTING],
        seeds=2,
        out=tmp_path,
        **QUICK,
    )
    _Counting.fits, _Counting.interrupt_at = 0, 4
    try:
        first = run_comparison(**kwargs)
    finally:
        _Counting.interrupt_at = None
    assert first.interrupted and any("interrupted" in n for n in first.notes)
    done = first.info["fits_run"]
    assert done == 5  # seed 0's four fits and seed 1's logreg, then the interruption
    _Counting.fits = 0
    second = run_comparison(**kwargs)
    assert not second.interrupted
    assert second.info["fits_cached"] == done
    assert second.info["fits_run"] == _Counting.fits == 8 - done
    fresh = run_comparison(**{**kwargs, "out": None})
    pd.testing.assert_frame_equal(
        second.runs.drop(columns="fit_seconds"), fresh.runs.drop(columns="fit_seconds")
    )


def test_two_jobs_give_the_same_numbers_as_one(small_run, frame):
    one, _ = small_run
    two = run_comparison(
        data=frame,
        target="label",
        sensitive="gender",
        positive="yes",
        methods="logreg,threshold_dp,fair_mlp",
        seeds=2,
        out=None,
        **{**QUICK, "n_jobs": 2},
    )
    assert two.info["fits_run"] == 2 * (1 + 3 + 5)
    mine = one.runs[one.runs["method"] != "counting"].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        mine.drop(columns="fit_seconds"), two.runs.drop(columns="fit_seconds")
    )
    pd.testing.assert_frame_equal(
        one.summary[one.summary["method"] != "counting"].reset_index(drop=True), two.summary
    )


def test_cv_validates_on_folds_and_refits_for_the_test_figures(frame):
    result = run_comparison(
        data=frame,
        target="label",
        sensitive="gender",
        positive="yes",
        methods=[COUNTING],
        seeds=1,
        cv=3,
        out=None,
        **QUICK,
    )
    runs = result.runs
    val, test = runs[runs["split"] == "validation"], runs[runs["split"] == "test"]
    assert sorted(val["fold"].unique()) == [0, 1, 2] and len(val) == 3 * 3
    assert len(test) == 3 and test["fold"].isna().all()
    assert result.info["fits_run"] == 3 * (3 + 1)
    chosen = result.chosen[result.chosen["epsilon"] == 0.1].iloc[0]
    folds = val[val["params"] == chosen["params"]]
    assert chosen["val_accuracy"] == pytest.approx(folds["accuracy"].mean())
    assert chosen["accuracy"] == test[test["params"] == chosen["params"]]["accuracy"].item()


def test_scheduler_without_dask_names_the_extra(frame, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ValueError, match=r"skfairbilevel\[dask\]"):
        run_comparison(
            data=frame,
            target="label",
            sensitive="gender",
            positive="yes",
            methods="logreg",
            seeds=1,
            out=None,
            scheduler="tcp://nowhere:1",
            progress=False,
            quick=True,
        )


def test_the_user_guide_lists_every_method():
    from pathlib import Path

    page = Path(__file__).resolve().parents[1] / "doc" / "user_guide" / "runner.rst"
    text = page.read_text()
    assert all(f"``{name}``" in text for name in METHODS)


def test_sufficiency_needs_probabilities_and_says_who_has_none(frame):
    from sklearn.linear_model import RidgeClassifier

    ridge = Method("ridge", RidgeClassifier())
    result = run_comparison(
        data=frame,
        target="label",
        sensitive="gender",
        positive="yes",
        methods=["logreg", ridge],
        seeds=1,
        metric="sg",
        out=None,
        **QUICK,
    )
    assert set(result.summary["method"]) == {"logreg"}
    assert any(n.startswith("ridge: no sufficiency_gap") for n in result.notes)
    assert result.runs.loc[result.runs["method"] == "ridge", "sufficiency_gap"].isna().all()


def test_a_failing_fit_is_reported_and_the_rest_runs(frame):
    bad = Method("bad", LogisticRegression(max_iter=1000), knob="C", grid=(1.0, -1.0))
    result = run_comparison(
        data=frame,
        target="label",
        sensitive="gender",
        positive="yes",
        methods=["logreg", bad],
        seeds=1,
        out=None,
        **QUICK,
    )
    assert list(result.failed) == ["bad"] and "C" in result.failed["bad"][0]
    assert set(result.runs["params"][result.runs["method"] == "bad"]) == {'{"C": 1.0}'}


def test_metric_sets_the_target_of_our_estimators():
    s = compare.Settings(seed=3, quick=True, fairness="equalized_odds")
    est = METHODS["fair_mlp"].make(s, {"fairness_weight": 7.0})
    assert est.fairness == "equalized_odds" and est.random_state == 3
    assert est.fairness_weight == 7.0
    with pytest.raises(ValueError, match="no parameter"):
        METHODS["fair_mlp"].make(s, {"no_such": 1})
    assert compare.resolve_metric("eo") == "equalized_odds"


def test_every_registered_method_builds_with_its_grid():
    for full in (False, True):
        s = compare.Settings(full=full, quick=not full)
        for m in METHODS.values():
            if m.unavailable():
                continue
            grid = m.param_grid(s)
            assert grid and all(isinstance(p, dict) for p in grid)
            for params in grid:
                est = m.make(s, params)
                for k, v in params.items():
                    assert est.get_params()[k] == v
            if len(grid) > 1:
                assert len(grid) >= 3, m.name  # --quick needs at least 3 knob values


def test_resolve_methods_groups_and_errors():
    names = [m.name for m in compare.resolve_methods(None)]
    assert names == list(METHODS)
    ours = [m.name for m in compare.resolve_methods("ours")]
    assert "fair_mlp" in ours and "logreg" not in ours
    assert [m.name for m in compare.resolve_methods("logreg, logreg,eg_dp")] == ["logreg", "eg_dp"]
    with pytest.raises(ValueError, match="unknown method"):
        compare.resolve_methods("logreg,nope")
    with pytest.raises(ValueError, match="empty"):
        compare.resolve_methods(" , ")
    with pytest.raises(ValueError, match="identifier"):
        Method("my method", LogisticRegression())


# ---------------------------------------------------------------- command line


def test_cli_on_a_csv_with_string_columns_and_a_string_target(frame, tmp_path, capsys):
    csv = tmp_path / "people.csv"
    frame.to_csv(csv, index=False)
    code = main(
        [
            "compare",
            "--data",
            str(csv),
            "--target",
            "label",
            "--positive",
            "yes",
            "--sensitive",
            "gender",
            "--methods",
            "logreg,threshold_dp",
            "--seeds",
            "1",
            "--quick",
            "--n-jobs",
            "1",
            "--no-progress",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "female (" in out and "threshold_dp" in out and "epsilon = 0.01" in out
    runs = pd.read_csv(tmp_path / "o" / "runs.csv")
    assert set(runs["method"]) == {"logreg", "threshold_dp"} and len(runs) == 2 * (1 + 3)


@pytest.fixture(scope="module")
def csv_path(frame, tmp_path_factory):
    path = tmp_path_factory.mktemp("csv") / "t.csv"
    frame.to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--seeds", "0"], "--seeds must be >= 1"),
        (["--epsilons", "0.01,abc"], "--epsilons must be comma-separated numbers"),
        (["--epsilons", "2"], "fairness bounds in (0, 1]"),
        (["--n-jobs", "0"], "--n-jobs must be >= 1"),
        (["--methods", "nope"], "unknown method"),
        (["--dataset", "mnist"], "invalid choice"),
        (["--sensitive", "shoe_size", "--methods", "logreg"], "shoe_size"),
        (["--quick", "--full"], "exclude each other"),
        (["--metric", "fairness"], "invalid choice"),
        (["--threads", "0"], "--threads must be >= 1"),
        (["--target", "y"], "go with --data"),
        (["--data", "{csv}", "--target", "nope", "--sensitive", "gender"], "'nope'"),
        (["--data", "{csv}", "--target", "label", "--sensitive", "sex"], "'sex'"),
        (["--data", "{csv}", "--target", "label", "--sensitive", "gender"], "--positive"),
        (
            ["--data", "{csv}", "--target", "label", "--sensitive", "age", "--positive", "yes"],
            "bin it",
        ),
        (["--data", "/no/such.csv", "--target", "label", "--sensitive", "gender"], "not a file"),
    ],
)
def test_cli_bad_options_get_one_line_and_exit_2(argv, message, csv_path, capsys):
    argv = [a.replace("{csv}", csv_path) for a in argv]
    code = main(["compare", "--no-progress", "--out", "/tmp/never-written"] + argv)
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_cli_no_command_and_bad_out(tmp_path, capsys):
    assert main([]) == 2
    assert "compare" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["compare", "--out", str(blocker)]) == 2


def test_module_entry_point_in_subprocess():
    proc = subprocess.run(
        [sys.executable, "-m", "skfairbilevel", "compare", "--cv", "x"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "--cv must be an integer" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_list_methods_shows_knobs_and_grids(capsys):
    assert main(["compare", "--list-methods"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in METHODS)
    assert "fairness_weight: 0.3, 1.0, 3.0, 10.0, 30.0" in out and "(fitted once)" in out
