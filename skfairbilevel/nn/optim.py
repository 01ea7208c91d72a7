"""Optimisers shared by the estimators.

:class:`LeanAdam` is Adam as one call of torch's fused Adam kernel per step. At the
sizes this package trains (small networks, mini-batches of 5-500 rows) a step of
``torch.optim.Adam`` spends several times longer in Python (grouping tensors by device,
per-parameter state, profiler hooks) than in its arithmetic, and the bilevel methods
take two or more optimiser steps per mini-batch, so that overhead counts several
times. :func:`make_adam` returns a :class:`LeanAdam` where the kernel applies and
``torch.optim.Adam`` otherwise.
"""

import torch

__all__ = ["LeanAdam", "make_adam"]


class LeanAdam(torch.optim.Optimizer):
    """Adam (L2 ``weight_decay``, no amsgrad) as a single fused-kernel call per step.

    One parameter group, every parameter on one device in float32/float64 (see
    :meth:`supports`), and every parameter's ``.grad`` set before each step (all
    parameters step together, so one step counter serves them all). The learning rate
    is read from ``param_groups[0]["lr"]`` at every step, so learning-rate schedulers
    work as with any optimiser. Numerically torch's fused Adam (``tests/test_engine.py``
    checks it against ``torch.optim.Adam``). The moments are not in ``state_dict()`` and
    optimiser step hooks are not run; estimators restart their optimisers on
    ``warm_start``.

    The parameters may also be plain tensors that do not require grad (a closed-form
    gradient written into ``.grad``), as long as they are leaves.
    """

    def __init__(self, params, lr, weight_decay=0.0, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        if len(self.param_groups) != 1:
            raise ValueError("LeanAdam takes one parameter group.")
        ps = self.param_groups[0]["params"]
        self._exp_avg = [torch.zeros_like(p) for p in ps]
        self._exp_avg_sq = [torch.zeros_like(p) for p in ps]
        self._t = torch.zeros((), dtype=torch.float32, device=ps[0].device)
        self._steps = [self._t] * len(ps)

    @staticmethod
    def supports(params):
        """Whether the fused kernel applies: one device (CPU or CUDA), float32/64."""
        params = list(params)
        return (
            hasattr(torch, "_fused_adam_")
            and len(params) > 0
            and len({p.device for p in params}) == 1
            and params[0].device.type in ("cpu", "cuda")
            and all(p.dtype in (torch.float32, torch.float64) for p in params)
        )

    @torch.no_grad()
    def step(self, closure=None):
        """One Adam step of every parameter (all must have a gradient)."""
        if closure is not None:
            raise ValueError("LeanAdam.step does not take a closure.")
        group = self.param_groups[0]
        ps = group["params"]
        # the kernel walks memory linearly: a strided gradient (e.g. the transposed
        # weight gradient of a layer fed sparse rows) is made contiguous first
        grads = [
            p.grad if p.grad is None or p.grad.is_contiguous() else p.grad.contiguous() for p in ps
        ]
        if any(g is None for g in grads):  # not "None in": Tensor.__eq__ is slow
            missing = [i for i, g in enumerate(grads) if g is None]
            raise RuntimeError(
                f"LeanAdam.step: parameter(s) {missing} of {len(ps)} have no gradient. "
                "LeanAdam steps every parameter together; compute a gradient for all of "
                "them (e.g. zeros for an unused one) or use torch.optim.Adam."
            )
        self._t.add_(1.0)
        beta1, beta2 = group["betas"]
        torch._fused_adam_(
            ps,
            grads,
            self._exp_avg,
            self._exp_avg_sq,
            [],
            self._steps,
            lr=float(group["lr"]),
            beta1=beta1,
            beta2=beta2,
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            amsgrad=False,
            maximize=False,
        )

    # torch.optim.Optimizer wraps ``step`` in profiler hooks unless it is marked as
    # hooked; the hooks cost as much as the kernel here (and no hooks are registered)
    step.hooked = True


def make_adam(params, *, lr, weight_decay=0.0):
    """:class:`LeanAdam` where the fused kernel applies, else ``torch.optim.Adam``
    (fused where torch supports it, else its default implementation)."""
    params = list(params)
    if LeanAdam.supports(params):
        return LeanAdam(params, lr=lr, weight_decay=weight_decay)
    try:
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
