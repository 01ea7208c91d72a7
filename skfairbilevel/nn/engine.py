"""The one training engine shared by every torch estimator.

Two layers:

* :class:`Loop` runs *iterations*: ``iterate(i) -> dict`` does one unit of work (an
  epoch over mini-batches, or one outer iteration of a bilevel method) and returns the
  scalars to record. The loop owns everything around it: the history, the progress bar,
  timing, the non-finite check (restore the last good weights, raise
  :class:`NonFiniteLossError`), KeyboardInterrupt (keep the last completed iteration,
  warn) and stopping. Method-specific work at the end of an iteration goes into
  :class:`Callback` objects (learning-rate schedules, validation scores, early stopping,
  convergence tests).
* :func:`epochs` builds the iteration of mini-batch training on top of it: a *step*
  function ``step(batch) -> dict[str, Tensor]`` runs on every :class:`Batch` a sampler
  draws (by default :func:`shuffled_batches`: a permutation of in-memory tensors cut
  into chunks, no per-row ``Dataset``) and the epoch records the mean of its outputs.

The samplers used by the estimators (shuffled, paired, group-balanced and per-group
padded batches) live here too, so that no estimator carries batching code.
"""

import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from ..exceptions import NonFiniteLossError, TrainingInterruptedWarning
from .draws import randperm

__all__ = [
    "Batch",
    "TensorData",
    "SparseRows",
    "row_chunks",
    "Loop",
    "Callback",
    "Scores",
    "LRSchedulers",
    "EarlyStopping",
    "StopWhen",
    "EpochLog",
    "to_floats",
    "epochs",
    "shuffled_batches",
    "paired_batches",
    "balanced_batches",
    "padded_group_batch",
    "draw_groups",
    "resolve_device",
    "make_generators",
    "snapshot",
    "restore",
    "descend",
    "numpy_view",
]


# ----------------------------------------------------------------------------- data
@dataclass
class Batch:
    """One mini-batch: features ``x``, targets ``y``, group ids ``g``, sample weights
    ``w`` (None when all rows weigh the same), the row positions ``idx``, and whether it
    is the ``first`` / ``last`` batch of its epoch."""

    x: torch.Tensor
    y: torch.Tensor
    g: torch.Tensor
    w: torch.Tensor | None
    idx: torch.Tensor
    first: bool = True
    last: bool = True

    def part(self, start, stop):
        """The rows ``start .. stop - 1`` of the batch (``x`` dense or sparse CSR)."""
        return Batch(
            _slice_rows(self.x, start, stop),
            self.y[start:stop],
            self.g[start:stop],
            None if self.w is None else self.w[start:stop],
            self.idx[start:stop],
            self.first,
            self.last,
        )


def _slice_rows(x, start, stop):
    """Rows ``start .. stop - 1`` of a dense tensor or of a sparse CSR tensor (which
    torch cannot slice)."""
    if x.layout != torch.sparse_csr:
        return x[start:stop]
    crow = x.crow_indices()
    lo, hi = int(crow[start]), int(crow[stop])
    with warnings.catch_warnings():  # torch's notice that sparse CSR is in beta
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(
            crow[start : stop + 1] - lo,
            x.col_indices()[lo:hi],
            x.values()[lo:hi],
            size=(stop - start, x.shape[1]),
            check_invariants=False,
        )


