"""FVD, the Frechet Video Distance, on features of the Kinetics-400 I3D network from a LOCAL
TorchScript file (:func:`load_fvd_extractor`; nothing is downloaded).

:func:`fvd` takes any feature extractor of clips (see :mod:`seg2vid.evaluation.features`);
the standard one is :class:`I3DFeatures` with the protocol :data:`I3D_PROTOCOL`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seg2vid.evaluation.features import (
    FeatureExtractor,
    FeatureWeightsMissing,
    _check_file,
    _set_distance,
)

__all__ = [
    "I3D_PROTOCOL",
    "fvd",
    "I3DConfig",
    "I3DFeatures",
    "load_fvd_extractor",
]

def _check_videos(videos: Tensor | Iterable[Tensor]) -> Tensor | Iterable[Tensor]:
    def check(batch: Tensor) -> Tensor:
        if batch.dim() != 5 or batch.shape[2] != 3:
            raise ValueError(f"videos must be (N, T, 3, H, W) float in [0, 1], got {tuple(batch.shape)}")
        return batch

    return check(videos) if isinstance(videos, Tensor) else (check(batch) for batch in videos)


def fvd(
    real_videos: Tensor | Iterable[Tensor],
    fake_videos: Tensor | Iterable[Tensor],
    extractor: FeatureExtractor,
    batch_size: int = 8,
    device: torch.device | str | None = None,
) -> dict:
    """Frechet Video Distance between a set of real and a set of generated clips.

    Args:
        real_videos, fake_videos: (N, T, 3, H, W) float in [0, 1] (or iterables of such batches),
            N >= 2 each; use the same T, frame rate and resolution for both.
        extractor: clips (n, T, 3, H, W) -> (n, D) features, e.g. :func:`load_fvd_extractor`.
        batch_size: clips per extractor call. device: see
        :func:`seg2vid.evaluation.features.extract_features`.
    Returns:
        ``{"score": float, "protocol": str, "n_real": int, "n_fake": int, "feature_dim": int}``;
        lower is better, 0 for identical feature statistics.
    """
    real, fake = _check_videos(real_videos), _check_videos(fake_videos)
    return _set_distance(real, fake, extractor, batch_size, device)


# ----------------------------------------------------------------------------- FVD: I3D


#: FVD with the default :class:`I3DConfig`.
I3D_PROTOCOL = (
    "FVD (Unterthiner et al. 2018): Frechet distance between Gaussians (mean, unbiased covariance) "
    "fitted to I3D features of the real and of the generated clips. Detector: the Kinetics-400 I3D "
    "TorchScript file i3d_torchscript.pt (StyleGAN-V's port of the TF-Hub I3D used by the reference "
    "FVD code), called as net(x, rescale=False, resize=False, return_features=True) on "
    "x = (N, 3, T, 224, 224) in [-1, 1] and giving its raw pre-softmax output as features. "
    "Preprocessing: every frame resized to 224 x 224 (bilinear, align_corners=False, the whole frame, "
    "aspect ratio not kept, like the reference code), values mapped from [0, 1] to [-1, 1]; clips "
    "need at least 10 frames. FVD depends on clip length, frame rate, resolution and the number of "
    "clips: compare only numbers computed with the same settings."
)


@dataclass(frozen=True)
class I3DConfig:
    """How clips are prepared for the I3D TorchScript detector (defaults: :data:`I3D_PROTOCOL`).

    Attributes:
        size: frames are resized (bilinear) to ``size x size``; the detector was trained at 224.
        value_range: [0, 1] pixels are mapped linearly onto this range; the detector expects
            [-1, 1] when called with ``rescale=False`` (with ``rescale=True`` it is reported to take
            [0, 255] and map it to [-1, 1] itself; then use ``value_range=(0.0, 255.0)``).
        min_frames: shorter clips are refused. I3D downsamples time 8-fold before a final temporal
            pooling of 2, so clips of a few frames fail inside the network; users of the
            TorchScript file report about 10 frames as the minimum, and the usual FVD protocols
            use 16. Lower it at your own risk.
        call_kwargs: keyword arguments of every detector call, as (name, value) pairs.
            ``resize=False`` because the resize is done here, explicitly; ``return_features=True``
            for the features instead of class probabilities.
    """

    size: int = 224
    value_range: tuple[float, float] = (-1.0, 1.0)
    min_frames: int = 10
    call_kwargs: tuple[tuple[str, object], ...] = (
        ("rescale", False),
        ("resize", False),
        ("return_features", True),
    )


class I3DFeatures(nn.Module):
    """Clip features from an I3D-like TorchScript detector, with explicit preprocessing.

    Args:
        net: the detector (e.g. ``torch.jit.load("i3d_torchscript.pt")``), called as
            ``net(x, **config.call_kwargs)`` on x (n, 3, T, size, size).
        config: the preprocessing, see :class:`I3DConfig`.
    Shapes:
        ``forward(videos)``: (n, T, 3, H, W) float in [0, 1] -> (n, D) features.
    """

    def __init__(self, net: nn.Module, config: I3DConfig = I3DConfig()):
        super().__init__()
        self.net = net.eval()
        self.config = config

    @property
    def protocol(self) -> str:
        """:data:`I3D_PROTOCOL`, with the changes spelled out when the config is not the default."""
        if self.config == I3DConfig():
            return I3D_PROTOCOL
        return f"{I3D_PROTOCOL} MODIFIED preprocessing (not the standard protocol): {self.config}"

    def train(self, mode: bool = True) -> I3DFeatures:
        """The detector stays in eval mode whatever the caller asks (it is a fixed measuring tool)."""
        return super().train(False)

    def preprocess(self, videos: Tensor) -> Tensor:
        """(n, T, 3, H, W) in [0, 1] -> (n, 3, T, size, size) in ``config.value_range``."""
        if videos.dim() != 5 or videos.shape[2] != 3:
            raise ValueError(f"videos must be (n, T, 3, H, W) float in [0, 1], got {tuple(videos.shape)}")
        n, t = videos.shape[:2]
        if t < self.config.min_frames:
            raise ValueError(
                f"I3D needs clips of at least {self.config.min_frames} frames, got T = {t} "
                "(set I3DConfig.min_frames to change the limit)"
            )
        frames = videos.flatten(0, 1)
        size = self.config.size
        if frames.shape[-2:] != (size, size):
            frames = F.interpolate(frames, size=(size, size), mode="bilinear", align_corners=False)
        low, high = self.config.value_range
        frames = low + (high - low) * frames
        return frames.view(n, t, 3, size, size).permute(0, 2, 1, 3, 4).contiguous()

    def forward(self, videos: Tensor) -> Tensor:
        out = self.net(self.preprocess(videos), **dict(self.config.call_kwargs))
        return out.reshape(out.shape[0], -1)


def load_fvd_extractor(
    path: str | Path | None, config: I3DConfig = I3DConfig(), device: torch.device | str = "cpu"
) -> I3DFeatures:
    """The FVD feature extractor from a LOCAL I3D TorchScript file.

    Trusted files only: ``torch.jit.load`` runs code stored in the file (unlike the
    ``weights_only=True`` loading of every other weight file), so load only an I3D file from a
    source you trust.

    Args:
        path: the Kinetics-400 I3D TorchScript file (``i3d_torchscript.pt``), or any TorchScript
            module taking (n, 3, T, H, W) and the keywords of ``config.call_kwargs``.
        config: the preprocessing (default: :data:`I3D_PROTOCOL`).
        device: where the detector runs.
    Raises:
        FeatureWeightsMissing: ``path`` is None.
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a TorchScript archive.
    """
    if path is None:
        raise FeatureWeightsMissing(
            "FVD is unavailable: pass the path of a local Kinetics-400 I3D TorchScript file "
            "(i3d_torchscript.pt) as load_fvd_extractor(path=...); nothing is downloaded"
        )
    path = _check_file(path, "I3D TorchScript")
    try:
        with warnings.catch_warnings():
            # torch.jit is deprecated, but the detector is only distributed as TorchScript.
            warnings.simplefilter("ignore", FutureWarning)
            net = torch.jit.load(str(path), map_location=device)
    except RuntimeError as err:
        raise ValueError(f"{path} is not a TorchScript file: {err}") from None
    return I3DFeatures(net, config).to(device)
