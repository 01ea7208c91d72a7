"""The thread rule: fit's training steps and predict's blocks, and the count restored."""

import threading

import numpy as np
import pytest
import torch

from skfairbilevel import FairMLPClassifier, all_estimators
from skfairbilevel.datasets import make_biased_classification
from skfairbilevel.nn import threads
from skfairbilevel.nn.threads import WORK_PER_THREAD, threads_for, torch_threads

from ._fast import fast_instance


@pytest.fixture
def two_threads():
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(1)


def test_threads_for_rule():
    assert WORK_PER_THREAD == 2**26
    assert threads_for(0, available=8) == 1
    assert threads_for(2**26 - 1, available=8) == 1
    assert threads_for(2**26, available=8) == 1
    assert threads_for(3 * 2**26 + 5, available=8) == 3
    assert threads_for(3 * 2**26, available=2) == 2
    assert threads_for(10**12, available=8) == 8


def test_torch_threads_restores_the_count(two_threads):
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with pytest.raises(RuntimeError), torch_threads(1):
        raise RuntimeError
    assert torch.get_num_threads() == 2


def _spy_fit(est, seen):
    fit_torch = est._fit_torch

    def spy(train, val):
        seen.append(torch.get_num_threads())
        return fit_torch(train, val)

    est._fit_torch = spy


@pytest.mark.parametrize("name, cls", all_estimators(), ids=[n for n, _ in all_estimators()])
def test_fit_trains_small_models_on_one_thread_and_restores(name, cls, two_threads):
    X, y, A = make_biased_classification(100, 4, random_state=0)
    if name.endswith("Regressor"):
        y = X[:, 0] + y
    est = fast_instance(name, cls)
    seen = []
    _spy_fit(est, seen)
    est.fit(X, y, sensitive_features=A)
    assert seen == [1]
    assert torch.get_num_threads() == 2


def test_fit_uses_more_threads_for_large_steps(two_threads, monkeypatch):
    X, y, A = make_biased_classification(300, 4, random_state=0)
    est = FairMLPClassifier(hidden_layer_sizes=(16,), batch_size=64, max_epochs=2)
    n_weights = 4 * 16 + 16 + 16 + 1
    # one thread per 64 * n_weights multiply-adds: a batch of 64 rows gets 1 thread,
    # all 300 rows (batch_size larger than the data) get min(2, 300 // 64) = 2
    monkeypatch.setattr(threads, "WORK_PER_THREAD", 64 * n_weights)
    seen = []
    _spy_fit(est, seen)
    est.fit(X, y, sensitive_features=A)
    est.set_params(batch_size=1000)
    est.fit(X, y, sensitive_features=A)
    assert seen == [1, 2]
    assert torch.get_num_threads() == 2


def test_predict_blocks_run_on_one_thread_each(two_threads, monkeypatch):
    X, y, A = make_biased_classification(100, 4, random_state=0)
    est = FairMLPClassifier(hidden_layer_sizes=(8,), max_epochs=2).fit(X, y, sensitive_features=A)
    rows = est._predict_block_rows()
    seen = []
    forward = est._forward

    def spy(x):
        seen.append((threading.get_ident(), torch.get_num_threads()))
        return forward(x)

    est._forward = spy
    X_big = np.tile(X, (3 * rows // len(X) + 1, 1))
    # a small network's prediction is little work: the fit's rule gives it one thread,
    # every block runs in the calling thread
    scores = est.decision_function(X_big)
    assert len(seen) == -(-len(X_big) // rows)
    assert {ident for ident, _ in seen} == {threading.get_ident()}
    assert {count for _, count in seen} == {1}
    # more work than one thread's share (rows x weights): the blocks are spread
    n_weights = sum(p.numel() for p in est.module_.parameters())
    monkeypatch.setattr(threads, "WORK_PER_THREAD", len(X_big) * n_weights // 2)
    seen.clear()
    np.testing.assert_array_equal(est.decision_function(X_big), scores)
    assert {count for _, count in seen} == {1}
    # the first block in the calling thread, the others by the pool's worker threads
    assert seen[0][0] == threading.get_ident()
    assert threading.get_ident() not in {ident for ident, _ in seen[1:]}
    assert torch.get_num_threads() == 2
    est._forward = forward
    torch.set_num_threads(1)
    np.testing.assert_array_equal(est.decision_function(X_big), scores)


def test_facims_default_fit_on_one_thread(two_threads):
    """FACIMS's steps run one network at a time on small batches (a validation batch, a
    batch per group): its default fit of 2,000 x 20 rows (the one of
    benchmarks/bench_threads.py) trains on one thread, not on all rows times every
    group's weights (which asked for two threads and was 10x slower next to a busy
    process)."""
    from skfairbilevel import FACIMSClassifier

    X, y, A = make_biased_classification(2000, 20, random_state=0)
    est = FACIMSClassifier(max_epochs=1, random_state=0)
    seen = []
    _spy_fit(est, seen)
    est.fit(X, y, sensitive_features=A)
    assert seen == [1]
    prior = sum(p.numel() for p in est.module_.prior.parameter_list()) // 2
    assert prior == 20 * 400 + 400 + 400 * 200 + 200 + 200 * 100 + 100 + 100 * 2 + 2
    assert est._step_work(est.n_train_rows_) == 1024 * prior  # the validation batch
    assert torch.get_num_threads() == 2
