"""Prepared GPU check: the CUDA paths of training and generation, run once, figures as JSON.

Needs only torch and torchvision (and numpy, pillow, which they bring): PyAV, flow-vis,
ipywidgets, papermill, matplotlib, tqdm and scikit-learn may all be missing; nothing is fetched.
Run it from the repository root (or with the package installed) on a CUDA machine::

    python benchmarks/gpu_check.py                          # every case; stops itself at --deadline 450 s
    python benchmarks/gpu_check.py --cases bf16,generate    # some cases
    python benchmarks/gpu_check.py --json gpu_check.json    # also write the JSON to a file
    python benchmarks/gpu_check.py --device cpu --quick     # smoke run on a CPU (tiny, 2 steps)

The cases (each in its own process, so that one failure, a compile cache or a memory peak does
not leak into the next; the training cases use the shipped run config ``synthetic_128_gpu``:
the paper network at 128x128, 1 + 4 frames, batch 16, synthetic streets):

* ``fp32``: plain float32 training (the reference for the others);
* ``bf16``: ``TrainConfig(amp="bf16")``, autocast to bfloat16;
* ``fp16``: ``amp="fp16"``: autocast to float16 with the trainer's GradScaler (CUDA only);
* ``compile``: ``compile=True`` (``torch.compile`` of the training step) with bf16 (CUDA only:
  on a CPU it needs a C++ toolchain and minutes; ``--cpu-compile`` runs it anyway);
* ``torchrun``: ``python -m torch.distributed.run --standalone --nproc_per_node N`` (N =
  ``--nproc``, default 1) running the trainer under DDP, NCCL on CUDA (gloo on the CPU). With one
  process the trainer does not wrap the model itself (it does for N > 1), so this check joins the
  process group and wraps it in ``DistributedDataParallel`` the same way: NCCL then all-reduces
  every step's gradients;
* ``generate``: ``Seg2Vid.sample`` of the 128x128 network (random weights) at batch 1 and 8, in
  float32 and with ``precision="bf16"`` (bfloat16 autocast), and the shipped 64x64 two-stage
  pipeline when its checkpoints are in the tree.

Every training case trains ``--steps`` steps on a pool of ``4 * batch`` clips (each rendered at
its first use: the first ``--warmup`` steps render them and are left out of the timing) and
reports steps/s and clips/s over the remaining steps (from the trainer's per-step ``data_s`` +
``step_s``), the peak GPU memory (``torch.cuda.max_memory_allocated``) and the loss of the last
step. A case that cannot run here says ``"status": "skipped"`` and why; one that fails says
``"status": "failed"`` with the end of its output.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a clone without installing
    sys.path.insert(0, str(ROOT))

# torch.compile last: the slowest and likeliest to fail; the deadline stops the check in time.
CASES = ("fp32", "bf16", "fp16", "torchrun", "generate", "compile")
RESULT_TAG = "GPU_CHECK_RESULT "
RUN_CONFIG = "synthetic_128_gpu"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:1, or cpu for a smoke run")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    parser.add_argument("--quick", action="store_true",
                        help="tiny network at 32x32, 1 + 2 frames, batch 2, 2 steps (a smoke run)")
    parser.add_argument("--steps", type=int, default=None, help="training steps per case (default 40)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="first steps left out of the timing (default 5; they render the pool)")
    parser.add_argument("--batch-size", type=int, default=None, help="clips per step (default: the config's)")
    parser.add_argument("--nproc", type=int, default=1, help="torchrun processes (one GPU each; default 1)")
    parser.add_argument("--cpu-compile", action="store_true", help="run the compile case on a CPU too")
    parser.add_argument("--case-timeout", type=float, default=300, help="seconds per case (default 300)")
    parser.add_argument("--deadline", type=float, default=450,
                        help="seconds for the whole check: cases that would start later are skipped and "
                        "a running one gets what is left (default 450, inside the 8 minutes)")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the JSON there")
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)  # worker mode: one case
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)  # worker: run folder
    return parser


# ----------------------------------------------------------------------------- settings


def _settings(args: argparse.Namespace) -> dict:
    """Model, loss and train settings of the training cases (plain values, passed to workers)."""
    from seg2vid.configs import load_run_config

    run = load_run_config(RUN_CONFIG)
    model = run.model_config()
    train = dict(run.train)
    if args.quick:
        from seg2vid.models.seg2vid import PRESETS

        model = PRESETS["tiny"].replace(height=32, width=32, frames=2)
        train["batch_size"] = 2
    if args.batch_size:
        train["batch_size"] = args.batch_size
    steps = args.steps or (2 if args.quick else 40)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 5)
    if not 0 <= warmup < steps:
        raise SystemExit(f"need 0 <= --warmup < --steps, got {warmup} and {steps}")
    batch = train["batch_size"]
    train.update(steps=steps, num_clips=4 * batch, sample_every=0, checkpoint_every=0, log_every=1,
                 num_workers=0, device=args.device)
    return {"model": model.to_dict(), "loss": run.loss_config(model.width).to_dict(), "train": train,
            "warmup": warmup}


# ----------------------------------------------------------------------------- workers


def _peak_memory(device) -> dict:
    import torch

    if device.type != "cuda":
        return {"peak_gpu_memory_mib": None}
    return {"peak_gpu_memory_mib": round(torch.cuda.max_memory_allocated(device) / 2**20, 1)}


def _train_case(case: str, settings: dict, out: Path) -> dict:
    """Train one case (worker process); under torchrun, this is every rank."""
    import torch

    from seg2vid.models.seg2vid import Seg2VidConfig
    from seg2vid.training import distributed
    from seg2vid.training.objective import LossConfig
    from seg2vid.training.stage2 import TrainConfig, Trainer
    from seg2vid.utils import pick_device

    train = dict(settings["train"])
    train["amp"] = {"fp32": "off", "fp16": "fp16"}.get(case, "bf16")
    if train["device"] == "cpu" and case == "torchrun":
        train["amp"] = "off"  # gloo + bf16 autocast on a CPU adds nothing to check
    train["compile"] = case == "compile"
    info = distributed.process_info()
    own_group = False
    if case == "torchrun" and not info.distributed:
        # One process: the trainer leaves the model unwrapped, so join a group of one and wrap it
        # as the trainer does for several (below), which puts NCCL's all-reduce in every step.
        import torch.distributed as dist

        device = pick_device(train["device"])
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        own_group = True
    trainer = Trainer(Seg2VidConfig.from_dict(settings["model"]), TrainConfig.from_dict(train),
                      LossConfig.from_dict(settings["loss"]), out)
    if own_group:
        ids = [trainer.device.index] if trainer.device.type == "cuda" else None
        trainer.step_model = torch.nn.parallel.DistributedDataParallel(trainer.model, device_ids=ids)
    if trainer.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(trainer.device)
    started = time.perf_counter()
    try:
        summary = trainer.train()
    finally:
        trainer.close()
        if own_group:
            distributed.teardown()
    wall = time.perf_counter() - started
    result = {"amp": train["amp"], "compile": train["compile"], "device": str(trainer.device),
              "processes": max(info.world_size, 1), "batch_per_process": train["batch_size"],
              "steps": summary["step"], "wall_s": round(wall, 2), **_peak_memory(trainer.device)}
    if trainer.is_main:
        with open(trainer.log_path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        timed = rows[settings["warmup"]:]
        seconds = [float(r["data_s"]) + float(r["step_s"]) for r in timed]
        per_step = sum(seconds) / len(seconds)
        result.update(
            timed_steps=len(timed),
            steps_per_s=round(1 / per_step, 3),
            clips_per_s=round(result["processes"] * train["batch_size"] / per_step, 2),
            median_step_s=round(statistics.median(float(r["step_s"]) for r in timed), 4),
            first_step_s=round(float(rows[0]["data_s"]) + float(rows[0]["step_s"]), 3),
            loss_after_n_steps=float(rows[-1]["total"]),
            last_losses={k: float(rows[-1][k]) for k in trainer.active_terms},
        )
    return result


def _generate_case(settings: dict, device_name: str, quick: bool) -> dict:
    """Time ``Seg2Vid.sample`` on the device (worker process), and the shipped pipeline."""
    import torch

    from seg2vid.data.labels import CITYSCAPES
    from seg2vid.data.synthetic import SceneConfig, SyntheticStreets
    from seg2vid.models.seg2vid import Seg2Vid, Seg2VidConfig
    from seg2vid.utils import pick_device

    device = pick_device(device_name)
    config = Seg2VidConfig.from_dict(settings["model"])
    torch.manual_seed(0)
    model = Seg2Vid(config).to(device).eval()
    clips = SyntheticStreets(8, SceneConfig(height=config.height, width=config.width, frames=1), seed=3)
    first = torch.stack([clips[i]["frames"][0] for i in range(8)]).to(device)
    labels = CITYSCAPES.one_hot(torch.stack([clips[i]["labels"][0] for i in range(8)])).float().to(device)
    reps = 2 if quick else 20

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    result: dict = {"device": str(device), "size": f"{config.height}x{config.width}",
                    "frames": config.frames, "weights": "random"}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for amp in ("off", "bf16"):
        precision = "bf16" if amp == "bf16" else "fp32"  # Seg2Vid.sample's own bf16 path (autocast)
        for batch in (1, 8):
            model.sample(first[:batch], labels[:batch], precision=precision)  # warm-up (cuDNN autotuning)
            sync()
            start = time.perf_counter()
            for _ in range(reps):
                video = model.sample(first[:batch], labels[:batch], precision=precision).video
            sync()
            seconds = (time.perf_counter() - start) / reps
            if not torch.isfinite(video.float()).all():
                raise FloatingPointError(f"non-finite video at amp={amp}, batch {batch}")
            result[f"clips_per_s_{amp}_batch{batch}"] = round(batch / seconds, 2)
    result.update(_peak_memory(device))

    # The shipped 64x64 pipeline (stage 1 + stage 2) on the device, when the tree has it.
    try:
        from seg2vid.generation.pipeline import Pipeline

        pipeline = Pipeline.from_shipped(device=device)
    except FileNotFoundError as err:
        result["shipped_pipeline"] = f"skipped: {err}"
        return result
    h, w = pipeline.size
    label_map = SyntheticStreets(1, SceneConfig(height=h, width=w, frames=1), seed=5)[0]["label_map"]
    generator = torch.Generator().manual_seed(0)
    pipeline.generate(label_map, n_samples=8, generator=generator)
    sync()
    start = time.perf_counter()
    videos = pipeline.generate(label_map, n_samples=8, generator=generator)
    sync()
    result["shipped_pipeline"] = {"size": f"{h}x{w}", "videos": list(videos.shape),
                                  "clips_per_s": round(8 / (time.perf_counter() - start), 2),
                                  "finite": bool(torch.isfinite(videos).all())}
    return result


def _worker(args: argparse.Namespace) -> None:
    settings = json.loads(os.environ["SEG2VID_GPU_CHECK_SETTINGS"])
    if args.case == "generate":
        result = _generate_case(settings, args.device, args.quick)
    else:
        result = _train_case(args.case, settings, Path(args.out))
    if os.environ.get("RANK", "0") == "0":
        print(RESULT_TAG + json.dumps(result), flush=True)


# ----------------------------------------------------------------------------- driver


def _skip_reason(case: str, args: argparse.Namespace, cuda: bool) -> str | None:
    if case not in CASES:
        return f"unknown case (known: {', '.join(CASES)})"
    if cuda:
        return None
    if case == "fp16":
        return "fp16 needs CUDA (the GradScaler)"
    if case == "compile" and not args.cpu_compile:
        return "torch.compile on a CPU needs a C++ toolchain and minutes (--cpu-compile runs it)"
    return None


def _run_case(case: str, args: argparse.Namespace, settings: dict, folder: Path, timeout: float) -> dict:
    script = str(Path(__file__).resolve())
    worker = [script, "--case", case, "--device", args.device, "--out", str(folder / case)]
    if args.quick:
        worker.append("--quick")
    if case == "torchrun":
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc_per_node={args.nproc}", *worker]
    else:
        command = [sys.executable, *worker]
    env = dict(os.environ, SEG2VID_GPU_CHECK_SETTINGS=json.dumps(settings), SEG2VID_PROGRESS="0",
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    if args.device == "cpu":
        env.setdefault("OMP_NUM_THREADS", "1")
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        tail = err.stdout.decode(errors="replace") if isinstance(err.stdout, bytes) else (err.stdout or "")
        return {"status": "failed", "error": f"timed out after {timeout:.0f} s",
                "output_tail": tail[-2000:]}
    seconds = round(time.perf_counter() - started, 1)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            return {"status": "ok", "process_s": seconds, **json.loads(line[len(RESULT_TAG):])}
    return {"status": "failed", "returncode": done.returncode, "process_s": seconds,
            "output_tail": (done.stdout + done.stderr)[-3000:]}


def _environment(device: str) -> dict:
    import torch
    import torch.distributed

    env = {"python": platform.python_version(), "torch": torch.__version__,
           "cuda_available": torch.cuda.is_available(), "cuda": torch.version.cuda,
           "machine": platform.machine(), "cpus": os.cpu_count()}
    try:
        import torchvision

        env["torchvision"] = torchvision.__version__
    except ImportError:
        env["torchvision"] = None
    if device.startswith("cuda") and torch.cuda.is_available():
        index = torch.device(device).index or 0
        props = torch.cuda.get_device_properties(index)
        env.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                   gpu_count=torch.cuda.device_count(), bf16_supported=torch.cuda.is_bf16_supported(),
                   nccl=torch.distributed.is_nccl_available())
    missing = []
    import importlib.util

    for name in ("av", "flow_vis", "ipywidgets", "papermill", "matplotlib", "tqdm", "sklearn"):
        try:
            if importlib.util.find_spec(name) is None:
                missing.append(name)
        except (ImportError, ValueError):
            missing.append(name)
    env["optional_packages_missing"] = missing
    return env


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.case:
        _worker(args)
        return 0
    import torch

    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        print(json.dumps({"error": "no CUDA device here; use --device cpu for a smoke run",
                          "environment": _environment(args.device)}, indent=2))
        return 2
    settings = _settings(args)
    report = {"check": "seg2vid GPU check", "run_config": RUN_CONFIG if not args.quick else "quick",
              "model": {k: settings["model"][k] for k in ("height", "width", "frames", "widths")},
              "batch_size": settings["train"]["batch_size"], "steps": settings["train"]["steps"],
              "warmup_steps": settings["warmup"], "environment": _environment(args.device), "cases": {}}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="seg2vid_gpu_check_") as tmp:
        for case in [c.strip() for c in args.cases.split(",") if c.strip()]:
            reason = _skip_reason(case, args, cuda)
            left = args.deadline - (time.perf_counter() - started)
            if not reason and left < 20:
                reason = f"the check's deadline (--deadline {args.deadline:.0f} s) was reached"
            if reason:
                report["cases"][case] = {"status": "skipped", "reason": reason}
                continue
            print(f"gpu_check: {case} ...", file=sys.stderr, flush=True)
            report["cases"][case] = _run_case(case, args, settings, Path(tmp), min(args.case_timeout, left))
            print(f"gpu_check: {case}: {report['cases'][case]['status']}", file=sys.stderr, flush=True)
    report["total_s"] = round(time.perf_counter() - started, 1)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0 if all(c["status"] != "failed" for c in report["cases"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
