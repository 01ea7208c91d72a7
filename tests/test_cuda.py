"""Every estimator on a CUDA GPU: fit, predict, predict_proba, pickling to a CPU-only
process, the same model as on the CPU for the same seed, ``device="auto"``, sparse X,
no host synchronisation inside a training step, and the GPU memory of a large fit.

Marked ``cuda``: skipped on a machine without a GPU; run with ``pytest -m cuda``. The
agreement after default fits on Adult is also marked ``slow`` (a few minutes).
"""

import os
import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from skfairbilevel import FairBiNNClassifier, FairMLPClassifier, all_estimators
from skfairbilevel.exceptions import FairnessWarning
from skfairbilevel.nn import engine

from ._fast import fast_instance
from .test_group_risk import ROW_CHUNK_CASES, check_row_chunks
from .test_reliability import _assert_same_model as assert_same_model

pytestmark = pytest.mark.cuda

ESTIMATORS = all_estimators()
IDS = [name for name, _ in ESTIMATORS]

# BADR's default exact solver draws nothing; BADR-SGD draws its batches
STOCHASTIC = {
    "BADRClassifier": dict(solver="sgd", max_iter=20, batch_size=16),
    "BADRRegressor": dict(solver="sgd", max_iter=20, batch_size=16),
}


def data(name, n=240, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    A = np.where(rng.random(n) < 0.5, "f", "m")
    X[:, 0] += 0.8 * (A == "f")
    score = X[:, 0] + 0.5 * X[:, 1] + 0.3 * rng.normal(size=n)
    y = score.astype(np.float64) if "Regressor" in name else (score > np.median(score)).astype(int)
    return X, y, A


def fit(name, cls, X, y, A, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FairnessWarning)
        return fast_instance(name, cls, **kw).fit(X, y, sensitive_features=A)


def outputs(est, X):
    return est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)


def labels(est, X):
    return est.predict(X)


@pytest.mark.parametrize("name, cls", ESTIMATORS, ids=IDS)
def test_fit_predict_on_cuda_and_unpickle_on_a_cpu_only_process(name, cls, tmp_path):
    X, y, A = data(name)
    est = fit(name, cls, X, y, A, device="cuda")
    assert est.device_.type == "cuda"
    assert all(p.device.type == "cuda" for p in est.module_.parameters())
    out = outputs(est, X)
    assert out.shape[0] == len(y) and np.all(np.isfinite(out))
    if hasattr(est, "predict_proba"):
        np.testing.assert_allclose(out.sum(1), 1.0, atol=1e-6)
        assert set(np.unique(est.predict(X))) <= set(est.classes_)
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(est))
    np.save(tmp_path / "X.npy", X)
    code = textwrap.dedent(f"""
        import pickle, numpy as np, torch
        assert not torch.cuda.is_available()
        est = pickle.loads(open({str(path)!r}, "rb").read())
        X = np.load({str(tmp_path / "X.npy")!r})
        out = est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)
        assert est.device_.type == "cpu"
        np.save({str(tmp_path / "cpu.npy")!r}, out)
    """)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    np.testing.assert_allclose(np.load(tmp_path / "cpu.npy"), out, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name, cls", ESTIMATORS, ids=IDS)
def test_same_seed_gives_the_same_model_on_cpu_and_gpu(name, cls):
    """Every random draw comes from a CPU generator: the GPU model differs from the CPU
    one by floating-point rounding only."""
    X, y, A = data(name)
    extra = STOCHASTIC.get(name, {})
    cpu = fit(name, cls, X, y, A, device="cpu", **extra)
    gpu = fit(name, cls, X, y, A, device="cuda", **extra)
    assert np.mean(labels(cpu, X) == labels(gpu, X)) >= 0.99
    scale = np.abs(outputs(cpu, X)).max()
    np.testing.assert_allclose(outputs(gpu, X), outputs(cpu, X), atol=1e-2 * max(scale, 1.0))


@pytest.mark.slow
@pytest.mark.parametrize("name, cls", ESTIMATORS, ids=IDS)
def test_default_fits_on_adult_agree_on_cpu_and_gpu(name, cls):
    """The target of the GPU work: at least 99.5 % of the test labels agree after the
    default fit (random_state=0) on Adult on the CPU and on the GPU."""
    from skfairbilevel.datasets import load_adult, make_preprocessor

    train = load_adult(sensitive="sex", split="train")
    test = load_adult(sensitive="sex", split="test")
    pre = make_preprocessor(train.data, sensitive="sex").fit(train.data)
    X = np.asarray(pre.transform(train.data), dtype=np.float32)
    Xt = np.asarray(pre.transform(test.data), dtype=np.float32)
    y, A = train.target.to_numpy(), train.sensitive_features.to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FairnessWarning)
        cpu = cls(random_state=0).fit(X, y, sensitive_features=A).predict(Xt)
        gpu = cls(random_state=0, device="cuda").fit(X, y, sensitive_features=A).predict(Xt)
    assert np.mean(cpu == gpu) >= 0.995


