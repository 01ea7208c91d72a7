"""How many CPU threads torch uses while an estimator works, and setting it for a while.

Small networks never gain from many intra-op threads: each operation is split over the
threads, which meet at a barrier after it. When another process keeps a core busy, a
thread waiting at a barrier loses its time slice, and a fit of thousands of small steps
becomes tens of times slower than with one thread. The rule used in ``fit``:

    threads = min(torch.get_num_threads(), max(1, rows_per_step * n_weights // 2**26))

``rows_per_step * n_weights`` is about the multiply-adds of one forward pass of a
training step (the estimator's ``_step_work``; FACIMS counts its largest batch through
one network, since its steps run one network at a time); one more thread is used per
2**26 (about 67 million) of them, so a thread only gets work that takes milliseconds.
``torch.set_num_threads`` still sets the most threads used; the count is restored when
the fit ends.
"""

from contextlib import contextmanager

import torch

__all__ = ["WORK_PER_THREAD", "threads_for", "torch_threads"]

#: multiply-adds of one forward pass per extra intra-op thread
WORK_PER_THREAD = 2**26


def threads_for(work, available=None):
    """Intra-op threads for steps of ``work`` multiply-adds: ``work // WORK_PER_THREAD``,
    at least 1, at most ``available`` (default ``torch.get_num_threads()``)."""
    available = torch.get_num_threads() if available is None else int(available)
    return max(1, min(available, int(work // WORK_PER_THREAD)))


@contextmanager
def torch_threads(n):
    """Run the body with ``n`` torch intra-op threads; the previous count is restored."""
    before = torch.get_num_threads()
    if n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
