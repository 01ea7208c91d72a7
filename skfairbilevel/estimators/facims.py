"""FACIMSClassifier: fairness-aware class-imbalanced learning on multiple subgroups.

Tri-level Bayesian learning (Tarzanagh, Hou, Tong, Long, Shen et al., UAI 2023)::

    upper   min_{Z, v}  L_bal(Z; V) + lambda_up * mean_a D(Z^a*, Z)
    middle/lower, per group a:
            Z^a* = argmin_{Z^a} max_{||e|| <= rho_a}  L_vs(Z^a + e, v; T^a)
                                                      + lambda_low * D(Z^a, Z)

``Z`` is a global diagonal-Gaussian distribution over the weights of an MLP, ``Z^a`` one
per group, ``v`` the loss parameters of the vector-scaling (VS) loss, ``D`` the
divergence ("w2" or "kl"), ``T^a`` / ``V`` the group's training rows and the validation
rows. The global distribution predicts. The levels' tensor work is
:class:`skfairbilevel.nn.trilevel.TriLevelProblem`.
"""

import numpy as np
import torch

from .._params import any_of, array_of, layer_sizes, number, one_of, tuple_of
from ..base import BaseFairEstimator, FairClassifierMixin, holdout_by_strata
from ..nn.engine import LRSchedulers, draw_groups
from ..nn.gaussian import DIVERGENCES, sampled_forward
from ..nn.modules import ACTIVATIONS, layer_widths
from ..nn.trilevel import TriLevelNet, TriLevelProblem, balanced_class_weights

__all__ = ["FACIMSClassifier"]

