"""BaseFairEstimator: the scikit-learn contract and the one data-preparation path.

``fit`` does, for every estimator and in this order:

1. check the hyper-parameters (``_parameter_rules``, ``_check_method_params``) and the
   consistency of the validation arguments;
2. prepare the rows (:meth:`BaseFairEstimator._prepare`, the same path for ``X`` and
   ``X_val``): validate X and y, read the sensitive features (given, or from the columns
   named by ``sensitive_feature_ids``, which ``drop_sensitive`` removes from the model's
   inputs), encode targets and groups, check the sample weights, and canonicalise the
   rows (zero weights dropped, duplicates of (x, y, group) merged into one row carrying
   their summed weight, rows in an order that does not depend on the input order),
   without copying X beyond one float32 copy where X is not float32 already;
3. resolve the device and seed a numpy and a CPU torch generator from ``random_state``
   (every random draw is made on the CPU and moved, so a seed gives the same model on
   every device);
4. build the network (``_build_module``) unless warm-starting;
5. split off the validation rows (``X_val``, or a held-out fraction of X);
6. move X to the device once, as :class:`~skfairbilevel.nn.engine.TensorData` whose
   batches select their rows there (sparse X stays sparse: one batch at a time is made
   dense),
   and call the method's ``_fit_torch(train, val)``, which runs its iterations through
   the engine (:meth:`BaseFairEstimator._run`, or :meth:`EpochTrainingMixin._train_epochs`
   for mini-batch training).

The hooks a subclass implements, and the class attributes it may set, are listed in one
place: the "How to add an estimator" section of ``CONTRIBUTING.md``.
"""

import math
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Self

import numpy as np
import scipy.sparse as sp
import torch
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import (
    _assert_all_finite,
    _check_feature_names,
    _check_n_features,
    check_array,
    check_is_fitted,
    check_X_y,
    validate_data,
)

from . import _dataframe
from ._groups import encode_groups, encode_known_groups, resolve_sensitive
from ._params import (
    any_of,
    check_params,
    check_sample_weight,
    instance_of,
    is_array_like,
    number,
    one_of,
    random_state,
    text,
)
from ._rows import canonical_index, model_features
from .exceptions import NoSensitiveFeaturesWarning
from .nn.engine import (
    EarlyStopping,
    Loop,
    LRSchedulers,
    Scores,
    SparseRows,
    TensorData,
    epochs,
    make_generators,
    numpy_view,
    resolve_device,
    shuffled_batches,
    to_floats,
)
from .nn.losses import cross_entropy_loss, group_means, labels_from_logits, proba_from_logits
from .nn.state import TorchState
from .nn.threads import threads_for, torch_threads

__all__ = [
    "BaseFairEstimator",
    "EpochTrainingMixin",
    "FairClassifierMixin",
    "FairRegressorMixin",
    "Rows",
    "holdout_by_strata",
]

#: rows x network weights per prediction block on the CPU
PREDICT_BLOCK_WORK = 2**26
#: fewest and most rows per prediction block on the CPU (powers of two)
PREDICT_BLOCK_MIN, PREDICT_BLOCK_MAX = 512, 8192
#: most rows per prediction block on a GPU
PREDICT_CHUNK = 65536
#: rows per block when training-time outputs (accuracy, validation scores) are computed
ACCURACY_BLOCK = 8192
#: at most this many features per block of such outputs (wide, e.g. one-hot sparse, X
#: gets blocks of fewer rows): 4M float32, 16 MB
BLOCK_ELEMENTS = 1 << 22

_TRAIN = {"X": "X", "y": "y", "A": "sensitive_features", "w": "sample_weight"}
_VALIDATION = {"X": "X_val", "y": "y_val", "A": "sensitive_features_val", "w": "sample_weight_val"}


# ----------------------------------------------------------------------------- value checks
def _check_dtype_range(X, dtype):
    """Refuse float64 values that overflow the torch ``dtype`` the model computes in.

    ``validate_data`` only rejects values that are infinite in X's own dtype; a finite
    float64 such as 1e39 would become inf in float32 and give NaN outputs silently.
    """
    limit = torch.finfo(dtype).max
    if X.dtype.itemsize <= torch.finfo(dtype).bits // 8 or X.size == 0:
        return
    big = max(float(X.max()), -float(X.min()))
    if big > limit:
        raise ValueError(
            f"Input X contains a value too large for {str(dtype).replace('torch.', '')} "
            f"(largest |x| = {big:.3g} > {limit:.3g}), the precision the model computes "
            f"in. Rescale the features, e.g. with sklearn.preprocessing.StandardScaler."
        )


def _check_predict_values(X, dtype, estimator_name):
    """Refuse NaN, infinity and values that overflow ``dtype``, in one pass over X.

    One ``aminmax`` (float64 data, float32 model) or one ``sum`` (otherwise) over a
    zero-copy view; only when that value is not finite are the exact checks run, which
    raise scikit-learn's message for NaN / infinity or ours for an overflowing value (or
    pass, when a float32 sum of large finite values overflowed).
    """
    if X.size == 0:
        return
    try:
        t = numpy_view(X)
    except (TypeError, ValueError, RuntimeError):  # e.g. negative strides: exact checks
        t = None
    if t is not None:
        if X.dtype.itemsize > torch.finfo(dtype).bits // 8:
            lo, hi = torch.aminmax(t)
            bound = max(-float(lo), float(hi))  # NaN if any NaN: fails the test below
            if bound <= torch.finfo(dtype).max:
                return
        elif bool(torch.isfinite(t.sum())):
            return
    _assert_all_finite(X, input_name="X", estimator_name=estimator_name)
    _check_dtype_range(X, dtype)


