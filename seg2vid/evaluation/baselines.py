"""Baselines that every stage-2 evaluation is read against (issue 11): a model that cannot beat
them has not learned the clip's motion, its occlusions or its uncertainty.

Each is a predictor of :func:`seg2vid.evaluation.evaluate.evaluate` (same call, same metric keys):

(:func:`evaluate_baselines` scores them all for ``seg2vid evaluate``.)

* :class:`~seg2vid.evaluation.evaluate.CopyFirstFrame` -- every future frame is the first frame (zero
  flow, everything visible).
* :class:`MeanFlowWarp` -- ONE fixed flow field for every clip: the TRAINING set's average
  forward and backward flow at every frame (:func:`training_mean_flow`), the first frame warped
  with it, everything visible. It knows the typical motion of the data and nothing about the
  clip: a model whose flow is no better than this has learned the dataset, not the clip.
* :class:`ExactFlowWarp` -- the first frame warped with the clip's EXACT forward flow, the exact
  visibility as masks (an upper bound of the warping part, no refinement). It reads the truth
  (``uses_truth``), so it is a reference, not a model.
* :class:`TrueFutures` -- a PERFECT sampler: its N samples of a synthetic clip are N further exact
  futures of the same first frame (:func:`seg2vid.data.synthetic.render_futures`: same frame 0
  and label map, independently drawn motions; true frames, flows and visibility). No model can
  be better calibrated, so its prior-sample scores (mean-of-N and best-of-N EPE and PSNR,
  coverage) are what a model that is honest about the uncertainty of the future can reach; its
  posterior is the clip's own future (exact). Synthetic clips only: it re-renders each clip
  from its seed.

and the forward-backward check (:func:`seg2vid.evaluation.motion_eval.fb_check_visibility`):
visibility from the consistency of a pair of flows (Sundaram et al. 2010), run by the evaluation on
the model's own flows and on the exact ones (metric ``occlusion_iou_*_fbcheck``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from seg2vid.flow import warp

if TYPE_CHECKING:
    from seg2vid.data.synthetic import SceneConfig
    from seg2vid.evaluation.evaluate import Prediction

__all__ = [
    "MEAN_FLOW_CLIPS",
    "SAMPLE_FUTURES_FROM",
    "ExactFlowWarp",
    "MeanFlowWarp",
    "TrueFutures",
    "evaluate_baselines",
    "training_mean_flow",
]

#: Training clips averaged by :func:`training_mean_flow` (clips 0 .. N-1 of the trainer's pool).
MEAN_FLOW_CLIPS = 256
#: :class:`TrueFutures` draws futures ``SAMPLE_FUTURES_FROM ..`` of a scene: never the clip's own
#: future (0) nor one of the K true futures of a multi-future scene (0 .. K-1).
SAMPLE_FUTURES_FROM = 1000


def training_mean_flow(
    scene: SceneConfig, num_clips: int = MEAN_FLOW_CLIPS, seed: int = 0
) -> dict[str, Tensor]:
    """The average flow field of the TRAINING clips: what one fixed flow can know.

    Clips ``0 .. num_clips - 1`` of ``SyntheticStreets(num_clips, scene, seed)`` -- with the
    default ``seed = 0`` these are the first clips of the pool ``seg2vid train`` (and
    :class:`seg2vid.training.stage2.Trainer`, ``TrainConfig.seed = 0``) trains on, never the test clips.
    Every pixel is averaged over all clips, including pixels hidden in the other frame (a
    fixed field cannot know which ones are).

    Args:
        scene: the scene settings of the training data (size, frames, style).
        num_clips: how many training clips to average.
        seed: the training dataset's seed.
    Returns:
        ``{"flow_fwd": (T, 2, H, W), "flow_bwd": (T, 2, H, W)}`` pixels, float32.
    """
    from seg2vid.data.synthetic import SyntheticStreets

    data = SyntheticStreets(num_clips, scene, seed=seed)
    fwd = bwd = None
    for i in range(num_clips):
        clip = data[i]
        fwd = clip["flow_fwd"].double() if fwd is None else fwd + clip["flow_fwd"]
        bwd = clip["flow_bwd"].double() if bwd is None else bwd + clip["flow_bwd"]
    return {"flow_fwd": (fwd / num_clips).float(), "flow_bwd": (bwd / num_clips).float()}


def _prediction(
    video: Tensor, flow_fwd: Tensor, flow_bwd: Tensor, mask_fwd: Tensor, mask_bwd: Tensor
) -> Prediction:
    from seg2vid.evaluation.evaluate import Prediction

    return Prediction(video, flow_fwd, mask_fwd, flow_bwd=flow_bwd, mask_bwd=mask_bwd)


class MeanFlowWarp:
    """Baseline: the first frame warped with one fixed flow field (see :func:`training_mean_flow`).

    Args:
        flow_fwd, flow_bwd: (T, 2, H, W) pixels, the same for every clip.
    """

    deterministic = True

    def __init__(self, flow_fwd: Tensor, flow_bwd: Tensor):
        if flow_fwd.shape != flow_bwd.shape or flow_fwd.dim() != 4 or flow_fwd.shape[1] != 2:
            raise ValueError(
                f"flows must both be (T, 2, H, W), got {tuple(flow_fwd.shape)}, {tuple(flow_bwd.shape)}")
        self.flow_fwd, self.flow_bwd = flow_fwd, flow_bwd

    def __call__(self, first: Tensor, onehot: Tensor, n: int, generator: torch.Generator) -> Prediction:
        b = first.shape[0] * n
        fwd = self.flow_fwd.to(first).expand(b, *self.flow_fwd.shape)
        bwd = self.flow_bwd.to(first).expand(b, *self.flow_bwd.shape)
        rep = first.repeat_interleave(n, dim=0)
        video = torch.cat([rep.unsqueeze(1), warp(rep.unsqueeze(1), fwd)], dim=1)
        ones = fwd.new_ones(b, fwd.shape[1], 1, *fwd.shape[-2:])
        return _prediction(video, fwd, bwd, ones, ones)

    def posterior(self, frames: Tensor, onehot: Tensor, truth: dict[str, Tensor],
                  generator: torch.Generator) -> Prediction:
        """The same fixed prediction (it reads nothing of the clip)."""
        return self(frames[:, 0], onehot, 1, generator)


class ExactFlowWarp:
    """Reference: the first frame warped with the clip's exact flow; the exact visibility as masks.

    Called with the batch's truth (``uses_truth``); the N "samples" are N copies of the same
    future (the one the clip was rendered with)."""

    deterministic = True
    uses_truth = True

    def __call__(self, first: Tensor, onehot: Tensor, n: int, generator: torch.Generator,
                 truth: dict[str, Tensor] | None = None) -> Prediction:
        if truth is None or not {"flow_fwd", "flow_bwd", "visible_fwd", "visible_bwd"} <= set(truth):
            raise ValueError("ExactFlowWarp needs the clips' flow_fwd, flow_bwd, visible_fwd and visible_bwd")
        rep = first.repeat_interleave(n, dim=0)
        fwd, bwd = (truth[k].to(first).repeat_interleave(n, dim=0) for k in ("flow_fwd", "flow_bwd"))
        vis_f, vis_b = (
            truth[k].to(first).repeat_interleave(n, dim=0) for k in ("visible_fwd", "visible_bwd"))
        video = torch.cat([rep.unsqueeze(1), warp(rep.unsqueeze(1), fwd)], dim=1)
        return _prediction(video, fwd, bwd, vis_f, vis_b)

    def posterior(self, frames: Tensor, onehot: Tensor, truth: dict[str, Tensor],
                  generator: torch.Generator) -> Prediction:
        """The exact flow of the clip (what a perfect posterior would give)."""
        return self(frames[:, 0], onehot, 1, generator, truth)


class TrueFutures:
    """Reference: a perfect sampler -- N further exact futures of each clip's first frame.

    Called with the batch's truth (``uses_truth``), which must hold ``"seed"`` (B,) int64: the
    render seed of each clip (:meth:`seg2vid.data.synthetic.SyntheticStreets.clip_seed`; the
    evaluation adds it for synthetic clips). Sample i of a clip is future
    ``SAMPLE_FUTURES_FROM + i`` of its scene: the true frames (disocclusions and all), the exact
    flows and visibility. Its posterior is the clip itself (future 0), exact.

    Args:
        scene: the clips' :class:`~seg2vid.data.synthetic.SceneConfig`.
    """

    deterministic = False  # N different futures per input
    uses_truth = True

    def __init__(self, scene: SceneConfig):
        self.scene = scene

    def _futures(self, seeds: Tensor, n: int, first: int) -> dict[str, Tensor]:
        from seg2vid.data.synthetic import render_futures

        per_clip = [render_futures(self.scene, int(seed), k=n, first=first) for seed in seeds.tolist()]
        return {key: torch.cat([f[key] for f in per_clip])  # (B * n, ...), clip-major like a model's
                for key in ("frames", "flow_fwd", "flow_bwd", "visible_fwd", "visible_bwd")}

    def __call__(self, first: Tensor, onehot: Tensor, n: int, generator: torch.Generator,
                 truth: dict[str, Tensor] | None = None) -> Prediction:
        if truth is None or "seed" not in truth:
            raise ValueError("TrueFutures needs the clips' render seeds (truth['seed']): "
                             "synthetic clips only")
        f = self._futures(truth["seed"], n, SAMPLE_FUTURES_FROM)
        if not torch.equal(f["frames"][:, 0].to(first), first.repeat_interleave(n, dim=0)):
            raise ValueError("TrueFutures: the seeds do not render these first frames "
                             "(another scene config?)")
        return _prediction(*(f[k].to(first) for k in ("frames", "flow_fwd", "flow_bwd", "visible_fwd",
                                                         "visible_bwd")))

    def posterior(self, frames: Tensor, onehot: Tensor, truth: dict[str, Tensor],
                  generator: torch.Generator) -> Prediction:
        """The clip's own future: its frames, exact flows and visibility."""
        keys = ("flow_fwd", "flow_bwd", "visible_fwd", "visible_bwd")
        return _prediction(frames, *(truth[k] for k in keys))


