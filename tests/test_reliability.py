"""What a careful user throws at every public estimator: bad input, extreme data,
interruption, reloading and reseeding. Parametrised over ``all_estimators()``, so a new
estimator joins the matrix by being registered."""

import io
import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import is_classifier as _is_classifier
from sklearn.base import is_regressor as _is_regressor
from sklearn.exceptions import NotFittedError

from skfairbilevel import all_estimators
from skfairbilevel.exceptions import FairnessWarning, TrainingInterruptedWarning
from skfairbilevel.nn import engine

from ._fast import fast_instance

ESTIMATORS = all_estimators()


def is_classifier(cls):
    return _is_classifier(cls())


def is_regressor(cls):
    return _is_regressor(cls())


IDS = [name for name, _ in ESTIMATORS]


def data(cls, n=120, seed=0, n_features=4):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features)).astype(np.float32)
    A = np.where(rng.random(n) < 0.5, "f", "m")
    X[:, 0] += 0.8 * (A == "f")
    score = X[:, 0] + 0.5 * X[:, 1] + 0.3 * rng.normal(size=n)
    if is_regressor(cls):
        y = score.astype(np.float64)
    else:
        y = (score > np.median(score)).astype(int)
    return X, y, A


# Settings under which training is long and random enough to interrupt and to reseed:
# BADR's default exact solver is deterministic (a convex problem, no sampling) and may
# converge in a couple of outer steps, so these tests use BADR-SGD.
STOCHASTIC = {
    "BADRClassifier": dict(solver="sgd", max_iter=20, batch_size=16),
    "BADRRegressor": dict(solver="sgd", max_iter=20, batch_size=16),
}


def make(name, cls, **kw):
    return fast_instance(name, cls, **kw)


def fitted(name, cls, **kw):
    X, y, A = data(cls)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FairnessWarning)
        return make(name, cls, **kw).fit(X, y, sensitive_features=A), X, y, A


# ------------------------------------------------------------------ bad input matrix
def _bad_cases(cls):
    """(case id, mutate(X, y, A) -> (X, y, A, fit kwargs), exception, message regex)."""
    clf = is_classifier(cls)

    def nan_X(X, y, A):
        X = X.copy()
        X[3, 1] = np.nan
        return X, y, A, {}

    def inf_X(X, y, A):
        X = X.copy()
        X[0, 0] = np.inf
        return X, y, A, {}

    cases = [
        ("nan_in_X", nan_X, ValueError, "NaN"),
        ("inf_in_X", inf_X, ValueError, "infinity"),
        (
            "X_beyond_float32",
            lambda X, y, A: (
                np.where(np.arange(X.size).reshape(X.shape) == 5, 1e39, X.astype(np.float64)),
                y,
                A,
                {},
            ),
            ValueError,
            "Input X contains a value too large for float32",
        ),
        ("empty_X", lambda X, y, A: (X[:0], y[:0], A[:0], {}), ValueError, "0 sample"),
        (
            "one_sample",
            lambda X, y, A: (X[:1], y[:1], A[:1], {}),
            ValueError,
            r"1 sample|one class|only one class|single group",
        ),
        (
            "string_X",
            lambda X, y, A: (np.full(X.shape, "a", dtype=object), y, A, {}),
            ValueError,
            "could not convert|string",
        ),
        (
            "object_X_mixed",
            lambda X, y, A: (np.array([[1, "x"]] * len(y), dtype=object), y, A, {}),
            ValueError,
            "could not convert|string",
        ),
        ("X_1d", lambda X, y, A: (X[:, 0], y, A, {}), ValueError, "2D array"),
        ("X_3d", lambda X, y, A: (X[:, :, None], y, A, {}), ValueError, "dim"),
        ("complex_X", lambda X, y, A: (X.astype(np.complex64), y, A, {}), ValueError, "[Cc]omplex"),
        (
            "y_wrong_length",
            lambda X, y, A: (X, y[:-1], A, {}),
            ValueError,
            "inconsistent numbers of samples",
        ),
        (
            "y_with_nan",
            lambda X, y, A: (X, np.where(np.arange(len(y)) == 2, np.nan, y), A, {}),
            ValueError,
            "NaN|Unknown label",
        ),
        (
            "A_wrong_length",
            lambda X, y, A: (X, y, A[:-3], {}),
            ValueError,
            "sensitive_features has",
        ),
        (
            "A_missing_values",
            lambda X, y, A: (X, y, np.where(np.arange(len(y)) == 4, None, A.astype(object)), {}),
            ValueError,
            "sensitive_features has 1 missing",
        ),
        (
            "A_single_group",
            lambda X, y, A: (X, y, np.full(len(y), "f"), {}),
            ValueError,
            "single group",
        ),
        (
            "A_3d",
            lambda X, y, A: (X, y, np.zeros((len(y), 1, 1)), {}),
            ValueError,
            "sensitive_features must be 1-D or 2-D",
        ),
        (
            "sample_weight_wrong_length",
            lambda X, y, A: (X, y, A, {"sample_weight": np.ones(len(y) + 1)}),
            ValueError,
            "sample_weight",
        ),
        (
            "sample_weight_negative",
            lambda X, y, A: (X, y, A, {"sample_weight": -np.ones(len(y))}),
            ValueError,
            "sample_weight contains negative",
        ),
        (
            "sample_weight_nan",
            lambda X, y, A: (X, y, A, {"sample_weight": np.full(len(y), np.nan)}),
            ValueError,
            "sample_weight contains NaN",
        ),
        (
            "sample_weight_all_zero",
            lambda X, y, A: (X, y, A, {"sample_weight": np.zeros(len(y))}),
            ValueError,
            "sample_weight is all zero",
        ),
    ]
    if clf:
        cases += [
            ("one_class", lambda X, y, A: (X, np.zeros_like(y), A, {}), ValueError, "class"),
            (
                "continuous_y",
                lambda X, y, A: (X, np.linspace(0, 1, len(y)), A, {}),
                ValueError,
                "Unknown label type",
            ),
        ]
        if cls._binary_only:
            cases.append(
                (
                    "multiclass_for_binary_only",
                    lambda X, y, A: (X, np.arange(len(y)) % 3, A, {}),
                    ValueError,
                    "binary",
                )
            )
    return cases