# ----------------------------------------------------------------------------- rows
@dataclass
class Rows:
    """Prepared rows on the host: the output of :meth:`BaseFairEstimator._prepare`.

    ``X`` (the model features, float32: a C-contiguous array or a CSR matrix), ``y``
    (encoded targets) and ``g`` (group ids) hold every input row; ``index`` selects the
    rows used, in canonical order, and ``w`` is their weight (mean 1 over the prepared
    rows; None when all are 1). X is never gathered on the host: the device holds it
    once and batches select their rows there.
    """

    X: np.ndarray | sp.csr_matrix
    y: np.ndarray
    g: np.ndarray
    index: np.ndarray
    w: np.ndarray | None

    def __len__(self):
        return len(self.index)

    @property
    def n_features(self):
        """Number of model features (columns of X the model sees)."""
        return self.X.shape[1]

    def take(self, positions):
        """The rows at ``positions`` (indices into ``index``)."""
        return Rows(
            self.X,
            self.y,
            self.g,
            self.index[positions],
            None if self.w is None else self.w[positions],
        )

    def features(self, device):
        """X on ``device``, moved once (on the CPU: X itself, no copy)."""
        if sp.issparse(self.X):
            return SparseRows.from_scipy(self.X, device)
        return numpy_view(self.X, device=device)

    def tensors(self, *, n_groups, device, y_dtype, features=None, sparse_batches=False):
        """The rows as :class:`~skfairbilevel.nn.engine.TensorData` on ``device``;
        ``features``: X already on the device (:meth:`features`); ``sparse_batches``:
        batches of sparse X stay sparse (CSR tensors)."""
        take = self.index
        in_order = (
            len(take) == self.X.shape[0]
            and np.array_equal(take[:8], np.arange(min(8, len(take))))  # cheap rejection
            and np.array_equal(take, np.arange(len(take)))
        )

        def tensor(a, dtype):
            return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)

        return TensorData(
            self.features(device) if features is None else features,
            tensor(self.y[take], y_dtype),
            tensor(self.g[take], torch.long),
            None if self.w is None else tensor(self.w, torch.float32),
            n_groups=n_groups,
            index=None if in_order else tensor(take, torch.long),
            sparse_batches=sparse_batches,
        )


def holdout_by_strata(strata, fraction, rng):
    """``(train, val)`` positions: ``round(fraction * n_s)`` rows of each stratum ``s``
    held out, drawn by ``rng``, at most ``n_s - 1`` so that every stratum keeps a
    training row (``val`` is empty when no stratum can spare one)."""
    val = np.zeros(len(strata), dtype=bool)
    for s in np.unique(strata):
        rows = np.flatnonzero(strata == s)
        k = min(int(math.floor(fraction * len(rows) + 0.5)), len(rows) - 1)
        if k > 0:
            val[rng.permutation(rows)[:k]] = True
    return np.flatnonzero(~val), np.flatnonzero(val)


