"""What the feature metrics (:mod:`.fvd`, :mod:`.fid`, :mod:`.lpips`) share, with network weights
from LOCAL files only.

Nothing here downloads anything. Each metric needs a file you supply; without it the loader
raises :class:`FeatureWeightsMissing` naming the argument and the file to pass, and
:func:`available_feature_metrics` tells you beforehand which metrics you can compute.

FVD and FID are Frechet distances between Gaussians fitted to features of a real and a generated
SET: :func:`extract_features` runs any feature extractor (a callable mapping a batch to (n, D)
features) over a set, :func:`gaussian_stats` fits the Gaussian, :func:`frechet_distance` compares
two. Every score comes back with the protocol that produced it (``{"score": ..., "protocol":
...}``): feature metrics are only comparable between numbers computed with the same network, the
same preprocessing and, for FVD / FID, the same number of samples.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

__all__ = [
    "available_feature_metrics",
    "extract_features",
    "FeatureExtractor",
    "FeatureWeightsMissing",
    "frechet_distance",
    "gaussian_stats",
]

#: A feature extractor: maps one batch (n, ...) to features (n, D).
#: :func:`seg2vid.evaluation.fvd.fvd` feeds it float videos (n, T, 3, H, W) in [0, 1],
#: :func:`seg2vid.evaluation.fid.fid` float images (n, 3, H, W) in [0, 1]. An optional
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
