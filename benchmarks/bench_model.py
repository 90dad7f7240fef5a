"""Benchmark of the stage-2 model: size, training speed, peak memory, generation speed.

For the "tiny" (batch 8) and "paper" (batch 2) presets, on the CPU and on CUDA when there is one,
each measured in a fresh process (so peak memory and allocator caches do not leak between runs):

* parameters;
* seconds per training step (forward, the full loss, backward, Adam), median of ``--steps``
  after a warm-up step, without and with the VGG-19 perceptual term (random weights: the cost
  is the same as with ImageNet weights);
* peak memory of the training loop: CPU = peak resident set size (Linux ``VmHWM``, reset before
  the loop through ``/proc/self/clear_refs``) and its rise over the resident size before the
  loop; CUDA = ``torch.cuda.max_memory_allocated``;
* seconds to generate one clip (``Seg2Vid.sample``, batch 1, after a warm-up).

Then the paper preset is compared with the authors' stage-2 model measured on the reference
2-core CPU at 128x256, 1 + 4 frames: 13 s per training step at batch 2 and 1.6 s per generated
clip (targets: at least 2x faster training and 5x faster generation). Their training step
computes VGG-19 features, so the "+VGG" column is the like-for-like one.

    python benchmarks/bench_model.py                    # both presets, CPU (+ CUDA)
    python benchmarks/bench_model.py --profile          # + where one paper-preset step spends its time
    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 python benchmarks/bench_model.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
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
from seg2vid.training.perceptual import DEFAULT_LAYERS, VGG19_LAYERS, VGGPerceptual

#: The authors' stage-2 model on the reference 2-core CPU, 128x256, 1 + 4 frames.
AUTHORS_STEP_S = 13.0  # one training step at batch 2
AUTHORS_GENERATE_S = 1.6  # one clip
BATCH = {"tiny": 8, "paper": 2}
#: The profiled phases of a training step (labels of torch.profiler.record_function).
PHASES = ("forward::total", "loss::total", "backward::total", "optimizer::adam")
SPAN_KINDS = ("forward", "loss", "backward", "optimizer")


def random_vgg(device: torch.device) -> VGGPerceptual:
    """A VGG-19 perceptual loss with random weights (same cost as the ImageNet ones)."""
    with torch.device("meta"):
        features = torchvision.models.vgg19(weights=None).features[: VGG19_LAYERS[DEFAULT_LAYERS[-1]] + 1]
    features = features.to_empty(device=device)
    for p in features.parameters():
        torch.nn.init.normal_(p, std=0.01)
    return VGGPerceptual(features).to(device)


def make_batch(preset: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    config = PRESETS[preset]
    scene = SceneConfig(height=config.height, width=config.width, frames=config.frames)
    clips = [render_clip(scene, seed) for seed in range(BATCH[preset])]
    frames = torch.stack([c["frames"] for c in clips]).to(device)
    labels = CITYSCAPES.one_hot(torch.stack([c["labels"][0] for c in clips])).to(device)
    return frames, labels


# ----------------------------------------------------------------------------- memory


def _proc_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Make ``VmHWM`` restart from the current RSS (Linux >= 4.0); False where impossible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ----------------------------------------------------------------------------- one measurement


def time_training(model, frames, labels, perceptual, steps: int, device) -> tuple[float, float | None, int]:
    """Median seconds per step, peak memory (MiB) and the rise over the start (MiB)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    config = LossConfig(perceptual=1.0 if perceptual is not None else 0.0)

    def step() -> None:
        total, _ = seg2vid_loss(model(frames, labels), frames, config, perceptual=perceptual)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()

    step()  # warm-up: allocator, oneDNN primitive caches
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        start_mib = torch.cuda.memory_allocated(device) / 2**20
    else:
        start_mib = (_proc_kib("VmRSS") or 0) / 1024
        _reset_peak_rss()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        hwm = _proc_kib("VmHWM")
        peak = hwm / 1024 if hwm is not None else None
    return statistics.median(times), peak, round(peak - start_mib) if peak is not None else 0


def time_generation(model, frames, labels, clips: int, device) -> float:
    model.eval()
    first, onehot = frames[:1, 0], labels[:1]
    model.sample(first, onehot)  # warm-up
    _sync(device)
    t = time.perf_counter()
    for _ in range(clips):
        model.sample(first, onehot)
    _sync(device)
    model.train()
    return (time.perf_counter() - t) / clips


def measure(preset: str, device_name: str, steps: int, clips: int) -> dict:
    """Everything for one (preset, device), in this process."""
    device = torch.device(device_name)
    torch.manual_seed(0)
    model = Seg2Vid(PRESETS[preset]).to(device)
    frames, labels = make_batch(preset, device)
    step_s, peak, rise = time_training(model, frames, labels, None, steps, device)
    vgg_step_s, vgg_peak, vgg_rise = time_training(model, frames, labels, random_vgg(device), steps, device)
    return {
        "preset": preset, "device": device_name, "batch": BATCH[preset],
        "params": sum(p.numel() for p in model.parameters()),
        "step_s": step_s, "peak_mib": peak, "rise_mib": rise,
        "vgg_step_s": vgg_step_s, "vgg_peak_mib": vgg_peak, "vgg_rise_mib": vgg_rise,
        "generate_s": time_generation(model, frames, labels, clips, device),
    }


# ----------------------------------------------------------------------------- profile