def evaluate_baselines(
    dataset: Any, train_scene: SceneConfig | None, frames: int, mean_flow: dict[str, Tensor] | None = None,
    **evaluate_kwargs: Any,
) -> dict[str, dict[str, Any]]:
    """The ``"baselines"`` object of ``eval.json``: each baseline scored with the same protocol.

    Args:
        dataset: the held-out clips (as for :func:`seg2vid.evaluation.evaluate.evaluate`).
        train_scene: the TRAINING data's scene settings, for ``mean_flow``
            (:func:`training_mean_flow`); ``None`` (e.g. real data) leaves ``mean_flow`` out
            unless ``mean_flow`` is given.
        frames: T, future frames.
        mean_flow: a precomputed :func:`training_mean_flow` result (else computed).
        evaluate_kwargs: passed to every :func:`seg2vid.evaluation.evaluate.evaluate` call (n_samples, seed,
            segmenter, table, device, multi_future, ...), so the keys are the model's.
    Returns:
        ``{"copy_first_frame": metrics, "mean_flow": metrics, "exact_flow_warp": metrics,
        "true_futures": metrics}`` (``exact_flow_warp`` only when the clips hold exact flows,
        ``true_futures`` only for synthetic clips), each ``evaluate(...)["metrics"]``.
    """
    from seg2vid.evaluation.evaluate import CopyFirstFrame, evaluate

    out = {"copy_first_frame": evaluate(CopyFirstFrame(frames), dataset, **evaluate_kwargs)["metrics"]}
    if mean_flow is None and train_scene is not None:
        mean_flow = training_mean_flow(train_scene)
    if mean_flow is not None:
        out["mean_flow"] = evaluate(MeanFlowWarp(mean_flow["flow_fwd"], mean_flow["flow_bwd"]), dataset,
                                    **evaluate_kwargs)["metrics"]
    if len(dataset) and {"flow_fwd", "flow_bwd", "visible_fwd", "visible_bwd"} <= set(dataset[0]):
        out["exact_flow_warp"] = evaluate(ExactFlowWarp(), dataset, **evaluate_kwargs)["metrics"]
    if hasattr(dataset, "clip_seed") and hasattr(dataset, "config"):  # synthetic: re-rendered futures
        out["true_futures"] = evaluate(TrueFutures(dataset.config), dataset, **evaluate_kwargs)["metrics"]
    return out
