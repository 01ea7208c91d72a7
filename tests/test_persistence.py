"""Persistence: skops, pickle and joblib round-trips of every fitted estimator.

The fitted networks are stored as plain data (``skfairbilevel.nn.state.TorchState``),
so a skops file lists only the package's own classes as types to trust, and a model
fitted on a GPU loads in a CPU-only process.
"""

import io
import os
import pickle
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from torch import nn

from skfairbilevel import all_estimators
from skfairbilevel.datasets import make_biased_classification
from skfairbilevel.nn.state import TorchState, module_from_state, module_state

from ._fast import fast_instance

sio = pytest.importorskip("skops.io")

IDS = [name for name, _ in all_estimators()]


def _fitted(name, cls, **params):
    X, y, A = make_biased_classification(150, 4, random_state=0)
    if name.endswith("Regressor"):
        y = X[:, 0] + y
    A = np.where(A == 1, "group b", "group a")
    return fast_instance(name, cls, **params).fit(X, y, sensitive_features=A), X


def _outputs(est, X):
    methods = ("predict", "predict_proba", "decision_function")
    return {m: getattr(est, m)(X) for m in methods if hasattr(est, m)}


@pytest.mark.parametrize("name, cls", all_estimators(), ids=IDS)
def test_skops_pickle_joblib_round_trips(name, cls, tmp_path):
    est, X = _fitted(name, cls)
    expected = _outputs(est, X)
    path = tmp_path / "model.skops"
    sio.dump(est, path)
    untrusted = sio.get_untrusted_types(file=path)
    # only the package's own classes: the estimator and the stored networks
    assert sorted(untrusted) == sorted(
        [f"{cls.__module__}.{cls.__name__}", "skfairbilevel.nn.state.TorchState"]
    )
    with pytest.raises(Exception, match="[Uu]ntrusted"):
        sio.load(path)
    buf = io.BytesIO()
    joblib.dump(est, buf)
    buf.seek(0)
    for loaded in (
        sio.load(path, trusted=untrusted),
        pickle.loads(pickle.dumps(est)),
        joblib.load(buf),
    ):
        assert type(loaded) is cls
        for method, values in _outputs(loaded, X).items():
            assert_array_equal(values, expected[method], err_msg=method)
        assert loaded.get_params() == est.get_params()
        assert_array_equal(loaded.groups_, est.groups_)


@pytest.mark.parametrize("name, cls", all_estimators(), ids=IDS)
def test_a_pickle_holds_no_torch_object(name, cls):
    est, _ = _fitted(name, cls)
    seen = []

    class Recorder(pickle.Unpickler):
        def find_class(self, module, global_name):
            seen.append(module)
            return super().find_class(module, global_name)

    Recorder(io.BytesIO(pickle.dumps(est))).load()
    assert not [m for m in seen if m.split(".")[0] == "torch"]


def test_warm_start_after_loading_continues_training(tmp_path):
    from skfairbilevel import FairMLPClassifier

    X, y, A = make_biased_classification(150, 4, random_state=0)
    est = FairMLPClassifier(hidden_layer_sizes=(8,), max_epochs=3, warm_start=True)
    est.fit(X, y, sensitive_features=A)
    sio.dump(est, tmp_path / "m.skops")
    loaded = sio.load(
        tmp_path / "m.skops", trusted=sio.get_untrusted_types(file=tmp_path / "m.skops")
    )
    weights = loaded.module_[0].weight.detach().clone()
    assert loaded.module_[0].weight.requires_grad
    loaded.fit(X, y, sensitive_features=A)
    assert len(loaded.history_) == 6
    assert not torch.equal(weights, loaded.module_[0].weight)
    # the original's weights are not shared with the loaded copy
    assert torch.equal(est.module_[0].weight.detach(), weights)


