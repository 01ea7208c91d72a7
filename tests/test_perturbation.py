"""The inner solvers of robust training: input derivatives against autodiff and finite
differences, the closed-form worst case against the trust-region solver, the affine
loss gradient against autograd."""

import numpy as np
import pytest
import torch

from skfairbilevel.nn.modules import make_mlp
from skfairbilevel.nn.perturbation import (
    affine_logistic_loss_grad,
    gradient_ascent_perturbation,
    loss_input_derivatives,
    perturbation,
    random_perturbation,
    trust_region_perturbation,
    worst_case_affine,
)
from skfairbilevel.nn.trust_region import trust_region_step


def _t(a):
    return torch.as_tensor(np.asarray(a), dtype=torch.float64)


def _data(n=30, d=3, seed=0):
    rng = np.random.default_rng(seed)
    return _t(rng.normal(size=(n, d))), _t(rng.integers(0, 2, n))


def _model(hidden, activation="tanh", d=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return make_mlp(d, hidden, 1, activation=activation, generator=gen).double()


def test_affine_closed_form_derivatives_match_autodiff():
    x, y = _data()
    module = _model(())
    l1, g1, H1 = loss_input_derivatives(module, x, y, affine=True)
    l2, g2, H2 = loss_input_derivatives(module, x, y, affine=True, autodiff=True)
    for a, b in ((l1, l2), (g1, g2), (H1, H2)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("activation", ["tanh", "softplus"])
def test_mlp_input_derivatives_finite_differences(activation):
    x, y = _data(5)
    module = _model((6,), activation)
    with torch.no_grad():
        loss, g, H = loss_input_derivatives(module, x, y, affine=False)
        eps = 1e-5
        for j in range(3):
            e = torch.zeros(3, dtype=torch.float64)
            e[j] = eps
            lp, gp, _ = loss_input_derivatives(module, x + e, y, affine=False)
            lm, gm, _ = loss_input_derivatives(module, x - e, y, affine=False)
            np.testing.assert_allclose(
                ((lp - lm) / (2 * eps)).numpy(), g[:, j].numpy(), rtol=1e-6, atol=1e-9
            )
            np.testing.assert_allclose(
                ((gp - gm) / (2 * eps)).numpy(), H[:, :, j].numpy(), rtol=1e-5, atol=1e-8
            )


@pytest.mark.parametrize("r", [0.05, 0.3, 1.0])
def test_worst_case_affine_is_the_trust_region_solution_and_the_maximum(r):
    x, y = _data(40)
    module = _model(())
    delta = worst_case_affine(module, x, y, r)
    _, g, H = loss_input_derivatives(module, x, y, affine=True)
    p, _ = trust_region_step(-g, -H, r)
    np.testing.assert_allclose(p.numpy(), delta.numpy(), atol=1e-10)
    w = module[-1].weight[0].detach()
    z = x @ w + module[-1].bias.detach()[0]
    sgn = 2 * y - 1
    loss = torch.nn.functional.softplus(-sgn * z + r * w.norm())  # the closed-form max
    at = torch.nn.functional.binary_cross_entropy_with_logits(
        module(x + delta)[:, 0], y, reduction="none"
    )
    np.testing.assert_allclose(at.detach().numpy(), loss.detach().numpy(), rtol=1e-12)
    assert torch.equal(perturbation("trs", module, x, y, r, affine=True)[0], delta)
    assert torch.equal(perturbation("exact", module, x, y, r, affine=True)[0], delta)


def test_solvers_stay_in_the_ball_and_raise_the_loss():
    x, y = _data(32)
    module = _model((5,))
    r = 0.4

    def losses(delta):
        return torch.nn.functional.binary_cross_entropy_with_logits(
            module(x + delta)[:, 0], y, reduction="none"
        ).detach()

    clean = losses(torch.zeros_like(x))
    trs1, _ = trust_region_perturbation(module, x, y, r, steps=1)
    trs3, _ = trust_region_perturbation(module, x, y, r, steps=3)
    pgd, n_pgd = gradient_ascent_perturbation(module, x, y, r, affine=False)
    rnd = random_perturbation(x, r, torch.Generator().manual_seed(0))
    for delta in (trs1, trs3, pgd):
        assert float(delta.norm(dim=1).max()) <= r * (1 + 1e-9)
    np.testing.assert_allclose(rnd.norm(dim=1).numpy(), r, rtol=1e-12)
    assert float(losses(pgd).mean()) > float(clean.mean()) and n_pgd >= 1
    assert bool((losses(trs3) >= losses(trs1) - 1e-12).all())  # polishing never lowers
    assert bool((losses(trs1) > clean).all())
    assert perturbation("none", module, x, y, r, affine=False) == (None, 0)
    assert perturbation("pgd", module, x, y, 0.0, affine=False) == (None, 0)


@pytest.mark.parametrize("weighted", [False, True])
def test_affine_loss_gradient_matches_autograd(weighted):
    """The closed-form gradient of the (weighted) mean logistic loss in (w, b)."""
    rng = np.random.default_rng(5)
    n, d = 13, 4
    x = _t(rng.normal(size=(n, d)))
    y = _t(rng.integers(0, 2, n))
    sw = _t(rng.uniform(0.2, 3.0, n)) if weighted else None
    w = _t(rng.normal(size=d)).requires_grad_(True)
    b = _t(rng.normal(size=1)).requires_grad_(True)
    z = x @ w + b
    per_row = torch.nn.functional.binary_cross_entropy_with_logits(z, y, reduction="none")
    ref = per_row.mean() if sw is None else (sw * per_row).sum() / sw.sum()
    ref.backward()
    gw, gb = torch.empty(d, dtype=torch.float64), torch.empty(1, dtype=torch.float64)
    loss = affine_logistic_loss_grad(x, y, sw, w.detach(), b.detach(), gw, gb)
    assert abs(float(loss) - float(ref.detach())) < 1e-14
    np.testing.assert_allclose(gw.numpy(), w.grad.numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(gb.numpy(), b.grad.numpy(), rtol=1e-12, atol=1e-15)
