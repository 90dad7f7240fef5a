"""Feature metrics -- FVD, FID and LPIPS -- with network weights from LOCAL files only.

Nothing here downloads anything. Each metric needs a file you supply; without it the loader
raises :class:`FeatureWeightsMissing` naming the argument and the file to pass, and
:func:`available_feature_metrics` tells you beforehand which metrics you can compute.

- FVD / FID are Frechet distances between Gaussians fitted to features of a real and a generated
  SET (:func:`gaussian_stats`, :func:`frechet_distance`). :func:`fvd` and :func:`fid` take any
  feature extractor: a callable mapping a batch to (n, D) features. The standard ones are
  :func:`load_fvd_extractor` (the Kinetics-400 I3D TorchScript file) and
  :func:`load_fid_extractor` (torchvision's Inception-v3 from a state-dict file).
- LPIPS compares two frames (:class:`LPIPS`, :func:`load_lpips`, :func:`lpips_distance`).

Every score comes back with the protocol that produced it (``{"score": ..., "protocol": ...}``):
feature metrics are only comparable between numbers computed with the same network, the same
preprocessing and, for FVD / FID, the same number of samples.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

__all__ = [
    "I3D_PROTOCOL",
    "INCEPTION_PROTOCOL",
    "LPIPS_BACKBONES",
    "LPIPS_PROTOCOL",
    "LPIPS_SCALE",
    "LPIPS_SHIFT",
    "FeatureExtractor",
    "FeatureWeightsMissing",
    "I3DConfig",
    "I3DFeatures",
    "InceptionFeatures",
    "LPIPS",
    "available_feature_metrics",
    "extract_features",
    "fid",
    "frechet_distance",
    "fvd",
    "gaussian_stats",
    "load_fid_extractor",
    "load_fvd_extractor",
    "load_lpips",
    "load_lpips_backbone",
    "load_lpips_linear",
    "lpips_distance",
]

#: A feature extractor: maps one batch (n, ...) to features (n, D). :func:`fvd` feeds it float
#: videos (n, T, 3, H, W) in [0, 1], :func:`fid` float images (n, 3, H, W) in [0, 1]. An optional
#: ``protocol`` attribute (str) is reported with the score.
FeatureExtractor = Callable[[Tensor], Tensor]

#: A set of samples: one tensor (N, ...) or an iterable of batches.
Batches = Tensor | Iterable[Tensor]

ArrayLike = Tensor | np.ndarray


class FeatureWeightsMissing(RuntimeError):
    """A feature metric was asked for without the local weights file it needs (nothing is
    downloaded: supply the file named in the message)."""


def _check_file(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {what} file at {path}")
    return path


def _load_state_dict(path: Path, what: str) -> dict[str, Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a {what} state dict (got {type(state).__name__})")
    return state


def _key_error(path: Path, what: str, missing: Sequence[str], unexpected: Sequence[str]) -> ValueError:
    return ValueError(
        f"{path} is not a {what} state dict: missing keys {sorted(missing)[:8]}"
        f"{' ...' if len(missing) > 8 else ''} ({len(missing)}), unexpected keys "
        f"{sorted(unexpected)[:8]}{' ...' if len(unexpected) > 8 else ''} ({len(unexpected)})"
    )


# ----------------------------------------------------------------------------- Frechet distance


def gaussian_stats(features: Tensor | np.ndarray) -> tuple[Tensor, Tensor]:
    """Mean and covariance of a feature set, in float64.

    Args:
        features: (N, D) features of N >= 2 samples.
    Returns:
        ``(mu, sigma)``: (D,) mean and (D, D) unbiased covariance (divides by N - 1, like
        ``numpy.cov`` and the reference FID / FVD code), float64 tensors.
    """
    x = torch.as_tensor(features).detach().to("cpu", torch.float64)
    if x.dim() != 2:
        raise ValueError(f"features must be (N, D), got {tuple(x.shape)}")
    if x.shape[0] < 2:
        raise ValueError(f"a covariance needs at least 2 samples, got {x.shape[0]}")
    mu = x.mean(dim=0)
    centred = x - mu
    return mu, centred.T @ centred / (x.shape[0] - 1)


def _psd_sqrt(matrix: Tensor) -> Tensor:
    """Square root of a symmetric positive semi-definite matrix via its eigendecomposition."""
    values, vectors = torch.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike) -> float:
    """Frechet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2).

    ``|mu1 - mu2|^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^(1/2))``, in float64.

    The trace of the matrix square root is computed as ``sum_i sqrt(lambda_i)`` over the eigenvalues
    of the symmetric matrix ``sigma1^(1/2) sigma2 sigma1^(1/2)`` (same eigenvalues as sigma1 sigma2),
    with symmetric eigendecompositions (``torch.linalg.eigh``). So no imaginary parts arise, and
    singular covariances (fewer samples than feature dimensions, the usual case) need no epsilon
    added to their diagonals, unlike the ``scipy.linalg.sqrtm`` route of the reference code. The
    only correction: eigenvalues below 0, which exact PSD matrices do not have (round-off, about
    1e-16 times the largest), are set to 0, and so is a distance below 0. Where the sqrtm route is
    well defined the two agree to round-off.

    Args:
        mu1, mu2: (D,) means. sigma1, sigma2: (D, D) symmetric PSD covariances.
    Returns:
        The distance (squared feature units) as a Python float; 0 for identical statistics.
    """
    mu1, mu2, sigma1, sigma2 = (
        torch.as_tensor(a).detach().to("cpu", torch.float64) for a in (mu1, mu2, sigma1, sigma2)
    )
    d = mu1.shape[0] if mu1.dim() == 1 else -1
    if mu1.shape != (d,) or mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(
            f"expected means (D,) and covariances (D, D), got {tuple(mu1.shape)}, {tuple(sigma1.shape)}, "
            f"{tuple(mu2.shape)}, {tuple(sigma2.shape)}"
        )
    root1 = _psd_sqrt(sigma1)
    inner = root1 @ sigma2 @ root1
    trace_sqrt = torch.linalg.eigvalsh((inner + inner.T) / 2).clamp(min=0).sqrt().sum()
    distance = (mu1 - mu2).square().sum() + sigma1.trace() + sigma2.trace() - 2 * trace_sqrt
    return max(distance.item(), 0.0)


# ----------------------------------------------------------------------------- set metrics


def _device_of(extractor: FeatureExtractor) -> torch.device | None:
    if not isinstance(extractor, nn.Module):
        return None
    tensor = next(iter((*extractor.parameters(), *extractor.buffers())), None)
    return None if tensor is None else tensor.device


def _batches(inputs: Tensor | Iterable[Tensor], batch_size: int) -> Iterable[Tensor]:
    chunks = [inputs] if isinstance(inputs, Tensor) else inputs
    for chunk in chunks:
        for start in range(0, len(chunk), batch_size):
            yield chunk[start : start + batch_size]


def extract_features(
    inputs: Tensor | Iterable[Tensor],
    extractor: FeatureExtractor,
    batch_size: int = 16,
    device: torch.device | str | None = None,
) -> Tensor:
    """Features of a whole set, batch by batch, without gradients.

    Args:
        inputs: a tensor (N, ...) or an iterable of such batches (e.g. a generator over a dataset),
            float.
        extractor: callable (n, ...) -> (n, D).
        batch_size: the most samples given to the extractor at once.
        device: where the batches go; default: the extractor's parameters' device (else unchanged).
    Returns:
        (N, D) float64 features on the CPU.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = device if device is not None else _device_of(extractor)
    features = []
    with torch.no_grad():
        for batch in _batches(inputs, batch_size):
            if not batch.is_floating_point():
                raise TypeError(f"inputs must be float in [0, 1], got {batch.dtype}")
            batch = batch.to(device=device, dtype=torch.float32)
            out = extractor(batch)
            if not isinstance(out, Tensor) or out.dim() != 2 or out.shape[0] != batch.shape[0]:
                shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
                raise ValueError(
                    f"the extractor must return (n, D) features for a batch of n = {len(batch)}, got {shape}"
                )
            features.append(out.detach().to("cpu", torch.float64))
    if not features:
        raise ValueError("no inputs: the set is empty")
    return torch.cat(features)


