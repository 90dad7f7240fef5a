"""FID, the Frechet Inception Distance, on torchvision's Inception-v3 from a LOCAL state-dict file
(:func:`load_fid_extractor`; nothing is downloaded).

:func:`fid` takes any feature extractor of images (see :mod:`seg2vid.evaluation.features`);
the standard one is :class:`InceptionFeatures` with the protocol :data:`INCEPTION_PROTOCOL`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from seg2vid.evaluation.features import (
    FeatureExtractor,
    FeatureWeightsMissing,
    _check_file,
    _key_error,
    _load_state_dict,
    _set_distance,
)

__all__ = [
    "INCEPTION_PROTOCOL",
    "fid",
    "InceptionFeatures",
    "load_fid_extractor",
]

def _frames_of(images: Tensor | Iterable[Tensor]) -> Tensor | Iterable[Tensor]:
    def frames(batch: Tensor) -> Tensor:
        if batch.dim() == 5 and batch.shape[2] == 3:
            return batch.flatten(0, 1)
        if batch.dim() == 4 and batch.shape[1] == 3:
            return batch
        raise ValueError(
            "images must be (N, 3, H, W) or videos (N, T, 3, H, W), float in [0, 1]; got "
            f"{tuple(batch.shape)}"
        )

    return frames(images) if isinstance(images, Tensor) else (frames(batch) for batch in images)


def fid(
    real_images: Tensor | Iterable[Tensor],
    fake_images: Tensor | Iterable[Tensor],
    extractor: FeatureExtractor,
    batch_size: int = 32,
    device: torch.device | str | None = None,
) -> dict:
    """Frechet Inception Distance between a set of real and a set of generated images.

    Args:
        real_images, fake_images: (N, 3, H, W) images or (N, T, 3, H, W) videos, whose N T frames
            are then pooled as independent images; float in [0, 1] (or iterables of batches).
        extractor: images (n, 3, H, W) -> (n, D) features, e.g. :func:`load_fid_extractor`.
        batch_size: images per extractor call. device: see
        :func:`seg2vid.evaluation.features.extract_features`.
    Returns:
        ``{"score": float, "protocol": str, "n_real": int, "n_fake": int, "feature_dim": int}``
        (n counts images, i.e. frames); lower is better.
    """
    return _set_distance(_frames_of(real_images), _frames_of(fake_images), extractor, batch_size, device)


# ----------------------------------------------------------------------------- FID: Inception-v3

#: FID with :class:`InceptionFeatures`.
INCEPTION_PROTOCOL = (
    "FID (Heusel et al. 2017) on frames: Frechet distance between Gaussians (mean, unbiased "
    "covariance) fitted to Inception-v3 features of the real and of the generated images (video "
    "frames pooled as independent images). Network: torchvision's Inception-v3 architecture "
    "(torchvision.models.inception_v3, transform_input=True as for torchvision's ImageNet weights) "
    "loaded from a local state-dict file, eval mode; features: the 2048-d global-average-pool "
    "output (fc removed). Preprocessing: each image resized to 299 x 299 (bilinear, "
    "align_corners=False), then normalised with the ImageNet mean/std (which transform_input turns "
    "into 2x - 1). This is torchvision's Inception, NOT the TF-Inception (pt_inception-2015-12-05) "
    "of the reference FID code: values are NOT comparable with the FIDs published in papers; "
    "compare only numbers from this same protocol and the same numbers of images."
)

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class InceptionFeatures(nn.Module):
    """2048-d pool features of torchvision's Inception-v3 (see :data:`INCEPTION_PROTOCOL`).

    Args:
        net: a ``torchvision.models.Inception3`` with ``transform_input=True`` and loaded
            weights; its ``fc`` is replaced by the identity.
        size: images are resized to ``size x size`` (bilinear); 299 is the network's size.
    Shapes:
        ``forward(images)``: (n, 3, H, W) float in [0, 1] -> (n, 2048).
    """

    def __init__(self, net: torchvision.models.Inception3, size: int = 299):
        super().__init__()
        if not net.transform_input:
            raise ValueError("the Inception-v3 needs transform_input=True (torchvision's ImageNet weights)")
        net.fc = nn.Identity()
        self.net = net.requires_grad_(False).eval()
        self.size = size
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def protocol(self) -> str:
        """:data:`INCEPTION_PROTOCOL`, marked as modified when the input size is not 299."""
        if self.size == 299:
            return INCEPTION_PROTOCOL
        return f"{INCEPTION_PROTOCOL} MODIFIED (not the standard protocol): images resized to {self.size}"

    def train(self, mode: bool = True) -> InceptionFeatures:
        """The network stays in eval mode (batch norm with its stored statistics, no dropout)."""
        return super().train(False)

    def forward(self, images: Tensor) -> Tensor:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (n, 3, H, W) float in [0, 1], got {tuple(images.shape)}")
        if images.shape[-2:] != (self.size, self.size):
            images = F.interpolate(images, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return self.net((images - self.mean) / self.std)


def load_fid_extractor(path: str | Path | None, device: torch.device | str = "cpu") -> InceptionFeatures:
    """The FID feature extractor: torchvision's Inception-v3 from a LOCAL state-dict file.

    Args:
        path: a state dict of ``torchvision.models.inception_v3`` (e.g. torchvision's
            ``inception_v3_google-0cc3c7bd.pth``); the ``AuxLogits.*`` and ``fc.*`` entries are
            optional (neither is used).
        device: where the network runs.
    Raises:
        FeatureWeightsMissing: ``path`` is None.
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not an Inception-v3 state dict (missing / unexpected keys listed,
            or wrong shapes).
    """
    if path is None:
        raise FeatureWeightsMissing(
            "FID is unavailable: pass the path of a local torchvision Inception-v3 state dict "
            "(e.g. inception_v3_google-0cc3c7bd.pth) as load_fid_extractor(path=...); nothing is downloaded"
        )
    path = _check_file(path, "Inception-v3 weights")
    state = _load_state_dict(path, "torchvision Inception-v3")
    has_aux = any(key.startswith("AuxLogits.") for key in state)
    net = torchvision.models.inception_v3(
        weights=None, aux_logits=has_aux, init_weights=False, transform_input=True
    )
    expected = set(net.state_dict())
    # fc (the 1000-way classifier) is dropped; old files may lack the batch-norm step counters.
    missing = [
        k for k in expected - set(state) if not k.startswith("fc.") and not k.endswith("num_batches_tracked")
    ]
    unexpected = [k for k in set(state) - expected]
    if missing or unexpected:
        raise _key_error(path, "torchvision Inception-v3", missing, unexpected)
    try:
        net.load_state_dict(state, strict=False)
    except RuntimeError as err:
        raise ValueError(f"{path} does not match torchvision's Inception-v3: {err}") from None
    return InceptionFeatures(net).to(device)
