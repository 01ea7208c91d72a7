"""The shared engine and base-class contract, exercised through FairMLPClassifier."""

import io
import pickle
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import sklearn
import torch
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skfairbilevel import FairMLPClassifier, all_estimators
from skfairbilevel.base import canonical_index
from skfairbilevel.exceptions import (
    NonFiniteLossError,
    NoSensitiveFeaturesWarning,
    TrainingInterruptedWarning,
)
from skfairbilevel.nn.engine import TensorData, balanced_batches, make_generators, resolve_device
from skfairbilevel.nn.optim import LeanAdam

from ._fast import fast_instance


def biased_data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 4)) + 0.8 * a[:, None] * np.array([1.0, 0, 0, 0])
    y = (X[:, 0] + 0.5 * X[:, 1] + 0.3 * rng.normal(size=n) > 0.4).astype(int)
    return X.astype(np.float32), y, np.where(a == 1, "f", "m")


def small(**kw):
    params = dict(hidden_layer_sizes=(8,), max_epochs=5, batch_size=64, random_state=0)
    params.update(kw)
    return FairMLPClassifier(**params)


# --------------------------------------------------------------------- determinism
def test_same_seed_same_probabilities_bitwise():
    X, y, A = biased_data()
    p1 = small(fairness="demographic_parity").fit(X, y, sensitive_features=A).predict_proba(X)
    p2 = small(fairness="demographic_parity").fit(X, y, sensitive_features=A).predict_proba(X)
    assert np.array_equal(p1, p2)
    p3 = (
        small(fairness="demographic_parity", random_state=1)
        .fit(X, y, sensitive_features=A)
        .predict_proba(X)
    )
    assert not np.array_equal(p1, p3)


def test_global_rng_untouched():
    X, y, A = biased_data()
    torch_state = torch.get_rng_state()
    np_state = np.random.get_state()[1].copy()
    small(random_state=None).fit(X, y, sensitive_features=A)
    small(random_state=3).fit(X, y, sensitive_features=A)
    assert torch.equal(torch_state, torch.get_rng_state())
    assert np.array_equal(np_state, np.random.get_state()[1])


def test_row_order_and_duplicates_do_not_change_the_model():
    X, y, A = biased_data(200)
    perm = np.random.default_rng(1).permutation(len(y))
    p1 = small().fit(X, y, sensitive_features=A).predict_proba(X)
    p2 = small().fit(X[perm], y[perm], sensitive_features=A[perm]).predict_proba(X)
    assert np.array_equal(p1, p2)
    # weight 2 on a row == that row twice
    w = np.ones(len(y))
    w[:10] = 2
    Xr = np.vstack([X, X[:10]])
    yr = np.concatenate([y, y[:10]])
    Ar = np.concatenate([A, A[:10]])
    p3 = small().fit(X, y, sensitive_features=A, sample_weight=w).predict_proba(X)
    p4 = small().fit(Xr, yr, sensitive_features=Ar).predict_proba(X)
    assert np.array_equal(p3, p4)


