"""The one training engine shared by every torch estimator.

An estimator hands the engine

* its data as a :class:`TensorData` (float32 features, targets, group ids and sample
  weights, moved to the device once per ``fit``),
* a *step* function ``step(batch) -> dict[str, Tensor]`` that does one update on a
  mini-batch (computing losses, calling ``backward`` and stepping whichever of its
  optimisers it alternates) and returns the scalar losses to record,
* optionally a *sampler* ``sampler(epoch) -> iterable[LongTensor]`` of row indices (the
  default shuffles all rows each epoch and cuts them into ``batch_size`` chunks) and a
  *validate* function returning per-epoch validation metrics.

The engine owns everything around the step: batching by index permutation of in-memory
tensors (no per-row ``Dataset``), epoch timing, ``history``, the progress bar, early
stopping on a validation metric (restoring the best weights), learning-rate schedulers,
KeyboardInterrupt handling (keep the last completed epoch, warn) and the non-finite loss
check (restore the last good weights, raise :class:`NonFiniteLossError`).
"""

import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from ..exceptions import NonFiniteLossError, TrainingInterruptedWarning

__all__ = ["TensorData", "Batch", "Trainer", "resolve_device", "make_generators",
           "snapshot", "restore", "descend", "numpy_view", "shuffled_batches"]


@dataclass
class Batch:
    """One mini-batch: features ``x``, targets ``y``, group ids ``g``, sample weights
    ``w`` (None when all rows weigh the same) and the row indices ``idx``."""

    x: torch.Tensor
    y: torch.Tensor
    g: torch.Tensor
    w: torch.Tensor | None
    idx: torch.Tensor


@dataclass
class TensorData:
    """Training (or validation) data as tensors on one device."""

    X: torch.Tensor
    y: torch.Tensor
    g: torch.Tensor
    w: torch.Tensor | None = None
    n_groups: int = 1

    def __len__(self):
        return self.X.shape[0]

    @property
    def device(self):
        return self.X.device

    def batch(self, idx):
        """The rows ``idx`` (a LongTensor on the data's device) as a :class:`Batch`."""
        return Batch(self.X.index_select(0, idx), self.y.index_select(0, idx),
                     self.g.index_select(0, idx),
                     None if self.w is None else self.w.index_select(0, idx), idx)

    def full(self):
        """All rows as one :class:`Batch` (no copy)."""
        idx = torch.arange(len(self), device=self.device)
        return Batch(self.X, self.y, self.g, self.w, idx)

    def group_indices(self):
        """List of LongTensors: the rows of each group ``0 .. n_groups-1``."""
        order = torch.argsort(self.g, stable=True)
        counts = torch.bincount(self.g, minlength=self.n_groups).tolist()
        return list(torch.split(order, counts))

    @classmethod
    def from_numpy(cls, X, y, g, w, *, n_groups, device, y_dtype=torch.float32):
        """Convert numpy arrays once: X float32, y ``y_dtype``, g int64, w float32.

        Training tensors own their memory: a read-only input is copied first.
        """
        def own(a, dtype):
            a = np.ascontiguousarray(a)
            return torch.as_tensor(a if a.flags.writeable else a.copy(), dtype=dtype,
                                   device=device)

        return cls(X=own(X, torch.float32), y=own(y, y_dtype), g=own(g, torch.long),
                   w=None if w is None else own(w, torch.float32), n_groups=int(n_groups))


def numpy_view(a, dtype=None, device=None):
    """``torch.as_tensor`` of a numpy array that may be read-only, for reading only.

    pandas' copy-on-write and joblib's memory maps (``n_jobs`` in ``GridSearchCV``) give
    read-only arrays; ``torch.as_tensor`` shares their memory and warns that writing to
    it is undefined. The tensors made here are only read (prediction inputs, validation
    passes), so a read-only array is wrapped through DLPack instead (numpy >= 2.1 exports
    it marked read-only): no copy, no warning, and no change to the process's warning
    filters (``warnings.catch_warnings`` is not thread-safe). Where numpy cannot export
    it (older numpy, byte-swapped or object arrays), the warning is silenced locally.
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


def shuffled_batches(n, batch_size, generator, device):
    """The engine's default sampler for one epoch: a fresh permutation of ``n`` rows
    (drawn from ``generator``) cut into batches of ``batch_size`` (clipped to ``n``)."""
    perm = torch.randperm(n, generator=generator, device=device)
    return torch.split(perm, max(1, min(int(batch_size), n)))


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


def make_generators(random_state, device):
    """A numpy Generator and a torch Generator on ``device``, both seeded from
    ``random_state`` (int, RandomState, Generator or None). No global state is touched."""
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
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seeds[1]))
    return rng, gen


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
    and :class:`~skfairbilevel.nn.optim.LeanAdam` (what ``make_adam`` returns on CPU and
    CUDA) refuses with an error naming the parameter.
    ``step=False`` only sets the gradients (e.g. to step two optimisers together).
    """
    if params is None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
    grads = torch.autograd.grad(loss, params, retain_graph=retain_graph, allow_unused=True)
    for p, g in zip(params, grads, strict=True):
        p.grad = g
    if step:
        optimizer.step()


