"""GroupRiskProblem (BADR's bilevel problem): the implicit hypergradient against finite
differences, Newton against L-BFGS/CG, row chunks and float32 data, and the single-loop
directions against autograd."""

import numpy as np
import pytest
import torch
from torch import nn

from skfairbilevel.nn.engine import TensorData
from skfairbilevel.nn.group_risk import GroupRiskProblem, solve_spd
from skfairbilevel.nn.smooth_fairness import (
    CLASSIFIER_FAIRNESS,
    REGRESSOR_FAIRNESS,
    sample_pairs,
)


def torch_problem(kind, fairness, *, newton, mlp=False, n_classes=2, seed=0, device="cpu"):
    """A float64 GroupRiskProblem with three groups and non-uniform sample weights, on
    ``device`` (the same numbers on every device: drawn on the CPU, then moved)."""
    rng = np.random.default_rng(seed)
    n, d, S = 400, 3, 3
    X = torch.tensor(rng.normal(size=(n, d)))
    g = torch.tensor(rng.integers(0, S, n))
    X[:, 0] += 0.7 * g
    w = torch.tensor(rng.uniform(0.5, 2.0, n))
    if kind == "regressor":
        y = (
            X @ torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64)
            + 0.3 * g
            + torch.tensor(rng.normal(size=n))
        )
    elif n_classes == 2:
        y = ((X[:, 0] + X[:, 1] + torch.tensor(rng.normal(size=n))) > 0.5).long()
    else:
        y = torch.tensor(rng.integers(0, n_classes, n))
    K = 1 if kind == "regressor" or n_classes == 2 else n_classes
    torch.manual_seed(seed)  # only to make the test's MLP; the estimators never do this
    net = (
        nn.Sequential(nn.Linear(d, 5), nn.Tanh(), nn.Linear(5, K)) if mlp else nn.Linear(d, K)
    ).double()
    pairs = None
    if kind == "regressor" and fairness == "individual_fairness":
        gen = torch.Generator().manual_seed(0)
        i, j, c = sample_pairs(g, S, 5000, gen)
        pairs = (i, j, c.double())
    if pairs is not None:
        pairs = tuple(t.to(device) for t in pairs)
    return GroupRiskProblem(
        net.to(device),
        X.to(device),
        y.to(device),
        g.to(device),
        w.to(device),
        S,
        kind=kind,
        alpha=0.1,
        fairness=fairness,
        rho=5.0,
        pairs=pairs,
        lower_max_iter=500,
        newton=newton,
    )


def finite_difference(prob, lam, eps=1e-5):
    out = []
    for a in range(lam.shape[0]):
        e = torch.zeros_like(lam)
        e[a] = eps
        prob.solve(lam + e)
        plus = prob.fair_value()
        prob.solve(lam - e)
        minus = prob.fair_value()
        out.append((plus - minus) / (2 * eps))
    prob.solve(lam)
    return np.array(out)


LAM = torch.tensor([0.3, 0.5, 0.2], dtype=torch.float64)


# --------------------------------------------------------------------- hypergradient
@pytest.mark.parametrize(
    "kind,fairness",
    [("classifier", f) for f in CLASSIFIER_FAIRNESS]
    + [("regressor", f) for f in REGRESSOR_FAIRNESS],
)
@pytest.mark.parametrize("newton", [True, False], ids=["newton-solve", "lbfgs-cg"])
def test_hypergradient_matches_central_finite_differences(kind, fairness, newton):
    prob = torch_problem(kind, fairness, newton=newton)
    prob.solve(LAM)
    _, h, _ = prob.hypergradient(LAM)
    fd = finite_difference(prob, LAM)
    assert np.linalg.norm(h.numpy() - fd) <= 1e-5 * np.linalg.norm(fd)


@pytest.mark.parametrize("fairness", ["demographic_parity", "equalized_odds", "group_variance"])
def test_hypergradient_multiclass_linear(fairness):
    prob = torch_problem("classifier", fairness, newton=True, n_classes=3)
    prob.solve(LAM)
    _, h, _ = prob.hypergradient(LAM)
    fd = finite_difference(prob, LAM)
    assert np.linalg.norm(h.numpy() - fd) <= 1e-5 * np.linalg.norm(fd)
    # the Newton and the CG/HVP hypergradients agree
    prob2 = torch_problem("classifier", fairness, newton=False, n_classes=3)
    prob2.solve(LAM)
    _, h2, _ = prob2.hypergradient(LAM)
    np.testing.assert_allclose(h2.numpy(), h.numpy(), rtol=1e-6, atol=1e-12)


ROW_CHUNK_CASES = [
    ("classifier", "demographic_parity", 2),
    ("classifier", "equalized_odds", 3),
    ("regressor", "individual_fairness", 2),
]


@pytest.mark.parametrize("kind,fairness,n_classes", ROW_CHUNK_CASES)
@pytest.mark.parametrize("newton", [True, False], ids=["newton-solve", "lbfgs-cg"])
def test_row_chunks_and_float32_data_change_nothing(kind, fairness, n_classes, newton):
    """The linear model works over row chunks of X, which may stay float32 under the
    float64 model: small chunks (57 rows) give the one-chunk solution, hypergradient and
    metric, and float32 X gives those of its exact float64 upcast."""
    check_row_chunks(kind, fairness, n_classes, newton, "cpu")


