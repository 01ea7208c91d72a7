"""The batched trust-region solver against closed forms, brute force and the KKT
conditions."""

import math
import zlib

import numpy as np
import pytest
import torch

from skfairbilevel.nn.trust_region import trust_region_step, trust_region_step_eig


def _model_value(g, H, p):
    return g @ p + 0.5 * p @ H @ p


def _t(a):
    return torch.as_tensor(np.asarray(a), dtype=torch.float64)


def test_trs_interior_newton_step():
    H = _t([[[2.0, 0.5], [0.5, 1.0]]])
    g = _t([[0.1, -0.2]])
    p, _ = trust_region_step(g, H, 1.0)
    expected = -np.linalg.solve(H[0].numpy(), g[0].numpy())
    assert np.linalg.norm(expected) < 1.0
    np.testing.assert_allclose(p[0].numpy(), expected, atol=1e-14)


def test_trs_hard_case():
    # g has no component along the eigenvector of lambda_min = -1, and the regular part
    # -(H + I)^+ g = (0, -0.05, -0.1/3) is shorter than r: the rest goes along e_1
    H = _t([np.diag([-1.0, 1.0, 2.0])])
    g = _t([[0.0, 0.1, 0.1]])
    p, _ = trust_region_step(g, H, 1.0)
    rest = np.array([-0.05, -0.1 / 3])
    np.testing.assert_allclose(p[0, 1:].numpy(), rest, atol=1e-12)
    assert abs(abs(float(p[0, 0])) - math.sqrt(1 - rest @ rest)) < 1e-12
    # g = 0, H = 0: every point is optimal; the step still has a valid length
    p0, _ = trust_region_step(
        torch.zeros(1, 3, dtype=torch.float64), torch.zeros(1, 3, 3, dtype=torch.float64), 0.5
    )
    assert torch.isfinite(p0).all() and float(p0.norm()) <= 0.5 + 1e-12


@pytest.mark.parametrize("kind", ["indefinite", "nsd", "psd_far", "pd_near", "rank1"])
def test_trs_global_minimum_against_brute_force(kind):
    """In 2-D the model's minimum over the disc is found by a dense polar grid."""
    rng = np.random.default_rng(zlib.crc32(kind.encode()))  # stable across processes
    n, r = 20, 0.7
    gs, Hs = [], []
    for _ in range(n):
        Q, _ = np.linalg.qr(rng.normal(size=(2, 2)))
        lam = {
            "indefinite": [-rng.uniform(0.1, 3), rng.uniform(0.1, 3)],
            "nsd": [-rng.uniform(0.1, 3), -rng.uniform(0, 3)],
            "psd_far": [rng.uniform(0.01, 0.2), rng.uniform(0.5, 3)],
            "pd_near": [rng.uniform(2, 4), rng.uniform(2, 4)],
            "rank1": [-rng.uniform(0.1, 3), 0.0],
        }[kind]
        Hs.append(Q @ np.diag(lam) @ Q.T)
        scale = 0.1 if kind == "pd_near" else 2.0
        gs.append(scale * rng.normal(size=2))
    g, H = _t(gs), _t(Hs)
    p, _ = trust_region_step(g, H, r)
    p = p.numpy()
    rad = np.linspace(0, r, 201)[:, None]
    ang = np.linspace(0, 2 * np.pi, 1501)[None, :]
    grid = np.stack([(rad * np.cos(ang)).ravel(), (rad * np.sin(ang)).ravel()], 1)
    for i in range(n):
        assert np.linalg.norm(p[i]) <= r * (1 + 1e-12)
        vals = grid @ gs[i] + 0.5 * np.einsum("ij,jk,ik->i", grid, Hs[i], grid)
        assert _model_value(gs[i], Hs[i], p[i]) <= vals.min() + 1e-12
        newton_inside = (
            kind in ("pd_near", "psd_far") and np.linalg.norm(np.linalg.solve(Hs[i], gs[i])) <= r
        )
        if newton_inside:  # convex with the Newton step in the disc: that step
            np.testing.assert_allclose(p[i], -np.linalg.solve(Hs[i], gs[i]), atol=1e-10)
        else:  # not convex, or the Newton step outside: on the boundary
            assert abs(np.linalg.norm(p[i]) - r) < 1e-10


def test_trs_kkt_conditions_random_high_dim():
    """(H + a I) p = -g with a >= max(0, -lambda_min) and a (||p|| - r) = 0."""
    rng = np.random.default_rng(3)
    n, d, r = 64, 6, 0.4
    A = rng.normal(size=(n, d, d))
    H = _t((A + A.transpose(0, 2, 1)) / 2)
    g = _t(rng.normal(size=(n, d)))
    p, n_iter = trust_region_step(g, H, r)
    assert n_iter < 60
    lam_min = torch.linalg.eigvalsh(H)[:, 0]
    # multiplier from the stationarity condition, along p
    a = -((H @ p.unsqueeze(-1)).squeeze(-1) + g).mul(p).sum(1) / p.pow(2).sum(1)
    resid = (H @ p.unsqueeze(-1)).squeeze(-1) + g + a[:, None] * p
    assert float(resid.abs().max()) < 1e-9
    assert bool((a >= (-lam_min).clamp_min(0) - 1e-9).all())
    np.testing.assert_allclose(p.norm(dim=1).numpy(), r, rtol=1e-12)  # all indefinite


def test_trs_eig_matches_full():
    rng = np.random.default_rng(4)
    lam = np.sort(rng.normal(size=(10, 3)), axis=1)
    gh = rng.normal(size=(10, 3))
    p_hat, _ = trust_region_step_eig(_t(gh), _t(lam), 0.3)
    p, _ = trust_region_step(_t(gh), _t(np.stack([np.diag(v) for v in lam])), 0.3)
    np.testing.assert_allclose(p_hat.numpy(), p.numpy(), atol=1e-12)
