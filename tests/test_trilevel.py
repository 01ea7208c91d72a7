"""TriLevelProblem (FACIMS's levels): each step against its definition computed by hand
with autograd and torch's optimisers."""

import copy

import numpy as np
import pytest
import torch

from skfairbilevel.nn.engine import TensorData
from skfairbilevel.nn.gaussian import gaussian_forward
from skfairbilevel.nn.losses import vs_loss, weighted_mean
from skfairbilevel.nn.trilevel import TriLevelNet, TriLevelProblem, balanced_class_weights

from ._reference import divergence


def _data(n, seed):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 3, generator=gen)
    y = (X[:, 0] + 0.3 * torch.randn(n, generator=gen) > 0).long()
    g = torch.arange(n) % 2
    return TensorData(X, y, g, None, n_groups=2)


def _problem(**kw):
    net = TriLevelNet(3, (4,), 2, 2, 1, "elu", (0.01, 0.01), torch.Generator().manual_seed(0))
    train, val = _data(24, 1), _data(16, 2)
    settings = dict(
        n_mc=1,
        n_mc_hyper=0,
        eps_std=0.0,
        lambda_low=0.7,
        lambda_up=0.7,
        upper_weighting="paper",
        divergence="w2",
        prior_noise=0.0,
        output_sigmoid=False,
        group_batch_size=50,
        val_batch_size=None,
        validation_aggregation="pooled",
        neumann_terms=3,
        neumann_lr=0.1,
        sam_radii=None,
    )
    settings.update(kw)
    optimizers = (
        torch.optim.Adagrad(net.posts.parameter_list(), lr=0.1),
        torch.optim.Adagrad(net.prior.parameter_list(), lr=0.05),
        torch.optim.SGD([net.dy, net.ly], lr=0.01),
    )
    omega = balanced_class_weights(train, 2)
    return TriLevelProblem(
        net,
        train,
        val,
        optimizers=optimizers,
        generator=torch.Generator().manual_seed(5),
        class_weight=omega,
        upper_class_weight=omega,
        **settings,
    )


def test_balanced_class_weights_by_hand():
    data = TensorData(
        torch.zeros(4, 1),
        torch.tensor([0, 0, 0, 1]),
        torch.zeros(4).long(),
        torch.tensor([1.0, 1.0, 2.0, 2.0]),
        n_groups=1,
    )
    omega = balanced_class_weights(data, 3).numpy()
    want = np.array([6 / 4, 6 / 2, 0.0])  # N / n_c, an absent class 0
    np.testing.assert_allclose(omega, want / np.linalg.norm(want), rtol=1e-6)


def _lower_objective(prob, Q, P, rows):
    """sum over groups of VS loss + lambda_low * D(Q_a, P), written out."""
    x, y, w = rows
    out = gaussian_forward(x, Q, act=prob.net.prior.act, eps_std=0.0)
    scale, shift = torch.sigmoid(prob.net.dy).detach(), prob.net.ly.detach()
    vs = vs_loss(out, y, scale=scale, shift=shift, class_weight=prob.omega, weight=w)
    return (vs + prob.lambda_low * divergence("w2", Q, P)).sum()


def test_lower_step_is_adagrad_on_every_group_objective():
    prob = _problem()
    batch = prob.group_batch([0, 1])
    posts = [p.detach().clone().requires_grad_(True) for p in prob.posts]
    prior = [p.detach().clone() for p in prob.prior]
    opt = torch.optim.Adagrad(posts, lr=0.1)
    loss = _lower_objective(prob, posts, prior, batch[1])
    loss.backward()
    opt.step()
    prob.lower_step(batch)
    for got, want in zip(prob.posts, posts, strict=True):
        torch.testing.assert_close(got.detach(), want.detach(), rtol=1e-6, atol=1e-7)


def test_middle_ascent_moves_each_group_by_its_radius():
    radii = torch.tensor([0.01, 0.05])
    prob = _problem(sam_radii=radii)
    before = [p.detach().clone() for p in prob.posts]
    grads = [
        torch.randn(p.shape, generator=torch.Generator().manual_seed(i))
        for i, p in enumerate(prob.posts)
    ]
    prob.middle_ascent(grads)
    for a in range(2):
        step = torch.cat(
            [(p[a].detach() - b[a]).reshape(-1) for p, b in zip(prob.posts, before, strict=True)]
        )
        gnorm = torch.cat([g[a].reshape(-1) for g in grads]).norm()
        assert float(step.norm()) == pytest.approx(float(radii[a]), rel=1e-4)
        direction = torch.cat([g[a].reshape(-1) for g in grads]) / gnorm
        torch.testing.assert_close(step / step.norm(), direction, rtol=1e-4, atol=1e-6)


def test_upper_step_with_no_divergence_weight_descends_the_validation_loss():
    """lambda_up = 0 (paper weighting): the global distribution takes one Adagrad step on
    the balanced validation loss alone; the group distributions do not move."""
    prob = _problem(lambda_up=0.0)
    posts_before = [p.detach().clone() for p in prob.posts]
    prior = [p.detach().clone().requires_grad_(True) for p in prob.prior]
    opt = torch.optim.Adagrad(prior, lr=0.05)
    V = prob.val
    out = gaussian_forward(V.X, prior, act=prob.net.prior.act, eps_std=0.0)[0]
    per_row = -torch.log_softmax(out, -1).gather(1, V.y[:, None])[:, 0]
    weighted_mean(per_row, prob.omega_up[V.y]).backward()
    opt.step()
    batch = prob.group_batch([0, 1])
    record = prob.upper_step(prob.lower_graph(batch))
    assert set(record) == {"lower", "val_loss", "divergence"}
    for got, want in zip(prob.prior, prior, strict=True):
        torch.testing.assert_close(got.detach(), want.detach(), rtol=1e-6, atol=1e-7)
    for got, want in zip(prob.posts, posts_before, strict=True):
        assert torch.equal(got.detach(), want)


def test_prediction_samples_come_from_the_generator():
    a, b = _problem(), _problem()
    a.draw_prediction_samples()
    b.draw_prediction_samples()
    for za, zb in zip(a.net.zetas(), b.net.zetas(), strict=True):
        assert torch.equal(za, zb) and float(za.abs().sum()) > 0
    c = copy.deepcopy(a)
    c.gen.manual_seed(6)
    c.draw_prediction_samples()
    assert not torch.equal(c.net.zetas()[0], a.net.zetas()[0])
