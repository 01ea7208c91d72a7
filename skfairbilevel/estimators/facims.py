"""FACIMSClassifier: fairness-aware class-imbalanced learning on multiple subgroups.

Tri-level Bayesian learning (Tarzanagh, Hou, Tong, Long, Shen et al., UAI 2023)::

    upper   min_{Z, v}  L_bal(Z; V) + lambda_up * mean_a D(Z^a*, Z)
    middle/lower, per group a:
            Z^a* = argmin_{Z^a} max_{||e|| <= rho_a}  L_vs(Z^a + e, v; T^a)
                                                      + lambda_low * D(Z^a, Z)

``Z`` is a global diagonal-Gaussian distribution over the weights of an MLP, ``Z^a`` one
per group, ``v`` the loss parameters of the vector-scaling (VS) loss, ``D`` the
divergence ("w2" or "kl"), ``T^a`` / ``V`` the group's training rows and the validation
split. The global distribution predicts.
"""

import math

import numpy as np
import torch
from torch import nn

from .._params import any_of, is_array_like, layer_sizes, number, one_of
from ..base import BaseFairEstimator, FairClassifierMixin
from ..nn.bilevel import (
    flat_grad,
    flatten,
    hvp,
    neumann_inverse_hvp,
    sam_perturb_,
    unflatten_like,
)
from ..nn.engine import TensorData
from ..nn.gaussian import (
    DIVERGENCES,
    GaussianMLP,
    divergence_derivatives,
    divergence_grad,
    draw_noise,
    gaussian_forward,
    sampled_forward,
)
from ..nn.losses import group_means, vs_loss, weighted_mean
from ..nn.modules import ACTIVATIONS

__all__ = ["FACIMSClassifier", "implicit_gradients"]

#: largest radius of the ``sam_rho="inverse_frequency"`` rule (the smallest group's)
SAM_RHO_MAX = 0.05
#: SGD settings of the loss-parameter (hyper) optimiser, as in the reference code
HYPER_MOMENTUM = 0.9
HYPER_WEIGHT_DECAY = 5e-4
#: learning-rate factor of the local models at half of ``max_epochs`` (MultiStepLR)
POST_LR_DROP = 0.2


def _logvar_init_rule(value):
    ok = (isinstance(value, tuple | list) and len(value) == 2
          and all(isinstance(v, int | float | np.integer | np.floating)
                  and not isinstance(v, bool) and np.isfinite(v) for v in value)
          and value[1] >= 0)
    return None if ok else "a pair (mean, std) of finite floats with std >= 0"


def _sam_rho_rule(value):
    if isinstance(value, str):
        return None if value in ("inverse_frequency", "label_order") else (
            '"inverse_frequency", "label_order", a float >= 0 or an array of floats >= 0'
        )
    if number(0)(value) is None:
        return None
    if is_array_like()(value) is None:
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            arr = None
        if arr is not None and arr.ndim == 1 and np.all(np.isfinite(arr)) and np.all(arr >= 0):
            return None
    return '"inverse_frequency", "label_order", a float >= 0 or an array of floats >= 0'


def _neumann_diagonal(b, shift, *, n_terms, alpha):
    """The same series for a diagonal ``H = diag(shift)``, in closed form:
    ``alpha * sum_{j<=K} r^j b = (1 - r^(K+1)) / shift * b`` with ``r = 1 - alpha shift``
    (``alpha (K + 1) b`` where ``shift == 0``)."""
    r = 1.0 - alpha * shift
    zero = shift == 0
    factor = torch.where(zero, torch.full_like(shift, alpha * (n_terms + 1)),
                         (1.0 - r.pow(n_terms + 1)) / torch.where(zero, 1.0, shift))
    return factor * b


def implicit_gradients(g_vs, inner, hyper, b, *, div_hess, div_mixed, lambda_low, n_terms,
                       alpha, retain_graph=False, curved=None, stacked=False):
    """Implicit-function-theorem terms of the upper gradient through ``inner = Q*``.

    The lower objective is ``L(Q, P, v) = f(Q, v) + lambda_low * D(Q, P)`` with ``D`` a
    sum of elementwise terms, so that ``d2D/dQ2`` is diagonal (``div_hess``) and
    ``d2D/dP dQ`` acts elementwise (``div_mixed``). With ``H = d2L/dQ2`` and
    ``p = H^{-1} b`` (truncated Neumann series, ``b = dF/dQ``) the total derivatives of an
    upper objective ``F`` are ``dF/dP = dF/dP|direct - mixed_p`` and
    ``dF/dv = dF/dv|direct - mixed_v`` with::

        mixed_p = lambda_low * (d2D / dP dQ) p,    mixed_v = (d2f / dv dQ) p.

    Parameters
    ----------
    g_vs : Tensor
        Flat ``df/dQ`` built with ``create_graph=True`` (its graph reaches ``hyper``);
        over all of ``inner``, or over ``[inner[i] for i in curved]`` with ``curved``.
    inner, hyper : lists of Tensor
        ``Q`` and ``v`` (``hyper`` may be empty).
    b : Tensor
        Flat ``dF/dQ`` (over all of ``inner``).
    div_hess : Tensor
        Flat diagonal of ``d2D/dQ2`` (over all of ``inner``).
    div_mixed : callable
        Flat ``v`` (Q-space) -> flat ``(d2D / dP dQ) v`` (P-space).
    lambda_low : float
    n_terms, alpha : Neumann series settings (:func:`neumann_inverse_hvp`).
    retain_graph : bool
        Keep the graph of ``g_vs`` for later calls.
    curved : list of int, optional
        Indices of the ``inner`` tensors that ``f`` depends on (e.g. only the means when
        ``f`` is the loss of the mean network). ``H`` is then block diagonal, the other
        blocks being ``lambda_low * diag(div_hess)``, and their part of the series is
        evaluated in closed form (the same numbers as the full series, without
        Hessian-vector products over parameters with zero curvature of ``f``).
    stacked : bool
        The leading dimension of every ``inner`` tensor indexes independent problems
        (groups): the Neumann series then stops per problem where its terms grow
        (:func:`neumann_inverse_hvp`'s ``blocks``), not for all groups at once.

    Returns
    -------
    mixed_p : Tensor (flat over ``P``)
    mixed_v : Tensor (flat over ``hyper``) or None when ``hyper`` is empty
    """
    shift = lambda_low * div_hess

    def blocks(tensors):
        return (tensors[0].shape[0], [t[0].numel() for t in tensors]) if stacked else None

    if curved is None:
        p = neumann_inverse_hvp(lambda c: hvp(g_vs, inner, c), b, shift=shift,
                                n_terms=n_terms, alpha=alpha, blocks=blocks(inner))
        p_f = p
    else:
        curved = sorted(set(curved))
        b_parts = unflatten_like(b, inner)
        s_parts = unflatten_like(shift, inner)
        cur = [inner[i] for i in curved]
        p_f = neumann_inverse_hvp(lambda c: hvp(g_vs, cur, c),
                                  flatten([b_parts[i] for i in curved]),
                                  shift=flatten([s_parts[i] for i in curved]),
                                  n_terms=n_terms, alpha=alpha, blocks=blocks(cur))
        pieces = dict(zip(curved, unflatten_like(p_f, cur), strict=True))
        p = flatten([pieces[i] if i in pieces else
                     _neumann_diagonal(b_parts[i], s_parts[i], n_terms=n_terms, alpha=alpha)
                     for i in range(len(inner))])
    mixed_p = lambda_low * div_mixed(p)
    mixed_v = hvp(g_vs, hyper, p_f, retain_graph=retain_graph) if hyper else None
    return mixed_p, mixed_v