MATRIX = [(name, cls, case) for name, cls in ESTIMATORS for case in _bad_cases(cls)]


@pytest.mark.parametrize("name, cls, case", MATRIX, ids=[f"{n}-{c[0]}" for n, _, c in MATRIX])
def test_bad_input_raises_clear_error(name, cls, case):
    case_id, mutate, exc, pattern = case
    if case_id == "A_single_group" and not make(name, cls)._uses_groups():
        pytest.skip("this configuration does not use groups, so one group is fine")
    X, y, A = data(cls)
    X, y, A, kw = mutate(X, y, A)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FairnessWarning)
        with pytest.raises(exc, match=pattern):
            make(name, cls).fit(X, y, sensitive_features=A, **kw)


HYPER = {
    "lr": 0.0,
    "max_epochs": 0,
    "batch_size": 0,
    "fairness_weight": -1.0,
    "eta": -1.0,
    "alpha": -1.0,
    "n_mc": 0,
    "eps_std": -1.0,
    "radius": -0.1,
    "sparsity": 1.0,
    "validation_fraction": 0.0,
    "n_iter_no_change": 0,
    "rho": 0.0,
    "fairness_lr": 0.0,
    "lambda_low": -1.0,
    "lambda_up": -1.0,
}


@pytest.mark.parametrize("name, cls", ESTIMATORS, ids=IDS)
def test_bad_hyperparameters_name_the_parameter(name, cls):
    X, y, A = data(cls)
    checked = 0
    for param, value in HYPER.items():
        if param not in cls().get_params():
            continue
        with pytest.raises(ValueError, match=f"{param}"):
            make(name, cls, **{param: value}).fit(X, y, sensitive_features=A)
        checked += 1
    assert checked >= 2


@pytest.mark.parametrize("name, cls", ESTIMATORS, ids=IDS)
def test_unavailable_device_is_refused(name, cls):
    if "device" not in cls().get_params() or torch.cuda.is_available():
        pytest.skip("no device parameter, or a GPU is present")
    X, y, A = data(cls)
    with pytest.raises(ValueError, match="device='cuda'.*not available"):
        make(name, cls, device="cuda").fit(X, y, sensitive_features=A)


