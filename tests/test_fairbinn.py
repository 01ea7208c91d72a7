"""FairBiNNClassifier: architecture, the two players' updates, losses, determinism."""

import copy
import math

import numpy as np
import pytest
import torch

from skfairbilevel import FairBiNNClassifier, FairMLPClassifier
from skfairbilevel._pareto import pareto_front, pareto_mask
from skfairbilevel.datasets import make_biased_classification
from skfairbilevel.exceptions import NoSensitiveFeaturesWarning
from skfairbilevel.metrics import demographic_parity_difference
from skfairbilevel.nn.engine import Batch, make_generators
from skfairbilevel.nn.leader_follower import ClosedFormFollower, LeaderFollowerNet
from skfairbilevel.nn.losses import (
    cross_entropy_loss,
    fairness_loss,
    proba_from_logits,
    repo_compat_dp_loss,
)

ORDERS = ("leader_first", "follower_first", "simultaneous")
FAST = dict(hidden_layer_sizes=(8, 8), max_epochs=3, batch_size=32, random_state=0)
#: the paper's Algorithm 1 (the default update is the reference code's)
ALG1 = dict(update_order="leader_first", leader_includes_fairness_grad=False)


@pytest.fixture(scope="module")
def biased():
    X, y, A = make_biased_classification(400, 5, bias=2.0, random_state=0)
    return np.asarray(X, dtype=np.float32), np.asarray(y), np.asarray(A)


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# ---------------------------------------------------------------------- architecture
@pytest.mark.parametrize(
    "hidden, position, layers, widths",
    [
        ((6, 5), None, 1, [(7, 6), (6, 5), (5, 5), (5, 1)]),  # before the output layer
        ((6, 5), 1, 2, [(7, 6), (6, 6), (6, 6), (6, 5), (5, 1)]),  # after the first hidden
        ((6, 5), 0, 1, [(7, 7), (7, 6), (6, 5), (5, 1)]),  # on the inputs
        ((), None, 1, [(7, 7), (7, 1)]),  # logistic + block
    ],
)
def test_fairness_block_position_and_widths(biased, hidden, position, layers, widths):
    X, y, A = biased
    X = np.column_stack([X, X[:, :2]])  # 7 features
    est = FairBiNNClassifier(
        hidden, fairness_position=position, fairness_layers=layers, max_epochs=1, random_state=0
    ).fit(X, y, sensitive_features=A)
    net = est.module_
    assert isinstance(net, LeaderFollowerNet)
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == widths
    block = [m for m in net.fairness_block if isinstance(m, torch.nn.Linear)]
    assert len(block) == layers
    assert all(m.in_features == m.out_features for m in block)  # width-preserving
    theta_f = {id(p) for p in net.follower_parameters()}
    theta_a = {id(p) for p in net.leader_parameters()}
    assert theta_f == {id(p) for m in block for p in m.parameters()}
    assert not theta_f & theta_a
    assert theta_f | theta_a == {id(p) for p in net.parameters()}


def test_lagrangian_has_the_same_parameters(biased):
    X, y, A = biased
    bil = FairBiNNClassifier(**FAST).fit(X, y, sensitive_features=A)
    lag = FairBiNNClassifier(mode="lagrangian", **FAST).fit(X, y, sensitive_features=A)
    shapes = [p.shape for p in bil.module_.parameters()]
    assert shapes == [p.shape for p in lag.module_.parameters()]
    assert (
        sum(p.numel() for p in bil.module_.parameters())
        == 8 * 5 + 8 + 8 * 8 + 8 + 8 * 8 + 8 + 8 + 1
    )


def test_sigmoid_applied_once(biased):
    X, y, A = biased
    est = FairBiNNClassifier(**{**FAST, "lr": 1e-2, "max_epochs": 20}).fit(
        X, y, sensitive_features=A
    )
    with torch.no_grad():
        logits = est.module_(torch.as_tensor(X))[:, 0].double()
    np.testing.assert_allclose(est.predict_proba(X)[:, 1], torch.sigmoid(logits).numpy(), rtol=1e-6)
    assert est.predict_proba(X)[:, 1].min() < 0.3  # not squashed into [0.5, 0.73]


