"""Conditional VAE primitives: the reparameterisation trick, the Gaussian KL, the ELBO.

Seg2Vid's motion model is a conditional VAE: an encoder ``q(z | video, first frame)`` used only
in training, a decoder ``p(video | z, first frame)``, and the prior ``p(z) = N(0, I)`` sampled at
test time, so that different ``z`` give different futures. This module holds the pieces every
(c)VAE in the course shares, and a small MLP (c)VAE for the toy problems of lesson 01.

Conventions: a diagonal Gaussian over a ``D``-dimensional latent is given by its mean ``mu`` and
its log-variance ``logvar`` (natural log of the variance, not of the standard deviation), both
``(B, D)``; a batch of data is flat, ``(B, x_dim)``, with values in [0, 1] for the Bernoulli
likelihood of :func:`elbo_loss`.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "LOGVAR_RANGE",
    "GaussianHead",
    "MLPCVAE",
    "elbo_loss",
    "kl_diagonal_gaussian",
    "reparameterize",
]

#: (min, max) that :class:`GaussianHead` clamps ``logvar`` to: standard deviations from
#: exp(-5) ~ 0.0067 to exp(5) ~ 148, far wider than a unit prior needs, yet exp() of it can
#: neither overflow nor underflow in float16/float32 (see GaussianHead for why it matters).
LOGVAR_RANGE: tuple[float, float] = (-10.0, 10.0)

Reduction = Literal["mean", "sum", "none"]


def reparameterize(mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Draw ``z ~ N(mu, diag(exp(logvar)))`` as ``z = mu + exp(logvar / 2) * eps``, ``eps ~ N(0, I)``.

    The randomness lives in ``eps`` only, so ``z`` is a differentiable function of ``mu`` and
    ``logvar``: gradients of a loss on ``z`` reach the encoder that produced them (Kingma and
    Welling, 2014, section 2.4).

    Args:
        mu: mean, any shape, e.g. ``(B, D)``.
        logvar: log-variance, the same shape as ``mu``.
        generator: optional ``torch.Generator`` for ``eps``; ``eps`` is drawn on the generator's
            device and moved to ``mu``'s, so a CPU generator gives the same draw on every device.
            ``None`` uses torch's global generator.
    Returns:
        ``z``, the same shape, dtype and device as ``mu``.
    """
    if mu.shape != logvar.shape:
        raise ValueError(
            f"mu and logvar must have the same shape, got {tuple(mu.shape)} and {tuple(logvar.shape)}"
        )
    if generator is None:
        eps = torch.randn_like(mu)
    else:
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=generator.device)
        eps = eps.to(mu.device)
    return mu + torch.exp(0.5 * logvar) * eps


def kl_diagonal_gaussian(
    mu: Tensor,
    logvar: Tensor,
    mu_p: Tensor | None = None,
    logvar_p: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    """KL(q || p) between diagonal Gaussians q = N(mu, diag exp(logvar)), p = N(mu_p, diag exp(logvar_p)).

    Closed form, summed over the latent dimensions j::

        KL = 1/2 * sum_j [ logvar_p - logvar + (exp(logvar) + (mu - mu_p)^2) / exp(logvar_p) - 1 ]

    which for the standard prior p = N(0, I) is ``-1/2 * sum_j (1 + logvar - mu^2 - exp(logvar))``.

    Args:
        mu, logvar: the posterior q, ``(B, D)`` (more leading dims are allowed: ``(..., D)``).
        mu_p, logvar_p: the prior p, broadcastable to ``mu``; ``None`` means 0, i.e. the
            standard prior N(0, I) (Seg2Vid's).
        reduction: what to do with the per-sample KL (already SUMMED over the last, latent, dim):
            ``"mean"`` over the batch (a scalar; the usual training loss), ``"sum"`` over the batch
            (a scalar), ``"none"`` (shape ``(B,)``, or ``mu.shape[:-1]``).
    Returns:
        The KL in nats, >= 0, zero exactly when q = p.
    """
    if mu.shape != logvar.shape:
        raise ValueError(
            f"mu and logvar must have the same shape, got {tuple(mu.shape)} and {tuple(logvar.shape)}"
        )
    if mu_p is None:
        mu_p = torch.zeros((), dtype=mu.dtype, device=mu.device)
    if logvar_p is None:
        logvar_p = torch.zeros((), dtype=mu.dtype, device=mu.device)
    # exp(logvar) / exp(logvar_p) - 1 - (logvar - logvar_p), written with expm1 of the difference:
    # exactly 0 when q = p, and accurate (never slightly negative) when the variances are close.
    log_ratio = logvar - logvar_p
    per_dim = 0.5 * (torch.expm1(log_ratio) - log_ratio + (mu - mu_p).square() * torch.exp(-logvar_p))
    per_sample = per_dim.sum(dim=-1)
    if reduction == "none":
        return per_sample
    if reduction == "sum":
        return per_sample.sum()
    if reduction == "mean":
        return per_sample.mean()
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def elbo_loss(
    logits: Tensor, target: Tensor, mu: Tensor, logvar: Tensor, beta: float = 1.0
) -> tuple[Tensor, Tensor, Tensor]:
    """The negative ELBO of a (c)VAE with a Bernoulli decoder and the prior N(0, I).

    ``loss = recon + beta * kl`` where, per sample, ``recon = -log p(x | z)`` is the binary cross
    entropy SUMMED over the entries of ``x`` and ``kl = KL(q(z | x) || N(0, I))`` is summed over
    the latent dims; both are then averaged over the batch. With ``beta = 1`` this is minus the
    evidence lower bound, in nats per sample (beta != 1 is the beta-VAE weighting).

    Args:
        logits: decoder output before the sigmoid, ``(B, x_dim)`` (any ``(B, ...)``).
        target: the data, same shape, values in [0, 1].
        mu, logvar: the posterior q(z | x), ``(B, D)``.
        beta: weight of the KL term.
    Returns:
        ``(loss, recon, kl)``, three scalars; ``recon`` and ``kl`` are for logging.
    """
    if logits.shape != target.shape:
        raise ValueError(
            f"logits and target must have the same shape, got {tuple(logits.shape)} and {tuple(target.shape)}"
        )
    recon = F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(1).sum(1).mean()
    kl = kl_diagonal_gaussian(mu, logvar, reduction="mean")
    return recon + beta * kl, recon, kl


class GaussianHead(nn.Module):
    """A linear layer from features to the mean and log-variance of a diagonal Gaussian.

    ``logvar`` is clamped to :data:`LOGVAR_RANGE`. Why: the KL and the sampler use
    ``exp(logvar)`` and ``exp(-logvar_p)``. An untrained or diverging encoder can emit a
    log-variance of +-100, whose exp overflows to inf (or whose reciprocal does) and turns the
    loss into NaN at once; clamping keeps every exp finite. The range is wide enough that a
    healthy model never reaches it (where it does, the clamp also stops the gradient, which is
    the point: it no longer pushes further).

    Args:
        in_features: size of the input features.
        latent_dim: ``D``, the size of the latent.
    Shapes:
        input ``(B, in_features)`` -> ``(mu, logvar)``, each ``(B, latent_dim)``.
    """

    def __init__(self, in_features: int, latent_dim: int) -> None:
        super().__init__()
        self.in_features = in_features
        self.latent_dim = latent_dim
        self.linear = nn.Linear(in_features, 2 * latent_dim)

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self.linear(features).chunk(2, dim=-1)
        return mu, logvar.clamp(*LOGVAR_RANGE)


def _mlp(in_features: int, hidden_dim: int, out_features: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_features, hidden_dim),
        nn.ReLU(),
        nn.Linear(hidden_dim, hidden_dim),
        nn.ReLU(),
        nn.Linear(hidden_dim, out_features),
    )


