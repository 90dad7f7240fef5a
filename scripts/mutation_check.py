"""Mutation check: plant realistic single bugs in seg2vid, one at a time, and see the unit tests fail.

Each mutant is a unique code snippet (old text -> new text) searched for in every
``seg2vid/**/*.py`` file, so it survives modules being moved or renamed; an optional file hint
only disambiguates. For every mutant the tree is copied once to a temporary folder (per worker),
the snippet is replaced there, and the unit tests (never tests/test_notebooks.py) run with
``-x -q`` and a per-mutant timeout. Outcomes:

* killed     -- a test failed (or the run timed out / crashed): the suite sees the bug;
* survived   -- every test passed: a bug the suite cannot see (add a test, or argue it away);
* stale      -- the snippet was not found anywhere (the code changed: update the mutant);
* ambiguous  -- the snippet occurs more than once and no hint singles one out.

By default each mutant first runs only the test files mapped to its area (fast); a mutant that
survives them is re-run with the whole unit suite before it counts as a survivor, so the score is
the same as with ``--full`` (which always runs the whole suite). Stale and ambiguous mutants are
reported on their own and left out of the score.

Not part of CI (minutes, not seconds). Run before resolving an issue that touches the mutated
modules, and state the score::

    python scripts/mutation_check.py            # all mutants, 1 worker
    python scripts/mutation_check.py --list     # names, areas, and whether each snippet is found
    python scripts/mutation_check.py --only ssim_constants_swapped -j 2 --full
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "seg2vid"


@dataclass(frozen=True)
class Mutant:
    """One planted bug: replace ``old`` (found exactly once in seg2vid/**/*.py) by ``new``."""

    name: str
    area: str
    old: str
    new: str
    #: substrings of the file's path (any may match), only to choose between several hits
    hint: tuple[str, ...] = ()
    #: test files to run besides the area's (where the tests that guard it live elsewhere)
    tests: tuple[str, ...] = ()
    why: str = ""


#: Test files per area, run first (a survivor is re-run with the whole unit suite).
AREA_TESTS: dict[str, list[str]] = {
    "flow": ["tests/test_flow.py", "tests/test_flow_occlusion.py", "tests/test_losses.py"],
    "cvae": ["tests/test_cvae.py", "tests/test_objective.py"],
    "losses": ["tests/test_losses.py", "tests/test_objective.py"],
    "objective": ["tests/test_objective.py"],
    "metrics": ["tests/test_metrics.py", "tests/test_evaluate.py"],
    "evaluate": ["tests/test_evaluate.py"],
    "synthetic": ["tests/test_synthetic.py", "tests/test_flow_occlusion.py"],
    "labels": ["tests/test_labels.py", "tests/test_datasets.py"],
    "pipeline": ["tests/test_pipeline.py"],
    "trainers": ["tests/test_train.py", "tests/test_spade.py"],
    "checkpoints": ["tests/test_train.py", "tests/test_spade.py", "tests/test_shipped_checkpoints.py"],
}

M = Mutant
#: Where the two trainers live (now, and after the planned moves): hints for shared snippets.
STAGE2 = ("seg2vid/train.py", "training/train.py", "training/stage2", "training/trainer")
STAGE1 = ("train_stage1", "training/stage1")
MUTANTS: list[Mutant] = [
    # ------------------------------------------------------------------ flow
    M("warp_sign_flipped", "flow",
      "src = pixel_grid(h, w, flow_px.device, flow_px.dtype) - flow_px  # where",
      "src = pixel_grid(h, w, flow_px.device, flow_px.dtype) + flow_px  # where"),
    M("normalisation_align_corners_true", "flow",
      "return (2.0 * coord + 1.0) / size - 1.0", "return 2.0 * coord / (size - 1) - 1.0"),
    M("in_frame_right_edge_strict", "flow", "(x <= w - 0.5)", "(x < w - 0.5)"),
    M("in_frame_bottom_edge_off_by_one", "flow", "(y <= h - 0.5)", "(y <= h - 1.5)"),
    M("occlusion_without_beta", "flow",
      "consistent = (residual < alpha * scale + beta)", "consistent = (residual < alpha * scale)"),
    M("occlusion_without_in_frame", "flow",
      "return consistent * in_frame_mask(flow_fwd)", "return consistent"),
    M("resize_flow_scales_swapped", "flow",
      "torch.tensor([size[1] / w, size[0] / h]", "torch.tensor([size[0] / h, size[1] / w]"),
    M("warp_labels_rounds_down", "flow",
      "col = torch.floor(src[:, 0] + 0.5).long()", "col = torch.floor(src[:, 0]).long()",
      tests=("tests/test_segmenter.py",)),
    # ------------------------------------------------------------------ cvae
    M("reparameterize_std_is_variance", "cvae",
      "return mu + torch.exp(0.5 * logvar) * eps", "return mu + torch.exp(logvar) * eps"),
    M("kl_missing_half", "cvae", "per_dim = 0.5 * (torch.expm1", "per_dim = (torch.expm1"),
    M("kl_prior_variance_inverted", "cvae",
      "(mu - mu_p).square() * torch.exp(-logvar_p)", "(mu - mu_p).square() * torch.exp(logvar_p)"),
    M("kl_mean_over_latent", "cvae",
      "per_sample = per_dim.sum(dim=-1)", "per_sample = per_dim.mean(dim=-1)"),
    M("gaussian_head_no_clamp", "cvae",
      "return mu, logvar.clamp(*LOGVAR_RANGE)", "return mu, logvar"),
    M("elbo_ignores_beta", "cvae",
      "return recon + beta * kl, recon, kl", "return recon + kl, recon, kl"),
    # ------------------------------------------------------------------ losses
    M("ssim_constants_swapped", "losses",
      "SSIM_C1 = 0.01**2\nSSIM_C2 = 0.03**2", "SSIM_C1 = 0.03**2\nSSIM_C2 = 0.01**2"),
    M("ssim_covariance_without_means", "losses",
      "sigma_xy = mean_xy - mu_x * mu_y", "sigma_xy = mean_xy"),
    M("smoothness_weight_y_inverted", "losses",
      "weight_y = torch.exp(-edge_scale *", "weight_y = 1 - torch.exp(-edge_scale *"),
    M("smoothness_weight_x_sign", "losses",
      "weight_x = torch.exp(-edge_scale *", "weight_x = torch.exp(edge_scale *"),
    M("smoothness_mean_not_halved", "losses",
      "return 0.5 * (term_x.mean() + term_y.mean())", "return term_x.mean() + term_y.mean()"),
    M("mean_reduction_ignores_mask", "losses",
      'if reduction == "mean":\n        return masked_mean(loss_map, mask)',
      'if reduction == "mean":\n        return masked_mean(loss_map, None)'),
    M("ssim_photometric_l1_weight", "losses",
      "loss_map = alpha * dissimilarity + (1 - alpha) * (pred - target).abs()",
      "loss_map = alpha * dissimilarity + alpha * (pred - target).abs()"),
    M("consistency_residual_sign", "losses",
      "residual = flow_fwd + warp(flow_bwd, flow_fwd", "residual = flow_fwd - warp(flow_bwd, flow_fwd"),
    # ------------------------------------------------------------------ objective
    M("fwd_consistency_gated_by_mask_bwd", "objective",
      'forward_backward_consistency_loss(output.flow_fwd, output.flow_bwd, gate_fwd, "none")',
      'forward_backward_consistency_loss(output.flow_fwd, output.flow_bwd, gate_bwd, "none")'),
    M("bwd_consistency_gated_by_mask_fwd", "objective",
      'forward_backward_consistency_loss(output.flow_bwd, output.flow_fwd, gate_bwd, "none")',
      'forward_backward_consistency_loss(output.flow_bwd, output.flow_fwd, gate_fwd, "none")'),
    M("fwd_smoothness_edges_of_frame0", "objective",
      "fwd = smoothness_loss(output.flow_fwd, future,", "fwd = smoothness_loss(output.flow_fwd, first,"),
    M("bwd_smoothness_edges_of_frame_t", "objective",
      "bwd = smoothness_loss(output.flow_bwd, first,", "bwd = smoothness_loss(output.flow_bwd, future,"),
    M("recon_back_gated_by_mask_fwd", "objective",
      "photometric_l1(back, first, gate_bwd", "photometric_l1(back, first, gate_fwd"),
    M("recon_before_on_refined_frames", "objective",
      "photometric_l1(output.warped, future, gate_fwd", "photometric_l1(output.frames, future, gate_fwd"),
    M("mask_term_forward_only", "objective",
      "return (1 - output.mask_fwd).mean() + (1 - output.mask_bwd).mean()",
      "return (1 - output.mask_fwd).mean()"),
    M("kl_warmup_off_by_one", "objective",
      "w *= min(1.0, (step + 1) / self.kl_warmup_steps)", "w *= min(1.0, step / self.kl_warmup_steps)"),
    M("pixel_flow_weight_scale", "objective", "scale = 2 / (width - 1)", "scale = 2 / width"),
    # ------------------------------------------------------------------ metrics
    M("occluded_iou_on_visible_pixels", "metrics",
      'scores["occluded_iou"] = frame_mask_iou(1 - visible_pred, 1 - visible_true)',
      'scores["occluded_iou"] = frame_mask_iou(visible_pred, visible_true)'),
    M("epe_ignores_mask", "metrics",
      "distance, valid = torch.broadcast_tensors(distance, mask > 0.5)",
      "distance, valid = torch.broadcast_tensors(distance, mask > -1)"),
    M("frame_epe_divides_by_all_pixels", "metrics",
      "return (distance * valid).sum(dim=(-3, -2, -1)) / valid.sum(dim=(-3, -2, -1))",
      "return (distance * valid).sum(dim=(-3, -2, -1)) / valid[..., :1, :, :].numel()"),
    M("mask_iou_without_fn", "metrics",
      'return _ratio(c["tp"], c["tp"] + c["fp"] + c["fn"])', 'return _ratio(c["tp"], c["tp"] + c["fp"])'),
    M("frame_iou_union_is_intersection", "metrics",
      "union = (p | t).sum(dim=(-3, -2, -1))", "union = (p & t).sum(dim=(-3, -2, -1)) + (~p & t).sum(dim=(-3, -2, -1))"),
    M("best_index_direction_swapped", "metrics",
      "return per_sample.argmax(dim=0) if higher_is_better else per_sample.argmin(dim=0)",
      "return per_sample.argmin(dim=0) if higher_is_better else per_sample.argmax(dim=0)"),
    M("summarize_psnr_uncapped", "metrics",
      "values = values.clamp(max=PSNR_CAP_DB)  # +inf", "values = values  # +inf"),
    M("masked_psnr_counts_one_channel", "metrics",
      "weights.sum(dim=(1, 2, 3))", "weights[:, :1].sum(dim=(1, 2, 3))"),
    # ------------------------------------------------------------------ evaluate
    M("evaluate_occlusion_iou_on_visible_pixels", "evaluate",
      "metrics.frame_mask_iou(1 - masks[i], 1 - visible)", "metrics.frame_mask_iou(masks[i], visible)"),
    M("evaluate_epe_over_all_pixels", "evaluate",
      "metrics.frame_end_point_error(flows[i], flow_true, visible)",
      "metrics.frame_end_point_error(flows[i], flow_true, None)"),
    M("evaluate_best_ssim_of_another_sample", "evaluate",
      'add("ssim_best_of_n", ssim[best, rows])', 'add("ssim_best_of_n", ssim.max(0).values)'),
    M("evaluate_hidden_pixels_inverted", "evaluate",
      'hidden = batch["visible_fwd"].to(device) < 0.5', 'hidden = batch["visible_fwd"].to(device) > 0.5'),
    M("evaluate_frames_off_by_one", "evaluate",
      "psnr = torch.stack([metrics.psnr(video[i, :, 1:], true)",
      "psnr = torch.stack([metrics.psnr(video[i, :, :-1], true)"),
    # ------------------------------------------------------------------ synthetic data
    M("synthetic_bwd_flow_frame_off_by_one", "synthetic",
      "t_future = np.arange(1, T + 1)[:, None]", "t_future = np.arange(0, T)[:, None]"),
    M("synthetic_fwd_flow_frame_off_by_one", "synthetic",
      "a_t, b_t = a_all[1:].reshape(-1), b_all[1:].reshape(-1)",
      "a_t, b_t = a_all[:-1].reshape(-1), b_all[:-1].reshape(-1)"),
    M("synthetic_visibility_ignores_occluders", "synthetic",
      "vis_fwd = ok_q & (self._front_at(0, q[0], q[1], ok_q)[0] == owner[1:])", "vis_fwd = ok_q"),
    M("synthetic_flow_sign", "synthetic",
      "flow_fwd = np.where(q_ok[None], grid - q, 0)", "flow_fwd = np.where(q_ok[None], q - grid, 0)"),
    M("synthetic_inside_left_edge", "synthetic",
      "return (p[0] >= -0.5) & (p[0] <= w - 0.5)", "return (p[0] >= 0.5) & (p[0] <= w - 0.5)"),
    # ------------------------------------------------------------------ labels
    M("one_hot_void_into_last_class", "labels",
      "torch.full_like(labels, self.num_classes), labels)",
      "torch.full_like(labels, self.num_classes - 1), labels)"),
    M("label_check_off_by_one", "labels",
      "((values < 0) | (values >= self.num_classes))", "((values < 0) | (values > self.num_classes))"),
    M("cityscapes_road_becomes_void", "labels",
      "_c.train_id if _c.train_id >= 0 else 255", "_c.train_id if _c.train_id > 0 else 255"),
    M("foreground_without_vehicles", "labels",
      'c.category in ("human", "vehicle")', 'c.category in ("human",)'),
    # ------------------------------------------------------------------ pipeline
    M("pipeline_labels_resized_bilinear", "pipeline",
      'labels = F.interpolate(labels[None, None].float(), size=size, mode="nearest")[0, 0].long()\n'
      "        return labels",
      'labels = F.interpolate(labels[None, None].float(), size=size, mode="bilinear")[0, 0].long()\n'
      "        return labels"),
    M("pipeline_drops_first_frame", "pipeline",
      "videos.append(out.video.float().clamp(0, 1).cpu())", "videos.append(out.frames.float().clamp(0, 1).cpu())"),
    # (Removed as EQUIVALENT: dropping the .clamp(0, 1) of stage 1's first frame; both first-frame
    # sources already return [0, 1]: the SPADE generator ends in a sigmoid, ImageFirstFrame clamps.)
    M("pipeline_stage2_unseeded", "pipeline",
      "out = self.stage2.sample(first, onehot, n_samples=n, generator=generator)",
      "out = self.stage2.sample(first, onehot, n_samples=n, generator=None)"),
    # ------------------------------------------------------------------ trainers
    M("stage2_clip_indices_off_by_one_step", "trainers",
      "first = ((step - 1) * self.process.world_size + self.process.rank) * b",
      "first = (step * self.process.world_size + self.process.rank) * b"),
    M("stage2_kl_warmup_ignores_step", "trainers",
      "seg2vid_loss(output, frames, self.loss_config, self.step, self.perceptual, truth)",
      "seg2vid_loss(output, frames, self.loss_config, 0, self.perceptual, truth)"),
    M("stage2_step_not_counted", "trainers",
      "        self.step += 1\n        return values", "        return values", hint=STAGE2),
    M("stage2_resume_skips_rng", "trainers",
      'set_rng_state(ckpt["rng"], self.device)', "pass", hint=STAGE2),
    M("stage2_resume_keeps_stale_log_rows", "trainers",
      "            self._truncate_log(self.step)", "            pass", hint=STAGE2),
    M("stage2_frames_not_scaled", "trainers",
      "frames, labels = self._pool.get(indices)\n            return frames.float() / 255, labels.long()",
      "frames, labels = self._pool.get(indices)\n            return frames.float(), labels.long()"),
    M("stage1_hinge_real_sign", "trainers",
      "torch.relu(1 - real[-1]).mean() + torch.relu(1 + fake[-1]).mean()",
      "torch.relu(1 + real[-1]).mean() + torch.relu(1 + fake[-1]).mean()"),
    M("stage1_feature_matching_signed", "trainers",
      "(f - r.detach()).abs().mean()", "(f - r.detach()).mean()"),
    M("stage1_resume_skips_rng", "trainers",
      'set_rng_state(ckpt["rng"], self.device)', "pass", hint=STAGE1),
    # ------------------------------------------------------------------ checkpoints
    # both trainers save through TrainLoop._write_checkpoint
    M("checkpoint_not_atomic", "checkpoints",
      "atomic_write(self.checkpoint_path, lambda fh: torch.save(ckpt, fh))",
      "torch.save(ckpt, self.checkpoint_path)", hint=("training/loop",)),
    M("atomic_write_leaves_temporary", "checkpoints",
      "        os.replace(tmp, path)\n    except BaseException:\n        Path(tmp).unlink(missing_ok=True)\n        raise",
      "        os.replace(tmp, path)\n    except BaseException:\n        raise", hint=("train", "checkpoints")),
    M("export_drops_step", "checkpoints",
      '"seg2vid_version", "step", "model", "model_config",', '"seg2vid_version", "model", "model_config",'),
    M("load_checkpoint_unsafe_pickle", "checkpoints",
      "ckpt = torch.load(path, map_location=map_location, weights_only=True)",
      "ckpt = torch.load(path, map_location=map_location, weights_only=False)", hint=("checkpoints",)),
]


# ----------------------------------------------------------------------------- locating


def package_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / PACKAGE).rglob("*.py") if "__pycache__" not in p.parts)


def locate(mutant: Mutant, root: Path) -> tuple[str, Path | None, str]:
    """``("ok", file, "")``, ``("stale", None, why)`` or ``("ambiguous", None, where)``.

    The hint only narrows several hits down; a single hit is used whatever the hint says (modules
    move), and hits that no hint matches are an ambiguity, not a guess."""
    hits = []
    for path in package_files(root):
        count = path.read_text().count(mutant.old)
        if count:
            hits.append((path.relative_to(root).as_posix(), count))
    if not hits:
        return "stale", None, "snippet not found"
    if len(hits) > 1 and mutant.hint:
        hits = [h for h in hits if any(part in h[0] for part in mutant.hint)] or hits
    if len(hits) > 1 or hits[0][1] > 1:
        return "ambiguous", None, ", ".join(f"{rel} x{n}" for rel, n in hits)
    return "ok", root / hits[0][0], ""


# ----------------------------------------------------------------------------- running


#: Test files that run notebooks (papermill, a browser): not part of the unit tests.
NOT_UNIT_TESTS = ("test_notebooks.py", "test_browser.py")


def copy_tree(dest: Path) -> Path:
    ignore = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.pyc", ".pytest_cache", ".ipynb_checkpoints")
    shutil.copytree(ROOT, dest, ignore=ignore, symlinks=True)
    return dest


def unit_test_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in (root / "tests").glob("test_*.py")
                  if p.name not in NOT_UNIT_TESTS)


def run_tests(root: Path, files: list[str], timeout: float) -> tuple[str, float, str]:
    """("pass" | "fail" | "timeout", seconds, last lines of the output)."""
    env = dict(os.environ, PYTHONPATH=str(root), PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1", SEG2VID_PROGRESS="0")
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
           "--ignore=tests/test_notebooks.py", "--ignore=tests/test_browser.py", *files]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.perf_counter() - start, ""
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
    return ("pass" if proc.returncode == 0 else "fail"), time.perf_counter() - start, tail


def check_mutant(mutant: Mutant, root: Path, full: bool, timeout: float) -> dict:
    status, path, why = locate(mutant, root)
    if status != "ok":
        return {"name": mutant.name, "area": mutant.area, "outcome": status, "detail": why, "seconds": 0.0}
    original = path.read_text()
    path.write_text(original.replace(mutant.old, mutant.new, 1))
    seconds = 0.0
    try:
        mapped = AREA_TESTS[mutant.area] + [t for t in mutant.tests if t not in AREA_TESTS[mutant.area]]
        stages = [unit_test_files(root)] if full else [mapped, unit_test_files(root)]
        for files in stages:
            result, took, tail = run_tests(root, files, timeout)
            seconds += took
            if result != "pass":
                detail = "timed out" if result == "timeout" else tail.splitlines()[0] if tail else ""
                return {"name": mutant.name, "area": mutant.area, "outcome": "killed", "detail": detail,
                        "seconds": seconds, "file": path.relative_to(root).as_posix()}
        return {"name": mutant.name, "area": mutant.area, "outcome": "survived", "detail": mutant.why,
                "seconds": seconds, "file": path.relative_to(root).as_posix()}
    finally:
        path.write_text(original)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", action="store_true", help="list the mutants and whether each is found")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only this mutant (repeatable; a prefix of a name also works)")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="parallel workers (default 1)")
    parser.add_argument("--full", action="store_true", help="always run the whole unit suite per mutant")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per test run (default 300)")
    parser.add_argument("--no-baseline", action="store_true", help="skip checking the unmutated suite first")
    args = parser.parse_args(argv)

    names = [m.name for m in MUTANTS]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise SystemExit(f"duplicate mutant names: {sorted(duplicates)}")
    chosen = [m for m in MUTANTS if not args.only or any(m.name.startswith(o) for o in args.only)]
    if not chosen:
        raise SystemExit(f"no mutant matches {args.only}; see --list")

    if args.list:
        for m in chosen:
            status, path, why = locate(m, ROOT)
            where = path.relative_to(ROOT).as_posix() if path else why
            print(f"{m.name:44s} {m.area:12s} {status:9s} {where}")
        return 0

    with tempfile.TemporaryDirectory(prefix="seg2vid-mutants-") as tmp:
        workers = max(1, min(args.jobs, len(chosen)))
        roots = [copy_tree(Path(tmp) / f"tree{k}") for k in range(workers)]
        if not args.no_baseline:
            result, took, tail = run_tests(roots[0], unit_test_files(roots[0]), args.timeout * 2)
            if result != "pass":
                print(f"the UNMUTATED unit tests do not pass ({result}, {took:.0f} s):\n{tail}")
                return 2
            print(f"baseline: unit tests pass unmutated ({took:.0f} s)")
        free = list(roots)
        results = []

        def job(mutant: Mutant) -> dict:
            root = free.pop()
            try:
                return check_mutant(mutant, root, args.full, args.timeout)
            finally:
                free.append(root)

        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for r in pool.map(job, chosen):
                results.append(r)
                print(f"{r['outcome']:9s} {r['seconds']:6.1f} s  {r['name']}  {r.get('detail', '')}", flush=True)

    counted = [r for r in results if r["outcome"] in ("killed", "survived")]
    killed = sum(r["outcome"] == "killed" for r in counted)
    print()
    for outcome in ("survived", "stale", "ambiguous"):
        rows = [r for r in results if r["outcome"] == outcome]
        if rows:
            print(f"{outcome} ({len(rows)}):")
            for r in rows:
                print(f"  {r['name']} [{r['area']}] {r.get('file', '')} {r.get('detail', '')}")
    score = 100 * killed / len(counted) if counted else float("nan")
    print(f"mutation score: {killed}/{len(counted)} killed = {score:.1f} % "
          f"({len(results) - len(counted)} stale or ambiguous, not counted; "
          f"{time.perf_counter() - start:.0f} s, {'full suite' if args.full else 'mapped tests, survivors re-run in full'})")
    return 0 if counted and killed == len(counted) else 1


if __name__ == "__main__":
    sys.exit(main())