# ---------------------------------------------------------------------- losses by hand
def test_demographic_parity_loss_two_groups_by_hand():
    p = torch.tensor([0.2, 0.6, 0.9, 0.4], dtype=torch.float64)
    g = torch.tensor([0, 0, 1, 1])
    # means 0.4 and 0.65, overall 0.525
    expected = (0.4 - 0.525) ** 2 + (0.65 - 0.525) ** 2
    assert float(fairness_loss("demographic_parity", p, None, g, 2)) == pytest.approx(
        expected, abs=1e-12
    )


def test_fairness_losses_three_groups_by_hand():
    p = torch.tensor([0.1, 0.5, 0.9, 0.3, 0.7, 0.6, 0.2], dtype=torch.float64)
    y = torch.tensor([1, 0, 1, 1, 0, 1, 0])
    g = torch.tensor([0, 0, 1, 1, 1, 2, 2])
    w = torch.tensor([1.0, 2.0, 1.0, 1.0, 3.0, 1.0, 2.0], dtype=torch.float64)
    # unweighted DP: group means 0.3, 19/30, 0.4; overall 3.3 / 7
    m, o = [0.3, 1.9 / 3, 0.4], 3.3 / 7
    dp = sum((mc - o) ** 2 for mc in m)
    assert float(fairness_loss("demographic_parity", p, y, g, 3)) == pytest.approx(dp, abs=1e-12)
    # weighted DP: group means (0.1+1.0)/3, (0.9+0.3+2.1)/5, (0.6+0.4)/3; overall 5.4/11
    mw, ow = [1.1 / 3, 3.3 / 5, 1.0 / 3], 5.4 / 11
    dpw = sum((mc - ow) ** 2 for mc in mw)
    assert float(fairness_loss("demographic_parity", p, y, g, 3, w)) == pytest.approx(
        dpw, abs=1e-12
    )
    # equal opportunity: positives 0.1 | 0.9, 0.3 | 0.6 -> means 0.1, 0.6, 0.6; overall 1.9/4
    tpr, otp = [0.1, 0.6, 0.6], 1.9 / 4
    eop = sum((mc - otp) ** 2 for mc in tpr)
    assert float(fairness_loss("equal_opportunity", p, y, g, 3)) == pytest.approx(eop, abs=1e-12)
    # equalized odds adds the negatives: 0.5 | 0.7 | 0.2; overall 1.4/3
    fpr, ofp = [0.5, 0.7, 0.2], 1.4 / 3
    eod = eop + sum((mc - ofp) ** 2 for mc in fpr)
    assert float(fairness_loss("equalized_odds", p, y, g, 3)) == pytest.approx(eod, abs=1e-12)


@pytest.mark.parametrize("fairness", ["demographic_parity", "equalized_odds", "equal_opportunity"])
def test_estimator_loss_is_shared_loss_on_sigmoid_of_logits(biased, fairness):
    X, y, A = biased
    est = FairBiNNClassifier(fairness=fairness, **FAST).fit(X, y, sensitive_features=A)
    logits = torch.tensor([[-1.0], [0.5], [2.0], [0.0], [1.0], [-0.3]])
    b = Batch(None, torch.tensor([1, 0, 1, 1, 0, 0]), torch.tensor([0, 0, 1, 1, 1, 0]), None, None)
    got = est._fairness_fn()(logits, b)
    want = fairness_loss(fairness, torch.sigmoid(logits[:, 0]), b.y, b.g, 2)
    assert float(got) == pytest.approx(float(want), abs=1e-7)


def test_repo_compat_loss_used_in_fit(biased):
    X, y, A = biased
    est = FairBiNNClassifier(repo_compat_dp_loss=True, **FAST).fit(X, y, sensitive_features=A)
    logits = torch.tensor([[0.3], [-2.0], [1.0]])
    b = Batch(None, torch.tensor([1, 0, 1]), torch.tensor([0, 1, 1]), None, None)
    assert float(est._fairness_fn()(logits, b)) == pytest.approx(
        float(repo_compat_dp_loss(logits, b.g)), abs=1e-8
    )
    default = FairBiNNClassifier(**FAST).fit(X, y, sensitive_features=A)
    assert not np.array_equal(est.predict_proba(X), default.predict_proba(X))


