"""Explicit validation data in ``fit`` (``X_val``, ``y_val``, ``sensitive_features_val``,
``sample_weight_val``): processed like the training rows, used instead of the held-out
split, and every inconsistent combination refused with a message naming the argument."""

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

from skfairbilevel import FairBiNNClassifier, FairMLPClassifier


def biased_data(n, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 3, n)
    X = rng.normal(size=(n, 4)) + 0.8 * a[:, None] * np.array([1.0, 0, 0, 0])
    y = (X[:, 0] + 0.5 * X[:, 1] + 0.5 * rng.normal(size=n) > 0.6).astype(int)
    return X.astype(np.float32), y, np.array(["a", "b", "c"], dtype=object)[a]


@pytest.fixture(scope="module")
def data():
    X, y, A = biased_data(300, 0)
    Xv, yv, Av = biased_data(120, 1)
    return X, y, A, Xv, yv, Av


def mlp(**kw):
    # n_iter_no_change > max_epochs: never stops early, the last epoch's weights are kept
    params = dict(
        hidden_layer_sizes=(8,),
        max_epochs=6,
        batch_size=64,
        lr=1e-2,
        early_stopping=True,
        n_iter_no_change=100,
        random_state=0,
    )
    params.update(kw)
    return FairMLPClassifier(**params)


def cross_entropy(P, y, w=None):
    nll = -np.log(P[np.arange(len(y)), y])
    return float(np.average(nll, weights=w))


def test_validation_metrics_are_those_of_the_given_rows(data):
    X, y, A, Xv, yv, Av = data
    clf = mlp().fit(X, y, sensitive_features=A, X_val=Xv, y_val=yv, sensitive_features_val=Av)
    last = clf.history_[-1]
    P = clf.predict_proba(Xv)
    pred = clf.predict(Xv)
    assert last["val_loss"] == pytest.approx(cross_entropy(P, yv), abs=1e-5)
    assert last["val_accuracy"] == pytest.approx(np.mean(pred == yv), abs=1e-6)
    assert last["val_dp"] == pytest.approx(
        demographic_parity_difference(yv, pred, sensitive_features=Av), abs=1e-6
    )
    assert last["val_eo"] == pytest.approx(
        equalized_odds_difference(yv, pred, sensitive_features=Av), abs=1e-6
    )
    # the training data are all of X: same model as without validation, since the
    # validation passes draw no random numbers
    plain = mlp(early_stopping=False).fit(X, y, sensitive_features=A)
    np.testing.assert_array_equal(plain.predict_proba(X), clf.predict_proba(X))
    assert len(plain.history_) == len(clf.history_) == 6


def test_groups_are_encoded_with_the_fitted_groups(data):
    X, y, A, Xv, yv, Av = data
    keep = Av != "a"  # validation rows of groups "b" and "c" only: ids 1 and 2, not 0, 1
    clf = mlp().fit(
        X,
        y,
        sensitive_features=A,
        X_val=Xv[keep],
        y_val=yv[keep],
        sensitive_features_val=list(Av[keep]),
    )
    pred = clf.predict(Xv[keep])
    assert clf.history_[-1]["val_dp"] == pytest.approx(
        demographic_parity_difference(yv[keep], pred, sensitive_features=Av[keep]), abs=1e-6
    )
    # the ids themselves (the gaps above do not depend on the labelling of the groups)
    rows = clf._prepare(Xv[keep], yv[keep], Av[keep], None, role="validation")
    Xc, yc, gc = rows.X[rows.index], rows.y[rows.index], rows.g[rows.index]
    where = {row.tobytes(): i for i, row in enumerate(Xv[keep])}
    original = np.array([where[row.tobytes()] for row in Xc])
    np.testing.assert_array_equal(clf.groups_[gc], Av[keep][original])
    np.testing.assert_array_equal(yc, yv[keep][original])
    assert rows.w is None and len(Xc) == keep.sum()
    # several sensitive columns: the groups are the combinations seen in training
    A2 = pd.DataFrame({"g": A, "h": (np.arange(len(A)) % 2).astype(str)})
    Av2 = pd.DataFrame({"g": Av, "h": (np.arange(len(Av)) % 2).astype(str)})
    clf2 = mlp().fit(X, y, sensitive_features=A2, X_val=Xv, y_val=yv, sensitive_features_val=Av2)
    pred2 = clf2.predict(Xv)
    assert clf2.history_[-1]["val_dp"] == pytest.approx(
        demographic_parity_difference(yv, pred2, sensitive_features=Av2), abs=1e-6
    )


