"""Benchmark of the stage-2 model (paper preset, 128x256, 1 + 4 frames) in yardstick units.

Every figure of issue 15 that concerns the model, in one run, on the CPU at one thread by default:

* the YARDSTICK: seconds of one forward + backward of torchvision's resnet18 (random init) at
  batch 4, 3x224x224, measured in the same processes, interleaved with everything else. Figures
  are also printed in these units, which makes runs from different days (and machine loads)
  comparable;
* the convolution PEAK of this CPU: GFLOP/s of a large 3x3 convolution (fp32, and bf16 where
  the CPU has it), forward only, best of several;
* one training step (forward, the full loss, backward, Adam) at batch 2: without the perceptual
  term, with it (random-weight VGG-19: the cost is that of the ImageNet one) and with each speed
  switch of :class:`seg2vid.training.perceptual.VGGPerceptual` (bf16, channels-last, both, 4
  layers instead of 12, the half-resolution term); FLOPs counted with
  ``torch.utils.flop_counter.FlopCounterMode`` and the achieved fraction of the fp32 peak;
* generation (``Seg2Vid.sample``) per clip at batch 1, batch 8 (eight different first frames) and
  8 futures of one first frame (``n_samples=8``, what ``Pipeline.generate`` asks for), in fp32
  and under bfloat16 autocast (``precision="bf16"``), with the bf16 videos' difference from fp32;
* the perceptual term's numerical effect: loss and input-gradient relative differences of each
  switch against fp32 on one fixed input;
* peak resident memory (``resource.getrusage`` in a fresh subprocess) of a batch-4 training loop
  with the perceptual term, per variant.

Times are the MINIMUM over ``--rounds`` rounds (each a fresh subprocess that measures everything
in turn), so load from other processes inflates them as little as possible; the load average is
printed before and after.

The authors' reference figures (issue 15): measured side by side with our model on this
development machine, in one process, one thread, tcmalloc, runs alternated, random weights,
128x256, 1 + 4 frames: their stage-2 training step at batch 2 costs 40.8 yardstick units, their
generation of one clip 5.3 units. The ratios below are "vs the reference figure" in units.

    OMP_NUM_THREADS=1 LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 \\
        python benchmarks/bench_model.py                 # full (~6-10 min on a loaded 2-core machine)
    ... python benchmarks/bench_model.py --quick         # ~2 min: one round, fewer repeats
    ... python benchmarks/bench_model.py --json out.json # also write every figure as JSON
    ... python benchmarks/bench_model.py --profile       # + where a no-VGG step and a clip spend their time
    ... python benchmarks/bench_model.py --profile-only  # only those two profiles (about a minute)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
import torchvision

from seg2vid.data.labels import CITYSCAPES
from seg2vid.data.synthetic import SceneConfig, render_clip
from seg2vid.models import PRESETS, Seg2Vid
from seg2vid.training.objective import LossConfig, seg2vid_loss
from seg2vid.training.perceptual import DEFAULT_LAYERS, VGG19_LAYERS, VGGPerceptual, bf16_supported
from seg2vid.utils import cpu_name

#: The authors' figures in yardstick units (issue 15: side by side on this machine, 1 thread, tcmalloc).
AUTHORS_STEP_UNITS = 40.8  # one training step, 128x256, 1 + 4 frames, batch 2
AUTHORS_GENERATE_UNITS = 5.3  # one generated clip
PRESET = "paper"
BATCH = 2
#: The four-layer variant: one ReLU per block (the network still runs to relu4_4).
FOUR_LAYERS = ("relu1_2", "relu2_2", "relu3_4", "relu4_4")
#: Training-step variants: name -> (perceptual on, LossConfig overrides, layers).
STEP_VARIANTS: dict[str, tuple[bool, dict, tuple[str, ...]]] = {
    "no_vgg": (False, {}, DEFAULT_LAYERS),
    "vgg_fp32": (True, {}, DEFAULT_LAYERS),
    "vgg_fp32_cl": (True, {"perceptual_channels_last": True}, DEFAULT_LAYERS),
    "vgg_bf16": (True, {"perceptual_precision": "bf16"}, DEFAULT_LAYERS),
    "vgg_bf16_cl": (True, {"perceptual_precision": "bf16", "perceptual_channels_last": True}, DEFAULT_LAYERS),
    # + the model's forward under bf16 autocast (TrainConfig.amp="bf16"); quality:
    # scripts/perceptual_precision_study.py
    "vgg_bf16_cl_amp": (True, {"perceptual_precision": "bf16", "perceptual_channels_last": True, "amp": True},
                        DEFAULT_LAYERS),
    "vgg_bf16_cl_4layers": (True, {"perceptual_precision": "bf16", "perceptual_channels_last": True},
                            FOUR_LAYERS),
    "vgg_bf16_cl_half_res": (True, {"perceptual_precision": "bf16", "perceptual_channels_last": True,
                                    "perceptual_downsample": 2}, DEFAULT_LAYERS),
    # the lower-resolution term without bf16 (quality: scripts/perceptual_precision_study.py fp32_half)
    "vgg_fp32_cl_half_res": (True, {"perceptual_channels_last": True, "perceptual_downsample": 2},
                             DEFAULT_LAYERS),
}
STEP_LABELS = {
    "no_vgg": "no perceptual term",
    "vgg_fp32": "+ VGG-19, fp32 (the authors' term; default)",
    "vgg_fp32_cl": "+ VGG-19, fp32, channels-last",
    "vgg_bf16": "+ VGG-19, bf16 autocast",
    "vgg_bf16_cl": "+ VGG-19, bf16 + channels-last",
    "vgg_bf16_cl_amp": "+ VGG-19, bf16 + cl, model under bf16 autocast",
    "vgg_bf16_cl_4layers": "+ VGG-19, bf16 + cl, 4 layers (not 12)",
    "vgg_bf16_cl_half_res": "+ VGG-19, bf16 + cl, half resolution",
    "vgg_fp32_cl_half_res": "+ VGG-19, fp32 + cl, half resolution",
}
#: Generation cases: key suffix -> label (bf16 = ``Seg2Vid.sample(precision="bf16")``).
GENERATE_LABELS = {
    1: "batch 1", 8: "batch 8 (8 first frames)", "n8": "8 futures of one frame",
    "1_bf16": "bf16, batch 1", "8_bf16": "bf16, batch 8", "n8_bf16": "bf16, 8 futures of one frame",
}
#: Peak-memory variants of the batch-4 loop: name -> (LossConfig overrides, target branch first).
RSS_VARIANTS: dict[str, tuple[dict, bool]] = {
    "vgg_fp32_target_first": ({}, True),
    "vgg_fp32": ({}, False),
    "vgg_bf16_cl": ({"perceptual_precision": "bf16", "perceptual_channels_last": True}, False),
}
RSS_LABELS = {
    "vgg_fp32_target_first": "fp32, all target features first (before issue 15)",
    "vgg_fp32": "fp32, target in lockstep (default)",
    "vgg_bf16_cl": "bf16 + channels-last, lockstep",
}


def random_vgg(layers: tuple[str, ...] = DEFAULT_LAYERS) -> VGGPerceptual:
    """A VGG-19 perceptual loss with random weights (same cost as the ImageNet ones)."""
    torch.manual_seed(1)
    features = torchvision.models.vgg19(weights=None).features[: VGG19_LAYERS[layers[-1]] + 1]
    return VGGPerceptual(features, layers)


def make_batch(batch: int, seed0: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` synthetic clips at the preset's size: frames (B, T+1, 3, H, W), one-hot labels."""
    config = PRESETS[PRESET]
    scene = SceneConfig(height=config.height, width=config.width, frames=config.frames)
    clips = [render_clip(scene, seed0 + seed) for seed in range(batch)]
    frames = torch.stack([c["frames"] for c in clips])
    labels = CITYSCAPES.one_hot(torch.stack([c["labels"][0] for c in clips]))
    return frames, labels


