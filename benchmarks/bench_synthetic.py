"""Benchmark of the synthetic street generator: speed and exactness.

Prints clips per second on ONE core (the generator is NumPy; torch is limited to one thread too),
the minimum / median / best over ``--rounds`` rounds (styles interleaved, so that a changing load
hits both alike), in wall-clock time and in this process's CPU time (which a loaded machine
inflates less), with the 1-minute load average before and after; and the error
of warping frame 0 with the exact flow, on visible and on occluded pixels, for
each scene style ("classic", the shipped default, and "rich"); ``--stats`` adds the dataset
statistics of :mod:`seg2vid.data.stats` (occlusion, texture, foreground, speed spread).

    python benchmarks/bench_synthetic.py                 # 64x64, 1 + 8 frames, 200 clips, both styles
    python benchmarks/bench_synthetic.py --quick --json  # 3 rounds of 40 clips, JSON at the end
    python benchmarks/bench_synthetic.py --stats --style rich
    python benchmarks/bench_synthetic.py --size 128x256 --frames 4 --clips 50
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

# One core, as the target says: set before NumPy/torch load their thread pools.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import torch  # noqa: E402

from seg2vid.data.stats import clip_statistics, print_statistics  # noqa: E402
from seg2vid.data.synthetic import STYLES, SceneConfig, render_clip  # noqa: E402
from seg2vid.flow import warp  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="64x64", help="HxW (default 64x64)")
    parser.add_argument("--frames", type=int, default=8, help="future frames T (default 8)")
    parser.add_argument("--clips", type=int, default=200, help="clips per round (default 200)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per style (default 3)")
    parser.add_argument("--quick", action="store_true", help="40 clips per round, 10 for the warp error")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON object")
    parser.add_argument("--error-clips", type=int, default=50, help="clips for the warp error")
    parser.add_argument("--style", choices=(*STYLES, "both"), default="both",
                        help="scene style (default both)")
    parser.add_argument("--stats", action="store_true", help="also print the dataset statistics")
    args = parser.parse_args()
    if args.quick:
        args.clips, args.error_clips = 40, 10
    torch.set_num_threads(1)
    h, w = (int(v) for v in args.size.lower().split("x"))
    styles = STYLES if args.style == "both" else (args.style,)
    configs = {style: SceneConfig(height=h, width=w, frames=args.frames, style=style) for style in styles}
    load_before = os.getloadavg()[0]
    print(f"synthetic streets benchmark -- {platform.processor() or platform.machine()}, 1 thread "
          f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}), {h}x{w}, 1 + {args.frames} frames")
    for config in configs.values():
        render_clip(config, seed=10**6)  # warm-up
    wall: dict[str, list[float]] = {style: [] for style in styles}
    cpu: dict[str, list[float]] = {style: [] for style in styles}
    for r in range(args.rounds):
        for style, config in configs.items():
            w0, c0 = time.perf_counter(), time.process_time()
            for seed in range(r * args.clips, (r + 1) * args.clips):
                render_clip(config, seed)
            wall[style].append(args.clips / (time.perf_counter() - w0))
            cpu[style].append(args.clips / (time.process_time() - c0))
    load_after = os.getloadavg()[0]
    print(f"  load average (1 min): {load_before:.2f} before, {load_after:.2f} after; "
          f"{args.rounds} rounds of {args.clips} clips per style")
    report: dict = {"size": f"{h}x{w}", "frames": args.frames, "threads": 1, "rounds": args.rounds,
                    "clips_per_round": args.clips, "load_before": load_before, "load_after": load_after,
                    "styles": {}}
    for style, config in configs.items():
        figures = {
            "wall_clips_per_s": _spread(wall[style]),
            "cpu_clips_per_s": _spread(cpu[style]),
        }
        print(f"  style {style!r}: wall {_say(figures['wall_clips_per_s'])}; "
              f"CPU time {_say(figures['cpu_clips_per_s'])} clips/s")
        figures.update(warp_error(config, args.error_clips))
        report["styles"][style] = figures
        if args.stats:
            print_statistics(clip_statistics(config, args.error_clips), say=lambda line: print("  " + line))
    if args.json:
        print(json.dumps(report))


def _spread(values: list[float]) -> dict[str, float]:
    return {"min": round(min(values), 1), "median": round(statistics.median(values), 1),
            "max": round(max(values), 1)}


def _say(spread: dict[str, float]) -> str:
    return f"min {spread['min']:.1f} / median {spread['median']:.1f} / max {spread['max']:.1f}"


def warp_error(config: SceneConfig, clips: int) -> dict[str, float]:
    """Print and return the mean |error| of ``warp(frame 0, exact flow)`` vs frame t, on visible
    and on occluded pixels, over ``clips`` clips."""
    abs_vis = n_vis = abs_occ = n_occ = 0.0
    for seed in range(clips):
        clip = render_clip(config, seed)
        warped = warp(clip["frames"][:1], clip["flow_fwd"])
        err = (warped - clip["frames"][1:]).abs().mean(1)
        vis = clip["visible_fwd"][:, 0] > 0.5
        abs_vis += err[vis].sum().item()
        n_vis += vis.sum().item()
        abs_occ += err[~vis].sum().item()
        n_occ += (~vis).sum().item()
    share = 100 * n_vis / (n_vis + n_occ)
    out = {"warp_error_visible": round(abs_vis / max(n_vis, 1), 4),
           "warp_error_occluded": round(abs_occ / max(n_occ, 1), 4), "visible_percent": round(share, 1)}
    print(f"    warp(frame 0, exact flow) vs frame t, mean |error| over {clips} clips: visible pixels "
          f"{out['warp_error_visible']:.4f} ({share:.1f}% of pixels), "
          f"occluded {out['warp_error_occluded']:.4f}")
    return out


if __name__ == "__main__":
    main()