@pytest.mark.parametrize("name, cls", ESTIMATORS, ids=IDS)
def test_predict_time_checks(name, cls):
    with pytest.raises(NotFittedError):
        make(name, cls).predict(np.zeros((2, 4)))
    est, X, y, A = fitted(name, cls)
    with pytest.raises(ValueError, match="features"):
        est.predict(X[:, :3])
    big = X[:4].astype(np.float64)
    big[1, 2] = -1e39  # finite in float64, inf in float32
    if torch.finfo(est._predict_dtype).bits == 32:
        with pytest.raises(ValueError, match="Input X contains a value too large"):
            est.predict(big)
    else:  # a float64 model (BADR's linear model) computes it
        out = est.predict_proba(big) if hasattr(est, "predict_proba") else est.predict(big)
        assert np.isfinite(out).all()
    for dtype in (np.float32, np.float64):  # one-pass check at predict: sklearn's messages
        bad = X[:6].astype(dtype)
        bad[2, 1] = np.nan
        with pytest.raises(ValueError, match="Input X contains NaN"):
            est.predict(bad)
        bad[2, 1] = -np.inf
        with pytest.raises(ValueError, match="Input X contains infinity"):
            est.predict(bad)
    df = pd.DataFrame(X, columns=list("abcd"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FairnessWarning)
        est_df = make(name, cls).fit(df, y, sensitive_features=A)
    with pytest.raises(ValueError, match="feature names"):
        est_df.predict(df.rename(columns={"a": "z"}))


@pytest.mark.parametrize("name, cls", ESTIMATORS, ids=IDS)
def test_group_with_one_row_and_unseen_group_at_scoring(name, cls):
    from skfairbilevel.metrics import make_fairness_scorer

    X, y, A = data(cls)
    A = A.astype(object)
    A[7] = "tiny"  # a group of one row
    est = make(name, cls).fit(X, y, sensitive_features=A)
    out = est.predict(X)
    assert np.all(np.isfinite(out.astype(float))) if is_regressor(cls) else len(out) == len(y)
    if is_classifier(cls):
        # a group that fit never saw: predict does not need A; scoring handles it
        A_new = np.where(np.arange(len(y)) % 5 == 0, "new", A).astype(object)
        scorer = make_fairness_scorer("demographic_parity_difference")
        value = scorer(est, X, y, sensitive_features=A_new)
        assert np.isfinite(value) and -1 <= value <= 0


# ------------------------------------------------------------------ numerical safety
def _safe_fit(name, cls, X, y, A):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FairnessWarning)
        est = make(name, cls).fit(X, y, sensitive_features=A)
    out = est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)
    assert np.all(np.isfinite(out)), f"{name} predicted non-finite values"
    return est


@pytest.mark.parametrize("name, cls", ESTIMATORS, ids=IDS)
def test_extreme_constant_and_separable_data(name, cls):
    X, y, A = data(cls)
    _safe_fit(name, cls, X * np.float32(1e8), y, A)  # huge scale
    Xc = X.copy()
    Xc[:, 2] = 3.0  # constant column
    _safe_fit(name, cls, Xc, y, A)
    if is_classifier(cls):
        Xs = X.copy()
        Xs[:, 0] = np.where(y == 1, 5.0, -5.0)  # separable
        _safe_fit(name, cls, Xs, y, A)
    A_tiny = A.copy()
    A_tiny[:3] = "t"  # tiny group
    _safe_fit(name, cls, X, y, A_tiny)


# ------------------------------------------------------------------ interruption
@pytest.mark.parametrize("name, cls", ESTIMATORS, ids=IDS)
def test_keyboard_interrupt_mid_fit_leaves_a_fitted_model(name, cls, monkeypatch):
    original_run = engine.Loop.run
    calls = {"n": 0}

    def run(self, iterate):
        def interrupting(epoch):
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt
            return iterate(epoch)

        return original_run(self, interrupting)

    monkeypatch.setattr(engine.Loop, "run", run)
    X, y, A = data(cls)
    est = make(name, cls, **STOCHASTIC.get(name, {}))
    with pytest.warns(TrainingInterruptedWarning):
        est.fit(X, y, sensitive_features=A)
    monkeypatch.undo()
    assert calls["n"] >= 3, "fit did not go through the shared engine"
    out = est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)
    assert np.all(np.isfinite(out)) and len(out) == len(y)


# ------------------------------------------------------------------ persistence
SAFE_MODULES = (
    "skfairbilevel",
    "torch",
    "numpy",
    "sklearn",
    "collections",
    "builtins",
    "copyreg",
    "_codecs",
    "scipy",
    "pandas",
)