# ----------------------------------------------------------------------------- the pieces


def yardstick() -> tuple[callable, float]:
    """resnet18, random init, forward + backward at batch 4, 3x224x224: (one run, its GFLOP)."""
    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None)
    x = torch.randn(4, 3, 224, 224)

    def run() -> None:
        net.zero_grad(set_to_none=True)
        net(x).sum().backward()

    return run, count_flops(run)


def conv_peak(dtype: torch.dtype, repeats: int) -> float:
    """GFLOP/s of a large 3x3 convolution (128 -> 128 channels, batch 8, 64x128), forward."""
    conv = torch.nn.Conv2d(128, 128, 3, padding=1, bias=False).to(dtype).requires_grad_(False)
    x = torch.randn(8, 128, 64, 128, dtype=dtype)
    flops = 2 * 8 * 128 * 128 * 9 * 64 * 128
    with torch.inference_mode():
        conv(x)
        return flops / best_of(lambda: conv(x), repeats) / 1e9


def count_flops(fn) -> float:
    """GFLOP of one call of ``fn`` (torch.utils.flop_counter: convolutions and matmuls)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / 1e9


def best_of(fn, repeats: int) -> float:
    """Minimum wall-clock seconds of ``repeats`` calls."""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def training_step(model, frames, labels, vgg, overrides: dict):
    """One training step (forward, loss, backward, Adam) as a function."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    overrides = dict(overrides)
    amp = overrides.pop("amp", False)  # the whole forward under bf16 autocast, as TrainConfig.amp="bf16"
    config = LossConfig(perceptual=1.0 if vgg is not None else 0.0, **overrides)

    def step() -> None:
        # as Trainer with amp="bf16": the model's forward under autocast, the loss on float32 outputs
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            output = model(frames, labels)
        if amp:
            output = output.float32()
        total, _ = seg2vid_loss(output, frames, config, perceptual=vgg)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()

    return step


