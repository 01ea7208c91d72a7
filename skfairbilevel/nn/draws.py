"""Random draws from a CPU generator, moved to the device where they are used.

Every random number of a fit (batch order, Monte Carlo and perturbation noise, sampled
pairs and groups) is drawn from one CPU ``torch.Generator`` seeded by ``random_state``
and then moved to the device of the data. CPU and CUDA generators produce different
streams for the same seed, so drawing on the device would make a model trained on a GPU
differ from the one trained on a laptop by more than rounding; drawing on the CPU makes
the same seed give the same model everywhere, up to floating-point rounding.
"""

import torch

__all__ = ["randn", "randperm", "randint"]


def _source(generator, device):
    """Where to draw: on the generator's device (None: torch's default generator, on
    ``device``)."""
    return device if generator is None else generator.device


def _moved(t, device):
    return t if device is None else t.to(device)


def randn(shape, generator, *, device=None, dtype=torch.float32):
    """Standard-normal tensor of ``shape`` drawn from ``generator``, on ``device``."""
    src = _source(generator, device)
    return _moved(torch.randn(shape, generator=generator, device=src, dtype=dtype), device)


def randperm(n, generator, *, device=None):
    """A random permutation of the integers below ``n`` (int64) drawn from
    ``generator``, on ``device``."""
    src = _source(generator, device)
    return _moved(torch.randperm(int(n), generator=generator, device=src), device)


def randint(high, size, generator, *, device=None):
    """Integers uniform in ``[0, high)`` of shape ``size`` (int64) drawn from
    ``generator``, on ``device``."""
    src = _source(generator, device)
    return _moved(torch.randint(int(high), tuple(size), generator=generator, device=src), device)