# ---------------------------------------------------------------------- the two players
class _Spy(FairBiNNClassifier):
    """Records every optimiser step (who stepped, the gradients it used, the parameters
    before the step, which parameters changed) and every mini-batch."""

    def _make_optimizer(self, params, lr):
        opt = super()._make_optimizer(params, lr)
        inner = opt.step
        events = self.__dict__.setdefault("events_", [])
        ids = {id(p) for p in params}
        owner = (
            "leader"
            if ids == {id(p) for p in self.module_.leader_parameters()}
            else "follower"
            if ids == {id(p) for p in self.module_.follower_parameters()}
            else "all"
        )

        def step(*args, **kwargs):
            net = self.module_
            before = [p.detach().clone() for p in net.parameters()]
            grads = [p.grad.detach().clone() for p in params]
            out = inner(*args, **kwargs)
            changed = [not torch.equal(b, p) for b, p in zip(before, net.parameters(), strict=True)]
            events.append((owner, changed, grads, before))
            return out

        opt.step = step
        return opt

    def _bilevel_step(self, *args, **kwargs):
        inner = super()._bilevel_step(*args, **kwargs)
        batches = self.__dict__.setdefault("batches_", [])

        def step(b):
            batches.append(b)
            return inner(b)

        return step


def _theta_masks(net):
    f = {id(p) for p in net.follower_parameters()}
    is_f = [id(p) in f for p in net.parameters()]
    return is_f, [not v for v in is_f]


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("carry", [False, True])
def test_leader_changes_only_theta_a_and_follower_only_theta_f(biased, order, carry):
    X, y, A = biased
    est = _Spy(
        update_order=order,
        leader_includes_fairness_grad=carry,
        eta=50.0,
        fairness_lr=1e-3,
        hidden_layer_sizes=(8, 8),
        max_epochs=1,
        batch_size=64,
        random_state=0,
    ).fit(X, y, sensitive_features=A)
    is_f, is_a = _theta_masks(est.module_)
    owners = [e[0] for e in est.events_]
    assert owners.count("leader") == owners.count("follower") == math.ceil(len(X) / 64)
    for owner, changed, _, _ in est.events_:
        if owner == "leader":
            assert all(c for c, a in zip(changed, is_a, strict=True) if a)  # every theta_a moved
            assert not any(c for c, f in zip(changed, is_f, strict=True) if f)  # no theta_f moved
        else:
            assert owner == "follower"
            assert all(c for c, f in zip(changed, is_f, strict=True) if f)
            assert not any(c for c, a in zip(changed, is_a, strict=True) if a)
    first = {"leader_first": "leader", "follower_first": "follower", "simultaneous": "follower"}[
        order
    ]
    assert owners[0] == first and owners[1] != first


def _grads_at(net, state, loss_fn, params_of):
    """Gradients of ``loss_fn(copy)`` w.r.t. ``params_of(copy)`` for a copy of ``net``
    holding the parameter values ``state`` (a list in ``net.parameters()`` order)."""
    net = copy.deepcopy(net)
    with torch.no_grad():
        for p, v in zip(net.parameters(), state, strict=True):
            p.copy_(v)
    return [g.detach() for g in torch.autograd.grad(loss_fn(net), params_of(net))]