class SparseRows:
    """A CSR matrix on a device whose rows are made dense only when they are used.

    ``crow`` (N + 1,), ``col`` (nnz,) and ``values`` (nnz,) are the compressed rows, with
    sorted column indices and no duplicate entries; :meth:`dense` gives the dense rows
    at given positions (one batch at a time, never the whole matrix).
    """

    def __init__(self, crow, col, values, shape):
        self.crow, self.col, self.values = crow, col, values
        self.shape = (int(shape[0]), int(shape[1]))

    @property
    def device(self):
        """The device of the tensors."""
        return self.values.device

    @property
    def dtype(self):
        """The dtype of the values (and of the dense rows)."""
        return self.values.dtype

    def __len__(self):
        return self.shape[0]

    @classmethod
    def from_scipy(cls, matrix, device):
        """The CSR arrays of a scipy matrix (canonical format) on ``device``; on the CPU
        they share memory with ``matrix``."""
        return cls(
            numpy_view(matrix.indptr, device=device),
            numpy_view(matrix.indices, device=device),
            numpy_view(matrix.data, device=device),
            matrix.shape,
        )

    def _entries(self, pos):
        """``(counts, rows, src)`` of the rows at ``pos``: their numbers of stored
        entries, and for every entry its row in the batch and its position in ``col``
        and ``values``."""
        starts = self.crow.index_select(0, pos).long()
        counts = self.crow.index_select(0, pos + 1).long() - starts
        total = int(counts.sum())  # the size of the gather: one read per batch
        rows = torch.repeat_interleave(
            torch.arange(pos.shape[0], device=self.device), counts, output_size=total
        )
        first = torch.cumsum(counts, 0) - counts  # where each row's entries start
        src = torch.arange(total, device=self.device) + (starts - first).index_select(0, rows)
        return counts, rows, src

    def dense(self, pos):
        """The rows at the positions ``pos`` (1-D LongTensor), as a dense tensor."""
        pos = pos.reshape(-1)
        out = torch.zeros((pos.shape[0], self.shape[1]), dtype=self.dtype, device=self.device)
        _, rows, src = self._entries(pos)
        out[rows, self.col.index_select(0, src).long()] = self.values.index_select(0, src)
        return out

    def csr(self, pos):
        """The rows at the positions ``pos`` (1-D LongTensor), as a sparse CSR tensor
        (for a first layer that multiplies sparse rows directly)."""
        counts, _, src = self._entries(pos)
        crow = torch.zeros(pos.shape[0] + 1, dtype=torch.long, device=self.device)
        torch.cumsum(counts, 0, out=crow[1:])
        with warnings.catch_warnings():  # torch's notice that sparse CSR is in beta
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return torch.sparse_csr_tensor(
                crow,
                self.col.index_select(0, src).long(),
                self.values.index_select(0, src),
                size=(pos.shape[0], self.shape[1]),
                check_invariants=False,
            )


def _gather(features, pos):
    """Dense rows of ``features`` (a tensor or :class:`SparseRows`) at positions ``pos``
    (a LongTensor of any shape; the result has shape ``(*pos.shape, n_features)``)."""
    if isinstance(features, SparseRows):
        return features.dense(pos).reshape(*pos.shape, features.shape[1])
    if pos.dim() == 1:
        return features.index_select(0, pos)
    return features[pos]