def test_state_of_a_gpu_fit_loads_on_the_cpu(tmp_path):
    """A file written from a CUDA model (device_ 'cuda:0') loads on a CPU-only machine."""
    from skfairbilevel import FairMLPClassifier

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: see test_gpu_fit_loads_in_a_cpu_only_process")
    X, y, A = make_biased_classification(150, 4, random_state=0)
    est = FairMLPClassifier(hidden_layer_sizes=(8,), max_epochs=3).fit(X, y, sensitive_features=A)
    expected = est.predict_proba(X)
    est.device_ = torch.device("cuda:0")  # as written by a GPU fit
    path = tmp_path / "gpu.skops"
    sio.dump(est, path)
    loaded = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    assert loaded.device_ == torch.device("cpu")
    assert all(p.device.type == "cpu" for p in loaded.module_.parameters())
    assert_array_equal(loaded.predict_proba(X), expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("name, cls", all_estimators(), ids=IDS)
def test_gpu_fit_loads_in_a_cpu_only_process(name, cls, tmp_path):
    est, X = _fitted(name, cls, device="cuda")
    expected = est.predict(X)
    sio.dump(est, tmp_path / "gpu.skops")
    (tmp_path / "gpu.pkl").write_bytes(pickle.dumps(est))
    np.save(tmp_path / "X.npy", X)
    script = textwrap.dedent(
        """
        import pickle, sys
        import numpy as np, skops.io as sio, torch
        assert not torch.cuda.is_available()
        d = sys.argv[1]
        X = np.load(f"{d}/X.npy")
        path = f"{d}/gpu.skops"
        loaded = {
            "skops": sio.load(path, trusted=sio.get_untrusted_types(file=path)),
            "pickle": pickle.loads(open(f"{d}/gpu.pkl", "rb").read()),
        }
        for kind, est in loaded.items():
            assert est.device_.type == "cpu", kind
            np.save(f"{d}/{kind}.npy", est.predict(X))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        check=True,
        env={**env, "CUDA_VISIBLE_DEVICES": ""},
    )
    for kind in ("skops", "pickle"):
        out = np.load(tmp_path / f"{kind}.npy")
        # the CPU's kernels may round differently from the GPU's: labels agree on almost
        # all rows, regression predictions to float32 precision
        if name.endswith("Regressor"):
            np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4, err_msg=kind)
        else:
            assert np.mean(out == expected) > 0.98, kind


# ------------------------------------------------------------------ TorchState
class _Custom(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.register_buffer("scale", torch.tensor([2.0, 3.0], dtype=torch.float64))
        self.register_buffer("cache", torch.zeros(2), persistent=False)
        self.empty = None
        self.widths = [3, 2]
        self.shape = (1, (2, 3))
        self.dtype = torch.float64
        self.device = torch.device("cpu")
        self.table = {"a": 1.5, "b": torch.arange(3)}
        self.frozen = nn.Parameter(torch.ones(2), requires_grad=False)


def test_torch_state_rebuilds_modules_buffers_and_attributes(monkeypatch):
    from skfairbilevel.nn import state as state_mod

    # a module class of the tests, trusted for this test only
    monkeypatch.setattr(state_mod, "TRUSTED_MODULE_PREFIXES", ("torch.nn.", "tests."))
    m = _Custom()
    with torch.no_grad():  # a transposed (non-contiguous) parameter keeps its layout
        m.lin.weight = nn.Parameter(torch.randn(3, 2).T)
    m.train(False)
    state = module_state(m)
    back = module_from_state(pickle.loads(pickle.dumps(state)))
    assert type(back) is _Custom and type(back.lin) is nn.Linear and not back.training
    assert back.lin.weight.stride() == m.lin.weight.stride() == (1, 2)
    assert torch.equal(back.lin.weight, m.lin.weight) and back.lin.weight.requires_grad
    assert not back.frozen.requires_grad
    assert back.scale.dtype == torch.float64 and torch.equal(back.scale, m.scale)
    assert "cache" not in back.state_dict() and "scale" in back.state_dict()
    assert back.widths == [3, 2] and back.shape == (1, (2, 3)) and back.empty is None
    assert back.dtype is torch.float64 and back.device == torch.device("cpu")
    assert back.table["a"] == 1.5 and torch.equal(back.table["b"], torch.arange(3))
    x = torch.randn(4, 3)
    assert torch.equal(back.lin(x), m.lin(x))
    # the stored arrays are copied on loading: the rebuilt module shares no memory
    with torch.no_grad():
        back.lin.bias += 1
    assert not torch.equal(back.lin.bias, m.lin.bias)


def test_torch_state_refuses_classes_outside_torch_nn_and_the_package():
    state = module_state(nn.Linear(2, 1))
    for path in ("collections.OrderedDict", "os.system", "builtins.eval", "torch.Tensor"):
        bad = dict(state, **{"class": path})
        with pytest.raises(TypeError, match="refusing|not a torch.nn.Module"):
            module_from_state(bad)
    bad = dict(state, **{"class": "torch.nn.functional.relu"})
    with pytest.raises(TypeError, match="not a torch.nn.Module"):
        module_from_state(bad)


def test_torch_state_refuses_a_dtype_that_is_not_one():
    m = nn.Linear(2, 1)
    m.dtype = torch.float64
    state = module_state(m)
    state["attributes"]["dtype"] = {"__dtype__": "load"}
    with pytest.raises(TypeError, match="not a torch dtype"):
        module_from_state(state)


def test_torch_state_refuses_attributes_it_cannot_store():
    m = nn.Linear(2, 1)
    m.callback = print
    with pytest.raises(TypeError, match="Linear.callback"):
        TorchState(m)


def test_torch_state_of_a_tensor():
    t = torch.arange(6.0).reshape(2, 3).T
    back = pickle.loads(pickle.dumps(TorchState(t))).restore()
    assert torch.equal(back, t) and back.stride() == t.stride()
