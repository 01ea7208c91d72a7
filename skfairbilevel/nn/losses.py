"""Differentiable losses: prediction losses with sample weights and group-fairness
penalties on predicted probabilities.

Conventions
-----------
* ``groups`` is a LongTensor of group ids in ``0 .. n_groups-1``; every function is
  correct for any number of groups and ignores groups absent from the batch.
* ``proba`` is either a 1-D tensor of positive-class probabilities (binary) or a 2-D
  tensor ``(n, n_classes)`` of class probabilities (multi-class: the penalty is summed
  over classes, one-vs-rest).
* ``weight`` (optional) are per-row sample weights; group means become weighted means.

The fairness penalties are the squared deviations of per-group rates from the overall
rate, summed over groups::

    DP(p)  = sum_c (mean(p | c) - mean(p))**2
    EOp(p) = sum_c (mean(p | c, y=1) - mean(p | y=1))**2                (true-positive rates)
    EOd(p) = EOp(p) + sum_c (mean(p | c, y=0) - mean(p | y=0))**2        (plus false-positive)

For two groups with shares pi_0, pi_1, DP = (pi_0**2 + pi_1**2)·(m_0 - m_1)**2 up to the
identity m_c - m = (1 - pi_c)(m_c - m_other), i.e. it is proportional to the squared
soft demographic-parity gap. Unlike the FairBiNN reference loss (which, through an
indexing bug, only compares group 0 to the mean), every group is penalised.
"""

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

__all__ = [
    "weighted_mean",
    "group_means",
    "demographic_parity_loss",
    "equal_opportunity_loss",
    "equalized_odds_loss",
    "accuracy_parity_loss",
    "classification_margin",
    "fairness_loss",
    "fairness_loss_and_grad",
    "FAIRNESS_LOSSES",
    "cross_entropy_loss",
    "repo_compat_dp_loss",
    "proba_from_logits",
    "labels_from_logits",
    "vs_loss",
]


def weighted_mean(values, weight=None):
    """Mean of ``values`` (over the first dimension), weighted when ``weight`` is given."""
    if weight is None:
        return values.mean(dim=0)
    w = weight.reshape((-1,) + (1,) * (values.dim() - 1))
    return (values * w).sum(dim=0) / weight.sum()


def group_means(values, groups, n_groups, weight=None, mask=None):
    """Per-group (weighted) means of ``values`` and the per-group total weight.

    Parameters
    ----------
    values : Tensor (n,) or (n, k)
    groups : LongTensor (n,)
    n_groups : int
    weight : Tensor (n,), optional
    mask : BoolTensor (n,), optional
        Only rows where ``mask`` is true count (e.g. ``y == 1`` for true-positive rates).

    Returns
    -------
    means : Tensor (n_groups,) or (n_groups, k); 0 for groups with no (unmasked) rows
    totals : Tensor (n_groups,), the weight (or row count) of each group
    """
    w = torch.ones_like(groups, dtype=values.dtype) if weight is None else weight.to(values.dtype)
    if mask is not None:
        w = w * mask.to(values.dtype)
    totals = torch.zeros(n_groups, dtype=values.dtype, device=values.device)
    totals = totals.index_add(0, groups, w)
    wv = values * w.reshape((-1,) + (1,) * (values.dim() - 1))
    sums = torch.zeros((n_groups,) + values.shape[1:], dtype=values.dtype, device=values.device)
    sums = sums.index_add(0, groups, wv)
    denom = totals.clamp_min(torch.finfo(values.dtype).tiny)
    means = sums / denom.reshape((-1,) + (1,) * (values.dim() - 1))
    return means, totals


def _deviation_penalty(values, groups, n_groups, weight=None, mask=None):
    """sum over present groups of (group mean - overall mean)^2 (summed over columns)."""
    means, totals = group_means(values, groups, n_groups, weight, mask)
    shape = (-1,) + (1,) * (means.dim() - 1)
    present = (totals > 0).to(values.dtype)
    total = totals.sum().clamp_min(torch.finfo(values.dtype).tiny)
    overall = (means * totals.reshape(shape)).sum(0) / total
    dev = ((means - overall) ** 2 * present.reshape(shape)).sum()
    # Absent groups add exact zeros; with fewer than two groups present there is nothing
    # to compare and the penalty is exactly 0 (graph kept). No host synchronisation and
    # no boolean indexing: one fixed sequence of tensor operations per call.
    return dev * (present.sum() >= 2).to(values.dtype)


