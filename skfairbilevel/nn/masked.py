"""Maskable MLPs for pruning: score-based binary masks with straight-through gradients.

* :class:`MaskedLinear` - an ``nn.Linear`` that also carries pruning scores (``scores``,
  one per weight; ``unit_scores``, one per output unit) and the binary masks the fitted
  model uses (buffers ``weight_mask`` and ``unit_mask``).
* :class:`MaskedMLP` - a fully connected network of such layers (built with
  :func:`~skfairbilevel.nn.modules.make_mlp`) and the masking rule:

  - **unstructured**: one *global* top-k over the scores of every weight of every layer;
    exactly ``round(sparsity * n_weights)`` weights are removed. Biases are not pruned.
  - **structured**: per hidden layer, the ``round(sparsity * width)`` units with the
    smallest unit scores are removed (at least one unit is kept). A unit is removed by
    a gate after its activation, ``h_j = u_j * act(z_j)``, so it outputs exactly 0
    whatever the activation, and a removed unit still receives a gradient
    ``d loss / d u_j = (d loss / d h_j) act(z_j)`` and can come back. The output layer
    is never pruned.

  In ``mode="scores"`` the forward pass recomputes the binary masks from the scores and
  lets the gradient through unchanged to the scores (straight-through estimator); in
  ``mode="fixed"`` it uses the stored binary masks; ``mode="dense"`` ignores the masks.
* :func:`compact_mlp` - the physical compaction: a plain ``nn.Sequential`` whose layers
  hold the masked weights; with structured masks the removed units are dropped (the
  layers are narrower), so prediction is cheaper. The output equals the masked network's
  (up to float rounding of the matrix products).

The scores rank by their value. They are initialised to weight magnitudes: ``|w|`` per
weight, the mean ``|w|`` of a unit's incoming weights per unit, so the first mask is the
magnitude-pruning mask. Gradient descent on the scores lowers the score of a weight (or
unit) whose presence raises the loss.
"""

import torch
from torch import nn
from torch.nn import functional as F

from .modules import make_activation, make_mlp

__all__ = [
    "MaskedLinear",
    "MaskedMLP",
    "straight_through",
    "compact_mlp",
    "load_dense_",
    "global_topk_mask",
    "n_pruned",
    "implicit_score_gradient",
]

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


def implicit_score_gradient(score_grad, weight_grad, implicit_lr, weight=None):
    """BiP's first-order implicit-gradient score update direction.

    Unstructured (``score_grad`` shaped like the weight): ``g_s - implicit_lr * g_s *
    g_theta``, with ``g_s`` the straight-through gradient of the upper loss with respect
    to the scores and ``g_theta`` its gradient with respect to the weights at the masked
    weights (zero where the mask is 0). The product term is the Hessian-free
    approximation of ``(d theta*/d m)^T grad_theta`` that exploits the bilinear
    ``m * theta`` structure. BiP's code multiplies ``g_s`` by itself instead (BiP issue
    #3); here the weight gradient is used.

    Structured (``score_grad`` of shape ``(out,)``, ``weight`` the layer's weight): a
    kept unit's gate acts like a scale of its row of weights, whose per-weight score
    gradient is ``weight * g_theta``; the term is summed over the row:
    ``g_s - implicit_lr * sum_i weight_i * g_theta_i ** 2``.
    """
    if implicit_lr == 0:
        return score_grad
    if score_grad.shape == weight_grad.shape:
        return score_grad - implicit_lr * score_grad * weight_grad
    return score_grad - implicit_lr * (weight * weight_grad * weight_grad).sum(dim=1)


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
        out.append(mask[start : start + t.numel()].view_as(t))
        start += t.numel()
    return out


