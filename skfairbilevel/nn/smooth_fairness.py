"""Differentiable group-fairness metrics of model outputs (BADR's upper objectives).

Smooth surrogates of fairness gaps, for an upper level that must be differentiated:
rate gaps use the smooth range ``LME_rho(r) + LME_rho(-r)`` of the group rates (with
``LME_rho(v) = log(mean_a exp(rho v_a)) / rho``, the log-mean-exp), which tends to
``max - min`` as ``rho -> inf`` and is 0 for equal rates. :func:`smooth_fairness`
dispatches by name:

* ``"demographic_parity"``, ``"equal_opportunity"``, ``"equalized_odds"`` - smooth
  ranges of the group mean probabilities (of all rows, of the positives, and a smooth
  max of the positives' and negatives' ranges); one-vs-rest with a smooth max over
  classes for multi-class outputs;
* ``"group_variance"`` - the variance over groups of the group mean losses;
* ``"disparate_mistreatment"`` - ``1/2 sum_a cov(1[g = a], s)^2`` of the score ``s``;
* ``"individual_fairness"`` - Berk et al.'s between-group unfairness over pairs.
"""

import math

import torch
import torch.nn.functional as F

from .draws import randint
from .losses import group_means

__all__ = [
    "CLASSIFIER_FAIRNESS",
    "REGRESSOR_FAIRNESS",
    "log_mean_exp",
    "smooth_range",
    "smooth_max",
    "row_loss",
    "individual_fairness",
    "smooth_fairness",
    "sample_pairs",
]

CLASSIFIER_FAIRNESS = (
    "demographic_parity",
    "equal_opportunity",
    "equalized_odds",
    "group_variance",
    "disparate_mistreatment",
    "individual_fairness",
)
REGRESSOR_FAIRNESS = (
    "demographic_parity",
    "group_variance",
    "disparate_mistreatment",
    "individual_fairness",
)


def log_mean_exp(values, present, rho):
    """Log-mean-exp smooth maximum over the first dimension, present rows only:
    ``(1/rho) log(mean_a exp(rho v_a))``; between ``max - log(m)/rho`` and ``max``."""
    mask = present.reshape((-1,) + (1,) * (values.dim() - 1))
    z = torch.where(mask, rho * values, torch.full_like(values, -math.inf))
    m = present.sum().clamp_min(1).to(values.dtype)
    return (torch.logsumexp(z, dim=0) - torch.log(m)) / rho


def smooth_range(rates, present, rho):
    """Smooth ``max_a r_a - min_a r_a`` over the present groups (0 for one group).

    For two groups it is ``(2/rho) log cosh(rho (r_0 - r_1) / 2)``: a smooth absolute
    difference, ~ ``rho d^2 / 4`` near 0 and ``|d| - 2 log(2) / rho`` for large ``|d|``.
    """
    if int(present.sum()) < 2:
        return rates.sum() * 0.0
    return log_mean_exp(rates, present, rho) + log_mean_exp(-rates, present, rho)


def smooth_max(values, rho):
    """Log-mean-exp over a 1-D tensor (all entries present)."""
    return log_mean_exp(
        values, torch.ones(values.shape[0], dtype=torch.bool, device=values.device), rho
    )


def row_loss(out, y, kind):
    """Per-row loss of the model outputs: logistic, softmax cross-entropy or squared."""
    if kind == "regressor":
        return (out[:, 0] - y) ** 2
    if out.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(out[:, 0], y.to(out.dtype), reduction="none")
    return F.cross_entropy(out, y, reduction="none")


def individual_fairness(s, y, g, w, n_groups, *, kind, pairs=None):
    """Between-group individual unfairness (Berk et al. 2017, as in the BADR toolbox).

    The penalty is::

        (1/Z) sum_{a<b} sum_{i in a, j in b} w_i w_j exp(-|y_i - y_j|) (s_i - s_j)^2,
        Z = sum_{a != b} W_a W_b      (ordered pairs: the toolbox's normaliser).

    Classifier (binary y): exact in O(n) from per-(group, class) sums of w, w s, w s^2.
    Regressor: over the pairs ``(i, j, coef)`` (all pairs or a sample; ``coef`` rescales
    a sample to the full sum).
    """
    dt = s.dtype
    wv = torch.ones_like(s) if w is None else w.to(dt)
    totals = torch.zeros(n_groups, dtype=dt, device=s.device).index_add(0, g, wv)
    Z = totals.sum() ** 2 - (totals**2).sum()
    if float(Z) <= 0:
        return s.sum() * 0.0
    s = s - (wv * s).sum() / wv.sum()  # shift-invariant; centring limits cancellation
    if kind == "classifier":
        C = 2
        onehot = F.one_hot(y.long(), C).to(dt) * wv[:, None]
        zero = torch.zeros(n_groups, C, dtype=dt, device=s.device)
        N = zero.index_add(0, g, onehot)
        S1 = zero.index_add(0, g, onehot * s[:, None])
        S2 = zero.index_add(0, g, onehot * (s**2)[:, None])
        c = torch.arange(C, dtype=dt, device=s.device)
        K = torch.exp(-(c[:, None] - c[None, :]).abs())
        P = S2 @ K @ N.T + N @ K @ S2.T - 2.0 * (S1 @ K @ S1.T)
        total = 0.5 * (P.sum() - P.diagonal().sum())
        return total / Z
    i, j, coef = pairs
    k = torch.exp(-(y[i] - y[j]).abs())
    total = (coef * wv[i] * wv[j] * k * (s[i] - s[j]) ** 2).sum()
    return total / Z