def _protocol_of(extractor: FeatureExtractor) -> str:
    protocol = getattr(extractor, "protocol", None)
    if isinstance(protocol, str):
        return protocol
    return (
        f"custom extractor {type(extractor).__name__}: not a standard protocol; the score compares "
        "only with scores from this same extractor, preprocessing and set sizes"
    )


def _set_distance(real: Batches, fake: Batches, extractor: FeatureExtractor, batch_size: int, device) -> dict:
    real_features = extract_features(real, extractor, batch_size, device)
    fake_features = extract_features(fake, extractor, batch_size, device)
    if real_features.shape[1] != fake_features.shape[1]:
        widths = real_features.shape[1], fake_features.shape[1]
        raise ValueError(f"feature widths differ: real {widths[0]}, fake {widths[1]}")
    score = frechet_distance(*gaussian_stats(real_features), *gaussian_stats(fake_features))
    return {
        "score": score,
        "protocol": _protocol_of(extractor),
        "n_real": real_features.shape[0],
        "n_fake": fake_features.shape[0],
        "feature_dim": real_features.shape[1],
    }


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
        batch_size: clips per extractor call. device: see :func:`extract_features`.
    Returns:
        ``{"score": float, "protocol": str, "n_real": int, "n_fake": int, "feature_dim": int}``;
        lower is better, 0 for identical feature statistics.
    """
    real, fake = _check_videos(real_videos), _check_videos(fake_videos)
    return _set_distance(real, fake, extractor, batch_size, device)


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
        batch_size: images per extractor call. device: see :func:`extract_features`.
    Returns:
        ``{"score": float, "protocol": str, "n_real": int, "n_fake": int, "feature_dim": int}``
        (n counts images, i.e. frames); lower is better.
    """
    return _set_distance(_frames_of(real_images), _frames_of(fake_images), extractor, batch_size, device)


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


