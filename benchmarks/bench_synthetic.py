"""Benchmark of the synthetic street generator: speed and exactness.

Prints clips per second on ONE core (the generator is NumPy; torch is limited to one thread too)
and the error of warping frame 0 with the exact flow, on visible and on occluded pixels, for
each scene style ("classic", the shipped default, and "rich"); ``--stats`` adds the dataset
statistics of :mod:`seg2vid.data.stats` (occlusion, texture, foreground, speed spread).

    python benchmarks/bench_synthetic.py                 # 64x64, 1 + 8 frames, 200 clips, both styles
    python benchmarks/bench_synthetic.py --stats --style rich
    python benchmarks/bench_synthetic.py --size 128x256 --frames 4 --clips 50
"""

from __future__ import annotations

import argparse
import os
import platform
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
    parser.add_argument("--clips", type=int, default=200, help="clips to time (default 200)")
    parser.add_argument("--error-clips", type=int, default=50, help="clips for the warp error")
    parser.add_argument("--style", choices=(*STYLES, "both"), default="both",
                        help="scene style (default both)")
    parser.add_argument("--stats", action="store_true", help="also print the dataset statistics")
    args = parser.parse_args()
    torch.set_num_threads(1)
    h, w = (int(v) for v in args.size.lower().split("x"))
    print(f"synthetic streets benchmark -- {platform.processor() or platform.machine()}, 1 thread")
    for style in STYLES if args.style == "both" else (args.style,):
        config = SceneConfig(height=h, width=w, frames=args.frames, style=style)
        bench(config, args)
        if args.stats:
            print_statistics(clip_statistics(config, args.error_clips), say=lambda line: print("  " + line))


def bench(config: SceneConfig, args: argparse.Namespace) -> None:
    """Time ``args.clips`` clips of ``config`` and print the warp error of the exact flow."""
    h, w = config.height, config.width

    render_clip(config, seed=10**6)  # warm-up
    start = time.perf_counter()
    for seed in range(args.clips):
        render_clip(config, seed)
    elapsed = time.perf_counter() - start

    abs_vis = n_vis = abs_occ = n_occ = 0.0
    for seed in range(args.error_clips):
        clip = render_clip(config, seed)
        warped = warp(clip["frames"][:1], clip["flow_fwd"])
        err = (warped - clip["frames"][1:]).abs().mean(1)
        vis = clip["visible_fwd"][:, 0] > 0.5
        abs_vis += err[vis].sum().item()
        n_vis += vis.sum().item()
        abs_occ += err[~vis].sum().item()
        n_occ += (~vis).sum().item()

    print(f"  style {config.style!r}, size {h}x{w}, 1 + {args.frames} frames")
    print(f"  generation: {args.clips / elapsed:8.1f} clips/s  ({1000 * elapsed / args.clips:.1f} ms/clip)")
    print(f"  warp(frame 0, exact flow) vs frame t, mean |error| over {args.error_clips} clips:")
    share = 100 * n_vis / (n_vis + n_occ)
    print(f"    visible pixels  {abs_vis / max(n_vis, 1):.4f}  ({share:.1f}% of pixels)")
    print(f"    occluded pixels {abs_occ / max(n_occ, 1):.4f}")


if __name__ == "__main__":
    main()
