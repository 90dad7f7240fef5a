"""Evaluation metrics: per-frame PSNR / SSIM, flow end-point error, binary-mask precision / recall /
IoU, and best-of-N / diversity scores for stochastic models (feature metrics:
:mod:`seg2vid.evaluation.fvd`, :mod:`~seg2vid.evaluation.fid`, :mod:`~seg2vid.evaluation.lpips`).

Flow follows :mod:`seg2vid.flow` (pixels, ``(..., 2, H, W)``). Masks are ``(..., 1, H, W)``
(any shape works for the mask scores) and are read as binary: a pixel is POSITIVE where the mask
is > 0.5. Choose what "positive" means by what you pass: to score an occlusion detector, pass
``1 - visible`` for both prediction and truth, so the rare occluded pixels are the positives
(a visible-pixel IoU is close to 1 for any detector and says little).

Scores pool the pixel counts over everything they are given (micro-averaging): pass a whole
batch or a stack of clips at once, or add up :func:`mask_confusion` counts yourself. The
``frame_*`` variants instead give one score per frame (used by :func:`video_scores`).

The evaluation protocol. Videos are (B, T, C, H, W) and images (B, C, H, W), float in [0, 1], and
every pixel score is PER FRAME: (B, T) for videos, (B,) for images. PSNR is
``10 log10(1 / MSE)`` dB with data range 1, the MSE taken over one frame's C, H, W (in float64); a
frame identical to its target has MSE 0 and PSNR ``+inf`` (returned as is; :func:`summarize`
caps it at :data:`PSNR_CAP_DB`). :func:`psnr` is the package's only PSNR: its options give the
per-clip PSNR (``reduce="clip"``: one MSE over a clip's T frames), a PSNR over masked pixels
(``mask=``) and a cap (``cap_db=``). SSIM follows Wang et al. (2004) and is computed here, one way,
whatever library is installed: a Gaussian window of 11 taps, sigma 1.5 (normalised to sum 1),
k1 0.01, k2 0.03, data range 1, population (not sample) covariances, on each channel; the SSIM map
is kept only where the window lies inside the frame (the 5-pixel border is cropped) and averaged
over those pixels and the channels, all in float64. That is exactly
``skimage.metrics.structural_similarity(x, y, gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=1, channel_axis=0)`` (tested to 1e-4). (Libraries
disagree: torchmetrics 1.0.3 crops the border, 1.4+ averages the whole map incl. the padded
border, which reads higher.) Frames must be at least 11 x 11. Flow EPE is in pixels, masks are
read at 0.5. Stochastic models are scored on N samples per input, reduced by :func:`best_of_n`
(per input, not per frame) or :func:`mean_of_n`, with :func:`diversity` for the spread.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

__all__ = [
    "PSNR_CAP_DB",
    "SSIM_SETTINGS",
    "best_index",
    "best_of_n",
    "diversity",
    "end_point_error",
    "frame_end_point_error",
    "frame_mask_iou",
    "gaussian_window",
    "mask_confusion",
    "mask_iou",
    "mask_precision",
    "mask_recall",
    "mask_scores",
    "mean_of_n",
    "psnr",
    "ssim",
    "summarize",
    "video_scores",
]

#: The one SSIM protocol of the metrics and the evaluation (Wang et al. 2004; data range 1). The
#: training loss's 3x3-window SSIM (:func:`seg2vid.losses.ssim_3x3`) is a different thing.
SSIM_SETTINGS: dict[str, float | int | str] = {
    "window": "gaussian",
    "kernel_size": 11,
    "sigma": 1.5,
    "k1": 0.01,
    "k2": 0.03,
    "data_range": 1.0,
    "covariance": "population",
    "border_crop": 5,
    "accumulation": "float64",
}


#: PSNR of an exact frame is +inf; :func:`summarize` replaces it by this many dB before averaging,
#: so one perfect frame neither makes the mean infinite nor is silently dropped.
PSNR_CAP_DB: float = 100.0


def end_point_error(
    flow_pred: torch.Tensor, flow_true: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean end-point error: the Euclidean distance between flow vectors, in pixels.

    Args:
        flow_pred: (..., 2, H, W) estimated flow in pixels.
        flow_true: (..., 2, H, W) true flow in pixels (same shape).
        mask: (..., 1, H, W) valid pixels (> 0.5), broadcast against the flows; ``None`` = all.
    Returns:
        0-d float tensor: ``mean_p |flow_pred(p) - flow_true(p)|_2`` over the valid pixels, in
        pixels; NaN when no pixel is valid (an average over nothing is undefined).
        Differentiable w.r.t. ``flow_pred`` wherever the two flows differ.
    """
    if flow_pred.shape != flow_true.shape or flow_pred.dim() < 3 or flow_pred.shape[-3] != 2:
        raise ValueError(
            f"flow_pred {tuple(flow_pred.shape)} and flow_true {tuple(flow_true.shape)} must both "
            "be (..., 2, H, W)"
        )
    distance = (flow_pred - flow_true).square().sum(dim=-3, keepdim=True).sqrt()  # (..., 1, H, W)
    if mask is None:
        return distance.mean()
    distance, valid = torch.broadcast_tensors(distance, mask > 0.5)
    return distance[valid].mean()  # mean of an empty tensor is NaN