def smooth_fairness(name, out, y, g, w, n_groups, *, kind, rho, pairs=None):
    """The differentiable upper-level metric of model outputs ``out`` (n, K).

    Classifiers use probabilities for the rate-based metrics and the logit for
    disparate mistreatment and individual fairness; regressors use the prediction.
    """
    multi = out.shape[1] > 1
    if kind == "classifier":
        proba = torch.softmax(out, dim=1) if multi else torch.sigmoid(out[:, 0])
    else:
        proba = out[:, 0]
    if name == "demographic_parity":
        rates, totals = group_means(proba, g, n_groups, w)
        val = smooth_range(rates, totals > 0, rho)
        return smooth_max(val, rho) if multi else val
    if name in ("equal_opportunity", "equalized_odds"):
        sides = [True] if name == "equal_opportunity" else [True, False]
        if not multi:
            parts = []
            for positive in sides:
                mask = (y > 0) if positive else (y <= 0)
                rates, totals = group_means(proba, g, n_groups, w, mask=mask)
                parts.append(smooth_range(rates, totals > 0, rho))
            return parts[0] if len(parts) == 1 else smooth_max(torch.stack(parts), rho)
        parts = []
        for k in range(out.shape[1]):
            for positive in sides:
                mask = (y == k) if positive else (y != k)
                rates, totals = group_means(proba[:, k], g, n_groups, w, mask=mask)
                parts.append(smooth_range(rates, totals > 0, rho))
        return smooth_max(torch.stack(parts), rho)
    if name == "group_variance":
        losses, totals = group_means(row_loss(out, y, kind), g, n_groups, w)
        present = totals > 0
        vals = losses[present]
        return ((vals - vals.mean()) ** 2).mean()
    s = out[:, 0]
    if name == "disparate_mistreatment":
        means, totals = group_means(s, g, n_groups, w)
        pi = totals / totals.sum()
        overall = (pi * means).sum()
        return 0.5 * (pi**2 * (means - overall) ** 2).sum()
    if name == "individual_fairness":
        return individual_fairness(s, y, g, w, n_groups, kind=kind, pairs=pairs)
    raise ValueError(f"unknown fairness {name!r}")  # guarded by the parameter rules


def sample_pairs(g, n_groups, max_pairs, generator, dtype=None):
    """Cross-group pairs ``(i, j, coef)`` for the regressor's individual fairness: all
    pairs when there are at most ``max_pairs``, otherwise a uniform sample (with
    replacement) of about ``max_pairs`` pairs split over the group pairs in proportion
    to ``n_a n_b``, with ``coef = n_a n_b / m_ab`` so that sums are unbiased. The
    coefficients are float32, converted to ``dtype`` when given."""
    order = torch.argsort(g, stable=True)
    counts = torch.bincount(g, minlength=n_groups).tolist()
    rows = list(torch.split(order, counts))
    total = sum(counts[a] * counts[b] for a in range(n_groups) for b in range(a + 1, n_groups))
    dev = g.device
    I, J, C = [], [], []
    for a in range(n_groups):
        for b in range(a + 1, n_groups):
            na, nb = counts[a], counts[b]
            if na == 0 or nb == 0:
                continue
            if total <= max_pairs:
                ia = rows[a].repeat_interleave(nb)
                jb = rows[b].repeat(na)
                coef = torch.ones(na * nb, device=dev)
            else:
                m = max(1, int(math.ceil(max_pairs * na * nb / total)))
                ia = rows[a][randint(na, (m,), generator, device=dev)]
                jb = rows[b][randint(nb, (m,), generator, device=dev)]
                coef = torch.full((m,), na * nb / m, device=dev)
            I.append(ia)
            J.append(jb)
            C.append(coef)
    if not I:
        I = J = [torch.zeros(0, dtype=torch.long, device=dev)]
        C = [torch.zeros(0, device=dev)]
    coef = torch.cat(C)
    return torch.cat(I), torch.cat(J), coef if dtype is None else coef.to(dtype)