class TensorData:
    """Rows on one device: features, targets, groups and weights.

    Parameters
    ----------
    features : Tensor of shape (N, d) or SparseRows
        The stored feature rows (on the CPU: the prepared input itself, not a copy).
    y, g : Tensor of shape (n,)
        Targets and group ids of the rows.
    w : Tensor of shape (n,) or None
        Sample weights of the rows (None: all rows weigh the same).
    n_groups : int
        Number of groups.
    index : LongTensor of shape (n,) or None
        Row ``i`` is ``features[index[i]]`` (the rows' order, and which stored rows are
        used); None: row ``i`` is ``features[i]``.
    sparse_batches : bool, default=False
        With sparse features: :meth:`batch` gives the batch's ``x`` as a sparse CSR
        tensor (for a network whose first layer is a ``Linear`` applied to ``x`` and
        nothing else reads ``x``) instead of dense rows.

    Notes
    -----
    Batches (:meth:`batch`, :meth:`rows`) and blocks (:meth:`chunks`) gather the rows
    they need on the device; :attr:`X` holds every row as one dense tensor (made once,
    on first use; no copy when ``index`` is None and the features are dense).
    """

    def __init__(self, features, y, g, w=None, n_groups=1, index=None, sparse_batches=False):
        self.features = features
        self.y, self.g, self.w = y, g, w
        self.n_groups = int(n_groups)
        self.index = index
        self.sparse_batches = bool(sparse_batches) and isinstance(features, SparseRows)
        self._X = None

    def __len__(self):
        return self.y.shape[0]

    @property
    def device(self):
        """The device of the tensors."""
        return self.y.device

    @property
    def n_features(self):
        """Number of features of a row."""
        return self.features.shape[1]

    @property
    def shape(self):
        """``(n_rows, n_features)``, as the shape of :attr:`X`."""
        return (len(self), self.n_features)

    def positions(self, idx):
        """Positions in ``features`` of the rows ``idx``."""
        return idx if self.index is None else self.index[idx]

    def rows(self, idx):
        """Dense features of the rows ``idx`` (a LongTensor of any shape on the data's
        device), of shape ``(*idx.shape, n_features)``."""
        return _gather(self.features, self.positions(idx))

    @property
    def is_sparse(self):
        """Whether the stored features are sparse (:class:`SparseRows`)."""
        return isinstance(self.features, SparseRows)

    def chunks(self, size, *, sparse=False):
        """``(start, features of rows start .. start + size - 1)`` over all rows, in
        order: dense blocks of at most ``size`` rows; with ``sparse`` and sparse
        features, sparse CSR tensors (for matrix products that need no dense rows)."""
        n, size = len(self), max(1, int(size))
        dense_in_order = self.index is None and not self.is_sparse
        for start in range(0, n, size):
            stop = min(start + size, n)
            if dense_in_order:
                yield start, self.features[start:stop]
                continue
            idx = torch.arange(start, stop, device=self.device)
            if sparse and self.is_sparse:
                yield start, self.features.csr(self.positions(idx))
            else:
                yield start, self.rows(idx)

    @property
    def X(self):
        """Every row as one dense tensor (n, d), made on first use."""
        if self._X is None:
            if self.index is None and not isinstance(self.features, SparseRows):
                self._X = self.features
            else:
                self._X = self.rows(torch.arange(len(self), device=self.device))
        return self._X

    def take(self, positions):
        """The rows at ``positions`` (LongTensor), sharing the stored features."""
        return TensorData(
            self.features,
            self.y[positions],
            self.g[positions],
            None if self.w is None else self.w[positions],
            self.n_groups,
            self.positions(positions),
            self.sparse_batches,
        )

    def batch(self, idx, *, first=True, last=True):
        """The rows ``idx`` (a LongTensor on the data's device) as a :class:`Batch`."""
        return Batch(
            self.features.csr(self.positions(idx)) if self.sparse_batches else self.rows(idx),
            self.y.index_select(0, idx),
            self.g.index_select(0, idx),
            None if self.w is None else self.w.index_select(0, idx),
            idx,
            first,
            last,
        )

    def group_indices(self):
        """List of LongTensors: the rows of each group ``0 .. n_groups-1``."""
        order = torch.argsort(self.g, stable=True)
        counts = torch.bincount(self.g, minlength=self.n_groups).tolist()
        return list(torch.split(order, counts))


def row_chunks(X, size, *, sparse=False):
    """``(start, block)`` over the rows of ``X`` (a dense tensor or :class:`TensorData`)
    in blocks of at most ``size`` rows (``sparse``: see :meth:`TensorData.chunks`)."""
    if isinstance(X, TensorData):
        yield from X.chunks(size, sparse=sparse)
        return
    for start in range(0, X.shape[0], max(1, int(size))):
        yield start, X[start : start + size]


def numpy_view(a, dtype=None, device=None):
    """``torch.as_tensor`` of a numpy array that may be read-only, for reading only.

    pandas' copy-on-write and joblib's memory maps give read-only arrays, which
    ``torch.as_tensor`` shares with a warning that writing to them is undefined. The
    tensors made here are only read, so a read-only array is wrapped through DLPack
    (numpy >= 2.1 exports it marked read-only): no copy, no warning, and no change to
    the process's warning filters. Where numpy cannot export it (older numpy,
    byte-swapped or object arrays), the warning is silenced locally.
    """
    if a.flags.writeable:
        return torch.as_tensor(a, dtype=dtype, device=device)
    try:
        t = torch.from_dlpack(a)
    except (BufferError, TypeError, RuntimeError, ValueError):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            return torch.as_tensor(a, dtype=dtype, device=device)
    return t.to(dtype=dtype, device=device)