def profile_paper_step(device_name: str) -> None:
    """Where one paper-preset training step (no VGG) spends its time: forward per module, loss,
    backward, optimiser, and the heaviest operators."""
    from torch.profiler import ProfilerActivity, profile, record_function

    device = torch.device(device_name)
    torch.manual_seed(0)
    model = Seg2Vid(PRESETS["paper"]).to(device)
    frames, labels = make_batch("paper", device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    config = LossConfig(perceptual=0)
    spans = {}
    for name, module in model.named_children():
        def enter(mod, args, name=name):
            spans[name] = record_function(f"forward::{name}")
            spans[name].__enter__()

        def leave(mod, args, out, name=name):
            spans.pop(name).__exit__(None, None, None)

        module.register_forward_pre_hook(enter)
        module.register_forward_hook(leave)

    def step() -> None:
        with record_function("forward::total"):
            out = model(frames, labels)
        with record_function("loss::total"):
            total, _ = seg2vid_loss(out, frames, config)
        optimizer.zero_grad(set_to_none=True)
        with record_function("backward::total"):
            total.backward()
        with record_function("optimizer::adam"):
            optimizer.step()
        _sync(device)

    step()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        step()
    events = prof.key_averages()
    spans_ms = {e.key: e.cpu_time_total / 1000 for e in events if e.key.split("::")[0] in SPAN_KINDS}
    total_ms = sum(spans_ms[k] for k in PHASES)
    print(f"\nprofile of one paper-preset training step on {device_name} (batch 2, no VGG): "
          f"{total_ms / 1000:.2f} s")
    for key in PHASES:
        print(f"  {key:32s} {spans_ms[key] / 1000:7.3f} s  {100 * spans_ms[key] / total_ms:5.1f}%")
        if key == "forward::total":
            modules = [k for k in spans_ms if k.startswith("forward::") and k != key]
            for k in sorted(modules, key=lambda k: -spans_ms[k]):
                print(f"    {k:30s} {spans_ms[k] / 1000:7.3f} s  {100 * spans_ms[k] / total_ms:5.1f}%")
    print("  heaviest operators (self time, forward and backward):")
    for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:12]:
        print(f"    {e.key:44s} {e.self_cpu_time_total / 1e6:7.3f} s  x{e.count}")


# ----------------------------------------------------------------------------- report


def _allocator() -> str:
    return "tcmalloc" if "tcmalloc" in os.environ.get("LD_PRELOAD", "") else "system malloc"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "paper"], choices=sorted(PRESETS))
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu (+ cuda when available)")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per measurement")
    parser.add_argument("--clips", type=int, default=5, help="generated clips timed")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's)")
    parser.add_argument("--profile", action="store_true", help="profile one paper-preset step")
    parser.add_argument("--child", nargs=2, metavar=("PRESET", "DEVICE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(measure(*args.child, args.steps, args.clips)))
        return
    devices = args.devices or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"seg2vid stage-2 benchmark -- {_cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {_allocator()}; load average before: {load}")
    results = []
    for device in devices:
        for preset in args.presets:
            cmd = [sys.executable, __file__, "--child", preset, device, "--steps", str(args.steps),
                   "--clips", str(args.clips), "--threads", str(args.threads)]
            child = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if child.returncode:
                sys.exit(f"{preset} on {device} failed:\n{child.stderr}")
            results.append(json.loads(child.stdout.strip().splitlines()[-1]))
    mem = "peak MiB (rise)"
    print(f"\n{'preset':7s}{'device':7s}{'params':>11s}{'batch':>6s}{'s/step':>9s}{'steps/s':>9s}"
          f"{mem:>18s}{'s/step +VGG':>13s}{mem:>18s}{'gen s/clip':>12s}")
    for r in results:
        def memory(peak, rise):
            return "n/a" if peak is None else f"{peak:,.0f} (+{rise:,})"
        print(f"{r['preset']:7s}{r['device']:7s}{r['params']:>11,}{r['batch']:>6d}{r['step_s']:>9.3f}"
              f"{1 / r['step_s']:>9.2f}{memory(r['peak_mib'], r['rise_mib']):>18s}{r['vgg_step_s']:>13.3f}"
              f"{memory(r['vgg_peak_mib'], r['vgg_rise_mib']):>18s}{r['generate_s']:>12.4f}")
    paper = next((r for r in results if r["preset"] == "paper" and r["device"] == "cpu"), None)
    if paper is not None:
        print(f"\nvs the authors' stage-2 model on the reference 2-core CPU (128x256, 1 + 4 frames, batch 2: "
              f"{AUTHORS_STEP_S:g} s/step, {AUTHORS_GENERATE_S:g} s/clip):")
        train_ratio, vgg_ratio = AUTHORS_STEP_S / paper["step_s"], AUTHORS_STEP_S / paper["vgg_step_s"]
        gen_ratio = AUTHORS_GENERATE_S / paper["generate_s"]
        print(f"  training:   {train_ratio:5.1f}x faster without VGG, {vgg_ratio:5.1f}x with VGG "
              f"(like for like; target >= 2x: {'met' if vgg_ratio >= 2 else 'NOT met'})")
        verdict = "met" if gen_ratio >= 5 else "NOT met"
        print(f"  generation: {gen_ratio:5.1f}x faster (target >= 5x: {verdict})")
    if args.profile:
        profile_paper_step(devices[0])
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