# ----------------------------------------------------------------------------- LPIPS

#: Backbones: the cut points in ``torchvision.models.<net>().features`` after each tapped ReLU
#: (alex: relu1..relu5; vgg16: relu1_2, relu2_2, relu3_3, relu4_3, relu5_3), and their channels.
LPIPS_BACKBONES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "alex": ((2, 5, 8, 10, 12), (64, 192, 384, 256, 256)),
    "vgg16": ((4, 9, 16, 23, 30), (64, 128, 256, 512, 512)),
}

#: LPIPS v0.1 input layer: images in [-1, 1] become ``(x - shift) / scale``. (shift = 2 mean - 1 and
#: scale = 2 std of ImageNet, so on [0, 1] images this is the usual ImageNet normalisation.)
LPIPS_SHIFT: tuple[float, float, float] = (-0.030, -0.088, -0.188)
LPIPS_SCALE: tuple[float, float, float] = (0.458, 0.448, 0.450)

#: LPIPS; ``{backbone}`` is filled in by :attr:`LPIPS.protocol`.
LPIPS_PROTOCOL = (
    "LPIPS v0.1 (Zhang et al. 2018), one distance per frame: inputs in [0, 1] mapped to [-1, 1], "
    "then the LPIPS scaling layer (shift (-0.030, -0.088, -0.188), scale (0.458, 0.448, 0.450)); "
    "backbone {backbone}; each tapped layer's features divided by their channel-wise L2 norm "
    "(+1e-10), squared difference, weighted by the non-negative learned 1x1 linear layers (the "
    "LPIPS project's lin0.. weights from a local file), averaged over space, summed over layers. "
    "Frames compared at their own resolution (no resize); 0 for identical frames, lower = more "
    "similar."
)

_NORM_EPS = 1e-10