# ----------------------------------------------------------------------------- samplers
# Every sampler draws from a CPU generator and moves the indices to the data's device
# (:mod:`skfairbilevel.nn.draws`): the same seed gives the same batches on every device.
def shuffled_batches(n, batch_size, generator, device):
    """One epoch of the default sampler: a fresh permutation of ``n`` rows (drawn from
    ``generator``) cut into batches of ``batch_size`` (clipped to ``n``)."""
    perm = randperm(n, generator, device=device)
    return torch.split(perm, max(1, min(int(batch_size), n)))


def paired_batches(n, batch_size, generator, device):
    """Two independent shuffled passes over ``n`` rows, batch by batch: each index
    tensor holds a batch of the first pass followed by one of the second (equal sizes),
    for methods that update two levels on independent batches."""
    size = max(1, min(int(batch_size), n))
    first = randperm(n, generator, device=device).split(size)
    second = randperm(n, generator, device=device).split(size)
    return [torch.cat([a, b]) for a, b in zip(first, second, strict=True)]


def balanced_batches(group_rows, batch_size, generator):
    """A sampler of one group-balanced batch per epoch.

    ``batch_size // S`` rows of each of the ``S`` groups (the first ``batch_size % S``
    groups one more), drawn without replacement within the batch; a group with fewer
    rows contributes all of them. ``group_rows`` is :meth:`TensorData.group_indices`.
    """
    n_groups = len(group_rows)
    quota = [
        batch_size // n_groups + (1 if a < batch_size % n_groups else 0) for a in range(n_groups)
    ]

    def sampler(epoch):
        parts = []
        for a, r in enumerate(group_rows):
            m = min(quota[a], r.shape[0])
            if m >= r.shape[0]:
                parts.append(r)
            else:
                parts.append(r[randperm(r.shape[0], generator, device=r.device)[:m]])
        return [torch.cat(parts)]

    return sampler


def padded_group_batch(data, group_rows, groups, batch_size, generator):
    """One batch per group, stacked: ``x`` (A, m, d), ``y`` (A, m), row weights (A, m).

    For each group in ``groups``, at most ``batch_size`` of its rows (``group_rows``, as
    from :meth:`TensorData.group_indices`) drawn without replacement, all of them for a
    smaller group. Shorter batches are padded to the longest with weight 0.
    """
    picked = []
    for a in groups:
        r = group_rows[a]
        if len(r) > batch_size:
            r = r[randperm(len(r), generator, device=data.device)[:batch_size]]
        picked.append(r)
    m = max(len(r) for r in picked)
    pos = torch.arange(m, device=data.device)
    idx = torch.stack([torch.cat([r, r[:1].expand(m - len(r))]) for r in picked])
    mask = torch.stack([(pos < len(r)).to(torch.float32) for r in picked])
    w = mask if data.w is None else data.w[idx] * mask
    return data.rows(idx), data.y[idx], w


def draw_groups(n_groups, k, rng):
    """Draw ``k`` of the ``n_groups`` groups without replacement (sorted ids).

    The draw is by the numpy generator ``rng``; all groups when ``k`` is None or at least
    ``n_groups``.
    """
    if k is None or k >= n_groups:
        return list(range(n_groups))
    return sorted(rng.choice(n_groups, size=k, replace=False).tolist())