@pytest.mark.parametrize("order, carry", [(o, c) for o in ORDERS for c in (False, True)])
def test_first_step_gradients_are_the_algorithms(biased, order, carry):
    X, y, A = biased
    eta = 30.0
    est = _Spy(
        update_order=order,
        leader_includes_fairness_grad=carry,
        eta=eta,
        fairness_lr=1e-2,
        hidden_layer_sizes=(8, 8),
        max_epochs=1,
        batch_size=64,
        random_state=0,
    ).fit(X, y, sensitive_features=A)
    b, net = est.batches_[0], est.module_
    first, second = est.events_[0], est.events_[1]
    lead, foll = (first, second) if first[0] == "leader" else (second, first)

    def ce(m):
        return cross_entropy_loss(m(b.x), b.y)

    # "leader_first": the follower steps on the batch of the next leader step (sharing
    # the forward pass of the layers before the block), at the leader's new parameters
    bf = est.batches_[1] if order == "leader_first" else b

    def dp(m, b=b):
        return eta * fairness_loss("demographic_parity", proba_from_logits(m(b.x)), b.y, b.g, 2)

    # where each player evaluated its loss: the parameters when it stepped, except that
    # in "simultaneous" both read the parameters from before the first step
    at_f = first[3] if order == "simultaneous" else foll[3]
    at_a = first[3] if order == "simultaneous" else lead[3]
    want_f = _grads_at(net, at_f, lambda m: dp(m, bf), LeaderFollowerNet.follower_parameters)
    if order == "leader_first":  # and not on the leader's batch (the test can tell)
        same = _grads_at(net, at_f, dp, LeaderFollowerNet.follower_parameters)
        assert any(
            not torch.allclose(g, w, rtol=1e-3, atol=1e-5)
            for g, w in zip(foll[2], same, strict=True)
        )
    if order == "follower_first" and carry:  # reference code: DP gradient from before F
        want_a = [
            c + d
            for c, d in zip(
                _grads_at(net, at_a, ce, LeaderFollowerNet.leader_parameters),
                _grads_at(net, foll[3], dp, LeaderFollowerNet.leader_parameters),
                strict=True,
            )
        ]
    else:
        want_a = _grads_at(
            net,
            at_a,
            (lambda m: ce(m) + dp(m)) if carry else ce,
            LeaderFollowerNet.leader_parameters,
        )
    for got, want in zip(foll[2], want_f, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
    for got, want in zip(lead[2], want_a, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
    # and the leader's gradient is not the other algorithms' (the test can tell)
    if not carry:
        wrong = _grads_at(net, at_a, lambda m: ce(m) + dp(m), LeaderFollowerNet.leader_parameters)
        assert any(
            not torch.allclose(g, w, rtol=1e-3, atol=1e-5)
            for g, w in zip(lead[2], wrong, strict=True)
        )


def test_leader_first_follower_sees_the_new_leader(biased):
    X, y, A = biased
    est = _Spy(
        eta=30.0,
        fairness_lr=1e-2,
        hidden_layer_sizes=(8, 8),
        max_epochs=1,
        batch_size=64,
        random_state=0,
        **ALG1,
    ).fit(X, y, sensitive_features=A)
    lead, foll = est.events_[0], est.events_[1]
    is_f, is_a = _theta_masks(est.module_)
    for before_l, before_f, a in zip(lead[3], foll[3], is_a, strict=True):
        assert torch.equal(before_l, before_f) != a  # theta_a moved in between


# ---------------------------------------------------------------------- eta = 0
def test_lagrangian_eta_zero_is_plain_mlp_training(biased):
    X, y, A = biased
    common = dict(max_epochs=4, batch_size=32, lr=1e-2, random_state=3)
    lag = FairBiNNClassifier((8, 6), eta=0.0, mode="lagrangian", **common).fit(
        X, y, sensitive_features=A
    )
    # the same widths with the fairness block as one more hidden layer: same initial
    # weights, same batches; only Adam's fused kernel rounds differently (1 ulp)
    mlp = FairMLPClassifier((8, 6, 6), **common).fit(X, y, sensitive_features=A)
    np.testing.assert_allclose(lag.predict_proba(X), mlp.predict_proba(X), atol=2e-5)
    other = FairMLPClassifier((8, 6, 6), **{**common, "random_state": 4}).fit(
        X, y, sensitive_features=A
    )
    assert np.abs(other.predict_proba(X) - mlp.predict_proba(X)).max() > 1e-3


@pytest.mark.parametrize("order", ORDERS)
def test_bilevel_eta_zero_is_plain_training_of_the_leader(biased, order):
    X, y, A = biased
    common = dict(hidden_layer_sizes=(8,), max_epochs=2, batch_size=64, random_state=0)
    zero = _Spy(eta=0.0, update_order=order, **common).fit(X, y, sensitive_features=A)
    assert {e[0] for e in zero.events_} == {"leader"}  # the follower never steps
    # plain training by hand: the initial network built from the same seed the way fit
    # builds it, Adam on theta_a over the same mini-batches, cross-entropy only
    builder = FairBiNNClassifier(**common)
    builder._rng, _ = make_generators(0)
    net = builder._build_module(X.shape[1], 1)
    init_f = [p.detach().clone() for p in net.follower_parameters()]
    theta_a = net.leader_parameters()
    opt = builder._make_optimizer(theta_a, builder.lr)
    for b in zero.batches_:
        opt.zero_grad()
        cross_entropy_loss(net(b.x), b.y).backward()
        opt.step()
    for p, q in zip(zero.module_.parameters(), net.parameters(), strict=True):
        assert torch.equal(p, q)
    for p, q in zip(zero.module_.follower_parameters(), init_f, strict=True):
        assert torch.equal(p, q)  # the fairness block keeps its initial weights
    # and the same as fitting without sensitive features (the fairness-unaware form)
    with pytest.warns(NoSensitiveFeaturesWarning):
        unaware = FairBiNNClassifier(**common).fit(X, y)
    assert not unaware.fairness_aware_
    np.testing.assert_allclose(zero.predict_proba(X), unaware.predict_proba(X), atol=0.05)


# ---------------------------------------------------------------------- determinism
@pytest.mark.parametrize(
    "params",
    [dict(update_order=o) for o in ORDERS]
    + [
        dict(mode="lagrangian"),
        dict(update_order="follower_first", leader_includes_fairness_grad=True),
    ],
)
def test_same_seed_same_probabilities(biased, params):
    X, y, A = biased
    kw = dict(FAST, fairness_lr=1e-3, **params)
    p1 = FairBiNNClassifier(**kw).fit(X, y, sensitive_features=A).predict_proba(X)
    p2 = FairBiNNClassifier(**kw).fit(X, y, sensitive_features=A).predict_proba(X)
    np.testing.assert_array_equal(p1, p2)
    p3 = (
        FairBiNNClassifier(**{**kw, "random_state": 1})
        .fit(X, y, sensitive_features=A)
        .predict_proba(X)
    )
    assert np.abs(p1 - p3).max() > 1e-4


def test_orders_and_carry_give_different_models(biased):
    X, y, A = biased
    kw = dict(FAST, eta=50.0, fairness_lr=1e-2)
    probas = [
        FairBiNNClassifier(update_order=o, leader_includes_fairness_grad=c, **kw)
        .fit(X, y, sensitive_features=A)
        .predict_proba(X)[:, 1]
        for o in ORDERS
        for c in (False, True)
    ]
    for i in range(len(probas)):
        for j in range(i):
            assert np.abs(probas[i] - probas[j]).max() > 1e-5


def test_integer_weights_equal_repeated_rows_with_groups(biased):
    X, y, A = biased
    X, y, A = X[:150], y[:150], A[:150]
    w = np.random.default_rng(0).integers(0, 3, len(y))
    rep = np.repeat(np.arange(len(y)), w)
    for params in (dict(), dict(repo_compat_dp_loss=True), dict(mode="lagrangian")):
        kw = dict(FAST, eta=20.0, fairness_lr=1e-3, **params)
        a = FairBiNNClassifier(**kw).fit(X, y, sensitive_features=A, sample_weight=w)
        b = FairBiNNClassifier(**kw).fit(X[rep], y[rep], sensitive_features=A[rep])
        np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-6)


# ---------------------------------------------------------------------- behaviour
def test_fairness_lowers_demographic_parity(biased):
    X, y, A = biased
    common = dict(hidden_layer_sizes=(16,), max_epochs=30, batch_size=50, lr=1e-2, random_state=0)
    plain = FairBiNNClassifier(eta=0.0, **common).fit(X, y, sensitive_features=A)
    # the follower's lr acts as a switch (see the results): 1.8e-3 is in the working
    # range for the seeds 0, 1, 2 and 4 (DP 0.03-0.05 against 0.29-0.30 without the
    # follower; seed 3 needs a larger rate)
    fair = FairBiNNClassifier(eta=100.0, fairness_lr=1.8e-3, **ALG1, **common).fit(
        X, y, sensitive_features=A
    )
    dp_plain = demographic_parity_difference(y, plain.predict(X), sensitive_features=A)
    dp_fair = demographic_parity_difference(y, fair.predict(X), sensitive_features=A)
    assert dp_plain > 0.25 and plain.score(X, y) > 0.8
    assert dp_fair < 0.25 * dp_plain
    assert fair.score(X, y) > max(np.mean(y), 1 - np.mean(y)) + 0.05  # not a constant


def test_adam_follower_ignores_eta_unless_the_leader_carries_it(biased):
    # Adam's step is invariant to the scale of its loss (up to eps), and the follower's
    # only loss is eta * Fair: under Algorithm 1 eta hardly matters, fairness_lr does.
    X, y, A = biased
    kw = dict(FAST, fairness_lr=1e-3, **ALG1)

    def proba(**params):
        return (
            FairBiNNClassifier(**{**kw, **params})
            .fit(X, y, sensitive_features=A)
            .predict_proba(X)[:, 1]
        )

    assert np.abs(proba(eta=10.0) - proba(eta=1000.0)).max() < 1e-3
    assert np.abs(proba(eta=10.0, fairness_lr=1e-2) - proba(eta=10.0)).max() > 1e-2
    carried = dict(update_order="follower_first", leader_includes_fairness_grad=True)
    assert np.abs(proba(eta=10.0, **carried) - proba(eta=1000.0, **carried)).max() > 1e-2
    # plain SGD steps scale with eta
    sgd = dict(optimizer="sgd", lr=0.3, fairness_lr=0.1)
    assert np.abs(proba(eta=1.0, **sgd) - proba(eta=100.0, **sgd)).max() > 1e-2


def test_multiclass_targets(biased):
    X, _, A = biased
    y = np.digitize(X[:, 0], [-0.5, 0.5])
    est = FairBiNNClassifier(
        fairness="equalized_odds",
        eta=10.0,
        fairness_lr=1e-3,
        hidden_layer_sizes=(8,),
        max_epochs=20,
        lr=1e-2,
        random_state=0,
    ).fit(X, y, sensitive_features=A)
    P = est.predict_proba(X)
    assert P.shape == (len(y), 3)
    np.testing.assert_allclose(P.sum(1), 1.0, rtol=1e-6)
    assert est.score(X, y) > 0.8
    with pytest.raises(ValueError, match="repo_compat_dp_loss=True is defined for binary"):
        FairBiNNClassifier(repo_compat_dp_loss=True, **FAST).fit(X, y, sensitive_features=A)


def test_history_records(biased):
    X, y, A = biased
    est = FairBiNNClassifier(eta=20.0, **FAST).fit(X, y, sensitive_features=A)
    assert len(est.history_) == est.n_iter_ == 3
    for rec in est.history_:
        assert {"loss", "ce", "fairness", "seconds"} <= set(rec)
        assert rec["loss"] == pytest.approx(rec["ce"] + 20.0 * rec["fairness"], rel=1e-5)
        assert "val_accuracy" not in rec


def test_record_validation_and_pareto_epochs(biased):
    X, y, A = biased
    kw = dict(
        FAST,
        max_epochs=6,
        eta=100.0,
        fairness_lr=1e-3,
        record_validation=True,
        validation_fraction=0.25,
    )
    est = FairBiNNClassifier(**kw).fit(X, y, sensitive_features=A)
    assert est.n_iter_ == 6  # no early stopping
    keys = {"val_loss", "val_accuracy", "val_dp", "val_soft_dp", "val_eo"}
    assert all(keys <= set(rec) for rec in est.history_)
    front = est.pareto_epochs()
    assert front and all(r in est.history_ for r in front)
    for r in est.history_:  # nothing on the front is dominated
        for f in front:
            assert not (
                r["val_dp"] <= f["val_dp"]
                and r["val_accuracy"] >= f["val_accuracy"]
                and (r["val_dp"], r["val_accuracy"]) != (f["val_dp"], f["val_accuracy"])
            )
    # refitting with max_epochs = e + 1 gives back that epoch's model exactly
    e = front[0]["epoch"]
    again = FairBiNNClassifier(**{**kw, "max_epochs": e + 1}).fit(X, y, sensitive_features=A)
    assert again.history_[-1]["val_accuracy"] == front[0]["val_accuracy"]
    assert again.history_[-1]["val_soft_dp"] == front[0]["val_soft_dp"]
    # without validation metrics the helper says what to do
    plain = FairBiNNClassifier(**FAST).fit(X, y, sensitive_features=A)
    with pytest.raises(ValueError, match="record_validation=True"):
        plain.pareto_epochs()


def test_learning_rate_schedule(biased):
    X, y, A = biased
    kw = dict(FAST, eta=20.0, fairness_lr=1e-3, lr_step_size=1)
    # decay to ~0 after the first epoch: later epochs change (almost) nothing
    frozen = [
        FairBiNNClassifier(**{**kw, "max_epochs": m}, lr_gamma=1e-9, fairness_lr_gamma=1e-9).fit(
            X, y, sensitive_features=A
        )
        for m in (1, 3)
    ]
    np.testing.assert_allclose(frozen[0].predict_proba(X), frozen[1].predict_proba(X), atol=1e-5)
    free = [
        FairBiNNClassifier(**{**kw, "max_epochs": m}).fit(X, y, sensitive_features=A)
        for m in (1, 3)
    ]
    assert np.abs(free[0].predict_proba(X) - free[1].predict_proba(X)).max() > 1e-3


def test_sgd_optimizer(biased):
    X, y, A = biased
    est = FairBiNNClassifier(
        optimizer="sgd",
        lr=0.3,
        fairness_lr=0.01,
        eta=1.0,
        hidden_layer_sizes=(8,),
        max_epochs=30,
        random_state=0,
    ).fit(X, y, sensitive_features=A)
    assert est.score(X, y) > 0.75


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "param, value",
    [
        ("hidden_layer_sizes", (8, -1)),
        ("fairness_layers", 0),
        ("fairness_layers", 1.5),
        ("fairness_position", -1),
        ("fairness_position", 3),
        ("activation", "swish"),
        ("fairness", None),
        ("fairness", "dp"),
        ("eta", -1.0),
        ("eta", float("inf")),
        ("eta", float("nan")),
        ("mode", "reg"),
        ("update_order", "leader"),
        ("leader_includes_fairness_grad", "yes"),
        ("repo_compat_dp_loss", 1),
        ("lr", 0.0),
        ("lr", float("inf")),
        ("fairness_lr", -1e-5),
        ("optimizer", "rmsprop"),
        ("weight_decay", -0.1),
        ("lr_gamma", 0.0),
        ("fairness_lr_gamma", 1.5),
        ("lr_step_size", 0),
        ("record_validation", None),
    ],
)
def test_bad_hyper_parameters_name_themselves(biased, param, value):
    X, y, A = biased
    kw = {"hidden_layer_sizes": (8, 8), "max_epochs": 1, param: value}
    est = FairBiNNClassifier(**kw)
    with pytest.raises(ValueError, match=param):
        est.fit(X, y, sensitive_features=A)


