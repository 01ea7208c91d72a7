"""Maskable MLPs for pruning: score-based binary masks with straight-through gradients.

* :class:`MaskedLinear` - an ``nn.Linear`` that also carries a tensor of pruning
  ``scores`` (same shape as its weight) and the binary ``weight_mask`` / ``bias_mask``
  buffers that the fitted model uses.
* :class:`MaskedMLP` - a fully connected network of such layers (built with
  :func:`~skfairbilevel.nn.modules.make_mlp`) and the masking rule:

  - **unstructured**: one *global* top-k over the scores of every weight of every layer;
    exactly ``round(sparsity * n_weights)`` weights are removed. Biases are not pruned.
  - **structured**: per hidden layer, the units (rows of the weight and the matching
    bias) whose row-sum of scores is smallest are removed, ``round(sparsity * width)``
    of each hidden layer (at least one unit is kept). The output layer is never pruned.

  In ``mode="scores"`` the forward pass recomputes the binary mask from the scores and
  lets the gradient through unchanged to the scores (straight-through estimator); in
  ``mode="fixed"`` it uses the stored binary masks; ``mode="dense"`` ignores the masks.
* :func:`compact_mlp` - the physical compaction: a plain ``nn.Sequential`` whose layers
  hold the masked weights; with structured masks the removed units are dropped (the
  layers are narrower), so prediction is cheaper. The output equals the masked network's
  exactly (up to float rounding of the matrix products).

The scores rank by their value (initialised to weight magnitudes, so the first mask is
the magnitude-pruning mask); gradient descent on the scores lowers the score of a weight
whose presence raises the loss.
"""

import torch
from torch import nn
from torch.nn import functional as F

from .modules import make_activation, make_mlp

__all__ = ["MaskedLinear", "MaskedMLP", "straight_through", "compact_mlp", "load_dense_",
           "global_topk_mask", "n_pruned", "implicit_score_gradient"]

MODES = ("dense", "scores", "fixed")


class _StraightThrough(torch.autograd.Function):
    """Forward: the given binary mask. Backward: the gradient passes to the scores as is."""

    @staticmethod
    def forward(ctx, scores, hard):
        return hard.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad, None


def straight_through(scores, hard):
    """``hard`` in the forward pass, identity gradient to ``scores`` in the backward pass."""
    return _StraightThrough.apply(scores, hard.to(scores.dtype))


def implicit_score_gradient(score_grad, weight_grad, implicit_lr):
    """BiP's first-order implicit-gradient score update direction.

    ``g_s - implicit_lr * g_s * g_theta``: ``g_s`` the (straight-through) gradient of the
    upper loss with respect to the scores and ``g_theta`` its gradient with respect to
    the weights at the masked weights (zero where the mask is 0). The product term is
    the Hessian-free approximation of ``(d theta*/d m)^T grad_theta`` that exploits the
    bilinear ``m * theta`` structure. BiP's code multiplies ``g_s`` by itself instead
    (BiP issue #3); here the weight gradient is used, as in BiP's Algorithm A1.
    """
    if implicit_lr == 0:
        return score_grad
    return score_grad - implicit_lr * score_grad * weight_grad


def n_pruned(n, sparsity):
    """How many of ``n`` entries a ``sparsity`` removes: ``round(sparsity * n)``, keeping
    at least one entry."""
    return min(int(round(float(sparsity) * n)), max(n - 1, 0))


@torch.no_grad()
def global_topk_mask(tensors, sparsity):
    """Binary masks (like ``tensors``) keeping the largest values over all of them jointly.

    Exactly ``n - n_pruned(n, sparsity)`` entries are 1 (ties broken by position).
    """
    flat = torch.cat([t.reshape(-1) for t in tensors])
    n = flat.numel()
    keep = n - n_pruned(n, sparsity)
    mask = torch.zeros_like(flat)
    if keep > 0:
        mask[torch.topk(flat, keep, sorted=False).indices] = 1.0
    out, start = [], 0
    for t in tensors:
        out.append(mask[start:start + t.numel()].view_as(t))
        start += t.numel()
    return out


