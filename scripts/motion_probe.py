#!/usr/bin/env python
"""Probe the flow-magnitude problem of issue 11 (``data/results/motion_experiments.md``, 2026-12-01).

Two parts, on the rich test streets (64x64, 1 + 4 frames, seed 7,000,000):

* ``landscape`` (no model): the photometric warp terms along the exact flow scaled by a, and the
  cosine between their negative gradient at a = 0.3 / 0.6 and the direction to the truth.
* ``--checkpoint PT``: what a trained stage-2 model decodes -- the posterior (mean z) and prior
  speeds of 8 clips next to the true ones, the latent's use (per-dimension spread of mu, KL) and, on
  the fast clips (mean |flow| > 4 px), the true and predicted mean |flow| per frame; and its
  posterior FORWARD masks on 64 clips: the share of pixels they mark occluded and their IoU with
  the exact occlusion (pooled over pixels) at the thresholds 0.5 (the evaluation's), 0.7 and 0.9
  -- calibration or placement?

Usage, from the repository root (a few seconds each)::

    python scripts/motion_probe.py landscape
    python scripts/motion_probe.py --checkpoint runs2/C3_cum_warponly/checkpoints/last.pt
    python scripts/motion_probe.py --checkpoint data/checkpoints/seg2vid_tiny_64.pt --geometry

``--geometry`` (2026-12-01, second session): could forward masks come from the label map and the
flows? See :func:`geometry`.

``--bounds`` (2026-12-02, sixth session), for the same models: the forward IoU's standard error on
64 clips, and what exact object motion would give. See :func:`bounds`. Its first rows are the
model's own posterior, pinned to the block matches when the model's ``object_pin`` is set (0.3.1).

``--objects`` (2026-12-02, fourth session), for a model with ``object_latent > 0``: how far each
object's posterior displacement is from the least-squares fit of the EXACT flow over it, split by
whether its block match was trusted, and the matcher's trust settings on validation clips. See
:func:`objects`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from seg2vid.data.labels import CITYSCAPES  # noqa: E402
from seg2vid.data.splits import TEST_SEED  # noqa: E402
from seg2vid.evaluation.evaluate import synthetic_test_set  # noqa: E402
from seg2vid.evaluation.motion_eval import speed  # noqa: E402
from seg2vid.motion_losses import multiscale_warp_error  # noqa: E402


def test_clips(n: int, seed: int = TEST_SEED) -> dict[str, torch.Tensor]:
    """The first ``n`` rich test clips (or those of another split's ``seed``), stacked: frames,
    flow_fwd, flow_bwd, visible_fwd, label_map."""
    data = synthetic_test_set(64, 64, 4, n, seed, style="rich")
    clips = [data[i] for i in range(n)]
    out = {k: torch.stack([c[k] for c in clips]) for k in ("frames", "flow_fwd", "flow_bwd", "visible_fwd")}
    out["label_map"] = torch.stack([c["labels"][0] for c in clips])
    return out


def landscape(n: int = 16) -> None:
    """Print the warp terms along a * exact flow and their gradient's alignment with the truth."""
    b = test_clips(n)
    fast = speed(b["flow_fwd"]) > 4
    flow, src, tgt = b["flow_fwd"][fast], b["frames"][fast, :1], b["frames"][fast, 1:]
    vis = b["visible_fwd"][fast].float()
    print(f"{int(fast.sum())} fast clips of {n}; loss at a = 0, 0.25, 0.5, 0.75, 1, 1.25:")
    for kind in ("l1", "census", "l1+census"):
        for scales in (1, 3, 5):
            row = [float(multiscale_warp_error(src, a * flow, tgt, vis, scales=scales, kind=kind))
                   for a in (0, 0.25, 0.5, 0.75, 1.0, 1.25)]
            print(f"  {kind:9s} scales {scales}: " + " ".join(f"{v:.4f}" for v in row))
    print("cosine(-grad at a * flow, flow - a * flow), per pixel, raw / after a 9x9 box smoothing:")
    for a in (0.3, 0.6):
        for kind in ("l1", "census"):
            for scales in (1, 3, 5):
                f = (a * flow).requires_grad_()
                multiscale_warp_error(src, f, tgt, vis, scales=scales, kind=kind).backward()
                g, d = -f.grad, (1 - a) * flow
                cos = []
                for k in (1, 9):
                    gk = F.avg_pool2d(g.flatten(0, 1), k, 1, k // 2, count_include_pad=False).view_as(g)
                    cos.append(float(((gk * d).sum(2) / (gk.norm(dim=2) * d.norm(dim=2) + 1e-12)).mean()))
                print(f"  a {a} {kind:6s} scales {scales}: {cos[0]:.3f} / {cos[1]:.3f}")


def probe_model(checkpoint: str, n: int = 32) -> None:
    """Print the speeds a trained model decodes against the true ones, and its latent's use."""
    from seg2vid.models.loading import load_model

    model = load_model(checkpoint, "cpu").eval()
    b = test_clips(n)
    onehot = CITYSCAPES.one_hot(b["label_map"])
    with torch.no_grad():
        mu, logvar = model.posterior(b["frames"], onehot)
        kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1).mean()
        post = model.decode(b["frames"][:, 0], onehot, mu)
        prior = model.sample(b["frames"][:8, 0], onehot[:8], 8, generator=torch.Generator().manual_seed(0))
    spread = " ".join(f"{x:.2f}" for x in mu.std(0).tolist())
    print(f"mu spread per dim: {spread} | KL {float(kl):.2f} nats")
    print("true speeds      :", " ".join(f"{x:.2f}" for x in speed(b["flow_fwd"][:8]).tolist()))
    print("posterior speeds :", " ".join(f"{x:.2f}" for x in speed(post.flow_fwd[:8]).tolist()))
    prior_speeds = speed(prior.flow_fwd).view(8, 8)
    means, sds = prior_speeds.mean(1).tolist(), prior_speeds.std(1).tolist()
    print("prior speeds     :", " ".join(f"{m:.2f}+-{s:.2f}" for m, s in zip(means, sds, strict=True)))
    fast = speed(b["flow_fwd"]) > 4
    print("fast clips, mean |flow| per frame, true / posterior:")
    for t in range(b["flow_fwd"].shape[1]):
        true = float(b["flow_fwd"][fast, t].norm(dim=1).mean())
        pred = float(post.flow_fwd[fast, t].norm(dim=1).mean())
        print(f"  t = {t + 1}: {true:.2f} / {pred:.2f}")
    forward_mask_thresholds(model)


def forward_mask_thresholds(model, n: int = 64) -> None:
    """Posterior forward masks of ``n`` test clips at three thresholds: occluded share and IoU."""
    from seg2vid.metrics import mask_iou

    b = test_clips(n)
    onehot = CITYSCAPES.one_hot(b["label_map"])
    with torch.no_grad():
        mu, _ = model.posterior(b["frames"], onehot)
        noise = torch.Generator().manual_seed(0)
        masks = model.decode(b["frames"][:, 0], onehot, mu, generator=noise).mask_fwd
    occluded = 1 - b["visible_fwd"]
    print(f"forward masks, {n} clips: {100 * float(occluded.mean()):.1f}% of the pixels truly occluded")
    for threshold in (0.5, 0.7, 0.9):
        marked = (masks < threshold).float()
        print(f"  mask < {threshold}: {100 * float(marked.mean()):.1f}% marked, "
              f"pooled IoU {mask_iou(marked, occluded):.3f}")


def _posterior_flows(model, clips: list[dict]) -> dict[str, torch.Tensor]:
    """The posterior (mean z) flows and forward masks of ``clips``, frame-major: (B*T, C, H, W)."""
    frames = torch.stack([c["frames"] for c in clips])
    labels = torch.stack([c["labels"] for c in clips])  # (B, T+1, H, W): every frame's map
    onehot = CITYSCAPES.one_hot(labels[:, 0])
    with torch.no_grad():
        mu, _ = model.posterior(frames, onehot)
        out = model.decode(frames[:, 0], onehot, mu, generator=torch.Generator().manual_seed(0))
    t = out.flow_fwd.shape[1]
    fg = torch.isin(labels, torch.tensor(CITYSCAPES.foreground_ids)).float()[:, :, None]
    return {"flow_fwd": out.flow_fwd.flatten(0, 1), "flow_bwd": out.flow_bwd.flatten(0, 1),
            "mask_fwd": out.mask_fwd.flatten(0, 1), "first": frames[:, 0].repeat_interleave(t, 0),
            "fg0": fg[:, 0].repeat_interleave(t, 0), "fg_t": fg[:, 1:].flatten(0, 1),
            "exact_fwd": torch.stack([c["flow_fwd"] for c in clips]).flatten(0, 1),
            "occluded": 1 - torch.stack([c["visible_fwd"] for c in clips]).flatten(0, 1)}


def geometry(checkpoint: str, n: int = 64, train_clips: int = 200) -> None:
    """Could the forward masks come from geometry? Disocclusions from the label map and flows.

    A pixel p of frame t is disoccluded when its source in frame 0, p - flow_fwd(p), lies on a
    FOREGROUND object (car, person, ...) of the first label map while p itself is not on one at
    t, or when the source is out of view. Scored with the exact flow or the model's posterior
    flow, and with the TRUE foreground map of frame t (known to the renderer, not to a model) or
    without it. Then the supervised upper bound of a learned head on such cues: a 3-layer CNN at
    full resolution reading (foreground at the source, first-frame foreground, out of view, the
    forward-backward residual, the model's mask, its flow) from the model's flows, trained on the
    EXACT visibility of ``train_clips`` training clips, scored on the test clips.
    """
    from seg2vid.data.synthetic import SceneConfig, render_clip
    from seg2vid.flow import in_frame_mask, warp
    from seg2vid.metrics import frame_mask_iou
    from seg2vid.models.loading import load_model

    model = load_model(checkpoint, "cpu").eval()
    data = synthetic_test_set(64, 64, 4, n, TEST_SEED, style="rich")
    test = _posterior_flows(model, [data[i] for i in range(n)])

    def say(name: str, occluded: torch.Tensor, truth: torch.Tensor) -> None:
        iou = float(torch.nanmean(frame_mask_iou(occluded, truth)))
        print(f"  {name:58s} IoU {iou:.3f} (mean over frames), {100 * float(occluded.mean()):.1f}% marked")

    def from_geometry(d: dict, flow: torch.Tensor, fg_t: torch.Tensor | None) -> torch.Tensor:
        source_fg = warp(d["fg0"], flow) > 0.5
        hidden = source_fg if fg_t is None else source_fg & (fg_t < 0.5)
        return (hidden | (in_frame_mask(flow) < 0.5)).float()

    share = 100 * float(test["occluded"].mean())
    print(f"forward occlusion from geometry, {n} test clips ({share:.1f}% occluded):")
    say("the model's forward masks (< 0.5)", (test["mask_fwd"] < 0.5).float(), test["occluded"])
    for flow_name, flow in (("exact", test["exact_fwd"]), ("posterior", test["flow_fwd"])):
        say(f"{flow_name} flow, source on foreground, true foreground at t",
            from_geometry(test, flow, test["fg_t"]), test["occluded"])
        say(f"{flow_name} flow, source on foreground (no map of frame t)", from_geometry(test, flow, None),
            test["occluded"])

    def cues(d: dict) -> torch.Tensor:
        flow = d["flow_fwd"]
        residual = (flow + warp(d["flow_bwd"], flow)).norm(dim=1, keepdim=True)
        return torch.cat([warp(d["fg0"], flow), d["fg0"], 1 - in_frame_mask(flow), torch.tanh(residual / 2),
                          d["mask_fwd"], torch.tanh(flow / 4)], dim=1)

    scene = SceneConfig(height=64, width=64, frames=4, style="rich")
    train = _posterior_flows(model, [render_clip(scene, seed) for seed in range(train_clips)])
    x_train, y_train, x_test = cues(train), train["occluded"], cues(test)
    torch.manual_seed(0)
    head = torch.nn.Sequential(
        torch.nn.Conv2d(x_train.shape[1], 16, 3, padding=1), torch.nn.LeakyReLU(0.2),
        torch.nn.Conv2d(16, 16, 3, padding=1), torch.nn.LeakyReLU(0.2), torch.nn.Conv2d(16, 1, 3, padding=1))
    optimizer = torch.optim.Adam(head.parameters(), 3e-3)
    weight = ((1 - y_train.mean()) / y_train.mean()).sqrt()  # occluded pixels are rare
    for _ in range(600):
        idx = torch.randint(0, x_train.shape[0], (64,))
        loss = F.binary_cross_entropy_with_logits(head(x_train[idx]), y_train[idx], pos_weight=weight)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        p = torch.sigmoid(head(x_test))
    for threshold in (0.3, 0.5, 0.7):
        say(f"supervised cue head (upper bound), p > {threshold}", (p > threshold).float(), test["occluded"])


def objects(checkpoint: str, n: int = 64, val_clips: int = 96) -> None:
    """Where the objects' posterior goes wrong (``object_latent > 0``).

    On ``n`` test clips: per frame t, the distance in pixels between each object's displacement in
    the POSTERIOR-MEAN reconstruction and the least-squares fit of the exact backward flow over the
    object (:func:`seg2vid.models.objects.rigid_fit`), for the objects whose block match was
    trusted and for the others (zero motion for scale), and what the posterior forward masks mark
    (:func:`forward_mask_parts`). On ``val_clips`` validation clips (no model): the matcher
    against the same fit, at its settings and with a looser trust test -- the share of (object,
    frame) pairs trusted, trusted and within 1 px ("good"), and the share of the trusted ones off
    by 2 px or more.
    """
    from seg2vid.data.splits import VAL_SEED
    from seg2vid.models.loading import load_model
    from seg2vid.models.objects import label_segments, match_objects, rigid_fit

    def objects_of(clips: dict[str, torch.Tensor]):
        fg = CITYSCAPES.one_hot(clips["label_map"])[:, list(CITYSCAPES.foreground_ids)]
        masks = label_segments(fg, 16)
        return masks, rigid_fit(masks, clips["flow_bwd"])[0], masks.sum((2, 3)) > 0

    model = load_model(checkpoint, "cpu").eval()
    if not model.config.object_latent:
        raise SystemExit(f"--objects needs a model with object_latent > 0; {checkpoint} has none")
    clips = test_clips(n)
    masks, exact, real = objects_of(clips)
    with torch.no_grad():
        out = model.reconstruct(clips["frames"], CITYSCAPES.one_hot(clips["label_map"]),
                                generator=torch.Generator().manual_seed(0))
    _, trusted = match_objects(clips["frames"], masks)
    err = (out.object_shift - exact).norm(dim=-1)  # (B, T, K)
    print(f"objects' posterior displacement vs the exact flow's fit ({n} test clips, "
          f"{int(real.sum())} objects), px:")
    for t in range(err.shape[1]):
        yes, no = trusted[:, t] & real, ~trusted[:, t] & real
        e, zero = err[:, t], exact[:, t][real].norm(dim=-1).mean()
        print(f"  t={t + 1}: trusted {float(yes.sum() / real.sum()):.2f}: median {e[yes].median():.2f} "
              f"mean {e[yes].mean():.2f} | untrusted: median {e[no].median():.2f} "
              f"mean {e[no].mean():.2f} | zero motion: mean {zero:.2f}")
    forward_mask_parts(out, clips)
    clips = test_clips(val_clips, VAL_SEED)
    masks, exact, real = objects_of(clips)
    print(f"the matcher vs the exact flow's fit ({val_clips} validation clips; "
          "trusted / good / bad per frame):")
    for settings in ({}, {"distinct": 0.9}, {"distinct": 0.95}):
        shift, trusted = match_objects(clips["frames"], masks, **settings)
        err = (shift - exact).norm(dim=-1)
        cells = []
        for t in range(err.shape[1]):
            yes = trusted[:, t] & real
            good = float((yes & (err[:, t] < 1)).sum() / real.sum())
            bad = float((yes & (err[:, t] >= 2)).sum() / yes.sum().clamp(min=1))
            cells.append(f"{float(yes.sum() / real.sum()):.2f} / {good:.2f} / {bad:.2f}")
        print(f"  {settings or 'default (distinct=0.8)'}: " + " | ".join(cells))


def forward_mask_parts(out, clips: dict[str, torch.Tensor]) -> None:
    """Print what the posterior forward masks of an ``object_motion="rigid"`` model mark, and why
    the exact occlusion is there.

    The mask is the decoder's own mask times the objects' geometric visibility
    (``out.object_visibility``); both are scored (marked share, precision, recall, and the IoU
    averaged over frames like ``occlusion_iou_fwd``), the decoder's part by what it marks where
    the geometry says visible. The exact occlusion is split by cause: the frame edge (the exact
    source lies outside frame 0), a source on frame 0's foreground (an object moved away), and the
    rest (one background surface moving over another: parallax), with each part's recall.
    """
    from seg2vid.flow import in_frame_mask, warp
    from seg2vid.metrics import frame_mask_iou

    occluded = 1 - clips["visible_fwd"]  # (B, T, 1, H, W)
    geometric = (out.object_visibility < 0.5).float()
    final = (out.mask_fwd < 0.5).float()
    decoder = final * (1 - geometric)  # marked by the decoder's mask where the geometry says visible

    def scores(name: str, marked: torch.Tensor, iou: bool = True) -> None:
        hit = float((marked * occluded).sum())
        precision, recall = hit / max(float(marked.sum()), 1), hit / float(occluded.sum())
        line = f"  {name}: {float(marked.mean()):.3f} marked; precision {precision:.2f}, recall {recall:.2f}"
        if iou:
            line += f", IoU {float(frame_mask_iou(marked, occluded).nanmean()):.3f}"
        print(line)

    print(f"posterior forward masks ({float(occluded.mean()):.3f} of the pixels occluded):")
    scores("the masks (decoder x geometry)", final)
    scores("the geometric visibility alone", geometric)
    scores("the decoder's mask, where the geometry says visible", decoder, iou=False)
    fg0 = torch.isin(clips["label_map"], torch.tensor(CITYSCAPES.foreground_ids)).float()[:, None, None]
    t = occluded.shape[1]
    exact = clips["flow_fwd"]
    edge = (in_frame_mask(exact) < 0.5) & (occluded > 0.5)
    from_fg = (warp(fg0.expand(-1, t, -1, -1, -1).contiguous(), exact) > 0.5) & (occluded > 0.5) & ~edge
    causes = {"frame edge": edge, "source on frame 0's foreground": from_fg,
              "background over background (parallax)": (occluded > 0.5) & ~edge & ~from_fg}
    for name, part in causes.items():
        n = max(float(part.sum()), 1)
        by_masks = float((final.bool() & part).sum()) / n
        by_geometry = float((geometric.bool() & part).sum()) / n
        print(f"  exact occlusion from {name}: {float(part.sum()) / float(occluded.sum()):.2f} of it; "
              f"recall: masks {by_masks:.2f}, geometry {by_geometry:.2f}")


def bounds(checkpoint: str, n: int = 64) -> None:
    """How far better object motion could take the forward masks (``object_latent > 0``).

    On ``n`` test clips and ``n`` validation clips: the posterior forward masks' IoU with the
    exact occlusion per frame and averaged (as ``occlusion_iou_fwd``), with the standard error of
    that mean over the clips (how much another draw of ``n`` clips may move it); the objects'
    geometric visibility alone; the same two with every object moved by the least-squares fit of
    the EXACT backward flow over it (what a perfect object posterior would reach with these
    flows and decoder masks); and the objects' posterior q(z_k) fed the exact fit's displacements
    as if its block matching had found them -- trusted for every object, or only where the
    matcher trusts its own match (what a perfect matcher would reach through this model's
    2-number z_k). Also each variant's mean distance of the objects' displacement to the exact fit.
    """
    from seg2vid.data.splits import VAL_SEED
    from seg2vid.models.loading import load_model
    from seg2vid.models.objects import compose_object_motion, rigid_fit

    model = load_model(checkpoint, "cpu").eval()
    if not model.config.object_latent:
        raise SystemExit(f"--bounds needs a model with object_latent > 0; {checkpoint} has none")
    for split, seed in (("test", TEST_SEED), ("validation", VAL_SEED)):
        clips = test_clips(n, seed)
        frames, labels = clips["frames"], CITYSCAPES.one_hot(clips["label_map"])
        occluded = 1 - clips["visible_fwd"]
        noise = torch.Generator().manual_seed(0)
        with torch.no_grad():
            out = model.reconstruct(frames, labels, generator=noise)
            objects, _, trusted, _, _ = model.object_posteriors(frames, labels)
            real = objects.sum((2, 3)) > 0  # (B, K)
            exact_d, exact_s, _ = rigid_fit(objects, clips["flow_bwd"])
            # the decoder's dense flows and masks for the posterior-mean z, then the objects moved
            # by the exact fit instead of the model's (correction = exact - the dense flows' fit)
            mu, _ = model.posterior(frames, labels)
            kept: list[torch.Tensor] = []
            features = model.image_encoder(torch.cat([frames[:, 0], labels], dim=1))
            flow_fwd, flow_bwd, mask_fwd, _ = model.decoder(features, mu, frames.shape[-2:], frames[:, 0],
                                                            kept)
            fit_d, fit_s, _ = rigid_fit(objects, flow_bwd)
            correction = torch.cat([exact_d - fit_d, (exact_s - fit_s)[..., None]], -1)
            foreground = labels[:, model._fg].sum(1, keepdim=True).clamp(max=1)
            _, _, exact_masks, exact_shift, exact_visibility = compose_object_motion(
                objects, flow_fwd, flow_bwd, mask_fwd, foreground, correction)
            fed = {}
            for name, trust in (("trusted for every object", real[:, None].expand_as(trusted)),
                                ("trusted where the matcher trusts", trusted)):
                shift = torch.where(trust[..., None], exact_d, torch.zeros_like(exact_d))
                object_mu, _ = model.object_posterior(shift, trust, objects)
                fed[name] = model.decode(frames[:, 0], labels, mu, generator=torch.Generator().manual_seed(0),
                                         objects=objects, object_z=object_mu)

        print(f"{split} clips ({n}; {100 * float(occluded.mean()):.1f}% of the pixels occluded), forward IoU "
              "+- its standard error:")
        moved = (real[:, None].expand_as(trusted), exact_d)  # which objects count, and their truth
        _iou_row("posterior masks (occlusion_iou_fwd)", out.mask_fwd, occluded, out.object_shift, moved)
        _iou_row("posterior, the objects' geometric visibility alone", out.object_visibility, occluded)
        _iou_row("objects moved by the exact flow's fit: masks", exact_masks, occluded, exact_shift, moved)
        _iou_row("objects moved by the exact flow's fit: geometry alone", exact_visibility, occluded)
        for name, decoded in fed.items():
            _iou_row(f"exact displacements into q(z_k), {name}", decoded.mask_fwd, occluded,
                     decoded.object_shift, moved)


def _iou_row(name: str, masks: torch.Tensor, occluded: torch.Tensor, shift: torch.Tensor | None = None,
             moved: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
    """Print one line of :func:`bounds`: the forward IoU of ``masks`` (B, T, 1, H, W) (occluded
    where < 0.5) against ``occluded``, mean over clips +- its standard error and per frame; with
    ``shift`` (B, T, K, 2) and ``moved`` = (which (B, T, K) objects count, their exact (B, T, K, 2)
    displacement), also the objects' mean distance to the truth in pixels."""
    from seg2vid.metrics import frame_mask_iou, summarize

    iou = frame_mask_iou((masks < 0.5).float(), occluded)  # (B, T)
    score = summarize({"iou": iou})["iou"]  # as seg2vid evaluate: per clip, then over clips
    per_frame = " ".join(f"{x:.3f}" for x in score["per_frame"])
    line = (f"  {name:66s} IoU {score['mean']:.3f} +- {score['sem']:.3f}"
            f" (t = 1..{iou.shape[1]}: {per_frame})")
    if shift is not None and moved is not None:
        counted, exact = moved
        line += f"; objects off by {float((shift - exact).norm(dim=-1)[counted].mean()):.2f} px"
    print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", nargs="?", choices=("landscape",), help="the model-free part")
    parser.add_argument("--checkpoint", help="a stage-2 checkpoint to probe")
    parser.add_argument("--geometry", action="store_true",
                        help="with --checkpoint: forward occlusion from the label map and the flows, and the "
                        "supervised upper bound of a head on such cues (about 2 minutes)")
    parser.add_argument("--objects", action="store_true",
                        help="with --checkpoint of an object_latent model, instead of the default probe: its "
                        "objects' posterior motion by matching trust, and the matcher's trust settings "
                        "(about 2 minutes)")
    parser.add_argument("--bounds", action="store_true",
                        help="with --checkpoint of an object_latent model, instead of the default probe: the "
                        "forward IoU with its standard error on the test and validation clips, and what "
                        "exact object motion would give (about 1 minute)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.part is None and args.checkpoint is None:
        parser.error("give 'landscape' and/or --checkpoint PT")
    if args.part == "landscape":
        landscape()
    if (args.geometry or args.objects or args.bounds) and not args.checkpoint:
        parser.error("--geometry, --objects and --bounds need --checkpoint PT")
    if args.bounds:
        bounds(args.checkpoint)
        return 0
    if args.objects:
        objects(args.checkpoint)
        return 0
    if args.checkpoint:
        probe_model(args.checkpoint)
    if args.geometry:
        geometry(args.checkpoint)
    return 0


if __name__ == "__main__":
    sys.exit(main())
