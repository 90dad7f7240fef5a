"""The ``seg2vid`` console script.

Sub-commands (more arrive with the later parts of the course):

``seg2vid demo``
    Render one synthetic street clip and write it as a GIF and an MP4 (frames | label map |
    flow | visibility side by side), a PNG strip (rows: frames, labels, flow, visibility;
    columns: time) and the exact flows as Middlebury ``.flo`` files, then print where they are.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from seg2vid import __version__


def _size(text: str) -> tuple[int, int]:
    """Parse "64" (square) or "128x256" (HxW)."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 64 or 128x256, got {text!r}") from None
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 8:
        raise argparse.ArgumentTypeError(f"size must be H or HxW with both >= 8, got {text!r}")
    return parts[0], parts[1]


def _demo(args: argparse.Namespace) -> int:
    from seg2vid.data.synthetic import SceneConfig, render_clip
    from seg2vid.flow import write_flo
    from seg2vid.viz import clip_panel, clip_strip, save_gif, save_mp4, save_png

    height, width = args.size
    config = SceneConfig(height=height, width=width, frames=args.frames, motion=args.motion)
    clip = render_clip(config, seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    panel = clip_panel(clip, scale=args.scale)
    written = [
        save_gif(out / "clip.gif", panel, fps=args.fps),
        save_mp4(out / "clip.mp4", panel, fps=args.fps),
        save_png(out / "strip.png", clip_strip(clip, scale=args.scale)),
    ]
    flow_dir = out / "flow"
    flow_dir.mkdir(exist_ok=True)
    for t, flow in enumerate(clip["flow_fwd"], start=1):
        write_flo(flow_dir / f"flow_0_to_{t}.flo", flow)
    print(f"seg2vid demo: synthetic clip, seed {args.seed}, {height}x{width}, 1 + {args.frames} frames")
    print("  panels: RGB frame | label map | flow from frame 0 | visible since frame 0")
    for path in written:
        print(f"  wrote {path}")
    print(f"  wrote {args.frames} exact flow fields to {flow_dir}/ (Middlebury .flo)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``seg2vid`` command (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(
        prog="seg2vid", description="Video generation from a single semantic label map: course tools."
    )
    parser.add_argument("--version", action="version", version=f"seg2vid {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    demo = sub.add_parser(
        "demo", help="render a synthetic clip, its label maps and exact flow to GIF/MP4/PNG",
        description="Render a synthetic street clip with its label maps, exact flow and "
        "visibility, and write them as GIF, MP4, a PNG strip and .flo files.",
    )
    demo.add_argument("--out", default="demo_output", help="output folder (default: demo_output)")
    demo.add_argument("--size", type=_size, default=(128, 256), help="H or HxW (default: 128x256)")
    demo.add_argument("--frames", type=int, default=8, help="future frames T (default: 8)")
    demo.add_argument("--seed", type=int, default=0, help="scene seed (default: 0)")
    demo.add_argument("--motion", type=float, default=1.0, help="speed scale (default: 1)")
    demo.add_argument("--fps", type=float, default=4.0, help="frames per second (default: 4)")
    demo.add_argument("--scale", type=int, default=2, help="pixel upscaling (default: 2)")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``seg2vid`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"seg2vid {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