def test_string_labels_and_weights_equal_repetition(data):
    X, y, A, Xv, yv, Av = data
    labels = np.array(["no", "yes"])
    w = np.tile([1, 2, 3], len(yv) // 3)
    clf = mlp(max_epochs=3).fit(
        X,
        labels[y],
        sensitive_features=A,
        X_val=Xv,
        y_val=labels[yv],
        sensitive_features_val=Av,
        sample_weight_val=w,
    )
    rep = np.repeat(np.arange(len(yv)), w)
    clf_rep = mlp(max_epochs=3).fit(
        X,
        labels[y],
        sensitive_features=A,
        X_val=Xv[rep],
        y_val=labels[yv][rep],
        sensitive_features_val=Av[rep],
    )
    for a, b in zip(clf.history_, clf_rep.history_, strict=True):
        assert a["val_loss"] == pytest.approx(b["val_loss"], abs=1e-6)
    P = clf.predict_proba(Xv)
    assert clf.history_[-1]["val_loss"] == pytest.approx(cross_entropy(P, yv, w), abs=1e-5)


def test_class_weight_applies_to_the_validation_rows(data):
    X, y, A, Xv, yv, Av = data
    clf = mlp(class_weight="balanced", max_epochs=3).fit(
        X, y, sensitive_features=A, X_val=Xv, y_val=yv, sensitive_features_val=Av
    )
    P = clf.predict_proba(Xv)
    cw = len(yv) / (2 * np.bincount(yv))
    assert clf.history_[-1]["val_loss"] == pytest.approx(cross_entropy(P, yv, cw[yv]), abs=1e-5)


def test_sensitive_feature_ids_read_and_dropped_from_X_val(data):
    X, y, A, Xv, yv, Av = data
    codes = {"a": 0.0, "b": 1.0, "c": 2.0}
    cols = ["x0", "x1", "x2", "x3"]
    frame = pd.DataFrame(X, columns=cols).assign(grp=[codes[a] for a in A])
    frame_v = pd.DataFrame(Xv, columns=cols).assign(grp=[codes[a] for a in Av])
    clf = mlp(sensitive_feature_ids="grp").fit(frame, y, X_val=frame_v, y_val=yv)
    pred = clf.predict(frame_v)
    assert clf.history_[-1]["val_dp"] == pytest.approx(
        demographic_parity_difference(yv, pred, sensitive_features=Av), abs=1e-6
    )
    P = clf.predict_proba(frame_v)
    assert clf.history_[-1]["val_loss"] == pytest.approx(cross_entropy(P, yv), abs=1e-5)
    with pytest.raises(ValueError, match="sensitive_features_val"):
        mlp(sensitive_feature_ids="grp").fit(
            frame, y, X_val=frame_v, y_val=yv, sensitive_features_val=Av
        )
    with pytest.raises(ValueError, match="feature names"):
        mlp(sensitive_feature_ids="grp").fit(
            frame, y, X_val=frame_v[cols[::-1] + ["grp"]], y_val=yv
        )


def test_fairbinn_record_validation_accepts_X_val(data):
    X, y, A, Xv, yv, Av = data
    kw = dict(hidden_layer_sizes=(8,), max_epochs=2, random_state=0)
    clf = FairBiNNClassifier(record_validation=True, **kw).fit(
        X, y, sensitive_features=A, X_val=Xv, y_val=yv, sensitive_features_val=Av
    )
    assert clf.history_[-1]["val_accuracy"] == pytest.approx(
        np.mean(clf.predict(Xv) == yv), abs=1e-6
    )
    with pytest.raises(ValueError, match="X_val.*early_stopping=True"):
        FairBiNNClassifier(**kw).fit(
            X, y, sensitive_features=A, X_val=Xv, y_val=yv, sensitive_features_val=Av
        )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(y_val="yv"), "y_val was given without X_val"),
        (dict(sensitive_features_val="Av"), "sensitive_features_val was given without X_val"),
        (dict(sample_weight_val="w"), "sample_weight_val was given without X_val"),
        (dict(X_val="Xv", sensitive_features_val="Av"), "X_val was given without y_val"),
        (dict(X_val="Xv", y_val="yv"), "without sensitive_features_val"),
        (
            dict(X_val="Xv", y_val="y3", sensitive_features_val="Av"),
            r"y_val contains label\(s\) \[3\] not seen in fit",
        ),
        (
            dict(X_val="Xv", y_val="yv", sensitive_features_val="Ad"),
            r"sensitive_features_val contains group\(s\) \['d'\] not seen",
        ),
        (
            dict(X_val="Xv", y_val="yv", sensitive_features_val="A2"),
            "sensitive_features_val has 2 column",
        ),
        (
            dict(X_val="Xv", y_val="yv", sensitive_features_val="Av", sample_weight_val="wneg"),
            "sample_weight_val contains negative",
        ),
        (
            dict(X_val="Xv", y_val="yv", sensitive_features_val="Av", sample_weight_val="wshort"),
            "sample_weight_val has shape .* but X_val has 120 rows",
        ),
        (dict(X_val="Xv", y_val="yshort", sensitive_features_val="Av"), "inconsistent"),
        (dict(X_val="Xwide", y_val="yv", sensitive_features_val="Av"), "5 features"),
        (dict(X_val="Xnan", y_val="yv", sensitive_features_val="Av"), "NaN"),
        (
            dict(X_val="Xv", y_val="yv", sensitive_features_val="Ashort"),
            "sensitive_features_val has 119 rows",
        ),
    ],
)
def test_bad_validation_arguments(data, kwargs, match):
    X, y, A, Xv, yv, Av = data
    Xnan = Xv.copy()
    Xnan[0, 0] = np.nan
    values = {
        "Xv": Xv,
        "yv": yv,
        "Av": Av,
        "w": np.ones(len(yv)),
        "y3": np.where(np.arange(len(yv)) == 0, 3, yv),
        "Ad": np.where(np.arange(len(yv)) == 0, "d", Av),
        "A2": np.column_stack([Av, Av]),
        "wneg": -np.ones(len(yv)),
        "wshort": np.ones(3),
        "yshort": yv[:-1],
        "Ashort": Av[:-1],
        "Xwide": np.column_stack([Xv, Xv[:, 0]]),
        "Xnan": Xnan,
    }
    kwargs = {k: values[v] for k, v in kwargs.items()}
    with pytest.raises(ValueError, match=match):
        mlp().fit(X, y, sensitive_features=A, **kwargs)