class MaskedLinear(nn.Linear):
    """``nn.Linear`` with pruning ``scores`` and binary ``weight_mask``/``bias_mask``.

    Called on its own it applies the stored masks; :class:`MaskedMLP` passes the masks
    of the current mode explicitly through :meth:`masked_forward`.
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self.scores = nn.Parameter(torch.zeros_like(self.weight))
        self.register_buffer("weight_mask", torch.ones_like(self.weight))
        self.register_buffer("bias_mask", torch.ones(out_features, device=self.weight.device,
                                                     dtype=self.weight.dtype))

    def masked_forward(self, x, weight_mask=None, bias_mask=None):
        w = self.weight if weight_mask is None else self.weight * weight_mask
        b = self.bias
        if b is not None and bias_mask is not None:
            b = b * bias_mask
        return F.linear(x, w, b)

    def forward(self, x):
        return self.masked_forward(x, self.weight_mask, self.bias_mask)


class MaskedMLP(nn.Module):
    """A pruneable MLP ``n_in -> hidden... -> n_out`` of :class:`MaskedLinear` layers.

    Parameters
    ----------
    n_in, n_out : int
    hidden_layer_sizes : sequence of int
    sparsity : float in [0, 1)
        Fraction of the prunable weights (unstructured) or of the hidden units of each
        hidden layer (structured) that the masks remove.
    structured : bool
        Unit (row) masks on the hidden layers instead of a global weight mask.
    activation : str
    generator : torch.Generator, optional
        Source of the initial weights.

    Attributes
    ----------
    mode : {"dense", "scores", "fixed"}
        How :meth:`forward` masks (see the module docstring).
    """

    def __init__(self, n_in, hidden_layer_sizes, n_out, *, sparsity, structured=False,
                 activation="relu", generator=None):
        super().__init__()
        self.net = make_mlp(n_in, tuple(hidden_layer_sizes), n_out, activation=activation,
                            generator=generator, linear=MaskedLinear)
        self.activation = activation
        self.sparsity = float(sparsity)
        self.structured = bool(structured)
        self.mode = "dense"

    @property
    def layers(self):
        """The :class:`MaskedLinear` layers, input to output."""
        return [m for m in self.net if isinstance(m, MaskedLinear)]

    @property
    def prunable(self):
        """Layers whose masks can remove something: all (unstructured) or the hidden
        ones (structured)."""
        layers = self.layers
        return layers[:-1] if self.structured else layers

    def scores(self):
        """The score parameters of the prunable layers."""
        return [layer.scores for layer in self.prunable]

    def weights(self):
        """Every weight and bias (the lower-level variables)."""
        return [p for layer in self.layers for p in (layer.weight, layer.bias)
                if p is not None]

    # ------------------------------------------------------------------ masks
    @torch.no_grad()
    def init_scores_(self):
        """Scores = weight magnitudes |w| (BiP's initialisation); the resulting mask is
        the magnitude-pruning mask."""
        for layer in self.layers:
            layer.scores.copy_(layer.weight.abs())

    @torch.no_grad()
    def unit_importance(self):
        """Structured: one importance per hidden unit, the row-sum of its scores."""
        return [layer.scores.sum(dim=1) for layer in self.prunable]

    @torch.no_grad()
    def hard_masks(self):
        """Binary ``(weight_mask, bias_mask)`` per layer from the current scores."""
        layers = self.layers
        out = []
        if self.structured:
            for layer in layers[:-1]:
                imp = layer.scores.sum(dim=1)
                width = imp.numel()
                keep = width - n_pruned(width, self.sparsity)
                unit = torch.zeros_like(imp)
                unit[torch.topk(imp, keep, sorted=False).indices] = 1.0
                out.append((unit[:, None].expand_as(layer.weight).clone(), unit))
            last = layers[-1]
            out.append((torch.ones_like(last.weight), torch.ones_like(last.bias_mask)))
        else:
            masks = global_topk_mask([layer.scores for layer in layers], self.sparsity)
            out = [(m, torch.ones_like(layer.bias_mask))
                   for m, layer in zip(masks, layers, strict=True)]
        return out

    def score_masks(self):
        """The hard masks with a straight-through path to the scores (``mode="scores"``)."""
        return [(straight_through(layer.scores, wm) if layer in self.prunable else wm, bm)
                for layer, (wm, bm) in zip(self.layers, self.hard_masks(), strict=True)]

    @torch.no_grad()
    def set_masks_(self, masks):
        """Store binary masks (a list of ``(weight_mask, bias_mask)``) in the buffers."""
        for layer, (wm, bm) in zip(self.layers, masks, strict=True):
            layer.weight_mask.copy_(wm)
            layer.bias_mask.copy_(bm)

    def freeze_(self):
        """Store the masks of the current scores and switch to ``mode="fixed"``."""
        self.set_masks_(self.hard_masks())
        self.mode = "fixed"
        return self

    def stored_masks(self):
        """The stored binary masks as a list of ``(weight_mask, bias_mask)``."""
        return [(layer.weight_mask, layer.bias_mask) for layer in self.layers]

    @torch.no_grad()
    def achieved_sparsity(self):
        """Fraction of prunable weights (unstructured) or hidden units (structured)
        removed by the stored masks (exact: a ratio of integer counts)."""
        if self.structured:
            masks = [layer.bias_mask for layer in self.prunable]
        else:
            masks = [layer.weight_mask for layer in self.layers]
        total = sum(m.numel() for m in masks)
        kept = sum(int((m > 0.5).sum()) for m in masks)
        return (total - kept) / total if total else 0.0

    # ------------------------------------------------------------------ forward
    def forward(self, x):
        if self.mode == "dense":
            masks = None
        elif self.mode == "scores":
            masks = self.score_masks()
        elif self.mode == "fixed":
            masks = self.stored_masks()
        else:
            raise ValueError(f"MaskedMLP.mode must be one of {MODES}; got {self.mode!r}.")
        i = 0
        for module in self.net:
            if isinstance(module, MaskedLinear):
                x = module.masked_forward(x, *(masks[i] if masks is not None else (None, None)))
                i += 1
            else:
                x = module(x)
        return x


@torch.no_grad()
def load_dense_(masked, dense):
    """Copy the weights of a dense ``nn.Sequential`` (from ``compact_mlp(dense=True)``)
    into the layers of ``masked``."""
    linears = [m for m in dense if isinstance(m, nn.Linear)]
    for layer, lin in zip(masked.layers, linears, strict=True):
        layer.weight.copy_(lin.weight)
        if layer.bias is not None:
            layer.bias.copy_(lin.bias)
    return masked


@torch.no_grad()
def compact_mlp(masked, *, dense=False):
    """A plain ``nn.Sequential`` computing what ``masked`` computes with its stored masks.

    Masked weights are baked in (set to 0). With structured masks the removed hidden
    units are physically dropped: their rows leave the layer and their columns leave the
    next one. A removed unit has pre-activation 0 and so outputs ``act(0)`` (0 for relu,
    tanh, ...; 0.5 for sigmoid, log 2 for softplus); that constant's contribution is
    folded into the next layer's bias, so the compact network is exact for every
    activation. ``dense=True`` ignores the masks: a plain copy of the dense network.
    """
    layers = masked.layers
    param = layers[0].weight
    out = []
    keep_in = None  # indices of the input units of the current layer that survive
    carry = None    # constant added to the current layer's bias by removed inputs
    act0 = float(make_activation(masked.activation)(torch.zeros(1)).item())
    for i, layer in enumerate(layers):
        w = layer.weight if dense else layer.weight * layer.weight_mask
        b = layer.bias if (dense or layer.bias is None) else layer.bias * layer.bias_mask
        if keep_in is not None:
            removed = torch.ones(w.shape[1], dtype=torch.bool, device=w.device)
            removed[keep_in] = False
            carry = (w[:, removed].sum(dim=1) * act0) if act0 != 0.0 else None
            w = w[:, keep_in]
            if carry is not None:
                b = carry if b is None else b + carry
        is_hidden = i < len(layers) - 1
        if masked.structured and is_hidden and not dense:
            keep_out = torch.nonzero(layer.bias_mask > 0.5).reshape(-1)
            w = w[keep_out]
            b = None if b is None else b[keep_out]
        else:
            keep_out = None
        lin = nn.Linear(w.shape[1], w.shape[0], bias=b is not None, device=param.device,
                        dtype=param.dtype)
        lin.weight.copy_(w)
        if b is not None:
            lin.bias.copy_(b)
        out.append(lin)
        if is_hidden:
            out.append(make_activation(masked.activation))
        keep_in = keep_out
    seq = nn.Sequential(*out)
    seq.requires_grad_(False)
    return seq.eval()