# ----------------------------------------------------------------------------- the base
class BaseFairEstimator(BaseEstimator):
    """Base class of the torch estimators (not used directly).

    Common parameters (each subclass lists them in its ``__init__``):
    ``sensitive_feature_ids``, ``drop_sensitive``, ``verbose``, ``device``,
    ``random_state``, and ``warm_start`` where the method supports it.
    """

    # sensitive_features is requested for fit by default under metadata routing
    __metadata_request__fit = {"sensitive_features": True}

    _parameter_rules = {
        "sensitive_feature_ids": any_of(
            one_of(None), number(integer=True), text(), is_array_like()
        ),
        "drop_sensitive": one_of(True, False),
        "warm_start": one_of(True, False),
        "verbose": any_of(one_of(True, False), number(0, integer=True)),
        "device": any_of(
            text(),
            instance_of(torch.device, "a torch.device"),
            hint="a device such as 'cpu', 'cuda' or 'auto'",
        ),
        "random_state": random_state(),
    }

    #: set by subclasses that only handle two classes
    _binary_only = False
    _estimator_kind = "classifier"
    #: dtype of the feature tensors at predict time
    _predict_dtype = torch.float32
    #: parameters named in the error raised when the training loss becomes non-finite
    _learning_rates = ("lr",)
    #: whether every group needs training rows (of positive weight) when fairness-aware
    _needs_every_group = False
    #: whether mini-batches of sparse X reach the step as sparse CSR tensors (for a
    #: network whose first layer is a Linear applied to ``batch.x``, and nothing else
    #: reading ``batch.x``): sparse matrix products instead of dense rows
    _sparse_batches = False
    #: whether the networks that training-time outputs run (``_forward`` and the modules
    #: given to ``_outputs``) read their input only through a first Linear layer, so
    #: that blocks of sparse X reach them as sparse CSR tensors (no dense block)
    _sparse_outputs = False

    # ------------------------------------------------------------------ hooks
    def _build_module(self, n_features, n_outputs):
        """Return the ``nn.Module`` holding everything trainable (on CPU; base moves it).
        Random initial weights come from :meth:`_init_generator`."""
        raise NotImplementedError

    def _fit_torch(self, train, val):
        """Train ``self.module_`` on the TensorData ``train`` (and ``val`` or None).

        Returns None, or the number of iterations when it is not ``len(history_)``.
        """
        raise NotImplementedError

    def _forward(self, x):
        """Model output (logits for classifiers) for a batch of features ``x``."""
        return self.module_(x)

    def _uses_groups(self):
        """Whether this configuration needs sensitive features (>= 2 groups)."""
        return True

    def _check_method_params(self):
        """Checks across parameters, beyond ``_parameter_rules``."""

    def _uses_validation(self):
        """Whether this configuration uses validation rows: then ``fit`` accepts
        ``X_val``, and without it holds out rows by :meth:`_validation_split`."""
        return False

    def _validation_split(self, rows):
        """``(train_positions, val_positions)``: the rows held out for validation."""
        raise NotImplementedError

    def _warm_start_key(self, n_features):
        """With ``warm_start=True`` the fitted network is reused when this key equals
        the one of the previous fit (default: the number of model features)."""
        return n_features

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        *,
        sensitive_features: ArrayLike | None = None,
        sample_weight: ArrayLike | None = None,
        X_val: ArrayLike | None = None,
        y_val: ArrayLike | None = None,
        sensitive_features_val: ArrayLike | None = None,
        sample_weight_val: ArrayLike | None = None,
    ) -> Self:
        """Fit the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training features (numeric).
        y : array-like of shape (n_samples,)
            Targets.
        sensitive_features : array-like of shape (n_samples,) or (n_samples, k), optional
            Group membership: strings, integers or categoricals; with several columns
            their combinations are the groups. Alternatively set
            ``sensitive_feature_ids`` to read them from columns of X. Without either the
            estimator trains its fairness-unaware form and warns.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative row weights; an integer weight k is exactly equivalent to
            repeating the row k times.
        X_val : array-like of shape (n_val, n_features), optional
            Validation features, used instead of holding out ``validation_fraction`` of
            X (all of X is then trained on). Only for a configuration that uses
            validation data (e.g. ``early_stopping=True``; FACIMS always); otherwise a
            ValueError. Processed like X: same columns (and feature names), the columns
            of ``sensitive_feature_ids`` read and dropped the same way, duplicate rows
            merged into weights. In a Pipeline, ``Pipeline(...,
            transform_input=["X_val"])`` transforms it like X.
        y_val : array-like of shape (n_val,), optional
            Validation targets; required with ``X_val``. Classifiers: every label must
            occur in y.
        sensitive_features_val : array-like of shape (n_val,) or (n_val, k), optional
            Groups of the validation rows, in the same format as ``sensitive_features``;
            required with ``X_val`` when ``sensitive_features`` is given, not allowed
            with ``sensitive_feature_ids`` (read from X_val's columns) or without
            ``sensitive_features``. Every group must occur in the training data.
        sample_weight_val : array-like of shape (n_val,), optional
            Weights of the validation rows (normalised to mean 1 like the training
            weights; ``class_weight`` applies to them as to the training rows).

        Returns
        -------
        self : object
            The fitted estimator.
        """
        check_params(self)
        self._check_method_params()
        self._check_validation_args(
            X_val, y_val, sensitive_features, sensitive_features_val, sample_weight_val
        )
        rows = self._prepare(X, y, sensitive_features, sample_weight)
        given = (
            None
            if X_val is None
            else self._prepare(
                X_val, y_val, sensitive_features_val, sample_weight_val, role="validation"
            )
        )
        self._start_fit(rows, given)
        self._init_module(rows.n_features)
        train_rows, val_rows = self._split(rows, given)
        del rows, given
        train = self._tensors(train_rows)  # X moves to the device once
        shared = val_rows is not None and val_rows.X is train_rows.X
        val = self._tensors(val_rows, features=train.features if shared else None)
        del train_rows, val_rows
        self.interrupted_ = False
        with torch_threads(self._fit_threads(len(train))):
            n_iter = self._fit_torch(train, val)
        self.n_iter_ = len(self.history_) if n_iter is None else n_iter
        self.module_.eval()
        for attr in ("_rng", "_gen", "_split_seed"):
            self.__dict__.pop(attr, None)
        return self

    # ------------------------------------------------------------------ data preparation
    def _prepare(self, X, y, sensitive_features=None, sample_weight=None, *, role="fit"):
        """The one data-preparation path, for the training rows and any other rows.

        Validates X and y, reads the sensitive features, encodes targets and groups and
        checks the weights. ``role``:

        * "fit": the training rows; sets the fitted attributes (``n_features_in_``,
          ``classes_``, ``groups_``, ...) and returns canonical rows (zero weights
          dropped, duplicates merged into weights of mean 1, a canonical order);
        * "validation": fit's ``X_val`` rows, encoded with the fitted attributes (unseen
          labels or groups raise, naming the ``*_val`` arguments), canonical rows;
        * "rows": any other rows (e.g. of a public evaluation method), encoded with the
          fitted attributes, every row kept in its order with its weight.
        """
        fitting = role == "fit"
        names = _VALIDATION if role == "validation" else _TRAIN
        # the sensitive columns are read from X as given (strings, categories, numbers);
        # the ones dropped from the model are never converted to numbers
        A, model_columns = resolve_sensitive(
            X, sensitive_features, self.sensitive_feature_ids, drop=self.drop_sensitive
        )
        X, y = self._validate_data(X, y, reset=fitting, columns=model_columns)
        if fitting:
            self._model_columns = model_columns
        X = model_features(X)  # float32, copied only where needed
        n = X.shape[0]
        y_enc = self._encode_targets(y) if fitting else self._encode_known_targets(y, names["y"])
        sw = check_sample_weight(sample_weight, n, name=names["w"], x_name=names["X"])
        sw = self._extra_sample_weight(y_enc, sw)
        g = self._encode_fit_groups(A, n) if fitting else self._encode_groups(A, n, names)
        if role == "rows":
            return Rows(X, y_enc, g, np.arange(n), sw)
        index, sw = canonical_index(X, y_enc, g, sw)
        if sw is not None:
            sw = sw / sw.mean()
        if fitting and self._needs_every_group and self.fairness_aware_:
            counts = np.bincount(g[index], minlength=self.n_groups_)
            if np.any(counts == 0):
                empty = [self.groups_[a] for a in np.flatnonzero(counts == 0)]
                raise ValueError(
                    f"sensitive group(s) {empty} have no training rows with a positive "
                    f"sample_weight; {type(self).__name__} needs every group. Drop those "
                    f"groups from sensitive_features or give their rows positive weights."
                )
        return Rows(X, y_enc, g, index, sw)

    def _validate_data(self, X, y, reset, columns=None):
        """Validated model features (the columns ``columns`` of X, default all) and y."""
        check = dict(
            accept_sparse=("csr", "csc"),
            dtype=[np.float64, np.float32],
            y_numeric=self._estimator_kind == "regressor",
        )
        try:
            if columns is None:
                X, y = validate_data(self, X, y, reset=reset, **check)
            else:
                X, y = self._validate_columns(X, y, columns, reset=reset, **check)
        except ValueError as exc:
            if "could not convert" in str(exc) and self.sensitive_feature_ids is not None:
                fix = (
                    "With drop_sensitive=False the sensitive columns are model inputs too "
                    "and must be numeric: encode them (e.g. make_preprocessor(..., "
                    "keep_sensitive=True) ordinal-encodes them under their own names) or "
                    "leave drop_sensitive=True"
                    if not self.drop_sensitive
                    else "The model's columns must be numeric: encode string columns first "
                    "(e.g. with skfairbilevel.datasets.make_preprocessor)"
                )
                raise ValueError(f"{exc}. {fix}.") from exc
            raise
        return X, y

    def _encode_fit_groups(self, A, n):
        """Group ids of the training rows; sets ``groups_``, ``n_groups_`` and
        ``fairness_aware_``."""
        uses_groups = self._uses_groups()
        if A is None:
            # no warning where the user declined them: set_fit_request(sensitive_features=False)
            declined = self.get_metadata_routing().fit.requests.get("sensitive_features") is False
            if uses_groups and not declined:
                warnings.warn(
                    f"{type(self).__name__}.fit got no sensitive features, so it trains "
                    f"its fairness-unaware form. Pass sensitive_features=... to fit (with "
                    f"metadata routing on, GridSearchCV and Pipeline route it), or set "
                    f"sensitive_feature_ids to read them from columns of X.",
                    NoSensitiveFeaturesWarning,
                    stacklevel=4,
                )
            self.groups_ = np.array([None], dtype=object)
            self.fairness_aware_ = False
            self.n_groups_ = 1
            return np.zeros(n, dtype=np.int64)
        name = (
            "sensitive_features" if self.sensitive_feature_ids is None else "sensitive_feature_ids"
        )
        g, self.groups_ = encode_groups(A, n, name=name)
        self.fairness_aware_ = uses_groups
        if uses_groups and len(self.groups_) < 2:
            raise ValueError(
                f"sensitive_features has a single group ({self.groups_[0]!r}); "
                f"{type(self).__name__} needs at least two groups to measure "
                f"fairness. Check the sensitive column, or fit without "
                f"sensitive_features for the fairness-unaware model."
            )
        self.n_groups_ = len(self.groups_)
        return g

    def _encode_groups(self, A, n, names):
        """Group ids of rows in the fitted ``groups_`` (all 0 when fitted without)."""
        if A is None or self.groups_[0] is None:
            return np.zeros(n, dtype=np.int64)
        name = (
            f"the sensitive_feature_ids columns of {names['X']}"
            if self.sensitive_feature_ids is not None
            else names["A"]
        )
        return encode_known_groups(A, n, self.groups_, name=name)

    def _check_validation_args(
        self, X_val, y_val, sensitive_features, sensitive_features_val, sample_weight_val
    ):
        """Consistency of the ``*_val`` arguments of ``fit`` (before any work)."""
        if X_val is None:
            for name, value in (
                ("y_val", y_val),
                ("sensitive_features_val", sensitive_features_val),
                ("sample_weight_val", sample_weight_val),
            ):
                if value is not None:
                    raise ValueError(
                        f"{name} was given without X_val; pass the validation features "
                        f"as X_val too, or drop {name}."
                    )
            return
        if y_val is None:
            raise ValueError("X_val was given without y_val; pass the validation targets as y_val.")
        if not self._uses_validation():
            params = self.get_params(deep=False)
            uses = [f"{k}=True" for k in ("early_stopping", "record_validation") if k in params]
            fix = (
                f"set {' or '.join(uses)} to use X_val, or do not pass X_val"
                if uses
                else "do not pass X_val"
            )
            raise ValueError(
                f"X_val was given, but {type(self).__name__} does not use validation data "
                f"in this configuration; {fix}."
            )
        if self.sensitive_feature_ids is not None:
            if sensitive_features_val is not None:
                raise ValueError(
                    "Got sensitive_features_val with sensitive_feature_ids set: the "
                    "validation groups are read from the columns of X_val named by "
                    "sensitive_feature_ids; do not pass sensitive_features_val."
                )
        elif sensitive_features is not None and sensitive_features_val is None:
            raise ValueError(
                "X_val was given without sensitive_features_val, but the training groups "
                "come from sensitive_features; pass the validation rows' groups as "
                "sensitive_features_val."
            )
        elif sensitive_features is None and sensitive_features_val is not None:
            raise ValueError(
                "Got sensitive_features_val without sensitive_features; pass the training "
                "rows' groups as sensitive_features too, or drop sensitive_features_val."
            )

    # ------------------------------------------------------------------ fit steps
    def _start_fit(self, rows, given):
        """Resolve the device and seed the fit's generators (no global RNG is used)."""
        self.device_ = resolve_device(self.device)
        self._rng, self._gen = make_generators(self.random_state)

    def _init_generator(self):
        """A CPU torch generator for the initial weights, seeded from the fit's rng."""
        gen = torch.Generator()
        gen.manual_seed(int(self._rng.integers(0, 2**63 - 1)))
        return gen

    def _init_module(self, n_features):
        """Build ``module_`` (or keep it, with ``warm_start``) and reset ``history_``."""
        key = self._warm_start_key(n_features)
        if (
            getattr(self, "warm_start", False)
            and hasattr(self, "module_")
            and getattr(self, "_warm_key", None) == key
        ):
            self.module_ = self.module_.to(self.device_)
            return
        with torch.random.fork_rng(devices=[]):  # belt and braces: no global RNG use
            module = self._build_module(n_features, self._n_outputs())
        self.module_ = module.to(self.device_)
        self.history_ = []
        self._warm_key = key

    def _split(self, rows, given):
        """``(train, val)`` rows: the given validation rows, held-out rows, or None."""
        if given is not None or not self._uses_validation():
            return rows, given
        train, val = self._validation_split(rows)
        return rows.take(train), rows.take(val)

    def _tensors(self, rows, features=None):
        """``rows`` as TensorData on the fit's device (``features``: their X already
        there, shared with other rows)."""
        if rows is None:
            return None
        y_dtype = torch.long if self._estimator_kind == "classifier" else torch.float32
        return rows.tensors(
            n_groups=self.n_groups_,
            device=self.device_,
            y_dtype=y_dtype,
            features=features,
            sparse_batches=self._sparse_batches,
        )

    def _run(self, iterate, *, max_iter, callbacks=(), desc=None):
        """Run ``iterate`` through the engine's :class:`~skfairbilevel.nn.engine.Loop`,
        recording into ``history_``; returns the loop."""
        lrs = ", ".join(f"{name}={getattr(self, name)}" for name in self._learning_rates)
        loop = Loop(
            self.module_,
            max_iter=max_iter,
            callbacks=callbacks,
            history=self.history_,
            verbose=self.verbose,
            desc=desc or type(self).__name__,
            lr_hint=lrs,
        )
        self.module_.train()
        try:
            loop.run(iterate)
        finally:
            self.module_.train(False)
        self.interrupted_ = self.interrupted_ or loop.interrupted
        return loop

    # ------------------------------------------------------------------ predict
    def _validate_predict_X(self, X):
        """X checked against the fit and reduced to the model's columns.

        Feature names and count are those of ``fit``; NaN, infinity and values that
        overflow the model's dtype are refused. Returns a float32 / float64 array, or a
        CSR matrix for sparse X (densified a block at a time by :meth:`_predict_array`).
        """
        check_is_fitted(self, "module_")
        # a dataframe of no single dtype is converted to the first: the model's dtype
        dtypes = [np.float32, np.float64][:: -1 if self._predict_dtype == torch.float64 else 1]
        check = dict(accept_sparse="csr", dtype=dtypes, ensure_all_finite=False)
        if self._model_columns is None:
            X = validate_data(self, X, reset=False, **check)
        else:
            X = self._validate_columns(X, None, self._model_columns, reset=False, **check)
        values = X.data if sp.issparse(X) else X
        _check_predict_values(values, self._predict_dtype, type(self).__name__)
        return X

    def _validate_columns(self, X, y, columns, *, reset, **check):
        """``validate_data`` for the columns ``columns`` of X only.

        The feature names and count are checked (or set, with ``reset``) on all of X;
        the numeric checks and conversion apply to the model's columns only, so that a
        string or category column named by ``sensitive_feature_ids`` and dropped is
        never converted to numbers.
        """
        _check_feature_names(self, X, reset=reset)
        _check_n_features(self, X, reset=reset)
        X = _dataframe.take_columns(X, columns)
        if y is None:
            return check_array(X, input_name="X", estimator=self, **check)
        return check_X_y(X, y, estimator=self, **check)

    def _predict_block_rows(self):
        """Rows per prediction block: a constant of the fitted network.

        CPU: the power of two in [512, 8192] nearest below ``PREDICT_BLOCK_WORK`` (2**26)
        divided by the number of weights, so that a block's work is large against its
        fixed costs while a single row (which costs a block) stays cheap; a GPU takes up
        to ``PREDICT_CHUNK`` rows.
        """
        n_weights = max(1, sum(p.numel() for p in self.module_.parameters()))
        if self.device_.type == "cpu":
            work, low, high = PREDICT_BLOCK_WORK, PREDICT_BLOCK_MIN, PREDICT_BLOCK_MAX
        else:
            work, low, high = PREDICT_BLOCK_WORK * 128, PREDICT_BLOCK_MIN, PREDICT_CHUNK
        rows = 1 << max(0, (work // n_weights).bit_length() - 1)
        return int(min(high, max(low, rows)))

    def _predict_array(self, X, fn):
        """``fn`` (tensor block -> tensor) over the rows of X, as numpy float64.

        X (dense or CSR) is cut into blocks of :meth:`_predict_block_rows` rows (the last
        one ends at the last row, overlapping the one before; an X shorter than a block
        is padded with zero rows), and each block is densified, converted to the
        model's dtype and computed by one thread; the first block by the calling thread,
        the others spread over the threads that the fit's rule gives the whole prediction
        (:func:`~skfairbilevel.nn.threads.threads_for` of rows times weights, at most
        ``torch.get_num_threads()``). Every row is thus
        computed by the same kernels on an input of the same shape and alignment (one
        thread splits no operation): its output does not depend on the other rows, their
        number or their order, nor on the thread count.
        """
        self.module_.eval()
        n, d = X.shape
        if n == 0:
            return np.zeros((0,))
        rows, dtype, device = self._predict_block_rows(), self._predict_dtype, self.device_

        @torch.no_grad()
        def block(start):
            # the last block of a longer X ends at its last row (it overlaps the one
            # before); an X shorter than a block is padded with zero rows
            low = max(0, min(start, n - rows))
            xb = X[low : low + rows]
            xb = xb.toarray() if sp.issparse(xb) else np.ascontiguousarray(xb)
            if xb.shape[0] < rows:
                t = torch.zeros((rows, d), dtype=dtype)
                t[:n] = numpy_view(xb, dtype=dtype)
            else:
                t = numpy_view(xb, dtype=dtype)
                # matrix-vector products on float32 data, and float64 products, round
                # differently at addresses off a 16-byte boundary: copy such a view
                if t.data_ptr() % 16:
                    t = t.clone()
            return fn(t.to(device))[start - low : min(start + rows, n) - low]

        cpu = device.type == "cpu"
        with torch_threads(1) if cpu else nullcontext():
            first = block(0)
        out = torch.empty((n, *first.shape[1:]), dtype=torch.float64)
        out[: first.shape[0]] = first

        def write(start):
            out[start : start + rows] = block(start)  # float64, on the CPU

        starts = range(rows, n, rows)
        # the fit's thread rule on the whole prediction: a thread per 2**26 multiply-adds
        n_weights = sum(p.numel() for p in self.module_.parameters())
        workers = min(threads_for(n * n_weights), len(starts)) if cpu else 1
        if workers <= 1:
            with torch_threads(1) if cpu else nullcontext():
                for start in starts:
                    write(start)
        else:
            before = torch.get_num_threads()
            try:
                with ThreadPoolExecutor(
                    workers, initializer=torch.set_num_threads, initargs=(1,)
                ) as pool:
                    list(pool.map(write, starts))
            finally:  # the workers' setting is also the default of later threads
                torch.set_num_threads(before)
        return out.numpy()

    def _fit_threads(self, n_rows):
        """Intra-op threads for the training steps (:func:`~skfairbilevel.nn.threads.
        threads_for` of :meth:`_step_work`)."""
        return threads_for(self._step_work(n_rows))

    def _step_work(self, n_rows):
        """Multiply-adds of the forward pass of one training step: rows per step
        (``batch_size`` where the estimator has one, else all ``n_rows``) times the
        number of weights."""
        step = min(n_rows, int(getattr(self, "batch_size", n_rows) or n_rows))
        n_weights = sum(p.numel() for p in self.module_.parameters())
        return max(1, step) * n_weights

    # ------------------------------------------------------------------ sklearn glue
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = True
        tags.non_deterministic = False
        return tags

    def __getstate__(self):
        """The state with every torch module and tensor as plain data
        (:class:`~skfairbilevel.nn.state.TorchState`) and no generator: pickle, joblib
        and skops files hold no torch object."""
        state = dict(super().__getstate__())
        for key, value in list(state.items()):
            if isinstance(value, torch.nn.Module) or torch.is_tensor(value):
                state[key] = TorchState(value)
            elif isinstance(value, torch.Generator):
                state.pop(key)
        if "device_" in state:
            state["device_"] = str(state["device_"])
        return state

    def __setstate__(self, state):
        """Rebuild the modules and tensors on the fitted device, or on the CPU where
        that device is a GPU this machine does not have."""
        super().__setstate__(state)
        dev = torch.device("cpu")
        if "device_" in state:
            dev = torch.device(state["device_"])
            if dev.type == "cuda" and not torch.cuda.is_available():
                dev = torch.device("cpu")
            self.device_ = dev
        for key, value in list(self.__dict__.items()):
            if isinstance(value, TorchState):
                setattr(self, key, value.restore(dev))


# ----------------------------------------------------------------------------- epochs
class EpochTrainingMixin:
    """Mini-batch training over epochs: its parameters, their rules and the engine call.

    For estimators trained by passes over mini-batches of the training rows. Parameters
    (listed in the subclass's ``__init__``): ``max_epochs``, ``batch_size``,
    ``early_stopping``, ``validation_fraction``, ``n_iter_no_change``, ``tol``. With
    ``early_stopping`` (or whatever :meth:`_uses_validation` says), ``fit`` holds out
    ``validation_fraction`` of the rows, stratified by class, or takes ``X_val``.
    Put it before :class:`BaseFairEstimator` in the bases.
    """

    _parameter_rules = {
        "max_epochs": number(1, integer=True),
        "batch_size": number(1, integer=True),
        "early_stopping": one_of(True, False),
        "validation_fraction": number(0, 1, low_open=True, high_open=True),
        "n_iter_no_change": number(1, integer=True),
        "tol": number(0),
    }

    def _uses_validation(self):
        return self.early_stopping

    def _start_fit(self, rows, given):
        super()._start_fit(rows, given)
        if given is not None or not self._uses_validation():
            return
        n = len(rows)
        n_val = int(round(self.validation_fraction * n))
        if n_val < 1 or n - n_val < 1:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} leaves {n_val} validation "
                f"and {n - n_val} training rows out of {n}; early stopping needs both. Use "
                f"more data, another validation_fraction, or early_stopping=False."
            )
        # the split's seed is the fit's first random draw, before the initial weights
        self._split_seed = int(self._rng.integers(0, 2**31 - 1))

    def _validation_split(self, rows):
        """``validation_fraction`` of the rows, stratified by class (when possible)."""
        n = len(rows)
        idx = np.arange(n)
        n_val = int(round(self.validation_fraction * n))
        strata = rows.y[rows.index] if self._estimator_kind == "classifier" else None
        try:
            tr, va = train_test_split(
                idx, test_size=n_val, random_state=self._split_seed, stratify=strata
            )
        except ValueError:  # a class too small to stratify
            tr, va = train_test_split(idx, test_size=n_val, random_state=self._split_seed)
        return np.sort(tr), np.sort(va)

    def _train_epochs(
        self,
        step,
        data,
        val=None,
        *,
        sampler=None,
        max_epochs=None,
        schedulers=(),
        callbacks=(),
        desc=None,
    ):
        """Run ``step(batch)`` over epochs of mini-batches of ``data`` (default sampler:
        a fresh shuffle cut into ``batch_size`` rows). After each epoch: the schedulers,
        the validation metrics (with ``val``), ``callbacks``, and early stopping."""
        if sampler is None:

            def sampler(epoch):
                return shuffled_batches(len(data), self.batch_size, self._gen, data.device)

        every_epoch = [LRSchedulers(schedulers)]
        if val is not None:
            every_epoch.append(Scores(lambda record: self._validation_metrics(val)))
        every_epoch.extend(callbacks)
        if self.early_stopping and val is not None:
            every_epoch.append(EarlyStopping(patience=self.n_iter_no_change, tol=self.tol))
        return self._run(
            epochs(step, data, sampler),
            callbacks=every_epoch,
            desc=desc,
            max_iter=self.max_epochs if max_epochs is None else max_epochs,
        )

    @torch.no_grad()
    def _validation_metrics(self, val):
        """Validation loss plus (classifiers) accuracy and hard/soft DP and EO gaps."""
        was_training = self.module_.training
        self.module_.eval()
        try:
            logits = self._outputs(val)
            if self._estimator_kind == "regressor":
                return to_floats({"val_loss": ((logits.reshape(-1) - val.y) ** 2).mean()})
            out = {"val_loss": cross_entropy_loss(logits, val.y, val.w)}
            proba = self._proba_tensor(None, logits=logits)
            pred = (proba > 0.5).long() if proba.dim() == 1 else proba.argmax(1)
            out["val_accuracy"] = (pred == val.y).float().mean()
            if self.n_groups_ > 1 and proba.dim() == 1:
                out.update(_group_gaps(pred.float(), proba, val.y, val.g, self.n_groups_))
            return to_floats(out)
        finally:
            self.module_.train(was_training)

    def _outputs(self, data, fn=None):
        """``fn`` (default :meth:`_forward`) over the rows of ``data``, by blocks of
        rows, concatenated: blocks of sparse X as sparse CSR tensors of
        ``ACCURACY_BLOCK`` rows where the networks take them (``_sparse_batches`` or
        ``_sparse_outputs``), otherwise dense blocks of at most ``ACCURACY_BLOCK`` rows
        and ``BLOCK_ELEMENTS`` values."""
        fn = self._forward if fn is None else fn
        sparse = data.is_sparse and (self._sparse_batches or self._sparse_outputs)
        rows = min(ACCURACY_BLOCK, max(1, BLOCK_ELEMENTS // max(data.n_features, 1)))
        outs = [fn(x) for _, x in data.chunks(ACCURACY_BLOCK if sparse else rows, sparse=sparse)]
        if not outs:  # no rows: the output of an empty block
            outs = [fn(data.rows(torch.zeros(0, dtype=torch.long, device=data.device)))]
        return torch.cat(outs)

    @torch.no_grad()
    def _accuracy(self, model, data):
        """(Weighted) accuracy of the network ``model`` on the TensorData ``data``, its
        outputs computed in blocks of rows (bounded memory: one pass over all rows would
        hold every hidden activation at once)."""
        was = model.training
        model.eval()
        try:
            correct = (labels_from_logits(self._outputs(data, model)) == data.y).double()
        finally:
            model.train(was)
        if not len(data):
            return 0.0
        w = torch.ones_like(correct) if data.w is None else data.w.double()
        return float((correct * w).sum() / w.sum())


def _count_labels(y):
    """``(classes, codes)`` of 1-D integer labels by counting (one pass, where
    ``np.unique`` sorts), or None for other labels or a range much wider than y."""
    y = np.asarray(y)
    if y.ndim != 1 or y.dtype.kind not in "iu" or y.size == 0:
        return None
    lo, hi = int(y.min()), int(y.max())
    if hi - lo > max(2 * y.size, 1 << 16):
        return None
    shifted = (y - lo).astype(np.intp, copy=False)
    present = np.flatnonzero(np.bincount(shifted))
    lookup = np.zeros(hi - lo + 1, dtype=np.int64)
    lookup[present] = np.arange(len(present))
    return (present + lo).astype(y.dtype), lookup[shifted]


def _group_gaps(pred, proba, y, g, n_groups):
    """Hard and soft demographic-parity and hard equalized-odds gaps (binary), torch-side."""

    def spread(values, mask=None):
        means, totals = group_means(values, g, n_groups, mask=mask)
        present = totals > 0
        if int(present.sum()) < 2:
            return 0.0
        m = means[present]
        return float(m.max() - m.min())

    pos = y > 0
    return {
        "val_dp": spread(pred),
        "val_soft_dp": spread(proba),
        "val_eo": max(spread(pred, pos), spread(pred, ~pos)),
    }


# ----------------------------------------------------------------------------- kinds
class FairClassifierMixin(ClassifierMixin):
    """Classifier side of the contract: targets, class weights, predict/predict_proba."""

    _estimator_kind = "classifier"

    def __sklearn_tags__(self):
        # first in the MRO, so it runs after ClassifierMixin has (re)set classifier_tags
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = not self._binary_only
        return tags

    def _encode_targets(self, y):
        """Labels -> 0 .. n_classes-1; sets ``classes_``."""
        counted = _count_labels(y)
        if counted is not None:  # integer labels: always binary or multi-class
            classes, y_enc = counted
            kind = "binary" if len(classes) <= 2 else "multiclass"
        else:
            check_classification_targets(y)
            kind = type_of_target(y, input_name="y")
        if kind not in ("binary", "multiclass"):
            raise ValueError(
                f"Unknown label type: {kind}. y must hold class labels "
                f"(binary or multi-class) for {type(self).__name__}."
            )
        if self._binary_only and kind == "multiclass":
            raise ValueError(
                f"Only binary classification is supported. The type of the target is "
                f"multiclass: {type(self).__name__} handles binary targets only; pass a "
                f"binary y (e.g. one class against the rest)."
            )
        if counted is None:
            classes, y_enc = np.unique(y, return_inverse=True)
        self.classes_ = classes
        if len(self.classes_) < 2:
            raise ValueError(
                f"y contains only one class ({self.classes_[0]!r}); a classifier needs "
                f"samples of at least 2 classes."
            )
        return y_enc.astype(np.int64)

    def _encode_known_targets(self, y, name="y_val"):
        """Labels encoded with the fitted ``classes_``; unseen labels raise."""
        y = np.asarray(y)
        known = np.isin(y, self.classes_)
        if not known.all():
            unseen = np.unique(y[~known])
            raise ValueError(
                f"{name} contains label(s) {unseen[:5].tolist()} not seen in fit "
                f"(classes: {self.classes_.tolist()[:20]}); every label must occur in the "
                f"training targets."
            )
        return np.searchsorted(self.classes_, y).astype(np.int64)

    def _extra_sample_weight(self, y_enc, sw):
        cw = getattr(self, "class_weight", None)
        if cw is None:
            return sw
        if isinstance(cw, dict):
            unknown = set(cw) - set(self.classes_.tolist())
            if unknown:
                raise ValueError(
                    f"class_weight names classes {sorted(unknown, key=str)} that are not in "
                    f"y (classes: {self.classes_.tolist()})."
                )
            cw = {int(np.flatnonzero(self.classes_ == k)[0]): v for k, v in cw.items()}
        cws = compute_sample_weight(cw, y_enc)
        return cws if sw is None else sw * cws

    def _n_outputs(self):
        return 1 if len(self.classes_) == 2 else len(self.classes_)

    def _proba_tensor(self, x, logits=None):
        """Positive-class probability (n,) for binary, class probabilities (n, K) else."""
        return proba_from_logits(self._forward(x) if logits is None else logits)

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The rows to predict.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities of ``classes_``; each row sums to 1.
        """
        X = self._validate_predict_X(X)
        P = self._predict_array(X, self._proba_tensor)
        if P.ndim == 1:
            P = np.column_stack([1.0 - P, P]) if P.size else np.zeros((0, 2))
        return P

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predicted class labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The rows to predict.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            The most probable class of each row.
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def predict_log_proba(self, X: ArrayLike) -> np.ndarray:
        """Logarithm of the class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The rows to predict.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            ``log(predict_proba(X))`` (-inf where a probability is 0).
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def decision_function(self, X: ArrayLike) -> np.ndarray:
        """Confidence scores: the network's output for each class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The rows to predict.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            Two classes: one score per row, the log-odds of ``classes_[1]`` (positive
            where ``predict`` gives ``classes_[1]``). More classes: one column per class,
            largest for the predicted class (logits, or the log of the averaged
            probabilities for FACIMS).
        """
        X = self._validate_predict_X(X)
        Z = self._predict_array(X, self._forward)
        if len(self.classes_) == 2:
            Z = Z[:, 0] if Z.shape[1] == 1 else Z[:, 1] - Z[:, 0]
        return Z


class FairRegressorMixin(RegressorMixin):
    """Regressor side of the contract: float targets, predict."""

    _estimator_kind = "regressor"

    def _encode_targets(self, y):
        y = np.asarray(y, dtype=np.float64)
        if y.ndim != 1:
            raise ValueError("y must be 1-D for a single-output regressor.")
        return y

    def _encode_known_targets(self, y, name="y_val"):
        return self._encode_targets(y)

    def _extra_sample_weight(self, y_enc, sw):
        return sw

    def _n_outputs(self):
        return 1

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predicted values.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The rows to predict.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            The predictions.
        """
        X = self._validate_predict_X(X)
        return self._predict_array(X, lambda x: self._forward(x).reshape(-1))
