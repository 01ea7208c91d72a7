"""BaseFairEstimator: the scikit-learn contract around the training engine.

``fit`` does, in this order and for every estimator:

1. check the hyper-parameters (``_parameter_rules``);
2. read the sensitive features, either from ``sensitive_features`` or from the columns of
   X named by ``sensitive_feature_ids`` (``drop_sensitive`` says whether those columns
   also feed the model), and encode them to group ids (:mod:`skfairbilevel._groups`);
3. validate X, y and ``sample_weight`` (``validate_data``; ``n_features_in_``,
   ``feature_names_in_``, ``classes_``);
4. canonicalise the training set: rows with zero weight are dropped, exact duplicate rows
   (same features, target and group) are merged into one row carrying the sum of their
   weights, and rows are put in a canonical order. The weighted objective is unchanged,
   and it makes ``fit`` invariant to the order of the rows and makes an integer
   ``sample_weight`` exactly equivalent to repeating rows;
5. seed a numpy and a torch generator from ``random_state`` (no global RNG), split off a
   validation set when ``early_stopping`` (or, given ``X_val``/``y_val``, process those
   rows like the training rows and train on all of X), move the data to the device once;
6. build the network (``_build_module``) unless warm-starting, and call the method's
   ``_fit_torch(train, val)``, which runs its step function(s) through :meth:`_train`.

Subclasses implement ``_build_module``, ``_fit_torch`` and ``_forward`` (logits), and
declare ``_parameter_rules``; they contain no batching, device or validation code.
"""

import copy
import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import _assert_all_finite, check_is_fitted, validate_data

from ._groups import encode_groups, resolve_column_ids
from ._params import any_of, check_params, is_array_like, number, one_of, text
from .exceptions import NoSensitiveFeaturesWarning
from .nn.engine import TensorData, Trainer, make_generators, numpy_view, resolve_device
from .nn.losses import cross_entropy_loss, group_means, proba_from_logits

__all__ = ["BaseFairEstimator", "FairClassifierMixin", "FairRegressorMixin"]