#: largest radius of the ``sam_rho="inverse_frequency"`` rule (the smallest group's)
SAM_RHO_MAX = 0.05
#: SGD settings of the loss-parameter (hyper) optimiser, as in the reference code
HYPER_MOMENTUM = 0.9
HYPER_WEIGHT_DECAY = 5e-4
#: learning-rate factor of the local models at half of ``max_epochs`` (MultiStepLR)
POST_LR_DROP = 0.2


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
        ``upper_weighting``. Its effect is data-dependent: on Adult a larger value
        lowers balanced accuracy and leaves the sufficiency gap within seed noise; on
        German credit it lowers the gap (validation numbers in the user guide).
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
    ``predict_proba`` averages the softmax outputs of ``n_mc`` weight samples
    ``mu + eps_std_predict * sigma * zeta_k`` of the global distribution, with ``zeta_k``
    drawn once at the end of ``fit`` from the fit's generator: predictions are
    reproducible and each row's output is independent of the other rows.

    An epoch costs ``inner_steps`` sharpness-aware steps (two forward/backward passes of
    ``n_mc`` copies of every group batch) and ``outer_steps`` upper steps of
    ``neumann_terms`` Hessian-vector products each, for all groups at once (the group
    networks are stacked and run as batched matrix products).

    The differences from the paper and the reference code (``PennShenLab/FACIMS``), and
    the choice of the defaults, are listed in the user guide
    (:ref:`facims-differences`).

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
        "logvar_init": any_of(
            tuple_of(number(), number(0)), hint="a pair (mean, std) of finite floats with std >= 0"
        ),
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
        "sam_rho": any_of(
            one_of("inverse_frequency", "label_order"),
            number(0),
            array_of(number(0)),
            hint='"inverse_frequency", "label_order", a float >= 0 or an array of floats >= 0',
        ),
        "learn_loss_params": one_of(True, False),
        "neumann_terms": number(0, integer=True),
        "neumann_lr": number(0, low_open=True),
        "max_epochs": number(1, integer=True),
        "validation_fraction": number(0, 1, low_open=True, high_open=True),
        "upper_class_weight": one_of("training", "validation"),
        "validation_aggregation": one_of("pooled", "per_group"),
        "val_batch_size": any_of(number(1, integer=True), one_of(None)),
        "groups_per_epoch": any_of(number(1, integer=True), one_of(None)),
        "stale_graph": one_of(True, False),
        "output_sigmoid": one_of(True, False),
    }

    def __init__(
        self,
        hidden_layer_sizes=(400, 200, 100),
        *,
        activation="elu",
        n_mc=5,
        n_mc_hyper=0,
        eps_std=0.08,
        eps_std_predict=None,
        logvar_init=(0.01, 0.01),
        divergence="w2",
        prior_noise=1e-3,
        lambda_low=0.7,
        lambda_up=0.7,
        upper_weighting="paper",
        inner_steps=10,
        outer_steps=5,
        group_batch_size=50,
        max_epochs=50,
        lr_post=0.1,
        lr_prior=0.01,
        prior_lr_decay=0.9,
        lr_hyper=1e-3,
        sam=True,
        sam_rho="inverse_frequency",
        learn_loss_params=True,
        neumann_terms=10,
        neumann_lr=0.1,
        validation_fraction=0.3,
        upper_class_weight="training",
        validation_aggregation="pooled",
        val_batch_size=1024,
        groups_per_epoch=None,
        stale_graph=False,
        output_sigmoid=False,
        sensitive_feature_ids=None,
        drop_sensitive=True,
        verbose=0,
        device="cpu",
        random_state=None,
    ):
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

    _learning_rates = ("lr_post", "lr_prior", "lr_hyper", "neumann_lr")

    # ------------------------------------------------------------------ hooks
    def _check_method_params(self):
        if self.upper_weighting in ("convex", "reference") and self.lambda_up > 1:
            raise ValueError(
                f"lambda_up={self.lambda_up} must be in [0, 1] with "
                f"upper_weighting={self.upper_weighting!r} (a convex weight); lower it or "
                f"use upper_weighting='paper'."
            )

    def _uses_validation(self):
        return True  # the upper level's rows: X_val, or held out from X

    def _validation_split(self, rows):
        """``validation_fraction`` of each (group, class) stratum, each keeping at least
        one training row; drawn after the initial weights."""
        y, g = rows.y[rows.index], rows.g[rows.index]
        return holdout_by_strata(g * len(self.classes_) + y, self.validation_fraction, self._rng)

    def _n_outputs(self):
        return len(self.classes_)

    def _build_module(self, n_features, n_outputs):
        return TriLevelNet(
            n_features,
            layer_widths(self.hidden_layer_sizes),
            n_outputs,
            self.n_groups_,
            self.n_mc,
            self.activation,
            tuple(self.logvar_init),
            self._init_generator(),
        )

    def _proba_tensor(self, x, logits=None):
        """Mean over the stored weight samples of the softmax outputs, (n, n_classes)."""
        net = self.module_
        out = sampled_forward(
            x,
            net.prior.parameter_list(),
            net.zetas(),
            act=net.prior.act,
            eps_std=self.eps_std_predict_,
        )
        if self.output_sigmoid:
            out = torch.sigmoid(out)
        return torch.softmax(out, dim=-1).mean(0)

    def _forward(self, x):
        """Log of the Monte Carlo averaged probabilities (softmax logits of the mixture)."""
        return torch.log(self._proba_tensor(x).clamp_min(torch.finfo(torch.float32).tiny))

    def _step_work(self, n_rows):
        """The largest forward pass of a step goes through one network (the global
        model's means): the validation batch (``n_mc_hyper`` draws each) or a batch of
        every group (``n_mc`` draws each), not all rows through every group's model."""
        rows = max(
            min(n_rows, self.val_batch_size or n_rows) * max(1, self.n_mc_hyper),
            self.group_batch_size * self.n_mc * self.n_groups_,
        )
        return rows * sum(p.numel() for p in self.module_.prior.parameter_list()) // 2

    def _sam_radii(self, data):
        if not self.sam:
            return None
        G, rho = self.n_groups_, self.sam_rho
        if isinstance(rho, str) and rho == "label_order":
            return 5e-5 * 10.0 ** np.arange(G)
        if isinstance(rho, str):  # inverse_frequency
            w = torch.ones_like(data.g, dtype=torch.float32) if data.w is None else data.w
            mass = torch.zeros(G, device=data.device).index_add(0, data.g, w)
            mass = mass.detach().cpu().numpy().astype(np.float64)
            return SAM_RHO_MAX * mass.min() / mass
        if np.ndim(rho) == 0:
            return np.full(G, float(rho))
        radii = np.asarray(rho, dtype=np.float64)
        if radii.shape != (G,):
            raise ValueError(
                f"sam_rho has {radii.size} radii but the data have {G} groups "
                f"({list(self.groups_)}); pass one radius per group in that order, a "
                f"single float, or 'inverse_frequency'."
            )
        return radii

    # ------------------------------------------------------------------ training
    def _fit_torch(self, train, val):
        net, K = self.module_, len(self.classes_)
        T, V = train, (val if len(val) else train)  # no row could be held out: use T
        self.n_train_rows_, self.n_validation_rows_ = len(train), len(val)
        omega = balanced_class_weights(T, K)
        omega_up = omega if self.upper_class_weight == "training" else balanced_class_weights(V, K)
        self.sam_rho_ = radii = self._sam_radii(T)
        opt_post = torch.optim.Adagrad(net.posts.parameter_list(), lr=self.lr_post)
        opt_prior = torch.optim.Adagrad(net.prior.parameter_list(), lr=self.lr_prior)
        opt_hyper = (
            torch.optim.SGD(
                [net.dy, net.ly],
                lr=self.lr_hyper,
                momentum=HYPER_MOMENTUM,
                weight_decay=HYPER_WEIGHT_DECAY,
            )
            if self.learn_loss_params
            else None
        )
        problem = TriLevelProblem(
            net,
            T,
            V,
            optimizers=(opt_post, opt_prior, opt_hyper),
            generator=self._gen,
            class_weight=omega,
            upper_class_weight=omega_up,
            sam_radii=None
            if radii is None
            else torch.as_tensor(radii, dtype=torch.float32, device=self.device_),
            n_mc=self.n_mc,
            n_mc_hyper=self.n_mc_hyper,
            eps_std=self.eps_std,
            lambda_low=self.lambda_low,
            lambda_up=self.lambda_up,
            upper_weighting=self.upper_weighting,
            divergence=self.divergence,
            prior_noise=self.prior_noise,
            output_sigmoid=self.output_sigmoid,
            group_batch_size=self.group_batch_size,
            val_batch_size=self.val_batch_size,
            validation_aggregation=self.validation_aggregation,
            neumann_terms=self.neumann_terms,
            neumann_lr=self.neumann_lr,
        )
        schedulers = [
            torch.optim.lr_scheduler.MultiStepLR(
                opt_post, milestones=[max(1, self.max_epochs // 2)], gamma=POST_LR_DROP
            ),
            torch.optim.lr_scheduler.ExponentialLR(opt_prior, gamma=self.prior_lr_decay),
        ]

        def epoch(_):
            batch = problem.group_batch(
                draw_groups(self.n_groups_, self.groups_per_epoch, self._rng)
            )
            for _ in range(self.inner_steps):  # lower (and middle) level, every group
                problem.lower_step(batch)
            for j in range(self.outer_steps):  # upper level, by the implicit gradient
                if j == 0 or not self.stale_graph:
                    graph = problem.lower_graph(batch)
                record = problem.upper_step(graph, retain_graph=self.stale_graph)
            return record

        self._run(epoch, max_iter=self.max_epochs, callbacks=[LRSchedulers(schedulers)])
        problem.draw_prediction_samples()
        self.eps_std_predict_ = float(
            self.eps_std if self.eps_std_predict is None else self.eps_std_predict
        )
        self.class_weight_ = omega.detach().cpu().numpy().astype(np.float64)
        self.upper_class_weight_ = omega_up.detach().cpu().numpy().astype(np.float64)
        self.loss_scale_ = torch.sigmoid(net.dy).detach().cpu().numpy().astype(np.float64)
        self.loss_shift_ = net.ly.detach().cpu().numpy().astype(np.float64)