class Trainer:
    """Runs epochs of a step function over mini-batches.

    Parameters
    ----------
    module : nn.Module
        Everything trainable (the engine snapshots and restores its ``state_dict``).
    max_epochs : int
    batch_size : int
        Rows per mini-batch for the default sampler (clipped to the data size).
    generator : torch.Generator
        Source of the shuffling permutations (on the data's device).
    schedulers : sequence of LR schedulers, stepped once per epoch.
    validate : callable () -> dict[str, float], optional
        Validation metrics, computed after each epoch; stored in history.
    early_stopping : bool
        Stop when ``monitor`` (from ``validate``) has not improved by ``tol`` for
        ``n_iter_no_change`` epochs, and restore the best weights.
    monitor : str
        Key of the validation dict; ``mode`` "min" or "max".
    verbose : int
        0 silent; 1 a tqdm progress bar over epochs with the latest losses.
    lr_hint : str
        Text naming the learning-rate parameter(s), for the non-finite loss error.
    history : list, optional
        Existing history to append to (warm start); epochs are numbered on from it.
    stop : callable (record) -> bool, optional
        Checked after each recorded epoch; True ends training (e.g. an outer loop that
        has converged). The module keeps the weights of that epoch.
    """

    def __init__(self, module, *, max_epochs, batch_size, generator, schedulers=(),
                 validate=None, early_stopping=False, monitor="val_loss", mode="min",
                 n_iter_no_change=10, tol=1e-4, verbose=0, lr_hint="lr", history=None,
                 desc="fit", stop=None):
        self.module = module
        self.max_epochs = int(max_epochs)
        self.batch_size = int(batch_size)
        self.generator = generator
        self.schedulers = list(schedulers)
        self.validate = validate
        self.early_stopping = early_stopping
        self.monitor = monitor
        self.mode = mode
        self.n_iter_no_change = int(n_iter_no_change)
        self.tol = float(tol)
        self.verbose = verbose
        self.lr_hint = lr_hint
        self.history = [] if history is None else history
        self.desc = desc
        self.stop = stop
        self.interrupted = False
        self.stopped_early = False
        self.best_epoch = None

    # ------------------------------------------------------------------ main loop
    def run(self, step, data, sampler=None):
        """Train; returns the history list. ``sampler(epoch)`` yields index tensors."""
        if sampler is None:
            def sampler(epoch):
                return shuffled_batches(len(data), self.batch_size, self.generator,
                                        data.device)
        good_state = snapshot(self.module)
        best_state, best_value, bad_epochs = None, None, 0
        start_epoch = len(self.history)
        bar = tqdm(range(self.max_epochs), desc=self.desc, disable=not self.verbose,
                   leave=False, dynamic_ncols=True)
        try:
            for _ in bar:
                epoch = start_epoch + len(self.history) - start_epoch
                t0 = time.perf_counter()
                sums, n_batches = {}, 0
                for idx in sampler(epoch):
                    losses = step(data.batch(idx))
                    for key, value in losses.items():
                        value = value.detach() if torch.is_tensor(value) else value
                        sums[key] = sums[key] + value if key in sums else value
                    n_batches += 1
                record = {"epoch": epoch}
                for key, total in sums.items():
                    record[key] = float(total) / max(n_batches, 1)
                bad = [k for k, v in record.items() if k != "epoch" and not np.isfinite(v)]
                if bad:
                    restore(self.module, good_state)
                    raise NonFiniteLossError(
                        f"The training loss {bad[0]!r} became {record[bad[0]]} in epoch "
                        f"{epoch}; training stopped and the weights of the last finite "
                        f"epoch were restored. The optimisation diverged: try a smaller "
                        f"learning rate ({self.lr_hint}), standardise the features, or a "
                        f"smaller fairness weight."
                    )
                for sched in self.schedulers:
                    sched.step()
                if self.validate is not None:
                    record.update(self.validate())
                record["seconds"] = time.perf_counter() - t0
                self.history.append(record)
                good_state = snapshot(self.module)
                if self.verbose:
                    bar.set_postfix({k: f"{v:.4g}" for k, v in record.items()
                                     if k not in ("epoch", "seconds")}, refresh=False)
                if self.early_stopping and self.validate is not None:
                    value = record[self.monitor]
                    sign = 1.0 if self.mode == "min" else -1.0
                    if best_value is None or sign * (best_value - value) > self.tol:
                        best_value, best_state, bad_epochs = value, good_state, 0
                        self.best_epoch = epoch
                    else:
                        bad_epochs += 1
                        if bad_epochs >= self.n_iter_no_change:
                            self.stopped_early = True
                            break
                if self.stop is not None and self.stop(record):
                    break
        except KeyboardInterrupt:
            self.interrupted = True
            restore(self.module, good_state)
            done = len(self.history) - start_epoch
            warnings.warn(
                f"Training interrupted by KeyboardInterrupt after {done} completed "
                f"epoch(s); the estimator keeps the weights of the last completed epoch "
                f"and can be used for prediction.",
                TrainingInterruptedWarning, stacklevel=3,
            )
        finally:
            bar.close()
        if best_state is not None and self.stopped_early:
            restore(self.module, best_state)
        return self.history
