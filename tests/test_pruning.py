"""Tests of FairPruningClassifier (BiFP) and the maskable layers of nn/masked.py."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from skfairbilevel import FairPruningClassifier
from skfairbilevel.datasets import make_biased_classification
from skfairbilevel.exceptions import TrainingInterruptedWarning
from skfairbilevel.metrics import accuracy_parity_difference
from skfairbilevel.nn import masked as masked_mod
from skfairbilevel.nn.losses import accuracy_parity_loss, classification_margin
from skfairbilevel.nn.masked import (
    MaskedMLP,
    compact_mlp,
    global_topk_mask,
    implicit_score_gradient,
    n_pruned,
    straight_through,
)

FAST = dict(
    hidden_layer_sizes=(16, 16),
    pretrain_epochs=15,
    max_epochs=5,
    finetune_epochs=3,
    lr=1e-2,
    batch_size=128,
)


@pytest.fixture(scope="module")
def data():
    X, y, A = make_biased_classification(600, 6, bias=1.5, random_state=0)
    return X.astype(np.float32), y, A


def _net(structured=False, sparsity=0.5, activation="relu", hidden=(8, 6), seed=0):
    gen = torch.Generator()
    gen.manual_seed(seed)
    net = MaskedMLP(
        5, hidden, 2, sparsity=sparsity, structured=structured, activation=activation, generator=gen
    )
    net.init_scores_()
    return net


# ---------------------------------------------------------------------- masks
def test_n_pruned_rounds_and_keeps_one():
    assert n_pruned(10, 0.7) == 7
    assert n_pruned(10, 0.74) == 7
    assert n_pruned(10, 0.76) == 8
    assert n_pruned(10, 0.999) == 9  # never all
    assert n_pruned(10, 0.0) == 0


def test_global_topk_keeps_the_largest_over_all_tensors():
    a = torch.tensor([[0.1, 0.9], [0.5, 0.2]])
    b = torch.tensor([0.8, 0.05, 0.3])
    ma, mb = global_topk_mask([a, b], sparsity=4 / 7)  # remove 4 of 7, keep 3
    assert ma.tolist() == [[0.0, 1.0], [1.0, 0.0]]
    assert mb.tolist() == [1.0, 0.0, 0.0]


def test_straight_through_is_binary_forward_and_identity_backward():
    s = torch.tensor([0.3, -1.0, 2.0], requires_grad=True)
    hard = torch.tensor([1.0, 0.0, 1.0])
    out = straight_through(s, hard)
    assert out.tolist() == [1.0, 0.0, 1.0]
    (out * torch.tensor([2.0, 3.0, 5.0])).sum().backward()
    assert s.grad.tolist() == [2.0, 3.0, 5.0]


@pytest.mark.parametrize("structured", [False, True])
def test_masks_in_forward_are_binary_and_exact(structured):
    net = _net(structured=structured, sparsity=0.5)
    net.mode = "scores"
    masks = net.score_masks()
    for pair in masks:
        for m in pair:
            if m is not None:
                assert set(torch.unique(m).tolist()) <= {0.0, 1.0}
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(1))
    out_scores = net(x)
    net.freeze_()
    assert torch.equal(out_scores, net(x))  # the same binary masks in both modes
    if structured:
        # 8 -> 4 and 6 -> 3 hidden units kept, output layer intact
        assert [int(layer.unit_mask.sum()) for layer in net.layers] == [4, 3, 2]
        assert net.achieved_sparsity() == 7 / 14
        # a removed unit's row is marked in weight_mask and its gated output is 0
        first = net.layers[0]
        assert torch.equal(first.weight_mask, first.unit_mask[:, None].expand(8, 5))
        h = net.net[1](first(x)) * first.unit_mask
        assert not h[:, first.unit_mask == 0].any()
    else:
        n = sum(layer.weight.numel() for layer in net.layers)
        kept = sum(int(layer.weight_mask.sum()) for layer in net.layers)
        assert kept == n - round(0.5 * n)


def _loss_with_masks(net, x, y, masks):
    """Cross-entropy of ``net`` run with explicit (possibly continuous) masks."""
    h, i, gate = x, 0, None
    for module in net.net:
        if isinstance(module, masked_mod.MaskedLinear):
            wm, gate = masks[i]
            h = module.masked_forward(h, wm)
            i += 1
        else:
            h = module(h)
            if gate is not None:
                h = h * gate
    return nn.functional.cross_entropy(h, y)


@pytest.mark.parametrize("structured", [False, True])
def test_gradients_reach_the_scores_as_the_mask_gradient(structured):
    """Straight-through: d loss / d score = d loss / d m at the binary mask, checked
    against central finite differences of the loss in a continuous mask. Removed
    entries get a gradient too (they can come back)."""
    net = _net(sparsity=0.6, structured=structured).double()
    net.mode = "scores"
    x = torch.randn(7, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    y = torch.tensor([0, 1, 1, 0, 1, 0, 1])
    nn.functional.cross_entropy(net(x), y).backward()
    hard = net.hard_masks()
    layer = net.layers[1] if not structured else net.layers[0]
    which = 0 if structured else 1
    grad = layer.unit_scores.grad if structured else layer.scores.grad
    mask = hard[which][1] if structured else hard[which][0]
    assert grad is not None
    assert grad[mask == 0].abs().sum() > 0 and grad[mask == 1].abs().sum() > 0

    def loss_at(m):
        masks = list(hard)
        masks[which] = (None, m) if structured else (m, None)
        return _loss_with_masks(net, x, y, masks).detach()

    eps = 1e-6
    entries = [(0,), (3,), (5,), (7,)] if structured else [(0, 0), (3, 2), (5, 7)]
    for e in entries:
        up, down = mask.clone(), mask.clone()
        up[e] += eps
        down[e] -= eps
        fd = float((loss_at(up) - loss_at(down)) / (2 * eps))
        assert grad[e].item() == pytest.approx(fd, rel=1e-5, abs=1e-9)


def test_implicit_score_gradient_uses_the_weight_gradient():
    gs = torch.tensor([1.0, -2.0, 0.5])
    gt = torch.tensor([3.0, 0.0, -4.0])  # 0 where the weight is masked
    out = implicit_score_gradient(gs, gt, 0.1)
    assert torch.allclose(out, torch.tensor([1.0 - 0.1 * 3.0, -2.0, 0.5 - 0.1 * 0.5 * -4.0]))
    assert implicit_score_gradient(gs, gt, 0) is gs
    # structured: one score per unit, the term summed over the unit's incoming weights
    gu = torch.tensor([1.0, 2.0])
    w = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
    gw = torch.tensor([[2.0, 1.0], [0.0, 0.0]])  # second unit removed: zero gradient
    out = implicit_score_gradient(gu, gw, 0.1, weight=w)
    assert torch.allclose(out, torch.tensor([1.0 - 0.1 * (1.0 * 4.0 - 2.0 * 1.0), 2.0]))


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "softplus", "tanh"])
def test_structured_compaction_is_exact_and_smaller(activation):
    net = _net(structured=True, sparsity=0.5, activation=activation)
    with torch.no_grad():  # scores unlike the magnitudes, so the kept units are mixed
        for layer in net.layers:
            layer.unit_scores.uniform_(generator=torch.Generator().manual_seed(3))
    net.freeze_()
    small = compact_mlp(net)
    widths = [m.out_features for m in small if isinstance(m, nn.Linear)]
    assert widths == [4, 3, 2]
    x = torch.randn(50, 5, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert torch.allclose(small(x), net(x), atol=1e-6)
    n_params = sum(p.numel() for p in small.parameters())
    assert n_params == (5 * 4 + 4) + (4 * 3 + 3) + (3 * 2 + 2)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "softplus", "elu"])
def test_aligned_compaction_pads_with_inert_units(activation):
    # 8 and 6 hidden units at sparsity 0.5 keep 4 and 3; align=4 pads to 4 and 4, align=8
    # to at most the original widths 8 and 6. The padded units have zero weights in and
    # out (and zero bias), so the output equals the masked network's even where
    # act(0) != 0 (sigmoid, softplus).
    net = _net(structured=True, sparsity=0.5, activation=activation)
    with torch.no_grad():
        for layer in net.layers:
            layer.unit_scores.uniform_(generator=torch.Generator().manual_seed(3))
    net.freeze_()
    x = torch.randn(50, 5, generator=torch.Generator().manual_seed(4))
    x0 = x.clone()
    for align, expected in [(4, [4, 4, 2]), (8, [8, 6, 2])]:
        small = compact_mlp(net, align=align)
        linears = [m for m in small if isinstance(m, nn.Linear)]
        assert [m.out_features for m in linears] == expected
        kept = [int(layer.unit_mask.sum()) for layer in net.prunable]
        for lin, k in zip(linears[:-1], kept, strict=True):
            assert not lin.weight[k:].any() and not lin.bias[k:].any()
        for lin, k in zip(linears[1:], kept, strict=True):
            assert not lin.weight[:, k:].any()
        with torch.no_grad():
            assert torch.allclose(small(x), net(x), atol=1e-6)
        assert torch.equal(x, x0)  # in-place activations never touch the input


def test_prediction_network_is_padded_and_chunked(data, monkeypatch):
    # predictions (in one chunk, and in chunks of 7 rows) equal a forward pass of model_
    import skfairbilevel.base as base_mod

    X, y, A = data
    clf = FairPruningClassifier(**FAST, structured=True, sparsity=0.7, random_state=0)
    clf.fit(X, y, sensitive_features=A)
    assert [m.out_features for m in clf.model_ if isinstance(m, nn.Linear)] == [8, 8, 1]
    assert [len(k) for k in clf.units_kept_] == [5, 5]
    with torch.no_grad():
        direct = torch.sigmoid(clf.model_(torch.as_tensor(X))[:, 0]).double().numpy()
    assert np.allclose(clf.predict_proba(X)[:, 1], direct, atol=1e-7)
    monkeypatch.setattr(base_mod.BaseFairEstimator, "_predict_block_rows", lambda self: 7)
    assert np.allclose(clf.predict_proba(X)[:, 1], direct, atol=1e-7)


# ---------------------------------------------------------------------- surrogate
def test_accuracy_parity_loss_hand_computed():
    logits = torch.tensor([[2.0], [-1.0], [0.5], [0.0]])
    y = torch.tensor([1, 1, 0, 0])
    g = torch.tensor([0, 0, 1, 1])
    margins = torch.tensor([2.0, -1.0, -0.5, 0.0])
    assert torch.equal(classification_margin(logits, y), margins)
    T = 0.5
    acc = torch.sigmoid(margins / T)
    expected = abs((acc[0] + acc[1]) / 2 - (acc[2] + acc[3]) / 2)
    got = accuracy_parity_loss(logits, y, g, 2, temperature=T)
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)
    # a tiny temperature approaches the hard gap: group 0 acc 1/2, group 1 acc 1/4 (tie 1/2)
    cold = accuracy_parity_loss(logits, y, g, 2, temperature=1e-4)
    assert cold.item() == pytest.approx(abs(0.5 - 0.25), abs=1e-3)
    # weights: a zero weight removes a row from its group's mean
    w = torch.tensor([1.0, 0.0, 1.0, 1.0])
    got_w = accuracy_parity_loss(logits, y, g, 2, w, temperature=T)
    assert got_w.item() == pytest.approx(abs(acc[0] - (acc[2] + acc[3]) / 2).item(), rel=1e-6)


def test_multiclass_margin_and_three_groups():
    logits = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 5.0], [1.0, 1.5, 0.0]])
    y = torch.tensor([0, 1, 2])
    assert classification_margin(logits, y).tolist() == [2.0, -3.0, -1.5]
    g = torch.tensor([0, 1, 2])
    acc = torch.sigmoid(torch.tensor([2.0, -3.0, -1.5]))
    got = accuracy_parity_loss(logits, y, g, 3, temperature=1.0)
    assert got.item() == pytest.approx((acc.max() - acc.min()).item(), rel=1e-6)


# ---------------------------------------------------------------------- estimator
@pytest.mark.parametrize("structured", [False, True])
@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.7, 0.95])
def test_achieved_sparsity_equals_request(data, structured, sparsity):
    X, y, A = data
    clf = FairPruningClassifier(
        **{**FAST, "pretrain_epochs": 2, "max_epochs": 1, "finetune_epochs": 1},
        sparsity=sparsity,
        structured=structured,
        random_state=0,
    )
    clf.fit(X, y, sensitive_features=A)
    if structured:
        units = [16, 16]
        removed = sum(n_pruned(u, sparsity) for u in units)
        assert clf.sparsity_ == pytest.approx(removed / sum(units), abs=1e-7)
        assert [len(k) for k in clf.units_kept_] == [u - n_pruned(u, sparsity) for u in units]
        # the prediction network: kept units rounded up to a multiple of 8, at most 16
        widths = [m.out_features for m in clf.model_ if isinstance(m, nn.Linear)]
        kept = [u - n_pruned(u, sparsity) for u in units]
        assert widths == [min(-(-k // 8) * 8, u) for k, u in zip(kept, units, strict=True)] + [1]
    else:
        n = sum(m.size for m in clf.masks_)
        assert n == 6 * 16 + 16 * 16 + 16
        kept = sum(int(m.sum()) for m in clf.masks_)
        assert kept == n - round(sparsity * n)
        assert clf.sparsity_ == pytest.approx(round(sparsity * n) / n, abs=1e-7)
        # the prediction network has exactly the masked weights set to zero
        linears = [m for m in clf.model_ if isinstance(m, nn.Linear)]
        for lin, mask in zip(linears, clf.masks_, strict=True):
            assert not lin.weight.detach().numpy()[~mask].any()


def test_magnitude_pruning_removes_the_smallest_dense_weights(data):
    X, y, A = data
    clf = FairPruningClassifier(**FAST, pruning="magnitude", sparsity=0.8, random_state=0)
    clf.fit(X, y, sensitive_features=A)
    dense = np.concatenate(
        [m.weight.detach().numpy().ravel() for m in clf.dense_module_ if isinstance(m, nn.Linear)]
    )
    keep = np.concatenate([m.ravel() for m in clf.masks_])
    assert np.abs(dense[keep]).min() >= np.abs(dense[~keep]).max()
    assert keep.sum() == len(keep) - round(0.8 * len(keep))


def test_bilevel_moves_the_scores_and_the_mask(data):
    X, y, A = data
    kw = dict(**FAST, sparsity=0.8, random_state=0, fairness_weight=1.0, score_lr=0.5)
    bil = FairPruningClassifier(**kw).fit(X, y, sensitive_features=A)
    mag = FairPruningClassifier(**{**kw, "pruning": "magnitude"}).fit(X, y, sensitive_features=A)
    assert np.array_equal(
        np.concatenate(
            [
                m.weight.detach().numpy().ravel()
                for m in bil.dense_module_
                if isinstance(m, nn.Linear)
            ]
        ),
        np.concatenate(
            [
                m.weight.detach().numpy().ravel()
                for m in mag.dense_module_
                if isinstance(m, nn.Linear)
            ]
        ),
    )  # same dense model
    changed = np.mean(
        np.concatenate(
            [a.ravel() != b.ravel() for a, b in zip(bil.masks_, mag.masks_, strict=True)]
        )
    )
    assert changed > 0.01
    phases = [h["phase"] for h in bil.history_]
    assert phases == ["pretrain"] * 15 + ["prune"] * 5 + ["finetune"] * 3
    n_batches = int(np.ceil(len(np.unique(np.column_stack([X, y, A]), axis=0)) / 128))
    it = [h["iterations"] for h in bil.history_]
    ev = [h["gradient_evaluations"] for h in bil.history_]
    assert it[-1] == 23 * n_batches
    assert ev[-1] == (15 + 2 * 5 + 3) * n_batches


def test_accuracy_parity_penalty_reduces_the_accuracy_gap():
    # group 1's labels are much noisier: a plain model is far less accurate on it
    rng = np.random.default_rng(0)
    n = 600
    A = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 5))
    y = ((X[:, 0] + np.where(A == 1, 1.2, 0.2) * rng.normal(size=n)) > 0).astype(int)
    X = np.column_stack([X, A]).astype(np.float32)
    gaps = {}
    for lam in (0.0, 1.0):
        clf = FairPruningClassifier(
            **FAST,
            sparsity=0.7,
            random_state=0,
            fairness="accuracy_parity",
            fairness_weight=lam,
        ).fit(X, y, sensitive_features=A)
        gaps[lam] = accuracy_parity_difference(y, clf.predict(X), sensitive_features=A)
    assert gaps[0.0] > 0.12
    assert gaps[1.0] < 0.5 * gaps[0.0]


def test_same_seed_identical_different_seed_differs(data):
    X, y, A = data
    p1 = (
        FairPruningClassifier(**FAST, random_state=3)
        .fit(X, y, sensitive_features=A)
        .predict_proba(X)
    )
    p2 = (
        FairPruningClassifier(**FAST, random_state=3)
        .fit(X, y, sensitive_features=A)
        .predict_proba(X)
    )
    p3 = (
        FairPruningClassifier(**FAST, random_state=4)
        .fit(X, y, sensitive_features=A)
        .predict_proba(X)
    )
    assert np.array_equal(p1, p2)
    assert not np.allclose(p1, p3)


def test_warm_start_reuses_the_dense_model(data):
    X, y, A = data
    clf = FairPruningClassifier(**FAST, sparsity=0.5, warm_start=True, random_state=0)
    clf.fit(X, y, sensitive_features=A)
    dense = [p.detach().clone() for p in clf.dense_module_.parameters()]
    clf.set_params(sparsity=0.9, pruning="prune_then_fair").fit(X, y, sensitive_features=A)
    assert "pretrain" not in {h["phase"] for h in clf.history_}
    assert all(
        torch.equal(a, b) for a, b in zip(dense, clf.dense_module_.parameters(), strict=True)
    )
    assert clf.sparsity_ == pytest.approx(0.9, abs=2e-3)
    # pre-training settings changed: pre-trains again
    clf.set_params(pretrain_epochs=3).fit(X, y, sensitive_features=A)
    assert [h["phase"] for h in clf.history_][:3] == ["pretrain"] * 3


def test_interrupt_in_pruning_phase_keeps_exact_sparsity(data, monkeypatch):
    X, y, A = data
    calls = {"n": 0}
    original = MaskedMLP.score_masks

    def flaky(self):
        calls["n"] += 1
        if calls["n"] == 25:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(MaskedMLP, "score_masks", flaky)
    clf = FairPruningClassifier(**FAST, sparsity=0.75, random_state=0)
    with pytest.warns(TrainingInterruptedWarning):
        clf.fit(X, y, sensitive_features=A)
    assert clf.interrupted_
    assert "finetune" not in {h["phase"] for h in clf.history_}
    n = sum(m.size for m in clf.masks_)
    assert clf.sparsity_ == pytest.approx(round(0.75 * n) / n, abs=1e-7)
    assert clf.score(X, y) > 0.6
    linears = [m for m in clf.model_ if isinstance(m, nn.Linear)]
    for lin, mask in zip(linears, clf.masks_, strict=True):
        assert not lin.weight.detach().numpy()[~mask].any()


def test_interrupt_in_pretraining_still_prunes(data, monkeypatch):
    X, y, A = data
    from skfairbilevel.nn import engine

    calls = {"n": 0}
    original = engine.descend

    def flaky(loss, opt, params=None):
        calls["n"] += 1
        if calls["n"] == 12:
            raise KeyboardInterrupt
        return original(loss, opt, params)

    monkeypatch.setattr("skfairbilevel.estimators.pruning.descend", flaky)
    clf = FairPruningClassifier(**FAST, sparsity=0.6, random_state=0)
    with pytest.warns(TrainingInterruptedWarning):
        clf.fit(X, y, sensitive_features=A)
    assert {h["phase"] for h in clf.history_} <= {"pretrain"}
    n = sum(m.size for m in clf.masks_)
    assert clf.sparsity_ == pytest.approx(round(0.6 * n) / n, abs=1e-7)
    assert clf.predict_proba(X).shape == (len(X), 2)


def test_degradation_fairness_matches_definition(data):
    X, y, A = data
    clf = FairPruningClassifier(**FAST, sparsity=0.9, pruning="magnitude", random_state=0).fit(
        X, y, sensitive_features=A
    )
    dense_ok = clf.predict_dense(X) == y
    pruned_ok = clf.predict(X) == y
    r = [dense_ok[A == a].mean() - pruned_ok[A == a].mean() for a in np.unique(A)]
    assert clf.degradation_fairness(X, y, sensitive_features=A) == pytest.approx(max(r) - min(r))
    assert clf.dense_score_ == pytest.approx(dense_ok.mean(), abs=1e-6)


def test_dense_score_is_computed_in_chunks_exactly(data, monkeypatch):
    # the dense accuracy is summed over chunks of rows (no full-batch forward pass at
    # 1e6 rows); with chunks of 7 rows and integer weights it must equal the weighted
    # accuracy of the dense model computed in one go
    import skfairbilevel.base as base_mod

    X, y, A = data
    w = np.arange(len(y)) % 3  # weight 0 drops a row, 2 repeats it
    monkeypatch.setattr(base_mod, "ACCURACY_BLOCK", 7)
    clf = FairPruningClassifier(**FAST, sparsity=0.5, pruning="magnitude", random_state=0).fit(
        X, y, sensitive_features=A, sample_weight=w
    )
    ok = clf.predict_dense(X) == y
    assert clf.dense_score_ == pytest.approx(np.average(ok, weights=w), abs=1e-9)


def test_multiclass_and_pickle(data):
    X, _, A = data
    y = (X[:, 0] > 0.5).astype(int) + (X[:, 1] > 0).astype(int)
    clf = FairPruningClassifier(**FAST, structured=True, sparsity=0.5, random_state=0)
    clf.fit(X, y, sensitive_features=A)
    P = clf.predict_proba(X)
    assert P.shape == (len(X), 3)
    assert np.allclose(P.sum(1), 1.0)
    assert clf.score(X, y) > 0.7
    clone = pickle.loads(pickle.dumps(clf))
    assert np.array_equal(clone.predict_proba(X), P)


def test_without_sensitive_features_magnitude_does_not_warn(data):
    X, y, _ = data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FairPruningClassifier(**FAST, pruning="magnitude", random_state=0).fit(X, y)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(sparsity=1.0), "sparsity.*1.0 would remove every weight"),
        (dict(sparsity=-0.1), "sparsity"),
        (dict(sparsity=float("nan")), "sparsity"),
        (dict(pruning="snip"), "pruning"),
        (dict(fairness_weight=-1), "fairness_weight"),
        (dict(fairness="statistical_parity"), "fairness.*accuracy_parity"),
        (dict(temperature=0), "temperature"),
        (dict(score_lr=0), "score_lr"),
        (dict(score_momentum=1.0), "score_momentum"),
        (dict(implicit_lr=-1e-4), "implicit_lr"),
        (dict(pretrain_epochs=-1), "pretrain_epochs"),
        (dict(finetune_epochs=1.5), "finetune_epochs"),
        (dict(structured=True, hidden_layer_sizes=()), "structured=True prunes hidden units"),
    ],
)
def test_bad_parameters(data, params, match):
    X, y, A = data
    with pytest.raises(ValueError, match=match):
        FairPruningClassifier(**params).fit(X, y, sensitive_features=A)
