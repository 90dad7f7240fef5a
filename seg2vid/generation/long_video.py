"""Long videos by chaining: feed the last generated frame and the carried label map back in.

A :class:`~seg2vid.models.Seg2Vid` model predicts T future frames from one frame and its label
map. The authors made 24-frame videos from a T = 4 model by running it again from its own output:
chunk 0 is an ordinary sample; chunk k starts from the LAST generated frame of chunk k-1 and from
the label map carried to that frame by chunk k-1's own PREDICTED forward flow (the flow of its last
frame maps chunk k-1's start frame to its last frame, see :func:`seg2vid.flow.warp_labels`). For
T = 4, 24 frames = chunk 0 + 5 more chunks. Inside a chunk every frame is still its start frame
warped once (warps are not chained); across chunks they are, so errors accumulate: the per-frame
score of :func:`drift_curve` shows how fast.

The latent of each chunk (``z_mode``):

* ``"resample"``: a fresh draw per chunk; each chunk's motion is independent of the last.
* ``"keep"``: the noise of chunk 0 is reused; with the N(0, I) prior that is the SAME z in every
  chunk, i.e. the same kind of motion continues (more coherent videos).

Conditioning on the previous chunk. With a model whose config has ``learned_prior=True``, chunk
k's latent is drawn from the prior p(z | start frame, label map) of ITS OWN start: the last frame
and carried map of chunk k-1. So the motion of every chunk is conditioned on where the previous
one ended. ``z = mu_k + sigma_k * eps``: "resample" draws a new ``eps`` per chunk, "keep" reuses
chunk 0's ``eps`` (the same position relative to a prior that moves with the video).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from seg2vid.data.labels import CITYSCAPES, LabelTable
from seg2vid.flow import warp_labels
from seg2vid.models.seg2vid import Seg2Vid

__all__ = ["LongVideo", "drift_curve", "generate_long"]

ZMode = Literal["resample", "keep"]


@dataclass
class LongVideo:
    """A chained video. B = inputs, S = samples per input, N = generated frames, K = chunks, T = frames
    per chunk (the model's ``config.frames``), K = ceil(N / T).

    Attributes:
        video: (B, S, N+1, 3, H, W) in [0, 1]; frame 0 is the input first frame.
        label_maps: (B, S, K, H, W) int64: the label map each chunk started from (``[:, :, 0]``
            is the input map; later ones were carried by the predicted flow; see
            ``label_padding`` of :func:`generate_long` for what fills pixels from outside).
        z: (B, S, K, latent) the latent each chunk was decoded from.
        flow_fwd: (B, S, K, T, 2, H, W) pixels: each chunk's predicted forward flows, from ITS
            start frame (not frame 0) to its frames; the last chunk's are not trimmed.
        chunk_starts: frame index of each chunk's start frame in ``video``: (0, T, 2T, ...).
        frames_per_chunk: T.
    """

    video: Tensor
    label_maps: Tensor
    z: Tensor
    flow_fwd: Tensor
    chunk_starts: tuple[int, ...]
    frames_per_chunk: int

    @property
    def num_frames(self) -> int:
        """N, the generated frames (the video holds N + 1)."""
        return self.video.shape[2] - 1

    @property
    def num_chunks(self) -> int:
        """K, the chunks (model calls) the video took."""
        return len(self.chunk_starts)

    def chunk(self, k: int) -> Tensor:
        """Frames of chunk k, its start frame included: (B, S, <= T+1, 3, H, W) (the last may be trimmed)."""
        start = self.chunk_starts[k]
        return self.video[:, :, start:start + self.frames_per_chunk + 1]


@torch.no_grad()
def generate_long(
    model: Seg2Vid,
    first_frame: Tensor,
    label_map: Tensor,
    num_frames: int = 24,
    n_samples: int = 1,
    z_mode: ZMode = "resample",
    generator: torch.Generator | None = None,
    table: LabelTable = CITYSCAPES,
    label_padding: Literal["border", "ignore"] = "border",
) -> LongVideo:
    """Generate ``num_frames`` future frames by running ``model`` chunk after chunk.

    Args:
        model: a stage-2 model (T = ``model.config.frames`` frames per call); its train/eval mode
            is left as it is (:func:`seg2vid.models.loading.load_model` returns it in eval mode).
        first_frame: (B, 3, H, W) in [0, 1].
        label_map: (B, H, W) integer train ids of the first frame (``ignore_id`` = void).
        num_frames: N >= 1 generated frames. When N is not a multiple of T, the last chunk is
            generated in full and TRIMMED: ceil(N / T) chunks, the first N frames kept.
        n_samples: S independent long videos per input.
        z_mode: ``"resample"`` (a fresh latent per chunk) or ``"keep"`` (chunk 0's noise in every
            chunk); see the module docstring, also for models with a learned prior.
        generator: seeds every latent and the fill noise: the same generator state gives the
            same videos.
        table: the label table of the model's one-hot input.
        label_padding: what a carried map holds where the predicted flow reads from outside the
            frame: ``"border"`` (default) repeats the edge label, as the model's warp repeats edge
            pixels for the frames; ``"ignore"`` writes ``table.ignore_id`` (void), which the model
            then sees in its void channel.
    Returns:
        a :class:`LongVideo`.
    """
    if z_mode not in ("resample", "keep"):
        raise ValueError(f"z_mode must be 'resample' or 'keep', got {z_mode!r}")
    if num_frames < 1 or n_samples < 1:
        raise ValueError(f"need num_frames >= 1 and n_samples >= 1, got {num_frames} and {n_samples}")
    if first_frame.dim() != 4 or label_map.dim() != 3 or label_map.shape != (first_frame.shape[0],
                                                                             *first_frame.shape[-2:]):
        raise ValueError(f"need first_frame (B, 3, H, W) and label_map (B, H, W) of the same B, H, W; got "
                         f"{tuple(first_frame.shape)} and {tuple(label_map.shape)}")
    table.check(label_map)
    b, s, t = first_frame.shape[0], n_samples, model.config.frames
    chunks = math.ceil(num_frames / t)
    frame = first_frame.repeat_interleave(s, dim=0)
    labels = label_map.to(frame.device).long().repeat_interleave(s, dim=0)
    eps = None
    frames, maps, latents, flows = [frame], [], [], []
    for k in range(chunks):
        onehot = table.one_hot(labels).to(frame.dtype)
        if k == 0 or z_mode == "resample":
            eps = torch.randn(frame.shape[0], model.latent_size, generator=generator, device=frame.device,
                              dtype=frame.dtype)
        z = model.latent_from_noise(eps, frame, onehot)  # a learned prior sees THIS chunk's start
        out = model.decode(frame, onehot, z, generator=generator)
        maps.append(labels)
        latents.append(out.z)
        flows.append(out.flow_fwd)
        frames.append(out.frames)
        frame = out.frames[:, -1]
        # flow_fwd[:, -1] maps this chunk's start frame to its last frame: carry the map along it
        labels = warp_labels(labels, out.flow_fwd[:, -1], table.ignore_id, padding_mode=label_padding)

    def per_input(x: Tensor) -> Tensor:  # (B * S, ...) -> (B, S, ...)
        return x.reshape(b, s, *x.shape[1:])

    video = torch.cat([frames[0].unsqueeze(1), *frames[1:]], dim=1)[:, : num_frames + 1]
    return LongVideo(
        video=per_input(video),
        label_maps=per_input(torch.stack(maps, dim=1)),
        z=per_input(torch.stack(latents, dim=1)),
        flow_fwd=per_input(torch.stack(flows, dim=1)),
        chunk_starts=tuple(k * t for k in range(chunks)),
        frames_per_chunk=t,
    )


def drift_curve(
    long_video: LongVideo | Tensor,
    true_video: Tensor,
    metric: Literal["psnr", "ssim", "l1"] = "psnr",
    reduction: Literal["mean", "none"] = "mean",
) -> Tensor:
    """A score at every frame index: how a chained video drifts from the true one over time.

    Args:
        long_video: a :class:`LongVideo`, or its ``video`` (B, S, F, 3, H, W), or one sample per
            input (B, F, 3, H, W).
        true_video: (B, F, 3, H, W) in [0, 1], the same number of frames F (e.g. a synthetic
            clip rendered with ``SceneConfig(frames=N)``).
        metric: ``"psnr"`` (dB, :func:`seg2vid.metrics.psnr`; an exact frame, e.g. frame 0, is
            capped at :data:`seg2vid.metrics.PSNR_CAP_DB`), ``"ssim"`` (:func:`seg2vid.metrics.ssim`)
            or ``"l1"`` (mean absolute error).
        reduction: ``"mean"`` over inputs and samples, or ``"none"``.
    Returns:
        (F,) float64 for "mean", else (B, S, F) (S = 1 for a (B, F, ...) input). Frame 0 is the
        given frame; chunk boundaries are at ``long_video.chunk_starts``.
    """
    video = long_video.video if isinstance(long_video, LongVideo) else long_video
    if video.dim() == 5:
        video = video.unsqueeze(1)
    if video.dim() != 6 or true_video.dim() != 5 or true_video.shape != (video.shape[0], *video.shape[2:]):
        raise ValueError(f"need a video (B, S, F, 3, H, W) or (B, F, 3, H, W) and true_video (B, F, 3, H, W) "
                         f"with the same B, F, H, W; got {tuple(video.shape)} and {tuple(true_video.shape)}")
    truth = true_video.to(video.device, video.dtype).unsqueeze(1).expand_as(video)
    if metric == "l1":
        scores = (video - truth).abs().double().mean(dim=(-3, -2, -1))
    elif metric in ("psnr", "ssim"):
        from seg2vid import metrics

        score = metrics.psnr if metric == "psnr" else metrics.ssim
        scores = score(video.flatten(0, 1), truth.flatten(0, 1)).double().reshape(video.shape[:3])
        if metric == "psnr":
            scores = scores.clamp(max=metrics.PSNR_CAP_DB)
    else:
        raise ValueError(f"metric must be 'psnr', 'ssim' or 'l1', got {metric!r}")
    if reduction == "none":
        return scores
    if reduction != "mean":
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    return scores.mean(dim=(0, 1))