def _deviation_penalty_and_grad(values, groups, n_groups, weight=None, mask=None):
    """:func:`_deviation_penalty` of 1-D ``values`` and its gradient, in closed form.

    With ``w_i`` the row weights (times ``mask``), ``W_c`` their group totals, ``m_c`` the
    group means and ``m = sum_i w_i v_i / sum_c W_c`` the overall mean, the penalty is
    ``sum_c [W_c > 0] (m_c - m)**2`` and its derivative is
    ``2 w_i ((m_c(i) - m) / W_c(i) - sum_c [W_c > 0] (m_c - m) / sum_c W_c)``
    (0 when fewer than two groups are present).
    """
    means, totals = group_means(values, groups, n_groups, weight, mask)
    w = torch.ones_like(values) if weight is None else weight.to(values.dtype)
    if mask is not None:
        w = w * mask.to(values.dtype)
    tiny = torch.finfo(values.dtype).tiny
    present = (totals > 0).to(values.dtype)
    total = totals.sum().clamp_min(tiny)
    dev = (means - (means * totals).sum() / total) * present
    compare = (present.sum() >= 2).to(values.dtype)
    penalty = (dev * dev).sum() * compare
    coef = (2.0 * compare) * dev / totals.clamp_min(tiny)
    grad = (coef[groups] - (2.0 * compare) * dev.sum() / total) * w
    return penalty, grad


def fairness_loss_and_grad(name, proba, y, groups, n_groups, weight=None):
    """``fairness_loss(name, proba, ...)`` and its gradient with respect to ``proba``, in
    closed form, without autograd (binary: ``proba`` 1-D).

    Used where the penalty's gradient is needed many times on small batches (FairBiNN's
    follower step): one fixed sequence of a dozen tensor operations instead of the
    penalty's autograd graph. Tested against autograd.
    """
    if proba.dim() != 1:
        raise ValueError("fairness_loss_and_grad takes 1-D (binary) probabilities.")
    if name == "demographic_parity":
        return _deviation_penalty_and_grad(proba, groups, n_groups, weight)
    if name not in FAIRNESS_LOSSES:
        raise ValueError(
            f"fairness={name!r} is not supported; use one of {sorted(FAIRNESS_LOSSES)}."
        )
    pos = y > 0.5
    loss, grad = _deviation_penalty_and_grad(proba, groups, n_groups, weight, mask=pos)
    if name == "equalized_odds":
        loss_n, grad_n = _deviation_penalty_and_grad(proba, groups, n_groups, weight, mask=~pos)
        loss, grad = loss + loss_n, grad + grad_n
    return loss, grad


def _one_vs_rest_targets(y, proba):
    """For multi-class ``proba`` (n, K) and integer ``y``: one-hot targets (n, K)."""
    return F.one_hot(y.long(), proba.shape[1]).to(proba.dtype)


class _BinaryPenalty(torch.autograd.Function):
    """A binary soft penalty as one autograd node with its closed-form gradient
    (:func:`fairness_loss_and_grad`) instead of a graph of a dozen small operations.
    First-order only: a second derivative through it raises instead of being wrong."""

    @staticmethod
    def forward(ctx, proba, name, y, groups, n_groups, weight):
        loss, grad = fairness_loss_and_grad(name, proba.detach(), y, groups, n_groups, weight)
        ctx.save_for_backward(grad)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        (grad,) = ctx.saved_tensors
        return grad_out * grad, None, None, None, None, None


def demographic_parity_loss(proba, y, groups, n_groups, weight=None):
    """Soft demographic-parity penalty (``y`` is accepted for a uniform signature)."""
    if proba.dim() == 1:
        return _BinaryPenalty.apply(proba, "demographic_parity", y, groups, n_groups, weight)
    return _deviation_penalty(proba, groups, n_groups, weight)


def equal_opportunity_loss(proba, y, groups, n_groups, weight=None):
    """Soft true-positive-rate parity penalty (rows with y = 1, or y = k per class)."""
    if proba.dim() == 1:
        return _BinaryPenalty.apply(proba, "equal_opportunity", y, groups, n_groups, weight)
    onehot = _one_vs_rest_targets(y, proba)
    total = proba.sum() * 0.0
    for k in range(proba.shape[1]):
        total = total + _deviation_penalty(
            proba[:, k], groups, n_groups, weight, mask=onehot[:, k] > 0.5
        )
    return total


def equalized_odds_loss(proba, y, groups, n_groups, weight=None):
    """Soft equalized-odds penalty: TPR parity plus FPR parity."""
    if proba.dim() == 1:
        return _BinaryPenalty.apply(proba, "equalized_odds", y, groups, n_groups, weight)
    onehot = _one_vs_rest_targets(y, proba)
    total = proba.sum() * 0.0
    for k in range(proba.shape[1]):
        pos = onehot[:, k] > 0.5
        total = total + _deviation_penalty(proba[:, k], groups, n_groups, weight, mask=pos)
        total = total + _deviation_penalty(proba[:, k], groups, n_groups, weight, mask=~pos)
    return total


def classification_margin(logits, y):
    """Margin of the true class: ``(2y - 1) * logit`` for one logit column, else the true
    class's logit minus the largest other logit. Positive exactly when the row is
    classified correctly (ties aside)."""
    if logits.shape[1] == 1:
        return (2.0 * y.to(logits.dtype) - 1.0) * logits[:, 0]
    y = y.long()
    true = logits.gather(1, y[:, None])[:, 0]
    others = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf"))
    return true - others.max(dim=1).values


