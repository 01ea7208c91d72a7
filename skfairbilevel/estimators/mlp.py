"""FairMLPClassifier: an MLP with an optional fairness penalty (the Lagrangian baseline).

    min_theta  CE(f_theta)  +  fairness_weight * Fair(f_theta)

with ``Fair`` one of the soft group-parity penalties of :mod:`skfairbilevel.nn.losses`.
It is the single-level, penalised baseline the bilevel methods compare against, and with
``fairness=None`` a plain (optionally class-balanced) MLP: ERM / balanced ERM.
"""

from .._params import any_of, instance_of, layer_sizes, number, one_of
from ..base import BaseFairEstimator, EpochTrainingMixin, FairClassifierMixin
from ..nn.engine import descend
from ..nn.losses import cross_entropy_loss, fairness_loss, proba_from_logits
from ..nn.modules import ACTIVATIONS, layer_widths, make_mlp
from ..nn.optim import make_adam

__all__ = ["FairMLPClassifier"]

FAIRNESS_OPTIONS = (None, "demographic_parity", "equalized_odds", "equal_opportunity")


class FairMLPClassifier(FairClassifierMixin, EpochTrainingMixin, BaseFairEstimator):
    """Multi-layer perceptron classifier with an optional group-fairness penalty.

    Binary and multi-class. Trained with Adam on mini-batches by the shared engine.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(64, 64)
        Widths of the hidden layers (empty tuple: logistic regression).
    activation : str, default="relu"
        Hidden activation: "relu", "tanh", "elu", "softplus", "leaky_relu", "gelu".
    fairness : {None, "demographic_parity", "equalized_odds", "equal_opportunity"}, default=None
        The penalty added to the loss. For multi-class targets it is summed over classes
        (one-vs-rest). None trains a plain MLP.
    fairness_weight : float, default=1.0
        The trade-off knob: weight of the penalty (the Lagrange multiplier), larger is
        fairer (sensible range 0.3-30). It acts only when ``fairness`` is set: with the
        default ``fairness=None`` the model is a plain MLP.
    class_weight : None, "balanced" or dict, default=None
        Per-class weights multiplying the sample weights ("balanced": n / (k n_c)).
    lr : float, default=1e-3
        Adam learning rate.
    weight_decay : float, default=0.0
        Adam L2 penalty.
    max_epochs : int, default=100
    batch_size : int, default=256
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training rows and stop when the
        validation loss has not improved by ``tol`` for ``n_iter_no_change`` epochs; the
        best epoch's weights are kept.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=10
    tol : float, default=1e-4
    sensitive_feature_ids : str, int or list, default=None
        Names or indices of columns of X that hold the sensitive features (instead of the
        ``sensitive_features`` argument of ``fit``; works with metadata routing off).
    drop_sensitive : bool, default=True
        With ``sensitive_feature_ids``: whether those columns are removed from the model's
        inputs (True) or also used as features (False).
    warm_start : bool, default=False
        Continue from the fitted weights on the next ``fit`` (optimiser state restarts).
    verbose : int, default=0
        1 shows a progress bar over epochs.
    device : str, default="cpu"
        "cpu", "cuda", "cuda:<i>" or "auto".
    random_state : int, RandomState, Generator or None, default=None
        Seeds the initial weights and the shuffling; the only source of randomness.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    groups_ : ndarray
        Group labels seen in fit (``[None]`` when fitted without sensitive features).
    n_groups_ : int
    fairness_aware_ : bool
        Whether the penalty was active (False without sensitive features or with
        ``fairness=None``).
    module_ : torch.nn.Module
        The trained network (outputs logits).
    history_ : list of dict
        One dict per epoch: ``loss``, ``ce``, ``fairness`` (training means), validation
        metrics when early stopping, ``seconds``.
    n_iter_ : int
        Epochs run.
    n_features_in_, feature_names_in_
        As in scikit-learn.

    See Also
    --------
    FairBiNNClassifier : the bilevel version of this penalised problem.

    Examples
    --------
    >>> from skfairbilevel import FairMLPClassifier
    >>> from skfairbilevel.datasets import make_biased_classification
    >>> X, y, A = make_biased_classification(500, random_state=0)
    >>> clf = FairMLPClassifier(fairness="demographic_parity", fairness_weight=5.0,
    ...                         max_epochs=20, random_state=0)
    >>> clf.fit(X, y, sensitive_features=A).predict_proba(X[:2]).shape
    (2, 2)
    """

    _parameter_rules = {
        "hidden_layer_sizes": layer_sizes(),
        "activation": one_of(*ACTIVATIONS),
        "fairness": one_of(*FAIRNESS_OPTIONS),
        "fairness_weight": number(0),
        "class_weight": any_of(
            one_of(None, "balanced"),
            instance_of(dict, "a dict"),
            hint='None, "balanced" or a dict {class: weight}',
        ),
        "lr": number(0, low_open=True),
        "weight_decay": number(0),
    }

    def __init__(
        self,
        hidden_layer_sizes=(64, 64),
        *,
        activation="relu",
        fairness=None,
        fairness_weight=1.0,
        class_weight=None,
        lr=1e-3,
        weight_decay=0.0,
        max_epochs=100,
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
        self.fairness = fairness
        self.fairness_weight = fairness_weight
        self.class_weight = class_weight
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
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

    # the step only applies the network to batch.x: sparse batches go to its first Linear
    _sparse_batches = True

    def _uses_groups(self):
        return self.fairness is not None

    def _build_module(self, n_features, n_outputs):
        return make_mlp(
            n_features,
            layer_widths(self.hidden_layer_sizes),
            n_outputs,
            activation=self.activation,
            generator=self._init_generator(),
        )

    def _fit_torch(self, train, val):
        opt = make_adam(self.module_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        penalised = self.fairness_aware_ and self.fairness_weight > 0
        n_groups = self.n_groups_

        def step(b):
            logits = self.module_(b.x)
            ce = cross_entropy_loss(logits, b.y, b.w)
            if not penalised:
                descend(ce, opt)
                return {"loss": ce}
            fair = fairness_loss(self.fairness, proba_from_logits(logits), b.y, b.g, n_groups, b.w)
            loss = ce + self.fairness_weight * fair
            descend(loss, opt)
            return {"loss": loss, "ce": ce, "fairness": fair}

        self._train_epochs(step, train, val)