def test_canonical_index_merges_duplicates_and_drops_zero_weights():
    X = np.array([[1.0, 2.0], [1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=np.float32)
    y = np.array([0, 0, 1, 1])
    g = np.array([0, 0, 1, 0])
    rows, wc = canonical_index(X, y, g, np.array([1.0, 2.0, 0.0, 1.5]))
    assert len(rows) == 2
    got = {tuple(x): w for x, w in zip(X[rows].tolist(), wc, strict=True)}
    assert got == {(1.0, 2.0): 3.0, (5.0, 6.0): 1.5}
    # the same rows in another order: the same canonical rows, in the same order
    perm = np.array([3, 2, 1, 0])
    rows_p, wc_p = canonical_index(X[perm], y[perm], g[perm], np.array([1.5, 0.0, 2.0, 1.0]))
    np.testing.assert_array_equal(X[perm][rows_p], X[rows])
    np.testing.assert_array_equal(wc_p, wc)
    # no weights: counts, and None when there are no duplicates
    _, wc = canonical_index(X, y, g, None)
    assert sorted(wc.tolist()) == [1.0, 1.0, 2.0]
    _, wc = canonical_index(X[1:], y[1:], g[1:], None)
    assert wc is None


def test_generators_are_reproducible():
    r1, g1 = make_generators(5)
    r2, g2 = make_generators(5)
    assert r1.integers(0, 1000) == r2.integers(0, 1000)
    assert torch.equal(torch.randn(3, generator=g1), torch.randn(3, generator=g2))


# --------------------------------------------------------------------- interruption
def test_keyboard_interrupt_keeps_last_completed_epoch(monkeypatch):
    X, y, A = biased_data()
    reference = small(max_epochs=2, batch_size=400).fit(X, y, sensitive_features=A)

    calls = {"n": 0}
    original = LeanAdam.step

    def interrupting_step(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # one batch per epoch: epochs 0 and 1 complete, 2 interrupted
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    interrupting_step.hooked = True  # as LeanAdam.step: no profiler wrapper
    monkeypatch.setattr(LeanAdam, "step", interrupting_step)
    est = small(max_epochs=10, batch_size=400)
    with pytest.warns(TrainingInterruptedWarning, match="last completed epoch"):
        est.fit(X, y, sensitive_features=A)
    monkeypatch.undo()
    assert est.interrupted_ is True
    assert est.n_iter_ == 2 and len(est.history_) == 2
    # the kept weights are exactly those after two full epochs
    np.testing.assert_array_equal(est.predict_proba(X), reference.predict_proba(X))


def test_interrupt_in_first_epoch_leaves_initial_model(monkeypatch):
    X, y, A = biased_data()

    def interrupt(self, *args, **kwargs):
        raise KeyboardInterrupt

    interrupt.hooked = True
    monkeypatch.setattr(LeanAdam, "step", interrupt)
    est = small()
    with pytest.warns(TrainingInterruptedWarning):
        est.fit(X, y, sensitive_features=A)
    proba = est.predict_proba(X)
    assert np.all(np.isfinite(proba)) and est.n_iter_ == 0


# --------------------------------------------------------------------- divergence
def test_non_finite_loss_raises_and_keeps_finite_weights():
    X, y, A = biased_data()
    X = X * np.float32(1e10)
    est = small(lr=1e30, max_epochs=20)
    with pytest.raises(NonFiniteLossError, match=r"epoch 0.*smaller learning rate \(lr=1e\+30\)"):
        est.fit(X, y, sensitive_features=A)
    for p in est.module_.parameters():
        assert torch.isfinite(p).all()


def test_non_finite_error_is_a_value_error():
    assert issubclass(NonFiniteLossError, ValueError)


# --------------------------------------------------------------------- persistence
def test_pickle_and_joblib_round_trip_identical():
    X, y, A = biased_data()
    est = small(fairness="equalized_odds").fit(X, y, sensitive_features=A)
    p = est.predict_proba(X)
    est2 = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(est2.predict_proba(X), p)
    buf = io.BytesIO()
    joblib.dump(est, buf)
    buf.seek(0)
    np.testing.assert_array_equal(joblib.load(buf).predict_proba(X), p)


def test_model_pickled_on_gpu_loads_on_cpu():
    """A state whose device_ is CUDA (as from a GPU fit) maps to CPU on a CPU machine."""
    X, y, A = biased_data()
    est = small().fit(X, y, sensitive_features=A)
    state = est.__getstate__()
    state["device_"] = "cuda:0"
    clone = FairMLPClassifier.__new__(FairMLPClassifier)
    if torch.cuda.is_available():
        pytest.skip("machine has a GPU")
    clone.__setstate__(state)
    assert clone.device_.type == "cpu"
    np.testing.assert_array_equal(clone.predict_proba(X), est.predict_proba(X))


# --------------------------------------------------------------------- engine features
def test_warm_start_continues_history():
    X, y, A = biased_data()
    est = small(warm_start=True, max_epochs=3)
    est.fit(X, y, sensitive_features=A)
    first = est.module_[0].weight.detach().clone()
    est.fit(X, y, sensitive_features=A)
    assert len(est.history_) == 6
    assert not torch.equal(first, est.module_[0].weight)
    cold = small(max_epochs=3)
    cold.fit(X, y, sensitive_features=A)
    cold.fit(X, y, sensitive_features=A)
    assert len(cold.history_) == 3


def test_early_stopping_stops_and_records_validation():
    X, y, A = biased_data(600)
    est = small(
        early_stopping=True,
        max_epochs=300,
        n_iter_no_change=3,
        lr=3e-2,
        fairness="demographic_parity",
    )
    est.fit(X, y, sensitive_features=A)
    assert est.n_iter_ < 300
    rec = est.history_[-1]
    for key in ("loss", "val_loss", "val_accuracy", "val_dp", "val_soft_dp", "val_eo", "seconds"):
        assert key in rec
    assert 0 <= rec["val_dp"] <= 1 and 0.5 < rec["val_accuracy"] <= 1


def test_history_records_per_epoch_losses():
    X, y, A = biased_data()
    est = small(fairness="demographic_parity", fairness_weight=2.0).fit(X, y, sensitive_features=A)
    assert [h["epoch"] for h in est.history_] == list(range(5))
    h = est.history_[0]
    assert h["loss"] == pytest.approx(h["ce"] + 2.0 * h["fairness"], rel=1e-5)


def test_verbose_shows_progress_bar(capsys):
    X, y, A = biased_data()
    small(verbose=1).fit(X, y, sensitive_features=A)
    err = capsys.readouterr().err
    assert "FairMLPClassifier" in err
    assert "1/5 " not in err  # no per-epoch lines at verbose=1


def test_verbose_2_keeps_the_bar_and_writes_a_line_per_epoch(capsys):
    X, y, A = biased_data()
    est = small(verbose=2, max_epochs=3, early_stopping=True)
    est.fit(X, y, sensitive_features=A)
    err = capsys.readouterr().err
    lines = [line for line in err.replace("\r", "\n").splitlines() if "loss=" in line]
    for k in range(3):
        record = est.history_[k]
        line = next(line for line in lines if line.startswith(f"FairMLPClassifier {k + 1}/3 "))
        assert f"loss={record['loss']:.4g}" in line and f"val_loss={record['val_loss']:.4g}" in line
    # the bar stays: its last state (3 of 3 epochs) ends the output
    assert err.rstrip().splitlines()[-1].count("3/3") == 1
    # a warm start numbers its epochs on
    est.set_params(warm_start=True, max_epochs=2).fit(X, y, sensitive_features=A)
    assert "FairMLPClassifier 5/5 " in capsys.readouterr().err


def test_device_errors_name_the_argument():
    X, y, A = biased_data()
    with pytest.raises(ValueError, match="device='nonsense'"):
        small(device="nonsense").fit(X, y, sensitive_features=A)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            small(device="cuda").fit(X, y, sensitive_features=A)
    assert resolve_device("auto").type in ("cpu", "cuda")


@pytest.mark.parametrize(
    "param, value",
    [
        ("lr", 0.0),
        ("lr", -1.0),
        ("max_epochs", 0),
        ("batch_size", 0),
        ("fairness", "parity"),
        ("fairness_weight", -1.0),
        ("validation_fraction", 1.0),
        ("hidden_layer_sizes", (0,)),
        ("class_weight", "auto"),
    ],
)
def test_bad_hyperparameters_are_named(param, value):
    X, y, A = biased_data(50)
    with pytest.raises(ValueError, match=f"'{param}' parameter of FairMLPClassifier"):
        small(**{param: value}).fit(X, y, sensitive_features=A)


# --------------------------------------------------------------------- sensitive features
def test_sensitive_feature_errors():
    X, y, A = biased_data(100)
    est = small(fairness="demographic_parity")
    with pytest.raises(ValueError, match="sensitive_features has 99 rows but X has 100"):
        est.fit(X, y, sensitive_features=A[:-1])
    A_missing = A.astype(object)
    A_missing[5] = None
    with pytest.raises(ValueError, match="missing value"):
        est.fit(X, y, sensitive_features=A_missing)
    with pytest.raises(ValueError, match="single group"):
        est.fit(X, y, sensitive_features=np.full(100, "f"))
    with pytest.raises(ValueError, match="both sensitive_features and sensitive_feature_ids"):
        small(sensitive_feature_ids=0).fit(X, y, sensitive_features=A)
    with pytest.raises(ValueError, match="column index 9"):
        small(sensitive_feature_ids=9).fit(X, y)
    with pytest.raises(ValueError, match="'sex', which is not a column of X"):
        small(sensitive_feature_ids="sex").fit(pd.DataFrame(X, columns=list("abcd")), y)


def test_missing_sensitive_features_warns_and_trains_unaware():
    X, y, _ = biased_data()
    est = small(fairness="demographic_parity")
    with pytest.warns(NoSensitiveFeaturesWarning, match="fairness-unaware"):
        est.fit(X, y)
    assert est.fairness_aware_ is False
    # a plain MLP (fairness=None) does not need groups and does not warn
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoSensitiveFeaturesWarning)
        small().fit(X, y)


def test_intersectional_groups_from_two_columns():
    X, y, A = biased_data()
    A2 = pd.DataFrame({"sex": A, "race": np.where(np.arange(len(A)) % 3 == 0, "b", "w")})
    est = small(fairness="demographic_parity").fit(X, y, sensitive_features=A2)
    assert est.n_groups_ == 4
    assert ("f", "b") in list(est.groups_)


def test_sensitive_feature_ids_drop_or_keep_column():
    X, y, A = biased_data()
    df = pd.DataFrame(X, columns=list("abcd"))
    df["sex"] = (A == "f").astype(float)
    dropped = small(fairness="demographic_parity", sensitive_feature_ids="sex").fit(df, y)
    kept = small(
        fairness="demographic_parity", sensitive_feature_ids="sex", drop_sensitive=False
    ).fit(df, y)
    assert dropped.n_features_in_ == 5 and kept.n_features_in_ == 5
    assert dropped.module_[0].in_features == 4 and kept.module_[0].in_features == 5
    assert list(dropped.feature_names_in_) == ["a", "b", "c", "d", "sex"]
    # same model as passing A explicitly with the column removed
    explicit = small(fairness="demographic_parity").fit(X, y, sensitive_features=df["sex"])
    np.testing.assert_array_equal(dropped.predict_proba(df), explicit.predict_proba(X))


# --------------------------------------------------------------------- routing
def test_grid_search_pipeline_routes_sensitive_features():
    X, y, A = biased_data(300)
    seen = []

    class Spy(FairMLPClassifier):
        def fit(self, X, y, *, sensitive_features=None, sample_weight=None):
            seen.append(None if sensitive_features is None else len(sensitive_features))
            return super().fit(
                X, y, sensitive_features=sensitive_features, sample_weight=sample_weight
            )

    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_pipeline(
            StandardScaler(),
            Spy(
                hidden_layer_sizes=(4,), max_epochs=2, fairness="demographic_parity", random_state=0
            ),
        )
        search = GridSearchCV(
            pipe, {"spy__fairness_weight": [0.0, 5.0]}, cv=KFold(3), scoring="accuracy"
        )
        search.fit(X, y, sensitive_features=A)
    assert sorted(seen) == [200] * 6 + [300]
    assert search.best_estimator_[-1].fairness_aware_


def test_cross_validate_routes_with_params():
    X, y, A = biased_data(300)
    with sklearn.config_context(enable_metadata_routing=True):
        res = cross_validate(
            small(fairness="demographic_parity"),
            X,
            y,
            cv=3,
            params={"sensitive_features": A},
            return_estimator=True,
        )
    assert all(e.fairness_aware_ and e.n_groups_ == 2 for e in res["estimator"])


def test_routing_off_legacy_fit_params_in_search():
    X, y, A = biased_data(300)
    search = GridSearchCV(
        small(fairness="demographic_parity"), {"fairness_weight": [0.0, 1.0]}, cv=3
    )
    search.fit(X, y, sensitive_features=A)
    assert search.best_estimator_.fairness_aware_


# ------------------------------------------------------------- the shared optimiser
def _run_adam(make, init, grads, schedule=True, strided=False):
    ps = [torch.nn.Parameter(v.clone()) for v in init]
    opt = make(ps)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5) if schedule else None
    for gs in grads:
        for p, g in zip(ps, gs, strict=True):
            # strided: the same values in transposed memory (as the weight gradient of a
            # layer fed sparse rows), not contiguous
            p.grad = g.t().contiguous().t() if strided and g.dim() == 2 else g.clone()
        opt.step()
        if sched is not None:
            sched.step()
    return ps


@pytest.mark.parametrize("strided", [False, True], ids=["contiguous", "strided-grads"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lean_adam_matches_torch_adam(dtype, strided):
    """LeanAdam (one fused-kernel call per step) follows torch.optim.Adam, with L2
    weight decay and a learning-rate schedule, and moves every parameter."""
    from skfairbilevel.nn.optim import LeanAdam

    shapes = [(6, 5), (6,), (1, 6), (1,)]
    gen = torch.Generator().manual_seed(0)
    init = [torch.randn(s, generator=gen, dtype=dtype) for s in shapes]
    grads = [[torch.randn(s, generator=gen, dtype=dtype) for s in shapes] for _ in range(12)]
    ours = _run_adam(
        lambda ps: LeanAdam(ps, lr=0.05, weight_decay=0.1), init, grads, strided=strided
    )
    ref = _run_adam(
        lambda ps: torch.optim.Adam(ps, lr=0.05, weight_decay=0.1, foreach=False), init, grads
    )
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    for a, b, v in zip(ours, ref, init, strict=True):
        assert not torch.equal(a, v)
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


def test_lean_adam_on_a_plain_tensor_with_written_gradients():
    """A leaf tensor without requires_grad whose .grad is written in place (the
    closed-form outer step of FairRobustClassifier) is updated like a Parameter."""
    from skfairbilevel.nn.optim import make_adam

    gen = torch.Generator().manual_seed(1)
    theta = torch.randn(5, generator=gen)
    ref = torch.nn.Parameter(theta.clone())
    theta.grad = torch.zeros_like(theta)
    opt, ref_opt = make_adam([theta], lr=0.03), torch.optim.Adam([ref], lr=0.03)
    for _ in range(20):
        g = torch.randn(5, generator=gen)
        theta.grad.copy_(g)
        ref.grad = g.clone()
        opt.step()
        ref_opt.step()
    torch.testing.assert_close(theta, ref.detach(), rtol=1e-6, atol=1e-6)


def test_lean_adam_names_a_parameter_without_gradient_and_leaves_state_alone():
    from skfairbilevel.nn.optim import LeanAdam

    a, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(3))
    opt = LeanAdam([a, b], lr=0.1)
    a.grad = torch.ones(2)
    with pytest.raises(RuntimeError, match=r"parameter\(s\) \[1\] of 2 have no gradient"):
        opt.step()
    assert float(opt._t) == 0.0 and torch.equal(a.detach(), torch.ones(2))
    b.grad = torch.zeros(3)
    opt.step()  # the first real step is step 1: same as torch's Adam
    ref = torch.nn.Parameter(torch.ones(2))
    ref.grad = torch.ones(2)
    torch.optim.Adam([ref], lr=0.1).step()
    torch.testing.assert_close(a.detach(), ref.detach())


def test_make_adam_falls_back_where_the_kernel_does_not_apply():
    from skfairbilevel.nn.optim import LeanAdam, make_adam

    half = [torch.nn.Parameter(torch.zeros(2, dtype=torch.float16))]
    assert not LeanAdam.supports(half)
    assert LeanAdam.supports([torch.nn.Parameter(torch.zeros(2))])
    assert type(make_adam(half, lr=0.1)) is torch.optim.Adam
    assert type(make_adam([torch.nn.Parameter(torch.zeros(2))], lr=0.1)) is LeanAdam
    with pytest.raises(ValueError, match="closure"):
        make_adam([torch.nn.Parameter(torch.zeros(2))], lr=0.1).step(lambda: 0.0)


# --------------------------------------------------------------------- samplers
def test_balanced_sampler_draws_without_replacement():
    g = torch.tensor([0] * 50 + [1] * 7 + [2] * 30)
    data = TensorData(torch.zeros(87, 1), torch.zeros(87), g, n_groups=3)
    sampler = balanced_batches(data.group_indices(), 31, torch.Generator().manual_seed(0))
    for epoch in range(20):
        (idx,) = sampler(epoch)
        assert len(set(idx.tolist())) == len(idx)
        # 11, 10, 10 wanted; group 1 has 7 rows: all of them
        assert torch.bincount(g[idx], minlength=3).tolist() == [11, 7, 10]


# --------------------------------------------------------------------- data on the device
def test_training_reads_the_input_itself_on_the_cpu(monkeypatch):
    """On the CPU a float32 C-contiguous X is trained on in place (no copy); other
    inputs are copied once, to float32. Batches select the canonical rows from it."""
    X, y, A = biased_data()
    seen = {}
    original = FairMLPClassifier._fit_torch

    def spy(self, train, val):
        seen["features"], seen["index"] = train.features, train.index
        return original(self, train, val)

    monkeypatch.setattr(FairMLPClassifier, "_fit_torch", spy)
    small().fit(X, y, sensitive_features=A)
    assert seen["features"].data_ptr() == X.ctypes.data
    assert sorted(seen["index"].tolist()) == list(range(len(y)))  # no duplicates here
    X64 = X.astype(np.float64)
    small().fit(X64, y, sensitive_features=A)
    assert seen["features"].dtype == torch.float32
    np.testing.assert_array_equal(seen["features"].numpy(), X)
    X.setflags(write=False)  # read-only (pandas copy-on-write): still no copy
    small().fit(X, y, sensitive_features=A)
    assert seen["features"].data_ptr() == X.ctypes.data


def test_draws_come_from_the_cpu_generator_whatever_the_device():
    from skfairbilevel.nn.draws import randint, randn, randperm

    _, gen = make_generators(3)
    assert gen.device.type == "cpu"
    state = gen.get_state()
    ref = torch.Generator().set_state(state)
    # moved to a device (the meta device stands in for a GPU: no values, only placement)
    assert randperm(10, gen, device="meta").device.type == "meta"
    gen.set_state(state)
    assert torch.equal(randperm(50, gen), torch.randperm(50, generator=ref))
    assert torch.equal(
        randn((3, 4), gen, dtype=torch.float64),
        torch.randn((3, 4), generator=ref, dtype=torch.float64),
    )
    assert torch.equal(randint(7, (5,), gen), torch.randint(7, (5,), generator=ref))


def test_sparse_rows_give_the_dense_rows_and_csr_batches():
    import scipy.sparse as sp

    from skfairbilevel._rows import model_features
    from skfairbilevel.nn.engine import SparseRows

    rng = np.random.default_rng(0)
    X = np.where(rng.random((30, 7)) < 0.3, rng.normal(size=(30, 7)), 0.0).astype(np.float32)
    X[4] = 0.0  # an empty row
    rows = SparseRows.from_scipy(model_features(sp.csr_matrix(X)), torch.device("cpu"))
    pos = torch.tensor([4, 0, 29, 4, 13])
    np.testing.assert_array_equal(rows.dense(pos).numpy(), X[pos.numpy()])
    batch = rows.csr(pos)
    assert batch.layout == torch.sparse_csr
    np.testing.assert_array_equal(batch.to_dense().numpy(), X[pos.numpy()])
    assert rows.dense(torch.tensor([4])).abs().sum() == 0 and rows.dense(pos[:0]).shape == (0, 7)
    # TensorData over it: rows in canonical positions, sparse batches when asked
    data = TensorData(rows, torch.zeros(3), torch.zeros(3, dtype=torch.long), index=pos[:3])
    np.testing.assert_array_equal(data.X.numpy(), X[[4, 0, 29]])
    assert data.batch(torch.tensor([1, 2])).x.layout == torch.strided
    data.sparse_batches = True
    np.testing.assert_array_equal(data.batch(torch.tensor([2, 1])).x.to_dense().numpy(), X[[29, 0]])


def test_batch_part_slices_dense_and_sparse_csr_rows():
    """``Batch.part`` gives the same rows whether ``x`` is dense or a CSR tensor (which
    torch cannot slice), with the matching targets, groups, weights and positions."""
    import warnings

    from skfairbilevel.nn.engine import Batch

    gen = torch.Generator().manual_seed(0)
    x = torch.rand(7, 5, generator=gen)
    x[x < 0.6] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        csr = x.to_sparse_csr()
    y, g, w, idx = (
        torch.arange(7),
        torch.arange(7) % 2,
        torch.rand(7, generator=gen),
        torch.arange(7),
    )
    for start, stop in ((0, 3), (3, 7), (2, 2), (0, 7)):
        for xx in (x, csr):
            part = Batch(xx, y, g, w, idx).part(start, stop)
            got = part.x.to_dense() if part.x.layout == torch.sparse_csr else part.x
            assert torch.equal(got, x[start:stop])
            assert torch.equal(part.y, y[start:stop]) and torch.equal(part.g, g[start:stop])
            assert torch.equal(part.w, w[start:stop]) and torch.equal(part.idx, idx[start:stop])


@pytest.mark.parametrize("name, cls", all_estimators(), ids=[n for n, _ in all_estimators()])
def test_every_estimator_verbose_2_writes_a_line_per_iteration(name, cls, capsys):
    """Every estimator trains through the engine's loop: ``verbose=2`` writes one line
    per recorded iteration (its number and values) and the bar stays; ``verbose=0``
    writes nothing."""
    X, y, A = biased_data()
    if name.endswith("Regressor"):
        y = X[:, 0] + y
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast_instance(name, cls, verbose=0).fit(X, y, sensitive_features=A)
        assert capsys.readouterr().err == ""
        est = fast_instance(name, cls, verbose=2).fit(X, y, sensitive_features=A)
    err = capsys.readouterr().err
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.endswith(" s)")]
    assert len(est.history_) >= 1
    assert len(lines) == len(est.history_)
    for k, line in enumerate(lines):
        assert f" {k + 1}/" in line and "=" in line, line
    # the bar stays after fit: its last state is the end of the output
    last = err.rstrip().replace("\r", "\n").splitlines()[-1]
    assert name in last and ("it/s" in last or "s/it" in last), last