@pytest.mark.parametrize("name, cls", ESTIMATORS, ids=IDS)
def test_pickle_round_trip_and_only_expected_globals(name, cls):
    import joblib

    est, X, y, A = fitted(name, cls)
    method = "predict_proba" if hasattr(est, "predict_proba") else "predict"
    expected = getattr(est, method)(X)
    payload = pickle.dumps(est)
    np.testing.assert_array_equal(getattr(pickle.loads(payload), method)(X), expected)
    path = f"/tmp/skfb_{name}.joblib"
    joblib.dump(est, path)
    np.testing.assert_array_equal(getattr(joblib.load(path), method)(X), expected)
    # every global the pickle imports on load comes from a known library
    seen = []

    class Recorder(pickle.Unpickler):
        def find_class(self, module, global_name):
            seen.append(module)
            return super().find_class(module, global_name)

    Recorder(io.BytesIO(payload)).load()
    assert seen and all(m.split(".")[0] in SAFE_MODULES for m in seen), sorted(set(seen))


# ------------------------------------------------------------------ determinism
@pytest.mark.parametrize("name, cls", ESTIMATORS, ids=IDS)
def test_same_seed_bit_identical_different_seed_differs(name, cls):
    method = "predict_proba" if is_classifier(cls) else "predict"
    extra = STOCHASTIC.get(name, {})
    a, X, _, _ = fitted(name, cls, random_state=0, **extra)
    b, _, _, _ = fitted(name, cls, random_state=0, **extra)
    c, _, _, _ = fitted(name, cls, random_state=1, **extra)
    assert np.array_equal(getattr(a, method)(X), getattr(b, method)(X))
    assert not np.array_equal(getattr(a, method)(X), getattr(c, method)(X))


def test_predict_value_check_edge_cases():
    from skfairbilevel.base import _check_predict_values

    f32, f64 = torch.float32, torch.float64
    huge = np.full((4, 3), 3e38, dtype=np.float32)  # finite, but the float32 sum is inf
    _check_predict_values(huge, f32, "E")
    _check_predict_values(huge.astype(np.float64), f32, "E")  # exactly representable
    _check_predict_values(np.zeros((0, 3)), f32, "E")
    x = np.arange(12.0).reshape(4, 3)
    for view in (x[::-1], x[:, ::-2], np.asfortranarray(x), x.T):  # strided views
        _check_predict_values(view, f32, "E")
        bad = view.copy()
        bad[1, 1] = np.nan
        with pytest.raises(ValueError, match="Input X contains NaN"):
            _check_predict_values(bad[::-1], f32, "E")
    big = x.copy()
    big[0, 0] = 1e39
    with pytest.raises(ValueError, match="too large for float32"):
        _check_predict_values(big, f32, "E")
    _check_predict_values(big, f64, "E")  # a float64 model takes it
    with pytest.raises(ValueError, match="Input X contains infinity"):
        _check_predict_values(np.array([[np.inf, -np.inf]]), f64, "E")


def test_numpy_view_shares_read_only_memory_without_touching_warning_filters():
    """Read-only inputs are wrapped without a copy, and (thread safety) without
    ``warnings.catch_warnings``, which swaps the process-wide filter list."""
    from skfairbilevel.nn.engine import numpy_view

    dlpack_read_only = np.lib.NumpyVersion(np.__version__) >= "2.1.0"
    x = np.arange(12.0).reshape(3, 4)
    for a in (x.astype(np.float32), x[:, ::2], np.asfortranarray(x)):
        a.setflags(write=False)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            inner = warnings.filters
            t = numpy_view(a)
            if dlpack_read_only:
                assert warnings.filters is inner  # the list object was never swapped
        assert t.data_ptr() == a.ctypes.data  # shared, not copied
        assert t.dtype == torch.from_numpy(np.zeros(1, a.dtype)).dtype
        np.testing.assert_array_equal(t.numpy(), a)
        t32 = numpy_view(a, dtype=torch.float32)
        np.testing.assert_array_equal(t32.numpy(), a.astype(np.float32))


