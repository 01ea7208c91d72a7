"""Reference implementations the tests check the package against: autograd-friendly
divergences between diagonal Gaussians, written out term by term."""

import torch


def _pairs(params):
    return [(params[i], params[i + 1]) for i in range(0, len(params), 2)]


def _per_model_sum(t):
    return t.reshape(t.shape[0], -1).sum(1)


def kl_divergence(q_params, p_params):
    """``KL(q || p)`` between diagonal Gaussians, summed over all weights: shape (B,).

    ``q_params`` has ``B`` models, ``p_params`` ``B`` or 1 (broadcast).
    """
    total = 0.0
    for (q_mu, q_lv), (p_mu, p_lv) in zip(_pairs(q_params), _pairs(p_params), strict=True):
        term = p_lv - q_lv + (q_lv.exp() + (q_mu - p_mu) ** 2) / p_lv.exp() - 1.0
        total = total + 0.5 * _per_model_sum(term.expand_as(q_mu))
    return total


def w2_divergence(q_params, p_params):
    """Squared 2-Wasserstein distance between diagonal Gaussians: shape (B,).

    ``sum[(mu_q - mu_p)^2 + (sigma_q - sigma_p)^2]`` with ``sigma = exp(logvar / 2)``.
    """
    total = 0.0
    for (q_mu, q_lv), (p_mu, p_lv) in zip(_pairs(q_params), _pairs(p_params), strict=True):
        term = (q_mu - p_mu) ** 2 + (torch.exp(0.5 * q_lv) - torch.exp(0.5 * p_lv)) ** 2
        total = total + _per_model_sum(term.expand_as(q_mu))
    return total


def divergence(name, q_params, p_params):
    """``kl_divergence`` or ``w2_divergence`` by name."""
    return {"kl": kl_divergence, "w2": w2_divergence}[name](q_params, p_params)