class LPIPS(nn.Module):
    """The LPIPS distance between two images, frame by frame.

    Args:
        features: a backbone as a sequence of layers (e.g. ``torchvision.models.alexnet().features``
            with its weights), cut after the last tap.
        cuts: the tap positions: layer ``k`` is read after ``features[:cuts[k]]``.
        linear: one non-negative weight per tap, (1, C_k, 1, 1) with C_k the tap's channels.
        backbone: a description for :attr:`protocol` (e.g. "torchvision alexnet ...").
    Shapes:
        ``forward(x, y)``: (B, T, 3, H, W) videos -> (B, T), or (B, 3, H, W) images -> (B,);
        float in [0, 1]. Differentiable w.r.t. both inputs; the weights are frozen.
    """

    def __init__(
        self, features: nn.Sequential, cuts: Sequence[int], linear: Sequence[Tensor], backbone: str = "custom"
    ):
        super().__init__()
        cuts = tuple(int(c) for c in cuts)
        if not cuts or len(cuts) != len(linear):
            raise ValueError(f"need one linear weight per tap: {len(cuts)} cuts, {len(linear)} weights")
        if any(b <= a for a, b in zip((0, *cuts), cuts, strict=False)) or cuts[-1] > len(features):
            raise ValueError(f"cuts {cuts} must increase from >= 1 to at most len(features) {len(features)}")
        for k, weight in enumerate(linear):
            if weight.dim() != 4 or weight.shape[0] != 1 or weight.shape[2:] != (1, 1):
                raise ValueError(f"linear weight {k} must be (1, C, 1, 1), got {tuple(weight.shape)}")
            if (weight < 0).any():
                raise ValueError(f"linear weight {k} has negative entries: LPIPS weights are non-negative")
        self.features = features[: cuts[-1]].requires_grad_(False).eval()
        self.cuts = cuts
        self.backbone = backbone
        for k, weight in enumerate(linear):
            self.register_buffer(f"lin{k}", weight.detach().float().clone())
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1), persistent=False)

    @property
    def protocol(self) -> str:
        return LPIPS_PROTOCOL.format(backbone=self.backbone)

    def train(self, mode: bool = True) -> LPIPS:
        """The network stays in eval mode whatever the caller asks (it is frozen)."""
        return super().train(False)

    def _taps(self, images: Tensor) -> list[Tensor]:
        x = (2 * images - 1 - self.shift) / self.scale
        taps, start = [], 0
        for cut in self.cuts:
            x = self.features[start:cut](x)
            taps.append(x)
            start = cut
        return taps

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        if x.shape != y.shape or x.dim() not in (4, 5) or x.shape[-3] != 3:
            raise ValueError(
                f"x {tuple(x.shape)} and y {tuple(y.shape)} must both be (B, T, 3, H, W) or (B, 3, H, W)"
            )
        lead = x.shape[:-3]
        taps_x = self._taps(x.reshape(-1, *x.shape[-3:]))
        taps_y = self._taps(y.reshape(-1, *y.shape[-3:]))
        total = 0
        for k, (a, b) in enumerate(zip(taps_x, taps_y, strict=True)):
            weight = getattr(self, f"lin{k}")
            if a.shape[1] != weight.shape[1]:
                raise ValueError(
                    f"tap {k} has {a.shape[1]} channels but linear weight {k} expects {weight.shape[1]}"
                )
            a = a / (a.square().sum(dim=1, keepdim=True).sqrt() + _NORM_EPS)
            b = b / (b.square().sum(dim=1, keepdim=True).sqrt() + _NORM_EPS)
            total = total + F.conv2d((a - b).square(), weight).mean(dim=(1, 2, 3))
        return total.reshape(lead)