def perceptual_effect() -> dict:
    """Loss and input-gradient difference of each switch vs fp32 on one fixed (warped-like) input.

    The input is a true clip's future frames and the first frame (what the perceptual term sees
    on an untrained model): 8 images of 128x256.
    """
    frames, _ = make_batch(BATCH, seed0=100)
    target = frames[:, 1:].flatten(0, 1)
    pred0 = frames[:, :1].expand_as(frames[:, 1:]).flatten(0, 1)

    def run(layers, **options):
        pred = pred0.clone().requires_grad_()
        loss = random_vgg(layers)(pred, target, **options)
        loss.backward()
        return loss.item(), pred.grad

    ref_loss, ref_grad = run(DEFAULT_LAYERS)
    out = {}
    for name, (on, overrides, layers) in STEP_VARIANTS.items():
        if (not on or name == "vgg_fp32" or layers != DEFAULT_LAYERS or overrides.get("perceptual_downsample")
                or overrides.get("amp")):  # the term alone: amp changes the model, not the term
            continue
        options = {"precision": overrides.get("perceptual_precision"),
                   "channels_last": overrides.get("perceptual_channels_last")}
        loss, grad = run(layers, **options)
        out[name] = {
            "loss_rel_diff": abs(loss - ref_loss) / abs(ref_loss),
            "grad_rel_diff": float((grad - ref_grad).norm() / ref_grad.norm()),
            "grad_cosine": float(torch.nn.functional.cosine_similarity(grad.flatten(), ref_grad.flatten(),
                                                                       dim=0)),
        }
    return out


# ----------------------------------------------------------------------------- one round


