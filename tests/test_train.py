"""Training stage 2 (seg2vid.training.stage2) and the ``seg2vid train`` command."""

import csv
import dataclasses
import json
import math
import pickle
import time

import pytest
import torch
import torchvision
from PIL import Image

import seg2vid.training.stage2 as train_module
from seg2vid import cli
from seg2vid.checkpoints import CheckpointMismatchError, load_checkpoint
from seg2vid.data.labels import CITYSCAPES
from seg2vid.metrics import psnr
from seg2vid.models import Seg2VidConfig
from seg2vid.models.loading import export_model, load_model
from seg2vid.training.loop import NonFiniteError
from seg2vid.training.objective import TERMS, LossConfig
from seg2vid.training.stage2 import TrainConfig, Trainer, check_batch

SMALL = dict(widths=(8, 8, 16, 16), motion_widths=(8, 8, 16, 16), refine_widths=(8, 8), latent_dim=4)
MODEL = Seg2VidConfig(height=32, width=32, frames=2, **SMALL)
NO_VGG = LossConfig(perceptual=0)


pytestmark = pytest.mark.usefixtures("one_thread")


def make_trainer(out, steps=2, model=MODEL, **train):
    settings = dict(batch_size=2, sample_every=0, checkpoint_every=0, num_clips=None, device="cpu") | train
    return Trainer(model, TrainConfig(steps=steps, **settings), NO_VGG, out_dir=out)


def log_rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# ----------------------------------------------------------------------------- resume