# ----------------------------------------------------------------------------- devices, RNG
def resolve_device(device):
    """``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"auto"`` or a torch.device -> torch.device.

    Raises a ValueError naming ``device`` when the device does not exist or is not
    available on this machine.
    """
    if isinstance(device, torch.device):
        dev = device
    elif device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError):
            raise ValueError(
                f"device={device!r} is not a valid torch device; use 'cpu', 'cuda', "
                f"'cuda:<index>' or 'auto'."
            ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} but CUDA is not available on this machine; use "
                f"device='cpu', or device='auto' to take a GPU only when there is one."
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} but only {torch.cuda.device_count()} CUDA device(s) "
                f"exist; use an index below that or 'auto'."
            )
    elif dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ValueError(f"device={device!r} but MPS is not available; use 'cpu'.")
    elif dev.type != "cpu":
        raise ValueError(f"device={device!r} is not supported; use 'cpu', 'cuda' or 'auto'.")
    return dev


def make_generators(random_state):
    """A numpy Generator and a CPU torch Generator, both seeded from ``random_state``
    (int, RandomState, Generator or None). No global state is touched.

    The torch generator stays on the CPU whatever the training device: draws are moved
    to the device (:mod:`skfairbilevel.nn.draws`), so a seed gives the same numbers on
    every device."""
    if isinstance(random_state, np.random.Generator):
        seed_source = random_state
    elif isinstance(random_state, np.random.RandomState):
        seed_source = np.random.default_rng(random_state.randint(0, 2**31 - 1, size=4))
    elif random_state is None:
        seed_source = np.random.default_rng()
    else:
        seed_source = np.random.default_rng(int(random_state))
    seeds = seed_source.integers(0, 2**63 - 1, size=2)
    rng = np.random.default_rng(int(seeds[0]))
    gen = torch.Generator()
    gen.manual_seed(int(seeds[1]))
    return rng, gen


