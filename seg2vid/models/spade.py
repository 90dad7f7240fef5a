"""Stage 1 of Seg2Vid: label map -> first frame, with SPADE normalisation (Park et al., CVPR 2019).

The authors used an external pix2pixHD generator for this stage; this module is the project's
own small replacement, built on spatially-adaptive normalisation:

* :class:`SPADE` normalises a feature map with NO learned affine parameters (instance or batch
  statistics), then modulates it per pixel, ``x_norm * (1 + gamma) + beta``, where ``gamma`` and
  ``beta`` (B, C, H, W) are predicted from the one-hot label map, resized to the feature map with
  nearest-neighbour interpolation, by a small conv net (3x3 conv + ReLU, then one 3x3 conv per
  output). A normalisation layer with learned per-channel (gamma, beta) would wash the label
  information out of uniform regions; predicting them per pixel puts it back in every layer.
* :class:`SpadeResBlock`: two (SPADE -> LeakyReLU -> 3x3 conv) units with a residual connection,
  which is learned (SPADE -> 1x1 conv) when the channel count changes.
* :class:`SpadeGenerator`: the one-hot map, shrunk to 1 / 2^n of the image, goes through a 3x3
  conv, then n + 1 residual blocks with a 2x nearest upsampling between them, a 3x3 conv to RGB
  and a sigmoid: an image (B, 3, H, W) in [0, 1]. An optional noise vector, tiled over the
  coarsest grid, can be concatenated to the label map (``noise_dim > 0``). H and W must be
  multiples of 2^n (n = ``len(widths) - 1``), and at least 2^(n+1); nothing else ties the
  weights to one image size.
* :class:`PatchDiscriminator` / :class:`MultiScaleDiscriminator`: pix2pixHD-style patch
  discriminators that see the image concatenated with the one-hot map, at full and half
  resolution (hinge loss); their intermediate features feed the feature-matching loss.

The generator implements :class:`seg2vid.models.stage1.FirstFrameGenerator`
(``generate(labels_onehot, generator=None)``), so stage 2 can take a first frame from it, from a
stronger generator, or from a real photo (:class:`seg2vid.models.stage1.ImageFirstFrame`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.nn.utils.parametrizations import spectral_norm

from seg2vid.config_base import FrozenConfig
from seg2vid.data.labels import CITYSCAPES, LabelTable

__all__ = [
    "SPADE",
    "SPADE_PRESETS",
    "MultiScaleDiscriminator",
    "PatchDiscriminator",
    "SpadeConfig",
    "SpadeGenerator",
    "SpadeResBlock",
]

ParamFreeNorm = Literal["instance", "batch"]


def _param_free_norm(kind: ParamFreeNorm, channels: int) -> nn.Module:
    # affine=False: the per-pixel gamma / beta of SPADE replace the usual per-channel ones.
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=False)
    raise ValueError(f"unknown parameter-free normalisation {kind!r}; choose 'instance' or 'batch'")


class SPADE(nn.Module):
    """Spatially-adaptive normalisation: ``norm(x) * (1 + gamma(labels)) + beta(labels)``.

    Args:
        channels: C, channels of the feature map to normalise.
        label_channels: L, channels of the one-hot label map.
        hidden: channels of the shared conv that reads the label map (Park et al.: 128).
        norm: the parameter-free normalisation, ``"instance"`` (statistics per sample and
            channel, over H and W) or ``"batch"`` (over the batch too; Park et al. used
            synchronised batch norm with large batches).
        eps: added to the variance of the normalisation.

    Shapes:
        ``forward(x, labels_onehot)``: x (B, C, H, W); labels_onehot (B, L, H', W') at any size
        (resized to H x W with nearest-neighbour interpolation, so it stays one-hot) ->
        (B, C, H, W).

    Attributes:
        shared: ``Conv2d(L, hidden, 3) -> ReLU``, the label embedding shared by gamma and beta.
        gamma, beta: ``Conv2d(hidden, C, 3)`` each. Both start at zero weights and biases, so a
            fresh block is a plain normalisation (``1 + gamma = 1``, ``beta = 0``).
    """

    def __init__(
        self,
        channels: int,
        label_channels: int,
        hidden: int = 128,
        norm: ParamFreeNorm = "instance",
        eps: float = 1e-5,
    ):
        super().__init__()
        self.eps = eps
        self.norm = _param_free_norm(norm, channels)
        self.norm.eps = eps
        self.shared = nn.Sequential(nn.Conv2d(label_channels, hidden, 3, padding=1), nn.ReLU())
        self.gamma = nn.Conv2d(hidden, channels, 3, padding=1)
        self.beta = nn.Conv2d(hidden, channels, 3, padding=1)
        for conv in (self.gamma, self.beta):
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    def forward(self, x: Tensor, labels_onehot: Tensor) -> Tensor:
        labels = F.interpolate(labels_onehot.to(x.dtype), size=x.shape[-2:], mode="nearest")
        embedding = self.shared(labels)
        return self.norm(x) * (1 + self.gamma(embedding)) + self.beta(embedding)


class SpadeResBlock(nn.Module):
    """Residual block of two ``SPADE -> LeakyReLU(0.2) -> 3x3 conv`` units (Park et al., Fig. 4).

    Args:
        c_in, c_out: input and output channels; when they differ the shortcut is
            ``SPADE -> 1x1 conv`` (learned), otherwise the identity.
        label_channels: L, channels of the one-hot label map.
        hidden: channels of each SPADE's shared label conv.
        norm: the SPADE layers' parameter-free normalisation.

    Shapes:
        ``forward(x, labels_onehot)``: (B, c_in, H, W), (B, L, H', W') -> (B, c_out, H, W).
    """

    def __init__(self, c_in: int, c_out: int, label_channels: int, hidden: int, norm: ParamFreeNorm):
        super().__init__()
        middle = min(c_in, c_out)
        self.norm_0 = SPADE(c_in, label_channels, hidden, norm)
        self.conv_0 = nn.Conv2d(c_in, middle, 3, padding=1)
        self.norm_1 = SPADE(middle, label_channels, hidden, norm)
        self.conv_1 = nn.Conv2d(middle, c_out, 3, padding=1)
        self.learned_shortcut = c_in != c_out
        if self.learned_shortcut:
            self.norm_s = SPADE(c_in, label_channels, hidden, norm)
            self.conv_s = nn.Conv2d(c_in, c_out, 1, bias=False)

    def forward(self, x: Tensor, labels_onehot: Tensor) -> Tensor:
        shortcut = self.conv_s(self.norm_s(x, labels_onehot)) if self.learned_shortcut else x
        h = self.conv_0(F.leaky_relu(self.norm_0(x, labels_onehot), 0.2))
        h = self.conv_1(F.leaky_relu(self.norm_1(h, labels_onehot), 0.2))
        return shortcut + h


@dataclass(frozen=True)
class SpadeConfig(FrozenConfig):
    """Everything that defines a stage-1 generator and its discriminator (frozen, plain values,
    so it can be stored in a checkpoint and compared field by field).

    Args:
        label_channels: L, channels of the one-hot label map (Cityscapes: 19 classes + void).
        widths: channels of the residual blocks, coarse to fine. There are ``len(widths)``
            blocks and ``len(widths) - 1`` 2x upsamplings, so the generator starts at
            1 / 2^(len(widths) - 1) of the image size, and H, W must be multiples of that factor.
        spade_hidden: channels of every SPADE's shared label conv.
        noise_dim: size of a noise vector tiled over the coarsest grid and read with the label
            map; 0 = deterministic generator. (With an L1 term the generator learns to ignore
            such noise, as pix2pixHD reported, so the presets leave it off.)
        norm: the parameter-free normalisation inside SPADE, "instance" or "batch".
        disc_widths: channels of each patch discriminator's stride-2 convs (4x4 kernels).
        disc_scales: number of discriminators, on the image at full, half, quarter ... size.
    """

    label_channels: int = CITYSCAPES.num_channels
    widths: tuple[int, ...] = (128, 64, 32, 16)
    spade_hidden: int = 32
    noise_dim: int = 0
    norm: ParamFreeNorm = "instance"
    disc_widths: tuple[int, ...] = (32, 64, 128)
    disc_scales: int = 2

    def __post_init__(self) -> None:
        if self.label_channels < 1:
            raise ValueError(f"label_channels must be >= 1, got {self.label_channels}")
        if len(self.widths) < 1 or min(self.widths) < 1:
            raise ValueError(f"widths needs at least one positive entry, got {self.widths}")
        if self.spade_hidden < 1 or self.noise_dim < 0:
            raise ValueError("need spade_hidden >= 1 and noise_dim >= 0")
        if self.norm not in ("instance", "batch"):
            raise ValueError(f"unknown norm {self.norm!r}; choose 'instance' or 'batch'")
        if len(self.disc_widths) < 1 or self.disc_scales < 1:
            raise ValueError("need at least one discriminator width and one scale")

    @property
    def size_multiple(self) -> int:
        """H and W of the images must be multiples of this (2^number of upsamplings), and at least
        twice it."""
        return 2 ** (len(self.widths) - 1)

    @classmethod
    def for_table(cls, table: LabelTable, **kwargs) -> SpadeConfig:
        """A config whose label channels come from ``table`` (one per class + void)."""
        return cls(label_channels=table.num_channels, **kwargs)

    def replace(self, **changes) -> SpadeConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


#: Named configurations. "tiny": trains on one CPU thread in about 15 minutes at 64x64 to a
#: recognisable street (images: multiples of 8). "large": for a GPU at 128x128 or 128x256
#: (multiples of 16), close to Park et al.'s widths at a quarter of their channels.
SPADE_PRESETS: dict[str, SpadeConfig] = {
    "tiny": SpadeConfig(),
    "large": SpadeConfig(
        widths=(512, 512, 256, 128, 64), spade_hidden=128, disc_widths=(64, 128, 256, 512), disc_scales=2,
    ),
}


class SpadeGenerator(nn.Module):
    """Label map -> image. See the module docstring for the architecture.

    Args:
        config: the network's widths and options (default: the ``tiny`` preset).

    Shapes:
        ``forward(labels_onehot, noise=None)``: labels_onehot (B, L, H, W) one-hot float, H and W
        multiples of ``config.size_multiple`` and at least twice it; noise (B, noise_dim) or None
        (drawn from N(0, I) when ``noise_dim > 0``) -> image (B, 3, H, W) in [0, 1].
    """

    def __init__(self, config: SpadeConfig | None = None):
        super().__init__()
        self.config = c = config or SpadeConfig()
        self.stem = nn.Conv2d(c.label_channels + c.noise_dim, c.widths[0], 3, padding=1)
        widths = (c.widths[0], *c.widths)
        self.blocks = nn.ModuleList(
            SpadeResBlock(c_in, c_out, c.label_channels, c.spade_hidden, c.norm)
            for c_in, c_out in zip(widths[:-1], widths[1:], strict=True)
        )
        self.to_rgb = nn.Conv2d(c.widths[-1], 3, 3, padding=1)

    def _check(self, labels_onehot: Tensor) -> None:
        c = self.config
        if labels_onehot.dim() != 4 or labels_onehot.shape[1] != c.label_channels:
            hint = " (pass table.one_hot(label_map), not the integer map)" if labels_onehot.dim() == 3 else ""
            raise ValueError(
                f"labels must be one-hot (B, {c.label_channels}, H, W), "
                f"got {tuple(labels_onehot.shape)}{hint}"
            )
        h, w = labels_onehot.shape[-2:]
        m = c.size_multiple
        if h % m or w % m or min(h, w) < 2 * m:
            # the coarsest grid needs 2x2 pixels or more: normalising a single pixel leaves nothing
            raise ValueError(
                f"height and width must be multiples of {m} ({len(c.widths) - 1} upsamplings) and at "
                f"least {2 * m}, got {h}x{w}"
            )

    def forward(self, labels_onehot: Tensor, noise: Tensor | None = None) -> Tensor:
        self._check(labels_onehot)
        c = self.config
        labels_onehot = labels_onehot.float()
        b, _, h, w = labels_onehot.shape
        n_up = len(c.widths) - 1
        x = F.interpolate(labels_onehot, size=(h >> n_up, w >> n_up), mode="nearest")
        if c.noise_dim:
            if noise is None:
                noise = torch.randn(b, c.noise_dim, device=x.device, dtype=x.dtype)
            if noise.shape != (b, c.noise_dim):
                raise ValueError(
                    f"noise must be (B, noise_dim) = {(b, c.noise_dim)}, got {tuple(noise.shape)}"
                )
            x = torch.cat([x, noise[:, :, None, None].expand(-1, -1, *x.shape[-2:])], dim=1)
        elif noise is not None:
            raise ValueError("this generator takes no noise (noise_dim = 0)")
        x = self.stem(x)
        for i, block in enumerate(self.blocks):
            if i:  # block 0 runs at the coarsest size, every later block at twice the size before
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = block(x, labels_onehot)
        return torch.sigmoid(self.to_rgb(F.leaky_relu(x, 0.2)))

    @torch.no_grad()
    def generate(self, labels_onehot: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """First frames for label maps (the :class:`~seg2vid.models.stage1.FirstFrameGenerator`
        interface), in the model's current mode (call ``.eval()`` first for inference).

        Args:
            labels_onehot: (B, L, H, W) one-hot label maps.
            generator: seeds the noise vector when ``noise_dim > 0`` (ignored otherwise).
        Returns:
            (B, 3, H, W) images in [0, 1], on the labels' device.
        """
        noise = None
        if self.config.noise_dim:
            noise = torch.randn(labels_onehot.shape[0], self.config.noise_dim, generator=generator,
                                device=labels_onehot.device)
        return self(labels_onehot, noise)


class PatchDiscriminator(nn.Module):
    """pix2pixHD's "N-layer" patch discriminator, spectrally normalised, conditioned by
    concatenation: its input is the image and the one-hot label map.

    Args:
        in_channels: 3 + L.
        widths: channels of the 4x4 convs; all but the last have stride 2 (each output sees a
            patch of the input, not the whole image).

    Shapes:
        ``forward(x)``: (B, in_channels, H, W) -> a list of ``len(widths) + 1`` feature maps; the
        last is the patch logits (B, 1, h, w), the others feed feature matching.
    """

    def __init__(self, in_channels: int, widths: tuple[int, ...] = (32, 64, 128)):
        super().__init__()
        layers = []
        c_in = in_channels
        for i, c_out in enumerate(widths):
            stride = 2 if i < len(widths) - 1 else 1
            conv = spectral_norm(nn.Conv2d(c_in, c_out, 4, stride=stride, padding=2))
            # no normalisation on the first layer (pix2pixHD); instance norm after the others
            norm = nn.Identity() if i == 0 else nn.InstanceNorm2d(c_out, affine=False)
            layers.append(nn.Sequential(conv, norm, nn.LeakyReLU(0.2)))
            c_in = c_out
        layers.append(nn.Sequential(nn.Conv2d(c_in, 1, 4, padding=2)))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor) -> list[Tensor]:
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return features


class MultiScaleDiscriminator(nn.Module):
    """``config.disc_scales`` patch discriminators on the (image, label map) pair at full, half,
    quarter ... resolution (3x3 average pooling, stride 2, between scales; pix2pixHD).

    Shapes:
        ``forward(images, labels_onehot)``: images (B, 3, H, W) in [0, 1], labels_onehot
        (B, L, H, W) -> one list of feature maps per scale (see :class:`PatchDiscriminator`).
    """

    def __init__(self, config: SpadeConfig | None = None):
        super().__init__()
        c = config or SpadeConfig()
        self.config = c
        self.scales = nn.ModuleList(
            PatchDiscriminator(3 + c.label_channels, c.disc_widths) for _ in range(c.disc_scales)
        )

    def forward(self, images: Tensor, labels_onehot: Tensor) -> list[list[Tensor]]:
        if images.shape[0] != labels_onehot.shape[0] or images.shape[-2:] != labels_onehot.shape[-2:]:
            raise ValueError(
                f"images {tuple(images.shape)} and labels {tuple(labels_onehot.shape)} must share B, H and W"
            )
        # images to [-1, 1] like the label channels' scale; the discriminator never sees raw [0, 1]
        x = torch.cat([images * 2 - 1, labels_onehot.to(images.dtype)], dim=1)
        outputs = []
        for i, discriminator in enumerate(self.scales):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outputs.append(discriminator(x))
        return outputs