def mask_confusion(pred: torch.Tensor, true: torch.Tensor) -> dict[str, int]:
    """Pixel counts of a binary prediction against the truth.

    Args:
        pred, true: masks of the same shape (e.g. (..., 1, H, W)); positive where > 0.5.
    Returns:
        ``{"tp": ..., "fp": ..., "fn": ..., "tn": ...}`` as Python ints, pooled over all pixels.
    """
    if pred.shape != true.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and true {tuple(true.shape)} differ in shape")
    p, t = pred > 0.5, true > 0.5
    return {
        "tp": int((p & t).sum()),
        "fp": int((p & ~t).sum()),
        "fn": int((~p & t).sum()),
        "tn": int((~p & ~t).sum()),
    }


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator > 0 else float("nan")


def mask_precision(pred: torch.Tensor, true: torch.Tensor) -> float:
    """TP / (TP + FP): the share of predicted positives that are right; NaN if none predicted."""
    c = mask_confusion(pred, true)
    return _ratio(c["tp"], c["tp"] + c["fp"])


def mask_recall(pred: torch.Tensor, true: torch.Tensor) -> float:
    """TP / (TP + FN): the share of true positives that were found; NaN if there are none."""
    c = mask_confusion(pred, true)
    return _ratio(c["tp"], c["tp"] + c["fn"])


def mask_iou(pred: torch.Tensor, true: torch.Tensor) -> float:
    """TP / (TP + FP + FN): intersection over union of the positive sets; NaN if both are empty."""
    c = mask_confusion(pred, true)
    return _ratio(c["tp"], c["tp"] + c["fp"] + c["fn"])


def mask_scores(pred: torch.Tensor, true: torch.Tensor) -> dict[str, float]:
    """``{"precision", "recall", "iou"}`` of ``pred`` against ``true`` from one confusion count."""
    c = mask_confusion(pred, true)
    return {
        "precision": _ratio(c["tp"], c["tp"] + c["fp"]),
        "recall": _ratio(c["tp"], c["tp"] + c["fn"]),
        "iou": _ratio(c["tp"], c["tp"] + c["fp"] + c["fn"]),
    }


# ----------------------------------------------------------------------------- per-frame variants


