"""The smooth fairness metrics of BADR's upper level, against hand computations."""

import math

import numpy as np
import pytest
import torch

from skfairbilevel.nn.smooth_fairness import (
    individual_fairness,
    log_mean_exp,
    sample_pairs,
    smooth_fairness,
    smooth_max,
    smooth_range,
)


def test_log_mean_exp_and_smooth_range_by_hand():
    v = torch.tensor([0.2, 0.5, 0.1, 9.0], dtype=torch.float64)
    present = torch.tensor([True, True, True, False])
    rho = 3.0
    want = math.log(np.mean(np.exp(rho * np.array([0.2, 0.5, 0.1])))) / rho
    assert float(log_mean_exp(v, present, rho)) == pytest.approx(want, rel=1e-14)
    # two groups: (2 / rho) log cosh(rho d / 2)
    r = torch.tensor([0.7, 0.3], dtype=torch.float64)
    both = torch.tensor([True, True])
    want = 2 / rho * math.log(math.cosh(rho * 0.4 / 2))
    assert float(smooth_range(r, both, rho)) == pytest.approx(want, rel=1e-14)
    # one group present: exactly 0; large rho: |d| - 2 log(2) / rho
    assert float(smooth_range(r, torch.tensor([True, False]), rho)) == 0.0
    assert float(smooth_range(r, both, 1e6)) == pytest.approx(
        0.4 - 2 * math.log(2) / 1e6, abs=1e-12
    )
    assert float(smooth_max(torch.tensor([1.0, 3.0], dtype=torch.float64), 1e6)) == pytest.approx(
        3.0, abs=1e-5
    )


def test_demographic_parity_and_group_variance_by_hand():
    out = torch.tensor([[0.0], [1.0], [-1.0], [2.0]], dtype=torch.float64)
    y = torch.tensor([0, 1, 0, 1])
    g = torch.tensor([0, 0, 1, 1])
    p = 1 / (1 + np.exp(-np.array([0.0, 1.0, -1.0, 2.0])))
    d = p[:2].mean() - p[2:].mean()
    got = smooth_fairness("demographic_parity", out, y, g, None, 2, kind="classifier", rho=4.0)
    assert float(got) == pytest.approx(2 / 4.0 * math.log(math.cosh(4.0 * d / 2)), rel=1e-12)
    loss = np.logaddexp(0, [0.0, 1.0, -1.0, 2.0]) - np.array([0, 1, 0, 1]) * np.array(
        [0.0, 1.0, -1.0, 2.0]
    )
    got = smooth_fairness("group_variance", out, y, g, None, 2, kind="classifier", rho=4.0)
    assert float(got) == pytest.approx(np.var([loss[:2].mean(), loss[2:].mean()]), rel=1e-12)
    with pytest.raises(ValueError, match="unknown fairness"):
        smooth_fairness("accuracy", out, y, g, None, 2, kind="classifier", rho=4.0)


def test_sample_pairs_all_or_unbiased_sample():
    g = torch.tensor([0, 0, 1, 1, 1, 2])
    i, j, c = sample_pairs(g, 3, 100, torch.Generator().manual_seed(0))
    assert len(i) == 2 * 3 + 2 * 1 + 3 * 1 and torch.all(c == 1)
    assert torch.all(g[i] < g[j])
    i, j, c = sample_pairs(g, 3, 4, torch.Generator().manual_seed(0))
    assert torch.all(g[i] != g[j])
    # coefficients rescale each group pair's sample to its n_a n_b pairs
    for a, b in ((0, 1), (0, 2), (1, 2)):
        mask = (g[i] == a) & (g[j] == b)
        assert float(c[mask].sum()) == pytest.approx(int((g == a).sum() * (g == b).sum()))


def test_individual_fairness_weighted_and_sampled_pairs():
    rng = np.random.default_rng(0)
    n, S = 60, 3
    g = torch.tensor(rng.integers(0, S, n))
    s = torch.tensor(rng.normal(size=n))
    y = torch.tensor(rng.normal(size=n))
    w = torch.tensor(rng.uniform(0.5, 2, n))
    gn, sn, yn, wn = g.numpy(), s.numpy(), y.numpy(), w.numpy()
    i, j = np.nonzero(gn[:, None] < gn[None, :])
    total = (wn[i] * wn[j] * np.exp(-np.abs(yn[i] - yn[j])) * (sn[i] - sn[j]) ** 2).sum()
    W = np.bincount(gn, weights=wn)
    expected = total / (W.sum() ** 2 - (W**2).sum())
    gen = torch.Generator().manual_seed(0)
    all_pairs = sample_pairs(g, S, 10**6, gen)
    got = individual_fairness(
        s, y, g, w, S, kind="regressor", pairs=(*all_pairs[:2], all_pairs[2].double())
    )
    np.testing.assert_allclose(float(got), expected, rtol=1e-12)
    # a sample of pairs is unbiased: the mean over many samples is close
    est = []
    for _ in range(200):
        i2, j2, c2 = sample_pairs(g, S, 200, gen)
        est.append(
            float(individual_fairness(s, y, g, w, S, kind="regressor", pairs=(i2, j2, c2.double())))
        )
    assert abs(np.mean(est) - expected) < 4 * np.std(est) / np.sqrt(len(est))
    # the classifier's O(n) formula equals brute force with weights (binary y)
    yb = (y > 0).long()
    ybn = yb.numpy()
    total = (wn[i] * wn[j] * np.exp(-np.abs(ybn[i] - ybn[j])) * (sn[i] - sn[j]) ** 2).sum()
    got = individual_fairness(s, yb, g, w, S, kind="classifier")
    np.testing.assert_allclose(float(got), total / (W.sum() ** 2 - (W**2).sum()), rtol=1e-12)
