"""Differentiable fairness penalties against hand-computed values."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from skfairbilevel.nn.losses import (
    cross_entropy_loss,
    demographic_parity_loss,
    equal_opportunity_loss,
    equalized_odds_loss,
    fairness_loss,
    group_means,
    repo_compat_dp_loss,
    vs_loss,
)

T = torch.tensor


def test_dp_two_groups_by_hand():
    p = T([0.2, 0.4, 0.6, 0.8])
    g = T([0, 0, 1, 1])
    # group means 0.3 and 0.7, overall 0.5 -> 0.2^2 + 0.2^2
    assert float(demographic_parity_loss(p, None, g, 2)) == pytest.approx(0.08)


def test_dp_three_groups_by_hand_penalises_every_group():
    p = T([0.1, 0.5, 0.9, 0.5])
    g = T([0, 1, 2, 1])
    # means .1 .5 .9; overall (weighted by counts 1,2,1) = 0.5
    assert float(demographic_parity_loss(p, None, g, 3)) == pytest.approx(0.16 + 0 + 0.16)
    # moving only group 2 changes the loss (the reference code only looked at group 0)
    p2 = T([0.1, 0.5, 0.5, 0.5])
    # means .1 .5 .5; overall .4 -> .09 + .01 + .01
    assert float(demographic_parity_loss(p2, None, g, 3)) == pytest.approx(0.11)


def test_dp_absent_group_and_single_group_batches():
    p = T([0.2, 0.4])
    assert float(demographic_parity_loss(p, None, T([1, 1]), 3)) == 0.0
    assert float(demographic_parity_loss(T([0.2, 0.6]), None, T([0, 2]), 3)) == pytest.approx(
        0.04 + 0.04
    )


def test_sample_weights_enter_group_means():
    p = T([0.0, 1.0, 0.5])
    g = T([0, 0, 1])
    w = T([3.0, 1.0, 1.0])
    means, totals = group_means(p, g, 2, w)
    assert means.tolist() == pytest.approx([0.25, 0.5])
    assert totals.tolist() == [4.0, 1.0]
    # overall = (4*.25 + .5)/5 = .3 -> (.05^2)+(.2^2)
    assert float(demographic_parity_loss(p, None, g, 2, w)) == pytest.approx(0.0025 + 0.04)


def test_equal_opportunity_and_equalized_odds_by_hand():
    p = T([0.9, 0.7, 0.2, 0.6, 0.4, 0.1])
    y = T([1, 1, 0, 1, 0, 0])
    g = T([0, 0, 0, 1, 1, 1])
    # positives: group0 {.9,.7} mean .8; group1 {.6} mean .6; overall .7333
    tpr = (0.8 - 2.2 / 3) ** 2 + (0.6 - 2.2 / 3) ** 2
    # negatives: group0 {.2}, group1 {.4,.1} mean .25; overall .7/3
    fpr = (0.2 - 0.7 / 3) ** 2 + (0.25 - 0.7 / 3) ** 2
    assert float(equal_opportunity_loss(p, y, g, 2)) == pytest.approx(tpr)
    assert float(equalized_odds_loss(p, y, g, 2)) == pytest.approx(tpr + fpr)
    assert float(fairness_loss("equalized_odds", p, y, g, 2)) == pytest.approx(tpr + fpr)


def test_multiclass_penalty_is_sum_over_classes():
    P = T([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.25, 0.25]])
    g = T([0, 0, 1, 1])
    total = sum(float(demographic_parity_loss(P[:, k], None, g, 2)) for k in range(3))
    assert float(demographic_parity_loss(P, None, g, 2)) == pytest.approx(total)
    y = T([0, 1, 2, 0])
    eo = float(equal_opportunity_loss(P, y, g, 2))
    by_hand = sum(float(equal_opportunity_loss(P[:, k], (y == k).float(), g, 2)) for k in range(3))
    assert eo == pytest.approx(by_hand)


def test_penalties_are_zero_when_groups_look_alike_and_have_gradients():
    p = T([0.3, 0.6, 0.3, 0.6], requires_grad=True)
    y = T([0, 1, 0, 1])
    g = T([0, 0, 1, 1])
    for name in ("demographic_parity", "equal_opportunity", "equalized_odds"):
        assert float(fairness_loss(name, p, y, g, 2).detach()) == pytest.approx(0.0, abs=1e-12)
    loss = demographic_parity_loss(T([0.2, 0.4, 0.6, 0.8], requires_grad=True), None, g, 2)
    loss.backward()


def test_unknown_fairness_name():
    with pytest.raises(ValueError, match="fairness='x' is not supported"):
        fairness_loss("x", T([0.5]), T([1]), T([0]), 1)


def test_prediction_losses_match_torch_and_numpy():
    logits = T([[0.3], [-1.2], [2.0]])
    y = T([1.0, 0.0, 1.0])
    bce = np.mean([np.log1p(np.exp(-0.3)), np.log1p(np.exp(-1.2)), np.log1p(np.exp(-2.0))])
    assert float(cross_entropy_loss(logits, y)) == pytest.approx(bce, rel=1e-6)
    w = T([1.0, 0.0, 3.0])
    bce_w = (np.log1p(np.exp(-0.3)) + 3 * np.log1p(np.exp(-2.0))) / 4
    assert float(cross_entropy_loss(logits, y, w)) == pytest.approx(bce_w, rel=1e-6)


def test_penalties_with_fewer_than_two_groups_are_exactly_zero_with_finite_gradients():
    from skfairbilevel.nn.losses import accuracy_parity_loss, equalized_odds_loss

    for n, g in ((0, []), (3, [1, 1, 1])):  # no rows; one group present of three
        p = torch.full((n,), 0.3, dtype=torch.float64, requires_grad=True)
        logits = torch.full((n, 1), 0.5, dtype=torch.float64, requires_grad=True)
        y = torch.ones(n, dtype=torch.float64)
        groups = torch.tensor(g, dtype=torch.long)
        for loss in (
            demographic_parity_loss(p, y, groups, 3),
            equalized_odds_loss(p, y, groups, 3),
            accuracy_parity_loss(logits, y, groups, 3),
        ):
            assert float(loss) == 0.0
            loss.backward()
        assert p.grad is None or torch.isfinite(p.grad).all()
        assert logits.grad is None or torch.isfinite(logits.grad).all()


def test_accuracy_parity_loss_skips_absent_groups():
    from skfairbilevel.nn.losses import accuracy_parity_loss

    logits = T([[2.0], [-1.0], [0.5]], dtype=torch.float64)
    y = T([1.0, 1.0, 0.0], dtype=torch.float64)
    got = accuracy_parity_loss(logits, y, T([0, 0, 2]), 3)  # group 1 has no rows
    s = torch.sigmoid
    acc0 = (s(logits[0, 0]) + s(logits[1, 0])) / 2  # margins 2 and -1 (y = 1)
    acc2 = s(-logits[2, 0])  # margin -0.5 (y = 0)
    assert float(got) == pytest.approx(abs(float(acc0 - acc2)), rel=1e-12)


@pytest.mark.parametrize("name", ["demographic_parity", "equal_opportunity", "equalized_odds"])
@pytest.mark.parametrize("n_groups, weighted", [(2, False), (3, True), (4, True)])
def test_closed_form_binary_penalties_match_autograd_and_finite_differences(
    name, n_groups, weighted
):
    from skfairbilevel.nn.losses import _deviation_penalty, fairness_loss_and_grad

    gen = torch.Generator().manual_seed(n_groups)
    n = 40
    p = torch.rand(n, generator=gen, dtype=torch.float64)
    y = (torch.rand(n, generator=gen) < 0.4).double()
    g = torch.randint(0, n_groups - 1, (n,), generator=gen)  # the last group is absent
    w = torch.rand(n, generator=gen, dtype=torch.float64) if weighted else None
    # reference: the autograd implementation of the same penalty (the multi-class path)
    masks = {
        "demographic_parity": [None],
        "equal_opportunity": [y > 0.5],
        "equalized_odds": [y > 0.5, y <= 0.5],
    }[name]
    pr = p.clone().requires_grad_(True)
    ref = sum(_deviation_penalty(pr, g, n_groups, w, mask=m) for m in masks)
    (ref_grad,) = torch.autograd.grad(ref, pr)
    loss, grad = fairness_loss_and_grad(name, p, y, g, n_groups, w)
    assert float(loss) == pytest.approx(float(ref), rel=1e-13, abs=1e-16)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-12, atol=1e-15)
    # the public losses (one autograd node with this gradient) against finite differences
    fn = {"demographic_parity": demographic_parity_loss}.get(name)
    if fn is None:
        from skfairbilevel.nn.losses import FAIRNESS_LOSSES

        fn = FAIRNESS_LOSSES[name]
    assert torch.autograd.gradcheck(
        lambda q: fn(q, y, g, n_groups, w), (p.clone().requires_grad_(True),)
    )
    with pytest.raises(RuntimeError):  # first order only: a second derivative refuses
        q = p.clone().requires_grad_(True)
        (d,) = torch.autograd.grad(fn(q, y, g, n_groups, w), q, create_graph=True)
        torch.autograd.grad(d.sum(), q)


def test_repo_compat_loss_by_hand():
    logits = torch.tensor([[0.0], [2.0], [-1.0], [1.0], [3.0]], dtype=torch.float64)
    g = torch.tensor([0, 1, 0, 2, 1])

    def sig(v):
        return 1.0 / (1.0 + math.exp(-v))

    o = [sig(sig(v)) for v in (0.0, 2.0, -1.0, 1.0, 3.0)]  # the double sigmoid
    d = (o[0] + o[2]) / 2 - sum(o) / 5  # group 0 against the overall mean only
    assert float(repo_compat_dp_loss(logits, g)) == pytest.approx(d * d / 2, abs=1e-12)
    # groups 1 and 2 do not enter except through the overall mean: swapping them is free
    g_swapped = torch.tensor([0, 2, 0, 1, 2])
    assert float(repo_compat_dp_loss(logits, g_swapped)) == pytest.approx(d * d / 2, abs=1e-12)
    # weighted: weight 3 on row 1
    w = torch.tensor([1.0, 3.0, 1.0, 1.0, 1.0], dtype=torch.float64)
    dw = (o[0] + o[2]) / 2 - (o[0] + 3 * o[1] + o[2] + o[3] + o[4]) / 7
    assert float(repo_compat_dp_loss(logits, g, w)) == pytest.approx(dw * dw / 2, abs=1e-12)
    # no row of group 0: zero, with a graph
    z = torch.zeros(3, 1, requires_grad=True)
    out = repo_compat_dp_loss(z, torch.tensor([1, 1, 2]))
    assert float(out) == 0.0 and out.requires_grad


def test_vs_loss_hand_computed():
    logits = torch.tensor([[1.0, 2.0], [0.5, -1.0]], dtype=torch.float64)
    y = torch.tensor([1, 0])
    scale = torch.tensor([0.5, 1.0], dtype=torch.float64)
    shift = torch.tensor([0.0, 0.1], dtype=torch.float64)
    omega = torch.tensor([2.0, 1.0], dtype=torch.float64)
    # row 0: z = (0.5, 2.1), CE = log(1 + e^{0.5-2.1}); row 1: z = (0.25, -0.9)
    ce0 = math.log1p(math.exp(0.5 - 2.1))
    ce1 = math.log1p(math.exp(-0.9 - 0.25))
    expected = (1.0 * ce0 + 2.0 * ce1) / 3.0  # weights omega[y] = (1, 2)
    got = vs_loss(logits, y, scale=scale, shift=shift, class_weight=omega)
    assert float(got) == pytest.approx(expected, rel=1e-12)
    # no adjustment: torch's class-weighted cross-entropy
    ref = F.cross_entropy(logits, y, weight=omega)
    assert float(vs_loss(logits, y, class_weight=omega)) == pytest.approx(float(ref), rel=1e-12)
    # batched over models, zero weights drop rows
    batch = torch.stack([logits, logits])
    w = torch.tensor([[1.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    out = vs_loss(batch, torch.stack([y, y]), weight=w)
    assert out.shape == (2,)
    assert float(out[1]) == pytest.approx(math.log1p(math.exp(1.0 - 2.0)), rel=1e-12)