def frame_end_point_error(
    flow_pred: torch.Tensor, flow_true: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean end-point error of EACH flow field, in pixels.

    Args:
        flow_pred: (..., 2, H, W) estimated flow in pixels, e.g. (B, T, 2, H, W).
        flow_true: (..., 2, H, W) true flow in pixels (same shape).
        mask: (..., 1, H, W) valid pixels (> 0.5), broadcast against the flows; ``None`` = all.
    Returns:
        (...) float tensor, e.g. (B, T): each field's mean EPE over its valid pixels; NaN for a
        field with no valid pixel. (Averaging these gives each frame the same weight, unlike
        :func:`end_point_error`, which pools all valid pixels.)
    """
    if flow_pred.shape != flow_true.shape or flow_pred.dim() < 3 or flow_pred.shape[-3] != 2:
        raise ValueError(
            f"flow_pred {tuple(flow_pred.shape)} and flow_true {tuple(flow_true.shape)} must both "
            "be (..., 2, H, W)"
        )
    distance = (flow_pred - flow_true).square().sum(dim=-3, keepdim=True).sqrt()  # (..., 1, H, W)
    if mask is None:
        return distance.mean(dim=(-3, -2, -1))
    try:
        distance, valid = torch.broadcast_tensors(distance, (mask > 0.5).to(distance.dtype))
    except RuntimeError:
        raise ValueError(
            f"mask {tuple(mask.shape)} does not broadcast against the flows' (..., 1, H, W) = "
            f"{(*flow_pred.shape[:-3], 1, *flow_pred.shape[-2:])}"
        ) from None
    # 0 / 0 = NaN where a field has no valid pixel: an average over nothing is undefined.
    return (distance * valid).sum(dim=(-3, -2, -1)) / valid.sum(dim=(-3, -2, -1))


def frame_mask_iou(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Intersection over union of EACH mask's positive pixels (> 0.5).

    Args:
        pred, true: (..., 1, H, W) masks of the same shape, e.g. (B, T, 1, H, W).
    Returns:
        (...) float tensor, e.g. (B, T): TP / (TP + FP + FN) per mask; NaN where both are empty.
    """
    if pred.shape != true.shape or pred.dim() < 3:
        raise ValueError(f"pred {tuple(pred.shape)} and true {tuple(true.shape)} must both be (..., 1, H, W)")
    p, t = pred > 0.5, true > 0.5
    intersection = (p & t).sum(dim=(-3, -2, -1))
    union = (p | t).sum(dim=(-3, -2, -1))
    return intersection.double().div(union.double()).float()


# ----------------------------------------------------------------------------- pixel scores


def _frames(pred: torch.Tensor, true: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor, tuple]:
    """Flatten (B, T, C, H, W) or (B, C, H, W) pairs to frames (N, C, H, W) + the leading shape."""
    if pred.shape != true.shape or pred.dim() not in (4, 5):
        raise ValueError(
            f"{name}: pred {tuple(pred.shape)} and true {tuple(true.shape)} must have the same shape, "
            "(B, T, C, H, W) videos or (B, C, H, W) images"
        )
    if not (pred.is_floating_point() and true.is_floating_point()):
        raise TypeError(f"{name}: pred and true must be float in [0, 1], not {pred.dtype}, {true.dtype}")
    lead = tuple(pred.shape[:-3])
    return pred.reshape(-1, *pred.shape[-3:]), true.reshape(-1, *true.shape[-3:]), lead


def psnr(
    pred: torch.Tensor,
    true: torch.Tensor,
    data_range: float = 1.0,
    *,
    mask: torch.Tensor | None = None,
    reduce: Literal["frame", "clip"] = "frame",
    cap_db: float | None = None,
) -> torch.Tensor:
    """Peak signal-to-noise ratio, in dB: the one PSNR of the package (evaluation, stage-1 scores,
    the shipped checkpoints' recorded numbers, the lessons).

    ``10 log10(data_range^2 / MSE)``, the squared errors summed in float64. The options say over
    what the MSE is taken and what an exact match gives:

    * ``reduce="frame"`` (the evaluation protocol): one MSE per frame, over its C, H, W;
      ``reduce="clip"``: one MSE per clip, over its T, C, H, W (a video's PSNR, not the mean of
      its frames' PSNRs; ``scripts/evaluate_shipped.py`` and lesson 04 report this one).
    * ``mask``: only the pixels where the mask is > 0.5 (True) count, e.g. those hidden in the
      first frame; a frame (or clip) without such a pixel gives NaN.
    * ``cap_db``: a match that is exact (MSE 0) or nearly so gives at most this many dB (the
      evaluation caps at :data:`PSNR_CAP_DB`); ``None`` leaves an exact match at ``+inf``.

    Args:
        pred, true: (B, T, C, H, W) videos or (B, C, H, W) images, float, in [0, data_range];
            ``reduce="clip"`` needs videos.
        data_range: the value span (1.0 for images in [0, 1]).
        mask: None, or bool/float broadcastable to ``pred`` (e.g. (B, T, 1, H, W)).
        reduce: ``"frame"`` or ``"clip"``.
        cap_db: upper bound in dB, or None.
    Returns:
        float32: (B, T) or (B,) for ``"frame"``, (B,) for ``"clip"``.
    """
    if reduce not in ("frame", "clip"):
        raise ValueError(f"psnr: reduce must be 'frame' or 'clip', got {reduce!r}")
    p, t, lead = _frames(pred, true, "psnr")
    if reduce == "clip" and len(lead) != 2:
        raise ValueError(f"psnr: reduce='clip' needs (B, T, C, H, W) videos, got {tuple(pred.shape)}")
    squared = (p.double() - t.double()).square()  # (N, C, H, W)
    if mask is None:
        sums = squared.sum(dim=(1, 2, 3))
        counts = torch.full_like(sums, float(math.prod(p.shape[1:])))
    else:
        weights = (mask.to(p.device).expand_as(pred) > 0.5).reshape(p.shape).double()
        sums, counts = (squared * weights).sum(dim=(1, 2, 3)), weights.sum(dim=(1, 2, 3))
    if reduce == "clip":  # (B * T,) -> (B,): pool the frames' squared errors and pixel counts
        sums, counts, lead = sums.view(lead).sum(1), counts.view(lead).sum(1), lead[:1]
    scores = 10 * torch.log10(data_range**2 / (sums / counts))  # mse 0 -> +inf; no pixel -> NaN
    if cap_db is not None:
        scores = scores.clamp(max=cap_db)  # NaN stays NaN
    return scores.float().reshape(lead)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """float64 (size,) 1-D Gaussian ``exp(-k^2 / (2 sigma^2))``, ``k = -(size//2) .. size//2``,
    normalised to sum 1 (the separable window of :func:`ssim`)."""
    k = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(k**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Structural similarity of each frame, Wang et al. (2004) (the protocol: :data:`SSIM_SETTINGS`
    and the module docstring; equal to scikit-image's with ``gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=1``).

    Args:
        pred, true: (B, T, C, H, W) videos or (B, C, H, W) images, float in [0, 1], H, W >= 11.
    Returns:
        (B, T) or (B,) float32: mean SSIM over the frame's channels and its pixels at least 5
        pixels from the border; 1 for identical frames, lower (down to -1) as structure differs.
    """
    p, t, lead = _frames(pred, true, "ssim")
    size, sigma = int(SSIM_SETTINGS["kernel_size"]), float(SSIM_SETTINGS["sigma"])
    if min(p.shape[-2:]) < size:
        raise ValueError(f"ssim: frames {tuple(p.shape[-2:])} are smaller than the {size}-pixel window")
    c1 = (float(SSIM_SETTINGS["k1"]) * float(SSIM_SETTINGS["data_range"])) ** 2
    c2 = (float(SSIM_SETTINGS["k2"]) * float(SSIM_SETTINGS["data_range"])) ** 2
    n, c, h, w = p.shape
    x = p.double().reshape(n * c, 1, h, w)
    y = t.double().reshape(n * c, 1, h, w)
    # The five local moments in one grouped, separable, UNPADDED convolution: its output is the
    # SSIM map exactly where the window lies inside the frame, i.e. the 5-pixel border crop.
    stats = torch.cat([x, y, x * x, y * y, x * y], dim=1)  # (N*C, 5, H, W)
    g = gaussian_window(size, sigma).to(stats.device)
    stats = F.conv2d(stats, g.view(1, 1, 1, size).expand(5, 1, 1, size).contiguous(), groups=5)
    stats = F.conv2d(stats, g.view(1, 1, size, 1).expand(5, 1, size, 1).contiguous(), groups=5)
    mx, my, mxx, myy, mxy = stats.unbind(dim=1)
    vx, vy, vxy = mxx - mx * mx, myy - my * my, mxy - mx * my  # population (co)variances
    s = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    scores = s.reshape(n, c, -1).mean(dim=(1, 2))
    return scores.float().reshape(lead)


def video_scores(
    pred: torch.Tensor,
    true: torch.Tensor,
    flow_pred: torch.Tensor | None = None,
    flow_true: torch.Tensor | None = None,
    visible_pred: torch.Tensor | None = None,
    visible_true: torch.Tensor | None = None,
    valid: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """All per-frame scores of one batch of generated videos against the true ones.

    Args:
        pred, true: (B, T, 3, H, W) frames in [0, 1].
        flow_pred, flow_true: (B, T', 2, H, W) flows in pixels (give both or neither); T' is
            whatever the flows cover (often T - 1).
        visible_pred, visible_true: (B, T', 1, H, W) visibility masks in [0, 1], 1 = visible (give
            both or neither); read as binary at 0.5.
        valid: (B, T', 1, H, W) pixels where the true flow is defined (> 0.5), broadcast; EPE is
            averaged over them only. ``None`` = every pixel.
    Returns:
        ``{"psnr": (B, T), "ssim": (B, T)}`` plus, when the flows are given, ``"epe"`` (B, T')
        pixels (NaN for a frame with no valid pixel), and when the masks are given
        ``"mask_iou"`` (B, T', IoU of the visible pixels) and ``"occluded_iou"`` (B, T', IoU of
        the occluded pixels, the informative one; NaN where neither mask has an occlusion).
    """
    if pred.dim() != 5:
        raise ValueError(f"pred must be a (B, T, C, H, W) video batch, got {tuple(pred.shape)}")
    scores = {"psnr": psnr(pred, true), "ssim": ssim(pred, true)}
    if (flow_pred is None) != (flow_true is None):
        raise ValueError("give both flow_pred and flow_true, or neither")
    if (visible_pred is None) != (visible_true is None):
        raise ValueError("give both visible_pred and visible_true, or neither")
    if valid is not None and flow_pred is None:
        raise ValueError("valid masks the flow error: it needs flow_pred and flow_true")
    if flow_pred is not None:
        if flow_pred.dim() != 5:
            raise ValueError(f"flows must be (B, T', 2, H, W), got {tuple(flow_pred.shape)}")
        scores["epe"] = frame_end_point_error(flow_pred, flow_true, valid)
    if visible_pred is not None:
        if visible_pred.dim() != 5:
            raise ValueError(f"visibility masks must be (B, T', 1, H, W), got {tuple(visible_pred.shape)}")
        scores["mask_iou"] = frame_mask_iou(visible_pred, visible_true)
        scores["occluded_iou"] = frame_mask_iou(1 - visible_pred, 1 - visible_true)
    return scores


# ----------------------------------------------------------------------------- stochastic evaluation


def _check_samples(scores: torch.Tensor, name: str) -> None:
    if scores.dim() not in (2, 3):
        raise ValueError(
            f"{name}: scores must be (N, B, T) or (N, B) (N samples per input), got {tuple(scores.shape)}"
        )


def best_index(scores: torch.Tensor, higher_is_better: bool = True) -> torch.Tensor:
    """Index of the best of the N samples of each input.

    Args:
        scores: (N, B, T) per-frame or (N, B) per-input scores of N samples per input.
        higher_is_better: True for PSNR / SSIM / IoU, False for errors (EPE, LPIPS).
    Returns:
        (B,) long: for each input the sample whose score AVERAGED OVER FRAMES is best (NaN frames
        are skipped; a sample with no defined score is never picked unless all are undefined).
    """
    _check_samples(scores, "best_index")
    per_sample = scores.double().nanmean(dim=-1) if scores.dim() == 3 else scores.double()
    worst = -math.inf if higher_is_better else math.inf
    per_sample = per_sample.nan_to_num(nan=worst, posinf=math.inf, neginf=-math.inf)
    return per_sample.argmax(dim=0) if higher_is_better else per_sample.argmin(dim=0)


def best_of_n(scores: torch.Tensor, higher_is_better: bool = True) -> torch.Tensor:
    """Best-of-N score: per INPUT, the scores of its best sample (see :func:`best_index`).

    One sample is chosen per input (by its frame-averaged score) and all of its frames are kept;
    frames are NOT picked independently from different samples, which would mix samples into a
    video the model never produced and flatter it further.

    Args:
        scores: (N, B, T) or (N, B) scores of N samples per input.
        higher_is_better: True for PSNR / SSIM / IoU, False for errors.
    Returns:
        (B, T) or (B,): ``scores[best_index(scores)[b], b]`` for each input b.
    """
    index = best_index(scores, higher_is_better)
    return scores[index, torch.arange(scores.shape[1], device=scores.device)]


def mean_of_n(scores: torch.Tensor) -> torch.Tensor:
    """Mean over the N samples: (N, B, T) -> (B, T), (N, B) -> (B,) (a +inf PSNR stays +inf)."""
    _check_samples(scores, "mean_of_n")
    return scores.mean(dim=0)


def diversity(samples: torch.Tensor) -> torch.Tensor:
    """Mean pairwise L1 distance between the N samples of each input.

    L1 = mean absolute pixel difference, in the pixels' own units (two constant videos differing
    by d are d apart), and unlike L2 it is not dominated by the few pixels where samples differ
    most, so a model that varies a whole region a little counts as much as one that varies a
    small spot a lot.

    Args:
        samples: (N, B, T, C, H, W) videos (or (N, B, C, H, W) images), N >= 2 samples per input.
    Returns:
        (B,) float: mean over the N(N-1)/2 pairs i < j of ``mean |samples[i, b] - samples[j, b]|``
        over frames, channels and pixels.
    """
    if samples.dim() < 3:
        raise ValueError(f"samples must be (N, B, T, C, H, W), got {tuple(samples.shape)}")
    n = samples.shape[0]
    if n < 2:
        raise ValueError(f"diversity compares samples with each other: it needs N >= 2 samples, got N = {n}")
    dims = tuple(range(1, samples.dim() - 1))
    total = torch.zeros(samples.shape[1], dtype=torch.float64, device=samples.device)
    for i in range(n):  # pair by pair: N is small and this never holds N^2 videos
        for j in range(i + 1, n):
            total += (samples[i] - samples[j]).abs().double().mean(dim=dims)
    return (total / (n * (n - 1) / 2)).to(samples.dtype)


# ----------------------------------------------------------------------------- summaries


def summarize(per_frame: dict[str, torch.Tensor]) -> dict[str, dict]:
    """Dataset-level numbers from per-frame scores (e.g. concatenated :func:`video_scores`).

    Each score is first averaged over the frames of an input, then over inputs. NaN entries (an
    EPE with no valid pixel, an IoU of two empty masks) are left out of every mean. For keys
    containing ``"psnr"``, ``+inf`` (an exact frame) is replaced by :data:`PSNR_CAP_DB` first.

    Args:
        per_frame: name -> (B, T) per-frame or (B,) per-input scores.
    Returns:
        name -> ``{"mean": float, "std": float, "sem": float, "n": int, "per_frame": list[float]}``:
        the mean and sample standard deviation (NaN for fewer than 2 inputs) over the ``n`` inputs
        with a defined score, the standard error of that mean (``std / sqrt(n)``: how far another
        draw of ``n`` inputs may put it), and the mean at each frame index over inputs (length T;
        for metric-vs-time plots; ``[mean]`` for (B,) scores).
    """
    summary = {}
    for name, scores in per_frame.items():
        if scores.dim() not in (1, 2):
            raise ValueError(f"summarize: {name!r} must be (B, T) or (B,), got {tuple(scores.shape)}")
        values = scores.detach().double().cpu()
        if "psnr" in name.lower():
            values = values.clamp(max=PSNR_CAP_DB)  # +inf -> cap; finite values unchanged
        if values.dim() == 1:
            values = values.unsqueeze(1)
        per_input = values.nanmean(dim=1)
        per_input = per_input[~per_input.isnan()]
        std = per_input.std().item() if len(per_input) > 1 else math.nan
        summary[name] = {
            "mean": per_input.mean().item() if len(per_input) else math.nan,
            "std": std,
            "sem": std / math.sqrt(len(per_input)) if len(per_input) > 1 else math.nan,
            "n": len(per_input),
            "per_frame": values.nanmean(dim=0).tolist(),
        }
    return summary