def test_X_val_refused_where_unused_and_without_training_groups(data):
    X, y, A, Xv, yv, Av = data
    with pytest.raises(
        ValueError,
        match="X_val was given, but FairMLPClassifier does not "
        "use validation data.*set early_stopping=True",
    ):
        mlp(early_stopping=False).fit(
            X, y, sensitive_features=A, X_val=Xv, y_val=yv, sensitive_features_val=Av
        )
    with pytest.raises(ValueError, match="sensitive_features_val without sensitive_features"):
        mlp().fit(X, y, X_val=Xv, y_val=yv, sensitive_features_val=Av)
    # no groups at all: fine (the fairness-unaware form, one group)
    clf = mlp(max_epochs=2).fit(X, y, X_val=Xv, y_val=yv)
    assert clf.history_[-1]["val_accuracy"] == pytest.approx(
        np.mean(clf.predict(Xv) == yv), abs=1e-6
    )


def test_routed_through_a_pipeline_with_transform_input(data):
    import sklearn
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y, A, Xv, yv, Av = data
    X, Xv = 3.0 * X + 1.0, 3.0 * Xv + 1.0
    with sklearn.config_context(enable_metadata_routing=True):
        clf = mlp(max_epochs=2).set_fit_request(X_val=True, y_val=True, sensitive_features_val=True)
        pipe = Pipeline([("scale", StandardScaler()), ("clf", clf)], transform_input=["X_val"])
        pipe.fit(X, y, sensitive_features=A, X_val=Xv, y_val=yv, sensitive_features_val=Av)
    fitted = pipe.named_steps["clf"]
    # the validation rows reached the estimator scaled like X
    Xs = pipe.named_steps["scale"].transform(Xv)
    assert fitted.history_[-1]["val_loss"] == pytest.approx(
        cross_entropy(fitted.predict_proba(Xs), yv), abs=1e-5
    )
    assert fitted.history_[-1]["val_accuracy"] == pytest.approx(
        np.mean(pipe.predict(Xv) == yv), abs=1e-6
    )
