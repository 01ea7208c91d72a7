"""FairPruningClassifier: bi-level fair pruning (BiFP, Dai et al.) of an MLP.

Three phases, each its own run of the shared engine (so an interrupt keeps a usable,
already pruned model):

1. **dense pre-training** (``pretrain_epochs``): ``min_theta CE(f_theta)`` (plus the
   fairness penalty for ``pruning="fair_then_prune"``);
2. **pruning** (``max_epochs``). For ``pruning="bilevel"``, alternately on two
   independent mini-batches per iteration::

       lower (weights):  theta <- theta - lr * grad_theta [CE + lambda F](m(s) * theta)
       upper (scores):   g_s = grad_s L - implicit_lr * grad_s L * grad_theta L
                         s <- s - score_lr * g_s          (SGD with momentum)

   where ``m(s)`` is the binary top-k mask of the scores ``s`` (straight-through
   gradient), ``L = CE + lambda F`` on the second batch and ``F`` the fairness
   penalty: BiFP's smooth accuracy-parity gap
   (:func:`~skfairbilevel.nn.losses.accuracy_parity_loss`) or a group-parity penalty
   on the predicted probabilities (:func:`~skfairbilevel.nn.losses.fairness_loss`;
   demographic parity by default). The baselines prune once by weight magnitude and
   fine-tune instead;
3. **fine-tuning** (``finetune_epochs``) of the surviving weights with the mask fixed.
"""

import numpy as np
import torch
from numpy.typing import ArrayLike

from .._groups import encode_groups
from .._params import check_sample_weight, layer_sizes, number, one_of
from ..base import BaseFairEstimator, EpochTrainingMixin, FairClassifierMixin
from ..nn.engine import Scores, descend, paired_batches
from ..nn.losses import (
    FAIRNESS_LOSSES,
    accuracy_parity_loss,
    cross_entropy_loss,
    fairness_loss,
    group_means,
    labels_from_logits,
    proba_from_logits,
)
from ..nn.masked import MaskedMLP, compact_mlp, implicit_score_gradient, load_dense_
from ..nn.modules import ACTIVATIONS, layer_widths
from ..nn.optim import make_adam

__all__ = ["FairPruningClassifier"]

PRUNING_OPTIONS = ("bilevel", "magnitude", "prune_then_fair", "fair_then_prune")
PRUNING_FAIRNESS = (*FAIRNESS_LOSSES, "accuracy_parity")

#: widths of the structured prediction network are rounded up to a multiple of this
#: (inert zero units): matrix-product kernels process output columns in SIMD-width
#: blocks, so e.g. 19 units cost more than 24 (benchmarks/results/pruning.md)
UNIT_ALIGN = 8