class MaskedLinear(nn.Linear):
    """``nn.Linear`` with pruning scores and binary masks.

    ``scores`` / ``weight_mask`` have the weight's shape, ``unit_scores`` / ``unit_mask``
    one entry per output unit. Called on its own the layer applies ``weight_mask``; the
    unit gate acts after the activation and is applied by :class:`MaskedMLP`.
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self.scores = nn.Parameter(torch.zeros_like(self.weight))
        self.unit_scores = nn.Parameter(
            torch.zeros(out_features, device=self.weight.device, dtype=self.weight.dtype)
        )
        self.register_buffer("weight_mask", torch.ones_like(self.weight))
        self.register_buffer("unit_mask", torch.ones_like(self.unit_scores))

    def masked_forward(self, x, weight_mask=None):
        """The layer with ``weight_mask`` (default: its own mask) applied to the weight."""
        w = self.weight if weight_mask is None else self.weight * weight_mask
        return F.linear(x, w, self.bias)

    def forward(self, x):
        """The masked layer."""
        return self.masked_forward(x, self.weight_mask)


class MaskedMLP(nn.Module):
    """A pruneable MLP ``n_in -> hidden -> n_out`` of :class:`MaskedLinear` layers.

    Parameters
    ----------
    n_in, n_out : int
    hidden_layer_sizes : sequence of int
    sparsity : float in [0, 1)
        Fraction of the prunable weights (unstructured) or of the hidden units of each
        hidden layer (structured) that the masks remove.
    structured : bool
        Unit gates on the hidden layers instead of a global weight mask.
    activation : str
    generator : torch.Generator, optional
        Source of the initial weights.

    Attributes
    ----------
    mode : {"dense", "scores", "fixed"}
        How :meth:`forward` masks (see the module docstring).
    """

    def __init__(
        self,
        n_in,
        hidden_layer_sizes,
        n_out,
        *,
        sparsity,
        structured=False,
        activation="relu",
        generator=None,
    ):
        super().__init__()
        self.net = make_mlp(
            n_in,
            tuple(hidden_layer_sizes),
            n_out,
            activation=activation,
            generator=generator,
            linear=MaskedLinear,
        )
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
        """The score parameters in use: weight scores of every layer (unstructured) or
        unit scores of the hidden layers (structured)."""
        if self.structured:
            return [layer.unit_scores for layer in self.prunable]
        return [layer.scores for layer in self.layers]

    def weights(self):
        """Every weight and bias (the lower-level variables)."""
        return [p for layer in self.layers for p in (layer.weight, layer.bias) if p is not None]

    # ------------------------------------------------------------------ masks
    @torch.no_grad()
    def init_scores_(self):
        """Magnitude initialisation (BiP): ``|w|`` per weight and the mean ``|w|`` of the
        incoming weights per unit; the resulting mask is the magnitude-pruning mask."""
        for layer in self.layers:
            layer.scores.copy_(layer.weight.abs())
            layer.unit_scores.copy_(layer.weight.abs().mean(dim=1))

    @torch.no_grad()
    def hard_masks(self):
        """Binary masks from the current scores: per layer a pair ``(weight_mask,
        unit_mask)``, either of which may be None (not masked)."""
        layers = self.layers
        if not self.structured:
            masks = global_topk_mask([layer.scores for layer in layers], self.sparsity)
            return [(m, None) for m in masks]
        out = []
        for layer in layers[:-1]:
            imp = layer.unit_scores
            keep = imp.numel() - n_pruned(imp.numel(), self.sparsity)
            unit = torch.zeros_like(imp)
            unit[torch.topk(imp, keep, sorted=False).indices] = 1.0
            out.append((None, unit))
        out.append((None, None))
        return out

    def score_masks(self):
        """The hard masks with a straight-through path to the scores (``mode="scores"``)."""
        out = []
        for layer, (wm, um) in zip(self.layers, self.hard_masks(), strict=True):
            if wm is not None:
                wm = straight_through(layer.scores, wm)
            if um is not None:
                um = straight_through(layer.unit_scores, um)
            out.append((wm, um))
        return out

    @torch.no_grad()
    def set_masks_(self, masks):
        """Store binary masks (as returned by :meth:`hard_masks`) in the buffers; the
        ``weight_mask`` of a structured layer marks the rows of its removed units."""
        for layer, (wm, um) in zip(self.layers, masks, strict=True):
            layer.unit_mask.copy_(torch.ones_like(layer.unit_mask) if um is None else um)
            if wm is None:
                wm = layer.unit_mask[:, None].expand_as(layer.weight)
            layer.weight_mask.copy_(wm)

    def freeze_(self):
        """Store the masks of the current scores and switch to ``mode="fixed"``."""
        self.set_masks_(self.hard_masks())
        self.mode = "fixed"
        return self

    def stored_masks(self):
        """The stored binary masks in the form of :meth:`hard_masks`."""
        layers = self.layers
        if not self.structured:
            return [(layer.weight_mask, None) for layer in layers]
        return [(None, layer.unit_mask) for layer in layers[:-1]] + [(None, None)]

    @torch.no_grad()
    def achieved_sparsity(self):
        """Fraction of prunable weights (unstructured) or hidden units (structured)
        removed by the stored masks (exact: a ratio of integer counts)."""
        if self.structured:
            masks = [layer.unit_mask for layer in self.prunable]
        else:
            masks = [layer.weight_mask for layer in self.layers]
        total = sum(m.numel() for m in masks)
        kept = sum(int((m > 0.5).sum()) for m in masks)
        return (total - kept) / total if total else 0.0

    # ------------------------------------------------------------------ forward
    def forward(self, x):
        """Logits of the rows ``x`` under the current masks."""
        if self.mode == "dense":
            masks = [(None, None)] * len(self.layers)
        elif self.mode == "scores":
            masks = self.score_masks()
        elif self.mode == "fixed":
            masks = self.stored_masks()
        else:
            raise ValueError(f"MaskedMLP.mode must be one of {MODES}; got {self.mode!r}.")
        i, gate = 0, None
        for module in self.net:
            if isinstance(module, MaskedLinear):
                wm, gate = masks[i]
                x = module.masked_forward(x, wm)
                i += 1
            else:  # the activation; the unit gate acts on its output
                x = module(x)
                if gate is not None:
                    x = x * gate
                    gate = None
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
def compact_mlp(masked, *, dense=False, align=1):
    """A plain ``nn.Sequential`` computing what ``masked`` computes with its stored masks.

    Masked weights are baked in (set to 0). With structured masks the removed hidden
    units are physically dropped: their rows (and biases) leave the layer and their
    columns leave the next one; a removed unit's gated output is exactly 0, so nothing
    else changes. ``dense=True`` ignores the masks: a plain copy of the dense network.

    ``align`` (structured only) rounds each compacted hidden width up to a multiple of
    ``align`` (never above the layer's original width) with *inert* units: zero incoming
    weights and bias, and zero outgoing weights, so they contribute exactly 0 to the
    next layer whatever ``act(0)`` is. Matrix-product kernels work on blocks of SIMD
    width, so a width such as 19 runs the slow remainder path and can cost as much as
    24; see ``benchmarks/results/pruning.md``.

    The network is for inference: its activations work in place where the activation
    supports it (each one acts on the output of the Linear layer before it, never on
    the caller's input), which saves one allocation of every hidden activation.
    """
    layers = masked.layers
    param = layers[0].weight
    align = max(1, int(align))
    out = []
    keep_in, pad_in = None, 0  # surviving input units of the current layer, inert ones
    for i, layer in enumerate(layers):
        is_hidden = i < len(layers) - 1
        w = layer.weight
        if not dense and not masked.structured:
            w = w * layer.weight_mask
        b = layer.bias
        if keep_in is not None:
            w = w[:, keep_in]
            if pad_in:
                w = torch.cat([w, w.new_zeros(w.shape[0], pad_in)], dim=1)
        keep_out, pad_out = None, 0
        if masked.structured and is_hidden and not dense:
            keep_out = torch.nonzero(layer.unit_mask > 0.5).reshape(-1)
            w = w[keep_out]
            b = None if b is None else b[keep_out]
            n_keep = keep_out.numel()
            pad_out = min(-(-n_keep // align) * align, layer.out_features) - n_keep
            if pad_out:
                w = torch.cat([w, w.new_zeros(pad_out, w.shape[1])])
                b = None if b is None else torch.cat([b, b.new_zeros(pad_out)])
        lin = nn.Linear(
            w.shape[1], w.shape[0], bias=b is not None, device=param.device, dtype=param.dtype
        )
        lin.weight.copy_(w)
        if b is not None:
            lin.bias.copy_(b)
        out.append(lin)
        if is_hidden:
            act = make_activation(masked.activation)
            if hasattr(act, "inplace"):
                act.inplace = True
            out.append(act)
        keep_in, pad_in = keep_out, pad_out
    seq = nn.Sequential(*out)
    seq.requires_grad_(False)
    return seq.eval()