def test_repo_compat_needs_demographic_parity(biased):
    X, y, A = biased
    with pytest.raises(ValueError, match="fairness='demographic_parity'"):
        FairBiNNClassifier(repo_compat_dp_loss=True, fairness="equalized_odds", max_epochs=1).fit(
            X, y, sensitive_features=A
        )


def test_unavailable_device_is_a_clear_error(biased):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available")
    X, y, A = biased
    with pytest.raises(ValueError, match="device"):
        FairBiNNClassifier(device="cuda", max_epochs=1).fit(X, y, sensitive_features=A)


# ---------------------------------------------------------------------- pareto helper
def test_pareto_front_by_hand():
    pts = np.array(
        [[0.02, 0.83], [0.01, 0.80], [0.03, 0.82], [0.18, 0.85], [0.02, 0.83], [0.05, 0.83]]
    )
    front, idx = pareto_front(pts, return_indices=True)
    assert idx.tolist() == [1, 0, 3]  # duplicate (4) and dominated (2, 5) dropped
    np.testing.assert_array_equal(front, pts[[1, 0, 3]])
    # both maximised: (0.18, 0.85) dominates everything
    assert pareto_front(pts, maximize=True).tolist() == [[0.18, 0.85]]
    # both minimised
    assert pareto_front(pts, maximize=(False, False)).tolist() == [[0.01, 0.80]]
    # x maximised, y minimised: sorted from the largest x
    assert pareto_front(pts, maximize=(True, False)).tolist() == [
        [0.18, 0.85],
        [0.05, 0.83],
        [0.03, 0.82],
        [0.01, 0.8],
    ]


