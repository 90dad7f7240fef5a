"""Evaluation and ablations: analytic checks on the evaluation, and the machinery at CI scale."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from seg2vid.evaluation.ablations import CI, aggregate, check_claims, format_claims, run_ablations
from seg2vid.evaluation.evaluate import CopyFirstFrame, Prediction, evaluate, format_table, synthetic_test_set

pytestmark = pytest.mark.filterwarnings("ignore::seg2vid.training.objective.PerceptualOffWarning")


class Oracle:
    """Predicts the TRUE clip (looked up by its first frame), its exact flow and visibility."""

    def __init__(self, dataset):
        self.clips = [dataset[i] for i in range(len(dataset))]

    def __call__(self, first, onehot, n, generator):
        picked = [next(c for c in self.clips if torch.equal(c["frames"][0], f)) for f in first]
        rep = lambda key: torch.stack([c[key] for c in picked]).repeat_interleave(n, dim=0)  # noqa: E731
        return Prediction(rep("frames"), rep("flow_fwd"), rep("visible_fwd"))


def test_the_true_clip_scores_perfectly(one_thread):
    data = synthetic_test_set(32, 32, 2, 3)
    result = evaluate(Oracle(data), data, n_samples=2)["metrics"]
    assert result["psnr_best_of_n"]["mean"] == 100.0  # +inf, capped
    assert result["ssim_mean_of_n"]["mean"] == pytest.approx(1.0)
    assert result["epe"]["mean"] == 0.0 and result["diversity"]["mean"] == 0.0
    assert result["occlusion_iou"]["mean"] == pytest.approx(1.0)


def test_copy_first_frame_matches_the_metrics_by_hand(one_thread):
    from seg2vid import metrics

    data = synthetic_test_set(32, 32, 2, 3)
    result = evaluate(CopyFirstFrame(2), data, n_samples=2)["metrics"]
    frames = torch.stack([data[i]["frames"] for i in range(3)])
    copy = frames[:, :1].expand_as(frames[:, 1:])
    assert result["psnr_mean_of_n"]["mean"] == pytest.approx(
        metrics.psnr(copy, frames[:, 1:]).mean(1).mean().item()
    )
    flows = torch.stack([data[i]["flow_fwd"] for i in range(3)])
    visible = torch.stack([data[i]["visible_fwd"] for i in range(3)])
    zero_epe = metrics.frame_end_point_error(torch.zeros_like(flows), flows, visible).mean(1).mean().item()
    assert result["epe"]["mean"] == pytest.approx(zero_epe)  # copying = predicting zero flow
    assert result["diversity"]["mean"] == 0.0
    assert "| PSNR best-of-N |" in format_table({"copy": result}).splitlines()[0].replace("|  |", "|")
    # PSNR over the pixels HIDDEN in frame 0, by hand: MSE over those pixels and the 3 channels
    hidden = (visible < 0.5).double().expand_as(copy)
    squared = (copy.double() - frames[:, 1:].double()) ** 2 * hidden
    mse = squared.sum(dim=(2, 3, 4)) / hidden.sum(dim=(2, 3, 4))
    per_input = (-10 * torch.log10(mse)).nanmean(1)  # frames without hidden pixels: NaN, left out
    expected = per_input[~per_input.isnan()].mean().item()
    assert result["psnr_occluded_mean_of_n"]["mean"] == pytest.approx(expected)


class OracleWithMask(Oracle):
    """The true clip and flow, with a fixed predicted visibility ``value`` everywhere."""

    def __init__(self, dataset, value: float):
        super().__init__(dataset)
        self.value = value

    def __call__(self, first, onehot, n, generator):
        pred = super().__call__(first, onehot, n, generator)
        return Prediction(pred.video, pred.flow_fwd, torch.full_like(pred.mask_fwd, self.value))


def test_occlusion_iou_is_over_the_occluded_pixels(one_thread):
    # Asymmetric predictions, where an IoU of the visible pixels would score differently:
    # "all visible" finds no occluded pixel (0; visible IoU ~0.97); "all occluded" finds every
    # occluded pixel among all pixels: IoU = the occluded share of each frame (visible IoU: 0).
    data = synthetic_test_set(32, 32, 2, 3)
    visible = torch.stack([data[i]["visible_fwd"] for i in range(3)])  # (3, T, 1, H, W)
    share = (visible < 0.5).double().mean(dim=(2, 3, 4))  # (3, T) occluded share per frame
    assert (share > 0).any() and (share < 0.5).all()
    expected = share.mean().item()  # (a frame without occlusion scores 0: the union is all pixels)
    none = evaluate(OracleWithMask(data, 1.0), data, n_samples=1)["metrics"]["occlusion_iou"]
    every = evaluate(OracleWithMask(data, 0.0), data, n_samples=1)["metrics"]["occlusion_iou"]
    assert none["mean"] == 0.0
    assert every["mean"] == pytest.approx(expected)


class OffsetOrNoise(Oracle):
    """Two samples per input: the true clip brightened by 0.1 (SSIM ~1, PSNR 20 dB) and the true
    clip with noise of std 0.04 (higher PSNR, clearly lower SSIM)."""

    def __call__(self, first, onehot, n, generator):
        assert n == 2
        true = super().__call__(first, onehot, 1, generator)
        g = torch.Generator().manual_seed(0)
        noisy = true.video + 0.04 * torch.randn(true.video.shape, generator=g)
        video = torch.stack([(true.video + 0.1).clamp(0, 1), noisy.clamp(0, 1)], dim=1).flatten(0, 1)
        return Prediction(video, true.flow_fwd.repeat_interleave(2, 0), true.mask_fwd.repeat_interleave(2, 0))


def test_best_of_n_ssim_is_the_ssim_of_the_best_psnr_sample(one_thread):
    from seg2vid import metrics

    data = synthetic_test_set(32, 32, 2, 2)
    result = evaluate(OffsetOrNoise(data), data, n_samples=2)["metrics"]
    frames = torch.stack([data[i]["frames"] for i in range(2)])
    video = OffsetOrNoise(data)(frames[:, 0], None, 2, None).video.view(2, 2, *frames.shape[1:])
    psnr = torch.stack([metrics.psnr(video[:, k, 1:], frames[:, 1:]) for k in range(2)])
    ssim = torch.stack([metrics.ssim(video[:, k, 1:], frames[:, 1:]) for k in range(2)])
    assert (psnr[1].mean(1) > psnr[0].mean(1)).all() and (ssim[1].mean(1) < ssim[0].mean(1) - 0.05).all()
    # the noisy sample has the best PSNR, so ITS SSIM is the best-of-N SSIM (not the best SSIM)
    assert result["ssim_best_of_n"]["mean"] == pytest.approx(ssim[1].mean().item(), rel=1e-5)
    assert result["psnr_best_of_n"]["mean"] == pytest.approx(psnr[1].mean().item(), rel=1e-5)


def test_ablation_machinery_at_ci_scale_is_resumable(tmp_path, one_thread):
    settings = dataclasses.replace(CI, variants=("full", "deterministic", "no_refine"))
    results = run_ablations(settings, tmp_path, log=lambda *a: None)
    assert set(results) == {"copy_first_frame", "full", "deterministic", "no_refine"}
    assert all(len(results[v]) == 2 for v in settings.variants)
    table = aggregate(results)
    assert table["deterministic"]["diversity"]["mean"] == 0.0
    assert table["full"]["diversity"]["mean"] > 0
    assert not math.isnan(table["full"]["psnr_best_of_n"]["std"])
    verdicts = {v["claim"]: v["verdict"] for v in check_claims(table)}
    assert verdicts["the cVAE gives diverse futures"] == "holds"
    assert "verdict" in format_claims(check_claims(table))
    # a second call loads every eval.json instead of training again
    again = run_ablations(settings, tmp_path, log=lambda *a: pytest.fail("retrained"))
    assert again["full"][0]["metrics"] == results["full"][0]["metrics"]


def test_cli_evaluate_prints_and_saves_the_table(tmp_path, capsys):
    import json

    from seg2vid import cli

    out = tmp_path / "eval"
    code = cli.main(
        [
            "evaluate",
            "--num-clips",
            "2",
            "--samples",
            "2",
            "--segmenter",
            "none",
            "--device",
            "cpu",
            "--out",
            str(out),
            "--threads",
            "1",
            "--future-scenes",
            "2",
            "--future-k",
            "2",
            "--future-samples",
            "2",
            "--mean-flow-clips",
            "8",
            "--spread",
            "sem",
        ]
    )
    assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "PSNR best-of-N" in printed and "protocol:" in printed
    saved = json.loads((out / "eval.json").read_text())
    # every score carries the standard error of its mean, and --spread sem prints it after the ±
    psnr = saved["metrics"]["psnr_best_of_n"]
    assert psnr["n"] == 2 and psnr["sem"] == pytest.approx(psnr["std"] / 2**0.5)
    assert all("sem" in m for m in saved["metrics"].values())
    assert f"{psnr['mean']:.3f} ± {psnr['sem']:.3f}" in printed
    assert saved["num_clips"] == 2 and saved["n_samples"] == 2 and "epe" in saved["metrics"]
    # the synthetic defaults bring the multi-future scores and every baseline (issue 11)
    assert {"future_coverage", "future_precision", "speed_correlation"} <= set(saved["metrics"])
    assert set(saved["baselines"]) == {"copy_first_frame", "mean_flow", "exact_flow_warp", "true_futures"}
    assert "future_coverage" in saved["baselines"]["mean_flow"]
    assert "training clips 0..7 " in saved["baselines_protocol"]  # --mean-flow-clips 8
    assert (out / "table.md").read_text().startswith("|")
    assert cli.main(["evaluate", "--checkpoint", str(tmp_path / "none.pt"), "--out", str(out)]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_cli_evaluate_changes_only_inference_only_fields(tmp_path, capsys):
    import json

    from seg2vid import cli

    common = ["evaluate", "--num-clips", "2", "--samples", "2", "--segmenter", "none", "--device", "cpu",
              "--threads", "1", "--future-scenes", "0", "--no-baselines"]
    runs = {}
    for name, extra in (("learned", []), ("geometry", ["--inference", "forward_mask=geometry",
                                                       "--inference", "object_pin=null"])):
        assert cli.main([*common, "--out", str(tmp_path / name), *extra]) == 0, capsys.readouterr().err
        runs[name] = json.loads((tmp_path / name / "eval.json").read_text())
    assert "forward_mask='geometry', object_pin=None" in capsys.readouterr().out
    assert "inference_options" not in runs["learned"]
    assert runs["geometry"]["inference_options"] == {"forward_mask": "geometry", "object_pin": None}
    # the same weights and frames, another forward mask (and objects no longer pinned)
    learned, geometry = runs["learned"]["metrics"], runs["geometry"]["metrics"]
    assert geometry["psnr_best_of_n"] == learned["psnr_best_of_n"]
    assert geometry["occlusion_iou_fwd"]["mean"] != learned["occlusion_iou_fwd"]["mean"]
    assert cli.main([*common, "--out", str(tmp_path / "x"), "--inference", "latent_dim=4"]) == 2
    assert "only the inference-only fields" in capsys.readouterr().err
    assert cli.main([*common, "--out", str(tmp_path / "x"), "--inference", "forward_mask"]) == 2
    assert "FIELD=VALUE" in capsys.readouterr().err


def test_cli_evaluate_on_a_subset_of_a_label_free_folder(tmp_path, capsys):
    """A real dataset without label maps (one 'scene' class) keeps its table when --num-clips
    picks a subset of its clips."""
    import json

    from PIL import Image

    from seg2vid import cli

    clips = synthetic_test_set(32, 32, 3, 2)
    for v in range(2):
        (tmp_path / "videos" / f"v{v}" / "frames").mkdir(parents=True)
        for t in range(4):
            rgb = (clips[v]["frames"][t].permute(1, 2, 0) * 255).round().byte().numpy()
            Image.fromarray(rgb).save(tmp_path / "videos" / f"v{v}" / "frames" / f"{t}.png")
    data = ["--data", "folder", "--data-root", str(tmp_path / "videos")]
    train = [
        "train",
        *data,
        "--size",
        "32",
        "--frames",
        "2",
        "--batch-size",
        "2",
        "--steps",
        "1",
        "--sample-every",
        "0",
        "--device",
        "cpu",
        "--out",
        str(tmp_path / "run"),
    ]
    assert cli.main(train) == 0, capsys.readouterr().err
    checkpoint = str(tmp_path / "run" / "checkpoints" / "last.pt")
    out = tmp_path / "eval"
    code = cli.main(
        [
            "evaluate",
            "--checkpoint",
            checkpoint,
            *data,
            "--split",
            "train",
            "--num-clips",
            "2",
            "--samples",
            "2",
            "--device",
            "cpu",
            "--out",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert json.loads((out / "eval.json").read_text())["num_clips"] == 2  # of the 4 clips



def test_cli_evaluate_defaults_to_the_checkpoints_data(tmp_path, capsys):
    """A checkpoint trained on a folder with a non-default [data] setting (stride 2) is evaluated on
    that data's held-out split with no data option; --config and --split override it."""
    import json

    import numpy as np
    from PIL import Image

    from seg2vid import cli

    root = tmp_path / "videos"
    for v in range(3):  # 3 videos: one each for train, val and test (seg2vid.data.folder)
        (root / f"v{v}" / "frames").mkdir(parents=True)
        for t in range(5):  # stride 2, 1 + 2 frames: one clip per video
            frame = np.full((32, 32, 3), 40 * v + 10 * t, np.uint8)
            Image.fromarray(frame).save(root / f"v{v}" / "frames" / f"{t}.png")
    config = tmp_path / "run.toml"
    config.write_text(f'[model]\nheight = 32\nwidth = 32\nframes = 2\n\n[data]\nkind = "folder"\n'
                      f'root = "{root}"\nstride = 2\n\n[train]\nsteps = 1\nbatch_size = 1\n'
                      "sample_every = 0\n")
    run = tmp_path / "run"
    code = cli.main(["train", "--config", str(config), "--device", "cpu", "--out", str(run)])
    assert code == 0, capsys.readouterr().err
    quick = ["--num-clips", "1", "--samples", "1", "--no-baselines", "--future-scenes", "0",
             "--segmenter", "none", "--device", "cpu"]
    checkpoint = ["evaluate", "--checkpoint", str(run / "checkpoints" / "last.pt"), *quick]
    capsys.readouterr()
    assert cli.main([*checkpoint, "--out", str(tmp_path / "e1")]) == 0, capsys.readouterr().err
    assert f"on 1 folder test clips from {root}" in capsys.readouterr().out
    saved = json.loads((tmp_path / "e1" / "eval.json").read_text())
    assert (saved["data"], saved["split"], saved["data_config"]["stride"]) == ("folder", "test", 2)
    assert saved["data_config"]["root"] == str(root)
    assert cli.main([*checkpoint, "--split", "val", "--out", str(tmp_path / "e2")]) == 0
    assert json.loads((tmp_path / "e2" / "eval.json").read_text())["split"] == "val"
    # --config: its [data] table replaces the checkpoint's (here stride 1)
    other = tmp_path / "other.toml"
    other.write_text(f'[data]\nkind = "folder"\nroot = "{root}"\n')
    assert cli.main([*checkpoint, "--config", str(other), "--out", str(tmp_path / "e3")]) == 0
    assert json.loads((tmp_path / "e3" / "eval.json").read_text())["data_config"]["stride"] == 1


def test_a_stopped_ablation_run_is_not_scored(tmp_path, one_thread, monkeypatch):
    """SIGTERM ends ``Trainer.train`` early with the checkpoint saved; scoring that partial model
    would make its eval.json final (the study skips runs that have one)."""
    from seg2vid.training.loop import TrainingStopped
    from seg2vid.training.stage2 import Trainer

    monkeypatch.setattr(Trainer, "train", lambda self: {"status": "stopped by SIGTERM"})  # no step made
    settings = dataclasses.replace(CI, variants=("full",), seeds=(0,))
    with pytest.raises(TrainingStopped, match="stopped at step 0 of"):
        run_ablations(settings, tmp_path, log=lambda *a: None)
    assert not (tmp_path / "full").exists() or not list((tmp_path / "full").rglob("eval.json"))
