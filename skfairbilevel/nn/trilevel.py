"""The tri-level problem of FACIMS on tensors: its network and its three levels' steps.

    upper   min_{Z, v}  L_bal(Z; V) + lambda_up * mean_a D(Z^a*, Z)
    middle  max_{||e|| <= rho_a}  L_vs(Z^a + e, v; T^a) + lambda_low * D(Z^a, Z)
    lower   Z^a* = argmin_{Z^a}  (the middle level's value)

``Z`` is a global diagonal-Gaussian distribution over the weights of an MLP, ``Z^a`` one
per group, ``v`` the parameters of the vector-scaling loss ``L_vs``, ``D`` a divergence,
``T^a`` the group's training rows and ``V`` the validation rows. :class:`TriLevelNet`
holds everything trainable; :class:`TriLevelProblem` takes the steps: a lower step (one
optimiser step on every group's distribution, at the middle level's sharpness-aware
perturbation) and an upper step (the implicit gradient of the upper objective through
the group solutions).
"""

import torch
from torch import nn

from .bilevel import flat_grad, flatten, implicit_gradients, sam_perturb_, unflatten_like
from .draws import randn, randperm
from .engine import padded_group_batch
from .gaussian import (
    GaussianMLP,
    divergence_derivatives,
    divergence_grad,
    draw_noise,
    gaussian_forward,
)
from .losses import group_means, vs_loss, weighted_mean

__all__ = ["TriLevelNet", "TriLevelProblem", "balanced_class_weights", "UPPER_WEIGHTS"]

#: (weight of L_bal's gradient, of the divergence's direct gradient, of its implicit
#: gradient, of v's implicit gradient) for each upper weighting, from lambda_up
UPPER_WEIGHTS = {
    "paper": lambda lam: (1.0, lam, lam, lam),
    "convex": lambda lam: (lam, 1.0 - lam, 1.0 - lam, 1.0 - lam),
    "reference": lambda lam: (lam * lam, lam * (1.0 - lam), 1.0 - lam, 1.0),
}


class TriLevelNet(nn.Module):
    """Everything trainable: the global distribution ``prior``, the per-group
    distributions ``posts``, and the loss parameters ``dy`` (scale ``sigmoid(dy)``) and
    ``ly`` (shift). Buffers ``zeta_*`` hold the standard-normal weight draws used at
    prediction time."""

    def __init__(self, n_in, hidden, n_out, n_groups, n_mc, activation, logvar_init, generator):
        super().__init__()
        self.prior = GaussianMLP(
            n_in,
            hidden,
            n_out,
            n_models=1,
            activation=activation,
            logvar_init=logvar_init,
            generator=generator,
        )
        self.posts = GaussianMLP(
            n_in,
            hidden,
            n_out,
            n_models=n_groups,
            activation=activation,
            logvar_init=logvar_init,
            generator=generator,
        )
        self.posts.copy_from(self.prior)
        self.dy = nn.Parameter(torch.ones(n_out))
        self.ly = nn.Parameter(torch.zeros(n_out))
        widths = self.prior.widths
        for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            self.register_buffer(f"zeta_w{i}", torch.zeros(n_mc, fan_in, fan_out))
            self.register_buffer(f"zeta_b{i}", torch.zeros(n_mc, fan_out))

    def zetas(self):
        """The prediction draws as a list laid out like ``prior.parameter_list()``'s weights."""
        out = []
        for i in range(self.prior.n_layers):
            out += [getattr(self, f"zeta_w{i}"), getattr(self, f"zeta_b{i}")]
        return out


def balanced_class_weights(data, n_classes):
    """``omega_c ~ N / n_c`` from the (weighted) class counts of ``data``, unit L2 norm
    (0 for an absent class)."""
    w = torch.ones_like(data.y, dtype=torch.float32) if data.w is None else data.w
    counts = torch.zeros(n_classes, device=data.device).index_add(0, data.y, w)
    omega = torch.where(
        counts > 0, counts.sum() / counts.clamp_min(1e-12), torch.zeros_like(counts)
    )
    return omega / torch.linalg.vector_norm(omega)