def round_child(repeats: int, steps: int, clips: int, flops: bool) -> dict:
    """Everything but peak memory, in this process, interleaved: min seconds per figure."""
    torch.manual_seed(0)
    model = Seg2Vid(PRESETS[PRESET])
    frames, labels = make_batch(BATCH)
    gen_frames, gen_labels = make_batch(8, seed0=50)
    yard, yard_gflop = yardstick()
    # one VGG per variant (same weights): a channels-last one keeps its weights in NHWC
    steps_fns = {name: training_step(model, frames, labels, random_vgg(layers) if on else None, overrides)
                 for name, (on, overrides, layers) in STEP_VARIANTS.items()}
    model.eval()

    def generate(batch: int, precision: str = "fp32"):
        return lambda: model.sample(gen_frames[:batch, 0], gen_labels[:batch], precision=precision)

    gens = {1: generate(1), 8: generate(8),
            # 8 futures of ONE first frame (Pipeline.generate's case): the image is encoded once
            "n8": lambda: model.sample(gen_frames[:1, 0], gen_labels[:1], n_samples=8)}
    # the same under bfloat16 autocast (Seg2Vid.sample(precision="bf16"))
    gens.update({"1_bf16": generate(1, "bf16"), "8_bf16": generate(8, "bf16"),
                 "n8_bf16": lambda: model.sample(gen_frames[:1, 0], gen_labels[:1], n_samples=8,
                                                 precision="bf16")})
    # warm-up: allocator, oneDNN primitive caches (each step function has its own optimiser)
    yard()
    for fn in steps_fns.values():
        model.train()
        fn()
    model.eval()
    for fn in gens.values():
        fn()
    times: dict[str, float] = {}
    peaks: dict[str, float] = {}

    def keep(key: str, seconds: float) -> None:
        times[key] = min(times.get(key, float("inf")), seconds)

    for _ in range(repeats):  # interleaved: every figure sees the same load
        keep("yardstick", best_of(yard, 2))
        for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            if name == "fp32" or bf16_supported():
                peaks[name] = max(peaks.get(name, 0.0), conv_peak(dtype, 3))
        model.train()
        for name, fn in steps_fns.items():
            keep(f"step_{name}", best_of(fn, steps))
            keep("yardstick", best_of(yard, 1))
        model.eval()
        for batch, fn in gens.items():
            # the same work per timing, 8 clips (8 calls at batch 1), so every min has as many tries
            calls = 1 if str(batch).startswith(("8", "n8")) else 8
            keep(f"generate_b{batch}", best_of(lambda fn=fn, calls=calls: [fn() for _ in range(calls)],
                                               max(1, clips // 8)) / 8)
    result = {"times": times, "yardstick_gflop": yard_gflop, "peak_gflops": peaks}
    if flops:
        model.train()
        result["gflop"] = {f"step_{name}": count_flops(steps_fns[name]) for name in ("no_vgg", "vgg_fp32")}
        model.eval()
        result["gflop"]["generate_b1"] = count_flops(gens[1])
        result["perceptual_effect"] = perceptual_effect()
        result["bf16_generation_effect"] = bf16_generation_effect(model, gen_frames, gen_labels)
    return result


def bf16_generation_effect(model: Seg2Vid, frames: torch.Tensor, labels: torch.Tensor) -> dict:
    """How far bf16 generation is from fp32: 8 first frames, the same seed, videos in [0, 1]
    (random weights: the shipped 64x64 model's difference is in tests/test_pipeline.py)."""
    videos = {p: model.sample(frames[:, 0], labels, generator=torch.Generator().manual_seed(0),
                              precision=p).video
              for p in ("fp32", "bf16")}
    diff = (videos["bf16"] - videos["fp32"]).abs()
    out = {"mean_abs_diff": float(diff.mean()), "max_abs_diff": float(diff.max())}
    out["shipped"] = shipped_bf16_effect()
    return out


def shipped_bf16_effect(maps: int = 8, samples: int = 4) -> dict:
    """The same for the SHIPPED 64x64 pipeline (trained weights): ``maps`` test label maps,
    ``samples`` futures each, one seed per map; mean and max |bf16 - fp32| over every video."""
    from seg2vid.data.splits import TEST_SEED
    from seg2vid.generation.pipeline import Pipeline

    pipe = Pipeline.from_shipped(device="cpu")
    scene = SceneConfig(height=64, width=64, frames=1)
    means, maxes = [], []
    for i in range(maps):
        labels = render_clip(scene, seed=TEST_SEED + i)["labels"][0]
        a, b = (pipe.generate(labels, samples, generator=torch.Generator().manual_seed(i), precision=p)
                for p in ("fp32", "bf16"))
        means.append(float((a - b).abs().mean()))
        maxes.append(float((a - b).abs().max()))
    return {"mean_abs_diff": sum(means) / maps, "max_abs_diff": max(maxes), "maps": maps, "samples": samples}


def rss_child(variant: str, steps: int) -> dict:
    """Peak RSS (GiB) of a batch-4 training loop with the perceptual term, in this fresh process."""
    overrides, target_first = RSS_VARIANTS[variant]
    torch.manual_seed(0)
    model = Seg2Vid(PRESETS[PRESET])
    frames, labels = make_batch(4)
    vgg = random_vgg()
    if target_first:  # the pre-issue-15 forward: all twelve target maps held while the prediction runs
        def forward(pred, target, **_):
            with torch.no_grad():
                target_features = vgg.extract(target)
            return sum((p - t).abs().mean() for p, t in zip(vgg.extract(pred), target_features, strict=True))
        vgg.forward = forward
    step = training_step(model, frames, labels, vgg, overrides)
    for _ in range(steps):
        step()
    # ru_maxrss: KiB on Linux
    return {"variant": variant, "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


# ----------------------------------------------------------------------------- profile


def profile_step() -> None:
    """Where one no-VGG training step spends its time: the heaviest operators (self time)."""
    from torch.profiler import profile

    torch.manual_seed(0)
    model = Seg2Vid(PRESETS[PRESET])
    frames, labels = make_batch(BATCH)
    step = training_step(model, frames, labels, None, {})
    step()
    with profile() as prof:
        step()
    _print_profile(prof, f"one {PRESET} training step (batch {BATCH}, no VGG)", calls=1, top=15, digits=3)


def _print_profile(prof, title: str, calls: int, top: int, digits: int) -> None:
    """The ``top`` operators of a profile of ``calls`` identical calls, by self time per call."""
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) / calls / 1e6  # seconds per call
    print(f"\nprofile of {title}: {total:.{digits}f} s" + (" per call" if calls > 1 else ""))
    for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:top]:
        seconds = e.self_cpu_time_total / calls / 1e6
        print(f"  {e.key:44s} {seconds:7.{digits}f} s  {100 * seconds / total:5.1f}%  x{e.count // calls}")


def profile_generation() -> None:
    """Where generating one clip (batch 1) spends its time, fp32 and bf16: the heaviest operators."""
    from torch.profiler import profile

    torch.manual_seed(0)
    model = Seg2Vid(PRESETS[PRESET]).eval()
    frames, labels = make_batch(1, seed0=50)
    for precision in ("fp32", "bf16") if bf16_supported() else ("fp32",):
        def generate(precision=precision):
            model.sample(frames[:, 0], labels, generator=torch.Generator().manual_seed(0),
                         precision=precision)

        generate()
        with profile() as prof:
            for _ in range(4):
                generate()
        _print_profile(prof, f"generating one {PRESET} clip, batch 1, {precision}", calls=4, top=12, digits=4)


# ----------------------------------------------------------------------------- report


def _allocator() -> str:
    return "tcmalloc" if "tcmalloc" in os.environ.get("LD_PRELOAD", "") else "system malloc"


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _child(args: list[str], threads: int) -> dict:
    cmd = [sys.executable, __file__, *args, "--threads", str(threads)]
    child = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if child.returncode:
        sys.exit(f"benchmark child {args} failed:\n{child.stderr}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def run_all(rounds: int, repeats: int, steps: int, clips: int, rss_steps: int, threads: int) -> dict:
    """The rounds (fresh processes) and the peak-memory children, alternated; min over rounds."""
    meta = {"cpu": cpu_name(), "cores": os.cpu_count(), "torch": torch.__version__, "threads": threads,
            "allocator": _allocator(), "bf16_supported": bf16_supported(), "load_before": _load(),
            "rounds": rounds}
    results, rss = [], {}
    for r in range(rounds):
        results.append(_child(["--round", "--repeats", str(repeats), "--steps", str(steps),
                               "--clips", str(clips), *(["--flops"] if r == 0 else [])], threads))
        for variant in RSS_VARIANTS if r == 0 else ():
            rss[variant] = _child(["--rss", variant, "--steps", str(rss_steps)], threads)["peak_rss_gib"]
    times = {k: min(res["times"][k] for res in results) for k in results[0]["times"]}
    peak = {k: max(res["peak_gflops"][k] for res in results) for k in results[0]["peak_gflops"]}
    meta["load_after"] = _load()
    return {"meta": meta, "seconds": times, "peak_gflops": peak, "gflop": results[0]["gflop"],
            "yardstick_gflop": results[0]["yardstick_gflop"], "peak_rss_gib": rss,
            "perceptual_effect": results[0]["perceptual_effect"],
            "bf16_generation_effect": results[0]["bf16_generation_effect"],
            "derived": derive(times, peak, results[0])}


def derive(times: dict, peak: dict, first: dict) -> dict:
    """Units, ratios vs the authors' reference figures, achieved GFLOP/s and fraction of peak."""
    unit = times["yardstick"]
    out = {"units": {k: v / unit for k, v in times.items() if k != "yardstick"}}
    out["vs_authors"] = {k: AUTHORS_STEP_UNITS / u for k, u in out["units"].items() if k.startswith("step_")}
    for b in GENERATE_LABELS:
        out["vs_authors"][f"generate_b{b}"] = AUTHORS_GENERATE_UNITS / out["units"][f"generate_b{b}"]
    gflop = first["gflop"]
    out["achieved_gflops"] = {k: gflop[k] / times[k] for k in gflop}
    out["fraction_of_fp32_peak"] = {k: v / peak["fp32"] for k, v in out["achieved_gflops"].items()}
    out["yardstick_gflops"] = first["yardstick_gflop"] / unit
    return out


def report(res: dict) -> None:
    m, s, d = res["meta"], res["seconds"], res["derived"]
    u, vs = d["units"], d["vs_authors"]
    print(f"seg2vid stage-2 benchmark -- {m['cpu']}, {m['cores']} cores, torch {m['torch']}, {m['threads']} "
          f"thread(s), {m['allocator']}, bf16 {'native' if m['bf16_supported'] else 'not native'}; "
          f"min over {m['rounds']} round(s)")
    print(f"load average before: {m['load_before']}; after: {m['load_after']}")
    print(f"\nyardstick (resnet18 fwd+bwd, batch 4, 3x224x224): {s['yardstick']:.3f} s = 1 unit "
          f"({d['yardstick_gflops']:.0f} GFLOP/s)")
    peaks = ", ".join(f"{k} {v:.0f}" for k, v in res["peak_gflops"].items())
    print(f"convolution peak (3x3, 128 -> 128 ch, batch 8, 64x128, forward): {peaks} GFLOP/s")
    print(f"\ntraining step, {PRESET} preset (128x256, 1 + 4 frames), batch {BATCH}; authors' step = "
          f"{AUTHORS_STEP_UNITS} units")
    print(f"  {'variant':46s}{'s/step':>9s}{'units':>8s}{'vs authors':>12s}")
    for name in STEP_VARIANTS:
        key = f"step_{name}"
        print(f"  {STEP_LABELS[name]:46s}{s[key]:>9.3f}{u[key]:>8.2f}{vs[key]:>11.1f}x")
    for key, label in (("step_no_vgg", "no VGG"), ("step_vgg_fp32", "+ VGG fp32")):
        print(f"  {label}: {res['gflop'][key]:.1f} GFLOP/step, {d['achieved_gflops'][key]:.0f} GFLOP/s = "
              f"{100 * d['fraction_of_fp32_peak'][key]:.0f}% of the fp32 convolution peak")
    print(f"\ngeneration (Seg2Vid.sample), per clip; authors' clip = {AUTHORS_GENERATE_UNITS} units")
    for b, label in GENERATE_LABELS.items():
        key = f"generate_b{b}"
        print(f"  {label:32s} {s[key]:.4f} s/clip, {u[key]:.3f} units, {vs[key]:.1f}x vs the reference")
    for suffix, name in (("", "fp32"), ("_bf16", "bf16")):
        b1 = s[f"generate_b1{suffix}"]
        print(f"  {name} per clip vs its batch 1: batch 8 {s[f'generate_b8{suffix}'] / b1:.2f}, "
              f"8 futures {s[f'generate_bn8{suffix}'] / b1:.2f}")
    print(f"  bf16 vs fp32 at batch 1: {s['generate_b1'] / s['generate_b1_bf16']:.2f}x faster; "
          f"{res['gflop']['generate_b1']:.1f} GFLOP/clip, "
          f"{100 * d['fraction_of_fp32_peak']['generate_b1']:.0f}% of the fp32 peak at batch 1 (fp32)")
    e = res["bf16_generation_effect"]
    print(f"  bf16 videos vs fp32 (8 clips, same seed): mean |difference| {e['mean_abs_diff']:.1e} "
          f"({255 * e['mean_abs_diff']:.2f} grey levels), max {e['max_abs_diff']:.3f}")
    sh = e["shipped"]
    print(f"  same, shipped 64x64 pipeline ({sh['maps']} test maps x {sh['samples']} futures): mean "
          f"{sh['mean_abs_diff']:.1e} ({255 * sh['mean_abs_diff']:.2f} grey levels), "
          f"max {sh['max_abs_diff']:.3f}")
    print("\nperceptual term, switch vs fp32 on one fixed input (8 images 128x256): relative difference")
    for name, e in res["perceptual_effect"].items():
        print(f"  {STEP_LABELS[name]:46s} loss {e['loss_rel_diff']:.1e}, "
              f"input gradient {e['grad_rel_diff']:.1e} (cosine {e['grad_cosine']:.4f})")
    print(f"\npeak RSS, batch-4 training loop with the perceptual term ({PRESET} preset), "
          "fresh process each:")
    for name, gib in res["peak_rss_gib"].items():
        print(f"  {RSS_LABELS[name]:52s} {gib:.2f} GiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round, fewer repeats (~2 minutes)")
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes; figures are the min")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved passes per round")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per variant and pass")
    parser.add_argument("--clips", type=int, default=16, help="clips generated per batch size and pass")
    parser.add_argument("--rss-steps", type=int, default=3, help="steps of the peak-memory loop")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--json", metavar="PATH", help="also write every figure to PATH as JSON")
    parser.add_argument("--profile", action="store_true",
                        help="profile one no-VGG step and one generated clip at the end")
    parser.add_argument("--profile-only", action="store_true",
                        help="only the profiles (a minute), no benchmark")
    parser.add_argument("--round", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--flops", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rss", choices=sorted(RSS_VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.round:
        print(json.dumps(round_child(args.repeats, args.steps, args.clips, args.flops)))
        return
    if args.rss:
        print(json.dumps(rss_child(args.rss, args.steps)))
        return
    if args.profile_only:
        profile_step()
        profile_generation()
        return
    if args.quick:
        args.rounds, args.repeats, args.steps, args.clips, args.rss_steps = 1, 1, 1, 8, 2
    res = run_all(args.rounds, args.repeats, args.steps, args.clips, args.rss_steps, args.threads)
    report(res)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
        print(f"\nJSON: {args.json}")
    if args.profile:
        profile_step()
        profile_generation()


if __name__ == "__main__":
    main()