class _FACIMSNet(nn.Module):
    """Everything trainable: global distribution, per-group distributions, loss params.

    Buffers ``zeta_*`` hold the standard-normal weight draws used at prediction time.
    """

    def __init__(self, n_in, hidden, n_out, n_groups, n_mc, activation, logvar_init,
                 generator):
        super().__init__()
        self.prior = GaussianMLP(n_in, hidden, n_out, n_models=1, activation=activation,
                                 logvar_init=logvar_init, generator=generator)
        self.posts = GaussianMLP(n_in, hidden, n_out, n_models=n_groups,
                                 activation=activation, logvar_init=logvar_init,
                                 generator=generator)
        self.posts.copy_from(self.prior)
        self.dy = nn.Parameter(torch.ones(n_out))   # scale = sigmoid(dy)
        self.ly = nn.Parameter(torch.zeros(n_out))  # additive shift
        widths = self.prior.widths
        for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            self.register_buffer(f"zeta_w{i}", torch.zeros(n_mc, fan_in, fan_out))
            self.register_buffer(f"zeta_b{i}", torch.zeros(n_mc, fan_out))

    def zetas(self):
        out = []
        for i in range(self.prior.n_layers):
            out += [getattr(self, f"zeta_w{i}"), getattr(self, f"zeta_b{i}")]
        return out