def test_pareto_front_matches_brute_force():
    rng = np.random.default_rng(0)
    pts = np.round(rng.random((200, 2)), 2)  # many ties
    idx = pareto_front(pts, return_indices=True)[1]
    dominated = [
        any((q[0] <= p[0]) and (q[1] >= p[1]) and (q != p).any() for q in pts) for p in pts
    ]
    first = [not any((pts[j] == pts[i]).all() for j in range(i)) for i in range(len(pts))]
    want = [i for i in range(len(pts)) if not dominated[i] and first[i]]
    assert sorted(idx.tolist()) == want
    assert np.all(np.diff(pts[idx, 0]) > 0) and np.all(np.diff(pts[idx, 1]) > 0)
    np.testing.assert_array_equal(np.flatnonzero(pareto_mask(pts[:, 0], pts[:, 1])), want)


def test_pareto_front_records_and_frames():
    import pandas as pd

    hist = [
        {"epoch": 0, "val_dp": 0.10, "val_accuracy": 0.80},
        {"epoch": 1, "val_dp": 0.05, "val_accuracy": 0.82},
        {"epoch": 2, "val_dp": 0.05, "val_accuracy": 0.82},
        {"epoch": 3, "val_dp": 0.20, "val_accuracy": 0.85},
    ]
    front = pareto_front(hist, x="val_dp", y="val_accuracy")
    assert [r["epoch"] for r in front] == [1, 3]  # ties go to the earliest epoch
    assert front[0] is hist[1]
    frame = pd.DataFrame(hist, index=list("abcd"))
    got = pareto_front(frame, x="val_dp", y="val_accuracy")
    assert list(got.index) == ["b", "d"]
    assert pareto_front([], x="a", y="b") == []
    with pytest.raises(ValueError, match="no key 'val_eo'"):
        pareto_front(hist, x="val_eo", y="val_accuracy")
    with pytest.raises(ValueError, match="need the keys"):
        pareto_front(hist)
    with pytest.raises(ValueError, match="not a column"):
        pareto_front(frame, x="dp", y="val_accuracy")
    with pytest.raises(ValueError, match="NaN"):
        pareto_front([[0.1, np.nan], [0.2, 0.3]])
    with pytest.raises(ValueError, match="maximize"):
        pareto_front([[0.1, 0.2]], maximize="yes")
    with pytest.raises(ValueError, match="column index"):
        pareto_front([[0.1, 0.2]], x=2)
    with pytest.raises(TypeError, match="points must be"):
        pareto_front(3.0)


