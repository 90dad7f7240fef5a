"""cVAE primitives against torch.distributions and against their definitions."""

import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

from seg2vid.cvae import (
    LOGVAR_RANGE,
    MLPCVAE,
    GaussianHead,
    elbo_loss,
    kl_diagonal_gaussian,
    reparameterize,
)


def gaussian(mu, logvar):
    return Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)


def random_gaussian(generator, *shape, dtype=torch.float64):
    mu = torch.randn(*shape, generator=generator, dtype=dtype) * 2
    logvar = torch.randn(*shape, generator=generator, dtype=dtype) * 1.5
    return mu, logvar


@pytest.mark.parametrize("seed", range(3))
def test_kl_standard_prior_matches_torch_distributions(seed):
    g = torch.Generator().manual_seed(seed)
    mu, logvar = random_gaussian(g, 5, 7)
    prior = gaussian(torch.zeros_like(mu), torch.zeros_like(logvar))
    expected = kl_divergence(gaussian(mu, logvar), prior)
    torch.testing.assert_close(kl_diagonal_gaussian(mu, logvar, reduction="none"), expected)


@pytest.mark.parametrize("seed", range(3))
def test_kl_general_prior_matches_torch_distributions(seed):
    g = torch.Generator().manual_seed(seed)
    mu, logvar = random_gaussian(g, 4, 6)
    mu_p, logvar_p = random_gaussian(g, 4, 6)
    expected = kl_divergence(gaussian(mu, logvar), gaussian(mu_p, logvar_p))
    got = kl_diagonal_gaussian(mu, logvar, mu_p, logvar_p, reduction="none")
    torch.testing.assert_close(got, expected)
    # ...and KL is not symmetric: swapping q and p changes it.
    assert not torch.allclose(got, kl_diagonal_gaussian(mu_p, logvar_p, mu, logvar, reduction="none"))


def test_kl_prior_broadcasts():
    g = torch.Generator().manual_seed(0)
    mu, logvar = random_gaussian(g, 3, 4)
    mu_p, logvar_p = random_gaussian(g, 4)  # one prior shared by the batch
    expected = kl_divergence(gaussian(mu, logvar), gaussian(mu_p.expand(3, 4), logvar_p.expand(3, 4)))
    torch.testing.assert_close(kl_diagonal_gaussian(mu, logvar, mu_p, logvar_p, reduction="none"), expected)


def test_kl_of_a_distribution_with_itself_is_zero():
    g = torch.Generator().manual_seed(1)
    mu, logvar = random_gaussian(g, 8, 3)
    assert torch.equal(
        kl_diagonal_gaussian(mu, logvar, mu, logvar, reduction="none"), torch.zeros(8, dtype=mu.dtype)
    )
    zeros = torch.zeros(2, 5)
    assert torch.equal(kl_diagonal_gaussian(zeros, zeros, reduction="sum"), torch.tensor(0.0))


def test_kl_is_positive_and_known_value():
    # KL(N(1, 1) || N(0, 1)) = 1/2 per dimension, summed over the 3 latent dims.
    mu, logvar = torch.ones(2, 3), torch.zeros(2, 3)
    torch.testing.assert_close(kl_diagonal_gaussian(mu, logvar, reduction="none"), torch.full((2,), 1.5))


def test_kl_reductions():
    g = torch.Generator().manual_seed(2)
    mu, logvar = random_gaussian(g, 6, 4)
    per_sample = kl_diagonal_gaussian(mu, logvar, reduction="none")
    assert per_sample.shape == (6,)
    torch.testing.assert_close(kl_diagonal_gaussian(mu, logvar), per_sample.mean())
    torch.testing.assert_close(kl_diagonal_gaussian(mu, logvar, reduction="sum"), per_sample.sum())
    assert kl_diagonal_gaussian(mu, logvar).shape == ()
    # Extra leading dims: summed over the LAST dim only.
    assert kl_diagonal_gaussian(mu.view(2, 3, 4), logvar.view(2, 3, 4), reduction="none").shape == (2, 3)
    with pytest.raises(ValueError, match="reduction"):
        kl_diagonal_gaussian(mu, logvar, reduction="average")
    with pytest.raises(ValueError, match="same shape"):
        kl_diagonal_gaussian(mu, logvar[:, :2])


def test_reparameterized_samples_have_the_requested_moments():
    mu = torch.tensor([[-2.0, 0.0, 3.0]])
    logvar = torch.tensor([[0.0, -2.0, 1.5]])
    n = 200_000
    g = torch.Generator().manual_seed(0)
    z = reparameterize(mu.expand(n, 3), logvar.expand(n, 3), generator=g)
    var = logvar.exp()[0]
    # Standard error of the mean is sqrt(var / n); of the variance about var * sqrt(2 / n).
    torch.testing.assert_close(z.mean(0), mu[0], atol=float(5 * (var.max() / n).sqrt()), rtol=0)
    torch.testing.assert_close(z.var(0), var, atol=0, rtol=5 * (2 / n) ** 0.5)