PREDICT_CHUNK = 65536


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

    At predict time this replaces ``validate_data``'s finiteness pass and the separate
    range pass of :func:`_check_dtype_range` (three passes over float64 data): one
    ``aminmax`` (float64 data, float32 model) or one ``sum`` (otherwise) over a
    zero-copy view. Only when that value is not finite are the exact checks run, which
    raise scikit-learn's message for NaN / infinity or ours for an overflowing value
    (or pass, when a float32 sum of large finite values overflowed).
    """
    if X.size == 0:
        return
    try:
        t = numpy_view(X)
    except (TypeError, ValueError, RuntimeError):  # e.g. negative strides: exact checks
        t = None
    if t is not None:
        narrowing = X.dtype.itemsize > torch.finfo(dtype).bits // 8
        if narrowing:
            lo, hi = torch.aminmax(t)
            bound = max(-float(lo), float(hi))  # NaN if any NaN: fails the test below
            if bound <= torch.finfo(dtype).max:
                return
        elif bool(torch.isfinite(t.sum())):
            return
    _assert_all_finite(X, input_name="X", estimator_name=estimator_name)
    _check_dtype_range(X, dtype)


def _device_rule(value):
    if value is None:
        return "a device such as 'cpu', 'cuda' or 'auto'"
    return None if isinstance(value, str | torch.device) else "a str or torch.device"


def check_sample_weight(sample_weight, n_samples, *, name="sample_weight", x_name="X"):
    """Float64 sample weights of length ``n_samples``: finite, non-negative, not all 0.

    ``name`` / ``x_name`` name the arguments in the error messages (e.g.
    ``sample_weight_val`` / ``X_val``)."""
    if sample_weight is None:
        return None
    sw = np.asarray(sample_weight)
    if sw.ndim == 0:
        sw = np.full(n_samples, float(sw))
    if sw.ndim != 1 or sw.shape[0] != n_samples:
        raise ValueError(
            f"{name} has shape {sw.shape} but {x_name} has {n_samples} rows; pass one "
            f"weight per row of {x_name}."
        )
    try:
        sw = sw.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must hold numbers (one weight per row).") from None
    if not np.all(np.isfinite(sw)):
        raise ValueError(f"{name} contains NaN or infinity; pass finite weights.")
    if np.any(sw < 0):
        raise ValueError(f"{name} contains negative values; weights must be >= 0.")
    if not np.any(sw > 0):
        raise ValueError(
            f"{name} is all zero: sample weights must contain at least one non-zero "
            "number."
        )
    return sw


_MIX = np.uint64(0x100000001B3)


def canonical_index(X, y, g, w):
    """Canonical training rows without copying X.

    Rows with zero weight are dropped; exact duplicates of (x, y, g) are merged into one
    row carrying the sum of their weights (row counts when ``w`` is None); rows are put
    in a canonical order (by a hash of their contents), so the result does not depend on
    the order of the input rows.

    Returns
    -------
    rows : ndarray of int64
        Indices into X of the kept rows, in canonical order.
    weights : ndarray of float64 or None
        The merged weight of each kept row; None when every weight is 1.
    """
    idx = np.arange(X.shape[0]) if w is None else np.flatnonzero(w > 0)
    h = pd.util.hash_array(np.asarray(y)[idx]) * _MIX
    h ^= pd.util.hash_array(np.asarray(g)[idx])
    for j in range(X.shape[1]):  # one column at a time: no copy of X
        column = np.ascontiguousarray(X[idx, j], dtype=np.float32)  # the values trained on
        h = (h * _MIX) ^ pd.util.hash_array(column)
    order = np.argsort(h, kind="stable")
    hs = h[order]
    first = np.ones(len(idx), dtype=bool)
    first[1:] = hs[1:] != hs[:-1]
    starts = np.flatnonzero(first)
    weights = np.ones(len(idx)) if w is None else w[idx]
    merged = np.add.reduceat(weights[order], starts) if len(idx) else weights
    rows = idx[order[starts]]
    if w is None and np.all(merged == 1.0):
        return rows, None
    return rows, merged


def canonical_rows(X, y, g, w):
    """:func:`canonical_index` applied: returns ``(X, y, g, w)`` of the kept rows."""
    rows, weights = canonical_index(X, y, g, w)
    return X[rows], y[rows], g[rows], weights


class BaseFairEstimator(BaseEstimator):
    """Base class of the torch estimators (not used directly).

    Common parameters (each subclass lists them in its ``__init__``):
    ``sensitive_feature_ids``, ``drop_sensitive``, ``max_epochs``, ``batch_size``,
    ``early_stopping``, ``validation_fraction``, ``n_iter_no_change``, ``tol``,
    ``warm_start``, ``verbose``, ``device``, ``random_state``.
    """

    # sensitive_features is requested for fit by default under metadata routing
    __metadata_request__fit = {"sensitive_features": True}

    _parameter_rules = {
        "sensitive_feature_ids": any_of(one_of(None), number(integer=True), text(),
                                        is_array_like()),
        "drop_sensitive": one_of(True, False),
        "max_epochs": number(1, integer=True),
        "batch_size": number(1, integer=True),
        "early_stopping": one_of(True, False),
        "validation_fraction": number(0, 1, low_open=True, high_open=True),
        "n_iter_no_change": number(1, integer=True),
        "tol": number(0),
        "warm_start": one_of(True, False),
        "verbose": any_of(one_of(True, False), number(0, integer=True)),
        "device": _device_rule,
        "random_state": lambda v: None if (
            v is None or isinstance(v, np.random.RandomState | np.random.Generator)
            or (isinstance(v, int | np.integer) and not isinstance(v, bool))
        ) else "None, an int, a numpy RandomState or Generator",
    }

    #: set by subclasses that only handle two classes
    _binary_only = False
    _estimator_kind = "classifier"
    #: dtype of the feature tensors at predict time (a float64 model overrides it)
    _predict_dtype = torch.float32

    # ------------------------------------------------------------------ hooks
    def _build_module(self, n_features, n_outputs):
        """Return the ``nn.Module`` holding everything trainable (on CPU; base moves it)."""
        raise NotImplementedError

    def _fit_torch(self, train, val):
        """Train ``self.module_`` on ``train`` (and ``val`` or None) via ``self._train``."""
        raise NotImplementedError

    def _forward(self, x):
        """Model output (logits for classifiers) for a batch of features ``x``."""
        return self.module_(x)

    def _uses_groups(self):
        """Whether this configuration needs sensitive features (>= 2 groups)."""
        return True

    def _lr_hint(self):
        """Names the learning rate(s) in the non-finite-loss error, e.g. ``lr=0.1``."""
        return f"lr={getattr(self, 'lr', '?')}"

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, *, sensitive_features=None, sample_weight=None, X_val=None,
            y_val=None, sensitive_features_val=None, sample_weight_val=None):
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
            merged into weights. As in scikit-learn's
            ``HistGradientBoostingClassifier.fit``; in a Pipeline,
            ``Pipeline(..., transform_input=["X_val"])`` transforms it like X.
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
        self
        """
        check_params(self)
        self._check_method_params()
        self._check_validation_args(X_val, y_val, sensitive_features,
                                    sensitive_features_val, sample_weight_val)
        X_raw = X
        if self.sensitive_feature_ids is not None:
            if sensitive_features is not None:
                raise ValueError(
                    "Got both sensitive_features and sensitive_feature_ids; pass the "
                    "sensitive features one way only (set sensitive_feature_ids=None to "
                    "use the sensitive_features argument)."
                )
        X, y = self._validate_fit_data(X, y)
        n = X.shape[0]
        if self.sensitive_feature_ids is not None:
            positions = resolve_column_ids(X_raw, self.sensitive_feature_ids)
            A = pd.DataFrame(np.asarray(X)[:, positions])
            self._model_columns = (
                [j for j in range(X.shape[1]) if j not in set(positions)]
                if self.drop_sensitive else None
            )
            if self._model_columns is not None and not self._model_columns:
                raise ValueError(
                    "sensitive_feature_ids names every column of X, and drop_sensitive=True "
                    "removes them, leaving no features; set drop_sensitive=False or add "
                    "features."
                )
        else:
            A = sensitive_features
            self._model_columns = None
        if self._model_columns is not None:
            X = X[:, self._model_columns]
        y_enc = self._encode_targets(y)
        sw = check_sample_weight(sample_weight, n)
        sw = self._extra_sample_weight(y_enc, sw)

        uses_groups = self._uses_groups()
        if A is None:
            if uses_groups:
                warnings.warn(
                    f"{type(self).__name__}.fit got no sensitive features, so it trains "
                    f"its fairness-unaware form. Pass sensitive_features=... to fit (with "
                    f"metadata routing on, GridSearchCV and Pipeline route it), or set "
                    f"sensitive_feature_ids to read them from columns of X.",
                    NoSensitiveFeaturesWarning, stacklevel=2,
                )
            g = np.zeros(n, dtype=np.int64)
            self.groups_ = np.array([None], dtype=object)
            self.fairness_aware_ = False
        else:
            g, self.groups_ = encode_groups(A, n, name="sensitive_features"
                                            if self.sensitive_feature_ids is None
                                            else "sensitive_feature_ids")
            self.fairness_aware_ = uses_groups
            if uses_groups and len(self.groups_) < 2:
                raise ValueError(
                    f"sensitive_features has a single group ({self.groups_[0]!r}); "
                    f"{type(self).__name__} needs at least two groups to measure "
                    f"fairness. Check the sensitive column, or fit without "
                    f"sensitive_features for the fairness-unaware model."
                )
        self.n_groups_ = len(self.groups_)

        X = np.asarray(X)
        rows, sw = canonical_index(X, y_enc, g, sw)
        if sw is not None:
            sw = sw / sw.mean()

        given_val = None if X_val is None else self._given_validation_data(
            X_val, y_val, sensitive_features_val, sample_weight_val)

        self.device_ = resolve_device(self.device)
        self._rng, self._gen = make_generators(self.random_state, self.device_)
        if given_val is None:
            train_idx, val_idx = self._validation_split(len(rows), y_enc[rows], g[rows])
        else:  # the given rows replace the held-out split: train on all of X
            train_idx, val_idx = np.arange(len(rows)), None
        y_dtype = torch.long if self._estimator_kind == "classifier" else torch.float32

        def to_data(X, idx):
            take = rows[idx]  # the one gather of X during fit
            return TensorData.from_numpy(X[take].astype(np.float32, copy=False),
                                         y_enc[take], g[take],
                                         None if sw is None else sw[idx],
                                         n_groups=self.n_groups_, device=self.device_,
                                         y_dtype=y_dtype)

        train = to_data(X, train_idx)
        val = None if val_idx is None else to_data(X, val_idx)
        if given_val is not None:
            Xv, yv, gv, wv = given_val
            val = TensorData.from_numpy(Xv.astype(np.float32, copy=False), yv, gv, wv,
                                        n_groups=self.n_groups_, device=self.device_,
                                        y_dtype=y_dtype)
            del Xv, given_val
        n_model_features = X.shape[1]
        # training reads only the float32 tensors: drop the validated array (a copy when
        # X was e.g. a DataFrame or had its sensitive columns removed)
        del X

        warm = self.warm_start and hasattr(self, "module_") and \
            getattr(self, "_n_model_features", None) == n_model_features
        if not warm:
            with torch.random.fork_rng(devices=[]):  # belt and braces: no global RNG use
                module = self._build_module(n_model_features, self._n_outputs())
            self.module_ = module.to(self.device_)
            self.history_ = []
            self._n_model_features = n_model_features
        else:
            self.module_ = self.module_.to(self.device_)
        self.interrupted_ = False
        self._fit_torch(train, val)
        self.n_iter_ = len(self.history_)
        self.module_.eval()
        self._release_fit_state()
        return self

    # ------------------------------------------------------------------ given validation
    def _uses_validation_data(self):
        """Whether this configuration uses validation rows (so accepts ``X_val``).

        Default: when ``fit`` would hold out ``validation_fraction`` of the rows
        (:meth:`_holds_out_validation`). A method whose own algorithm needs validation
        rows (FACIMS's upper level) returns True."""
        return self._holds_out_validation()

    def _check_validation_args(self, X_val, y_val, sensitive_features,
                               sensitive_features_val, sample_weight_val):
        """Consistency of the ``*_val`` arguments of ``fit`` (before any work)."""
        if X_val is None:
            for name, value in (("y_val", y_val),
                                ("sensitive_features_val", sensitive_features_val),
                                ("sample_weight_val", sample_weight_val)):
                if value is not None:
                    raise ValueError(
                        f"{name} was given without X_val; pass the validation features "
                        f"as X_val too, or drop {name}."
                    )
            return
        if y_val is None:
            raise ValueError(
                "X_val was given without y_val; pass the validation targets as y_val."
            )
        if not self._uses_validation_data():
            params = self.get_params(deep=False)
            uses = [f"{k}=True" for k in ("early_stopping", "record_validation")
                    if k in params]
            fix = (f"set {' or '.join(uses)} to use X_val, or do not pass X_val" if uses
                   else "do not pass X_val")
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

    def _given_validation_data(self, X_val, y_val, sensitive_features_val,
                               sample_weight_val):
        """``(X, y, g, w)`` numpy arrays of the given validation rows, processed like the
        training rows (after the training data set ``n_features_in_``, ``classes_``,
        ``groups_`` and the model columns): canonical rows, weights of mean 1 or None."""
        X_raw = X_val
        X_val, y_val = self._validate_fit_data(X_val, y_val, reset=False)
        n = X_val.shape[0]
        if self.sensitive_feature_ids is not None:
            positions = resolve_column_ids(X_raw, self.sensitive_feature_ids)
            A = pd.DataFrame(np.asarray(X_val)[:, positions])
            name = "the sensitive_feature_ids columns of X_val"
        else:
            A = sensitive_features_val
            name = "sensitive_features_val"
        if self._model_columns is not None:
            X_val = X_val[:, self._model_columns]
        y_enc = self._encode_val_targets(y_val)
        sw = check_sample_weight(sample_weight_val, n, name="sample_weight_val",
                                 x_name="X_val")
        sw = self._extra_sample_weight(y_enc, sw)
        if A is None or self.groups_[0] is None:  # fitted without groups: one group
            g = np.zeros(n, dtype=np.int64)
        else:
            g = self._encode_val_groups(A, n, name)
        X_val = np.asarray(X_val)
        rows, sw = canonical_index(X_val, y_enc, g, sw)
        if sw is not None:
            sw = sw / sw.mean()
        return X_val[rows], y_enc[rows], g[rows], sw

    def _encode_val_groups(self, A, n, name):
        """Group ids of validation rows in the fitted ``groups_``; unseen groups raise."""
        g_local, labels = encode_groups(A, n, name=name)
        def n_columns(label):
            return len(label) if isinstance(label, tuple) else 1

        n_train, n_given = n_columns(self.groups_[0]), n_columns(labels[0])
        if n_given != n_train:
            raise ValueError(
                f"{name} has {n_given} column(s) but the training sensitive features "
                f"have {n_train}; pass the same sensitive columns for the validation rows."
            )
        lookup = {label: i for i, label in enumerate(self.groups_)}
        unseen = [label for label in labels if label not in lookup]
        if unseen:
            raise ValueError(
                f"{name} contains group(s) {unseen[:5]} not seen in the training data "
                f"(training groups: {list(self.groups_)[:20]}); every validation group "
                f"must occur in the training rows. Drop those validation rows or add "
                f"training rows of those groups."
            )
        return np.array([lookup[label] for label in labels], dtype=np.int64)[g_local]

    def _release_fit_state(self):
        for attr in ("_rng", "_gen"):
            if hasattr(self, attr):
                delattr(self, attr)

    def _check_method_params(self):
        """Extra checks a subclass needs beyond ``_parameter_rules``."""

    def _validate_fit_data(self, X, y, reset=True):
        try:
            X, y = validate_data(self, X, y, reset=reset, dtype=[np.float64, np.float32],
                                 y_numeric=self._estimator_kind == "regressor")
        except ValueError as exc:
            if "could not convert" in str(exc) and self.sensitive_feature_ids is not None:
                raise ValueError(
                    f"{exc}. X must be numeric; encode string columns first (e.g. with "
                    f"skfairbilevel.datasets.make_preprocessor, which ordinal-encodes the "
                    f"sensitive column and keeps its name)."
                ) from exc
            raise
        _check_dtype_range(X, torch.float32)  # the training data is float32 tensors
        return X, y

    def _holds_out_validation(self):
        """Whether ``fit`` holds out ``validation_fraction`` of the rows as ``val``
        (default: only for early stopping; a subclass may also record validation
        metrics without stopping early)."""
        return self.early_stopping

    def _validation_split(self, n, y, g):
        if not self._holds_out_validation():
            return np.arange(n), None
        n_val = int(round(self.validation_fraction * n))
        if n_val < 1 or n - n_val < 1:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} leaves {n_val} validation "
                f"and {n - n_val} training rows out of {n}; early stopping needs both. Use "
                f"more data, another validation_fraction, or early_stopping=False."
            )
        idx = np.arange(n)
        seed = int(self._rng.integers(0, 2**31 - 1))
        strata = y if self._estimator_kind == "classifier" else None
        try:
            tr, va = train_test_split(idx, test_size=n_val, random_state=seed, stratify=strata)
        except ValueError:  # a class too small to stratify
            tr, va = train_test_split(idx, test_size=n_val, random_state=seed)
        return np.sort(tr), np.sort(va)

    # ------------------------------------------------------------------ training
    def _train(self, step, data, *, val=None, sampler=None, max_epochs=None,
               schedulers=(), desc=None, early_stopping=None, stop=None):
        """Run the shared engine; records into ``self.history_``. Returns the Trainer.

        ``stop(record) -> bool`` (optional) ends training after an epoch, e.g. when an
        outer loop has converged.
        """
        es = self.early_stopping if early_stopping is None else early_stopping
        validate = None
        if val is not None:
            def validate():
                return self._validation_metrics(val)
        self.module_.train()
        trainer = Trainer(
            self.module_, max_epochs=self.max_epochs if max_epochs is None else max_epochs,
            batch_size=self.batch_size, generator=self._gen, schedulers=schedulers,
            validate=validate, early_stopping=es and val is not None,
            n_iter_no_change=self.n_iter_no_change, tol=self.tol, verbose=self.verbose,
            lr_hint=self._lr_hint(), history=self.history_,
            desc=desc or type(self).__name__, stop=stop,
        )
        try:
            trainer.run(step, data, sampler)
        finally:
            self.module_.train(False)
        self.interrupted_ = self.interrupted_ or trainer.interrupted
        return trainer

    @torch.no_grad()
    def _validation_metrics(self, val):
        """Validation loss plus (classifiers) accuracy and hard/soft DP and EO gaps."""
        was_training = self.module_.training
        self.module_.eval()
        try:
            logits = self._forward(val.X)
            if self._estimator_kind == "regressor":
                return {"val_loss": float(((logits.reshape(-1) - val.y) ** 2).mean())}
            out = {"val_loss": float(cross_entropy_loss(logits, val.y, val.w))}
            proba = self._proba_tensor(val.X, logits=logits)
            pred = (proba > 0.5).long() if proba.dim() == 1 else proba.argmax(1)
            out["val_accuracy"] = float((pred == val.y).float().mean())
            if self.n_groups_ > 1 and proba.dim() == 1:
                out.update(_group_gaps(pred.float(), proba, val.y, val.g, self.n_groups_))
            return out
        finally:
            self.module_.train(was_training)

    # ------------------------------------------------------------------ predict
    def _validate_predict_X(self, X):
        check_is_fitted(self, "module_")
        X = validate_data(self, X, reset=False, dtype=[np.float32, np.float64],
                          ensure_all_finite=False)
        _check_predict_values(X, self._predict_dtype, type(self).__name__)
        if self._model_columns is not None:
            X = X[:, self._model_columns]
        return X

    @torch.no_grad()
    def _predict_array(self, X, fn):
        """Apply ``fn`` (tensor batch -> tensor) over X in chunks; return numpy float64."""
        self.module_.eval()
        outs = []
        for start in range(0, X.shape[0], PREDICT_CHUNK):
            xb = numpy_view(np.ascontiguousarray(X[start:start + PREDICT_CHUNK]),
                            dtype=self._predict_dtype, device=self.device_)
            outs.append(fn(xb).detach().to("cpu", torch.float64))
        if not outs:
            return np.zeros((0,))
        return torch.cat(outs).numpy()

    # ------------------------------------------------------------------ sklearn glue
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        tags.non_deterministic = False
        return tags

    def __getstate__(self):
        state = super().__getstate__()
        state = dict(state)
        for key, value in list(state.items()):
            if isinstance(value, torch.nn.Module):
                if any(t.device.type != "cpu" for t in
                       list(value.parameters()) + list(value.buffers())):
                    value = copy.deepcopy(value).to("cpu")
                state[key] = value
            elif torch.is_tensor(value) and value.device.type != "cpu":
                state[key] = value.detach().to("cpu")
            elif isinstance(value, torch.Generator):
                state.pop(key)
        if "device_" in state:
            state["device_"] = str(state["device_"])
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "device_" in state:
            dev = torch.device(state["device_"])
            if dev.type == "cuda" and not torch.cuda.is_available():
                dev = torch.device("cpu")
            self.device_ = dev
            for key, value in list(self.__dict__.items()):
                if isinstance(value, torch.nn.Module):
                    setattr(self, key, value.to(dev))
                elif torch.is_tensor(value):
                    setattr(self, key, value.to(dev))


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


