"""Tests of the comparison runner (skfairbilevel.compare) and its command line."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import demographic_parity_difference as fl_dpd
from fairlearn.metrics import equalized_odds_difference as fl_eod
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.model_selection import StratifiedKFold

from skfairbilevel import compare
from skfairbilevel.__main__ import main
from skfairbilevel.compare import (
    METHODS,
    Method,
    load_data,
    resolve_methods,
    run_comparison,
)
from skfairbilevel.datasets import make_preprocessor
from skfairbilevel.metrics import sufficiency_gap

# german_credit: 1000 rows -> 700 train / 300 test; small enough for every test here
GERMAN = dict(dataset="german_credit", quick=True, progress=False)


@pytest.fixture(scope="module")
def german():
    return load_data("german_credit", quick=True)


@pytest.fixture(scope="module")
def split_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cmp")
    result = run_comparison(methods="logreg,threshold_dp,fair_mlp", out=out, **GERMAN)
    return result, out


def _manual_logreg(data):
    pre = make_preprocessor(data["X_train"], sensitive=data["sensitive"], keep_sensitive=False)
    Xtr = pre.fit_transform(data["X_train"])
    Xte = pre.transform(data["X_test"])
    lr = LogisticRegression(max_iter=1000).fit(Xtr, data["y_train"])
    return lr, Xtr, Xte


# ---------------------------------------------------------------- data


def test_split_is_documented_and_stratified(german):
    assert len(german["y_train"]) == 700 and len(german["y_test"]) == 300
    assert german["sensitive"] == ["sex"]
    # stratified on target x group: the cell shares agree to within a row
    for part in ("train", "test"):
        cells = pd.crosstab(german[f"y_{part}"], german[f"A_{part}"], normalize=True)
        ref = pd.crosstab(pd.concat([german["y_train"], german["y_test"]], ignore_index=True),
                          pd.concat([german["A_train"], german["A_test"]], ignore_index=True),
                          normalize=True)
        assert np.abs(cells - ref).to_numpy().max() < 2 / len(german[f"y_{part}"])
    again = load_data("german_credit", quick=True)
    pd.testing.assert_frame_equal(again["X_test"], german["X_test"])


def test_adult_uses_official_split():
    data = load_data("adult")
    assert (len(data["y_train"]), len(data["y_test"])) == (30162, 15060)
    quick = load_data("adult", quick=True)
    assert (len(quick["y_train"]), len(quick["y_test"])) == (3000, 3000)
    assert quick["y_train"].mean() == pytest.approx(data["y_train"].mean(), abs=1e-3)


def test_intersectional_sensitive():
    data = load_data("german_credit", "sex,age_group")
    assert data["sensitive"] == ["sex", "age_group"]
    assert data["A_train"].shape[1] == 2


# ---------------------------------------------------------------- numbers


def test_logreg_row_equals_direct_computation(split_run, german):
    result, _ = split_run
    row = result.table.set_index("method").loc["logreg"]
    lr, _, Xte = _manual_logreg(german)
    pred, proba = lr.predict(Xte), lr.predict_proba(Xte)[:, 1]
    yte, Ate = german["y_test"], german["A_test"]
    assert row["accuracy"] == pytest.approx(accuracy_score(yte, pred))
    assert row["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(yte, pred))
    assert row["dp_difference"] == pytest.approx(fl_dpd(yte, pred, sensitive_features=Ate))
    assert row["eo_difference"] == pytest.approx(fl_eod(yte, pred, sensitive_features=Ate))
    assert row["sufficiency_gap"] == pytest.approx(
        sufficiency_gap(yte, proba, sensitive_features=Ate, n_bins=5))
    assert row["fit_seconds"] > 0


def test_threshold_optimizer_uses_A_at_predict(split_run, german):
    from fairlearn.postprocessing import ThresholdOptimizer

    result, _ = split_run
    row = result.table.set_index("method").loc["threshold_dp"]
    assert "uses A at predict" in row["note"]
    assert any("predict time" in n for n in result.notes)
    lr, Xtr, Xte = _manual_logreg(german)
    to = ThresholdOptimizer(estimator=LogisticRegression(max_iter=1000),
                            constraints="demographic_parity", predict_method="predict_proba")
    to.fit(Xtr, german["y_train"], sensitive_features=german["A_train"])
    pred = to.predict(Xte, sensitive_features=german["A_test"], random_state=0)
    assert row["accuracy"] == pytest.approx(accuracy_score(german["y_test"], pred))
    assert row["dp_difference"] == pytest.approx(
        fl_dpd(german["y_test"], pred, sensitive_features=german["A_test"]))
    # ThresholdOptimizer trades accuracy for parity on the training data
    assert row["dp_difference"] < result.table.set_index("method").loc["logreg",
                                                                         "dp_difference"]


def test_outputs_written(split_run):
    result, out = split_run
    csv = pd.read_csv(out / "results.csv")
    assert list(csv.columns[:8]) == compare.COLUMNS
    np.testing.assert_allclose(csv["accuracy"], result.table["accuracy"])
    payload = json.loads((out / "results.json").read_text())
    assert payload["info"]["dataset"] == "german_credit"
    assert payload["info"]["n_test"] == 300
    assert [r["method"] for r in payload["results"]] == list(result.table["method"])
    png = (out / "pareto.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_same_seed_same_table_other_seed_differs(split_run, tmp_path):
    result, _ = split_run
    again = run_comparison(methods="logreg,threshold_dp,fair_mlp", out=None, **GERMAN)
    cols = [c for c in compare.COLUMNS if c not in ("fit_seconds",)]
    pd.testing.assert_frame_equal(again.table[cols], result.table[cols])
    other = run_comparison(methods="fair_mlp", out=None, seed=1, **GERMAN)
    mine = result.table.set_index("method").loc["fair_mlp"]
    assert other.table.loc[0, "accuracy"] != mine["accuracy"] or \
        other.table.loc[0, "sufficiency_gap"] != mine["sufficiency_gap"]


def test_cv_matches_manual_cross_validation(german, tmp_path):
    result = run_comparison(methods="logreg,threshold_eo", cv=3, out=None, **GERMAN)
    table = result.table.set_index("method")
    X, y, A = german["X_train"], german["y_train"], german["A_train"]
    accs, dps = [], []
    for tr, te in StratifiedKFold(3, shuffle=True, random_state=0).split(X, y):
        pre = make_preprocessor(X, sensitive=["sex"], keep_sensitive=False)
        Xtr = pre.fit_transform(X.iloc[tr])
        lr = LogisticRegression(max_iter=1000).fit(Xtr, y.iloc[tr])
        pred = lr.predict(pre.transform(X.iloc[te]))
        accs.append(accuracy_score(y.iloc[te], pred))
        dps.append(fl_dpd(y.iloc[te], pred, sensitive_features=A.iloc[te]))
    assert table.loc["logreg", "accuracy"] == pytest.approx(np.mean(accs))
    assert table.loc["logreg", "accuracy_std"] == pytest.approx(np.std(accs, ddof=1))
    assert table.loc["logreg", "dp_difference"] == pytest.approx(np.mean(dps))
    assert np.isfinite(table.loc["threshold_eo", "eo_difference_std"])
    assert result.info["evaluation"] == "3-fold CV on the training rows"


def test_threads_are_limited_during_the_run_and_restored(monkeypatch):
    import torch
    from threadpoolctl import threadpool_info

    before = torch.get_num_threads()
    seen = {}

    def spy(s, notes):
        seen["torch"] = torch.get_num_threads()
        seen["blas"] = {p["num_threads"] for p in threadpool_info()}
        return LogisticRegression(max_iter=1000)

    monkeypatch.setitem(METHODS, "spy", Method("spy", "scikit-learn", spy,
                                               uses_sensitive=False))
    run_comparison(methods="spy", out=None, n_threads=1, **GERMAN)
    assert seen["torch"] == 1 and seen["blas"] <= {1}
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="n_threads"):
        run_comparison(methods="logreg", out=None, n_threads=0, **GERMAN)


def test_metric_sets_the_target_of_our_estimators(german):
    s = compare.Settings(seed=0, quick=True, fairness="equalized_odds",
                         sensitive=("sex",), n_train=700)
    notes = []
    est = METHODS["fair_mlp"].build(s, notes)
    assert est.fairness == "equalized_odds" and est.random_state == 0 and not notes
    assert compare.resolve_metric("eo") == "equalized_odds"
    with pytest.raises(ValueError, match="unknown metric"):
        compare.resolve_metric("parity")


# ---------------------------------------------------------------- registry behaviour


def test_resolve_methods_groups_and_errors():
    assert resolve_methods(None) == list(METHODS)
    ours = resolve_methods("ours")
    assert "fair_mlp" in ours and "logreg" not in ours
    assert resolve_methods("logreg, logreg,eg_dp") == ["logreg", "eg_dp"]
    with pytest.raises(ValueError, match="unknown method"):
        resolve_methods("logreg,nope")
    with pytest.raises(ValueError, match="empty"):
        resolve_methods(" , ")


def test_unavailable_method_is_skipped_and_failure_is_reported(monkeypatch):
    monkeypatch.setitem(METHODS, "ghost", Method(
        "ghost", "skfairbilevel", lambda s, n: None, requires="skfairbilevel._not_there"))

    def broken(s, notes):
        raise RuntimeError("boom")

    monkeypatch.setitem(METHODS, "broken", Method("broken", "scikit-learn", broken,
                                                  uses_sensitive=False))
    result = run_comparison(methods="ghost,broken,logreg", out=None, **GERMAN)
    assert list(result.table["method"]) == ["logreg"]
    assert any(n.startswith("ghost: skipped") for n in result.notes)
    assert result.failed == {"broken": "RuntimeError: boom"}


def test_configure_drops_unknown_and_invalid_parameters():
    from skfairbilevel import FairMLPClassifier

    notes = []
    est = compare._configure(FairMLPClassifier, dict(max_epochs=3, no_such=1,
                                                     fairness="bogus"), notes)
    assert est.max_epochs == 3 and est.fairness is None
    assert "no_such" in notes[0] and "fairness" in notes[0]


# ---------------------------------------------------------------- command line


def test_cli_runs_and_prints_table(tmp_path, capsys):
    code = main(["compare", "--dataset", "german_credit", "--quick", "--methods",
                 "logreg,correlation_remover", "--no-progress", "--out", str(tmp_path),
                 "--metric", "eo"])
    assert code == 0
    out = capsys.readouterr().out
    assert "correlation_remover" in out and "EO diff" in out
    assert (tmp_path / "results.csv").exists()
    info = json.loads((tmp_path / "results.json").read_text())["info"]
    assert info["metric"] == "equalized_odds"


@pytest.mark.parametrize("argv, message", [
    (["compare", "--cv", "1"], "--cv must be >= 2"),
    (["compare", "--seed", "-1"], "--seed must be >= 0"),
    (["compare", "--methods", "nope"], "unknown method"),
    (["compare", "--dataset", "mnist"], "invalid choice"),
    (["compare", "--sensitive", "shoe_size", "--methods", "logreg"], "shoe_size"),
    (["compare", "--metric", "fairness"], "invalid choice"),
    (["compare", "--threads", "0"], "--threads must be >= 1"),
])
def test_cli_bad_options_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_no_command_and_bad_out(tmp_path, capsys):
    assert main([]) == 2
    assert "compare" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SystemExit) as exc:
        main(["compare", "--out", str(blocker)])
    assert exc.value.code == 2


def test_module_entry_point_in_subprocess():
    proc = subprocess.run([sys.executable, "-m", "skfairbilevel", "compare", "--cv", "x"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "--cv must be an integer" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_list_methods(capsys):
    assert main(["compare", "--list-methods"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in METHODS)