# ---------------------------------------------------------------------- closed-form follower
def test_closed_form_follower_applies_only_to_its_shape(biased):
    X, y, A = biased
    y3 = np.arange(len(y)) % 3

    def build(**kw):
        est = FairBiNNClassifier(**{**FAST, "max_epochs": 1, **kw})
        est.fit(X, y, sensitive_features=A)
        return ClosedFormFollower.build(
            est.module_, est.fairness, est.n_groups_, est.repo_compat_dp_loss
        )

    assert build() is not None
    assert build(fairness_position=1) is None  # a hidden layer after the block
    assert build(activation="gelu") is None  # no closed-form derivative here
    assert build(repo_compat_dp_loss=True) is None  # the reference's loss: autograd
    est = FairBiNNClassifier(**{**FAST, "max_epochs": 1}).fit(X, y3, sensitive_features=A)
    assert ClosedFormFollower.build(est.module_, est.fairness, est.n_groups_) is None


@pytest.mark.parametrize("order", ["leader_first", "follower_first"])
def test_closed_form_and_autograd_followers_train_the_same_model(biased, order, monkeypatch):
    X, y, A = biased
    kw = dict(FAST, eta=50.0, fairness_lr=1e-2, update_order=order)
    kw["leader_includes_fairness_grad"] = False  # the carried gradient needs autograd
    fast = FairBiNNClassifier(**kw).fit(X, y, sensitive_features=A)
    with monkeypatch.context() as m:  # no closed form: the follower uses autograd
        m.setattr(ClosedFormFollower, "build", classmethod(lambda cls, *a, **k: None))
        slow = FairBiNNClassifier(**kw).fit(X, y, sensitive_features=A)
    np.testing.assert_allclose(fast.predict_proba(X), slow.predict_proba(X), atol=2e-5)


def test_algorithm1_fit_uses_the_closed_form_follower(biased, monkeypatch):
    X, y, A = biased
    calls = []
    original = ClosedFormFollower.__call__

    def counting(self, h, b, eta):
        calls.append(len(h))
        return original(self, h, b, eta)

    monkeypatch.setattr(ClosedFormFollower, "__call__", counting)
    est = FairBiNNClassifier(**{**FAST, **ALG1, "max_epochs": 2}).fit(X, y, sensitive_features=A)
    assert len(calls) == 2 * math.ceil(len(y) / FAST["batch_size"])  # one per leader step
    calls.clear()
    est.set_params(activation="gelu").fit(X, y, sensitive_features=A)  # autograd instead
    assert calls == []
