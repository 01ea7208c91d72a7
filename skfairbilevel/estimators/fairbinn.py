"""FairBiNNClassifier: a leader/follower (Stackelberg) network for fair classification.

Yazdani-Jahromi et al., NeurIPS 2024. The network's parameters are split in two:

* the **leader** ``theta_a`` (the accuracy layers) descends the cross-entropy,
* the **follower** ``theta_f`` (a width-preserving fairness block inside the network)
  descends ``eta`` times a differentiable group-fairness penalty,

    upper level:  min_{theta_a}  CE(f(x; theta_a, theta_f*))
    lower level:  theta_f* in argmin_{theta_f}  eta * Fair(f(x; theta_a, theta_f))

and the two take alternating optimiser steps on every mini-batch. By default the
follower steps first and the leader's step also carries ``eta`` times the penalty's
gradient (the update of the reference code, in which ``eta`` is a working trade-off
knob); the paper's Algorithm 1 (leader first, the leader on CE only) is an option.
``mode="lagrangian"`` trains the same network with one optimiser on
``CE + eta * Fair`` (the paper's baseline).
"""

import torch
from sklearn.utils.validation import check_is_fitted

from .._params import layer_sizes, number, one_of
from .._pareto import pareto_front
from ..base import BaseFairEstimator, EpochTrainingMixin, FairClassifierMixin
from ..nn.engine import Scores, descend
from ..nn.leader_follower import ClosedFormFollower, LeaderFollowerNet
from ..nn.losses import (
    FAIRNESS_LOSSES,
    cross_entropy_loss,
    fairness_loss,
    proba_from_logits,
    repo_compat_dp_loss,
)
from ..nn.modules import ACTIVATIONS, layer_widths, make_mlp
from ..nn.optim import make_adam

__all__ = ["FairBiNNClassifier"]

UPDATE_ORDERS = ("leader_first", "follower_first", "simultaneous")