class FACIMSClassifier(FairClassifierMixin, BaseFairEstimator):
    """FACIMS: Bayesian tri-level learning for class imbalance on small subgroups.

    A global diagonal-Gaussian distribution over the weights of an MLP (the predictor)
    is learned together with one local distribution per sensitive group and the
    parameters ``v`` of a vector-scaling loss. Each epoch:

    1. *Lower/middle level, per group* ``a``: a batch of at most ``group_batch_size``
       training rows of the group; ``inner_steps`` Adagrad steps (wrapped in
       sharpness-aware minimisation of radius ``rho_a`` when ``sam=True``) on
       ``L_vs(Z^a, v) + lambda_low * D(Z^a || Z)`` with ``Z`` and ``v`` frozen. ``L_vs`` is
       the class-weighted cross-entropy of the adjusted logits
       ``f(x) * sigmoid(dy) + ly`` averaged over ``n_mc`` local-reparameterisation
       passes; class weights ``omega_c ~ N / n_c`` come from the training counts.
    2. *Upper level*, ``outer_steps`` times: the balanced (class-weighted, see
       ``upper_class_weight``)
       cross-entropy of the global model on the validation split plus the mean
       divergence, differentiated through the group solutions by the implicit function
       theorem; the inverse Hessian of each group's lower loss is approximated by a
       truncated Neumann series (``neumann_terms``, ``neumann_lr``). Adagrad step on the
       global distribution, SGD step on ``v``. ``v`` only enters the upper objective
       through the group solutions (as in the reference code).

    Binary and multi-class (softmax over ``n_classes`` outputs in both cases).

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(400, 200, 100)
        Hidden widths of the (stochastic) MLP, the reference's ``FcNet4``.
    activation : str, default="elu"
        Hidden activation.
    n_mc : int, default=5
        Monte Carlo passes averaged in the training losses, and weight samples averaged
        by ``predict_proba``.
    n_mc_hyper : int, default=0
        Monte Carlo passes in the graphs of the upper level: the lower-level gradient
        that the implicit function theorem differentiates (Hessian-vector products and
        mixed derivatives) and the validation loss. 0: the Hessian-vector products use
        the mean network (no weight noise: the expected Hessian up to ``O(eps_std^2)``,
        without Monte Carlo noise, and about 7 times cheaper than ``n_mc`` noisy
        passes) and the validation loss one noisy pass. The reference code uses ``n_mc``
        passes for the former and one for the latter.
    eps_std : float, default=0.08
        Scale of the weight noise: a pass uses weights ``mu + eps_std * sigma * xi``
        (via the local reparameterisation trick). 0 makes the networks deterministic.
    eps_std_predict : float or None, default=None
        Noise scale of the ``n_mc`` weight samples used for prediction (None: ``eps_std``;
        0: the mean network).
    logvar_init : (float, float), default=(0.01, 0.01)
        Mean and standard deviation of the initial log-variances.
    divergence : {"w2", "kl"}, default="w2"
        ``D``: the squared 2-Wasserstein distance (what the reference code uses) or the
        KL divergence ``KL(Z^a || Z)`` (what the paper writes).
    prior_noise : float, default=1e-3
        Standard deviation of the Gaussian noise added to the global distribution's
        means and log-variances whenever a divergence is computed (reference ``kappa``).
    lambda_low : float, default=0.7
        Weight of the divergence in the lower level (``alpha^low``).
    lambda_up : float, default=0.7
        Weight of the mean divergence in the upper level (``alpha^up``); see
        ``upper_weighting``.
    upper_weighting : {"paper", "convex", "reference"}, default="paper"
        Upper objective: ``L_bal + lambda_up * D`` (Eq. 7a), ``lambda_up * L_bal +
        (1 - lambda_up) * D``, or the reference code's double weighting (effective weights
        ``lambda_up^2`` on ``L_bal``, ``lambda_up (1 - lambda_up)`` on the direct and
        ``1 - lambda_up`` on the implicit divergence gradient).
    inner_steps : int, default=10
        Lower-level steps per group and epoch.
    outer_steps : int, default=5
        Upper-level steps per epoch.
    group_batch_size : int, default=50
        Rows per group batch (groups with fewer training rows use all of them).
    max_epochs : int, default=50
        FACIMS epochs (one group batch per group each, not passes over the data).
    lr_post : float, default=0.1
        Adagrad learning rate of the local distributions (dropped by a factor 0.2 at
        half of ``max_epochs``).
    lr_prior : float, default=0.01
        Adagrad learning rate of the global distribution.
    prior_lr_decay : float, default=0.9
        Per-epoch exponential decay of ``lr_prior`` (1 disables it).
    lr_hyper : float, default=1e-3
        SGD learning rate of the loss parameters ``v`` (momentum 0.9, weight decay 5e-4).
    sam : bool, default=True
        Sharpness-aware lower level. False gives the paper's FACIMS-I.
    sam_rho : float, array-like, "inverse_frequency" or "label_order", default="inverse_frequency"
        SAM radius per group: one float for all groups; an array with one radius per
        group (in the order of ``groups_``); ``"inverse_frequency"``: ``0.05 * n_min /
        n_a`` with ``n_a`` the group's training weight (small radius for large groups);
        ``"label_order"``: the reference code's ``5e-5 * 10^i`` for the ``i``-th group in
        sorted label order (a quirk, for reproduction only).
    learn_loss_params : bool, default=True
        Learn ``v``. False keeps ``sigmoid(dy) = sigmoid(1)`` and ``ly = 0`` fixed (the
        paper's FACIMS-II, up to its manual logit adjustment).
    neumann_terms : int, default=10
        Terms of the Neumann series for the inverse Hessian-vector product.
    neumann_lr : float, default=0.1
        Step of the Neumann series (must be below ``2 / lambda_max(H)``).
    validation_fraction : float, default=0.3
        Share of the training rows held out (stratified by group and class) for the
        upper level. Every group and class keeps at least one training row. Not used
        when ``fit`` gets ``X_val``: all of X then trains the group models and the
        upper level uses the given validation rows (``X_val``, ``y_val``,
        ``sensitive_features_val``, ``sample_weight_val``; see
        :meth:`BaseFairEstimator.fit <skfairbilevel.base.BaseFairEstimator.fit>`), which
        is the paper's protocol.
    upper_class_weight : {"training", "validation"}, default="training"
        Class weights of the upper (validation) loss: ``omega`` from the training
        counts, as in the lower level, or ``omega_c ~ N / n_c`` from the validation
        rows' own counts (balanced on the validation rows). The two agree when the
        validation rows are a stratified split of the training rows (no ``X_val``);
        they differ when the training rows were resampled (e.g. the paper's credit
        protocol: 400 rows per group for training, the natural distribution for
        ``X_val``).
    validation_aggregation : {"pooled", "per_group"}, default="pooled"
        Upper loss over the pooled validation rows (reference code) or the mean of the
        per-group losses (Eq. 7a).
    val_batch_size : int or None, default=1024
        Validation rows drawn (without replacement) for each upper step; None or a
        value above the validation size uses all of them.
    groups_per_epoch : int or None, default=None
        Number of groups (drawn at random each epoch) whose local models are updated;
        None updates all (partial-group setting for many groups).
    stale_graph : bool, default=False
        Reuse the lower-level gradient graph of the first upper step for all
        ``outer_steps`` (the reference code's behaviour) instead of recomputing it after
        each upper step.
    output_sigmoid : bool, default=False
        Squash the network outputs by a sigmoid before the softmax (the reference code's
        behaviour; compresses the probabilities towards ``1 / n_classes``).
    sensitive_feature_ids : str, int or list, default=None
        Names or indices of columns of X that hold the sensitive features.
    drop_sensitive : bool, default=True
        With ``sensitive_feature_ids``: remove those columns from the model's inputs.
    verbose : int, default=0
        1 shows a progress bar over epochs.
    device : str, default="cpu"
        "cpu", "cuda", "cuda:<i>" or "auto".
    random_state : int, RandomState, Generator or None, default=None
        Seeds the initial weights, the validation split, the batches, the Monte Carlo
        noise and the prediction samples; the only source of randomness.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    groups_ : ndarray
        Group labels seen in fit (``[None]`` without sensitive features: one group).
    n_groups_ : int
    fairness_aware_ : bool
        False when fitted without sensitive features (a single local model).
    module_ : torch.nn.Module
        ``prior`` (the global distribution), ``posts`` (one distribution per group),
        ``dy``, ``ly`` and the prediction weight draws.
    class_weight_ : ndarray of shape (n_classes,)
        The class weights ``omega`` (unit L2 norm) from the training split.
    upper_class_weight_ : ndarray of shape (n_classes,)
        The class weights (unit L2 norm) of the upper loss.
    sam_rho_ : ndarray of shape (n_groups,) or None
        SAM radius of each group (None with ``sam=False``).
    loss_scale_, loss_shift_ : ndarray of shape (n_classes,)
        Learned VS-loss parameters ``sigmoid(dy)`` and ``ly``.
    n_train_rows_, n_validation_rows_ : int
        Distinct rows in the training and validation data (the internal split, or X
        and ``X_val`` when ``fit`` got ``X_val``).
    history_ : list of dict
        Per epoch: ``lower`` (mean lower loss), ``val_loss`` (balanced loss of the
        global model), ``divergence`` (mean over groups), ``seconds``.
    n_iter_ : int
        Epochs run.
    interrupted_ : bool
        Whether training was interrupted (KeyboardInterrupt).
    n_features_in_, feature_names_in_
        As in scikit-learn.

    See Also
    --------
    FairMLPClassifier : ERM (``class_weight=None``) and balanced ERM
        (``class_weight="balanced"``), the baselines of the paper.

    Notes
    -----
    Prediction. ``predict_proba`` averages the softmax outputs of ``n_mc`` weight
    samples ``mu + eps_std_predict * sigma * zeta_k`` of the global distribution, with
    ``zeta_k`` drawn once at the end of ``fit`` from the fit's generator. Predictions
    are therefore reproducible and each row's output is independent of the other rows.
    The reference code instead keeps the local-reparameterisation noise on at
    inference, so its predictions are random.

    Differences from the paper and the reference code (``PennShenLab/FACIMS``):

    * No sigmoid on the network outputs (``output_sigmoid=True`` restores it).
    * Upper objective ``L_bal + lambda_up * D`` as in Eq. 7a, not the reference's
      double weighting (``upper_weighting="reference"``).
    * The implicit gradient treats every group's solution separately: ``p_a =
      H_a^{-1} dF/dZ^a`` for each group, then ``sum_a d2 L_a / dZ dZ^a p_a``. The
      reference sums all groups' Hessian-vector products in one vector and uses one
      ``p`` for all groups, which is not the gradient of Eq. 7.
    * The lower-level gradient graph is recomputed after each upper step
      (``stale_graph=True`` for the reference behaviour).
    * Class weights from the training split (the reference counts test labels), in
      both levels by default; ``upper_class_weight="validation"`` balances the upper
      loss on the validation rows' own counts instead. On the paper's credit protocol
      the resampled training rows have 13-14 % positives and the validation rows 22 %;
      the default was kept by a comparison on validation data only
      (``benchmarks/results/facims.md``, session 5).
    * SAM radius by inverse group frequency by default, not by label order; the SAM
      step perturbs each group's parameters by ``rho_a g_a / ||g_a||`` with its own norm.
    * All groups get local models (the reference only the first ``N_subtask``);
      ``groups_per_epoch`` subsamples groups instead.
    * A group with fewer than ``group_batch_size`` training rows uses all its rows
      (with their weights) in each batch; the reference resamples it with replacement.
    * Without ``X_val`` the validation split is internal (stratified by group and
      class, taken after duplicate rows were merged into weights) and varies with
      ``random_state``. With ``X_val`` the upper level uses those rows and the lower
      level all of X; this is the paper's protocol (its validation set is 30 % of the
      non-test rows in their natural distribution, and only the training part is
      resampled). The upper loss is one Monte Carlo pass (``max(1, n_mc_hyper)``)
      over at most ``val_batch_size`` validation rows (the reference: one pass per
      batch of 50 over the whole validation set).
    * The Hessian-vector products of the implicit gradient use the mean network by
      default (``n_mc_hyper=0``), the reference ``n_mc`` noisy passes; the divergence's
      part of the Hessian and its mixed derivative with the global distribution are
      computed in closed form (both divergences are elementwise, so the part is
      diagonal). Only the mean network's part goes through double back-propagation.
    * The Neumann series of each group stops before its first term that grows in norm
      (the series diverges there: ``neumann_lr`` too large for that group's curvature,
      or negative curvature), instead of summing all ``neumann_terms`` terms as the
      reference does. Without growth the result is the same to the bit; with growth the
      reference's sum overflows: with the defaults, on the drug data (paper protocol,
      seed 777) the terms grew from the second epoch on and the lower loss became NaN
      in epoch 6.
      The closed-form diagonal part (the divergence's curvature) is not guarded;
      ``neumann_lr`` must stay below ``2 / (lambda_low * max curvature)`` there.
    * The SAM ascent and descent evaluations of an inner step share one draw of the
      local-reparameterisation noise (the reference draws twice).
    * The posterior (group) distributions start as copies of the initial global one.
    * As in the reference (its quirk kept on purpose), ``v`` gets no direct gradient:
      the balanced validation loss does not depend on it, so its only gradient is the
      implicit one of the divergence term through the group solutions. That gradient
      is small (about 1e-2 per coordinate on the credit benchmark) and with the
      reference's ``lr_hyper=1e-3`` ``v`` moves by about 1e-3 in 50 epochs: with the
      defaults FACIMS and FACIMS-II (``learn_loss_params=False``) give nearly the same
      model. A larger ``lr_hyper`` lets ``v`` matter.
    * ``lr_post`` defaults to 0.1, not the reference CLI's 0.4 (which its credit and
      drug configs inherit). Adagrad's first step moves every weight by about
      ``lr_post`` (initial weights are within +-0.05 at fan-in 400); with 0.4 the
      lower-level gradients of the (400, 200, 100) ELU network grew from 0.35 to 1e6 in
      25 steps and the loss became NaN on credit (seeds 0 and 42, every
      ``lr_prior``). 0.1 is the best of the reference grid on a validation split
      (``benchmarks/results/facims.md``).
    * ``lambda_up`` and ``lambda_low`` default to 0.7 as in the shipped configs; the
      hyper-optimiser (SGD, momentum 0.9, weight decay 5e-4), the local models'
      learning-rate drop (x0.2 at half of ``max_epochs``) and the largest
      ``"inverse_frequency"`` radius (0.05) are fixed.

    Cost. An epoch runs ``inner_steps`` SAM steps (two forward/backward passes of
    ``n_mc`` copies of every group batch) and ``outer_steps`` upper steps with
    ``neumann_terms`` Hessian-vector products each, for all groups at once (the group
    networks are stacked and run as batched matrix products). With the default
    ``n_mc_hyper=0`` the lower loss in the upper-level graphs is the mean network's,
    which does not depend on the log-variances: the Hessian-vector products run over
    the means only and the log-variance part of the Neumann series (diagonal) is summed
    in closed form. With the defaults, 7 groups and 22 features an epoch takes about
    2-2.5 CPU seconds (one thread; see ``benchmarks/results/facims.md``).

    References
    ----------
    .. [1] D. A. Tarzanagh, B. Hou, B. Tong, Q. Long and L. Shen, "Fairness-Aware Class
       Imbalanced Learning on Multiple Subgroups", UAI 2023, PMLR 216:2123-2133.
    .. [2] G. R. Kini, O. Paraskevas, S. Oymak and C. Thrampoulidis, "Label-Imbalanced
       and Group-Sensitive Classification under Overparameterization", NeurIPS 2021.
    .. [3] P. Foret, A. Kleiner, H. Mobahi and B. Neyshabur, "Sharpness-Aware
       Minimization for Efficiently Improving Generalization", ICLR 2021.
    .. [4] J. Lorraine, P. Vicol and D. Duvenaud, "Optimizing Millions of
       Hyperparameters by Implicit Differentiation", AISTATS 2020.
    .. [5] D. P. Kingma, T. Salimans and M. Welling, "Variational Dropout and the Local
       Reparameterization Trick", NeurIPS 2015.

    Examples
    --------
    >>> from skfairbilevel import FACIMSClassifier
    >>> from skfairbilevel.datasets import make_biased_classification
    >>> X, y, A = make_biased_classification(300, 5, n_groups=3, random_state=0)
    >>> clf = FACIMSClassifier(hidden_layer_sizes=(16,), max_epochs=5, inner_steps=2,
    ...                        outer_steps=2, random_state=0)
    >>> clf.fit(X, y, sensitive_features=A).predict_proba(X[:2]).shape
    (2, 2)
    """

    _parameter_rules = {
        "hidden_layer_sizes": layer_sizes(),
        "activation": one_of(*ACTIVATIONS),
        "n_mc": number(1, integer=True),
        "n_mc_hyper": number(0, integer=True),
        "eps_std": number(0),
        "eps_std_predict": number(0, none=True),
        "logvar_init": _logvar_init_rule,
        "divergence": one_of(*DIVERGENCES),
        "prior_noise": number(0),
        "lambda_low": number(0),
        "lambda_up": number(0),
        "upper_weighting": one_of("paper", "convex", "reference"),
        "inner_steps": number(1, integer=True),
        "outer_steps": number(1, integer=True),
        "group_batch_size": number(1, integer=True),
        "lr_post": number(0, low_open=True),
        "lr_prior": number(0, low_open=True),
        "prior_lr_decay": number(0, 1, low_open=True),
        "lr_hyper": number(0, low_open=True),
        "sam": one_of(True, False),
        "sam_rho": _sam_rho_rule,
        "learn_loss_params": one_of(True, False),
        "neumann_terms": number(0, integer=True),
        "neumann_lr": number(0, low_open=True),
        "upper_class_weight": one_of("training", "validation"),
        "validation_aggregation": one_of("pooled", "per_group"),
        "val_batch_size": any_of(number(1, integer=True), one_of(None)),
        "groups_per_epoch": any_of(number(1, integer=True), one_of(None)),
        "stale_graph": one_of(True, False),
        "output_sigmoid": one_of(True, False),
    }

    # Engine settings that are not parameters of this estimator: FACIMS keeps its own
    # validation split (inside ``_fit_torch``) and runs a fixed number of epochs.
    early_stopping = False
    warm_start = False
    n_iter_no_change = 10
    tol = 0.0
    batch_size = 1

    def __init__(self, hidden_layer_sizes=(400, 200, 100), *, activation="elu", n_mc=5,
                 n_mc_hyper=0, eps_std=0.08, eps_std_predict=None, logvar_init=(0.01, 0.01),
                 divergence="w2", prior_noise=1e-3, lambda_low=0.7, lambda_up=0.7,
                 upper_weighting="paper", inner_steps=10, outer_steps=5,
                 group_batch_size=50, max_epochs=50, lr_post=0.1, lr_prior=0.01,
                 prior_lr_decay=0.9, lr_hyper=1e-3, sam=True, sam_rho="inverse_frequency",
                 learn_loss_params=True, neumann_terms=10, neumann_lr=0.1,
                 validation_fraction=0.3, upper_class_weight="training",
                 validation_aggregation="pooled",
                 val_batch_size=1024, groups_per_epoch=None, stale_graph=False,
                 output_sigmoid=False, sensitive_feature_ids=None, drop_sensitive=True,
                 verbose=0, device="cpu", random_state=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.n_mc = n_mc
        self.n_mc_hyper = n_mc_hyper
        self.eps_std = eps_std
        self.eps_std_predict = eps_std_predict
        self.logvar_init = logvar_init
        self.divergence = divergence
        self.prior_noise = prior_noise
        self.lambda_low = lambda_low
        self.lambda_up = lambda_up
        self.upper_weighting = upper_weighting
        self.inner_steps = inner_steps
        self.outer_steps = outer_steps
        self.group_batch_size = group_batch_size
        self.max_epochs = max_epochs
        self.lr_post = lr_post
        self.lr_prior = lr_prior
        self.prior_lr_decay = prior_lr_decay
        self.lr_hyper = lr_hyper
        self.sam = sam
        self.sam_rho = sam_rho
        self.learn_loss_params = learn_loss_params
        self.neumann_terms = neumann_terms
        self.neumann_lr = neumann_lr
        self.validation_fraction = validation_fraction
        self.upper_class_weight = upper_class_weight
        self.validation_aggregation = validation_aggregation
        self.val_batch_size = val_batch_size
        self.groups_per_epoch = groups_per_epoch
        self.stale_graph = stale_graph
        self.output_sigmoid = output_sigmoid
        self.sensitive_feature_ids = sensitive_feature_ids
        self.drop_sensitive = drop_sensitive
        self.verbose = verbose
        self.device = device
        self.random_state = random_state

    # ------------------------------------------------------------------ hooks
    def _check_method_params(self):
        if self.upper_weighting in ("convex", "reference") and self.lambda_up > 1:
            raise ValueError(
                f"lambda_up={self.lambda_up} must be in [0, 1] with "
                f"upper_weighting={self.upper_weighting!r} (a convex weight); lower it or "
                f"use upper_weighting='paper'."
            )

    def _uses_validation_data(self):
        # the upper level always needs validation rows: X_val replaces the internal split
        return True

    def _lr_hint(self):
        return (f"lr_post={self.lr_post}, lr_prior={self.lr_prior}, "
                f"lr_hyper={self.lr_hyper}, neumann_lr={self.neumann_lr}")

    def _n_outputs(self):
        return len(self.classes_)

    def _build_module(self, n_features, n_outputs):
        hidden = self.hidden_layer_sizes
        hidden = (hidden,) if isinstance(hidden, int) else tuple(hidden)
        gen = torch.Generator()
        gen.manual_seed(int(self._rng.integers(0, 2**63 - 1)))
        return _FACIMSNet(n_features, hidden, n_outputs, self.n_groups_, self.n_mc,
                          self.activation, tuple(self.logvar_init), gen)

    def _proba_tensor(self, x, logits=None):
        """Mean over the stored weight samples of the softmax outputs, (n, n_classes)."""
        net = self.module_
        out = sampled_forward(x, net.prior.parameter_list(), net.zetas(), act=net.prior.act,
                              eps_std=self.eps_std_predict_)
        if self.output_sigmoid:
            out = torch.sigmoid(out)
        return torch.softmax(out, dim=-1).mean(0)

    def _forward(self, x):
        """Log of the Monte Carlo averaged probabilities (softmax logits of the mixture)."""
        return torch.log(self._proba_tensor(x).clamp_min(torch.finfo(torch.float32).tiny))

    # ------------------------------------------------------------------ data helpers
    def _split_train_validation(self, data):
        """Stratified (group x class) split; every stratum keeps >= 1 training row."""
        y = data.y.detach().cpu().numpy()
        g = data.g.detach().cpu().numpy()
        strata = g * len(self.classes_) + y
        val = np.zeros(len(y), dtype=bool)
        for s in np.unique(strata):
            rows = np.flatnonzero(strata == s)
            k = min(int(math.floor(self.validation_fraction * len(rows) + 0.5)), len(rows) - 1)
            if k > 0:
                val[self._rng.permutation(rows)[:k]] = True
        tr_idx = np.flatnonzero(~val)
        va_idx = np.flatnonzero(val) if val.any() else tr_idx  # tiny data: validate on T

        def subset(idx):
            t = torch.as_tensor(idx, dtype=torch.long, device=data.device)
            b = data.batch(t)
            return TensorData(b.x, b.y, b.g, b.w, n_groups=data.n_groups)

        return subset(tr_idx), subset(va_idx), int(val.sum())

    def _class_weights(self, data):
        K = len(self.classes_)
        w = torch.ones_like(data.y, dtype=torch.float32) if data.w is None else data.w
        counts = torch.zeros(K, device=data.device).index_add(0, data.y, w)
        omega = torch.where(counts > 0, counts.sum() / counts.clamp_min(1e-12),
                            torch.zeros_like(counts))
        return omega / torch.linalg.vector_norm(omega)

    def _sam_radii(self, data):
        if not self.sam:
            return None
        G = self.n_groups_
        rho = self.sam_rho
        if isinstance(rho, str) and rho == "label_order":
            radii = 5e-5 * 10.0 ** np.arange(G)
        elif isinstance(rho, str):  # inverse_frequency
            w = torch.ones_like(data.g, dtype=torch.float32) if data.w is None else data.w
            mass = torch.zeros(G, device=data.device).index_add(0, data.g, w)
            mass = mass.detach().cpu().numpy().astype(np.float64)
            radii = SAM_RHO_MAX * mass.min() / mass
        elif np.ndim(rho) == 0:
            radii = np.full(G, float(rho))
        else:
            radii = np.asarray(rho, dtype=np.float64)
            if radii.shape != (G,):
                raise ValueError(
                    f"sam_rho has {radii.size} radii but the data have {G} groups "
                    f"({list(self.groups_)}); pass one radius per group in that order, a "
                    f"single float, or 'inverse_frequency'."
                )
        return radii

    def _group_batch(self, data, rows, active):
        """Padded per-group batch: x (A, m, d), y (A, m), row weights w (A, m)."""
        bs = self.group_batch_size
        picked = []
        for a in active:
            r = rows[a]
            if len(r) > bs:
                r = r[torch.randperm(len(r), generator=self._gen, device=data.device)[:bs]]
            picked.append(r)
        m = max(len(r) for r in picked)
        pos = torch.arange(m, device=data.device)
        idx = torch.stack([torch.cat([r, r[:1].expand(m - len(r))]) for r in picked])
        mask = torch.stack([(pos < len(r)).to(torch.float32) for r in picked])
        w = mask if data.w is None else data.w[idx] * mask
        return data.X[idx], data.y[idx], w

    # ------------------------------------------------------------------ training
    def _fit_torch(self, train, val):
        net = self.module_
        dev = self.device_
        if val is None:
            T, V, n_val = self._split_train_validation(train)
        else:  # X_val given to fit (the paper's protocol): T = all of X, V = X_val
            T, V, n_val = train, val, len(val)
        self.n_train_rows_, self.n_validation_rows_ = len(T), n_val
        omega = self._class_weights(T)
        omega_up = omega if self.upper_class_weight == "training" else self._class_weights(V)
        radii = self._sam_radii(T)
        self.sam_rho_ = radii
        rho_t = (None if radii is None else
                 torch.as_tensor(radii, dtype=torch.float32, device=dev))
        rows = T.group_indices()
        G = self.n_groups_
        S = self.n_mc
        S_h = self.n_mc_hyper            # 0: mean network in the implicit gradient
        S_val = max(1, S_h)
        act_fn = net.prior.act
        eps_std = float(self.eps_std)
        lam_low = float(self.lambda_low)
        lam = float(self.lambda_up)
        w_val, w_dir, w_ind, w_v = {
            "paper": (1.0, lam, lam, lam),
            "convex": (lam, 1.0 - lam, 1.0 - lam, 1.0 - lam),
            "reference": (lam * lam, lam * (1.0 - lam), 1.0 - lam, 1.0),
        }[self.upper_weighting]
        div_name = self.divergence
        # parameters the lower VS loss of the upper-level graphs depends on: all, or only
        # the means (w_mu, b_mu of each layer) for the mean network (n_mc_hyper=0)
        curved = None if (S_h > 0 and eps_std > 0) else [
            i for i in range(len(net.posts.parameter_list())) if i % 2 == 0]

        prior = net.prior.parameter_list()
        posts = net.posts.parameter_list()
        hyper = [net.dy, net.ly] if self.learn_loss_params else []
        opt_post = torch.optim.Adagrad(posts, lr=self.lr_post)
        opt_prior = torch.optim.Adagrad(prior, lr=self.lr_prior)
        opt_hyper = (torch.optim.SGD(hyper, lr=self.lr_hyper, momentum=HYPER_MOMENTUM,
                                     weight_decay=HYPER_WEIGHT_DECAY) if hyper else None)
        schedulers = [
            torch.optim.lr_scheduler.MultiStepLR(
                opt_post, milestones=[max(1, self.max_epochs // 2)], gamma=POST_LR_DROP),
            torch.optim.lr_scheduler.ExponentialLR(opt_prior, gamma=self.prior_lr_decay),
        ]

        def noisy(params):
            if self.prior_noise == 0:
                return list(params)
            return [p + self.prior_noise * torch.randn(p.shape, generator=self._gen,
                                                       device=dev, dtype=p.dtype)
                    for p in params]

        def lower_vs(Q, batch, scale, shift, noise=None, eps=eps_std):
            """Per-group VS loss averaged over the Monte Carlo copies in ``batch``: (A,).

            ``batch = (x, y, w)`` holds each group's rows repeated once per pass."""
            xr, yr, wr = batch
            out = gaussian_forward(xr, Q, act=act_fn, eps_std=eps, generator=self._gen,
                                   noise=noise)
            if self.output_sigmoid:
                out = torch.sigmoid(out)
            return vs_loss(out, yr, scale=scale, shift=shift, class_weight=omega, weight=wr)

        def select(params, act_idx):
            """The active groups' rows of stacked per-group parameters (None: all)."""
            if act_idx is None:
                return list(params)
            return [q.index_select(0, act_idx) for q in params]

        def lower_grads(P, batch, scale, shift, noise, act_idx):
            """Gradients of the per-group lower losses for all of ``posts`` (zero rows
            for inactive groups); the divergence part in closed form."""
            Q = select(posts, act_idx)
            L_vs = lower_vs(Q, batch, scale, shift, noise)
            grads = torch.autograd.grad(L_vs.sum(), posts)
            gq = divergence_grad(div_name, [q.detach() for q in Q], P)
            if act_idx is None:
                for g, d in zip(grads, gq, strict=True):
                    g.add_(d, alpha=lam_low)
            else:
                grads = [g.index_add(0, act_idx, d, alpha=lam_low)
                         for g, d in zip(grads, gq, strict=True)]
            return grads

        def repeat(batch, n_pass):
            xb, yb, wb = batch
            return xb.repeat(1, n_pass, 1), yb.repeat(1, n_pass), wb.repeat(1, n_pass)

        n_v = len(V)
        vbs = n_v if self.val_batch_size is None else min(n_v, self.val_batch_size)

        def upper_loss(P):
            if vbs < n_v:
                idx = torch.randperm(n_v, generator=self._gen, device=dev)[:vbs]
                b = V.batch(idx)
                x, y, g, w = b.x, b.y, b.g, b.w
            else:
                x, y, g, w = V.X, V.y, V.g, V.w
            out = gaussian_forward(x.repeat(S_val, 1), P, act=act_fn, eps_std=eps_std,
                                   generator=self._gen)[0]
            if self.output_sigmoid:
                out = torch.sigmoid(out)
            yr = y.repeat(S_val)
            per_row = -torch.log_softmax(out, dim=-1).gather(1, yr[:, None])[:, 0]
            rw = omega_up[yr] if w is None else omega_up[yr] * w.repeat(S_val)
            if self.validation_aggregation == "pooled":
                return weighted_mean(per_row, rw)
            means, totals = group_means(per_row, g.repeat(S_val), G, weight=rw)
            return means[totals > 0].mean()

        def scale_shift(detach):
            scale, shift = torch.sigmoid(net.dy), net.ly
            return (scale.detach(), shift.detach()) if detach else (scale, shift)

        def set_grads(params, flat):
            for p, g in zip(params, unflatten_like(flat, params), strict=True):
                p.grad = g.detach().clone()

        def epoch(_batch):
            if self.groups_per_epoch is None or self.groups_per_epoch >= G:
                active = list(range(G))
            else:
                active = sorted(self._rng.choice(G, size=self.groups_per_epoch,
                                                 replace=False).tolist())
            act_idx = (None if len(active) == G else
                       torch.as_tensor(active, dtype=torch.long, device=dev))

            batch = self._group_batch(T, rows, active)
            batch_mc, batch_h = repeat(batch, S), repeat(batch, max(1, S_h))

            # lower / middle level: (SAM-)Adagrad on each group's distribution
            scale, shift = scale_shift(detach=True)
            for _ in range(self.inner_steps):
                with torch.no_grad():
                    P = noisy(prior)
                noise = draw_noise(batch_mc[0], posts, self._gen) if eps_std > 0 else None
                grads = lower_grads(P, batch_mc, scale, shift, noise, act_idx)
                if radii is not None:
                    saved = [q.detach().clone() for q in posts]
                    # every group's SAM step rho_a g_a / ||g_a|| at once (inactive
                    # groups have zero gradients, hence zero steps)
                    sam_perturb_(posts, grads, rho_t)
                    grads = lower_grads(P, batch_mc, scale, shift, noise, act_idx)
                    with torch.no_grad():
                        for q, s in zip(posts, saved, strict=True):
                            q.copy_(s)
                for q, g in zip(posts, grads, strict=True):
                    q.grad = g
                opt_post.step()

            # upper level: global distribution (and v) by the implicit gradient
            for j in range(self.outer_steps):
                if j == 0 or not self.stale_graph:
                    Q = select(posts, act_idx)
                    scale, shift = scale_shift(detach=not hyper)
                    L_vs = lower_vs(Q, batch_h, scale, shift,
                                    eps=eps_std if S_h > 0 else 0.0)
                    # the mean network's loss does not depend on the log-variances:
                    # differentiate w.r.t. the means only (``curved``)
                    g_vs = flat_grad(L_vs.sum(), Q if curved is None else
                                     [Q[i] for i in curved], create_graph=True)
                with torch.no_grad():
                    Pn = noisy(prior)
                D, gq, gp, hq, mixed = divergence_derivatives(
                    div_name, [q.detach() for q in Q], Pn)
                D_mean = D.mean()
                u_q = flatten(gq) / len(active)
                u_p = flatten(gp) / len(active)
                val_loss = upper_loss(prior)
                g_val = flat_grad(val_loss, prior)
                mixed_p, mixed_v = implicit_gradients(
                    g_vs, Q, hyper, u_q, div_hess=flatten(hq),
                    div_mixed=lambda v, Q=Q, mixed=mixed: flatten(mixed(unflatten_like(v, Q))),
                    lambda_low=lam_low, n_terms=self.neumann_terms, alpha=self.neumann_lr,
                    retain_graph=self.stale_graph, curved=curved, stacked=True)
                g_prior = w_val * g_val + w_dir * u_p - w_ind * mixed_p
                opt_prior.zero_grad(set_to_none=True)
                set_grads(prior, g_prior)
                opt_prior.step()
                if hyper:
                    opt_hyper.zero_grad(set_to_none=True)
                    set_grads(hyper, -w_v * mixed_v)
                    opt_hyper.step()
                L = L_vs.detach() + lam_low * D
            return {"lower": L.detach().mean(), "val_loss": val_loss.detach(),
                    "divergence": D_mean.detach()}

        empty = torch.zeros(0, dtype=torch.long, device=dev)
        self._train(epoch, train, sampler=lambda _epoch: [empty], schedulers=schedulers,
                    early_stopping=False)

        # prediction samples, drawn once from the fit's generator
        with torch.no_grad():
            for z in net.zetas():
                z.copy_(torch.randn(z.shape, generator=self._gen, device=dev))
        self.eps_std_predict_ = float(self.eps_std if self.eps_std_predict is None
                                      else self.eps_std_predict)
        self.class_weight_ = omega.detach().cpu().numpy().astype(np.float64)
        self.upper_class_weight_ = omega_up.detach().cpu().numpy().astype(np.float64)
        self.loss_scale_ = torch.sigmoid(net.dy).detach().cpu().numpy().astype(np.float64)
        self.loss_shift_ = net.ly.detach().cpu().numpy().astype(np.float64)
