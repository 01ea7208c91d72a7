"""Diagonal-Gaussian ("Bayesian") fully connected networks and their divergences.

A :class:`GaussianMLP` holds, for every weight and bias of an MLP, a mean ``mu`` and a
log-variance ``logvar``: a fully factorised Gaussian distribution over networks. It
stores ``n_models`` such distributions side by side (leading dimension of every
parameter), so that a global distribution (``n_models=1``) and one distribution per
group (``n_models=G``) share one code path and the per-group networks run as one batched
matrix product.

Forward passes
--------------
* :func:`gaussian_forward` - training pass with the *local reparameterisation trick*
  (Kingma, Salimans & Welling, 2015): for a layer with input ``x`` the pre-activation is
  ``m + eps_std * xi * s`` with ``m = x mu_W^T + mu_b``, ``s^2 = x^2 sigma_W^2^T +
  sigma_b^2`` and ``xi ~ N(0, I)`` drawn per row and unit from an explicit generator.
  Marginally this is the output of a network whose weights are drawn from
  ``N(mu, (eps_std * sigma)^2)``, independently for every row.
* :func:`sampled_forward` - prediction pass with weights ``mu + eps_std * sigma * zeta``
  for stored standard-normal draws ``zeta``: the same distribution as above, but with one
  fixed weight sample shared by all rows, so the output of a row does not depend on the
  other rows of the batch (needed for reproducible, row-independent ``predict``).

Divergences (summed over every weight and bias of every layer, one value per model)
-----------------------------------------------------------------------------------
* ``"kl"``: ``KL(q || p) = 1/2 sum[logvar_p - logvar_q + (sigma_q^2 + (mu_q - mu_p)^2) /
  sigma_p^2 - 1]``;
* ``"w2"``: the squared 2-Wasserstein distance between the diagonal Gaussians,
  ``sum[(mu_q - mu_p)^2 + (sigma_q - sigma_p)^2]``.

Parameter lists are flat: ``[w_mu, w_logvar, b_mu, b_logvar]`` for each layer in order;
weights have shape ``(n_models, in, out)`` (stored transposed with respect to
``nn.Linear``, so that the batched products ``h @ w`` and their gradients are contiguous),
biases ``(n_models, out)``.
"""

import math

import torch
from torch import nn

from .draws import randn
from .modules import make_activation

__all__ = [
    "GaussianMLP",
    "gaussian_forward",
    "sampled_forward",
    "draw_noise",
    "DIVERGENCES",
    "divergence_derivatives",
    "divergence_grad",
]


class GaussianMLP(nn.Module):
    """``n_models`` diagonal-Gaussian MLPs ``n_in -> hidden -> n_out``.

    Parameters
    ----------
    n_in, n_out : int
        Input and output widths.
    hidden_layer_sizes : sequence of int
        Hidden widths (empty: an affine model).
    n_models : int, default=1
        Number of distributions stored side by side.
    activation : str, default="elu"
        Hidden activation (a key of :data:`skfairbilevel.nn.modules.ACTIVATIONS`).
    logvar_init : (float, float), default=(0.01, 0.01)
        Mean and standard deviation of the normal draw of the initial log-variances.
    generator : torch.Generator, optional
        Source of the initial values: means ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``,
        log-variances ``N(logvar_init[0], logvar_init[1]^2)``. All ``n_models``
        distributions start equal (one draw, repeated).
    """

    def __init__(
        self,
        n_in,
        hidden_layer_sizes,
        n_out,
        *,
        n_models=1,
        activation="elu",
        logvar_init=(0.01, 0.01),
        generator=None,
    ):
        super().__init__()
        self.activation = activation
        self.act = make_activation(activation)
        widths = [int(n_in)] + [int(h) for h in hidden_layer_sizes] + [int(n_out)]
        self.widths = widths
        self.n_models = int(n_models)
        params = []
        lv_mean, lv_std = float(logvar_init[0]), float(logvar_init[1])
        for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            w_mu = torch.empty(fan_out, fan_in).uniform_(-bound, bound, generator=generator).T
            w_lv = torch.empty(fan_out, fan_in).normal_(lv_mean, lv_std, generator=generator).T
            b_mu = torch.empty(fan_out).uniform_(-bound, bound, generator=generator)
            b_lv = torch.empty(fan_out).normal_(lv_mean, lv_std, generator=generator)
            for t in (w_mu, w_lv, b_mu, b_lv):
                rep = t.unsqueeze(0).expand((self.n_models,) + tuple(t.shape)).clone()
                params.append(nn.Parameter(rep))
        self.params = nn.ParameterList(params)

    @property
    def n_layers(self):
        """Number of Linear layers."""
        return len(self.widths) - 1

    def parameter_list(self):
        """The parameters as a flat list ``[w_mu, w_logvar, b_mu, b_logvar, ...]``."""
        return list(self.params)

    @torch.no_grad()
    def copy_from(self, other):
        """Set every one of the ``n_models`` distributions to ``other``'s (1 model)."""
        for mine, theirs in zip(self.params, other.params, strict=True):
            mine.copy_(theirs.expand_as(mine))
        return self

    def forward(self, x, *, eps_std=0.0, generator=None, noise=None):
        """Local-reparameterisation pass; see :func:`gaussian_forward`."""
        return gaussian_forward(
            x,
            self.parameter_list(),
            act=self.act,
            eps_std=eps_std,
            generator=generator,
            noise=noise,
        )