# ----------------------------------------------------------------------------- parameters
def snapshot(module):
    """A detached copy of ``module.state_dict()`` (parameters and buffers)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def restore(module, state):
    """Load a :func:`snapshot` back into ``module`` in place."""
    with torch.no_grad():
        own = module.state_dict()
        for k, v in state.items():
            own[k].copy_(v)


def descend(loss, optimizer, params=None, *, retain_graph=False, step=True):
    """Set the gradients of ``params`` (default: the optimiser's parameters) to
    d ``loss`` / d p and take one optimiser step.

    Only ``params`` receive gradients (nothing accumulates elsewhere, so alternating
    players of a bilevel method never see each other's gradients); a parameter the
    loss does not depend on gets ``grad = None``, which ``torch.optim`` optimisers skip
    and :class:`~skfairbilevel.nn.optim.LeanAdam` refuses with an error naming the
    parameter. ``step=False`` only sets the gradients (e.g. to step two optimisers
    together).
    """
    if params is None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
    grads = torch.autograd.grad(loss, params, retain_graph=retain_graph, allow_unused=True)
    for p, g in zip(params, grads, strict=True):
        p.grad = g
    if step:
        optimizer.step()


# ----------------------------------------------------------------------------- callbacks
class Callback:
    """A hook of :class:`Loop`; every method does nothing unless overridden.

    ``on_iteration_end(loop, record)`` runs after an iteration's scalars passed the
    non-finite check and may add entries to ``record`` (which is then timed, stored in
    the history and its weights snapshotted as ``loop.state``);
    ``after_iteration(loop, record)`` runs after that and may end training by setting
    ``loop.stop = True``; ``on_train_end(loop)`` runs once after the last iteration
    (not after an error).
    """

    def on_iteration_end(self, loop, record):
        """Add entries to ``record`` (before it is stored)."""

    def after_iteration(self, loop, record):
        """Decide on stopping (after the record and the weights are stored)."""

    def on_train_end(self, loop):
        """Finish (after the last iteration)."""


class Scores(Callback):
    """Adds ``scores(record) -> dict`` to every record (e.g. validation metrics)."""

    def __init__(self, scores):
        self.scores = scores

    def on_iteration_end(self, loop, record):
        """Add the scores to ``record``."""
        record.update(self.scores(record))


class LRSchedulers(Callback):
    """Steps learning-rate schedulers once per iteration."""

    def __init__(self, schedulers):
        self.schedulers = list(schedulers)

    def on_iteration_end(self, loop, record):
        """Step every scheduler."""
        for scheduler in self.schedulers:
            scheduler.step()


class StopWhen(Callback):
    """Ends training after an iteration for which ``predicate(record)`` is true (e.g. an
    outer loop that has converged); the module keeps that iteration's weights."""

    def __init__(self, predicate):
        self.predicate = predicate

    def after_iteration(self, loop, record):
        """Stop when the predicate holds."""
        if self.predicate(record):
            loop.stop = True


class EarlyStopping(Callback):
    """Stops when ``monitor`` has not improved by ``tol`` for ``patience`` iterations,
    and restores the weights of the best iteration (``mode``: "min" or "max")."""

    def __init__(self, monitor="val_loss", *, patience=10, tol=1e-4, mode="min"):
        self.monitor = monitor
        self.patience = int(patience)
        self.tol = float(tol)
        self.sign = 1.0 if mode == "min" else -1.0
        self.best_value = self.best_state = self.best_iteration = None
        self.bad_iterations = 0
        self.stopped = False

    def after_iteration(self, loop, record):
        """Keep the best weights; stop after ``patience`` iterations without progress."""
        value = record[self.monitor]
        if self.best_value is None or self.sign * (self.best_value - value) > self.tol:
            self.best_value, self.best_state = value, loop.state
            self.best_iteration, self.bad_iterations = record["epoch"], 0
            return
        self.bad_iterations += 1
        if self.bad_iterations >= self.patience:
            self.stopped = loop.stop = True

    def on_train_end(self, loop):
        """Restore the best weights when training stopped early."""
        if self.stopped:
            restore(loop.module, self.best_state)


class EpochLog(Callback):
    """Writes one line per iteration (its number, scalars and seconds) above the
    progress bar, which then stays on screen: what ``verbose >= 2`` shows."""

    def after_iteration(self, loop, record):
        """Write the iteration's line."""
        values = "  ".join(
            f"{k}={v:.4g}"
            for k, v in record.items()
            if k not in ("epoch", "seconds") and isinstance(v, int | float)
        )
        tqdm.write(
            f"{loop.desc} {record['epoch'] + 1}/{loop.first + loop.max_iter}  {values}  "
            f"({record['seconds']:.3g} s)",
            file=sys.stderr,
        )


def to_floats(values):
    """``{key: float}`` from numbers and one-element tensors, with one transfer from the
    device for all the tensors (a single host synchronisation)."""
    out = {k: float(v) for k, v in values.items() if not torch.is_tensor(v)}
    tensors = {k: v for k, v in values.items() if torch.is_tensor(v)}
    if tensors:
        first = next(iter(tensors.values()))
        dtype = torch.float32 if first.device.type == "mps" else torch.float64
        stacked = torch.stack([v.detach().reshape(()).to(dtype) for v in tensors.values()])
        out.update(zip(tensors, stacked.cpu().tolist(), strict=True))
    return {k: out[k] for k in values}


# ----------------------------------------------------------------------------- the loop
class Loop:
    """Runs iterations of a training procedure.

    Parameters
    ----------
    module : nn.Module
        Everything trainable; the loop snapshots and restores its ``state_dict``.
    max_iter : int
        Number of iterations at most.
    callbacks : sequence of Callback
        Called in order (see :class:`Callback`).
    history : list, optional
        Existing history to append to (warm start); iterations are numbered on from it.
    verbose : int
        0 silent; 1 a tqdm progress bar over iterations with the latest values, removed
        at the end; 2 or more the bar stays and one line per iteration is written above
        it (:class:`EpochLog`).
    desc : str
        Label of the progress bar.
    lr_hint : str
        Text naming the learning-rate parameter(s), for the non-finite error.

    Attributes
    ----------
    history : list of dict
        One record per completed iteration: ``epoch`` (its number), the iteration's
        scalars, what the callbacks added, and ``seconds``.
    state : dict
        Snapshot of the module after the last completed iteration.
    stop : bool
        Set by a callback to end training after the current iteration.
    interrupted : bool
        Whether training ended by KeyboardInterrupt.
    """

    def __init__(
        self, module, *, max_iter, callbacks=(), history=None, verbose=0, desc="fit", lr_hint="lr"
    ):
        self.module = module
        self.max_iter = int(max_iter)
        self.callbacks = list(callbacks)
        self.history = [] if history is None else history
        self.first = len(self.history)
        self.verbose = verbose
        if verbose and verbose >= 2:
            self.callbacks.append(EpochLog())
        self.desc = desc
        self.lr_hint = lr_hint
        self.state = None
        self.stop = False
        self.interrupted = False

    def run(self, iterate):
        """Call ``iterate(epoch) -> dict`` up to ``max_iter`` times; returns the history.

        The values ``iterate`` returns (numbers or one-element tensors) are recorded as
        floats, read from the device in one transfer."""
        self.state = snapshot(self.module)
        start = len(self.history)
        bar = tqdm(
            range(self.max_iter),
            desc=self.desc,
            disable=not self.verbose,
            leave=bool(self.verbose) and self.verbose >= 2,
            dynamic_ncols=True,
        )
        try:
            for _ in bar:
                epoch = len(self.history)
                t0 = time.perf_counter()
                record = {"epoch": epoch}
                record.update(to_floats(iterate(epoch)))
                self._check_finite(record, epoch)
                for callback in self.callbacks:
                    callback.on_iteration_end(self, record)
                record["seconds"] = time.perf_counter() - t0
                self.history.append(record)
                self.state = snapshot(self.module)
                if self.verbose:
                    bar.set_postfix(
                        {
                            k: f"{v:.4g}"
                            for k, v in record.items()
                            if k not in ("epoch", "seconds") and isinstance(v, int | float)
                        },
                        refresh=False,
                    )
                for callback in self.callbacks:
                    callback.after_iteration(self, record)
                if self.stop:
                    break
        except KeyboardInterrupt:
            self.interrupted = True
            restore(self.module, self.state)
            warnings.warn(
                f"Training interrupted by KeyboardInterrupt after {len(self.history) - start}"
                f" completed epoch(s); the estimator keeps the weights of the last completed "
                f"epoch and can be used for prediction.",
                TrainingInterruptedWarning,
                stacklevel=4,
            )
        finally:
            bar.close()
        for callback in self.callbacks:
            callback.on_train_end(self)
        return self.history

    def _check_finite(self, record, epoch):
        bad = [k for k, v in record.items() if k != "epoch" and not np.isfinite(v)]
        if bad:
            restore(self.module, self.state)
            raise NonFiniteLossError(
                f"The training loss {bad[0]!r} became {record[bad[0]]} in epoch {epoch}; "
                f"training stopped and the weights of the last finite epoch were restored. "
                f"The optimisation diverged: try a smaller learning rate ({self.lr_hint}), "
                f"standardise the features, or a smaller fairness weight."
            )


def epochs(step, data, sampler):
    """The iteration of mini-batch training, for :meth:`Loop.run`.

    One call is one epoch: ``step(batch)`` on every batch of ``sampler(epoch)`` (a
    sequence of index tensors into ``data``); returns the mean over the batches of each
    value ``step`` returned. The values are summed on the device and read once, after
    the epoch (no host synchronisation between the batches).
    """

    def iterate(epoch):
        batches = sampler(epoch)
        last = len(batches) - 1
        sums = {}
        for k, idx in enumerate(batches):
            losses = step(data.batch(idx, first=k == 0, last=k == last))
            for key, value in losses.items():
                value = value.detach() if torch.is_tensor(value) else value
                sums[key] = sums[key] + value if key in sums else value
        n_batches = max(len(batches), 1)
        return {key: total / n_batches for key, total in to_floats(sums).items()}

    return iterate
