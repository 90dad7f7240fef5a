"""Stage 2 of Seg2Vid: first frame + label map -> T future frames, through a flow cVAE.

The network, block by block (see ``../shared/reference/seg2vid_method.md``):

1. :class:`ImageEncoder` reads the first frame and the one-hot label map (3 + L channels) with
   four stride-2 stages; the features at 1/2, 1/4 and 1/8 are kept as U-Net skips.
2. Two :class:`MotionEncoder` s, the posterior q(z | clip): one sees the background label
   channels, one the foreground channels, both the first frame and the differences
   ``frame_t - frame_0``. Each ends in global pooling, so the latent is a VECTOR of
   ``latent_dim`` numbers whatever the image size (the authors' latent grew with resolution).
   The two latents are concatenated. The prior is N(0, I), or optionally a learned
   p(z | first frame, labels) (``learned_prior=True``).
3. :class:`FlowDecoder` tiles z over the image code, splits it into T per-frame codes and
   upsamples them with skips and space-time convolutions across the T frames, so the T flows
   are coherent. Each is a (2+1)-D convolution (:class:`SpaceTimeConv`: 3x3 in space, then 3
   taps in time; Tran et al., CVPR 2018), which sees the same 3x3x3 neighbourhood as a 3-D
   convolution for about a third of its cost, and runs on PyTorch's fast CPU kernels at any
   batch size (a full ``Conv3d`` falls back to a slow one for small batch-1 inputs, which made
   generation several times slower). Per frame it predicts a forward flow (frame 0 -> t), a
   backward flow (t -> 0), both in PIXELS in the convention of :func:`seg2vid.flow.warp`, and
   two sigmoid visibility masks. The heads run at half resolution and are upsampled bilinearly:
   flow is smooth, and this keeps the decoder off the full-resolution grid.
4. Every future frame is the FIRST frame warped with its forward flow (warps are not chained).
5. :class:`RefineNet`, a small U-Net applied to each frame, repairs what warping cannot:
   its input is ``warped * mask + noise * (1 - mask)`` and the mask. It folds every 2x2 block
   of pixels into channels first (``pixel_unshuffle``) and unfolds its output at the end, so its
   convolutions run at half resolution or less without discarding a pixel (full-resolution
   convolutions with few channels were half of a training step).

Tensors: ``frames`` (B, T+1, 3, H, W) in [0, 1]; ``labels`` one-hot (B, L, H, W) of the first
frame; H and W multiples of 16. ``grid_sample`` runs with ``align_corners=False``
(:data:`seg2vid.flow.ALIGN_CORNERS`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from seg2vid.config_base import FrozenConfig
from seg2vid.cvae import GaussianHead, reparameterize
from seg2vid.data.labels import CITYSCAPES, LabelTable
from seg2vid.flow import ALIGN_CORNERS, warp
from seg2vid.models.blocks import NORMS, Norm, conv2d_block, norm3d
from seg2vid.models.objects import (
    ObjectMotionHead,
    ObjectPosterior,
    compose_object_motion,
    label_segments,
    match_objects,
    pin_to_matches,
)
from seg2vid.utils import uses_bf16

__all__ = ["PRESETS", "VARIANTS", "Seg2Vid", "Seg2VidConfig", "Seg2VidOutput", "warp_and_fill"]


def _table_channels(table: LabelTable) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
    void = table.num_channels - 1  # the one-hot's last channel; void counts as background
    return table.num_channels, table.background_ids + (void,), table.foreground_ids


_L, _BG, _FG = _table_channels(CITYSCAPES)

#: The model and its ablations (``Seg2VidConfig.variant``), each removing one idea of the paper.
#: How the flow heads' per-frame outputs become the flows 0 -> t (``Seg2VidConfig.flow_time``).
FLOW_TIMES = ("absolute", "cumulative", "extrapolated")


VARIANTS: dict[str, str] = {
    "full": "the method: flow from a cVAE, visibility masks, refinement, label maps",
    "zero_flow": "flows forced to zero: the refinement net alone turns the first frame into each frame",
    "direct_pixels": "no flow at all: the decoder predicts each frame's pixels (as a change of the first "
                     "frame in logit space), then the refinement net",
    "no_labels": "the label map is replaced by zeros everywhere (no semantic input)",
    "no_masks": "visibility masks fixed to 1 (every pixel counts as visible)",
    "no_refine": "no refinement: each frame is the warped first frame",
    "deterministic": "no randomness: z = 0 always (no posterior, no KL) and occluded pixels filled with "
                     "zeros, not noise: one future per input",
}


@dataclass(frozen=True)
class Seg2VidConfig(FrozenConfig):
    """Everything that defines a stage-2 model. Frozen and made of plain values, so it can be
    stored in a checkpoint and compared with another one field by field.

    Args:
        height, width: frame size in pixels (multiples of 16).
        frames: T, the number of predicted future frames.
        widths: channels of the image encoder's four stride-2 stages (the decoder mirrors them).
        motion_widths: channels of each motion encoder's four stride-2 stages.
        refine_widths: channels of the refinement U-Net's levels (1/2, 1/4 ... resolution; the
            input is folded 2x2 into channels, see :class:`RefineNet`).
        latent_dim: size of EACH motion encoder's latent vector (z has 2 * latent_dim numbers).
        norm: "group" (default), "instance", "batch" or "none".
        learned_prior: learn p(z | first frame, labels) instead of using N(0, I).
        label_channels: channels of the one-hot label map (Cityscapes: 19 classes + void = 20).
        background_channels / foreground_channels: one-hot channels seen by each motion encoder
            (default: the Cityscapes groups, void with the background); see :meth:`for_table`.
        flow_scale: pixels per unit of the flow heads' raw output (default max(H, W) / 16), so
            the same initial weights give comparable flows at every resolution.
        noise_fill: fill occluded pixels with uniform noise in [0, 1], fresh for every frame,
            before refinement (the authors fill with Gaussian noise, one image per clip); False
            fills them with zeros.
        variant: the full model (``"full"``) or one of the ablations of :data:`VARIANTS` that
            test the paper's claims (lesson 06, ``scripts/ablations.py``).

    Options added for issue 11 (the defaults are the shipped model's architecture, so its
    checkpoint loads and behaves exactly as before):

        mask_head: ``"half"`` (masks predicted with the flows at half resolution and upsampled:
            the exact occlusion map pooled that way reaches IoU 0.28 at most, since most
            occluded regions are 1-2 pixel slivers) or ``"full"`` (a small extra head at full
            resolution reads the upsampled decoder features and the first frame and predicts
            the two mask logits per pixel; the flows stay at half resolution).
        refiner_mask_grad: True (the authors') lets the refined-frame losses reach the masks
            through the refiner's input ``warped * m + noise * (1 - m)``; False stops that
            gradient (the refiner sees the masks' values but cannot change them), so only the
            warp, consistency and mask terms decide what is occluded. At initialisation the
            refined-frame terms push every mask to "visible" (issue 11: 0.99 in 50 steps).
        mask_init_logit: initial bias of the mask logits (3.0: masks start at ~0.95, "visible").
        flow_time: ``"absolute"`` (the authors': frame t's head output IS the flow 0 -> t) or
            ``"cumulative"`` (frame t's head output is an increment and the flow 0 -> t is the
            sum of the increments of frames 1..t, for both directions). A photometric warp term
            sees motion only within the texture's correlation length (a few pixels), so far
            frames' large flows get little signal; cumulative flows let frame 1's small, well
            measured motion carry on into frames 2..T, which then only learn the change.
            ``"extrapolated"``: frame t's flow is the constant-velocity extrapolation of frames
            t-1 and t-2 (``2 f[t-1] - f[t-2]``, f[0] = 0), with NO gradient through it, plus
            frame t's head output. Each frame's terms then train only its own correction (the
            acceleration), a displacement of a pixel or two, while with ``"cumulative"`` the
            far frames' large, out-of-reach errors reach every earlier increment.
        flow_head: ``"half"`` (the flows predicted at half resolution and upsampled
            bilinearly: a motion boundary is smeared over two or more pixels, and a person a few
            pixels wide cannot move apart from the road behind it) or ``"full"`` (a small extra
            head at full resolution, like the ``mask_head="full"`` one, reads the upsampled
            decoder features and the first frame and ADDS a correction to both flows; it starts
            at zero, so the model starts as the half-resolution one).
        latent_prior: what :meth:`Seg2Vid.sample` draws z from. ``"standard"`` (the authors'):
            N(0, I), the prior of the KL term. ``"fitted"``: N(m, S S^T), a Gaussian fitted AFTER
            training to the posteriors of training clips (:meth:`Seg2Vid.fit_latent_prior`,
            ``scripts/fit_latent_prior.py``): with the small KL weight of the method the
            posteriors do not fill N(0, I) (in the shipped model the two dimensions that carry
            the speed have variances 2.2 and 1.4, most others ~0.9), so standard-normal samples
            spread the futures less than the training clips do. Training is unchanged (the KL
            term is still against N(0, I)); m and S are buffers of the model (identity until fitted).
        object_motion: ``"none"`` (the authors': dense flows only) or ``"rigid"``: every object
            of the first label map (a connected component of a foreground class,
            :mod:`seg2vid.models.objects`) moves as a whole, by the least-squares displacement +
            scale of the dense backward flow over it; the forward flow is that motion where the
            object lands in frame t, and the forward mask is multiplied by the geometric
            visibility (background pixels of frame t whose source lay under the first frame's
            foreground, or outside it, are occluded). No extra weights.
        max_objects: with ``object_motion="rigid"``, the most objects moved per image (the
            largest; smaller ones follow the dense flow).
        object_head: with ``object_motion="rigid"``, add :class:`~seg2vid.models.objects.ObjectMotionHead`:
            a small MLP that reads the decoder's features over each object, z and the object's
            place, and corrects its fitted displacement and scale (a direct path from z to each
            object's motion; starts at zero).
        object_posterior: with ``object_latent > 0``, what q(z_k | clip) reads: ``"trusted"``
            (each object's trusted block matches and its place) or ``"full"``: also the untrusted
            matches, every match's confidence and the foreground motion encoder's features
            (after its second convolution) averaged over the object, through a zero-initialised
            extra layer (:class:`~seg2vid.models.objects.ObjectPosterior`).
        object_match_distinct: with ``object_latent > 0``, the block matcher's uniqueness ratio
            (``distinct`` of :func:`~seg2vid.models.objects.match_objects`, in (0, 1]): a match is
            trusted when its error is below this times the best error 2 px away. Higher trusts more
            matches, wrong ones too (0.8, the default, is what the shipped model was trained with).
        object_pin: with ``object_latent > 0``, the uniqueness ratio at which POSTERIOR
            reconstructions (:meth:`Seg2Vid.reconstruct`) pin each object to its block match in the
            true clip (:func:`~seg2vid.models.objects.pin_to_matches`: trusted frames at the match,
            the others at the constant velocity through them, objects never trusted at their
            untrusted matches), instead of the displacement decoded from z_k; ``None`` (default):
            no pinning. Training and sampling are unchanged: it is an inference-time use of the
            measurement the posterior reads anyway.
        forward_mask: the forward occlusion estimate that inference REPORTS
            (``Seg2VidOutput.mask_fwd`` of :meth:`Seg2Vid.decode`, hence of :meth:`Seg2Vid.reconstruct`
            and :meth:`Seg2Vid.sample`; what the occlusion scores read): ``"learned"`` (default;
            as in training: the decoder's mask, times the objects' geometric visibility with
            ``object_motion="rigid"``) or ``"geometry"`` (``object_motion="rigid"`` only: that
            geometric visibility alone -- a pixel is occluded when no object covers it in frame
            t and its source under the decoded flow lies on frame 0's foreground or outside the
            frame; the decoder's own forward mask also marks warp errors, which the refiner
            uses). Either way the refiner composites with the learned mask it was trained with,
            so the frames do not change, and training (:meth:`Seg2Vid.forward`) always reports
            ``"learned"``.
    """

    height: int = 64
    width: int = 64
    frames: int = 4
    widths: tuple[int, ...] = (16, 32, 64, 128)
    motion_widths: tuple[int, ...] = (16, 32, 64, 64)
    refine_widths: tuple[int, ...] = (16, 32, 64)
    latent_dim: int = 8
    norm: Norm = "group"
    learned_prior: bool = False
    label_channels: int = _L
    background_channels: tuple[int, ...] = _BG
    foreground_channels: tuple[int, ...] = _FG
    flow_scale: float | None = None
    noise_fill: bool = True
    align_corners: bool = field(default=ALIGN_CORNERS, metadata={"doc": "of every grid_sample"})
    variant: str = "full"
    mask_head: str = "half"
    refiner_mask_grad: bool = True
    mask_init_logit: float = 3.0
    flow_time: str = "absolute"
    flow_head: str = "half"
    latent_prior: str = "standard"
    object_motion: str = "none"
    max_objects: int = 16
    object_head: bool = False
    object_latent: int = 0
    object_posterior: str = "trusted"
    object_match_distinct: float = 0.8
    object_pin: float | None = None
    forward_mask: str = "learned"

    #: Fields that change what inference computes and never a training step (a run may resume
    #: with them changed: :meth:`seg2vid.training.stage2.Trainer.resume`).
    INFERENCE_ONLY = ("object_pin", "forward_mask")

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; choose one of {sorted(VARIANTS)}")
        if self.height % 16 or self.width % 16 or min(self.height, self.width) < 16:
            raise ValueError(
                f"height and width must be multiples of 16 (four stride-2 stages), got "
                f"{self.height}x{self.width}"
            )
        if self.frames < 1:
            raise ValueError(f"frames (T future frames) must be >= 1, got {self.frames}")
        if len(self.widths) != 4 or len(self.motion_widths) != 4:
            raise ValueError("widths and motion_widths need exactly 4 entries (4 stride-2 stages)")
        if len(self.refine_widths) < 2:
            raise ValueError("refine_widths needs at least 2 levels")
        if self.norm not in NORMS:
            raise ValueError(f"unknown norm {self.norm!r}; choose one of {NORMS}")
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {self.latent_dim}")
        channels = set(self.background_channels) | set(self.foreground_channels)
        if not channels or max(channels) >= self.label_channels or min(channels) < 0:
            raise ValueError(
                f"background/foreground channels must index the {self.label_channels} label channels"
            )
        if self.mask_head not in ("half", "full"):
            raise ValueError(f"mask_head must be 'half' or 'full', got {self.mask_head!r}")
        if self.flow_head not in ("half", "full"):
            raise ValueError(f"flow_head must be 'half' or 'full', got {self.flow_head!r}")
        if self.latent_prior not in ("standard", "fitted"):
            raise ValueError(f"latent_prior must be 'standard' or 'fitted', got {self.latent_prior!r}")
        if self.latent_prior == "fitted" and self.learned_prior:
            raise ValueError("latent_prior='fitted' replaces N(0, I) when sampling; it cannot be combined "
                             "with learned_prior=True")
        if self.object_motion not in ("none", "rigid"):
            raise ValueError(f"object_motion must be 'none' or 'rigid', got {self.object_motion!r}")
        if self.object_head and self.object_motion != "rigid":
            raise ValueError("object_head=True needs object_motion='rigid'")
        if self.object_latent < 0 or (self.object_latent and not self.object_head):
            raise ValueError(f"object_latent must be >= 0 and needs object_head=True, "
                             f"got {self.object_latent}")
        if self.object_posterior not in ("trusted", "full"):
            raise ValueError(f"object_posterior must be 'trusted' or 'full', got {self.object_posterior!r}")
        if self.object_posterior == "full" and not self.object_latent:
            raise ValueError("object_posterior='full' needs object_latent > 0")
        if self.max_objects < 1:
            raise ValueError(f"max_objects must be >= 1, got {self.max_objects}")
        if not 0 < self.object_match_distinct <= 1:
            raise ValueError(f"object_match_distinct must be in (0, 1], got {self.object_match_distinct}")
        if self.object_pin is not None and not (self.object_latent and 0 < self.object_pin <= 1):
            raise ValueError(f"object_pin must be None or in (0, 1], and needs object_latent > 0; got "
                             f"object_pin={self.object_pin}, object_latent={self.object_latent}")
        if self.forward_mask not in ("learned", "geometry"):
            raise ValueError(f"forward_mask must be 'learned' or 'geometry', got {self.forward_mask!r}")
        if self.forward_mask == "geometry" and self.object_motion != "rigid":
            raise ValueError("forward_mask='geometry' needs object_motion='rigid' (the objects' geometric "
                             "visibility is the mask)")
        if self.flow_time not in FLOW_TIMES:
            raise ValueError(f"flow_time must be one of {FLOW_TIMES}, got {self.flow_time!r}")
        if self.align_corners != ALIGN_CORNERS:
            raise ValueError(f"seg2vid.flow warps with align_corners={ALIGN_CORNERS}")

    @property
    def pixels_per_unit(self) -> float:
        """Flow (pixels) per unit of the flow heads' raw output."""
        return self.flow_scale if self.flow_scale is not None else max(self.height, self.width) / 16

    @classmethod
    def for_table(cls, table: LabelTable, **kwargs) -> Seg2VidConfig:
        """A config whose label channels and motion groups come from ``table``."""
        channels, background, foreground = _table_channels(table)
        return cls(
            label_channels=channels,
            background_channels=background,
            foreground_channels=foreground,
            **kwargs,
        )

    def replace(self, **changes) -> Seg2VidConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


#: Named configurations. "paper": the authors' Cityscapes setting (128x256, 1 + 4 frames, image
#: encoder widths 32-64-128-256). "tiny": small enough to train on a laptop CPU in minutes.
#: "tiny_motion": "tiny" with the issue-11 mask options (full-resolution mask head, the refiner's
#: gradient stopped at the masks), for the ``"motion"`` loss preset of :mod:`seg2vid.training.objective`.
#: "tiny_objects": "tiny_motion" whose label-map objects move as wholes, each with its own latent
#: (``object_motion="rigid"``, ``object_head``, ``object_latent=2``), for the ``"objects"`` loss preset;
#: its posterior reconstructions pin objects to their block matches (``object_pin=0.9``, chosen on
#: 256 validation clips in seg2vid 0.3.1, ``data/results/motion_experiments.md``).
PRESETS: dict[str, Seg2VidConfig] = {
    "tiny": Seg2VidConfig(),
    "tiny_motion": Seg2VidConfig(mask_head="full", refiner_mask_grad=False),
    "tiny_objects": Seg2VidConfig(mask_head="full", refiner_mask_grad=False, object_motion="rigid",
                                  object_head=True, object_latent=2, object_pin=0.9),
    "paper": Seg2VidConfig(
        height=128, width=256, frames=4, widths=(32, 64, 128, 256),
        motion_widths=(32, 64, 128, 128), refine_widths=(16, 32, 64, 128), latent_dim=16,
    ),
}


#: The buffers ``Seg2VidConfig(latent_prior="fitted")`` adds: the sampling prior (global mean and
#: scale, the objects' mean and scale), fitted after training, not trained weights.
FITTED_PRIOR_BUFFERS = ("fitted_mean", "fitted_scale", "object_fitted_mean", "object_fitted_scale")


@dataclass
class Seg2VidOutput:
    """What the model predicts for a batch (B = batch, T = future frames).

    Attributes:
        first_frame: (B, 3, H, W) the given frame.
        frames: (B, T, 3, H, W) refined future frames in [0, 1] -- the generated video.
        warped: (B, T, 3, H, W) the first frame warped with ``flow_fwd`` (before refinement).
        flow_fwd: (B, T, 2, H, W) pixels, frame 0 -> t, on frame t's grid.
        flow_bwd: (B, T, 2, H, W) pixels, frame t -> 0, on frame 0's grid.
        mask_fwd: (B, T, 1, H, W) in (0, 1): predicted visibility of frame t's pixels in frame 0.
        mask_bwd: (B, T, 1, H, W) in (0, 1): predicted visibility of frame 0's pixels in frame t.
        z: (B, 2 * latent_dim) the latent the video was decoded from.
        mu, logvar: (B, 2 * latent_dim) the posterior q(z | clip); None when sampling.
        prior_mu, prior_logvar: the learned prior, or None for N(0, I).
        objects: (B, K, H, W) the first frame's object masks (``object_motion="rigid"``; else None).
        object_shift: (B, T, K, 2) pixels, each object's displacement frame 0 -> t (x, y), or None.
        object_visibility: (B, T, 1, H, W) in [0, 1], detached: the forward visibility the
            objects' motion implies (what :func:`~seg2vid.models.objects.compose_object_motion`
            multiplies into ``mask_fwd``; the decoder's own mask is ``mask_fwd`` divided by it
            where it is > 0), or None.
        object_mu, object_logvar: (B, K, object_latent) the objects' posteriors (training with
            ``object_latent > 0``; else None).
        object_matched, object_trusted: (B, T, K, 2) pixels and (B, T, K) bool, the objects'
            block matching in the true clip that the posteriors read (the same; else None).
    """

    first_frame: Tensor
    frames: Tensor
    warped: Tensor
    flow_fwd: Tensor
    flow_bwd: Tensor
    mask_fwd: Tensor
    mask_bwd: Tensor
    z: Tensor
    mu: Tensor | None = None
    logvar: Tensor | None = None
    prior_mu: Tensor | None = None
    prior_logvar: Tensor | None = None
    objects: Tensor | None = None
    object_shift: Tensor | None = None
    object_visibility: Tensor | None = None
    object_mu: Tensor | None = None
    object_logvar: Tensor | None = None
    object_matched: Tensor | None = None
    object_trusted: Tensor | None = None

    @property
    def video(self) -> Tensor:
        """(B, T+1, 3, H, W): the first frame followed by the generated frames."""
        return torch.cat([self.first_frame.unsqueeze(1), self.frames], dim=1)

    def float32(self) -> Seg2VidOutput:
        """This output with every floating tensor as a contiguous float32 one (after autocast:
        losses and callers never see bfloat16 or channels-last tensors)."""
        return dataclasses.replace(self, **{
            f.name: value.float().contiguous()
            for f in dataclasses.fields(self)
            if isinstance(value := getattr(self, f.name), Tensor) and value.is_floating_point()
        })


def warp_and_fill(
    first_frame: Tensor, flow_fwd: Tensor, mask_fwd: Tensor, noise: Tensor
) -> tuple[Tensor, Tensor]:
    """Warp the first frame to every future frame, and fill what the masks call occluded.

    ``warped[:, t] = warp(first_frame, flow_fwd[:, t])`` (every frame from the FIRST frame, never
    chained), and the refiner's input ``filled = warped * mask + noise * (1 - mask)``: where the
    mask says "not visible in frame 0" the warp has nothing true to show, so it is replaced by
    noise (or zeros) that the refiner must paint over.

    Args:
        first_frame: (B, 3, H, W) in [0, 1].
        flow_fwd: (B, T, 2, H, W) pixels, frame 0 -> t, on frame t's grid.
        mask_fwd: (B, T, 1, H, W) in [0, 1], 1 = visible in frame 0.
        noise: (B, T, 3, H, W) the fill.
    Returns:
        ``(warped, filled)``, each (B, T, 3, H, W).
    """
    warped = warp(first_frame.unsqueeze(1), flow_fwd)
    return warped, warped * mask_fwd + noise * (1 - mask_fwd)


class ImageEncoder(nn.Module):
    """First frame + one-hot labels (B, 3 + L, H, W) -> features at 1/2, 1/4, 1/8, 1/16."""

    def __init__(self, in_channels: int, widths: tuple[int, ...], norm: Norm):
        super().__init__()
        stages, c_in = [], in_channels
        for w in widths:
            stages.append(nn.Sequential(conv2d_block(c_in, w, 2, norm), conv2d_block(w, w, 1, norm)))
            c_in = w
        self.stages = nn.ModuleList(stages)

    def forward(self, x: Tensor) -> list[Tensor]:
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


class MotionEncoder(nn.Module):
    """A Gaussian over z from an image stack (B, C, H, W): four stride-2 convs, global average
    pooling (so the latent size does not depend on H, W), then a :class:`GaussianHead`."""

    def __init__(self, in_channels: int, widths: tuple[int, ...], latent_dim: int, norm: Norm):
        super().__init__()
        layers, c_in = [], in_channels
        for w in widths:
            layers.append(conv2d_block(c_in, w, 2, norm))
            c_in = w
        self.convs = nn.Sequential(*layers)
        self.head = GaussianHead(c_in, latent_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.head(self.convs(x).mean(dim=(2, 3)))


class SpaceTimeConv(nn.Module):
    """(2+1)-D convolution over a clip of feature maps, then normalisation and LeakyReLU(0.2).

    A 3x3 convolution on every frame (C_in -> C_out), then a 3-tap convolution across time
    (C_out -> C_out, zero-padded at both ends): the receptive field of a 3x3x3 convolution.

    Shapes: (B * T, C_in, H, W), frames of a clip consecutive -> (B * T, C_out, H, W).
    """

    def __init__(self, c_in: int, c_out: int, frames: int, norm: Norm):
        super().__init__()
        self.frames = frames
        self.spatial = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.temporal = nn.Conv3d(c_out, c_out, (3, 1, 1), padding=(1, 0, 0), bias=norm == "none")
        self.norm = norm3d(norm, c_out)  # statistics over time and space, as for a 3-D convolution
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        y = self.spatial(x)
        bt, c, h, w = y.shape
        b = bt // self.frames
        y = y.view(b, self.frames, c, h * w).transpose(1, 2)  # (B, C, T, H*W)
        # The 3-tap temporal convolution, run as a 2-D one over (T, H*W) with the Conv3d's own
        # weights (C, C, 3, 1, 1): the same numbers, but PyTorch's CPU Conv3d returns NaN weight
        # gradients under bf16 autocast when T < 3 (found by the bf16 training test).
        y = F.conv2d(y, self.temporal.weight.squeeze(-1), self.temporal.bias, padding=(1, 0))
        y = self.act(self.norm(y.view(b, c, self.frames, h, w)))  # (B, C, T, H, W)
        return y.transpose(1, 2).reshape(bt, c, h, w)


def _extrapolate(corrections: Tensor) -> Tensor:
    """(B, T, C, H, W) per-frame corrections -> flows ``f[t] = sg(2 f[t-1] - f[t-2]) + c[t]``
    (f[-1] = f[0] = 0 before frame 1, so ``f[1] = c[1]``; ``sg`` = no gradient)."""
    flows: list[Tensor] = []
    zero = torch.zeros_like(corrections[:, 0])
    for t in range(corrections.shape[1]):
        previous = flows[t - 1] if t >= 1 else zero
        before = flows[t - 2] if t >= 2 else zero
        flows.append((2 * previous - before).detach() + corrections[:, t])
    return torch.stack(flows, dim=1)


class FlowDecoder(nn.Module):
    """(image features, z) -> per-frame flows and masks, with space-time convolutions across time."""

    def __init__(self, config: Seg2VidConfig):
        super().__init__()
        c, w = config, config.widths
        self.frames = c.frames
        self.scale = c.pixels_per_unit
        self.flow_time = c.flow_time
        self.fuse = conv2d_block(w[3] + 2 * c.latent_dim, w[3], 1, c.norm)
        # split the fused code into T per-frame codes of w[2] channels each
        self.split = nn.Conv2d(w[3], c.frames * w[2], 3, padding=1)
        self.up8 = SpaceTimeConv(w[2] + w[2], w[2], c.frames, c.norm)
        self.up4 = SpaceTimeConv(w[2] + w[1], w[1], c.frames, c.norm)
        self.up2 = SpaceTimeConv(w[1] + w[0], w[0], c.frames, c.norm)
        self.head = nn.Conv2d(w[0], 6, 3, padding=1)  # per frame: flow_fwd 2, flow_bwd 2, mask logits 2
        nn.init.normal_(self.head.weight, std=1e-3)  # start from ~zero flow...
        nn.init.zeros_(self.head.bias)
        with torch.no_grad():
            self.head.bias[4:] = c.mask_init_logit  # ...and masks ~0.95: "everything visible"
        #: Full-resolution mask head (``mask_head="full"``): upsampled features + the first frame.
        self.mask_full: nn.Sequential | None = None
        if c.mask_head == "full":
            self.mask_full = nn.Sequential(
                nn.Conv2d(w[0] + 3, 16, 3, padding=1), nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(16, 2, 3, padding=1),
            )
            nn.init.zeros_(self.mask_full[2].weight)  # start at the bias, as the half-res head
            nn.init.constant_(self.mask_full[2].bias, c.mask_init_logit)
        #: Full-resolution flow correction (``flow_head="full"``), added to the upsampled flows.
        self.flow_full: nn.Sequential | None = None
        if c.flow_head == "full":
            self.flow_full = nn.Sequential(
                nn.Conv2d(w[0] + 3, 16, 3, padding=1), nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(16, 4, 3, padding=1),
            )
            nn.init.zeros_(self.flow_full[2].weight)  # no correction at first
            nn.init.zeros_(self.flow_full[2].bias)

    def _up_and_join(self, x: Tensor, skip: Tensor) -> Tensor:
        # x: (B * T, C, h, w) per-frame codes; skip: (B, C_skip, 2h, 2w), the same for every frame
        if not torch.is_grad_enabled():
            # inference (generation): the same values written straight into the joined tensor,
            # the 2x nearest upsampling as its four phases and the skip broadcast over the
            # frames, instead of three full-size intermediates (upsampled, repeated, concatenated)
            bt, cx, h, w = x.shape
            b, cs = skip.shape[:2]
            joined = x.new_empty(b, self.frames, cx + cs, 2 * h, 2 * w)
            joined[:, :, cx:] = skip[:, None]
            joined = joined.view(bt, cx + cs, 2 * h, 2 * w)
            for i in range(2):
                for j in range(2):
                    joined[:, :cx, i::2, j::2] = x
            return joined
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return torch.cat([x, skip.repeat_interleave(self.frames, dim=0)], dim=1)

    def forward(self, features: list[Tensor], z: Tensor, size: tuple[int, int],
                image: Tensor | None = None, keep: list | None = None) -> tuple[Tensor, ...]:
        """(flow_fwd, flow_bwd) (B, T, 2, H, W) in pixels, (mask_fwd, mask_bwd) (B, T, 1, H, W).

        ``image``: the first frame (B, 3, H, W), read by the full-resolution heads only.
        ``keep``: a list that receives the last features (B * T, widths[0], H/2, W/2)."""
        out = self.raw(features, z, size, image, keep)
        flows = out[:, :, 0:4] * self.scale  # (B, T, 4, H, W): fwd 2, bwd 2
        if self.flow_time == "cumulative":  # frame t's output is the increment from t - 1 to t
            flows = flows.cumsum(dim=1)
        elif self.flow_time == "extrapolated":
            flows = _extrapolate(flows)
        flow_fwd, flow_bwd = flows[:, :, 0:2], flows[:, :, 2:4]
        return flow_fwd, flow_bwd, torch.sigmoid(out[:, :, 4:5]), torch.sigmoid(out[:, :, 5:6])

    def raw(self, features: list[Tensor], z: Tensor, size: tuple[int, int],
            image: Tensor | None = None, keep: list | None = None) -> Tensor:
        """The heads' raw output (B, T, 6, H, W), upsampled to ``size`` (with ``mask_head="full"``
        channels 4:6 come from the full-resolution mask head, with ``flow_head="full"`` channels
        0:4 get the full-resolution flow correction; both need ``image``)."""
        f2, f4, f8, f16 = features
        b, _, h16, w16 = f16.shape
        tiled = z[:, :, None, None].expand(-1, -1, h16, w16)
        code = self.split(self.fuse(torch.cat([f16, tiled], dim=1)))
        x = code.view(b * self.frames, -1, h16, w16)  # (B * T, C, h, w), frame-major per clip
        x = self.up8(self._up_and_join(x, f8))
        x = self.up4(self._up_and_join(x, f4))
        x = self.up2(self._up_and_join(x, f2))
        if keep is not None:
            keep.append(x)
        out = self.head(x)  # (B * T, 6, H/2, W/2)
        out = F.interpolate(out, size=size, mode="bilinear", align_corners=ALIGN_CORNERS)
        if self.mask_full is not None or self.flow_full is not None:
            if image is None:
                raise ValueError("the full-resolution heads need the first frame (image=...)")
            up = F.interpolate(x, size=size, mode="bilinear", align_corners=ALIGN_CORNERS)
            full_in = torch.cat([up, image.repeat_interleave(self.frames, dim=0)], dim=1)
            flows = out[:, :4] if self.flow_full is None else out[:, :4] + self.flow_full(full_in)
            masks = out[:, 4:] if self.mask_full is None else self.mask_full(full_in)
            out = torch.cat([flows, masks], dim=1)
        return out.view(b, self.frames, 6, *size)


class RefineNet(nn.Module):
    """A small U-Net applied to every frame: (filled frame, mask) -> refined frame in [0, 1].

    The 4 input channels at H x W are folded into 16 at H/2 x W/2 (``pixel_unshuffle``: every
    2x2 block becomes channels, nothing is discarded), the U-Net runs on levels at 1/2, 1/4 ...
    of the resolution (``widths``), and its 12-channel output is unfolded back to 3 channels at
    H x W (``pixel_shuffle``). It predicts a correction in logit space on top of its input,
    initialised to zero, so an untrained refiner passes the warped frame through and training
    starts from plain warping.
    """

    def __init__(self, widths: tuple[int, ...], norm: Norm):
        super().__init__()
        self.down = nn.ModuleList()
        c_in = 4 * 4
        for i, w in enumerate(widths):
            self.down.append(conv2d_block(c_in, w, 1 if i == 0 else 2, norm))
            c_in = w
        self.up = nn.ModuleList(
            conv2d_block(widths[i + 1] + widths[i], widths[i], 1, norm)
            for i in reversed(range(len(widths) - 1))
        )
        self.out = nn.Conv2d(widths[0], 3 * 4, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, filled: Tensor, mask: Tensor) -> Tensor:
        x = F.pixel_unshuffle(torch.cat([filled, mask], dim=1), 2)
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        for block, skip in zip(self.up, reversed(skips[:-1]), strict=True):
            x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
            x = block(torch.cat([x, skip], dim=1))
        base = torch.logit(filled.clamp(1e-3, 1 - 1e-3))
        return torch.sigmoid(base + F.pixel_shuffle(self.out(x), 2))


class Seg2Vid(nn.Module):
    """The stage-2 model. ``forward`` (training) encodes the true clip into z; :meth:`sample`
    (inference) draws z from the prior and needs only the first frame and its label map."""

    def __init__(self, config: Seg2VidConfig | None = None):
        super().__init__()
        self.config = c = config or Seg2VidConfig()
        motion_in = 3 + 3 * c.frames
        self.image_encoder = ImageEncoder(3 + c.label_channels, c.widths, c.norm)
        self.background_encoder = MotionEncoder(
            motion_in + len(c.background_channels), c.motion_widths, c.latent_dim, c.norm
        )
        self.foreground_encoder = MotionEncoder(
            motion_in + len(c.foreground_channels), c.motion_widths, c.latent_dim, c.norm
        )
        self.prior = (
            MotionEncoder(3 + c.label_channels, c.motion_widths, 2 * c.latent_dim, c.norm)
            if c.learned_prior else None
        )
        self.decoder = FlowDecoder(c)
        self.object_head = (ObjectMotionHead(c.widths[0], 2 * c.latent_dim, c.pixels_per_unit,
                                             object_latent=c.object_latent) if c.object_head else None)
        self.object_posterior = (
            ObjectPosterior(c.frames, c.object_latent, c.pixels_per_unit,
                            features=c.motion_widths[1] if c.object_posterior == "full" else 0)
            if c.object_latent else None)
        self.refiner = RefineNet(c.refine_widths, c.norm)
        self.register_buffer("_bg", torch.tensor(c.background_channels, dtype=torch.long), persistent=False)
        self.register_buffer("_fg", torch.tensor(c.foreground_channels, dtype=torch.long), persistent=False)
        if c.latent_prior == "fitted":  # the sampling prior N(m, S S^T); N(0, I) until fit_latent_prior()
            mean, scale, object_mean, object_scale = FITTED_PRIOR_BUFFERS
            self.register_buffer(mean, torch.zeros(2 * c.latent_dim))
            self.register_buffer(scale, torch.eye(2 * c.latent_dim))
            if c.object_latent:  # and the same for the objects' own latents
                self.register_buffer(object_mean, torch.zeros(c.object_latent))
                self.register_buffer(object_scale, torch.eye(c.object_latent))

    @property
    def latent_size(self) -> int:
        """Numbers in z (both motion encoders together)."""
        return 2 * self.config.latent_dim

    def latent_from_noise(self, eps: Tensor, first_frame: Tensor, labels: Tensor) -> Tensor:
        """The prior sample z (B, latent_size) for standard-normal noise ``eps`` (B, latent_size).

        ``latent_prior="fitted"``: ``m + S eps`` (in fp32, also under autocast); a learned prior:
        ``mu + exp(logvar / 2) * eps`` with p(z | first_frame (B, 3, H, W), one-hot labels); else
        ``eps`` (N(0, I)). The ``deterministic`` ablation always gets z = 0.
        """
        if self.config.variant == "deterministic":
            return torch.zeros_like(eps)
        if self.config.latent_prior == "fitted":
            with torch.autocast(eps.device.type, enabled=False):
                return self.fitted_mean + eps.float() @ self.fitted_scale.T
        prior = self.prior_params(first_frame, labels)
        return eps if prior is None else prior[0].float() + torch.exp(0.5 * prior[1].float()) * eps

    def object_latent_from_noise(self, eps: Tensor) -> Tensor:
        """The objects' prior sample z_k (B, K, object_latent) for standard-normal ``eps`` of that
        shape: ``m_k + S_k eps`` with ``latent_prior="fitted"`` (fitted to the training objects'
        posteriors, :meth:`fit_latent_prior`), else ``eps``; zeros for the ``deterministic`` ablation."""
        if self.config.variant == "deterministic":
            return torch.zeros_like(eps)
        if self.config.latent_prior == "fitted":
            with torch.autocast(eps.device.type, enabled=False):
                return self.object_fitted_mean + eps.float() @ self.object_fitted_scale.T
        return eps

    @staticmethod
    def _aggregate(mu: Tensor, logvar: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and Cholesky factor of the mixture of the Gaussians N(mu_i, diag exp(logvar_i))."""
        mu, logvar = mu.double(), logvar.double()
        cov = torch.cov(mu.T, correction=0) + torch.diag(logvar.exp().mean(0))
        return mu.mean(0), torch.linalg.cholesky(cov)

    @torch.no_grad()
    def fit_latent_prior(self, mu: Tensor, logvar: Tensor, object_mu: Tensor | None = None,
                         object_logvar: Tensor | None = None) -> None:
        """Fit the sampling prior (``latent_prior="fitted"``) to the posteriors of N training clips.

        The aggregate posterior, the mixture of the N Gaussians q(z | clip_i) = N(mu_i, diag
        exp(logvar_i)), has mean ``m = mean_i mu_i`` and covariance ``C = cov_i(mu_i) + diag(mean_i
        exp(logvar_i))`` (population covariance); the prior becomes N(m, C), stored as ``m`` and
        the Cholesky factor ``S`` of C, so a sample is ``m + S eps`` with eps ~ N(0, I).

        Args:
            mu, logvar: (N, latent_size) posteriors (:meth:`posterior`) of N >= 2 clips.
            object_mu, object_logvar: (M, object_latent) the posteriors of M >= 2 objects of such
                clips (``object_latent > 0``: required), fitted the same way for z_k.
        Raises:
            ValueError: the model does not sample from a fitted prior, or the shapes are wrong.
        """
        if self.config.latent_prior != "fitted":
            raise ValueError("fit_latent_prior() needs Seg2VidConfig(latent_prior='fitted')")
        if mu.shape != logvar.shape or mu.dim() != 2 or mu.shape[1] != self.latent_size or mu.shape[0] < 2:
            raise ValueError(f"mu and logvar must both be (N >= 2, {self.latent_size}), got "
                             f"{tuple(mu.shape)} and {tuple(logvar.shape)}")
        if self.config.object_latent:
            dk = self.config.object_latent
            if (object_mu is None or object_logvar is None or object_mu.shape != object_logvar.shape
                    or object_mu.dim() != 2 or object_mu.shape[1] != dk or object_mu.shape[0] < 2):
                raise ValueError(f"a model with object latents needs object_mu and object_logvar, both "
                                 f"(M >= 2, {dk})")
            mean, scale = self._aggregate(object_mu, object_logvar)
            self.object_fitted_mean.copy_(mean)
            self.object_fitted_scale.copy_(scale)
        mean, scale = self._aggregate(mu, logvar)
        self.fitted_mean.copy_(mean)
        self.fitted_scale.copy_(scale)

    # ------------------------------------------------------------------ input checks

    def _check(self, first_frame: Tensor, labels: Tensor, frames: Tensor | None = None) -> None:
        c = self.config
        if first_frame.dim() != 4 or first_frame.shape[1] != 3:
            raise ValueError(f"first frame must be (B, 3, H, W), got {tuple(first_frame.shape)}")
        b, _, h, w = first_frame.shape
        if (h, w) != (c.height, c.width):
            raise ValueError(f"frames are {h}x{w} but the model is configured for {c.height}x{c.width}")
        if labels.shape != (b, c.label_channels, h, w):
            hint = " (pass table.one_hot(label_map), not the integer map)" if labels.dim() == 3 else ""
            raise ValueError(
                f"labels must be one-hot (B, {c.label_channels}, H, W) = {(b, c.label_channels, h, w)}, "
                f"got {tuple(labels.shape)}{hint}"
            )
        if frames is not None and frames.shape != (b, c.frames + 1, 3, h, w):
            raise ValueError(
                f"frames must be (B, T+1, 3, H, W) = {(b, c.frames + 1, 3, h, w)}, got {tuple(frames.shape)}"
            )

    # ------------------------------------------------------------------ pieces

    def posterior(self, frames: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """q(z | clip): (mu, logvar), each (B, 2 * latent_dim); background half first."""
        motion = self._motion_input(frames)
        mu_b, lv_b = self.background_encoder(torch.cat([motion, labels[:, self._bg]], dim=1))
        mu_f, lv_f = self.foreground_encoder(torch.cat([motion, labels[:, self._fg]], dim=1))
        return torch.cat([mu_b, mu_f], dim=1), torch.cat([lv_b, lv_f], dim=1)

    @staticmethod
    def _motion_input(frames: Tensor) -> Tensor:
        """The motion encoders' image input: the first frame and each frame's difference from it,
        (B, T+1, 3, H, W) -> (B, 3 + 3T, H, W)."""
        first = frames[:, 0]
        return torch.cat([first, (frames[:, 1:] - first.unsqueeze(1)).flatten(1, 2)], dim=1)

    def prior_params(self, first_frame: Tensor, labels: Tensor) -> tuple[Tensor, Tensor] | None:
        """The learned prior's (mu, logvar), or None when the prior is N(0, I)."""
        if self.prior is None:
            return None
        return self.prior(torch.cat([first_frame, self._labels_seen(labels)], dim=1))

    def decode(self, first_frame: Tensor, labels: Tensor, z: Tensor,
               generator: torch.Generator | None = None, features: list[Tensor] | None = None,
               objects: Tensor | None = None, object_z: Tensor | None = None,
               object_pin: Tensor | None = None, forward_mask: str | None = None) -> Seg2VidOutput:
        """Decode latent ``z`` (B, 2 * latent_dim) into flows, masks and refined frames.

        ``features``: the image encoder's output for (first_frame, labels) when the caller has it
        already (:meth:`sample` encodes each input once for all its samples). ``objects`` (B, K,
        H, W) and ``object_z`` (B, K, object_latent): the label map's objects and their latents
        (``object_latent > 0``; :meth:`forward` passes the posterior's); without them the
        objects come from the label map and z_k from the objects' prior
        (:meth:`object_latent_from_noise`, noise drawn with ``generator``). ``object_pin``: (B, T, K, 2)
        pixels, displacements that replace the decoded ones
        (:func:`~seg2vid.models.objects.pin_to_matches`). ``forward_mask``: the reported
        ``mask_fwd``, ``"learned"`` or ``"geometry"`` (the objects' geometric visibility alone; the
        frames are the same), ``None`` (default): the config's ``Seg2VidConfig.forward_mask``; the
        training pass (:meth:`forward`) passes ``"learned"``."""
        if z.shape != (first_frame.shape[0], self.latent_size):
            raise ValueError(f"z must be (B, {self.latent_size}), got {tuple(z.shape)}")
        if forward_mask not in (None, "learned", "geometry") or (
                forward_mask == "geometry" and self.config.object_motion != "rigid"):
            raise ValueError(f"forward_mask must be None, 'learned' or 'geometry' (the last with "
                             f"object_motion='rigid'), got {forward_mask!r}")
        size = first_frame.shape[-2:]
        variant = self.config.variant
        labels = self._labels_seen(labels)
        if features is None:
            features = self.image_encoder(torch.cat([first_frame, labels], dim=1))
        if variant == "direct_pixels":
            # (B, T, 6, H, W): the first 3 channels are used
            raw = self.decoder.raw(features, z, size, first_frame)
            b, t = raw.shape[:2]
            base = torch.logit(first_frame.clamp(1e-3, 1 - 1e-3)).unsqueeze(1)
            pixels = torch.sigmoid(base + raw[:, :, :3])
            flow_fwd = flow_bwd = raw.new_zeros(b, t, 2, *size)
            mask_fwd = mask_bwd = raw.new_ones(b, t, 1, *size)
            refined = self.refiner(pixels.flatten(0, 1), mask_fwd.flatten(0, 1)).view(b, t, 3, *size)
            return Seg2VidOutput(first_frame, refined, pixels, flow_fwd, flow_bwd, mask_fwd, mask_bwd, z)
        kept: list[Tensor] = []
        flow_fwd, flow_bwd, mask_fwd, mask_bwd = self.decoder(features, z, size, first_frame, kept)
        if self.config.object_motion == "rigid":
            foreground = labels[:, self._fg]  # (B, C_fg, H, W), all zero for the no_labels ablation
            if objects is None:
                objects = label_segments(foreground, self.config.max_objects)
            if self.object_posterior is not None and object_z is None:
                shape = (*objects.shape[:2], self.config.object_latent)
                object_z = self.object_latent_from_noise(torch.randn(
                    shape, generator=generator, device=objects.device, dtype=objects.dtype))
            correction = (None if self.object_head is None
                          else self.object_head(kept[0], objects, z, object_z))
            flow_fwd, flow_bwd, mask_fwd, object_shift, object_visibility = compose_object_motion(
                objects, flow_fwd, flow_bwd, mask_fwd, foreground.sum(1, keepdim=True).clamp(max=1),
                correction, pinned=object_pin)
        if variant == "zero_flow":
            flow_fwd, flow_bwd = torch.zeros_like(flow_fwd), torch.zeros_like(flow_bwd)
        elif variant == "no_masks":
            mask_fwd, mask_bwd = torch.ones_like(mask_fwd), torch.ones_like(mask_bwd)
        b, t = flow_fwd.shape[:2]
        shape = (b, t, *first_frame.shape[1:])
        if self.config.noise_fill and variant != "deterministic":
            noise = torch.rand(shape, generator=generator, device=first_frame.device, dtype=first_frame.dtype)
        else:
            noise = first_frame.new_zeros(shape)
        # the gradient stop (refiner_mask_grad=False): the refiner reads the masks' values, but the
        # refined-frame losses cannot move them
        seen = mask_fwd if self.config.refiner_mask_grad else mask_fwd.detach()
        warped, filled = warp_and_fill(first_frame, flow_fwd, seen, noise)
        if variant == "no_refine":
            refined = warped
        else:
            refined = self.refiner(filled.flatten(0, 1), seen.flatten(0, 1)).view(b, t, 3, *size)
        out = Seg2VidOutput(first_frame, refined, warped, flow_fwd, flow_bwd, mask_fwd, mask_bwd, z)
        if self.config.object_motion == "rigid":
            if (forward_mask or self.config.forward_mask) == "geometry" and variant != "no_masks":
                # the reported occlusion estimate only: the refiner above composited with the
                # learned mask it was trained with, so the frames are those of "learned"
                out.mask_fwd = object_visibility
            out.objects, out.object_shift, out.object_visibility = objects, object_shift, object_visibility
        return out

    def _labels_seen(self, labels: Tensor) -> Tensor:
        """The label map as the networks see it (all zeros for the ``no_labels`` ablation)."""
        return torch.zeros_like(labels) if self.config.variant == "no_labels" else labels

    # ------------------------------------------------------------------ use

    def forward(self, frames: Tensor, labels: Tensor) -> Seg2VidOutput:
        """Training pass: encode the true clip, sample z from q(z | clip), decode.

        Args:
            frames: (B, T+1, 3, H, W) in [0, 1], the true clip (frames[:, 0] is given).
            labels: (B, L, H, W) one-hot label map of the first frame.
        """
        self._check(frames[:, 0] if frames.dim() == 5 else frames, labels, frames)
        if self.config.variant == "deterministic":  # z = 0: q = N(0, I) exactly, so the KL is 0
            mu = logvar = frames.new_zeros(frames.shape[0], self.latent_size)
            out = self.decode(frames[:, 0], labels, mu, forward_mask="learned")
        else:
            mu, logvar = self.posterior(frames, self._labels_seen(labels))
            objects = object_z = None
            posteriors = self.object_posteriors(frames, labels)
            if posteriors is not None:  # each object's latent, from its matching in the clip
                objects, matched, trusted, object_mu, object_logvar = posteriors
                object_z = reparameterize(object_mu, object_logvar)
            out = self.decode(frames[:, 0], labels, reparameterize(mu, logvar), objects=objects,
                              object_z=object_z, forward_mask="learned")
            if posteriors is not None:
                out.object_matched, out.object_trusted = matched, trusted
                out.object_mu, out.object_logvar = object_mu, object_logvar
        out.mu, out.logvar = mu, logvar
        prior = self.prior_params(frames[:, 0], labels)
        if prior is not None:
            out.prior_mu, out.prior_logvar = prior
        return out

    def reconstruct(self, frames: Tensor, labels: Tensor, generator: torch.Generator | None = None
                    ) -> Seg2VidOutput:
        """The POSTERIOR-MEAN reconstruction of a true clip: z = the mean of q(z | clip) (and each
        object's z_k = the mean of its posterior, with ``object_latent > 0``; z = 0 for the
        ``deterministic`` ablation). What the evaluation's posterior scores and the training
        samples show: can the model represent THIS clip's motion? With ``object_pin`` set, the
        objects are placed by their block matches in the clip instead (trusted at that ratio;
        :func:`~seg2vid.models.objects.pin_to_matches`).

        Args:
            frames: (B, T+1, 3, H, W) in [0, 1]; labels: (B, L, H, W) one-hot of the first frame.
            generator: seeds the fill noise.
        """
        self._check(frames[:, 0], labels, frames)
        if self.config.variant == "deterministic":
            return self.decode(frames[:, 0], labels, frames.new_zeros(frames.shape[0], self.latent_size),
                               generator=generator)
        mu, _ = self.posterior(frames, self._labels_seen(labels))
        posteriors = self.object_posteriors(frames, labels)
        objects, object_mu = (None, None) if posteriors is None else (posteriors[0], posteriors[3])
        pin = None
        if self.config.object_pin is not None and objects is not None:
            # matched again at the pin's ratio: the tracking depends on which matches are trusted
            pin = pin_to_matches(*match_objects(frames, objects, distinct=self.config.object_pin))
        return self.decode(frames[:, 0], labels, mu, generator=generator, objects=objects, object_z=object_mu,
                           object_pin=pin)

    def object_posteriors(self, frames: Tensor, labels: Tensor
                          ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor] | None:
        """The objects' posteriors q(z_k | clip) (``object_latent > 0``; else None).

        Args:
            frames: (B, T+1, 3, H, W) the true clip in [0, 1]; labels: (B, L, H, W) one-hot.
        Returns:
            ``(objects, matched, trusted, mu, logvar)``: the first label map's objects (B, K, H, W),
            their block matching in the clip (B, T, K, 2) pixels and (B, T, K) bool
            (:func:`~seg2vid.models.objects.match_objects`), and the posteriors (B, K, object_latent).
        """
        if self.object_posterior is None:
            return None
        seen = self._labels_seen(labels)
        objects = label_segments(seen[:, self._fg], self.config.max_objects)
        distinct = self.config.object_match_distinct
        if self.config.object_posterior == "trusted":
            matched, trusted = match_objects(frames, objects, distinct=distinct)
            mu, logvar = self.object_posterior(matched, trusted, objects)
        else:  # also the untrusted matches, the confidences and the motion features over each object
            matched, trusted, confidence = match_objects(frames, objects, distinct=distinct,
                                                         with_confidence=True)
            x = torch.cat([self._motion_input(frames), seen[:, self._fg]], dim=1)
            # (B, motion_widths[1], H/4, W/4); posterior() ran these two convolutions on the same
            # input already -- recomputed here (small, at H/2 and H/4) to keep its signature
            features = self.foreground_encoder.convs[:2](x)
            mu, logvar = self.object_posterior(matched, trusted, objects, confidence, features)
        return objects, matched, trusted, mu, logvar

    @torch.no_grad()
    def sample(self, first_frame: Tensor, labels: Tensor, n_samples: int = 1,
               generator: torch.Generator | None = None, precision: str = "fp32") -> Seg2VidOutput:
        """Generate ``n_samples`` futures per input from the prior (N(0, I), or the fitted one of
        ``latent_prior="fitted"``, or the learned p(z | first frame)): NO future frames needed.

        Args:
            first_frame: (B, 3, H, W) in [0, 1].
            labels: (B, L, H, W) one-hot label map of the first frame.
            n_samples: futures per input.
            generator: seeds z and the fill noise (same generator state, same videos).
            precision: ``"fp32"`` (default: the exact videos), ``"bf16"`` (the network under
                bfloat16 autocast on channels-last tensors: 1.48x faster per clip on this
                project's AVX-512 BF16 CPU, ``benchmarks/README.md``; native on CUDA since Ampere;
                the videos differ from fp32 by about a tenth of an 8-bit grey level on average,
                ``benchmarks/bench_model.py`` prints by how much) or ``"auto"`` (bf16 where
                :func:`seg2vid.utils.bf16_supported`). z and the noise are drawn in fp32 either
                way, so the same seed gives the same futures.
        Returns:
            a :class:`Seg2VidOutput` with batch B * n_samples, the samples of input i at
            rows i * n_samples ... (i + 1) * n_samples - 1; every tensor float32.
        """
        self._check(first_frame, labels)
        bf16 = uses_bf16(precision, first_frame.device)
        if bf16:
            first_frame = first_frame.contiguous(memory_format=torch.channels_last)
            labels = labels.contiguous(memory_format=torch.channels_last)
        first = first_frame.repeat_interleave(n_samples, dim=0)
        lab = labels.repeat_interleave(n_samples, dim=0)
        eps = torch.randn(first.shape[0], self.latent_size, generator=generator,
                          device=first.device, dtype=first.dtype)
        with torch.autocast(first.device.type, dtype=torch.bfloat16, enabled=bf16):
            z = self.latent_from_noise(eps, first, lab)
            features = None
            if n_samples > 1:
                # the first frame and labels are the same for all samples of an input: encode them once
                features = self.image_encoder(torch.cat([first_frame, self._labels_seen(labels)], dim=1))
                features = [f.repeat_interleave(n_samples, dim=0) for f in features]
            out = self.decode(first, lab, z, generator=generator, features=features)
        return out.float32() if bf16 else out