class MLPCVAE(nn.Module):
    """A small conditional VAE over flat vectors; ``cond_dim=0`` makes it a plain VAE.

    - encoder q(z | x, c): ``[x, c]`` -> two hidden ReLU layers -> :class:`GaussianHead`;
    - decoder p(x | z, c): ``[z, c]`` -> two hidden ReLU layers -> logits of independent
      Bernoullis, one per entry of ``x`` (train with :func:`elbo_loss`);
    - prior p(z) = N(0, I), independent of ``c`` (as in Seg2Vid).

    Args:
        x_dim: size of a flat data vector (e.g. 64 for an 8x8 image).
        latent_dim: ``D``, size of ``z``.
        cond_dim: size of the flat condition ``c`` (e.g. the first frame); 0 = no condition.
        hidden_dim: width of the hidden layers.
    Shapes:
        ``x`` ``(B, x_dim)`` in [0, 1]; ``cond`` ``(B, cond_dim)`` or ``None`` when ``cond_dim=0``;
        ``z``, ``mu``, ``logvar`` ``(B, latent_dim)``; logits ``(B, x_dim)``.
    """

    def __init__(self, x_dim: int, latent_dim: int, cond_dim: int = 0, hidden_dim: int = 256) -> None:
        super().__init__()
        self.x_dim, self.latent_dim, self.cond_dim = x_dim, latent_dim, cond_dim
        self.encoder = nn.Sequential(_mlp(x_dim + cond_dim, hidden_dim, hidden_dim), nn.ReLU())
        self.head = GaussianHead(hidden_dim, latent_dim)
        self.decoder = _mlp(latent_dim + cond_dim, hidden_dim, x_dim)

    def _with_cond(self, v: Tensor, cond: Tensor | None) -> Tensor:
        if self.cond_dim == 0:
            if cond is not None:
                raise ValueError("this model has cond_dim=0: pass cond=None")
            return v
        if cond is None or cond.shape != (v.shape[0], self.cond_dim):
            got = None if cond is None else tuple(cond.shape)
            raise ValueError(f"cond must have shape ({v.shape[0]}, {self.cond_dim}), got {got}")
        return torch.cat([v, cond], dim=1)

    def encode(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The posterior q(z | x, c): ``(mu, logvar)``, each ``(B, latent_dim)``."""
        return self.head(self.encoder(self._with_cond(x, cond)))

    def decode(self, z: Tensor, cond: Tensor | None = None) -> Tensor:
        """Logits of p(x | z, c), ``(B, x_dim)``; ``torch.sigmoid`` gives the pixel means."""
        return self.decoder(self._with_cond(z, cond))

    def forward(
        self, x: Tensor, cond: Tensor | None = None, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Encode, sample z with :func:`reparameterize`, decode: ``(logits, mu, logvar)``."""
        mu, logvar = self.encode(x, cond)
        z = reparameterize(mu, logvar, generator)
        return self.decode(z, cond), mu, logvar

    def sample(
        self, n: int | None = None, cond: Tensor | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """Draw z from the prior N(0, I) and decode: pixel means in [0, 1], ``(B, x_dim)``.

        ``B`` is ``cond.shape[0]`` when a condition is given (one sample per row; repeat rows
        for several samples of one condition), else ``n``. Wrap in ``torch.no_grad()`` for display.
        """
        if cond is not None:
            n = cond.shape[0]
        if n is None:
            raise ValueError("give n (the number of samples) or cond")
        device = next(self.parameters()).device
        zeros = torch.zeros(n, self.latent_dim, device=device)
        z = reparameterize(zeros, zeros, generator)
        return torch.sigmoid(self.decode(z, cond))