class FairPruningClassifier(FairClassifierMixin, EpochTrainingMixin, BaseFairEstimator):
    """MLP classifier pruned to a given sparsity by bi-level fair pruning (BiFP).

    The masks of the network's Linear layers are chosen, together with the weights, so
    that the pruned model stays accurate *and* fair: the weights are the lower level
    and the mask scores the upper level of a bi-level problem, both with a
    differentiable fairness penalty, by default demographic parity (``fairness``);
    BiFP's accuracy-parity penalty ("performance fairness") is
    ``fairness="accuracy_parity"``. The classical pipelines are available in the
    same estimator for comparison (``pruning=``). Binary and multi-class.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(64, 64)
        Widths of the hidden layers.
    activation : str, default="relu"
        Hidden activation: "relu", "tanh", "elu", "softplus", "leaky_relu", "gelu", ...
    sparsity : float in [0, 1), default=0.7
        Fraction removed: of all Linear weights (one global top-k; biases are kept) or,
        with ``structured=True``, of the hidden units of each hidden layer. The fitted
        model removes exactly ``round(sparsity * n)`` of them (``sparsity_``).
    structured : bool, default=False
        Prune whole hidden units (a unit's incoming weights, bias and outgoing weights)
        instead of single weights. The fitted network is then physically smaller (``model_``), so
        prediction is faster.
    pruning : {"bilevel", "magnitude", "prune_then_fair", "fair_then_prune"}, default="bilevel"
        - "bilevel": BiFP, masks and weights trained jointly with the fairness penalty
          on both levels, then fine-tuning with the penalty;
        - "magnitude": one-shot magnitude pruning of the dense model, fine-tuned on the
          plain loss (fairness-unaware);
        - "prune_then_fair" (P&F): magnitude pruning, then fine-tuning with the penalty;
        - "fair_then_prune" (F&P): dense training with the penalty, then magnitude
          pruning and plain fine-tuning.

        The baselines fine-tune for ``max_epochs + finetune_epochs`` epochs, the same
        number of epochs as bilevel's pruning plus fine-tuning phases.
    fairness : {"demographic_parity", "equalized_odds", "equal_opportunity", \
"accuracy_parity"}, default="demographic_parity"
        The penalty F: the squared deviations of the per-group mean predicted
        probability (of positives, and of negatives for equalized odds) from the
        overall one (:func:`~skfairbilevel.nn.losses.fairness_loss`), or BiFP's smooth
        accuracy-parity gap ("accuracy_parity", which targets the accuracy gap between
        groups, not demographic parity).
    fairness_weight : float, default=5.0
        The fairness trade-off knob: weight lambda of the penalty, larger is fairer
        (sensible range 0.3-30 with the group-parity penalties, 0.1-2 with
        "accuracy_parity"); 0: fairness-unaware pruning. The default was chosen on
        Adult validation data (demographic parity -72% at -1.3 accuracy points
        against the unaware model; see the user guide).
    temperature : float, default=0.5
        ``fairness="accuracy_parity"`` only: temperature T of the smooth accuracy
        ``sigmoid(margin / T)`` in the penalty; smaller is closer to the hard accuracy
        gap but gives sparser gradients.
    lr : float, default=1e-3
        Adam learning rate of the weights (all phases; a fresh optimiser per phase).
    weight_decay : float, default=0.0
        Adam L2 penalty of the weights.
    score_lr : float, default=0.05
        Learning rate of the mask scores (SGD with momentum ``score_momentum``).
    score_momentum : float in [0, 1), default=0.9
    implicit_lr : float, default=1e-4
        Step size of the first-order implicit-gradient correction of the score gradient
        (BiP's ``lr2``); 0 drops the correction.
    pretrain_epochs : int, default=20
        Epochs of dense pre-training (0: prune the randomly initialised network).
    max_epochs : int, default=10
        Epochs of the pruning phase (bilevel: score and weight updates; baselines:
        fine-tuning of the magnitude-pruned network).
    finetune_epochs : int, default=5
        Epochs of fine-tuning with the masks fixed.
    batch_size : int, default=256
        Rows per mini-batch (the bilevel phase uses two batches per iteration).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows; each phase stops when the
        validation loss has not improved by ``tol`` for ``n_iter_no_change`` epochs and
        keeps its best epoch.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=10
    tol : float, default=1e-4
    sensitive_feature_ids : str, int or list, default=None
        Names or indices of columns of X holding the sensitive features (instead of the
        ``sensitive_features`` argument of ``fit``).
    drop_sensitive : bool, default=True
        With ``sensitive_feature_ids``: whether those columns are removed from the
        model's inputs.
    warm_start : bool, default=False
        Reuse the dense pre-trained network of the previous ``fit`` (same architecture,
        data width and pre-training settings) and skip pre-training: handy to prune one
        dense model at several sparsities or with several strategies, as BiP does.
    verbose : int, default=0
        1 shows a progress bar per phase.
    device : str, default="cpu"
        "cpu", "cuda", "cuda:<i>" or "auto".
    random_state : int, RandomState, Generator or None, default=None
        Seeds the initial weights and the batches; the only source of randomness.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    groups_ : ndarray
        Group labels seen in fit (``[None]`` without sensitive features).
    n_groups_ : int
    fairness_aware_ : bool
        Whether the penalty could be used (False without sensitive features).
    sparsity_ : float
        Achieved fraction of prunable weights (or hidden units) removed.
    masks_ : list of ndarray of bool
        Per Linear layer, shape (out_features, in_features): True where the weight is
        kept (with ``structured=True`` whole rows are False).
    units_kept_ : list of ndarray of int or None
        ``structured=True``: per hidden layer, the indices of the surviving units.
    dense_score_ : float
        Training accuracy of the dense pre-trained model (Definition 2's reference).
    module_ : MaskedMLP
        The training network: weights, scores and the binary masks.
    model_ : torch.nn.Sequential
        The pruned network used for prediction: masked weights baked in, removed units
        physically dropped when ``structured=True``. Each compacted hidden width is
        then rounded up to a multiple of 8 (at most the original width) with inert
        units (all their weights and their bias 0; the output is unchanged), because
        matrix-product kernels run faster on such widths; ``units_kept_`` lists the
        real units.
    dense_module_ : torch.nn.Sequential
        The dense pre-trained network (see :meth:`predict_dense`).
    history_ : list of dict
        One dict per epoch of every phase: ``phase`` ("pretrain", "prune", "finetune"),
        training losses, ``iterations`` and ``gradient_evaluations`` (cumulative weight
        updates and forward-backward passes since the start of the fit), validation
        metrics when early stopping (including ``val_accuracy_gap``), ``seconds``.
    n_iter_ : int
        Epochs run over all phases.
    n_features_in_, feature_names_in_
        As in scikit-learn.

    See Also
    --------
    FairMLPClassifier : the dense MLP with a group-fairness penalty.
    skfairbilevel.metrics.accuracy_parity_difference : Definition 1 on predictions.

    Notes
    -----
    BiFP has no public code; where the paper is silent the details follow the BiP
    reference implementation (Zhang et al. 2022). Masks apply to the Linear layers of an
    MLP; scores start at the weight magnitudes, so the first bilevel mask is the
    magnitude mask. Structured pruning gives each hidden unit one score and a binary
    gate after its activation, so a removed unit outputs 0 and still gets a gradient.
    The upper-level batch is a second, independent batch of the training rows.

    The differences from BiFP and BiP are listed in the user guide
    (:ref:`pruning-differences`).

    References
    ----------
    .. [1] Y. Dai, G. Li, F. Luo, X. Ma, Y. Wu. "Coupling Fairness and Pruning in a
       Single Run: a Bi-level Optimization Perspective." arXiv:2312.10181, 2023.
    .. [2] Y. Zhang, Y. Yao, P. Ram, P. Zhao, T. Chen, M. Hong, Y. Wang, S. Liu.
       "Advancing Model Pruning via Bi-level Optimization." NeurIPS 2022.

    Examples
    --------
    >>> from skfairbilevel import FairPruningClassifier
    >>> from skfairbilevel.datasets import make_biased_classification
    >>> X, y, A = make_biased_classification(500, random_state=0)
    >>> clf = FairPruningClassifier(sparsity=0.8, pretrain_epochs=10, max_epochs=5,
    ...                             random_state=0)
    >>> clf.fit(X, y, sensitive_features=A).sparsity_
    0.8
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    """

    _parameter_rules = {
        "hidden_layer_sizes": layer_sizes(),
        "activation": one_of(*ACTIVATIONS),
        "sparsity": number(
            0,
            1,
            high_open=True,
            hint=(
                "a float in [0, 1): the fraction of prunable weights (or hidden units) removed; "
                "1.0 would remove every weight, so use e.g. 0.98 for 2% kept"
            ),
        ),
        "structured": one_of(True, False),
        "pruning": one_of(*PRUNING_OPTIONS),
        "fairness": one_of(*PRUNING_FAIRNESS),
        "fairness_weight": number(0),
        "temperature": number(0, low_open=True),
        "lr": number(0, low_open=True),
        "weight_decay": number(0),
        "score_lr": number(0, low_open=True),
        "score_momentum": number(0, 1, high_open=True),
        "implicit_lr": number(0),
        "pretrain_epochs": number(0, integer=True),
        "finetune_epochs": number(0, integer=True),
    }

    def __init__(
        self,
        hidden_layer_sizes=(64, 64),
        *,
        activation="relu",
        sparsity=0.7,
        structured=False,
        pruning="bilevel",
        fairness="demographic_parity",
        fairness_weight=5.0,
        temperature=0.5,
        lr=1e-3,
        weight_decay=0.0,
        score_lr=0.05,
        score_momentum=0.9,
        implicit_lr=1e-4,
        pretrain_epochs=20,
        max_epochs=10,
        finetune_epochs=5,
        batch_size=256,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        sensitive_feature_ids=None,
        drop_sensitive=True,
        warm_start=False,
        verbose=0,
        device="cpu",
        random_state=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.sparsity = sparsity
        self.structured = structured
        self.pruning = pruning
        self.fairness = fairness
        self.fairness_weight = fairness_weight
        self.temperature = temperature
        self.lr = lr
        self.weight_decay = weight_decay
        self.score_lr = score_lr
        self.score_momentum = score_momentum
        self.implicit_lr = implicit_lr
        self.pretrain_epochs = pretrain_epochs
        self.max_epochs = max_epochs
        self.finetune_epochs = finetune_epochs
        self.batch_size = batch_size
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.sensitive_feature_ids = sensitive_feature_ids
        self.drop_sensitive = drop_sensitive
        self.warm_start = warm_start
        self.verbose = verbose
        self.device = device
        self.random_state = random_state

    _learning_rates = ("lr", "score_lr")
    # the steps read batch.x only through the network's first (masked) Linear layer
    _sparse_batches = True

    # ------------------------------------------------------------------ hooks
    def _check_method_params(self):
        if self.structured and not layer_widths(self.hidden_layer_sizes) and self.sparsity > 0:
            raise ValueError(
                "structured=True prunes hidden units, but hidden_layer_sizes is empty (a "
                "linear model has none); give hidden layers, or use structured=False."
            )

    def _uses_groups(self):
        return self.pruning != "magnitude" and self.fairness_weight > 0

    def _build_module(self, n_features, n_outputs):
        return MaskedMLP(
            n_features,
            layer_widths(self.hidden_layer_sizes),
            n_outputs,
            sparsity=self.sparsity,
            structured=self.structured,
            activation=self.activation,
            generator=self._init_generator(),
        )

    def _warm_start_key(self, n_features):
        """The dense pre-trained network is reused when its training is unchanged."""
        fair_pre = (
            self.pruning == "fair_then_prune" and self.fairness_aware_ and self.fairness_weight > 0
        )
        return (
            n_features,
            self._n_outputs(),
            layer_widths(self.hidden_layer_sizes),
            self.activation,
            self.pretrain_epochs,
            self.lr,
            self.weight_decay,
            self.batch_size,
            self.random_state if isinstance(self.random_state, int) else None,
            (self.fairness, self.fairness_weight, self.temperature) if fair_pre else None,
        )

    def _forward(self, x):
        model = getattr(self, "model_", None)
        return self.module_(x) if model is None else model(x)

    # ------------------------------------------------------------------ training
    def _fit_torch(self, train, val):
        self.__dict__.pop("model_", None)
        self._iterations, self._evaluations = 0, 0
        net = self.module_
        reuse = getattr(net, "fitted", False)  # warm start: the last fit's network is kept
        net.sparsity = float(self.sparsity)
        net.structured = bool(self.structured)
        net.mode = "dense"
        if reuse:
            self.history_ = []
            load_dense_(net, self.dense_module_)
        else:
            self._plain_phase(
                "pretrain", train, val, self.pretrain_epochs, fair=self.pruning == "fair_then_prune"
            )
            self.dense_module_ = compact_mlp(net, dense=True)
        self.dense_score_ = self._accuracy(self.dense_module_, train)

        if self.pruning == "bilevel" and not self.interrupted_:
            self._bilevel_phase(train, val, self.max_epochs)
            self._plain_phase("finetune", train, val, self.finetune_epochs, fair=True)
        else:
            net.init_scores_()
            net.freeze_()
            fair = self.pruning == "prune_then_fair"
            self._plain_phase(
                "finetune", train, val, self.max_epochs + self.finetune_epochs, fair=fair
            )
        if net.mode != "fixed":  # interrupted before the masks were set
            net.init_scores_()
            net.freeze_()
        self._finalize()

    def _objective(self, fair):
        """``(x, y, g, w) -> (loss, parts)``: the network's CE on the rows plus, when
        ``fair`` (and groups are known), lambda times the fairness penalty."""
        penalised = fair and self.fairness_aware_ and self.fairness_weight > 0
        lam, temp, n_groups = float(self.fairness_weight), float(self.temperature), self.n_groups_
        name = self.fairness

        def penalty(logits, y, g, w):
            if name == "accuracy_parity":
                return accuracy_parity_loss(logits, y, g, n_groups, w, temperature=temp)
            return fairness_loss(name, proba_from_logits(logits), y, g, n_groups, w)

        def objective(x, y, g, w):
            logits = self.module_(x)
            ce = cross_entropy_loss(logits, y, w)
            if not penalised:
                return ce, {"ce": ce}
            gap = penalty(logits, y, g, w)
            return ce + lam * gap, {"ce": ce, "fairness": gap}

        return objective

    def _weight_optimizer(self):
        return make_adam(self.module_.weights(), lr=self.lr, weight_decay=self.weight_decay)

    def _run_phase(self, phase, step, data, val, epochs, *, sampler=None, evaluations_per_batch=1):
        """One phase through the engine; each epoch records the phase and the
        cumulative weight updates and gradient evaluations of the fit."""
        if epochs <= 0 or self.interrupted_:
            return
        n_batches = -(-len(data) // max(1, min(self.batch_size, len(data))))

        def counts(record):
            self._iterations += n_batches
            self._evaluations += evaluations_per_batch * n_batches
            return {
                "phase": phase,
                "iterations": self._iterations,
                "gradient_evaluations": self._evaluations,
            }

        self._train_epochs(
            step,
            data,
            val,
            sampler=sampler,
            max_epochs=epochs,
            callbacks=[Scores(counts)],
            desc=f"{type(self).__name__} [{phase}]",
        )

    def _plain_phase(self, phase, data, val, epochs, fair):
        """Train the weights (masks as set in the module) on CE [+ lambda F]."""
        if epochs <= 0 or self.interrupted_:
            return
        objective = self._objective(fair)
        opt = self._weight_optimizer()
        params = self.module_.weights()

        def step(b):
            loss, parts = objective(b.x, b.y, b.g, b.w)
            descend(loss, opt, params)
            return {"loss": loss, **parts}

        self._run_phase(phase, step, data, val, epochs)

    def _bilevel_phase(self, data, val, epochs):
        """Weights (lower) and mask scores (upper) on two independent batches each
        iteration: each index batch holds the lower rows, then the upper rows."""
        net = self.module_
        objective = self._objective(True)
        weights, scores = net.weights(), net.scores()
        implicit_weights = [layer.weight for layer in net.prunable]
        opt_w = self._weight_optimizer()
        opt_s = torch.optim.SGD(scores, lr=self.score_lr, momentum=self.score_momentum)
        lr2 = float(self.implicit_lr)

        def step(b):
            m = b.idx.shape[0] // 2
            lo, up = b.part(0, m), b.part(m, 2 * m)
            loss_w, _ = objective(lo.x, lo.y, lo.g, lo.w)
            descend(loss_w, opt_w, weights)
            loss_s, parts = objective(up.x, up.y, up.g, up.w)
            grads = torch.autograd.grad(loss_s, scores + implicit_weights)
            g_s, g_theta = grads[: len(scores)], grads[len(scores) :]
            for s, gs, gt, theta in zip(scores, g_s, g_theta, implicit_weights, strict=True):
                s.grad = implicit_score_gradient(gs, gt, lr2, weight=theta.detach())
            opt_s.step()
            opt_s.zero_grad(set_to_none=True)
            return {"loss": loss_w, "upper_loss": loss_s, **parts}

        def sampler(epoch):
            return paired_batches(len(data), self.batch_size, self._gen, data.device)

        net.init_scores_()
        net.mode = "scores"
        try:
            self._run_phase(
                "prune", step, data, val, epochs, sampler=sampler, evaluations_per_batch=2
            )
        finally:
            net.freeze_()

    def _finalize(self):
        net = self.module_
        net.mode = "fixed"
        self.sparsity_ = net.achieved_sparsity()
        self.masks_ = [layer.weight_mask.detach().cpu().numpy() > 0.5 for layer in net.layers]
        self.units_kept_ = (
            [np.flatnonzero(layer.unit_mask.detach().cpu().numpy() > 0.5) for layer in net.prunable]
            if net.structured
            else None
        )
        self.model_ = compact_mlp(net, align=UNIT_ALIGN)
        net.fitted = True
        for attr in ("_iterations", "_evaluations"):
            self.__dict__.pop(attr, None)

    @torch.no_grad()
    def _validation_metrics(self, val):
        out = super()._validation_metrics(val)
        if self.n_groups_ > 1:
            was = self.module_.training
            self.module_.eval()
            correct = (labels_from_logits(self._outputs(val)) == val.y).float()
            self.module_.train(was)
            means, totals = group_means(correct, val.g, self.n_groups_, val.w)
            present = means[totals > 0]
            out["val_accuracy_gap"] = (
                float(present.max() - present.min()) if present.numel() > 1 else 0.0
            )
        return out

    # ------------------------------------------------------------------ public extras
    def predict_dense(self, X: ArrayLike) -> np.ndarray:
        """Class labels predicted by the dense pre-trained network (before pruning)."""
        X = self._validate_predict_X(X)
        P = self._predict_array(X, lambda x: proba_from_logits(self.dense_module_(x)))
        idx = (P > 0.5).astype(int) if P.ndim == 1 else np.argmax(P, axis=1)
        return self.classes_[idx]

    def degradation_fairness(
        self,
        X: ArrayLike,
        y: ArrayLike,
        *,
        sensitive_features: ArrayLike,
        sample_weight: ArrayLike | None = None,
    ) -> float:
        """BiFP's degradation fairness (Definition 3) on ``(X, y)``.

        With ``R_c = acc_c(dense) - acc_c(pruned)`` the accuracy lost to pruning in
        group ``c``, returns ``max_c R_c - min_c R_c`` (``|R_+ - R_-|`` for two groups).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sensitive_features : array-like of shape (n_samples,) or (n_samples, k)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        float
        """
        y = np.asarray(y)
        g, _ = encode_groups(sensitive_features, len(y), name="sensitive_features")
        w = check_sample_weight(sample_weight, len(y), x_name="y")
        w = np.ones(len(y)) if w is None else w
        lost = (self.predict_dense(X) == y).astype(float) - (self.predict(X) == y)
        per_group = [
            np.average(lost[g == c], weights=w[g == c]) for c in np.unique(g) if w[g == c].sum() > 0
        ]
        return float(max(per_group) - min(per_group)) if per_group else 0.0
