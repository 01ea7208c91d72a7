"""A network split between two players, and the follower's gradient in closed form.

:class:`LeaderFollowerNet` is ``suffix(fairness_block(prefix(x)))``: the leader owns
the layers around the fairness block, the follower the block itself (FairBiNN's
theta_a and theta_f). :class:`ClosedFormFollower` computes the follower's gradient of a
soft fairness penalty without autograd, for the usual shape of the network.
"""

import torch
from torch import nn

from .losses import FAIRNESS_LOSSES, fairness_loss_and_grad

__all__ = ["LeaderFollowerNet", "ClosedFormFollower", "activation_backward"]


class LeaderFollowerNet(nn.Module):
    """``suffix(fairness_block(prefix(x)))``: the leader's layers around the follower's.

    ``prefix`` and ``suffix`` hold the accuracy parameters (theta_a), ``fairness_block``
    the fairness parameters (theta_f). The output is logits (no sigmoid).
    """

    def __init__(self, prefix, fairness_block, suffix):
        super().__init__()
        self.prefix = prefix
        self.fairness_block = fairness_block
        self.suffix = suffix

    def leader_parameters(self):
        """theta_a: the parameters of ``prefix`` and ``suffix``."""
        return [*self.prefix.parameters(), *self.suffix.parameters()]

    def follower_parameters(self):
        """theta_f: the parameters of ``fairness_block``."""
        return list(self.fairness_block.parameters())

    def head(self, h):
        """The layers from the fairness block on, applied to prefix features ``h``."""
        return self.suffix(self.fairness_block(h))

    def forward(self, x):
        """Logits of the rows ``x``."""
        return self.head(self.prefix(x))


def activation_backward(act, out, upstream):
    """``upstream * act'(z)`` from the activation's output ``out = act(z)``, or None when
    ``act`` is not one of the activations handled in closed form."""
    if isinstance(act, nn.ReLU):
        return upstream * (out > 0)
    if isinstance(act, nn.LeakyReLU):
        return torch.where(out > 0, upstream, upstream * act.negative_slope)
    if isinstance(act, nn.ELU):
        return torch.where(out > 0, upstream, upstream * (out + act.alpha))
    if isinstance(act, nn.Tanh):
        return upstream * (1.0 - out * out)
    if isinstance(act, nn.Sigmoid):
        return upstream * out * (1.0 - out)
    if isinstance(act, nn.Identity):
        return upstream
    return None


class ClosedFormFollower:
    """The follower's gradient in closed form, for the usual network shape.

    Applies when the fairness block is Linear + activation layers (ReLU, leaky ReLU,
    ELU, tanh, sigmoid or identity) followed directly by the output Linear with one
    logit, and the loss is one of the soft penalties of
    :func:`~skfairbilevel.nn.losses.fairness_loss`. The step then needs the block's
    forward pass and its hand-written backward pass (the penalty's gradient from
    :func:`~skfairbilevel.nn.losses.fairness_loss_and_grad`): a fixed sequence of small
    tensor operations and no autograd graph. The gradients equal autograd's up to
    rounding.
    """

    def __init__(self, net, fairness, n_groups):
        self.blocks = [
            (net.fairness_block[i], net.fairness_block[i + 1])
            for i in range(0, len(net.fairness_block), 2)
        ]
        self.out = net.suffix[0]
        self.fairness, self.n_groups = fairness, n_groups

    @classmethod
    def build(cls, net, fairness, n_groups, repo_compat=False):
        """The closed-form follower of ``net``, or None if the network does not fit."""
        block, suffix = list(net.fairness_block), list(net.suffix)
        if repo_compat or fairness not in FAIRNESS_LOSSES or len(suffix) != 1:
            return None
        out = suffix[0]
        if (
            not isinstance(out, nn.Linear)
            or out.out_features != 1
            or out.bias is None
            or len(block) % 2
        ):
            return None
        probe = torch.ones(1)
        for lin, act in zip(block[::2], block[1::2], strict=True):
            if (
                not isinstance(lin, nn.Linear)
                or lin.bias is None
                or activation_backward(act, probe, probe) is None
            ):
                return None
        return cls(net, fairness, n_groups)

    @torch.no_grad()
    def __call__(self, h, b, eta):
        """Set ``.grad`` of the block's parameters to d(eta * Fair)/d theta_f at the
        prefix features ``h`` of the batch ``b``; return Fair."""
        inputs, a = [], h
        for lin, act in self.blocks:
            inputs.append(a)
            a = act(torch.addmm(lin.bias, a, lin.weight.t()))
        outs = [*inputs[1:], a]
        p = torch.sigmoid(torch.addmm(self.out.bias, a, self.out.weight.t())[:, 0])
        fair, dp = fairness_loss_and_grad(self.fairness, p, b.y, b.g, self.n_groups, b.w)
        up = ((eta * dp) * p * (1.0 - p))[:, None] * self.out.weight
        for k in range(len(self.blocks) - 1, -1, -1):
            lin, act = self.blocks[k]
            dz = activation_backward(act, outs[k], up)
            lin.weight.grad = dz.t() @ inputs[k]
            lin.bias.grad = dz.sum(0)
            if k:
                up = dz @ lin.weight
        return fair