def test_reparameterize_is_seeded_and_shaped():
    mu, logvar = torch.zeros(4, 2), torch.zeros(4, 2)
    a = reparameterize(mu, logvar, torch.Generator().manual_seed(3))
    b = reparameterize(mu, logvar, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == (4, 2) and a.dtype == mu.dtype
    assert not torch.equal(a, reparameterize(mu, logvar, torch.Generator().manual_seed(4)))
    # exp(-inf) = 0: a zero-variance Gaussian gives back its mean.
    assert torch.equal(reparameterize(mu + 1, torch.full((4, 2), -float("inf"))), mu + 1)


def test_gradients_reach_mu_and_logvar():
    mu = torch.randn(5, 3, requires_grad=True)
    logvar = torch.randn(5, 3, requires_grad=True)
    z = reparameterize(mu, logvar, torch.Generator().manual_seed(0))
    (z.square().sum() + kl_diagonal_gaussian(mu, logvar)).backward()
    for tensor in (mu, logvar):
        assert tensor.grad is not None and torch.isfinite(tensor.grad).all() and tensor.grad.abs().sum() > 0
    # d z / d mu = 1 exactly.
    mu.grad = None
    reparameterize(mu, logvar.detach()).sum().backward()
    assert torch.equal(mu.grad, torch.ones_like(mu))


def test_gaussian_head_shapes_and_clamp():
    head = GaussianHead(in_features=10, latent_dim=4)
    mu, logvar = head(torch.randn(7, 10))
    assert mu.shape == logvar.shape == (7, 4)
    with torch.no_grad():
        head.linear.bias.fill_(1e4)
    mu, logvar = head(torch.randn(7, 10))
    assert logvar.max() <= LOGVAR_RANGE[1] and torch.isfinite(logvar.exp()).all()
    with torch.no_grad():
        head.linear.bias.fill_(-1e4)
    _, logvar = head(torch.randn(7, 10))
    assert logvar.min() >= LOGVAR_RANGE[0] and (torch.exp(-logvar) < float("inf")).all()


def test_elbo_loss_is_bce_sum_plus_beta_kl():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 16, generator=g)
    target = torch.rand(3, 16, generator=g)
    mu, logvar = random_gaussian(g, 3, 2, dtype=torch.float32)
    loss, recon, kl = elbo_loss(logits, target, mu, logvar, beta=0.5)
    p = torch.sigmoid(logits)
    manual_recon = -(target * p.log() + (1 - target) * (1 - p).log()).sum(1).mean()
    torch.testing.assert_close(recon, manual_recon)
    torch.testing.assert_close(kl, kl_diagonal_gaussian(mu, logvar))
    torch.testing.assert_close(loss, recon + 0.5 * kl)
    # Image-shaped inputs: summed over every non-batch dim.
    loss_img, _, _ = elbo_loss(logits.view(3, 1, 4, 4), target.view(3, 1, 4, 4), mu, logvar, beta=0.5)
    torch.testing.assert_close(loss_img, loss)


@pytest.mark.parametrize("cond_dim", [0, 5])
def test_mlp_cvae_shapes_and_training_signal(cond_dim):
    torch.manual_seed(0)
    model = MLPCVAE(x_dim=12, latent_dim=3, cond_dim=cond_dim, hidden_dim=16)
    x = torch.rand(4, 12)
    cond = torch.rand(4, cond_dim) if cond_dim else None
    logits, mu, logvar = model(x, cond, generator=torch.Generator().manual_seed(0))
    assert logits.shape == (4, 12) and mu.shape == logvar.shape == (4, 3)
    loss, _, _ = elbo_loss(logits, x, mu, logvar)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    with torch.no_grad():
        samples = model.sample(n=6) if cond is None else model.sample(cond=cond)
    assert samples.shape == ((6, 12) if cond is None else (4, 12))
    assert samples.min() >= 0 and samples.max() <= 1


def test_mlp_cvae_checks_its_condition():
    model = MLPCVAE(x_dim=4, latent_dim=2, cond_dim=3, hidden_dim=8)
    with pytest.raises(ValueError, match=r"cond must have shape \(2, 3\)"):
        model(torch.rand(2, 4))
    with pytest.raises(ValueError, match="cond_dim=0"):
        MLPCVAE(x_dim=4, latent_dim=2)(torch.rand(2, 4), torch.rand(2, 3))
    with pytest.raises(ValueError, match="give n"):
        MLPCVAE(x_dim=4, latent_dim=2).sample()