def test_warm_start_takes_the_weights_and_the_step_count_only(tmp_path):
    first = make_trainer(tmp_path / "a", steps=2)
    first.train()
    path = first.checkpoint_path
    # a new run, other train settings (lr, length): the weights and the step come along, nothing else
    second = make_trainer(tmp_path / "b", steps=3, lr=5e-4)
    assert second.warm_start(path) == 2 and second.step == 2
    for a, b in zip(first.model.parameters(), second.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert second.optimizer.state_dict()["state"] == {}  # the optimiser starts afresh
    assert second.train()["step"] == 3 and len(log_rows(tmp_path / "b" / "log.csv")) == 1
    # a model-only export works too; keep_step=False restarts the count
    export = tmp_path / "model.pt"
    export_model(path, export)
    assert make_trainer(tmp_path / "c").warm_start(export, keep_step=False) == 0
    with pytest.raises(CheckpointMismatchError, match="latent_dim: checkpoint 4, now 5"):
        make_trainer(tmp_path / "d", model=MODEL.replace(latent_dim=5)).warm_start(path)
    # an option that adds no weight may differ when named (the same weights, another computation)
    rigid = MODEL.replace(object_motion="rigid")
    with pytest.raises(CheckpointMismatchError, match="object_motion"):
        make_trainer(tmp_path / "e", model=rigid).warm_start(path)
    assert make_trainer(tmp_path / "f", model=rigid).warm_start(path, differ=("object_motion",)) == 2
    resumed = make_trainer(tmp_path / "a", steps=3)
    resumed.resume()
    with pytest.raises(ValueError, match="before train"):
        resumed.warm_start(path)


def fitted_export(tmp_path, model=MODEL):
    """A model-only export of a 2-step run whose sampling prior is fitted (made-up numbers)."""
    first = make_trainer(tmp_path / "fit_src", model=model)
    first.train()
    export = export_model(first.checkpoint_path, tmp_path / "fitted.pt")
    ckpt = torch.load(export, weights_only=True)
    ckpt["model_config"]["latent_prior"] = "fitted"
    z = 2 * model.latent_dim
    ckpt["model"] |= {"fitted_mean": torch.full((z,), 0.5), "fitted_scale": 2 * torch.eye(z)}
    torch.save(ckpt, export)
    return first, export


def test_warm_start_leaves_out_a_fitted_sampling_prior_the_new_model_lacks(tmp_path):
    first, export = fitted_export(tmp_path)
    # a model that samples from N(0, I) takes the weights and leaves the prior out ...
    plain = make_trainer(tmp_path / "plain")
    assert plain.warm_start(export, differ=("latent_prior",)) == 2
    for a, b in zip(first.model.parameters(), plain.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not hasattr(plain.model, "fitted_mean")
    # ... and one with latent_prior="fitted" takes the prior along
    fitted = make_trainer(tmp_path / "fitted", model=MODEL.replace(latent_prior="fitted"))
    fitted.warm_start(export)
    torch.testing.assert_close(fitted.model.fitted_scale, 2 * torch.eye(2 * MODEL.latent_dim))


def test_train_shipped_continues_the_base_recipes_export_only(tmp_path):
    """``train_shipped.py --from-export``: the objects recipe starts from an export of the model
    preset it continues (its fitted prior left out); an export of another model is refused,
    naming the fields."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("train_shipped", Path(__file__).parents[1] / "scripts"
                                                  / "train_shipped.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    first, export = fitted_export(tmp_path)
    objects = MODEL.replace(object_motion="rigid", object_head=True, object_latent=2)
    trainer = make_trainer(tmp_path / "objects", steps=3, model=objects)
    assert script.warm_start_from_export(trainer, export, MODEL) == 2
    torch.testing.assert_close(trainer.model.refiner.state_dict(), first.model.refiner.state_dict())
    assert trainer.train()["step"] == 3
    with pytest.raises(CheckpointMismatchError, match="latent_dim: checkpoint 4, now 5"):
        script.warm_start_from_export(make_trainer(tmp_path / "other", model=objects), export,
                                      MODEL.replace(latent_dim=5))


@pytest.mark.parametrize("num_clips", [None, 3])
def test_two_plus_two_resumed_steps_equal_four_straight(tmp_path, num_clips):
    first = make_trainer(tmp_path / "a", steps=2, num_clips=num_clips)
    first.train()
    resumed = make_trainer(tmp_path / "a", steps=4, num_clips=num_clips)
    assert resumed.resume() == 2
    resumed.train()
    straight = make_trainer(tmp_path / "b", steps=4, num_clips=num_clips)
    straight.train()
    assert resumed.step == straight.step == 4
    for (name, a), (_, b) in zip(resumed.model.state_dict().items(), straight.model.state_dict().items(),
                                 strict=True):
        assert torch.equal(a, b), name
    opt_a, opt_b = resumed.optimizer.state_dict()["state"], straight.optimizer.state_dict()["state"]
    assert all(torch.equal(opt_a[k]["exp_avg_sq"], opt_b[k]["exp_avg_sq"]) for k in opt_a)
    # ...and the two logs agree on every loss
    rows_a, rows_b = log_rows(tmp_path / "a" / "log.csv"), log_rows(tmp_path / "b" / "log.csv")
    assert [r["step"] for r in rows_a] == ["1", "2", "3", "4"]
    assert [r["total"] for r in rows_a] == [r["total"] for r in rows_b]


def test_a_run_resumes_with_an_inference_only_option_changed(tmp_path):
    objects = MODEL.replace(object_motion="rigid", object_head=True, object_latent=2)
    make_trainer(tmp_path, steps=1, model=objects).train()
    pinned = make_trainer(tmp_path, steps=2, model=objects.replace(object_pin=0.9, forward_mask="geometry"))
    assert pinned.resume() == 1 and pinned.train()["step"] == 2
    saved = load_checkpoint(pinned.checkpoint_path)["model_config"]
    assert (saved["object_pin"], saved["forward_mask"]) == (0.9, "geometry")
    with pytest.raises(CheckpointMismatchError, match="object_latent"):
        make_trainer(tmp_path, steps=3, model=objects.replace(object_latent=3)).resume()


def test_resume_drops_log_rows_written_after_the_checkpoint(tmp_path):
    make_trainer(tmp_path, steps=2).train()
    with open(tmp_path / "log.csv") as fh:
        last = fh.read().splitlines()[-1]
    with open(tmp_path / "log.csv", "a") as fh:  # a step logged, then a crash before its checkpoint
        fh.write("3" + last[1:] + "\n")
    assert make_trainer(tmp_path, steps=4).resume() == 2
    assert [r["step"] for r in log_rows(tmp_path / "log.csv")] == ["1", "2"]


def test_a_run_from_before_new_config_fields_resumes(tmp_path):
    """Options added later (loss, train and model fields with defaults) must not block resuming a
    run whose checkpoint predates them; a changed value still does."""
    from seg2vid.checkpoints import atomic_write

    make_trainer(tmp_path, steps=1).train()
    path = tmp_path / "checkpoints" / "last.pt"
    ckpt = torch.load(path, weights_only=True)
    for key, field in (("loss_config", "perceptual_precision"), ("loss_config", "mask_fb"),
                       ("train_config", "log_every"), ("model_config", "flow_time")):
        assert field in ckpt[key]
        del ckpt[key][field]
    atomic_write(path, lambda fh: torch.save(ckpt, fh))
    assert make_trainer(tmp_path, steps=2).resume() == 1
    other_loss = dataclasses.replace(NO_VGG, recon=7.0)
    settings = dict(batch_size=2, sample_every=0, checkpoint_every=0, num_clips=None, device="cpu")
    with pytest.raises(CheckpointMismatchError, match="loss recon: checkpoint"):
        Trainer(MODEL, TrainConfig(steps=2, **settings), other_loss, out_dir=tmp_path).resume()


def test_config_mismatch_names_the_fields(tmp_path):
    make_trainer(tmp_path, steps=1).train()
    other = Seg2VidConfig(height=48, width=32, frames=2, **SMALL)
    with pytest.raises(CheckpointMismatchError) as err:
        make_trainer(tmp_path, steps=1, model=other, lr=3e-4).resume()
    message = str(err.value)
    assert "model height: checkpoint 32, now 48" in message and "train lr" in message
    assert "width" not in message
    assert "data scene.height: checkpoint 32, now 48" in message  # the streets follow the model's size
    # the run length and the bookkeeping may change
    make_trainer(tmp_path, steps=5, log_every=3).resume()


def test_a_run_from_before_the_rich_default_resumes_only_on_classic_streets(tmp_path):
    from seg2vid.checkpoints import atomic_write
    from seg2vid.data.synthetic import SceneConfig
    from seg2vid.models.loading import trained_style

    make_trainer(tmp_path, steps=1).train()
    path = tmp_path / "checkpoints" / "last.pt"
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["data_config"]["scene"]["style"] == "rich" and trained_style(ckpt) == "rich"
    ckpt["data_config"] = {"kind": "synthetic"}  # what seg2vid 0.1 wrote: its streets were classic
    atomic_write(path, lambda fh: torch.save(ckpt, fh))
    assert trained_style(ckpt) == "classic"
    with pytest.raises(CheckpointMismatchError, match="data scene.style: checkpoint 'classic', now 'rich'"):
        make_trainer(tmp_path, steps=2).resume()
    classic = SceneConfig(height=MODEL.height, width=MODEL.width, frames=MODEL.frames, style="classic")
    settings = dict(batch_size=2, sample_every=0, checkpoint_every=0, num_clips=None, device="cpu")
    trainer = Trainer(MODEL, TrainConfig(steps=2, **settings), NO_VGG, out_dir=tmp_path, scene=classic)
    assert trainer.resume() == 1


def test_a_fresh_run_refuses_to_overwrite_an_existing_one(tmp_path):
    make_trainer(tmp_path, steps=1).train()
    with pytest.raises(FileExistsError, match="resume"):
        make_trainer(tmp_path, steps=2).train()


# ----------------------------------------------------------------------------- checkpoints and logs


def test_checkpoint_loads_weights_only_and_holds_no_vgg(tmp_path):
    trainer = make_trainer(tmp_path, steps=1)
    trainer.train()
    ckpt = torch.load(trainer.checkpoint_path, weights_only=True)
    assert ckpt["step"] == 1 and ckpt["perceptual"] is False
    assert Seg2VidConfig.from_dict(ckpt["model_config"]) == MODEL
    assert LossConfig.from_dict(ckpt["loss_config"]) == NO_VGG
    assert TrainConfig.from_dict(ckpt["train_config"]) == trainer.config
    assert set(ckpt["model"]) == set(trainer.model.state_dict())
    assert not any("vgg" in k or "features" in k for k in ckpt["model"])
    assert not list(tmp_path.glob("checkpoints/*.tmp"))  # the temporary file was renamed
    model = load_model(trainer.checkpoint_path)
    assert not model.training
    for (name, a), b in zip(model.state_dict().items(), trainer.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_a_crash_during_a_save_leaves_the_previous_checkpoint_intact(tmp_path, crashing_torch_save):
    trainer = make_trainer(tmp_path, steps=1)
    trainer.train()
    path = trainer.checkpoint_path
    before = path.read_bytes()
    files_before = sorted(p.name for p in path.parent.iterdir())
    trainer.step = 2
    with crashing_torch_save(), pytest.raises(OSError, match="simulated crash"):
        trainer.save_checkpoint()
    with crashing_torch_save(), pytest.raises(OSError, match="simulated crash"):
        export_model(path, tmp_path / "shipped" / "model.pt")
    assert path.read_bytes() == before, "last.pt was overwritten by a partial save"
    assert load_checkpoint(path)["step"] == 1
    assert sorted(p.name for p in path.parent.iterdir()) == files_before, "a temporary file was left"
    assert not (tmp_path / "shipped" / "model.pt").exists()
    assert make_trainer(tmp_path, steps=2).resume() == 1


def test_each_step_weights_the_kl_by_its_own_warm_up_weight(tmp_path):
    # The logged total must be the sum of the unweighted terms times the weights AT THAT STEP:
    # with a 10-step warm-up the KL weight grows 0.1, 0.2, 0.3 x (a large KL weight shows it).
    loss = LossConfig(perceptual=0, kl=100.0, kl_warmup_steps=10)
    trainer = Trainer(MODEL, TrainConfig(steps=3, batch_size=2, sample_every=0, checkpoint_every=0,
                                         num_clips=None, device="cpu"), loss, out_dir=tmp_path)
    frames, labels = trainer.load_batch(1)
    onehot = CITYSCAPES.one_hot(labels)
    for step in range(3):
        row = trainer.train_step(frames, onehot)
        assert row["kl"] > 0
        expected = sum(loss.weight(name, step) * row[name] for name in TERMS if name in row)
        assert row["total"] == pytest.approx(expected, rel=1e-4), step


class NotATensor:
    """Any pickled object: ``torch.load(weights_only=True)`` refuses to run its reconstruction."""


def test_loading_refuses_arbitrary_pickled_objects(tmp_path):
    from seg2vid.checkpoints import STAGE2_FORMAT as CHECKPOINT_FORMAT

    path = tmp_path / "odd.pt"
    torch.save({"format": CHECKPOINT_FORMAT[0], "format_version": CHECKPOINT_FORMAT[1], "x": NotATensor()},
               path)
    with pytest.raises(ValueError, match="objects other than tensors") as refused:
        load_checkpoint(path)
    assert isinstance(refused.value.__cause__, pickle.UnpicklingError)  # weights_only refused it


def test_perceptual_run_keeps_vgg_out_of_the_checkpoint(tmp_path):
    with torch.device("meta"):
        features = torchvision.models.vgg19(weights=None).features[:27]  # up to relu4_4
    g = torch.Generator().manual_seed(0)
    shapes = {k: v.shape for k, v in features.state_dict().items()}
    torch.save({f"features.{k}": 0.05 * torch.randn(shape, generator=g) for k, shape in shapes.items()},
               tmp_path / "vgg19.pth")
    config = TrainConfig(steps=1, batch_size=1, sample_every=0, num_clips=None, device="cpu")
    trainer = Trainer(MODEL, config, LossConfig(), tmp_path / "run", tmp_path / "vgg19.pth")
    trainer.train()
    assert "perceptual" in log_rows(tmp_path / "run" / "log.csv")[0]
    ckpt = load_checkpoint(trainer.checkpoint_path)
    assert ckpt["perceptual"] is True and not any("features" in k for k in ckpt["model"])
    assert trainer.checkpoint_path.stat().st_size < 5 * 2**20  # the VGG alone would be 40 MB
    with pytest.raises(CheckpointMismatchError, match="perceptual term .*checkpoint on, now off"):
        Trainer(MODEL, config, LossConfig(), out_dir=tmp_path / "run").resume()


def test_log_summary_and_samples(tmp_path):
    trainer = make_trainer(tmp_path, steps=3, sample_every=2)
    summary = trainer.train()
    rows = log_rows(tmp_path / "log.csv")
    assert [r["step"] for r in rows] == ["1", "2", "3"]
    assert set(rows[0]) == {"step", "total", "recon", "recon_before", "recon_back", "ssim", "consistency",
                            "smoothness", "kl", "mask", "kl_weight", "grad_norm", "lr", "data_s", "step_s"}
    assert all(math.isfinite(float(v)) for r in rows for v in r.values())
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    assert summary["status"] == "finished" and summary["step"] == 3 and "recon" in summary["last_losses"]
    gifs = sorted(p.name for p in (tmp_path / "samples").glob("*.gif"))
    assert gifs == ["step_000002.gif", "step_000003.gif"]
    with Image.open(tmp_path / "samples" / gifs[0]) as gif:
        # 2 held-out clips (rows) x true | posterior | prior (columns), upscaled 4x from 32 pixels
        assert gif.size[0] > 3 * 4 * 32 and gif.size[1] > 2 * 4 * 32


def test_pool_batches_visit_every_clip_once_per_epoch(tmp_path):
    trainer = make_trainer(tmp_path, steps=4, num_clips=4)
    epoch0 = trainer.clip_indices(1) + trainer.clip_indices(2)
    epoch1 = trainer.clip_indices(3) + trainer.clip_indices(4)
    assert sorted(epoch0) == sorted(epoch1) == [0, 1, 2, 3]
    again = make_trainer(tmp_path / "again", steps=4, num_clips=4)
    assert epoch0 == again.clip_indices(1) + again.clip_indices(2)  # a function of (seed, step)
    frames, labels = trainer.load_batch(1)
    assert frames.shape == (2, 3, 3, 32, 32) and labels.shape == (2, 32, 32)
    assert frames.dtype == torch.float32 and labels.dtype == torch.int64
    assert torch.equal((frames * 255).round() / 255, frames)  # stored as 8-bit frames, like video
    # the stream (default) never repeats a clip
    stream = make_trainer(tmp_path / "stream", steps=4)
    assert stream.clip_indices(1) + stream.clip_indices(2) == [0, 1, 2, 3]


# ----------------------------------------------------------------------------- failures


def test_nan_batch_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    trainer = make_trainer(tmp_path, steps=4, checkpoint_every=2)
    real = trainer.load_batch

    def poisoned(step):
        frames, labels = real(step)
        if step == 3:
            frames[1, 0, 0, 5, 5] = float("nan")
        return frames, labels

    monkeypatch.setattr(trainer, "load_batch", poisoned)
    with pytest.raises(NonFiniteError) as err:
        trainer.train()
    message = str(err.value)
    assert "step 3" in message and "NaN/inf" in message and "frames" in message
    assert f"{trainer.checkpoint_path} (step 2)" in message
    assert load_checkpoint(trainer.checkpoint_path)["step"] == 2
    assert trainer.step == 2
    assert json.loads((tmp_path / "summary.json").read_text())["status"].startswith("failed")


def test_non_finite_loss_term_is_named(tmp_path, monkeypatch):
    real = train_module.seg2vid_loss

    def broken_kl(*args, **kwargs):
        total, terms = real(*args, **kwargs)
        terms["kl"] = torch.tensor(float("inf"))
        return total + terms["kl"], terms

    monkeypatch.setattr(train_module, "seg2vid_loss", broken_kl)
    trainer = make_trainer(tmp_path, steps=2)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    with pytest.raises(NonFiniteError, match=r"step 1: loss term\(s\) \['kl'\].*no checkpoint"):
        trainer.train()
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.model.parameters(), strict=True))


def test_bad_batches_fail_early_and_clearly(tmp_path, monkeypatch):
    frames = torch.rand(2, 3, 3, 32, 32)
    labels = torch.zeros(2, 32, 32, dtype=torch.long)
    check_batch(frames, labels, MODEL)
    with pytest.raises(ValueError, match=r"frames must be \(B, 3, 3, 32, 32\)"):
        check_batch(frames[:, :2], labels, MODEL)
    with pytest.raises(ValueError, match="labels must be"):
        check_batch(frames, CITYSCAPES.one_hot(labels), MODEL)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        check_batch(frames * 255, labels, MODEL)
    with pytest.raises(ValueError, match=r"unknown class id\(s\) \[77\]"):
        check_batch(frames, labels + 77, MODEL)
    with pytest.raises(ValueError, match="integer"):
        check_batch(frames, labels.float(), MODEL)
    trainer = make_trainer(tmp_path, steps=1)
    monkeypatch.setattr(trainer, "load_batch", lambda step: (frames, labels + 40))
    with pytest.raises(ValueError, match=r"step 1 \(clips 0, 1\): label map holds unknown class id\(s\) \["):
        trainer.train()


@pytest.mark.parametrize("kwargs,message", [
    ({"batch_size": 0}, "batch_size"), ({"amp": "fp8"}, "amp"), ({"num_clips": 0}, "num_clips"),
    ({"grad_clip": -1.0}, "grad_clip"),
])
def test_bad_train_configs_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_fp16_needs_cuda(tmp_path):
    with pytest.raises(ValueError, match="needs a CUDA device"):
        make_trainer(tmp_path, amp="fp16")


def test_bf16_autocast_trains_with_float32_parameters_and_losses(tmp_path):
    """The mixed-precision path (autocast, float32 losses) runs in CI through CPU bf16."""
    trainer = make_trainer(tmp_path, steps=3, amp="bf16")
    summary = trainer.train()
    assert summary["status"] == "finished"
    assert all(math.isfinite(v) for v in summary["last_losses"].values())
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    rows = log_rows(tmp_path / "log.csv")
    assert len(rows) == 3 and all(math.isfinite(float(r["total"])) for r in rows)


# ----------------------------------------------------------------------------- learning


def reconstruction_psnr(trainer: Trainer) -> float:
    """PSNR (dB) of the posterior-mean reconstruction of step 1's clips (images in [0, 1])."""
    frames, labels = trainer.load_batch(1)
    onehot = CITYSCAPES.one_hot(labels)
    trainer.model.eval()
    with torch.no_grad():
        mu, _ = trainer.model.posterior(frames, onehot)
        out = trainer.model.decode(frames[:, 0], onehot, mu, generator=torch.Generator().manual_seed(0))
    return psnr(out.frames, frames[:, 1:], reduce="clip").mean().item()  # one clip per batch here


def test_overfitting_one_clip_reaches_30_db(tmp_path):
    model = MODEL.replace(widths=(8, 16, 16, 16), refine_widths=(16, 16))
    trainer = make_trainer(tmp_path, steps=300, model=model, batch_size=1, num_clips=1)
    start = reconstruction_psnr(trainer)
    trainer.train()
    end = reconstruction_psnr(trainer)
    print(f"overfitting one 32x32 clip, 1 + 2 frames, 300 steps: PSNR {start:.1f} -> {end:.1f} dB")
    assert end > 30 and end > start + 5


# ----------------------------------------------------------------------------- command line


@pytest.mark.filterwarnings("ignore::seg2vid.training.objective.PerceptualOffWarning")
def test_cli_trains_writes_checkpoint_log_and_gif_then_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--preset", "tiny", "--size", "32", "--frames", "2", "--batch-size", "2",
            "--out", str(out), "--sample-every", "2", "--num-clips", "4", "--device", "cpu"]
    assert cli.main([*args, "--steps", "2"]) == 0
    printed = capsys.readouterr().out
    for path in (out / "checkpoints" / "last.pt", out / "log.csv", out / "samples" / "step_000002.gif"):
        assert path.is_file()
    for text in (str(out / "checkpoints" / "last.pt"), str(out / "log.csv"), str(out / "samples"),
                 "perceptual loss: off"):
        assert text in printed
    assert load_checkpoint(out / "checkpoints" / "last.pt")["step"] == 2
    assert cli.main([*args, "--steps", "3"]) == 0  # a run in --out is resumed by default
    assert "resuming" in capsys.readouterr().out
    assert len(log_rows(out / "log.csv")) == 3
    assert cli.main([*args, "--steps", "4", "--no-resume"]) == 2  # ... unless told not to
    assert "--no-resume" in capsys.readouterr().err
    assert cli.main([*args, "--out", str(tmp_path / "empty"), "--resume"]) == 2  # --resume needs a run
    assert "no checkpoint" in capsys.readouterr().err


def test_run_configs_parse_and_cli_options_override_them(tmp_path):
    from seg2vid.configs import NAMES, load_run_config

    assert {"cityscapes_128x256_t4", "cityscapes_128x256_t8", "kth_128_t15", "ucf101_128_t4",
            "synthetic_128_gpu", "synthetic_tiny_64"} <= set(NAMES)
    for name in NAMES:
        run = load_run_config(name)
        model = run.model_config()
        TrainConfig.from_dict(run.train)
        run.loss_config(model.width)
    paper = load_run_config("cityscapes_128x256_t4")
    model = paper.model_config()
    assert (model.height, model.width, model.frames) == (128, 256, 4)
    assert paper.data["kind"] == "cityscapes" and paper.data["split"] == "train"
    assert load_run_config("cityscapes_128x256_t8").model_config().frames == 8
    args = cli.build_parser().parse_args(["train", "--config", "cityscapes_128x256_t4", "--steps", "7",
                                          "--size", "64x128", "--data-root", "/data/cs"])
    run = cli.train_settings(args)
    assert run.train["steps"] == 7 and run.train["amp"] == "bf16"
    assert (run.model_config().height, run.model_config().width) == (64, 128)
    assert run.data["root"] == "/data/cs"
    bad = tmp_path / "bad.toml"
    bad.write_text("[modle]\npreset = 'tiny'\n")
    with pytest.raises(ValueError, match="modle"):
        load_run_config(bad)
    with pytest.raises(FileNotFoundError, match="synthetic_tiny_64"):
        load_run_config("no_such_config")
    assert cli.main(["train", "--config", "kth_128_t15", "--steps", "1"]) == 2  # no --data-root: said


@pytest.mark.filterwarnings("ignore::seg2vid.training.objective.PerceptualOffWarning")
def test_sigterm_stops_after_the_step_with_a_checkpoint_then_resumes(tmp_path, monkeypatch, capsys):
    """A stopped Colab runtime sends SIGTERM: the trainer saves and says how to resume."""
    import signal
    import subprocess
    import sys

    out = tmp_path / "run"
    args = [sys.executable, "-m", "seg2vid", "train", "--preset", "tiny", "--size", "32", "--frames", "2",
            "--batch-size", "2", "--num-clips", "4", "--sample-every", "0", "--checkpoint-every", "0",
            "--device", "cpu", "--threads", "1", "--out", str(out)]
    env = {**__import__("os").environ, "SEG2VID_PROGRESS": "0", "SEG2VID_NO_TCMALLOC": "1"}
    proc = subprocess.Popen([*args, "--steps", "100000"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (
                (out / "log.csv").is_file() and len(log_rows(out / "log.csv")) >= 3):
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    # non-zero (documented: cli.EXIT_STOPPED), so `seg2vid train ... && seg2vid evaluate` stops here
    assert proc.returncode == cli.EXIT_STOPPED == 143, stderr[-2000:]
    assert "stopped by SIGTERM" in stdout and "can be resumed" in stdout
    saved = load_checkpoint(out / "checkpoints" / "last.pt")["step"]
    assert saved >= 3 and saved == len(log_rows(out / "log.csv"))  # nothing lost, nothing extra
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"].startswith("stopped by SIGTERM") and summary["resumable"] is True
    # the same command resumes (here up to saved + 1 steps; in this process, which saves a start-up)
    monkeypatch.setenv("SEG2VID_PROGRESS", "0")
    assert cli.main([*args[3:], "--steps", str(saved + 1)]) == 0
    assert f"resuming {out / 'checkpoints' / 'last.pt'} at step {saved}" in capsys.readouterr().out
    assert load_checkpoint(out / "checkpoints" / "last.pt")["step"] == saved + 1


def test_tcmalloc_reexec_environment(tmp_path, monkeypatch):
    library = tmp_path / "libtcmalloc_minimal.so.4"
    library.touch()
    monkeypatch.setattr(cli, "TCMALLOC_CANDIDATES", (str(tmp_path / "absent.so"), str(library)))
    env = cli.tcmalloc_environment({"PATH": "/usr/bin", "LD_PRELOAD": "/x/libfoo.so"})
    assert env["LD_PRELOAD"] == f"{library} /x/libfoo.so" and env["PATH"] == "/usr/bin"
    assert cli.tcmalloc_environment({cli.NO_TCMALLOC_ENV: "1"}) is None
    assert cli.tcmalloc_environment({"LD_PRELOAD": "/opt/libtcmalloc.so"}) is None  # already there
    monkeypatch.setattr(cli, "TCMALLOC_CANDIDATES", (str(tmp_path / "absent.so"),))
    assert cli.tcmalloc_environment({}) is None  # no library: a safe no-op


# ----------------------------------------------------------------------------- other data


def _write_folder_dataset(root, with_labels: bool, videos: int = 2, frames: int = 4, size: int = 32):
    """ROOT/{video}/frames/NNNN.png (+ labels/NNNN.png): synthetic clips in the 'folder' layout."""
    from seg2vid.data.synthetic import SceneConfig, SyntheticStreets

    clips = SyntheticStreets(videos, SceneConfig(height=size, width=size, frames=frames - 1), seed=5)
    for v in range(videos):
        clip = clips[v]
        (root / f"video{v}" / "frames").mkdir(parents=True)
        if with_labels:
            (root / f"video{v}" / "labels").mkdir()
        for t in range(frames):
            rgb = (clip["frames"][t].permute(1, 2, 0) * 255).round().byte().numpy()
            Image.fromarray(rgb).save(root / f"video{v}" / "frames" / f"{t:04d}.png")
            if with_labels:
                ids = clip["labels"][t].byte().numpy()
                Image.fromarray(ids).save(root / f"video{v}" / "labels" / f"{t:04d}.png")


@pytest.mark.filterwarnings("ignore::seg2vid.training.objective.PerceptualOffWarning")
@pytest.mark.parametrize("with_labels", [True, False])
def test_cli_trains_on_a_folder_of_videos(tmp_path, capsys, with_labels):
    """``seg2vid train --data folder``: with label PNGs (Cityscapes table) or without (one
    'scene' class, as for KTH and UCF-101: the model's label channels follow the table)."""
    root = tmp_path / "videos"
    _write_folder_dataset(root, with_labels)
    out = tmp_path / "run"
    args = ["train", "--data", "folder", "--data-root", str(root), "--size", "32", "--frames", "2",
            "--batch-size", "2", "--steps", "2", "--sample-every", "2", "--device", "cpu", "--out", str(out)]
    assert cli.main(args) == 0, capsys.readouterr().err
    # video0 is held out for test (whole videos; seg2vid.data.folder.folder_splits): 1 video x (4 - 2) starts
    text = capsys.readouterr().out
    assert "2 folder clips" in text
    # the sample videos show the held-out test video (val is empty with 2 videos), not training clips
    assert "the held-out test split: 2 folder clips" in text, text
    ckpt = load_checkpoint(out / "checkpoints" / "last.pt")
    assert ckpt["step"] == 2 and ckpt["data_config"]["kind"] == "folder"
    assert ckpt["model_config"]["label_channels"] == (20 if with_labels else 2)
    assert (out / "samples" / "step_000002.gif").is_file()
    # resuming on other data is refused, naming the field
    other = tmp_path / "other"
    _write_folder_dataset(other, with_labels)
    assert cli.main([*args[:4], str(other), *args[5:], "--steps", "3"]) == 2
    assert "data root" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore::seg2vid.training.objective.PerceptualOffWarning")
def test_dataloader_workers_give_the_same_run(tmp_path):
    """num_workers > 0 loads the same clips in worker processes: bit-identical parameters."""
    from seg2vid.configs import model_for_table
    from seg2vid.data import DatasetConfig, build_dataset

    root = tmp_path / "videos"
    _write_folder_dataset(root, with_labels=True)
    dataset = build_dataset(DatasetConfig(kind="folder", root=str(root), height=32, width=32, frames=2))
    model = model_for_table(MODEL, dataset.table)
    states = []
    for workers in (0, 1):
        config = TrainConfig(steps=2, batch_size=2, sample_every=0, checkpoint_every=0, device="cpu",
                             num_workers=workers)
        trainer = Trainer(model, config, LossConfig(), tmp_path / f"w{workers}", dataset=dataset)
        trainer.train()
        states.append(trainer.model.state_dict())
    for name, value in states[0].items():
        assert torch.equal(value, states[1][name]), name


def test_read_log_gives_one_array_per_column(tmp_path):
    from seg2vid.training.loop import read_log

    trainer = make_trainer(tmp_path, steps=2)
    trainer.train()
    log = read_log(trainer.log_path)
    assert list(log) == trainer.columns
    assert log["step"].tolist() == [1.0, 2.0] and log["total"].dtype.kind == "f"


def test_train_shipped_log_puts_the_continued_runs_steps_first(tmp_path):
    """The shipped log of a recipe that continues another: that run's earlier steps first (every
    ``before_stride``-th), then this run's every ``stride``-th, a column only one log has as nan."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("train_shipped", Path(__file__).parents[1] / "scripts"
                                                  / "train_shipped.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    base, own = tmp_path / "base.csv", tmp_path / "own.csv"
    base.write_text("step,total\n" + "".join(f"{i},{i / 10}\n" for i in range(1, 7)))
    own.write_text("step,total,object_match\n" + "".join(f"{i},{i / 10},{i}\n" for i in range(5, 11)))
    rows = list(csv.DictReader(script.trimmed_log(own, 2, base, 2).splitlines()))
    # base steps 1..4 only (its 5 and 6 are this run's), every 2nd plus the first and last
    assert [int(r["step"]) for r in rows] == [1, 2, 4, 5, 6, 8, 10]
    assert all(math.isnan(float(r["object_match"])) for r in rows[:3])
    assert [float(r["object_match"]) for r in rows[3:]] == [5, 6, 8, 10]
    assert float(rows[1]["total"]) == pytest.approx(0.2)


def test_train_shipped_exports_nothing_after_a_stop(tmp_path, monkeypatch):
    """A SIGTERM-stopped run of scripts/train_shipped.py must not export, fit or score the partial
    model: by default the export replaces the shipped checkpoint."""
    import importlib.util
    from pathlib import Path

    from seg2vid.training.stage2 import Trainer

    spec = importlib.util.spec_from_file_location("train_shipped", Path(__file__).parents[1] / "scripts"
                                                  / "train_shipped.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    def stopped_at_once(self):  # as SIGTERM before the first step: the checkpoint is saved
        self.save_checkpoint()
        return {"status": "stopped by SIGTERM"}

    monkeypatch.setattr(Trainer, "train", stopped_at_once)
    export = tmp_path / "objects.pt"
    code = script.main(["--recipe", "objects", "--out", str(tmp_path / "objects"), "--from-run",
                        str(tmp_path / "motion"), "--export", str(export), "--steps", "4",
                        "--from-steps", "2"])
    assert code == cli.EXIT_STOPPED and not export.exists()