class TriLevelProblem:
    """FACIMS's levels on the training rows ``train`` and validation rows ``val``.

    Parameters
    ----------
    net : TriLevelNet
    train, val : TensorData
        The rows of the group models and of the upper objective.
    optimizers : (post, prior, hyper)
        Optimisers of ``net.posts``, ``net.prior`` and ``[dy, ly]`` (hyper is None when
        the loss parameters are fixed).
    generator : torch.Generator
        Source of every random draw (batches, Monte Carlo noise, prior noise).
    class_weight, upper_class_weight : Tensor (n_classes,)
        Class weights of the lower and the upper loss.
    sam_radii : Tensor (n_groups,) or None
        SAM radius of each group (None: no middle-level perturbation).
    settings
        ``n_mc``, ``n_mc_hyper``, ``eps_std``, ``lambda_low``, ``lambda_up``,
        ``upper_weighting``, ``divergence``, ``prior_noise``, ``output_sigmoid``,
        ``group_batch_size``, ``val_batch_size``, ``validation_aggregation``,
        ``neumann_terms``, ``neumann_lr``: the estimator's parameters of those names.
    """

    def __init__(
        self,
        net,
        train,
        val,
        *,
        optimizers,
        generator,
        class_weight,
        upper_class_weight,
        sam_radii,
        n_mc,
        n_mc_hyper,
        eps_std,
        lambda_low,
        lambda_up,
        upper_weighting,
        divergence,
        prior_noise,
        output_sigmoid,
        group_batch_size,
        val_batch_size,
        validation_aggregation,
        neumann_terms,
        neumann_lr,
    ):
        self.net, self.train, self.val = net, train, val
        self.opt_post, self.opt_prior, self.opt_hyper = optimizers
        self.gen = generator
        self.omega, self.omega_up = class_weight, upper_class_weight
        self.radii = sam_radii
        self.n_mc, self.n_mc_hyper = n_mc, n_mc_hyper
        self.eps_std = float(eps_std)
        self.lambda_low = float(lambda_low)
        self.w_val, self.w_dir, self.w_ind, self.w_v = UPPER_WEIGHTS[upper_weighting](
            float(lambda_up)
        )
        self.divergence = divergence
        self.prior_noise = prior_noise
        self.output_sigmoid = output_sigmoid
        self.group_batch_size = group_batch_size
        self.per_group_validation = validation_aggregation == "per_group"
        self.neumann_terms, self.neumann_lr = neumann_terms, neumann_lr
        self.n_groups = net.posts.n_models
        self.prior = net.prior.parameter_list()
        self.posts = net.posts.parameter_list()
        self.hyper = [] if self.opt_hyper is None else [net.dy, net.ly]
        self.group_rows = train.group_indices()
        n_v = len(val)
        self.val_batch = n_v if val_batch_size is None else min(n_v, val_batch_size)
        # the parameters the lower loss of the upper-level graphs depends on: all, or
        # only the means (w_mu, b_mu of each layer) for the mean network (n_mc_hyper=0)
        self.curved = (
            None
            if (n_mc_hyper > 0 and self.eps_std > 0)
            else [i for i in range(len(self.posts)) if i % 2 == 0]
        )

    # ------------------------------------------------------------------ pieces
    def group_batch(self, groups):
        """Each group's batch of training rows, repeated once per Monte Carlo pass: for
        the lower steps (``n_mc`` passes) and for the upper steps' graphs."""
        x, y, w = padded_group_batch(
            self.train, self.group_rows, groups, self.group_batch_size, self.gen
        )

        def repeat(n_pass):
            return x.repeat(1, n_pass, 1), y.repeat(1, n_pass), w.repeat(1, n_pass)

        return groups, repeat(self.n_mc), repeat(max(1, self.n_mc_hyper))

    def _noisy_prior(self):
        """The global distribution with the prior noise added (a fresh draw)."""
        if self.prior_noise == 0:
            return list(self.prior)
        return [
            p + self.prior_noise * randn(p.shape, self.gen, device=p.device, dtype=p.dtype)
            for p in self.prior
        ]

    def _scale_shift(self, detach):
        scale, shift = torch.sigmoid(self.net.dy), self.net.ly
        return (scale.detach(), shift.detach()) if detach else (scale, shift)

    def _select(self, params, groups):
        """The rows of the active ``groups`` of stacked per-group parameters."""
        if len(groups) == self.n_groups:
            return list(params)
        idx = torch.as_tensor(groups, dtype=torch.long, device=params[0].device)
        return [q.index_select(0, idx) for q in params]

    def _lower_vs(self, Q, rows, scale, shift, noise=None, eps=None):
        """Per-group VS loss averaged over the Monte Carlo copies in ``rows``: (A,)."""
        x, y, w = rows
        out = gaussian_forward(
            x,
            Q,
            act=self.net.prior.act,
            eps_std=self.eps_std if eps is None else eps,
            generator=self.gen,
            noise=noise,
        )
        if self.output_sigmoid:
            out = torch.sigmoid(out)
        return vs_loss(out, y, scale=scale, shift=shift, class_weight=self.omega, weight=w)

    def _lower_grads(self, P, rows, groups, scale, shift, noise):
        """Gradients of the per-group lower objectives for all of ``posts`` (zero for
        inactive groups); the divergence part in closed form."""
        Q = self._select(self.posts, groups)
        L_vs = self._lower_vs(Q, rows, scale, shift, noise)
        grads = torch.autograd.grad(
            L_vs.sum(), self.posts, allow_unused=True, materialize_grads=True
        )
        gq = divergence_grad(self.divergence, [q.detach() for q in Q], P)
        if len(groups) == self.n_groups:
            for g, d in zip(grads, gq, strict=True):
                g.add_(d, alpha=self.lambda_low)
            return grads
        idx = torch.as_tensor(groups, dtype=torch.long, device=P[0].device)
        return [
            g.index_add(0, idx, d, alpha=self.lambda_low) for g, d in zip(grads, gq, strict=True)
        ]

    def _upper_loss(self):
        """The balanced cross-entropy of the global model on (a batch of) ``val``."""
        V, n_v, S_val = self.val, len(self.val), max(1, self.n_mc_hyper)
        if self.val_batch < n_v:
            idx = randperm(n_v, self.gen, device=V.device)[: self.val_batch]
            b = V.batch(idx)
            x, y, g, w = b.x, b.y, b.g, b.w
        else:
            x, y, g, w = V.X, V.y, V.g, V.w
        out = gaussian_forward(
            x.repeat(S_val, 1),
            self.prior,
            act=self.net.prior.act,
            eps_std=self.eps_std,
            generator=self.gen,
        )[0]
        if self.output_sigmoid:
            out = torch.sigmoid(out)
        yr = y.repeat(S_val)
        per_row = -torch.log_softmax(out, dim=-1).gather(1, yr[:, None])[:, 0]
        rw = self.omega_up[yr] if w is None else self.omega_up[yr] * w.repeat(S_val)
        if not self.per_group_validation:
            return weighted_mean(per_row, rw)
        means, totals = group_means(per_row, g.repeat(S_val), self.n_groups, weight=rw)
        return means[totals > 0].mean()

    # ------------------------------------------------------------------ the levels
    def middle_ascent(self, grads):
        """The middle level's perturbation ``e_a = rho_a g_a / ||g_a||`` of every group's
        distribution, in place (one sharpness-aware ascent step, all groups at once;
        inactive groups have zero gradients, hence zero steps)."""
        sam_perturb_(self.posts, grads, self.radii)

    def lower_step(self, batch):
        """One optimiser step of every active group's distribution on its lower
        objective, evaluated at the middle level's perturbation when ``sam_radii``."""
        groups, rows, _ = batch
        scale, shift = self._scale_shift(detach=True)
        with torch.no_grad():
            P = self._noisy_prior()
        noise = draw_noise(rows[0], self.posts, self.gen) if self.eps_std > 0 else None
        grads = self._lower_grads(P, rows, groups, scale, shift, noise)
        if self.radii is not None:
            saved = [q.detach().clone() for q in self.posts]
            self.middle_ascent(grads)
            grads = self._lower_grads(P, rows, groups, scale, shift, noise)
            with torch.no_grad():
                for q, s in zip(self.posts, saved, strict=True):
                    q.copy_(s)
        for q, g in zip(self.posts, grads, strict=True):
            q.grad = g
        self.opt_post.step()

    def lower_graph(self, batch):
        """The group losses of the upper steps' graphs and their gradient in the group
        distributions (with a graph, for the implicit gradient)."""
        groups, _, rows = batch
        Q = self._select(self.posts, groups)
        scale, shift = self._scale_shift(detach=not self.hyper)
        L_vs = self._lower_vs(
            Q, rows, scale, shift, eps=self.eps_std if self.n_mc_hyper > 0 else 0.0
        )
        # the mean network's loss does not depend on the log-variances: differentiate
        # w.r.t. the means only (``curved``)
        g_vs = flat_grad(
            L_vs.sum(), Q if self.curved is None else [Q[i] for i in self.curved], create_graph=True
        )
        return Q, L_vs, g_vs

    def upper_step(self, graph, *, retain_graph=False):
        """One step of the global distribution (and of ``v``) along the total derivative
        of the upper objective, through the group solutions by the implicit function
        theorem (truncated Neumann series); ``graph`` is :meth:`lower_graph`'s output.
        Returns the scalars to record."""
        Q, L_vs, g_vs = graph
        n_active = Q[0].shape[0]
        with torch.no_grad():
            Pn = self._noisy_prior()
        D, gq, gp, hq, mixed = divergence_derivatives(self.divergence, [q.detach() for q in Q], Pn)
        u_q = flatten(gq) / n_active
        u_p = flatten(gp) / n_active
        val_loss = self._upper_loss()
        g_val = flat_grad(val_loss, self.prior)
        mixed_p, mixed_v = implicit_gradients(
            g_vs,
            Q,
            self.hyper,
            u_q,
            div_hess=flatten(hq),
            div_mixed=lambda v: flatten(mixed(unflatten_like(v, Q))),
            lambda_low=self.lambda_low,
            n_terms=self.neumann_terms,
            alpha=self.neumann_lr,
            retain_graph=retain_graph,
            curved=self.curved,
            stacked=True,
        )
        g_prior = self.w_val * g_val + self.w_dir * u_p - self.w_ind * mixed_p
        self.opt_prior.zero_grad(set_to_none=True)
        _set_grads(self.prior, g_prior)
        self.opt_prior.step()
        if self.hyper:
            self.opt_hyper.zero_grad(set_to_none=True)
            _set_grads(self.hyper, -self.w_v * mixed_v)
            self.opt_hyper.step()
        lower = L_vs.detach() + self.lambda_low * D
        return {
            "lower": lower.detach().mean(),
            "val_loss": val_loss.detach(),
            "divergence": D.mean().detach(),
        }

    @torch.no_grad()
    def draw_prediction_samples(self):
        """Standard-normal weight draws for prediction, once, from the generator."""
        for z in self.net.zetas():
            z.copy_(randn(z.shape, self.gen, device=z.device))


def _set_grads(params, flat):
    for p, g in zip(params, unflatten_like(flat, params), strict=True):
        p.grad = g.detach().clone()
