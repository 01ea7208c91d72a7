"""Network builders shared by the estimators.

All parameter initialisation goes through :func:`init_linear_` with an explicit
``torch.Generator``, so that a model's starting weights depend on ``random_state`` only
(the global torch RNG is never used or seeded).
"""

import math
from numbers import Integral

import torch
from torch import nn

__all__ = [
    "ACTIVATIONS",
    "make_activation",
    "init_linear_",
    "init_module_",
    "make_mlp",
    "layer_widths",
]

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "softplus": nn.Softplus,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "identity": nn.Identity,
}


def layer_widths(hidden_layer_sizes):
    """``hidden_layer_sizes`` (an int or a sequence of ints) as a tuple of ints."""
    h = hidden_layer_sizes
    return (int(h),) if isinstance(h, Integral) else tuple(int(v) for v in h)


def make_activation(name):
    """An activation module from its name (see ``ACTIVATIONS``)."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(
            f"activation={name!r} is not supported; use one of {sorted(ACTIVATIONS)}."
        ) from None


@torch.no_grad()
def init_linear_(layer, generator=None):
    """PyTorch's default Linear initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for
    weight and bias, drawn from ``generator``."""
    fan_in = layer.weight.shape[1]
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    nn.init.uniform_(layer.weight, -bound, bound, generator=generator)
    if layer.bias is not None:
        nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
    return layer


def init_module_(module, generator=None):
    """Re-initialise every ``nn.Linear`` inside ``module`` from ``generator``."""
    for sub in module.modules():
        if isinstance(sub, nn.Linear):
            init_linear_(sub, generator)
    return module


def make_mlp(
    n_in, hidden_layer_sizes, n_out, *, activation="relu", generator=None, linear=nn.Linear
):
    """A fully connected network ``n_in -> hidden -> n_out`` (no output activation).

    Parameters
    ----------
    n_in, n_out : int
        Input and output widths.
    hidden_layer_sizes : sequence of int
        Hidden widths; empty gives an affine model.
    activation : str
        Hidden activation, a key of ``ACTIVATIONS``.
    generator : torch.Generator, optional
        Source of the initial weights.
    linear : callable
        Layer factory ``linear(in, out)``; lets methods swap in maskable or stochastic
        layers while keeping one builder.
    """
    layers = []
    width = n_in
    for h in hidden_layer_sizes:
        layers += [linear(width, int(h)), make_activation(activation)]
        width = int(h)
    layers.append(linear(width, n_out))
    net = nn.Sequential(*layers)
    return init_module_(net, generator)
