"""The adversarial losses of stage 1 (SPADE, pix2pixHD): hinge GAN losses and feature matching.

The multi-scale discriminator (:class:`seg2vid.models.spade.MultiScaleDiscriminator`) returns, for
every scale, the list of its intermediate features with the patch logits last; these functions
take those lists of lists.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["feature_matching_loss", "hinge_discriminator_loss", "hinge_generator_loss"]


def hinge_discriminator_loss(real_outputs: list[list[Tensor]], fake_outputs: list[list[Tensor]]) -> Tensor:
    """The discriminator's hinge loss, averaged over scales (0-d).

    Args:
        real_outputs, fake_outputs: :class:`MultiScaleDiscriminator` outputs (per scale, a list of
            feature maps whose last is the patch logits) on true and on generated images.
    Returns:
        ``mean_s [mean relu(1 - D_s(real)) + mean relu(1 + D_s(fake))]``: 0 once every real patch
        scores >= 1 and every fake one <= -1.
    """
    terms = [
        torch.relu(1 - real[-1]).mean() + torch.relu(1 + fake[-1]).mean()
        for real, fake in zip(real_outputs, fake_outputs, strict=True)
    ]
    return torch.stack(terms).mean()


def hinge_generator_loss(fake_outputs: list[list[Tensor]]) -> Tensor:
    """The generator's hinge loss, ``-mean_s mean D_s(fake)`` (0-d; lower = more "real")."""
    return -torch.stack([fake[-1].mean() for fake in fake_outputs]).mean()


def feature_matching_loss(fake_outputs: list[list[Tensor]], real_outputs: list[list[Tensor]]) -> Tensor:
    """pix2pixHD's feature matching: L1 between the discriminator's intermediate features (all but
    the logits) of generated and true images, mean over layers and scales (0-d). The real side
    is a target: pass it computed under ``torch.no_grad()`` or detached."""
    terms = [
        (f - r.detach()).abs().mean()
        for fake, real in zip(fake_outputs, real_outputs, strict=True)
        for f, r in zip(fake[:-1], real[:-1], strict=True)
    ]
    return torch.stack(terms).mean()
