"""The stage-2 training objective: the paper's nine loss terms, weighted, from one model output.

:func:`seg2vid_loss` turns a :class:`~seg2vid.models.seg2vid.Seg2VidOutput` and the true clip into
the weighted total and a dict of the UNWEIGHTED terms (for logs). The weights live in a frozen
:class:`LossConfig` whose defaults are the authors' (see the losses table of the method notes):

=============== ======= ===================================================================
term            weight  what (B clips, T future frames; "mean" = over every pixel)
=============== ======= ===================================================================
recon           2       L1(refined frames, true frames t = 1..T)
recon_before    1       mean of mask_fwd * |warped - true|: the warp alone, before refinement
recon_back      1       mean of mask_bwd * |warp(frame_t, flow_bwd) - frame_0|
ssim            1       0.85 * (1 - SSIM) / 2 + 0.15 * L1 on the refined frames
perceptual      1       L1 between VGG-19 features of the WARPED and the true frames
consistency     1       forward-backward flow consistency, both directions, mask-gated
smoothness      0.01    edge-aware smoothness of EVERY forward and backward flow
kl              8e-4    KL(q(z | clip) || prior), nats per clip (see :class:`LossConfig`)
mask            0.1     mean(1 - mask_fwd) + mean(1 - mask_bwd)
=============== ======= ===================================================================

How the masks gate a term: the gated per-pixel map ``mask * error`` is averaged over ALL pixels
(not divided by the mask's sum), as the authors did. A pixel marked occluded then costs nothing in
the photometric terms and ``weight_mask * 1`` in the mask term, so for one pixel the gradient
pushes its mask towards 0 exactly when its weighted error exceeds the mask term's price (0.1 per
unit of mask for ``recon_before``): the masks learn "occluded = the warp cannot explain it"
with a threshold set by the weights, instead of relative to the frame's average error.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from seg2vid.config_base import FrozenConfig
from seg2vid.cvae import kl_diagonal_gaussian
from seg2vid.flow import forward_backward_occlusion, warp
from seg2vid.losses import (
    forward_backward_consistency_loss,
    photometric_l1,
    smoothness_loss,
    ssim_photometric,
)
from seg2vid.motion_losses import (
    flow_supervision,
    match_objects,
    multiscale_warp_error,
    object_match_loss,
    second_order_smoothness,
    visibility_supervision,
)

if TYPE_CHECKING:
    from seg2vid.models.seg2vid import Seg2VidOutput
    from seg2vid.training.perceptual import VGGPerceptual

__all__ = ["ALL_TERMS", "EXTRA_TERMS", "LOSS_PRESETS", "TERMS", "LossConfig", "PerceptualOffWarning",
           "loss_preset", "seg2vid_loss"]

#: The authors' loss terms, in the order they are logged.
TERMS: tuple[str, ...] = (
    "recon", "recon_before", "recon_back", "ssim", "perceptual", "consistency", "smoothness", "kl", "mask",
)
#: Terms this project added (issue 11), all off (weight 0) by default:
#: ``mask_fb`` -- cross-entropy of the masks against the forward-backward check of the model's own
#: (detached) flows; ``oracle_flow`` / ``oracle_visibility`` -- the ORACLE's supervision with the
#: exact flow / visibility (an upper bound for tables, never a recipe; needs ``truth``).
#: ``object_match`` -- the objects' rigid displacements (``Seg2VidConfig.object_motion="rigid"``) against
#: block matching of the true frames (:func:`seg2vid.motion_losses.match_objects`; no flow label).
EXTRA_TERMS: tuple[str, ...] = ("mask_fb", "object_match", "oracle_flow", "oracle_visibility")
#: Every term, in log order.
ALL_TERMS: tuple[str, ...] = TERMS + EXTRA_TERMS

#: The authors' per-GPU batch: their KL is summed over the batch, so its per-clip weight is
#: lamda (0.1) * 8 clips / 1000.
_AUTHORS_BATCH = 8


class PerceptualOffWarning(UserWarning):
    """The perceptual term has a weight but no VGG-19 was given, so it is skipped."""


@dataclass(frozen=True)
class LossConfig(FrozenConfig):
    """Weights of the stage-2 loss terms (0 switches a term off: it is not even computed).

    Args:
        recon, recon_before, recon_back, ssim, perceptual, consistency, smoothness, mask: the
            authors' weights (see the module docstring for what each term measures).
        kl: weight of the KL in nats PER CLIP (KL summed over the latent dimensions, averaged
            over the batch). The authors' code sums the KL over the batch and the latent, divides
            it by 1000 and weights it by ``lamda = 0.1`` (the "0.1 / 1000 of the sum" of the
            method notes); with their 8 clips per GPU that is ``0.1 * 8 / 1000 = 8e-4`` per
            clip, which is the default here. Averaging over the batch keeps the weight from
            changing with the batch size, as every other term (pixel means) already does.
            Their latent was a map tied to the resolution (many more dimensions than ours), so
            their KL in nats was larger for the same per-dimension divergence: raise this
            weight if samples from the prior look unlike posterior reconstructions.
        kl_warmup_steps: linear KL annealing: the KL weight is ``kl * min(1, (step + 1) / N)``
            at (0-based) optimiser step ``step``; 0 = full weight from the start (the authors').
        object_kl: the weight of the objects' latents' KL (``Seg2VidConfig.object_latent > 0``)
            relative to the global one (1 = the same price per nat).
        ssim_alpha: share of the SSIM part in the ``ssim`` term (0.85, the authors').
        edge_scale: how strongly image edges switch the smoothness penalty off (per unit of
            intensity difference, images in [0, 1]; see :func:`seg2vid.losses.smoothness_loss`).
        visibility_balanced: the visibility cross-entropies (``mask_fb``, ``oracle_visibility``)
            weight occluded and visible pixels equally
            (:func:`seg2vid.motion_losses.visibility_supervision`); off = the plain mean.
        perceptual_precision, perceptual_channels_last, perceptual_downsample: how the VGG-19 of
            the perceptual term runs (issue 15; see :class:`~seg2vid.training.perceptual.VGGPerceptual`):
            ``"fp32"`` / ``"bf16"`` (autocast; ~2x faster convolutions where
            :func:`~seg2vid.training.perceptual.bf16_supported`) / ``"auto"``; NHWC layout; and
            ``downsample=k`` for the lower-resolution term on k x k average-pooled frames (another
            loss, k^2 times cheaper). The defaults are the authors' full-resolution fp32 term.
    """

    recon: float = 2.0
    recon_before: float = 1.0
    recon_back: float = 1.0
    ssim: float = 1.0
    perceptual: float = 1.0
    consistency: float = 1.0
    smoothness: float = 0.01
    kl: float = 0.1 * _AUTHORS_BATCH / 1000
    mask: float = 0.1
    kl_warmup_steps: int = 0
    ssim_alpha: float = 0.85
    edge_scale: float = 10.0
    photometric: str = "l1"
    photometric_scales: int = 1
    census_radius: int = 3
    smoothness_order: int = 1
    mask_free_after: int = 0
    mask_price: str = "constant"
    mask_fb: float = 0.0
    object_match: float = 0.0
    object_kl: float = 1.0
    oracle_flow: float = 0.0
    oracle_visibility: float = 0.0
    visibility_balanced: bool = False
    perceptual_precision: str = "fp32"
    perceptual_channels_last: bool = False
    perceptual_downsample: int = 1

    def __post_init__(self) -> None:
        negative = [name for name in ALL_TERMS if getattr(self, name) < 0]
        if negative:
            raise ValueError(f"loss weights must be >= 0 (0 switches a term off); negative: {negative}")
        if self.object_kl < 0:
            raise ValueError(f"object_kl must be >= 0, got {self.object_kl}")
        if self.kl_warmup_steps < 0:
            raise ValueError(f"kl_warmup_steps must be >= 0, got {self.kl_warmup_steps}")
        if not 0 <= self.ssim_alpha <= 1:
            raise ValueError(f"ssim_alpha must be in [0, 1], got {self.ssim_alpha}")
        if self.photometric not in ("l1", "census", "l1+census"):
            raise ValueError(f"photometric must be 'l1', 'census' or 'l1+census', got {self.photometric!r}")
        if self.photometric_scales < 1 or self.census_radius < 1:
            raise ValueError("photometric_scales and census_radius must be >= 1")
        if self.smoothness_order not in (1, 2):
            raise ValueError(f"smoothness_order must be 1 or 2, got {self.smoothness_order}")
        if self.mask_free_after < 0:
            raise ValueError(f"mask_free_after must be >= 0, got {self.mask_free_after}")
        if self.mask_price not in ("constant", "relative"):
            raise ValueError(f"mask_price must be 'constant' or 'relative', got {self.mask_price!r}")
        if self.perceptual_precision not in ("fp32", "bf16", "auto"):
            raise ValueError(f"perceptual_precision must be 'fp32', 'bf16' or 'auto', got "
                             f"{self.perceptual_precision!r}")
        if self.perceptual_downsample < 1:
            raise ValueError(f"perceptual_downsample must be >= 1, got {self.perceptual_downsample}")

    @property
    def needs_truth(self) -> bool:
        """True when an oracle term is on (the loss then needs the exact flow / visibility)."""
        return self.oracle_flow > 0 or self.oracle_visibility > 0

    def weight(self, term: str, step: int = 0) -> float:
        """The weight of ``term`` at 0-based optimiser step ``step`` (KL annealing included)."""
        if term not in ALL_TERMS:
            raise KeyError(f"unknown loss term {term!r}; terms: {', '.join(ALL_TERMS)}")
        w = getattr(self, term)
        if term == "kl" and self.kl_warmup_steps:
            w *= min(1.0, (step + 1) / self.kl_warmup_steps)
        return w

    @classmethod
    def for_pixel_flows(cls, width: int, **overrides) -> LossConfig:
        """The authors' weights, converted for flows in PIXELS at image width ``width``.

        The authors' consistency and smoothness weights were set for flows in normalised grid
        units (``align_corners=True``: 2 / (W - 1) per pixel). Both terms measure flow, so in
        pixels they come out (W - 1) / 2 times larger (31.5 at 64 px) and, with the table's
        weights, keep the flow at zero and the latent unused. This scales both weights by
        2 / (width - 1); lesson 04 shows the failure. ``seg2vid train`` uses it by default.
        """
        if width < 2:
            raise ValueError(f"width must be >= 2 pixels, got {width}")
        scale = 2 / (width - 1)
        paper = cls()
        values = {"consistency": paper.consistency * scale, "smoothness": paper.smoothness * scale}
        return cls(**{**values, **overrides})


#: Named objectives (see :func:`loss_preset`): ``"authors"`` -- the method notes' table as the
#: authors weighted it (flows in normalised grid units); ``"pixel_flows"`` -- the same with the
#: consistency and smoothness weights converted for flows in pixels (``seg2vid train``'s
#: default, :meth:`LossConfig.for_pixel_flows`); ``"oracle"`` -- ``pixel_flows`` plus
#: supervision with the exact flow and visibility (an upper bound, never a recipe); ``"motion"`` --
#: the issue-11 experiment recipe (``data/results/motion_experiments.md``, run A1): ``pixel_flows``
#: with l1 + census warp terms at 3 scales, second-order smoothness (0.05), masks held for 300
#: steps, and the forward-backward mask target (0.1). Use it with the ``tiny_motion`` model preset.
#: ``"objects"`` -- ``"motion"`` plus the objects' block-matching target (``object_match``), for
#: the ``tiny_objects`` model preset.
LOSS_PRESETS: tuple[str, ...] = ("authors", "pixel_flows", "oracle", "motion", "objects")

#: The overrides of the ``"motion"`` preset (on top of ``pixel_flows``).
MOTION_LOSS: dict = {"photometric": "l1+census", "photometric_scales": 3, "smoothness_order": 2,
                     "smoothness": 0.05, "mask_free_after": 300, "mask_fb": 0.1}
#: What the ``"objects"`` preset adds to ``"motion"``.
OBJECTS_LOSS: dict = {"object_match": 0.1}


def loss_preset(name: str, width: int = 64, **overrides) -> LossConfig:
    """The named objective of :data:`LOSS_PRESETS` for frames ``width`` pixels wide, with overrides."""
    if name == "authors":
        return LossConfig(**overrides)
    if name == "pixel_flows":
        return LossConfig.for_pixel_flows(width, **overrides)
    if name == "motion":
        return LossConfig.for_pixel_flows(width, **{**MOTION_LOSS, **overrides})
    if name == "objects":
        return LossConfig.for_pixel_flows(width, **{**MOTION_LOSS, **OBJECTS_LOSS, **overrides})
    if name == "oracle":
        return LossConfig.for_pixel_flows(
            width, **{"oracle_flow": 1.0, "oracle_visibility": 1.0, **overrides})
    raise KeyError(f"unknown loss preset {name!r}; choose one of {', '.join(LOSS_PRESETS)}")


def _gated(loss_map: Tensor) -> Tensor:
    # The authors' gating: mean over ALL pixels of mask * error (see the module docstring).
    return loss_map.mean()


def seg2vid_loss(
    output: Seg2VidOutput,
    frames: Tensor,
    config: LossConfig | None = None,
    step: int = 0,
    perceptual: VGGPerceptual | None = None,
    truth: dict[str, Tensor] | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """The weighted stage-2 objective and its unweighted terms.

    Args:
        output: what :meth:`Seg2Vid.forward` returned for ``frames`` (it must hold the
            posterior ``mu``/``logvar``: a training pass, not :meth:`Seg2Vid.sample`).
            Fields used: ``frames``/``warped`` (B, T, 3, H, W) in [0, 1]; ``flow_fwd``/``flow_bwd``
            (B, T, 2, H, W) pixels; ``mask_fwd``/``mask_bwd`` (B, T, 1, H, W) in (0, 1);
            ``mu``/``logvar`` (and ``prior_mu``/``prior_logvar`` for a learned prior) (B, D).
        frames: (B, T+1, 3, H, W) the true clip in [0, 1]; ``frames[:, 0]`` is the given frame.
        config: the weights (default: the authors', :class:`LossConfig`).
        step: 0-based optimiser step, for KL annealing.
        perceptual: a :class:`~seg2vid.training.perceptual.VGGPerceptual`; ``None`` skips the perceptual
            term (with a :class:`PerceptualOffWarning`, shown once per call site, when its
            weight is not 0).
        truth: the exact ``flow_fwd``/``flow_bwd`` (B, T, 2, H, W) and ``visible_fwd``/
            ``visible_bwd`` (B, T, 1, H, W) of the clip, for the ORACLE terms only (else unused).
    Returns:
        ``(total, terms)``: ``total`` a 0-d tensor with gradient, ``sum_k weight_k * term_k``;
        ``terms`` maps each computed term (weight > 0, in :data:`TERMS` order) to its
        UNWEIGHTED, detached 0-d value. Units: intensity (L1 terms, images in [0, 1]),
        pixels (consistency), pixels per pixel (smoothness), nats per clip (kl).
    """
    config = config or LossConfig()
    b, t = output.frames.shape[:2]
    if frames.shape != (b, t + 1, *output.frames.shape[2:]):
        raise ValueError(
            f"frames must be the true clip (B, T+1, 3, H, W) = {(b, t + 1, *output.frames.shape[2:])} "
            f"for this output, got {tuple(frames.shape)}"
        )
    if output.mu is None or output.logvar is None:
        raise ValueError("the output holds no posterior (mu, logvar): pass forward()'s, not sample()'s")
    first, future = frames[:, :1], frames[:, 1:]
    # the mask schedule: before mask_free_after steps every pixel counts as visible in the loss
    masks_free = step >= config.mask_free_after
    gate_fwd = output.mask_fwd if masks_free else torch.ones_like(output.mask_fwd)
    gate_bwd = output.mask_bwd if masks_free else torch.ones_like(output.mask_bwd)
    authors_warp = config.photometric == "l1" and config.photometric_scales == 1

    def warp_error(source: Tensor, flow: Tensor, target: Tensor, gate: Tensor) -> Tensor:
        return multiscale_warp_error(source, flow, target, gate, config.photometric_scales,
                                     config.photometric, config.census_radius)

    def recon() -> Tensor:
        return photometric_l1(output.frames, future)

    def recon_before() -> Tensor:
        if authors_warp:
            return _gated(photometric_l1(output.warped, future, gate_fwd, reduction="none"))
        return warp_error(first, output.flow_fwd, future, gate_fwd)

    def recon_back() -> Tensor:
        # flow_bwd lives on frame 0's grid: warping frame t with it rebuilds frame 0
        if authors_warp:
            back = warp(future, output.flow_bwd)
            return _gated(photometric_l1(back, first, gate_bwd, reduction="none"))
        return warp_error(future, output.flow_bwd, first.expand_as(future), gate_bwd)

    def ssim() -> Tensor:
        return ssim_photometric(output.frames, future, alpha=config.ssim_alpha)

    def perceptual_term() -> Tensor:
        # On the WARPED frames, as the authors: it trains the flow through features with large
        # receptive fields (a gradient for displacements beyond the reach of a bilinear pixel
        # loss) and leaves the refiner to the pixel terms instead of pushing it to paint textures.
        return perceptual(output.warped.flatten(0, 1), future.flatten(0, 1),
                          precision=config.perceptual_precision,
                          channels_last=config.perceptual_channels_last,
                          downsample=config.perceptual_downsample)

    def consistency() -> Tensor:
        # f + warp(b, f) = 0 on frame t's grid where mask_fwd says visible, and the same with the
        # roles swapped on frame 0's grid (see seg2vid.flow.forward_backward_occlusion)
        fwd = forward_backward_consistency_loss(output.flow_fwd, output.flow_bwd, gate_fwd, "none")
        bwd = forward_backward_consistency_loss(output.flow_bwd, output.flow_fwd, gate_bwd, "none")
        return _gated(fwd) + _gated(bwd)

    def smoothness() -> Tensor:
        # every frame, both flows (the authors' code smoothed frame 1 only); the edges are those of
        # the frame each flow lives on: frame t for flow_fwd[t], frame 0 for flow_bwd[t]
        if config.smoothness_order == 2:
            return (second_order_smoothness(output.flow_fwd, future, config.edge_scale)
                    + second_order_smoothness(output.flow_bwd, first, config.edge_scale))
        fwd = smoothness_loss(output.flow_fwd, future, edge_scale=config.edge_scale)
        bwd = smoothness_loss(output.flow_bwd, first, edge_scale=config.edge_scale)
        return fwd + bwd

    def kl() -> Tensor:
        value = kl_diagonal_gaussian(output.mu, output.logvar, output.prior_mu, output.prior_logvar)
        if output.object_mu is not None and output.object_logvar is not None and output.objects is not None:
            # every object's own latent against N(0, I), summed over the objects of a clip
            real = (output.objects.sum((2, 3)) > 0).to(value.dtype)  # (B, K)
            per_object = kl_diagonal_gaussian(output.object_mu, output.object_logvar, reduction="none")
            value = value + config.object_kl * (per_object * real).sum(1).mean()
        return value

    def mask() -> Tensor:
        if not masks_free:  # the schedule: no price (and so no gradient) before the masks are freed
            return output.mask_fwd.new_zeros(())
        if config.mask_price == "relative":
            # the calibrated price: each frame's median warp error (no gradient through it)
            with torch.no_grad():
                err_f = photometric_l1(output.warped, future, reduction="none")
                err_b = photometric_l1(warp(future, output.flow_bwd), first, reduction="none")
                c_f = err_f.flatten(2).median(dim=2).values[..., None, None, None]  # (B, T, 1, 1, 1)
                c_b = err_b.flatten(2).median(dim=2).values[..., None, None, None]
            return ((1 - output.mask_fwd) * c_f).mean() + ((1 - output.mask_bwd) * c_b).mean()
        return (1 - output.mask_fwd).mean() + (1 - output.mask_bwd).mean()

    def mask_fb() -> Tensor:
        with torch.no_grad():  # the check on the model's own flows is a target, not a path
            vis_f = forward_backward_occlusion(output.flow_fwd, output.flow_bwd)
            vis_b = forward_backward_occlusion(output.flow_bwd, output.flow_fwd)
        balanced = config.visibility_balanced
        return (visibility_supervision(output.mask_fwd, vis_f, balanced)
                + visibility_supervision(output.mask_bwd, vis_b, balanced))

    def object_match() -> Tensor:
        if output.object_shift is None or output.objects is None:
            raise ValueError("object_match needs a model with object_motion='rigid' "
                             "(its output has no objects)")
        if output.object_matched is not None and output.object_trusted is not None:
            target, trusted = output.object_matched, output.object_trusted  # the posterior's, reused
        else:
            target, trusted = match_objects(frames, output.objects)
        return object_match_loss(output.object_shift, target, trusted)

    def need(key: str) -> Tensor:
        if truth is None or key not in truth:
            raise ValueError(
                f"an oracle term is on but truth[{key!r}] was not given (the exact flow/visibility)")
        return truth[key].to(output.flow_fwd.device, output.flow_fwd.dtype)

    def oracle_flow() -> Tensor:
        return (flow_supervision(output.flow_fwd, need("flow_fwd"))
                + flow_supervision(output.flow_bwd, need("flow_bwd")))

    def oracle_visibility() -> Tensor:
        balanced = config.visibility_balanced
        return (visibility_supervision(output.mask_fwd, need("visible_fwd"), balanced)
                + visibility_supervision(output.mask_bwd, need("visible_bwd"), balanced))

    compute = {
        "recon": recon, "recon_before": recon_before, "recon_back": recon_back, "ssim": ssim,
        "perceptual": perceptual_term, "consistency": consistency, "smoothness": smoothness,
        "kl": kl, "mask": mask, "mask_fb": mask_fb, "object_match": object_match, "oracle_flow": oracle_flow,
        "oracle_visibility": oracle_visibility,
    }
    if perceptual is None and config.perceptual > 0:
        warnings.warn(
            "perceptual loss is OFF: no VGG-19 weights were given (see seg2vid.training.perceptual); "
            "training goes on with the other terms",
            PerceptualOffWarning,
            stacklevel=2,
        )
    total = output.frames.new_zeros(())
    terms: dict[str, Tensor] = {}
    for name in ALL_TERMS:
        if getattr(config, name) == 0 or (name == "perceptual" and perceptual is None):
            continue
        value = compute[name]()
        terms[name] = value.detach()
        total = total + config.weight(name, step) * value
    return total, terms