def load_lpips_linear(path: str | Path, channels: Sequence[int] | None = None) -> list[Tensor]:
    """The learned LPIPS layer weights from a LOCAL file in the LPIPS project's format.

    Args:
        path: a state dict with keys ``lin{k}.model.1.weight`` of shape (1, C_k, 1, 1), k = 0, 1, ...
            (the project's ``weights/v0.1/alex.pth`` / ``vgg.pth``; ``model.1`` because its layers
            are Dropout then Conv2d; ``lin{k}.model.0.weight``, saved without the dropout, is
            accepted too). Backbone keys (``net.*``) and the scaling layer's are ignored.
        channels: the expected C_k per layer (e.g. ``LPIPS_BACKBONES["alex"][1]``); None = as found.
    Returns:
        The weights as a list of (1, C_k, 1, 1) float tensors, in layer order.
    Raises:
        FileNotFoundError: no file at ``path``. ValueError: missing / unexpected keys (listed) or
        wrong shapes.
    """
    path = _check_file(path, "LPIPS linear-layer weights")
    state = _load_state_dict(path, "LPIPS linear-layer")
    lin_keys = {k: v for k, v in state.items() if not k.startswith(("net.", "scaling_layer."))}
    count = len(channels) if channels is not None else sum(1 for k in lin_keys if k.startswith("lin"))
    weights, expected = [], set()
    for k in range(count):
        names = (f"lin{k}.model.1.weight", f"lin{k}.model.0.weight")
        key = next((name for name in names if name in lin_keys), None)
        expected.add(key if key is not None else f"lin{k}.model.1.weight")
        if key is not None:
            weights.append(lin_keys[key])
    missing = [k for k in expected if k not in lin_keys]
    unexpected = [k for k in lin_keys if k not in expected]
    if missing or unexpected or not weights:
        raise _key_error(path, "LPIPS linear-layer", missing, unexpected)
    for k, weight in enumerate(weights):
        want = (1, channels[k], 1, 1) if channels is not None else (1, weight.shape[1], 1, 1)
        if tuple(weight.shape) != want:
            raise ValueError(f"{path}: lin{k} has shape {tuple(weight.shape)}, expected {want}")
    return [w.float() for w in weights]


def load_lpips_backbone(path: str | Path, net: str = "alex") -> nn.Sequential:
    """An LPIPS backbone's ``features`` from a LOCAL torchvision state-dict file.

    Args:
        path: a state dict of ``torchvision.models.alexnet`` / ``vgg16`` (keys ``features.N.*``,
            e.g. ``alexnet-owt-7be5be79.pth`` / ``vgg16-397923af.pth``; the classifier is ignored) or
            of its ``features`` (keys ``N.*``).
        net: ``"alex"`` or ``"vgg16"`` (:data:`LPIPS_BACKBONES`).
    Returns:
        The ``features`` layers, cut after the last tap, with the file's weights.
    """
    if net not in LPIPS_BACKBONES:
        raise ValueError(f"unknown LPIPS backbone {net!r}; choose from {list(LPIPS_BACKBONES)}")
    path = _check_file(path, f"{net} backbone weights")
    state = _load_state_dict(path, f"torchvision {net}")
    if any(k.startswith("features.") for k in state):
        state = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
    last = LPIPS_BACKBONES[net][0][-1]
    build = torchvision.models.alexnet if net == "alex" else torchvision.models.vgg16
    # Built on the meta device: the file's weights replace the random ones at once.
    with torch.device("meta"):
        features = build(weights=None).features[:last]
    expected = set(features.state_dict())
    missing = sorted(expected - set(state))
    # Layers past the last tap are ignored (in both networks only a weightless max pooling is cut).
    def layer(key: str) -> int:
        head = key.split(".")[0]
        return int(head) if head.isdigit() else -1

    unexpected = sorted(k for k in set(state) - expected if layer(k) < last)
    if missing or unexpected:
        raise _key_error(path, f"torchvision {net} features", missing, unexpected)
    try:
        features.load_state_dict({k: state[k] for k in expected}, strict=True, assign=True)
    except RuntimeError as err:
        raise ValueError(f"{path} does not match torchvision's {net}: {err}") from None
    return features