def _layers(params):
    if len(params) % 4:
        raise ValueError("a Gaussian parameter list holds 4 tensors per layer")
    return [params[i : i + 4] for i in range(0, len(params), 4)]


def draw_noise(x, params, generator):
    """Standard-normal noise ``xi`` for :func:`gaussian_forward` (one tensor per layer,
    shaped ``(B, n, out)``), to evaluate the same stochastic objective twice."""
    layers = _layers(params)
    B = x.shape[0] if x.dim() == 3 else layers[0][0].shape[0]
    n = x.shape[-2]
    return [
        randn((B, n, w_mu.shape[-1]), generator, device=x.device, dtype=x.dtype)
        for w_mu, _, _, _ in layers
    ]


def gaussian_forward(x, params, *, act, eps_std=0.0, generator=None, noise=None):
    """Stochastic forward pass with the local reparameterisation trick.

    Parameters
    ----------
    x : Tensor (n, in) or (B, n, in)
        Inputs; a 2-D input is shared by all ``B`` models.
    params : list of Tensor
        ``[w_mu (B, in, out), w_logvar, b_mu (B, out), b_logvar, ...]``.
    act : callable
        Hidden activation.
    eps_std : float
        Noise scale; 0 gives the deterministic mean network.
    generator : torch.Generator, optional
        Source of the noise ``xi`` (required when ``eps_std > 0`` and no ``noise``).
    noise : list of Tensor, optional
        Pre-drawn ``xi`` (:func:`draw_noise`).

    Returns
    -------
    Tensor (B, n, out)
    """
    layers = _layers(params)
    B = layers[0][0].shape[0]
    h = x.unsqueeze(0).expand(B, -1, -1) if x.dim() == 2 else x
    for i, (w_mu, w_lv, b_mu, b_lv) in enumerate(layers):
        m = torch.baddbmm(b_mu.unsqueeze(1), h, w_mu)
        if eps_std > 0:
            s2 = torch.baddbmm(b_lv.exp().unsqueeze(1), h * h, w_lv.exp())
            if noise is None:
                xi = randn(m.shape, generator, device=m.device, dtype=m.dtype)
            else:
                xi = noise[i]
            m = torch.addcmul(m, xi, torch.sqrt(s2), value=eps_std)
        h = act(m) if i < len(layers) - 1 else m
    return h


def sampled_forward(x, params, zetas, *, act, eps_std):
    """Forward pass of fixed weight samples ``mu + eps_std * sigma * zeta``.

    Parameters
    ----------
    x : Tensor (n, in)
    params : list of Tensor
        One model's parameters (leading dimension 1).
    zetas : list of Tensor
        Standard-normal draws shaped ``(S, *param.shape[1:])`` for the ``w_logvar`` and
        ``b_logvar`` entries of each layer (``[zeta_W, zeta_b, ...]``): ``S`` samples.
    act : callable
    eps_std : float
        0 gives the mean network (each of the ``S`` outputs equals it).

    Returns
    -------
    Tensor (S, n, out)
        Every row is computed by ``torch.nn.functional.linear`` on that row's sample
        only, so the output of a row does not depend on the other rows.
    """
    layers = _layers(params)
    S = zetas[0].shape[0]
    outs = []
    for s in range(S):
        h = x
        for i, (w_mu, w_lv, b_mu, b_lv) in enumerate(layers):
            w, b = w_mu[0], b_mu[0]
            if eps_std > 0:
                w = w + eps_std * torch.exp(0.5 * w_lv[0]) * zetas[2 * i][s]
                b = b + eps_std * torch.exp(0.5 * b_lv[0]) * zetas[2 * i + 1][s]
            h = torch.nn.functional.linear(h, w.T, b)
            if i < len(layers) - 1:
                h = act(h)
        outs.append(h)
    return torch.stack(outs)


def _per_model_sum(t):
    return t.reshape(t.shape[0], -1).sum(1)


def _pairs(params):
    return [(params[i], params[i + 1]) for i in range(0, len(params), 2)]


#: the divergences between diagonal Gaussians
DIVERGENCES = ("kl", "w2")


def _sum_to(t, like):
    """Sum ``t`` over the leading model dimension when ``like`` is broadcast (1 model)."""
    return t.sum(0, keepdim=True) if like.shape[0] == 1 and t.shape[0] != 1 else t