class FairBiNNClassifier(FairClassifierMixin, EpochTrainingMixin, BaseFairEstimator):
    """Fair Bilevel Neural Network (FairBiNN): leader/follower training of one MLP.

    The network is an MLP with ``hidden_layer_sizes`` (the leader's accuracy layers,
    theta_a) into which a width-preserving fairness block of ``fairness_layers``
    Linear + activation layers (the follower, theta_f) is inserted after
    ``fairness_position`` hidden layers. On every mini-batch the follower takes an
    optimiser step on ``eta`` times the fairness loss, then the leader one on the
    cross-entropy plus ``eta`` times the fairness loss (the reference code's update;
    ``update_order`` and ``leader_includes_fairness_grad`` select the paper's
    Algorithm 1, in which the leader descends the cross-entropy only).
    The network outputs logits; the sigmoid (softmax) is applied once, in the losses and
    in ``predict_proba``.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(64, 64)
        Widths of the accuracy (leader) hidden layers. May be empty.
    fairness_layers : int, default=1
        Number of Linear + activation layers in the fairness block (the paper's
        ablation: 1 is best on Adult, 3 on Health).
    fairness_position : int or None, default=None
        Number of hidden layers before the fairness block, in
        ``[0, len(hidden_layer_sizes)]``; the block's width is that layer's width (the
        number of features for 0). None: after the last hidden layer, right before the
        output layer (the position the paper's ablation found best). The reference
        code's 1-based ``fairness_layers_position`` p is ``fairness_position = p - 1``.
    activation : str, default="relu"
        Hidden activation of every layer, fairness block included: "relu", "tanh",
        "elu", "softplus", "leaky_relu", "gelu", "sigmoid", "identity".
    fairness : {"demographic_parity", "equalized_odds", "equal_opportunity"}, \
default="demographic_parity"
        The follower's loss: squared deviations of the per-group mean predicted
        probability (of positives, and of negatives for equalized odds) from the overall
        one, summed over all groups (:mod:`skfairbilevel.nn.losses`); correct for any
        number of groups. Multi-class targets: summed one-vs-rest over classes.
    eta : float, default=10.0
        The fairness trade-off knob: the weight of the fairness loss, larger is fairer
        (sensible range 0.3-30; 100 and more cost several accuracy points). With the
        default update (``update_order="follower_first"``,
        ``leader_includes_fairness_grad=True``, the reference code's) it weighs the
        penalty in the leader's step against the cross-entropy, and the follower
        descends ``eta * fairness``. With the paper's Algorithm 1
        (``update_order="leader_first"``, ``leader_includes_fairness_grad=False``) and
        the Adam follower eta has no effect: the follower's only loss is
        ``eta * fairness`` and Adam's steps do not depend on the scale of the loss; no
        follower-only setting gives a trade-off there (a follower strong enough to
        move the model drives it to a constant prediction; see the user guide). 0
        switches the follower off.
    mode : {"bilevel", "lagrangian"}, default="bilevel"
        "bilevel": two optimisers, alternating leader and follower steps. "lagrangian":
        the same network (same parameter count) trained by one optimiser with learning
        rate ``lr`` on ``CE + eta * fairness``.
    update_order : {"leader_first", "follower_first", "simultaneous"}, \
default="follower_first"
        Bilevel only. "follower_first": the follower steps first and the leader steps
        at the follower's new parameters (the reference code). "leader_first": per
        mini-batch the leader steps, then the follower steps at the leader's new
        parameters (the paper's Algorithm 1). "simultaneous": both step from
        the same forward pass at the current parameters (one forward pass per batch; a
        common cheaper variant of alternating gradient play).
    leader_includes_fairness_grad : bool, default=True
        Bilevel only. False: the leader descends the cross-entropy only (Algorithm 1).
        True (the default) is the reference code's update, which does not zero the
        gradients between
        the follower's and the leader's backward passes, so the leader also descends
        ``eta * fairness``: with "follower_first" its gradient is
        ``grad CE(theta_a, theta_f_new) + eta * grad Fair(theta_a, theta_f_old)``, as in
        the reference; with the other orders it is the gradient of ``CE + eta * Fair``
        at the leader's own forward pass.
    repo_compat_dp_loss : bool, default=False
        Use the reference code's demographic-parity loss instead of ``fairness``: double
        sigmoid and only group 0 (the first of ``groups_``, in sorted order) compared
        with the overall mean (:func:`repo_compat_dp_loss`), to reproduce the
        repository's numbers. Needs ``fairness="demographic_parity"`` and a binary
        target.
    lr : float, default=1e-3
        Learning rate of the leader (and of the single optimiser in "lagrangian" mode).
    fairness_lr : float, default=1e-5
        Learning rate of the follower (bilevel only).
    optimizer : {"adam", "sgd"}, default="adam"
        Optimiser of each player (plain SGD without momentum for "sgd").
    weight_decay : float, default=0.0
        L2 penalty of both optimisers.
    lr_gamma, fairness_lr_gamma : float in (0, 1], default=1.0
        Multiply ``lr`` (resp. ``fairness_lr``) by this factor every ``lr_step_size``
        epochs (``torch.optim.lr_scheduler.StepLR``); 1 keeps it constant. The
        reference code uses 0.5 and 0.9 every 50 epochs.
    lr_step_size : int, default=50
        Epochs between learning-rate decays.
    max_epochs : int, default=50
    batch_size : int, default=100
        The paper's Adult/Health settings (the reference CLI: 200 epochs, batch 200).
    record_validation : bool, default=False
        Hold out ``validation_fraction`` of the training rows (stratified by class) and
        record validation loss, accuracy, hard and soft demographic parity and hard
        equalized odds in ``history_`` every epoch, without stopping early. Choose
        fairness trade-offs on these numbers (see :meth:`pareto_epochs`), never on test
        data. ``early_stopping=True`` records them too.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows and stop when the validation loss
        has not improved by ``tol`` for ``n_iter_no_change`` epochs, keeping the best
        epoch's weights.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=10
    tol : float, default=1e-4
    sensitive_feature_ids : str, int or list, default=None
        Names or indices of columns of X holding the sensitive features (instead of the
        ``sensitive_features`` argument of ``fit``).
    drop_sensitive : bool, default=True
        With ``sensitive_feature_ids``: remove those columns from the model's inputs
        (True) or also use them as features (False; the reference code keeps sex as a
        feature).
    warm_start : bool, default=False
        Continue from the fitted weights on the next ``fit`` (optimiser state restarts).
    verbose : int, default=0
    device : str, default="cpu"
        "cpu", "cuda", "cuda:<i>" or "auto".
    random_state : int, RandomState, Generator or None, default=None
        Seeds the initial weights, the validation split and the shuffling.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    groups_ : ndarray
        Group labels seen in fit (``[None]`` without sensitive features); group ids
        follow this (sorted) order.
    n_groups_ : int
    fairness_aware_ : bool
        False when fitted without sensitive features: then only the leader trains (the
        fairness block keeps its initial weights), as with ``eta=0``.
    module_ : FairBiNNNet
        The trained network (logits); ``module_.leader_parameters()`` and
        ``module_.follower_parameters()`` are theta_a and theta_f.
    history_ : list of dict
        One dict per epoch: ``epoch``, training means of ``ce`` (leader loss),
        ``fairness`` (follower loss, without ``eta``) and ``loss``
        (``ce + eta * fairness``), the validation metrics ``val_loss``,
        ``val_accuracy``, ``val_dp``, ``val_soft_dp``, ``val_eo`` when a validation split
        is held out (group gaps for binary targets), and ``seconds``.
    n_iter_ : int
        Epochs run.
    interrupted_ : bool
        Whether training was stopped by KeyboardInterrupt (the last full epoch is kept).
    n_features_in_, feature_names_in_
        As in scikit-learn.

    See Also
    --------
    FairMLPClassifier : the penalised (Lagrangian) MLP without a fairness block.

    Notes
    -----
    On every mini-batch of "leader_first" the follower steps on the batch of the next
    leader step (Algorithm 1 draws a batch per step), so that the layers before the
    fairness block, which depend on theta_a only, are evaluated once for both players;
    after the epoch's last leader step it steps on that last batch. "follower_first" and
    "simultaneous" use one batch for both players, as the reference code.

    With Adam the follower's update does not depend on ``eta`` (see ``eta``): under
    Algorithm 1 eta changes nothing, which is why the default update is the reference
    code's. With ``leader_includes_fairness_grad=False`` and the usual network shape,
    the follower's gradient is computed in closed form
    (:class:`~skfairbilevel.nn.leader_follower.ClosedFormFollower`, equal to autograd's
    up to rounding). The differences from the paper and the reference code are listed
    in the user guide (:ref:`fairbinn-differences`).

    References
    ----------
    .. [1] M. Yazdani-Jahromi, A. Khodabandeh Yalabadi, A. Rajabi, A. Tayebi,
       I. Garibay, O. Ozmen Garibay, "Fair Bilevel Neural Network (FairBiNN): On
       Balancing Fairness and Accuracy via Stackelberg Equilibrium", NeurIPS 2024,
       arXiv:2410.16432.

    Examples
    --------
    >>> from skfairbilevel import FairBiNNClassifier
    >>> from skfairbilevel.datasets import make_biased_classification
    >>> X, y, A = make_biased_classification(500, random_state=0)
    >>> clf = FairBiNNClassifier(eta=10.0, max_epochs=10, random_state=0)
    >>> clf.fit(X, y, sensitive_features=A).predict_proba(X[:2]).shape
    (2, 2)
    >>> len(clf.module_.follower_parameters())  # weight and bias of one fairness layer
    2
    """

    _parameter_rules = {
        "hidden_layer_sizes": layer_sizes(),
        "fairness_layers": number(1, integer=True),
        "fairness_position": number(0, integer=True, none=True),
        "activation": one_of(*ACTIVATIONS),
        "fairness": one_of(*FAIRNESS_LOSSES),
        "eta": number(0),
        "mode": one_of("bilevel", "lagrangian"),
        "update_order": one_of(*UPDATE_ORDERS),
        "leader_includes_fairness_grad": one_of(True, False),
        "repo_compat_dp_loss": one_of(True, False),
        "lr": number(0, low_open=True),
        "fairness_lr": number(0, low_open=True),
        "optimizer": one_of("adam", "sgd"),
        "weight_decay": number(0),
        "lr_gamma": number(0, 1, low_open=True),
        "fairness_lr_gamma": number(0, 1, low_open=True),
        "lr_step_size": number(1, integer=True),
        "record_validation": one_of(True, False),
    }

    def __init__(
        self,
        hidden_layer_sizes=(64, 64),
        *,
        fairness_layers=1,
        fairness_position=None,
        activation="relu",
        fairness="demographic_parity",
        eta=10.0,
        mode="bilevel",
        update_order="follower_first",
        leader_includes_fairness_grad=True,
        repo_compat_dp_loss=False,
        lr=1e-3,
        fairness_lr=1e-5,
        optimizer="adam",
        weight_decay=0.0,
        lr_gamma=1.0,
        fairness_lr_gamma=1.0,
        lr_step_size=50,
        max_epochs=50,
        batch_size=100,
        record_validation=False,
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
        self.fairness_layers = fairness_layers
        self.fairness_position = fairness_position
        self.activation = activation
        self.fairness = fairness
        self.eta = eta
        self.mode = mode
        self.update_order = update_order
        self.leader_includes_fairness_grad = leader_includes_fairness_grad
        self.repo_compat_dp_loss = repo_compat_dp_loss
        self.lr = lr
        self.fairness_lr = fairness_lr
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.lr_gamma = lr_gamma
        self.fairness_lr_gamma = fairness_lr_gamma
        self.lr_step_size = lr_step_size
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.record_validation = record_validation
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

    _learning_rates = ("lr", "fairness_lr")

    # ------------------------------------------------------------------ checks
    def _position(self):
        hidden = layer_widths(self.hidden_layer_sizes)
        return len(hidden) if self.fairness_position is None else int(self.fairness_position)

    def _check_method_params(self):
        n_hidden = len(layer_widths(self.hidden_layer_sizes))
        if self.fairness_position is not None and self.fairness_position > n_hidden:
            raise ValueError(
                f"fairness_position={self.fairness_position} is larger than the number of "
                f"hidden layers ({n_hidden}, hidden_layer_sizes={self.hidden_layer_sizes}); "
                f"use an int in [0, {n_hidden}] (0 puts the fairness block on the inputs) "
                f"or None for right before the output layer."
            )
        if self.repo_compat_dp_loss and self.fairness != "demographic_parity":
            raise ValueError(
                f"repo_compat_dp_loss=True reproduces the reference demographic-parity "
                f"loss, but fairness={self.fairness!r}; set fairness='demographic_parity' "
                f"or repo_compat_dp_loss=False."
            )

    def _uses_validation(self):
        return self.early_stopping or self.record_validation

    @property
    def _sparse_batches(self):
        # the steps read batch.x only through the network's first Linear layer, unless
        # the fairness block sits on the inputs (its closed-form gradient reads x)
        return self._position() > 0

    # ------------------------------------------------------------------ model
    def _build_module(self, n_features, n_outputs):
        if self.repo_compat_dp_loss and n_outputs != 1:
            raise ValueError(
                f"repo_compat_dp_loss=True is defined for binary targets only, but y has "
                f"{n_outputs} classes; set repo_compat_dp_loss=False."
            )
        hidden, pos = layer_widths(self.hidden_layer_sizes), self._position()
        k = int(self.fairness_layers)
        width = n_features if pos == 0 else hidden[pos - 1]
        widths = hidden[:pos] + (width,) * k + hidden[pos:]
        # one builder and one generator pass in layer order: the initial weights are
        # those of a plain MLP with the same widths (FairMLPClassifier)
        seq = make_mlp(
            n_features,
            widths,
            n_outputs,
            activation=self.activation,
            generator=self._init_generator(),
        )
        return LeaderFollowerNet(seq[: 2 * pos], seq[2 * pos : 2 * (pos + k)], seq[2 * (pos + k) :])

    def _make_optimizer(self, params, lr):
        if self.optimizer == "sgd":
            return torch.optim.SGD(params, lr=lr, weight_decay=self.weight_decay)
        return make_adam(params, lr=lr, weight_decay=self.weight_decay)

    def _schedulers(self, pairs):
        return [
            torch.optim.lr_scheduler.StepLR(
                opt, step_size=int(self.lr_step_size), gamma=float(gamma)
            )
            for opt, gamma in pairs
            if gamma != 1.0
        ]

    def _fairness_fn(self):
        n_groups, name = self.n_groups_, self.fairness
        if self.repo_compat_dp_loss:
            return lambda logits, b: repo_compat_dp_loss(logits, b.g, b.w)
        return lambda logits, b: fairness_loss(
            name, proba_from_logits(logits), b.y, b.g, n_groups, b.w
        )

    # ------------------------------------------------------------------ training
    def _fit_torch(self, train, val):
        net = self.module_
        penalised = bool(self.fairness_aware_) and self.eta > 0
        if self.mode == "lagrangian":
            opt = self._make_optimizer(list(net.parameters()), self.lr)
            step = self._lagrangian_step(opt, penalised)
            self._train_epochs(
                step, train, val, schedulers=self._schedulers([(opt, self.lr_gamma)])
            )
            return
        theta_a, theta_f = net.leader_parameters(), net.follower_parameters()
        opt_a = self._make_optimizer(theta_a, self.lr)
        opt_f = self._make_optimizer(theta_f, self.fairness_lr)
        step = self._bilevel_step(opt_a, opt_f, theta_a, theta_f, penalised)
        eta = float(self.eta)
        # the bilevel steps record ce and fairness; the epoch's mean total loss follows
        total = [Scores(lambda r: {"loss": r["ce"] + eta * r["fairness"]})] if penalised else []
        self._train_epochs(
            step,
            train,
            val,
            callbacks=total,
            schedulers=self._schedulers([(opt_a, self.lr_gamma), (opt_f, self.fairness_lr_gamma)]),
        )

    def _lagrangian_step(self, opt, penalised):
        net, eta, fair_fn = self.module_, float(self.eta), self._fairness_fn()
        params = list(net.parameters())

        def step(b):
            logits = net(b.x)
            ce = cross_entropy_loss(logits, b.y, b.w)
            if not penalised:
                descend(ce, opt, params)
                return {"loss": ce, "ce": ce}
            fair = fair_fn(logits, b)
            loss = ce + eta * fair
            descend(loss, opt, params)
            return {"loss": loss, "ce": ce, "fairness": fair}

        return step

    def _bilevel_step(self, opt_a, opt_f, theta_a, theta_f, penalised):
        """The per-mini-batch update of the two players (see ``update_order``)."""
        net, eta, fair_fn = self.module_, float(self.eta), self._fairness_fn()
        carry = self.leader_includes_fairness_grad

        def leader_only(b):
            ce = cross_entropy_loss(net(b.x), b.y, b.w)
            descend(ce, opt_a, theta_a)
            return {"loss": ce, "ce": ce}

        def leader_loss(logits, b):
            ce = cross_entropy_loss(logits, b.y, b.w)
            return ce, (ce + eta * fair_fn(logits, b) if carry else ce)

        # the follower's gradient in closed form where the network allows it
        fast = ClosedFormFollower.build(
            net, self.fairness, self.n_groups_, self.repo_compat_dp_loss
        )

        def follower(h, b):
            """One follower step from prefix features ``h`` (no graph to theta_a)."""
            if fast is not None:
                fair = fast(h, b, eta)
                opt_f.step()
                return fair
            fair = fair_fn(net.head(h), b)
            descend(eta * fair, opt_f, theta_f)
            return fair

        def leader_first(b):
            # L, F, L, F, ...: every follower step sees the leader's new parameters. The
            # follower steps on the batch of the *next* leader step (Algorithm 1 draws a
            # batch per step): the layers before the block depend on theta_a only, so one
            # forward pass of them serves both. After the epoch's last leader step the
            # follower steps on that last batch.
            h = net.prefix(b.x)
            fair = None if b.first else follower(h.detach(), b)
            ce, lead = leader_loss(net.head(h), b)  # at (theta_a, theta_f_new)
            descend(lead, opt_a, theta_a)
            if b.last:  # close the epoch: F at theta_a_new on this batch
                with torch.no_grad():
                    h = net.prefix(b.x)
                last = follower(h, b)
                fair = last if fair is None else fair + last
            elif fair is None:  # the epoch's first batch: no follower step yet
                fair = torch.zeros((), dtype=ce.dtype, device=ce.device)
            return {"ce": ce, "fairness": fair}

        def follower_first(b):
            # the prefix depends on theta_a only, which the follower does not change:
            # its forward pass (and graph) is shared by both steps
            h = net.prefix(b.x)
            if carry:  # the reference: the gradient of eta * Fair stays on theta_a
                opt_a.zero_grad(set_to_none=True)
                opt_f.zero_grad(set_to_none=True)
                fair = fair_fn(net.head(h), b)
                (eta * fair).backward(retain_graph=True)
                opt_f.step()
                ce = cross_entropy_loss(net.head(h), b.y, b.w)  # at theta_f_new
                ce.backward(inputs=theta_a)  # adds to the carried fairness gradient
                opt_a.step()
            else:
                fair = follower(h.detach(), b)
                ce = cross_entropy_loss(net.head(h), b.y, b.w)  # at theta_f_new
                descend(ce, opt_a, theta_a)
            return {"ce": ce, "fairness": fair}

        def simultaneous(b):
            logits = net(b.x)
            ce = cross_entropy_loss(logits, b.y, b.w)
            fair = fair_fn(logits, b)
            descend(eta * fair, opt_f, theta_f, retain_graph=True, step=False)
            descend(ce + eta * fair if carry else ce, opt_a, theta_a, step=False)
            opt_f.step()
            opt_a.step()
            return {"ce": ce, "fairness": fair}

        if not penalised:
            return leader_only
        return {
            "leader_first": leader_first,
            "follower_first": follower_first,
            "simultaneous": simultaneous,
        }[self.update_order]

    # ------------------------------------------------------------------ model selection
    def pareto_epochs(self, fairness: str = "val_dp", accuracy: str = "val_accuracy") -> list[dict]:
        """The epochs of ``history_`` on the validation accuracy/fairness Pareto front.

        Needs validation metrics (``record_validation=True`` or ``early_stopping=True``).
        Because training is deterministic given ``random_state``, the model of epoch
        ``e`` is obtained again by refitting with ``max_epochs=e + 1``.

        Parameters
        ----------
        fairness : str, default="val_dp"
            History key of the gap to minimise ("val_dp", "val_soft_dp", "val_eo").
        accuracy : str, default="val_accuracy"
            History key of the score to maximise.

        Returns
        -------
        list of dict
            The non-dominated epoch records, from the fairest to the most accurate.
        """
        check_is_fitted(self, "module_")
        return pareto_front(self.history_, x=fairness, y=accuracy, maximize=(False, True))