@pytest.mark.parametrize("name, cls", ESTIMATORS, ids=IDS)
def test_device_auto_takes_the_gpu(name, cls):
    X, y, A = data(name)
    est = fit(name, cls, X, y, A, device="auto")
    assert est.device_.type == "cuda"
    assert all(p.device.type == "cuda" for p in est.module_.parameters())
    assert outputs(est, X).shape[0] == len(y)


@pytest.mark.parametrize("name, cls", ESTIMATORS, ids=IDS)
def test_sparse_X_on_cuda_trains_the_model_of_dense_X(name, cls):
    X, y, A = data(name)
    X[np.abs(X) < 0.6] = 0.0
    dense = fit(name, cls, X, y, A, device="cuda")
    sparse = fit(name, cls, sp.csr_matrix(X), y, A, device="cuda")
    assert_same_model(sparse, outputs(sparse, sp.csr_matrix(X)), outputs(dense, X))


@pytest.mark.parametrize(
    "cls, params",
    [
        (FairMLPClassifier, {}),
        (FairMLPClassifier, {"fairness": "demographic_parity"}),
        (FairBiNNClassifier, {}),
        (FairBiNNClassifier, {"mode": "lagrangian"}),
        (FairBiNNClassifier, {"update_order": "follower_first"}),
    ],
)
def test_no_host_synchronisation_inside_a_training_step(cls, params, monkeypatch):
    """Batches are gathered and steps taken without the host waiting for the GPU: CUDA's
    sync debug mode turns any synchronisation inside a step into an error (the epoch's
    values are read once, after its last step)."""
    import skfairbilevel.base as base

    def strict_epochs(step, data, sampler):
        def strict_step(batch):
            torch.cuda.set_sync_debug_mode("error")
            try:
                return step(batch)
            finally:
                torch.cuda.set_sync_debug_mode("default")

        return engine.epochs(strict_step, data, sampler)

    monkeypatch.setattr(base, "epochs", strict_epochs)
    X, y, A = data("FairMLPClassifier", n=2000)
    est = cls(hidden_layer_sizes=(16,), max_epochs=2, batch_size=64, device="cuda", **params)
    est.set_params(random_state=0).fit(X, y, sensitive_features=A)
    assert len(est.history_) == 2


def test_gpu_memory_of_a_large_fit_is_at_most_one_and_a_half_times_the_data():
    """X moves to the GPU once and batches are gathered there: no second copy of X."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400_000, 100), dtype=np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    FairMLPClassifier((64, 64), max_epochs=1, batch_size=4096, device="cuda").fit(X, y)
    assert torch.cuda.max_memory_allocated() - base <= 1.5 * X.nbytes


@pytest.mark.parametrize("kind,fairness,n_classes", ROW_CHUNK_CASES)
@pytest.mark.parametrize("newton", [True, False], ids=["newton-solve", "lbfgs-cg"])
def test_badr_problem_row_chunks_on_cuda_and_agreement_with_cpu(kind, fairness, n_classes, newton):
    """BADR's problem on the GPU: row chunks and float32 X change nothing there either,
    and its solution and hypergradient are those of the CPU up to float64 rounding."""
    cpu = check_row_chunks(kind, fairness, n_classes, newton, "cpu")
    gpu = check_row_chunks(kind, fairness, n_classes, newton, "cuda")
    assert abs(gpu[0] - cpu[0]) <= 1e-10 * abs(cpu[0])
    np.testing.assert_allclose(gpu[1].numpy(), cpu[1].numpy(), rtol=1e-7, atol=1e-12)
    for a, b in zip(cpu[2], gpu[2], strict=True):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-7, atol=1e-10)