class FairClassifierMixin(ClassifierMixin):
    """Classifier side of the contract: targets, class weights, predict/predict_proba."""

    _estimator_kind = "classifier"

    def __sklearn_tags__(self):
        # first in the MRO, so it runs after ClassifierMixin has (re)set classifier_tags
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = not self._binary_only
        return tags

    def _encode_targets(self, y):
        check_classification_targets(y)
        if type_of_target(y) not in ("binary", "multiclass"):
            raise ValueError(
                f"Unknown label type: {type_of_target(y)}. y must hold class labels "
                f"(binary or multi-class) for {type(self).__name__}."
            )
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"y contains only one class ({self.classes_[0]!r}); a classifier needs "
                f"samples of at least 2 classes."
            )
        if self._binary_only and len(self.classes_) > 2:
            raise ValueError(
                f"Only binary classification is supported: y has {len(self.classes_)} "
                f"classes but {type(self).__name__} handles binary targets only; pass a "
                f"binary y (e.g. one class against the rest)."
            )
        return y_enc.astype(np.int64)

    def _encode_val_targets(self, y):
        """Validation labels encoded with the fitted ``classes_``; unseen labels raise."""
        y = np.asarray(y)
        known = np.isin(y, self.classes_)
        if not known.all():
            unseen = np.unique(y[~known])
            raise ValueError(
                f"y_val contains label(s) {unseen[:5].tolist()} not seen in y (classes: "
                f"{self.classes_.tolist()[:20]}); every validation label must occur in the "
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

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes); rows sum to 1."""
        X = self._validate_predict_X(X)
        P = self._predict_array(X, self._proba_tensor)
        if P.ndim == 1:
            P = np.column_stack([1.0 - P, P]) if P.size else np.zeros((0, 2))
        return P

    def predict(self, X):
        """Predicted class labels."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


class FairRegressorMixin(RegressorMixin):
    """Regressor side of the contract: float targets, predict."""

    _estimator_kind = "regressor"

    def _encode_targets(self, y):
        y = np.asarray(y, dtype=np.float64)
        if y.ndim != 1:
            raise ValueError("y must be 1-D for a single-output regressor.")
        return y

    def _encode_val_targets(self, y):
        return self._encode_targets(y)

    def _extra_sample_weight(self, y_enc, sw):
        return sw

    def _n_outputs(self):
        return 1

    def predict(self, X):
        """Predicted values."""
        X = self._validate_predict_X(X)
        return self._predict_array(X, lambda x: self._forward(x).reshape(-1))