@torch.no_grad()
def divergence_grad(name, q_params, p_params):
    """``dD(q || p)/dq`` in closed form (the first output of
    :func:`divergence_derivatives`'s ``grad_q``, without the value, the other
    derivatives or any copy of an expanded tensor): the cheap call of the lower level.

    Returns a list of Tensor shaped like ``q_params``.
    """
    if name not in DIVERGENCES:
        raise ValueError(f"divergence={name!r} is not supported; use one of {sorted(DIVERGENCES)}.")
    out = []
    for (q_mu, q_lv), (p_mu, p_lv) in zip(_pairs(q_params), _pairs(p_params), strict=True):
        d = q_mu - p_mu
        if name == "w2":
            a = torch.exp(0.5 * q_lv)
            out += [d.mul_(2.0), a.sub(torch.exp(0.5 * p_lv)).mul_(a)]
        else:
            r = torch.exp(-p_lv)
            out += [d.mul_(r), torch.exp(q_lv).mul_(r).sub_(1.0).mul_(0.5)]
    return out


@torch.no_grad()
def divergence_derivatives(name, q_params, p_params):
    """Closed-form value and derivatives of ``D(q || p)``, without an autograd graph.

    Both divergences are sums of elementwise terms in ``(mu_q, logvar_q, mu_p,
    logvar_p)``, so their Hessian with respect to ``q`` is diagonal and every derivative
    is elementwise. Per weight, with ``d = mu_q - mu_p``:

    * ``"w2"`` (``a = exp(logvar_q / 2)``, ``b = exp(logvar_p / 2)``): ``dD/dmu_q = 2d``,
      ``dD/dlogvar_q = (a - b) a``, ``d2D/dmu_q2 = 2``, ``d2D/dlogvar_q2 = a^2 - ab/2``,
      ``d2D/dmu_p dmu_q = -2``, ``d2D/dlogvar_p dlogvar_q = -ab/2``;
    * ``"kl"`` (``r = exp(-logvar_p)``): ``dD/dmu_q = d r``,
      ``dD/dlogvar_q = (exp(logvar_q) r - 1) / 2``, ``d2D/dmu_q2 = r``,
      ``d2D/dlogvar_q2 = exp(logvar_q) r / 2``, ``d2D/dmu_p dmu_q = -r``,
      ``d2D/dlogvar_p dmu_q = -d r``, ``d2D/dlogvar_p dlogvar_q = -exp(logvar_q) r / 2``.

    Parameters
    ----------
    name : {"w2", "kl"}
    q_params : list of Tensor, ``B`` models
    p_params : list of Tensor, ``B`` or 1 model(s) (broadcast)

    Returns
    -------
    value : Tensor (B,)
    grad_q : list of Tensor shaped like ``q_params``
    grad_p : list of Tensor shaped like ``p_params`` (summed over the ``B`` models)
    hess_q : list of Tensor shaped like ``q_params``: the diagonal of ``d2D/dq2``
    mixed : callable, list shaped like ``q_params`` -> list shaped like ``p_params``:
        ``v -> sum over models of (d2D / dp dq) v``
    """
    if name not in DIVERGENCES:
        raise ValueError(f"divergence={name!r} is not supported; use one of {sorted(DIVERGENCES)}.")
    value = 0.0
    grad_q, grad_p, hess_q, coef = [], [], [], []
    for (q_mu, q_lv), (p_mu, p_lv) in zip(_pairs(q_params), _pairs(p_params), strict=True):
        d = q_mu - p_mu
        if name == "w2":
            a, b = torch.exp(0.5 * q_lv), torch.exp(0.5 * p_lv)
            term = d * d + (a - b) ** 2
            g_mu, g_lv = 2.0 * d, (a - b) * a
            gp_mu, gp_lv = -2.0 * d, -(a - b) * b
            h_mu, h_lv = torch.full_like(d, 2.0), a * a - 0.5 * a * b
            coef.append(("w2", -0.5 * a * b))
        else:
            r = torch.exp(-p_lv)
            eq = torch.exp(q_lv)
            term = 0.5 * (p_lv - q_lv + (eq + d * d) * r - 1.0)
            g_mu, g_lv = d * r, 0.5 * (eq * r - 1.0)
            gp_mu, gp_lv = -d * r, 0.5 * (1.0 - (eq + d * d) * r)
            h_mu, h_lv = r.expand_as(d), 0.5 * eq * r
            coef.append(("kl", (-r.expand_as(d), -d * r, -0.5 * eq * r)))
        value = value + _per_model_sum(term.expand_as(q_mu))
        grad_q += [g_mu.expand_as(q_mu), g_lv.expand_as(q_lv)]
        grad_p += [_sum_to(gp_mu.expand_as(q_mu), p_mu), _sum_to(gp_lv.expand_as(q_lv), p_lv)]
        hess_q += [h_mu.expand_as(q_mu).clone(), h_lv.expand_as(q_lv)]

    shapes = [(pm, pl) for pm, pl in _pairs(p_params)]

    @torch.no_grad()
    def mixed(v):
        out = []
        for (kind, c), (v_mu, v_lv), (p_mu, p_lv) in zip(coef, _pairs(v), shapes, strict=True):
            if kind == "w2":
                out += [_sum_to(-2.0 * v_mu, p_mu), _sum_to(c * v_lv, p_lv)]
            else:
                c_mumu, c_lvmu, c_lvlv = c
                out += [_sum_to(c_mumu * v_mu, p_mu), _sum_to(c_lvmu * v_mu + c_lvlv * v_lv, p_lv)]
        return out

    return value, grad_q, grad_p, hess_q, mixed