def accuracy_parity_loss(logits, y, groups, n_groups, weight=None, temperature=1.0):
    """Differentiable accuracy-parity gap (BiFP, after Wu, Zhang & Wu 2019).

    ``max_c acc_c - min_c acc_c`` over the groups present, where the accuracy of a row is
    smoothed as ``sigmoid(margin / temperature)`` (:func:`classification_margin`); for two
    groups this is ``|acc_0 - acc_1|``. As ``temperature -> 0`` it tends to the hard gap.
    Takes logits, not probabilities.
    """
    soft_acc = torch.sigmoid(classification_margin(logits, y) / temperature)
    means, totals = group_means(soft_acc, groups, n_groups, weight)
    absent = totals <= 0
    gap = (
        means.masked_fill(absent, float("-inf")).max()
        - means.masked_fill(absent, float("inf")).min()
    )
    # fewer than two groups present: exactly 0 (graph kept), without a host sync
    return torch.where((~absent).sum() >= 2, gap, soft_acc.sum() * 0.0)


FAIRNESS_LOSSES = {
    "demographic_parity": demographic_parity_loss,
    "equal_opportunity": equal_opportunity_loss,
    "equalized_odds": equalized_odds_loss,
}


def fairness_loss(name, proba, y, groups, n_groups, weight=None):
    """Dispatch to one of ``FAIRNESS_LOSSES`` by name."""
    try:
        fn = FAIRNESS_LOSSES[name]
    except KeyError:
        raise ValueError(
            f"fairness={name!r} is not supported; use one of {sorted(FAIRNESS_LOSSES)}."
        ) from None
    return fn(proba, y, groups, n_groups, weight)


def repo_compat_dp_loss(logits, groups, weight=None):
    """The FairBiNN reference implementation's demographic-parity loss, bugs included.

    The reference model already outputs probabilities and the loss applies a sigmoid
    again, so it sees ``o = sigmoid(sigmoid(logit))`` in [0.5, 0.73]; an indexing bug
    makes every constraint compare group 0 with the overall mean, and the loss is the
    mean of the squared hinge terms, i.e. ``(mean(o | g = 0) - mean(o)) ** 2 / 2``
    whatever the number of groups. Zero (with a graph) when group 0 is absent. Binary
    targets only (one logit column).
    """
    o = torch.sigmoid(torch.sigmoid(logits[:, 0]))
    w = torch.ones_like(o) if weight is None else weight.to(o.dtype)
    w0 = w * (groups == 0).to(o.dtype)
    overall = (o * w).sum() / w.sum()
    total0 = w0.sum()
    mean0 = (o * w0).sum() / total0.clamp_min(torch.finfo(o.dtype).tiny)
    d = (mean0 - overall) * (total0 > 0).to(o.dtype)
    return d * d / 2.0


def proba_from_logits(logits):
    """Binary: one logit column -> positive-class probability (n,). Multi-class: softmax."""
    if logits.dim() == 2 and logits.shape[1] == 1:
        return torch.sigmoid(logits[:, 0])
    return torch.softmax(logits, dim=1)


def labels_from_logits(logits):
    """Predicted class indices: ``logit > 0`` for one logit column, else the argmax."""
    return (logits[:, 0] > 0).long() if logits.shape[1] == 1 else logits.argmax(1)


def cross_entropy_loss(logits, y, weight=None):
    """(Weighted) cross-entropy from logits: binary cross-entropy for one output column,
    softmax cross-entropy otherwise; ``sum(w_i l_i) / sum(w_i)`` with sample weights."""
    if logits.shape[1] == 1:
        per_row = F.binary_cross_entropy_with_logits(
            logits[:, 0], y.to(logits.dtype), reduction="none"
        )
    else:
        per_row = F.cross_entropy(logits, y.long(), reduction="none")
    return weighted_mean(per_row, weight)


def vs_loss(logits, y, *, scale=None, shift=None, class_weight=None, weight=None):
    """Vector-scaling loss: class-weighted cross-entropy of adjusted logits.

    ``CE(logits * scale + shift, y)`` per row, averaged with row weights
    ``weight_i * class_weight[y_i]`` (``sum(w l) / sum(w)``, the convention of
    :func:`torch.nn.functional.cross_entropy` with ``weight=``). ``scale`` and ``shift``
    are the multiplicative and additive logit adjustments of Kini et al. (2021), used as
    learnable loss parameters by FACIMS; without them this is the class-weighted
    ("balanced") cross-entropy.

    Parameters
    ----------
    logits : Tensor (..., n, K)
        Softmax logits; leading dimensions index independent models.
    y : LongTensor (..., n)
    scale, shift : Tensor (K,), optional
    class_weight : Tensor (K,), optional
    weight : Tensor (..., n), optional
        Row weights (0 drops a row, e.g. padding).

    Returns
    -------
    Tensor of shape ``logits.shape[:-2]`` (a scalar for 2-D logits).
    """
    z = logits
    if scale is not None:
        z = z * scale
    if shift is not None:
        z = z + shift
    per_row = -torch.log_softmax(z, dim=-1).gather(-1, y.long().unsqueeze(-1)).squeeze(-1)
    w = torch.ones_like(per_row) if weight is None else weight.to(per_row.dtype)
    if class_weight is not None:
        w = w * class_weight[y.long()]
    return (per_row * w).sum(-1) / w.sum(-1).clamp_min(torch.finfo(per_row.dtype).tiny)
