"""LeaderFollowerNet and the closed-form follower gradient, on networks built by hand."""

import numpy as np
import pytest
import torch
from torch import nn

from skfairbilevel.nn.engine import Batch
from skfairbilevel.nn.leader_follower import (
    ClosedFormFollower,
    LeaderFollowerNet,
    activation_backward,
)
from skfairbilevel.nn.losses import fairness_loss, proba_from_logits
from skfairbilevel.nn.modules import make_activation, make_mlp


def _net(activation, layers, n_out=1, position=2, d=4):
    gen = torch.Generator().manual_seed(0)
    widths = (6, 5)[:position] + (5,) * layers + (6, 5)[position:]
    seq = make_mlp(d, widths, n_out, activation=activation, generator=gen).double()
    return LeaderFollowerNet(
        seq[: 2 * position],
        seq[2 * position : 2 * (position + layers)],
        seq[2 * (position + layers) :],
    )


def _batch(n=40, d=4, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return Batch(
        x=torch.randn(n, d, generator=gen, dtype=torch.float64),
        y=(torch.rand(n, generator=gen) > 0.5).double(),
        g=torch.randint(0, 3, (n,), generator=gen),
        w=torch.rand(n, generator=gen, dtype=torch.float64),
        idx=torch.arange(n),
    )


def test_parameters_split_between_the_players():
    net = _net("relu", 2)
    theta_a = {id(p) for p in net.leader_parameters()}
    theta_f = {id(p) for p in net.follower_parameters()}
    assert not theta_a & theta_f and theta_a | theta_f == {id(p) for p in net.parameters()}
    assert len(theta_f) == 4  # two Linear layers of the block
    x = _batch().x
    torch.testing.assert_close(net(x), net.head(net.prefix(x)))


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "elu", "tanh", "sigmoid", "identity"])
def test_activation_backward_is_the_derivative(name):
    act = make_activation(name)
    z = torch.linspace(-2, 2, 41, dtype=torch.float64).requires_grad_(True)
    up = torch.rand(41, dtype=torch.float64)
    want = torch.autograd.grad(act(z), z, grad_outputs=up)[0]
    got = activation_backward(act, act(z).detach(), up)
    torch.testing.assert_close(got, want)
    assert activation_backward(nn.GELU(), z, up) is None


@pytest.mark.parametrize("fairness", ["demographic_parity", "equal_opportunity", "equalized_odds"])
@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "elu", "tanh", "sigmoid", "identity"])
@pytest.mark.parametrize("layers", [1, 2])
def test_closed_form_gradient_equals_autograd(fairness, activation, layers):
    net, b = _net(activation, layers), _batch()
    h = net.prefix(b.x).detach()
    fair = fairness_loss(fairness, proba_from_logits(net.head(h)), b.y, b.g, 3, b.w)
    want = torch.autograd.grad(5.0 * fair, net.follower_parameters())
    follower = ClosedFormFollower.build(net, fairness, 3)
    assert float(follower(h, b, 5.0)) == pytest.approx(float(fair.detach()), rel=1e-12)
    for p, w in zip(net.follower_parameters(), want, strict=True):
        torch.testing.assert_close(p.grad, w, rtol=1e-10, atol=1e-14)


def test_closed_form_applies_only_to_its_shape():
    assert ClosedFormFollower.build(_net("relu", 1), "demographic_parity", 3) is not None
    assert (
        ClosedFormFollower.build(_net("relu", 1, position=1), "demographic_parity", 3) is None
    )  # a hidden layer after the block
    assert ClosedFormFollower.build(_net("gelu", 1), "demographic_parity", 3) is None
    assert (
        ClosedFormFollower.build(_net("relu", 1, n_out=3), "demographic_parity", 3) is None
    )  # softmax output
    assert (
        ClosedFormFollower.build(_net("relu", 1), "demographic_parity", 3, repo_compat=True) is None
    )
    assert np.isfinite(
        float(
            ClosedFormFollower.build(_net("relu", 1), "equalized_odds", 3)(
                _net("relu", 1).prefix(_batch().x), _batch(), 1.0
            )
        )
    )