def check_row_chunks(kind, fairness, n_classes, newton, device):
    """The body of the test above on ``device``; returns the one-chunk problem's
    ``(value, hypergradient, parameters)`` on the CPU."""
    assert torch_problem(kind, fairness, newton=newton, device=device).chunk >= 400  # one chunk
    ref = torch_problem(kind, fairness, newton=newton, n_classes=n_classes, device=device)
    x32 = ref.X.float()
    ref.X = x32.double()  # the values float32 data can represent
    ref.solve(LAM.to(device))
    value, h, _ = ref.hypergradient(LAM.to(device))
    small = torch_problem(kind, fairness, newton=newton, n_classes=n_classes, device=device)
    small.X = x32
    small.chunk = 57  # 400 rows: 7 full chunks and a partial one
    small.solve(LAM.to(device))
    value2, h2, _ = small.hypergradient(LAM.to(device))
    assert abs(value2 - value) <= 1e-12 * abs(value)
    np.testing.assert_allclose(h2.cpu().numpy(), h.cpu().numpy(), rtol=1e-9, atol=1e-13)
    theta = [p.detach().cpu() for p in ref.params]
    theta2 = [p.detach().cpu() for p in small.params]
    for a, b in zip(theta, theta2, strict=True):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-9, atol=1e-12)
    return value, h.cpu(), theta


@pytest.mark.parametrize(
    "kind,fairness",
    [
        ("classifier", "demographic_parity"),
        ("classifier", "individual_fairness"),
        ("regressor", "group_variance"),
    ],
)
def test_hypergradient_mlp(kind, fairness):
    # the MLP path adds a 1e-6 damping to the Hessian: agreement to 1e-4
    prob = torch_problem(kind, fairness, newton=False, mlp=True)
    prob.solve(LAM)
    _, h, _ = prob.hypergradient(LAM)
    fd = finite_difference(prob, LAM)
    assert np.linalg.norm(h.numpy() - fd) <= 1e-4 * np.linalg.norm(fd)


def test_solve_spd_regularises_a_singular_matrix():
    H = torch.tensor([[2.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    x = solve_spd(H, torch.tensor([4.0, 0.0], dtype=torch.float64))
    np.testing.assert_allclose(x.numpy(), [2.0, 0.0], atol=1e-8)
    A = torch.tensor([[4.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
    b = torch.tensor([1.0, 2.0], dtype=torch.float64)
    np.testing.assert_allclose(solve_spd(A, b).numpy(), np.linalg.solve(A, b), rtol=1e-12)


@pytest.mark.parametrize("batch", [False, True])
def test_single_loop_directions_match_autograd(batch):
    """g = grad lower, H v by a double backward, and J^T v = d(g . v)/d lambda: checked
    against autograd on an explicit lower objective (and H against a dense Hessian)."""
    prob = torch_problem("classifier", "demographic_parity", newton=False)
    prob.solve(LAM)
    gen = torch.Generator().manual_seed(3)
    v = torch.randn(prob.n_params, generator=gen, dtype=torch.float64)
    b = None
    if batch:
        data = TensorData(prob.X, prob.y, prob.g, prob.w, n_groups=3)
        b = data.batch(torch.arange(0, 400, 3))
    lower, fair, g, fair_grad, hv, jtv = prob.single_loop_directions(LAM, v, b)
    theta = torch.cat([p.detach().reshape(-1) for p in prob.params]).requires_grad_(True)
    K = prob.net.out_features

    def objective(theta, lam):
        W, bias = theta[:-K].view(K, -1), theta[-K:]
        x, y, gg, w = (prob.X, prob.y, prob.g, prob.w) if b is None else (b.x, b.y, b.g, b.w)
        out = x @ W.T + bias
        per_row = nn.functional.binary_cross_entropy_with_logits(
            out[:, 0], y.double(), reduction="none"
        )
        tot = torch.zeros(3, dtype=torch.float64).index_add(0, gg, w)
        means = torch.zeros(3, dtype=torch.float64).index_add(0, gg, w * per_row) / tot
        return (lam * (means + 0.05 * (W**2).sum())).sum()

    lam = LAM.clone().requires_grad_(True)
    want_g = torch.autograd.grad(objective(theta, lam), theta, create_graph=True)[0]
    np.testing.assert_allclose(g.numpy(), want_g.detach().numpy(), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(float(lower), float(objective(theta.detach(), LAM)), rtol=1e-12)
    H = torch.autograd.functional.hessian(lambda t: objective(t, LAM), theta.detach())
    np.testing.assert_allclose(hv.numpy(), (H @ v).numpy(), rtol=1e-9, atol=1e-12)
    want_jtv = torch.autograd.grad(want_g @ v, lam)[0]
    np.testing.assert_allclose(jtv.numpy(), want_jtv.numpy(), rtol=1e-9, atol=1e-12)
    assert float(fair) == pytest.approx(prob.fair_value(), rel=1e-12)
    assert fair_grad.shape == g.shape