def load_lpips(
    backbone_path: str | Path | None,
    linear_path: str | Path | None,
    net: str = "alex",
    device: torch.device | str = "cpu",
) -> LPIPS:
    """LPIPS from two LOCAL files: torchvision backbone weights and the LPIPS linear layers.

    Args:
        backbone_path: see :func:`load_lpips_backbone`.
        linear_path: the LPIPS project's v0.1 weights for the same backbone (``alex.pth`` /
            ``vgg.pth``), see :func:`load_lpips_linear`.
        net: ``"alex"`` (the LPIPS authors' recommended metric) or ``"vgg16"``.
        device: where the network runs.
    Raises:
        FeatureWeightsMissing: a path is None. FileNotFoundError / ValueError: see the loaders.
    """
    if backbone_path is None or linear_path is None:
        given = {"backbone_path": backbone_path, "linear_path": linear_path}
        which = " and ".join(name for name, value in given.items() if value is None)
        raise FeatureWeightsMissing(
            f"LPIPS is unavailable: pass {which} to load_lpips (backbone_path: torchvision {net} ImageNet "
            f"weights; linear_path: the LPIPS project's v0.1 {'alex' if net == 'alex' else 'vgg'}.pth); "
            "nothing is downloaded"
        )
    if net not in LPIPS_BACKBONES:
        raise ValueError(f"unknown LPIPS backbone {net!r}; choose from {list(LPIPS_BACKBONES)}")
    cuts, channels = LPIPS_BACKBONES[net]
    features = load_lpips_backbone(backbone_path, net)
    linear = load_lpips_linear(linear_path, channels)
    files = f"weights {Path(backbone_path).name}, linear layers {Path(linear_path).name}"
    backbone = f"torchvision {net} ({files})"
    return LPIPS(features, cuts, linear, backbone).to(device)


def lpips_distance(pred: Tensor, true: Tensor, model: LPIPS, batch_size: int = 32) -> dict:
    """Per-frame LPIPS of generated videos against the true ones, batched and without gradients.

    Args:
        pred, true: (B, T, 3, H, W) videos or (B, 3, H, W) images, float in [0, 1].
        model: an :class:`LPIPS` (e.g. from :func:`load_lpips`).
        batch_size: frames per network call.
    Returns:
        ``{"score": (B, T) or (B,) float tensor on the CPU, "protocol": str}``; lower = more similar.
    """
    if pred.shape != true.shape or pred.dim() not in (4, 5):
        raise ValueError(
            f"pred {tuple(pred.shape)} and true {tuple(true.shape)} must both be (B, T, 3, H, W) or "
            "(B, 3, H, W)"
        )
    lead = pred.shape[:-3]
    x, y = pred.reshape(-1, *pred.shape[-3:]), true.reshape(-1, *true.shape[-3:])
    device = _device_of(model)
    scores = []
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            stop = start + batch_size
            a = x[start:stop].to(device, torch.float32)
            b = y[start:stop].to(device, torch.float32)
            scores.append(model(a, b).cpu())
    return {"score": torch.cat(scores).reshape(lead), "protocol": model.protocol}


# ----------------------------------------------------------------------------- availability


def available_feature_metrics(
    i3d_path: str | Path | None = None,
    inception_path: str | Path | None = None,
    lpips_backbone_path: str | Path | None = None,
    lpips_linear_path: str | Path | None = None,
) -> dict[str, str | None]:
    """Which feature metrics the given local files allow (files are checked to exist, not loaded).

    Returns:
        ``{"fvd": ..., "fid": ..., "lpips": ...}``: None where the metric is available, else the
        reason (which argument / file to supply).
    """

    def reason(metric: str, paths: dict[str, str | Path | None], what: str) -> str | None:
        for name, value in paths.items():
            if value is None:
                return f"{metric} is unavailable: pass {name} ({what}); nothing is downloaded"
            if not Path(value).is_file():
                return f"{metric} is unavailable: {name} = {value} is not a file"
        return None

    return {
        "fvd": reason(
            "FVD", {"i3d_path": i3d_path}, "a local Kinetics-400 I3D TorchScript file, i3d_torchscript.pt"
        ),
        "fid": reason(
            "FID", {"inception_path": inception_path}, "a local torchvision Inception-v3 state dict"
        ),
        "lpips": reason(
            "LPIPS",
            {"lpips_backbone_path": lpips_backbone_path, "lpips_linear_path": lpips_linear_path},
            "local torchvision AlexNet / VGG-16 weights and the LPIPS project's v0.1 linear-layer file",
        ),
    }
