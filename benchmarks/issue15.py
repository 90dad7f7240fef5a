"""Issue 15's scoreboard: every performance goal, measured in one run, against its target.

Runs the two benchmarks one after the other (never side by side: on a 2-core machine one busy
core doubles a step), each in its own process at one thread:

* ``bench_synthetic.py --json`` -- the synthetic renderer's clips/s (64x64, 1 + 8 frames, both styles);
* ``bench_model.py --json PATH`` -- the stage-2 model in yardstick units (training step with and
  without the perceptual term, generation in fp32 and bf16, peak RSS, convolution peak);

then prints one line per goal of the issue: the target, what was measured (with the absolute
figure) and whether it is met. Nothing here is a timed test: the figures depend on the machine
and its load, which the line above the table states.

Usage, from the repository root::

    OMP_NUM_THREADS=1 LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 \\
        python benchmarks/issue15.py --quick               # about 3 minutes on a quiet machine
    ... python benchmarks/issue15.py                       # the full benchmarks (~10 minutes)
    ... python benchmarks/issue15.py --quick --json s.json # also every figure as JSON
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: The issue's targets.
TARGETS = {
    "vgg_step_vs_authors": 6.0,      # x, training step with the perceptual term
    "no_vgg_fraction_of_peak": 0.70,  # of the fp32 convolution peak, whole step
    "generate_vs_authors": 50.0,     # x, per clip
    "renderer_clips_per_s": 300.0,   # 64x64, 1 + 8 frames, one core
    "peak_rss_gib": 2.5,             # batch-4 loop with the perceptual term
}


def run_synthetic(quick: bool) -> dict:
    """bench_synthetic.py's JSON (its last stdout line)."""
    cmd = [sys.executable, str(HERE / "bench_synthetic.py"), "--json", *(["--quick"] if quick else [])]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_model(quick: bool) -> dict:
    """bench_model.py's JSON (written to a temporary file)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.json"
        cmd = [sys.executable, str(HERE / "bench_model.py"), "--json", str(path),
               *(["--quick"] if quick else [])]
        subprocess.run(cmd, capture_output=True, text=True, check=True)
        return json.loads(path.read_text())


def scoreboard(synthetic: dict, model: dict) -> list[dict]:
    """One row per goal: {"goal", "target", "measured", "met"} (measured: a short text)."""
    s, d = model["seconds"], model["derived"]
    vs, frac = d["vs_authors"], d["fraction_of_fp32_peak"]
    rows = []

    def row(goal: str, target: str, measured: str, met: bool) -> None:
        rows.append({"goal": goal, "target": target, "measured": measured, "met": bool(met)})

    t = TARGETS["vgg_step_vs_authors"]
    for key, label in (("step_vgg_fp32", "fp32 term (default)"), ("step_vgg_bf16_cl", "bf16 + channels-last"),
                       ("step_vgg_bf16_cl_amp", "bf16 + cl + model autocast"),
                       ("step_vgg_fp32_cl_half_res", "fp32 + cl, half-res term")):
        if key not in vs:  # a bench_model.py JSON from before the row existed
            continue
        row(f"1. training step with VGG-19, {label}", f">= {t:g}x the authors'",
            f"{vs[key]:.2f}x ({s[key]:.3f} s, {d['units'][key]:.2f} units)", vs[key] >= t)
    t = TARGETS["no_vgg_fraction_of_peak"]
    row("2. step without VGG, share of the fp32 conv peak", f">= {100 * t:.0f}%",
        f"{100 * frac['step_no_vgg']:.0f}% ({d['achieved_gflops']['step_no_vgg']:.0f} of "
        f"{model['peak_gflops']['fp32']:.0f} GFLOP/s)", frac["step_no_vgg"] >= t)
    t = TARGETS["generate_vs_authors"]
    for key, label in (("generate_b1", "fp32"), ("generate_b1_bf16", "bf16")):
        row(f"3. generation per clip, batch 1, {label}", f">= {t:g}x the authors'",
            f"{vs[key]:.2f}x ({s[key]:.4f} s/clip)", vs[key] >= t)
    for suffix, label in (("", "fp32"), ("_bf16", "bf16")):
        ratio = s[f"generate_b8{suffix}"] / s[f"generate_b1{suffix}"]
        row(f"3. batch-8 generation per clip vs batch 1, {label}", "< 1", f"{ratio:.2f}", ratio < 1)
    t = TARGETS["renderer_clips_per_s"]
    for style, fig in synthetic["styles"].items():
        cps = fig["cpu_clips_per_s"]["median"]
        row(f"4. renderer, {style} streets, {synthetic['size']}, 1 + {synthetic['frames']}",
            f">= {t:g} clips/s", f"{cps:.1f} clips/s (CPU time, median)", cps >= t)
    t = TARGETS["peak_rss_gib"]
    rss = model["peak_rss_gib"]["vgg_fp32"]
    row("5. peak RSS, batch-4 loop with the fp32 VGG term", f"<= {t:g} GiB", f"{rss:.2f} GiB", rss <= t)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="both benchmarks' --quick versions")
    parser.add_argument("--json", metavar="PATH", help="also write the rows and both benchmarks' figures")
    args = parser.parse_args(argv)
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    synthetic = run_synthetic(args.quick)
    model = run_model(args.quick)
    rows = scoreboard(synthetic, model)
    m = model["meta"]
    load_after = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"issue 15 scoreboard -- {m['cpu']}, torch {m['torch']}, {m['threads']} thread(s), "
          f"{m['allocator']}, bf16 {'native' if m['bf16_supported'] else 'not native'}; load {load_before} "
          f"before, {load_after} after{'; --quick' if args.quick else ''}")
    width = max(len(r["goal"]) for r in rows)
    for r in rows:
        verdict = "met" if r["met"] else "NOT met"
        print(f"  {r['goal']:{width}s}  {r['target']:>22s}  {r['measured']:42s}  {verdict}")
    if args.json:
        everything = {"rows": rows, "synthetic": synthetic, "model": model}
        Path(args.json).write_text(json.dumps(everything, indent=2) + "\n")
        print(f"JSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