@pytest.mark.parametrize("name", [n for n, _ in all_estimators()])
def test_every_fit_takes_validation_data_or_refuses_it_by_name(name):
    """One fit signature for every estimator (a subclass that overrides ``fit`` forwards
    the ``*_val`` arguments): configurations that use no validation rows refuse X_val
    with an error that names it."""
    import inspect

    cls = dict(all_estimators())[name]
    params = inspect.signature(cls.fit).parameters
    for arg in ("X_val", "y_val", "sensitive_features_val", "sample_weight_val"):
        assert arg in params, arg
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = X[:, 0] if "Regressor" in name else (X[:, 0] > 0).astype(int)
    A = (X[:, 1] > 0).astype(int)
    est = cls(**({"max_epochs": 1} if "max_epochs" in cls().get_params() else {}))
    if est._uses_validation():
        return  # FACIMS: covered in tests/test_validation_data.py and test_facims.py
    with pytest.raises(ValueError, match="X_val was given, but"):
        est.fit(X, y, sensitive_features=A, X_val=X, y_val=y, sensitive_features_val=A)


def test_read_only_inputs_give_no_torch_warning():
    """pandas copy-on-write and joblib memory maps hand over read-only arrays; torch warns
    once per process when it wraps one, so this runs in a fresh interpreter."""
    code = textwrap.dedent("""
        import warnings
        import numpy as np
        import pandas as pd
        from skfairbilevel import all_estimators
        warnings.filterwarnings("error", message=".*not writable.*")
        rng = np.random.default_rng(0)
        X = rng.standard_normal((120, 4))
        A = (X[:, 1] > 0).astype(int)
        for name, cls in all_estimators():
            y = X[:, 0] if "Regressor" in name else (X[:, 0] > 0).astype(int)
            kw = {"max_epochs": 1} if "max_epochs" in cls().get_params() else {}
            for dtype in (np.float32, np.float64):
                Xr = X.astype(dtype)
                Xr.setflags(write=False)
                yr = y.copy()
                yr.setflags(write=False)
                est = cls(**kw).fit(Xr, yr, sensitive_features=A)
                est.predict(Xr)
                est.predict(pd.DataFrame(Xr))
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")


# ------------------------------------------------------------------ sparse X
def _outputs(est, X):
    return est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)


def _sparse_data(cls, n=120):
    X, y, A = data(cls, n=n)
    X[np.abs(X) < 0.6] = 0.0  # about half the entries stored
    return X, y, A


def _assert_same_model(est, got, expected, msg=""):
    """Bit for bit, or up to float32 rounding where sparse batches meet the network as
    sparse matrices (another order of the sums of the first layer), and for BADR, whose
    full-batch solvers multiply sparse row chunks (exact on the CPU for the small affine
    models here, whose Newton solver takes dense chunks; not promised on a GPU)."""
    if est._sparse_batches or type(est).__name__.startswith("BADR"):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, err_msg=msg)
    else:
        np.testing.assert_array_equal(got, expected, err_msg=msg)


@pytest.mark.parametrize("name, cls", ESTIMATORS, ids=IDS)
def test_sparse_X_trains_the_model_of_dense_X(name, cls):
    """The same rows given sparse (CSR, CSC, COO, a sparse array) train the same model:
    canonical order and batches do not depend on the format, and a densified row holds
    the values of the dense one."""
    X, y, A = _sparse_data(cls)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FairnessWarning)
        dense = make(name, cls).fit(X, y, sensitive_features=A)
        expected = _outputs(dense, X)
        for fmt in (sp.csr_matrix, sp.csc_matrix, sp.coo_matrix, sp.csr_array):
            est = make(name, cls).fit(fmt(X), y, sensitive_features=A)
            _assert_same_model(est, _outputs(est, X), expected, fmt.__name__)
            _assert_same_model(est, _outputs(est, fmt(X)), expected, fmt.__name__)


def _validation_params(est):
    """Parameters under which ``est`` uses validation rows (None: it never does)."""
    if est._uses_validation():
        return {}
    for key in ("early_stopping", "record_validation"):
        if key in est.get_params():
            return {key: True}
    return None


@pytest.mark.parametrize("name, cls", ESTIMATORS, ids=IDS)
def test_sparse_X_val_gives_the_model_of_dense_X_val(name, cls):
    """``X_val`` given sparse (CSR, CSC) is read like the dense validation rows: the same
    model and the same validation history."""
    params = _validation_params(cls())
    if params is None:
        assert "X_val was given" in _refusal(name, cls)
        return
    X, y, A = _sparse_data(cls)
    Xv, yv, Av = _sparse_data(cls, n=60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FairnessWarning)
        fits = {
            fmt.__name__: make(name, cls, **params).fit(
                X, y, sensitive_features=A, X_val=fmt(Xv), y_val=yv, sensitive_features_val=Av
            )
            for fmt in (np.asarray, sp.csr_matrix, sp.csc_matrix)
        }
    expected = _outputs(fits["asarray"], X)
    for fmt in ("csr_matrix", "csc_matrix"):
        est = fits[fmt]
        _assert_same_model(est, _outputs(est, X), expected, fmt)
        keys = [k for k in est.history_[-1] if k.startswith("val_")]
        assert keys, "no validation scores recorded"
        for key in keys:
            np.testing.assert_allclose(
                est.history_[-1][key], fits["asarray"].history_[-1][key], rtol=1e-5, atol=1e-6
            )


def _refusal(name, cls):
    X, y, A = data(cls, n=40)
    with pytest.raises(ValueError) as info:
        make(name, cls).fit(
            X, y, sensitive_features=A, X_val=sp.csr_matrix(X), y_val=y, sensitive_features_val=A
        )
    return str(info.value)


@pytest.mark.parametrize("name, cls", ESTIMATORS, ids=IDS)
def test_every_prediction_method_on_sparse_X_equals_dense(name, cls):
    """``predict``, ``predict_proba``, ``predict_log_proba`` and ``decision_function``
    of a fitted model give the same values for the rows given dense or sparse (CSR,
    CSC, a sparse array): prediction densifies one block at a time."""
    X, y, A = _sparse_data(cls)
    est = fitted(name, cls)[0]
    methods = [
        m
        for m in ("predict", "predict_proba", "predict_log_proba", "decision_function")
        if hasattr(est, m)
    ]
    for method in methods:
        expected = getattr(est, method)(X)
        for fmt in (sp.csr_matrix, sp.csc_matrix, sp.csr_array):
            np.testing.assert_array_equal(
                getattr(est, method)(fmt(X)), expected, err_msg=f"{method} {fmt.__name__}"
            )


@pytest.mark.parametrize("name, cls", ESTIMATORS, ids=IDS)
def test_sparse_tag_is_set(name, cls):
    """The sparse input tag is set, so that scikit-learn's common checks
    (``parametrize_with_checks`` in test_common.py) run the sparse-input checks."""
    assert cls().__sklearn_tags__().input_tags.sparse is True


@pytest.mark.parametrize("name, cls", ESTIMATORS, ids=IDS)
def test_sensitive_feature_ids_on_sparse_X(name, cls):
    """A sensitive column read by index from sparse X, and dropped from the model's
    inputs, gives the model of the dense X with the same column."""
    X, y, A = _sparse_data(cls)
    XA = np.column_stack([X, (A == "f").astype(np.float32)])  # the group in column 4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FairnessWarning)
        dense = make(name, cls, sensitive_feature_ids=4).fit(XA, y)
        sparse = make(name, cls, sensitive_feature_ids=[4]).fit(sp.csr_matrix(XA), y)
    assert sparse.n_features_in_ == 5 and list(sparse.groups_) == list(dense.groups_)
    _assert_same_model(sparse, _outputs(sparse, sp.csr_matrix(XA)), _outputs(dense, XA))


@pytest.mark.parametrize("name, cls", ESTIMATORS, ids=IDS)
def test_sparse_rows_are_made_dense_a_batch_or_block_at_a_time(name, cls, monkeypatch):
    """Training never densifies the whole sparse X: every request for rows (dense, or
    sparse batches) asks for at most a mini-batch or a block of rows of a full-batch
    solver."""
    from skfairbilevel.nn import group_risk

    X, y, A = _sparse_data(cls, n=600)
    largest = []
    for method in ("dense", "csr"):
        original = getattr(engine.SparseRows, method)

        def spy(self, pos, original=original):
            largest.append(pos.numel())
            return original(self, pos)

        monkeypatch.setattr(engine.SparseRows, method, spy)
    monkeypatch.setattr(group_risk, "CHUNK_ELEMENTS", 256 * 5)  # blocks of 256 rows
    monkeypatch.setattr("skfairbilevel.base.ACCURACY_BLOCK", 128)
    params = STOCHASTIC.get(name, {}) if "BADR" not in name else {}
    if "batch_size" in cls().get_params():
        params = {**params, "batch_size": 64}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FairnessWarning)
        make(name, cls, **params).fit(sp.csr_matrix(X), y, sensitive_features=A)
    assert largest and max(largest) <= 2 * 256 < len(y)
