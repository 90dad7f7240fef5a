"""Evaluate a stage-2 model (or a baseline) on held-out clips: every metric of the course.

The protocol (:data:`PROTOCOL`, saved next to every table):

- Test set: synthetic streets from a seed no trainer uses (:data:`TEST_SEED`), at the model's
  size and number of frames, with their EXACT flow, visibility and label maps; or any dataset of
  :func:`seg2vid.data.build_dataset` (flow/visibility metrics then need those keys).
- Each input (first frame + its label map) gets ``n_samples`` futures drawn from the model's
  prior with a seeded generator. Frame 0 is given, so scores are over the T PREDICTED frames.
- PSNR and SSIM (:mod:`seg2vid.metrics`: Wang et al., Gaussian 11 / 1.5, 5-px border crop) per
  frame; reported as mean-of-N (the average sample) and best-of-N (per input, the sample with the
  best frame-averaged PSNR; its SSIM is reported for the same sample).
- EPE: the predicted forward flow against the exact one, in pixels, over the pixels visible in
  frame 0 (mean-of-N). Occlusion IoU: predicted occluded pixels (mask < 0.5) against the exact
  ones (mean-of-N). Models without flow (baselines) have none.
- PSNR over the pixels hidden in frame 0 (the disoccluded ones, which warping alone cannot
  produce), mean-of-N: what masks and refinement are for.
- Diversity: mean pairwise L1 between the N samples (0 for a deterministic model).
- Semantic fidelity (with a segmenter, :mod:`seg2vid.models.segmenter`): mIoU between the segmented
  predicted frames and the label map carried forward by the TRUE flow (hidden pixels left out),
  mean-of-N.
- FVD / FID / LPIPS only with local weight files (:mod:`seg2vid.evaluation.fvd`,
  :mod:`~seg2vid.evaluation.fid`, :mod:`~seg2vid.evaluation.lpips`); their protocol is stored
  with their score.

:func:`evaluate` returns a dict: ``"metrics"`` name -> {mean, std (over inputs), sem (the standard
error of the mean: std / sqrt(n)), n, per_frame},
``"protocol"``, and the settings. :func:`format_table` prints it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from seg2vid import metrics
from seg2vid.data.build import frames_and_label_map
from seg2vid.data.labels import CITYSCAPES, LabelTable
from seg2vid.data.splits import TEST_SEED
from seg2vid.data.synthetic import SceneConfig, SyntheticStreets
from seg2vid.utils import progress

__all__ = [
    "PROTOCOL",
    "CopyFirstFrame",
    "Prediction",
    "evaluate",
    "format_table",
    "synthetic_test_set",
]


PROTOCOL = (
    "frames 1..T (frame 0 given); N samples per input from the prior (seeded); PSNR/SSIM: seg2vid.metrics "
    "(SSIM: Gaussian window 11, sigma 1.5, 5-px border crop, float64 = skimage), data range 1, per frame, "
    "mean-of-N and best-of-N (sample with the best "
    "frame-mean PSNR per input); EPE: px vs the exact forward flow over pixels visible in frame 0, "
    "mean-of-N; "
    "occlusion IoU: mask < 0.5 vs exact occlusion, mean-of-N; diversity: mean pairwise L1 of the N samples; "
    "semantic fidelity: mIoU of the shipped segmenter on predicted frames vs the label map carried by the "
    "true flow (hidden pixels ignored), mean-of-N; mean and std over inputs; "
    "epe_best_of_n / epe_textured (|grad I| > 0.03 on the true frame, visible pixels): prior samples; "
    "speed_correlation, epe_posterior*, occlusion_iou_fwd/bwd (mask < 0.5) and *_fbcheck (forward-backward "
    "check of the same flows): the POSTERIOR reconstruction, z = mean of q(z | true clip), objects "
    "placed by their block matches in the true clip when the model's object_pin is set "
    "(seg2vid.evaluation.motion_eval); forward masks as the model's forward_mask says (learned: the "
    "decoder's mask times the objects' geometric visibility; geometry: that visibility alone); "
    "future_coverage / future_precision: seg2vid.evaluation.multifuture.PROTOCOL"
)


@dataclass
class Prediction:
    """What a model predicts for a batch, with the N samples of input i at rows i*N .. (i+1)*N-1.

    Attributes:
        video: (B*N, T+1, 3, H, W) in [0, 1]; frame 0 is the given first frame.
        flow_fwd: (B*N, T, 2, H, W) pixels (frame 0 -> t, on frame t's grid), or None.
        mask_fwd: (B*N, T, 1, H, W) visibility in [0, 1] (1 = visible in frame 0), or None.
        flow_bwd: (B*N, T, 2, H, W) pixels (frame t -> 0, on frame 0's grid), or None.
        mask_bwd: (B*N, T, 1, H, W) visibility of frame 0's pixels in frame t, or None.
    """

    video: Tensor
    flow_fwd: Tensor | None = None
    mask_fwd: Tensor | None = None
    flow_bwd: Tensor | None = None
    mask_bwd: Tensor | None = None


#: A predictor: (first frames (B, 3, H, W), one-hot labels (B, L, H, W), N, generator) -> Prediction.
Predictor = Callable[[Tensor, Tensor, int, torch.Generator], Prediction]


def model_posterior(model: torch.nn.Module) -> Callable[..., Prediction]:
    """The posterior reconstruction of a :class:`~seg2vid.models.Seg2Vid` as a callable
    ``(frames, onehot, truth, generator) -> Prediction``: z = the mean of q(z | clip)."""
    def posterior(frames: Tensor, onehot: Tensor, truth: dict[str, Tensor], generator: torch.Generator):
        out = model.reconstruct(frames, onehot, generator=generator)
        return Prediction(out.video, out.flow_fwd, out.mask_fwd, flow_bwd=out.flow_bwd, mask_bwd=out.mask_bwd)

    return posterior


def model_predictor(model: torch.nn.Module) -> Predictor:
    """A :class:`~seg2vid.models.Seg2Vid` as a predictor (samples from its prior)."""

    def predict(first: Tensor, onehot: Tensor, n: int, generator: torch.Generator) -> Prediction:
        out = model.sample(first, onehot, n_samples=n, generator=generator)
        return Prediction(out.video, out.flow_fwd, out.mask_fwd, out.flow_bwd, out.mask_bwd)

    return predict


class CopyFirstFrame:
    """The simplest baseline: every future frame is the first frame (zero flow, all visible)."""

    deterministic = True

    def __init__(self, frames: int):
        self.frames = frames

    def __call__(self, first: Tensor, onehot: Tensor, n: int, generator: torch.Generator) -> Prediction:
        video = first.repeat_interleave(n, dim=0).unsqueeze(1).expand(-1, self.frames + 1, -1, -1, -1)
        b, _, h, w = video.shape[0], *video.shape[2:4], video.shape[-1]
        zeros, ones = video.new_zeros(b, self.frames, 2, h, w), video.new_ones(b, self.frames, 1, h, w)
        return Prediction(video.contiguous(), zeros, ones, zeros, ones)

    def posterior(
        self, frames: Tensor, onehot: Tensor, truth: dict, generator: torch.Generator
    ) -> Prediction:
        """The same prediction (it reads nothing of the clip): for the posterior motion metrics."""
        return self(frames[:, 0], onehot, 1, generator)


def synthetic_test_set(
    height: int, width: int, frames: int, num_clips: int, seed: int = TEST_SEED, style: str | None = None
) -> SyntheticStreets:
    """The held-out synthetic test clips (exact flow, visibility and labels); ``style`` is a
    :data:`seg2vid.data.synthetic.STYLES` name (None: the default style)."""
    scene = SceneConfig(height=height, width=width, frames=frames, **({"style": style} if style else {}))
    return SyntheticStreets(num_clips, scene, seed=seed)


def _batch(dataset: Any, indices: range) -> dict[str, Tensor]:
    items = [dataset[i] for i in indices]
    pairs = [frames_and_label_map(it) for it in items]
    batch = {"frames": torch.stack([f for f, _ in pairs]),
             "label_map": torch.stack([lab for _, lab in pairs])}
    for key in ("flow_fwd", "visible_fwd", "flow_bwd", "visible_bwd"):
        if all(key in it for it in items):
            batch[key] = torch.stack([it[key] for it in items])
    return batch


@torch.no_grad()
def evaluate(
    predictor: Predictor | torch.nn.Module,
    dataset: Any,
    n_samples: int = 5,
    batch_size: int = 8,
    seed: int = 0,
    segmenter: torch.nn.Module | None = None,
    table: LabelTable = CITYSCAPES,
    device: str | torch.device = "cpu",
    lpips_model: torch.nn.Module | None = None,
    fvd_extractor: Callable | None = None,
    fid_extractor: Callable | None = None,
    multi_future: list[dict[str, Tensor]] | None = None,
    future_samples: int = 8,
) -> dict[str, Any]:
    """Score a model (or a baseline predictor) on every clip of ``dataset``; see :data:`PROTOCOL`.

    Args:
        predictor: a :class:`~seg2vid.models.Seg2Vid` or a :data:`Predictor` (e.g.
            :class:`CopyFirstFrame`).
        dataset: clips with ``"frames"`` (T+1, 3, H, W) and ``"labels"`` (synthetic) or
            ``"label_map"``; ``"flow_fwd"``/``"visible_fwd"`` enable EPE, occlusion IoU and
            semantic fidelity.
        n_samples: futures per input (N); diversity needs N >= 2.
        batch_size: inputs per forward pass.
        seed: seeds the samples (the same seed gives the same table).
        segmenter: a :class:`~seg2vid.models.segmenter.Segmenter` for semantic fidelity (None = skip).
        table: the dataset's label table (one-hot channels).
        device: where the predictor runs.
        lpips_model, fvd_extractor, fid_extractor: feature networks from LOCAL weights (None = skip).
        multi_future: scenes of :func:`seg2vid.evaluation.multifuture.multi_future_scenes` for
            ``future_coverage`` / ``future_precision`` (None = skip), with ``future_samples``
            prior samples per first frame.

    With exact flows and visibility in the clips, the motion metrics of :mod:`seg2vid.evaluation.motion_eval`
    are added (posterior reconstruction for a model; a baseline's ``posterior`` method, if any).
    Returns:
        ``{"metrics": {name: {"mean", "std", "sem", "n", "per_frame"}}, "protocol": str, "n_samples",
        "num_clips", "seconds", "feature_protocols": {...}}``.
    """
    from seg2vid.evaluation import motion_eval

    if isinstance(predictor, torch.nn.Module):
        predictor.eval()
        predict = model_predictor(predictor)
        posterior = model_posterior(predictor)
    else:
        predict = predictor
        posterior = getattr(predictor, "posterior", None)
    speeds: list[Tensor] = []
    # the posterior's fill noise has its own generator: the prior samples stay those of a run without it
    posterior_generator = torch.Generator(device=device).manual_seed(seed + 1)
    device = torch.device(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    per_frame: dict[str, list[Tensor]] = {}
    real_videos, fake_videos = [], []
    feature_protocols: dict[str, str] = {}
    start = time.perf_counter()

    def add(name: str, value: Tensor) -> None:
        per_frame.setdefault(name, []).append(value.detach().double().cpu())

    n = n_samples
    for first_index in progress(range(0, len(dataset), batch_size), desc="evaluating", leave=False):
        batch = _batch(dataset, range(first_index, min(first_index + batch_size, len(dataset))))
        frames = batch["frames"].to(device)
        b, t1 = frames.shape[:2]
        onehot = table.one_hot(batch["label_map"].to(device))
        truth = {k: batch[k].to(device)
                 for k in ("flow_fwd", "flow_bwd", "visible_fwd", "visible_bwd") if k in batch}
        exact = len(truth) == 4  # exact flows and visibility both ways: the motion metrics below
        if getattr(predict, "uses_truth", False):
            if hasattr(dataset, "clip_seed"):  # synthetic clips: their render seeds (TrueFutures)
                truth["seed"] = torch.tensor([dataset.clip_seed(i) for i in
                                              range(first_index, first_index + b)], dtype=torch.int64)
            pred = predict(frames[:, 0], onehot, n, generator, truth=truth)
        else:
            pred = predict(frames[:, 0], onehot, n, generator)
        video = pred.video.view(b, n, t1, *frames.shape[2:]).transpose(0, 1)  # (N, B, T+1, 3, H, W)
        true = frames[:, 1:]
        psnr = torch.stack([metrics.psnr(video[i, :, 1:], true) for i in range(n)])  # (N, B, T)
        ssim = torch.stack([metrics.ssim(video[i, :, 1:], true) for i in range(n)])
        best = metrics.best_index(psnr)
        rows = torch.arange(b)
        add("psnr_mean_of_n", metrics.mean_of_n(psnr.clamp(max=metrics.PSNR_CAP_DB)))
        add("psnr_best_of_n", psnr[best, rows])
        add("ssim_mean_of_n", metrics.mean_of_n(ssim))
        add("ssim_best_of_n", ssim[best, rows])
        if n >= 2:
            add("diversity", metrics.diversity(video[:, :, 1:]))
        if "visible_fwd" in batch:  # where warping the first frame cannot work: pixels hidden in it
            hidden = batch["visible_fwd"].to(device) < 0.5
            add(
                "psnr_occluded_mean_of_n",
                torch.stack([metrics.psnr(video[i, :, 1:], true, mask=hidden, cap_db=metrics.PSNR_CAP_DB)
                             for i in range(n)]).nanmean(0),
            )
        if "flow_fwd" in batch and pred.flow_fwd is not None:
            flow_true = batch["flow_fwd"].to(device)
            visible = batch["visible_fwd"].to(device) if "visible_fwd" in batch else None
            flows = pred.flow_fwd.view(b, n, *pred.flow_fwd.shape[1:]).transpose(0, 1)
            add(
                "epe",
                torch.stack(
                    [metrics.frame_end_point_error(flows[i], flow_true, visible) for i in range(n)]
                ).nanmean(0),
            )
            if visible is not None and pred.mask_fwd is not None:
                masks = pred.mask_fwd.view(b, n, *pred.mask_fwd.shape[1:]).transpose(0, 1)
                add(
                    "occlusion_iou",
                    torch.stack(
                        [metrics.frame_mask_iou(1 - masks[i], 1 - visible) for i in range(n)]
                    ).nanmean(0),
                )
        if exact:  # exact flows and visibility: the motion metrics (seg2vid.evaluation.motion_eval)
            truth["frames"] = frames
            if pred.flow_fwd is not None:
                flows = pred.flow_fwd.view(b, n, *pred.flow_fwd.shape[1:]).transpose(0, 1)
                for name, value in motion_eval.prior_flow_scores(flows, truth).items():
                    add(name, value)
            if posterior is not None:
                scores, clip_speeds = motion_eval.posterior_scores(
                    posterior(frames, onehot, truth, posterior_generator), truth)
                for name, value in scores.items():
                    add(name, value)
                speeds.append(torch.stack([clip_speeds.cpu(), motion_eval.speed(truth["flow_fwd"]).cpu()]))
        if segmenter is not None and "flow_fwd" in batch:
            from seg2vid.evaluation.segmentation import semantic_fidelity

            visible = batch.get("visible_fwd")
            scores = torch.stack(
                [
                    semantic_fidelity(
                        video[i].cpu(), batch["label_map"], batch["flow_fwd"], segmenter, visible
                    )
                    for i in range(n)
                ]
            )  # (N, B, T+1)
            add("semantic_miou", scores[:, :, 1:].nanmean(0))
        if lpips_model is not None:
            from seg2vid.evaluation.lpips import lpips_distance

            result = [lpips_distance(video[i, :, 1:].cpu(), true.cpu(), lpips_model) for i in range(n)]
            feature_protocols["lpips"] = result[0]["protocol"]
            add("lpips_mean_of_n", torch.stack([r["score"] for r in result]).mean(0))
        if fvd_extractor is not None or fid_extractor is not None:
            real_videos.append(frames.cpu())
            fake_videos.append(video[0].cpu())  # one sample per input: sets of equal size
    summary = metrics.summarize({k: torch.cat(v) for k, v in per_frame.items()})
    if speeds:
        pair = torch.cat(speeds, dim=1)
        r, clips = motion_eval.speed_correlation(pair[0], pair[1]), pair.shape[1]
        # one number over the clips; its "std" (and "sem") is the usual standard error of Pearson's r
        error = (1 - r * r) / max(clips - 1, 1) ** 0.5
        summary["speed_correlation"] = {"mean": r, "std": error, "sem": error, "n": clips, "per_frame": []}
    if multi_future:
        from seg2vid.evaluation.multifuture import multi_future_scores

        summary.update(multi_future_scores(predict, multi_future, table, future_samples, seed, device))
    if fvd_extractor is not None:
        from seg2vid.evaluation.fvd import fvd

        result = fvd(torch.cat(real_videos), torch.cat(fake_videos), fvd_extractor)
        summary["fvd"] = {"mean": result["score"], "std": float("nan"), "sem": float("nan"),
                          "n": len(dataset), "per_frame": []}
        feature_protocols["fvd"] = result["protocol"]
    if fid_extractor is not None:
        from seg2vid.evaluation.fid import fid

        result = fid(torch.cat(real_videos)[:, 1:], torch.cat(fake_videos)[:, 1:], fid_extractor)
        summary["fid"] = {"mean": result["score"], "std": float("nan"), "sem": float("nan"),
                          "n": len(dataset), "per_frame": []}
        feature_protocols["fid"] = result["protocol"]
    return {
        "metrics": summary,
        "protocol": PROTOCOL,
        "feature_protocols": feature_protocols,
        "n_samples": n,
        "num_clips": len(dataset),
        "seed": seed,
        "seconds": round(time.perf_counter() - start, 2),
    }


#: Column order and headers of :func:`format_table` (higher is better unless marked).
COLUMNS = (
    ("psnr_best_of_n", "PSNR best-of-N"),
    ("psnr_mean_of_n", "PSNR mean"),
    ("ssim_best_of_n", "SSIM best"),
    ("ssim_mean_of_n", "SSIM mean"),
    ("psnr_occluded_mean_of_n", "PSNR occluded"),
    ("epe", "EPE px (lower)"),
    ("epe_best_of_n", "EPE best (lower)"),
    ("epe_posterior", "EPE post. (lower)"),
    ("epe_posterior_textured", "EPE post. tex. (lower)"),
    ("speed_correlation", "speed r"),
    ("occlusion_iou", "occl. IoU"),
    ("occlusion_iou_fwd", "occl. IoU fwd"),
    ("occlusion_iou_bwd", "occl. IoU bwd"),
    ("occlusion_iou_fwd_fbcheck", "fb-check IoU fwd"),
    ("future_coverage", "coverage"),
    ("future_precision", "precision"),
    ("diversity", "diversity"),
    ("semantic_miou", "sem. mIoU"),
    ("lpips_mean_of_n", "LPIPS (lower)"),
    ("fvd", "FVD (lower)"),
    ("fid", "FID (lower)"),
)


def format_table(rows: dict[str, dict[str, Any]], spread: str = "std") -> str:
    """A Markdown table: one row per name, one column per metric present, "mean ± spread".

    Args:
        rows: name -> ``evaluate(...)["metrics"]`` (or any name -> metric -> {"mean", spread}).
        spread: the key shown after ±: ``"std"`` (the spread over inputs) or ``"sem"`` (the
            standard error of the mean: is a gap to a target or a baseline more than noise?).
    """
    present = [(key, head) for key, head in COLUMNS if any(key in m for m in rows.values())]
    lines = ["| | " + " | ".join(head for _, head in present) + " |", "|---|" + "---|" * len(present)]
    for name, values in rows.items():
        cells = []
        for key, _ in present:
            if key not in values:
                cells.append("–")
                continue
            mean, err = values[key]["mean"], values[key].get(spread, float("nan"))
            cells.append(f"{mean:.3f}" if err != err else f"{mean:.3f} ± {err:.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
