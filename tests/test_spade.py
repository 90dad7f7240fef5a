"""Stage 1: the SPADE block, the generator and discriminators, the interface, training, the shipped
generator and its committed evaluation."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from seg2vid.checkpoints import CheckpointMismatchError, load_stage1_checkpoint
from seg2vid.cli import main
from seg2vid.data.first_frames import render_first_frames
from seg2vid.data.labels import CITYSCAPES, LabelTable
from seg2vid.data.splits import FIRST_FRAME_SEED
from seg2vid.evaluation.first_frames import class_mean_colors, evaluate_first_frames
from seg2vid.metrics import psnr
from seg2vid.models import (
    SPADE,
    SPADE_PRESETS,
    FirstFrameGenerator,
    ImageFirstFrame,
    MultiScaleDiscriminator,
    SpadeConfig,
    SpadeGenerator,
    split_label_groups,
)
from seg2vid.models.loading import load_spade_generator
from seg2vid.training.adversarial import feature_matching_loss, hinge_discriminator_loss, hinge_generator_loss
from seg2vid.training.stage1 import Stage1TrainConfig, Stage1Trainer

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "data" / "checkpoints" / "spade_tiny_64.pt"
SMALL = SpadeConfig(widths=(16, 16, 8), spade_hidden=8, disc_widths=(8, 16), disc_scales=2)


def onehot(b: int, h: int, w: int, table: LabelTable = CITYSCAPES, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return table.one_hot(torch.randint(0, table.num_classes, (b, h, w), generator=g))


def randomise(module: torch.nn.Module, seed: int = 0, std: float = 0.2) -> torch.nn.Module:
    """Seeded random weights everywhere (SPADE's gamma/beta convs start at zero)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(std * torch.randn(p.shape, generator=g))
    return module


# ----------------------------------------------------------------------------- SPADE block


def spade_reference(x, labels, block: SPADE, batch_stats: bool = False):
    """SPADE written out: normalise without affine parameters, modulate per pixel."""
    dims = (0, 2, 3) if batch_stats else (2, 3)
    mean = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, keepdim=True, unbiased=False)
    normalised = (x - mean) / torch.sqrt(var + block.eps)
    small = F.interpolate(labels, size=x.shape[-2:], mode="nearest")
    hidden = torch.relu(F.conv2d(small, block.shared[0].weight, block.shared[0].bias, padding=1))
    gamma = F.conv2d(hidden, block.gamma.weight, block.gamma.bias, padding=1)
    beta = F.conv2d(hidden, block.beta.weight, block.beta.bias, padding=1)
    return normalised * (1 + gamma) + beta


@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_spade_equals_hand_written_reference(norm):
    block = randomise(SPADE(6, CITYSCAPES.num_channels, hidden=5, norm=norm))
    g = torch.Generator().manual_seed(1)
    x = 3 * torch.randn(2, 6, 8, 12, generator=g) + 1
    labels = onehot(2, 32, 48)  # a larger map: SPADE resizes it to x's size
    torch.testing.assert_close(block(x, labels), spade_reference(x, labels, block, norm == "batch"))


def test_fresh_spade_is_a_plain_normalisation_and_labels_matter_once_trained():
    block = SPADE(4, CITYSCAPES.num_channels, hidden=8)
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    a, b = onehot(1, 8, 8, seed=1), onehot(1, 8, 8, seed=2)
    torch.testing.assert_close(block(x, a), F.instance_norm(x))
    randomise(block)
    assert (block(x, a) - block(x, b)).abs().max() > 0.1


# ----------------------------------------------------------------------------- generator


@pytest.mark.parametrize("h,w", [(16, 16), (16, 32), (64, 64), (40, 24)])
def test_generator_shapes_and_range(h, w):
    model = SpadeGenerator(SPADE_PRESETS["tiny"])
    out = model(onehot(2, h, w))
    assert out.shape == (2, 3, h, w) and out.dtype == torch.float32
    assert 0 <= out.min() and out.max() <= 1
    # the same weights at another size; generate() is the FirstFrameGenerator interface
    assert isinstance(model, FirstFrameGenerator)
    assert model.eval().generate(onehot(1, h, w)).shape == (1, 3, h, w)


def test_generator_errors_are_clear():
    model = SpadeGenerator(SMALL)
    with pytest.raises(ValueError, match="multiples of 4 .* at least 8"):
        model(onehot(1, 12, 4))
    with pytest.raises(ValueError, match="not the integer map"):
        model(torch.zeros(1, 8, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="takes no noise"):
        model(onehot(1, 8, 8), torch.zeros(1, 4))


def test_noise_is_seeded_by_the_generator_argument():
    model = randomise(SpadeGenerator(SMALL.replace(noise_dim=4))).eval()
    labels = onehot(2, 8, 8)
    first = model.generate(labels, generator=torch.Generator().manual_seed(3))
    again = model.generate(labels, generator=torch.Generator().manual_seed(3))
    other = model.generate(labels, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(first, again)
    assert (first - other).abs().max() > 1e-3
    with pytest.raises(ValueError, match="noise must be"):
        model(labels, torch.zeros(2, 3))


def test_config_round_trip_and_presets():
    for config in SPADE_PRESETS.values():
        assert SpadeConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert SPADE_PRESETS["tiny"].size_multiple == 8 and SPADE_PRESETS["large"].size_multiple == 16
    with pytest.raises(ValueError, match="unknown SpadeConfig field"):
        SpadeConfig.from_dict({"widths": [8], "colour": 1})
    with pytest.raises(ValueError, match="unknown norm"):
        SpadeConfig(norm="group")


# ----------------------------------------------------------------------------- discriminator


def test_discriminator_shapes():
    disc = MultiScaleDiscriminator(SpadeConfig(disc_widths=(8, 16, 32), disc_scales=3))
    outputs = disc(torch.rand(2, 3, 64, 48), onehot(2, 64, 48))
    assert len(outputs) == 3
    for scale, features in enumerate(outputs):
        assert [f.shape[1] for f in features] == [8, 16, 32, 1]
        size = (64 >> scale, 48 >> scale)
        assert features[0].shape[-2:] == (size[0] // 2 + 1, size[1] // 2 + 1)  # 4x4, stride 2, pad 2
        assert features[-1].shape[0] == 2 and features[-1].shape[-1] >= 1
    with pytest.raises(ValueError, match="must share B, H and W"):
        disc(torch.rand(2, 3, 64, 48), onehot(2, 32, 48))


def test_hinge_and_feature_matching_losses():
    real = [[torch.ones(1, 2, 2), torch.full((1, 1, 3, 3), 2.0)]]
    fake = [[torch.zeros(1, 2, 2), torch.full((1, 1, 3, 3), -0.5)]]
    assert hinge_discriminator_loss(real, fake).item() == pytest.approx(0 + 0.5)
    assert hinge_generator_loss(fake).item() == pytest.approx(0.5)
    assert feature_matching_loss(fake, real).item() == pytest.approx(1.0)


# ----------------------------------------------------------------------------- stage-1 interface


def test_image_adapter_passes_an_image_through():
    image = torch.rand(3, 16, 24, generator=torch.Generator().manual_seed(0))
    stage1 = ImageFirstFrame(image)
    assert isinstance(stage1, FirstFrameGenerator)
    out = stage1.generate(onehot(2, 16, 24))
    assert out.shape == (2, 3, 16, 24)
    torch.testing.assert_close(out[1], image)
    photo = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)  # (H, W, 3) like PIL gives
    from_photo = ImageFirstFrame(photo).generate(onehot(1, 16, 24))[0]
    torch.testing.assert_close(from_photo, image, atol=1 / 255, rtol=0)
    assert ImageFirstFrame(image, resize=True).generate(onehot(1, 8, 12)).shape == (1, 3, 8, 12)
    with pytest.raises(ValueError, match="resize=True"):
        stage1.generate(onehot(1, 8, 12))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ImageFirstFrame(image * 2)
    with pytest.raises(ValueError, match="2 images for a batch of 3"):
        ImageFirstFrame(torch.rand(2, 3, 8, 8)).generate(onehot(3, 8, 8))


def test_split_label_groups_cityscapes():
    labels = onehot(2, 8, 8)
    background, foreground = split_label_groups(labels, CITYSCAPES)
    assert background.shape == (2, 12, 8, 8) and foreground.shape == (2, 8, 8, 8)  # 11 + void, 8
    assert torch.equal(background.sum(1) + foreground.sum(1), torch.ones(2, 8, 8))
    torch.testing.assert_close(foreground[:, 2], labels[:, CITYSCAPES.id_of("car")])
    with pytest.raises(ValueError, match="for this table"):
        split_label_groups(labels[:, :5], CITYSCAPES)


def test_a_custom_label_table_works_by_changing_the_table():
    table = LabelTable(names=("ground", "sky", "ball"), colors=((90, 90, 90), (100, 150, 230), (230, 40, 40)),
                       foreground=(False, False, True))
    config = SMALL.replace(label_channels=table.num_channels)
    assert SpadeConfig.for_table(table, widths=SMALL.widths, spade_hidden=8, disc_widths=(8, 16)) == config
    labels = torch.zeros(2, 16, 16, dtype=torch.long)
    labels[:, :6] = 1
    labels[:, 9:13, 5:9] = 2
    labels[1, 0, 0] = table.ignore_id
    maps = table.one_hot(labels)
    images = torch.stack([torch.tensor(table.colors[i]) / 255 for i in range(3)])[labels.clamp(max=2)]
    images = images.permute(0, 3, 1, 2).contiguous()

    torch.manual_seed(0)
    generator, disc = SpadeGenerator(config), MultiScaleDiscriminator(config)
    optimiser = torch.optim.Adam(generator.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        fake = generator(maps)
        fake_outputs = disc(fake, maps)
        with torch.no_grad():
            real_outputs = disc(images, maps)
        l1 = (fake - images).abs().mean()
        adversarial = feature_matching_loss(fake_outputs, real_outputs) + hinge_generator_loss(fake_outputs)
        loss = 10 * l1 + adversarial
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(l1.item())
    assert losses[-1] < 0.6 * losses[0]
    background, foreground = split_label_groups(maps, table)
    assert background.shape == (2, 3, 16, 16) and foreground.shape == (2, 1, 16, 16)
    colours = class_mean_colors(generator.eval().generate(maps), labels, table)
    assert list(colours) == ["ground", "sky", "ball"] and colours["ball"][1] == 2 * 16


# ----------------------------------------------------------------------------- training


def small_trainer(tmp_path: Path, **changes) -> Stage1Trainer:
    settings = dict(height=16, width=16, steps=2, batch_size=2, num_clips=4, sample_every=2,
                    checkpoint_every=0, device="cpu")
    config = Stage1TrainConfig(**(settings | changes))
    return Stage1Trainer(SMALL, config, tmp_path / "run")


def test_a_few_steps_lower_the_loss_on_a_fixed_batch(tmp_path):
    trainer = small_trainer(tmp_path, lr_generator=3e-3)
    images, labels = render_first_frames(4, 16, 16, seed=5)
    maps = CITYSCAPES.one_hot(labels)
    rows = [trainer.train_step(images, maps) for _ in range(12)]
    assert set(rows[0]) == {"g_total", "l1", "feature_matching", "adversarial", "d_loss", "d_real", "d_fake",
                            "grad_norm_g"}
    assert rows[-1]["l1"] < 0.7 * rows[0]["l1"]
    assert trainer.step == 12


def test_training_writes_checkpoint_log_samples_and_resumes_exactly(tmp_path):
    straight = small_trainer(tmp_path / "a", steps=4)
    straight.train()
    paused = small_trainer(tmp_path / "b", steps=4)
    summary = paused.train(until=2)
    assert summary["status"] == "paused at step 2 of 4"
    resumed = small_trainer(tmp_path / "b", steps=4)
    assert resumed.resume() == 2
    resumed.train()
    for a, b in zip(straight.generator.parameters(), resumed.generator.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    run = tmp_path / "b" / "run"
    assert (run / "samples" / "step_000004.png").is_file()
    log = (run / "log.csv").read_text().splitlines()
    assert log[0].startswith("step,g_total,l1,feature_matching,adversarial,d_loss") and len(log) == 5
    ckpt = load_stage1_checkpoint(run / "checkpoints" / "last.pt")
    assert ckpt["step"] == 4 and set(ckpt) >= {"generator", "discriminator", "optimizer_g", "rng"}

    with pytest.raises(FileExistsError, match="already holds a run"):
        small_trainer(tmp_path / "b", steps=4).train()
    with pytest.raises(CheckpointMismatchError, match="train lr_generator"):
        small_trainer(tmp_path / "b", steps=4, lr_generator=1e-3).resume()


def test_warm_start_from_a_checkpoint_or_a_generator_export(tmp_path):
    first = small_trainer(tmp_path / "a", sample_every=0)
    first.train()
    export = first.export_generator(tmp_path / "g.pt")
    from_ckpt = small_trainer(tmp_path / "b", steps=3)
    assert from_ckpt.warm_start(first.checkpoint_path) == 2
    from_export = small_trainer(tmp_path / "c", steps=3)
    fresh_discriminator = [p.clone() for p in from_export.discriminator.parameters()]
    assert from_export.warm_start(export, keep_step=False) == 0
    for trainer in (from_ckpt, from_export):
        for a, b in zip(first.generator.parameters(), trainer.generator.parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    # the discriminator comes with a training checkpoint, not with a generator export
    for a, b in zip(first.discriminator.parameters(), from_ckpt.discriminator.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for a, b in zip(fresh_discriminator, from_export.discriminator.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert from_ckpt.train()["step"] == 3
    other = Stage1TrainConfig(height=16, width=16, steps=2, device="cpu")
    with pytest.raises(CheckpointMismatchError, match="noise_dim"):
        Stage1Trainer(SMALL.replace(noise_dim=SMALL.noise_dim + 1), other, tmp_path / "d").warm_start(export)


def test_sample_pictures_come_from_the_held_out_clips(tmp_path):
    from seg2vid.data import DatasetConfig, build_dataset

    def data(split):
        return build_dataset(DatasetConfig(height=16, width=16, frames=1, num_clips=5, split=split))

    train, held_out = data("train"), data("val")
    tc = Stage1TrainConfig(height=16, width=16, steps=0, sample_every=0, device="cpu")
    trainer = Stage1Trainer(SPADE_PRESETS["tiny"], tc, tmp_path / "a", dataset=train, held_out=held_out)
    trainer.write_samples(num_images=2)
    images, labels = trainer._sample_batch
    # the first frames of held-out clips 0 and 2 (spread over the 5), never a training clip
    expected = torch.stack([held_out[i]["frames"][0] for i in (0, 2)])
    torch.testing.assert_close(images, (expected * 255).round() / 255)
    assert torch.equal(labels, torch.stack([held_out[i]["label_map"] for i in (0, 2)]))
    # without held_out, a run on a dataset shows its own (training) clips
    trainer = Stage1Trainer(SPADE_PRESETS["tiny"], tc, tmp_path / "b", dataset=train)
    trainer.write_samples(num_images=1)
    assert torch.equal(trainer._sample_batch[1][0], train[0]["label_map"])


def test_export_and_load_generator(tmp_path):
    trainer = small_trainer(tmp_path)
    trainer.train()
    path = trainer.export_generator(tmp_path / "g.pt")
    assert set(torch.load(path, weights_only=True)) == {
        "format", "format_version", "seg2vid_version", "step", "model", "model_config", "train_config"}
    maps = onehot(1, 16, 16)
    trainer.generator.eval()
    for source in (path, trainer.checkpoint_path):  # the export and the training checkpoint
        loaded = load_spade_generator(source, "cpu")
        torch.testing.assert_close(loaded.generate(maps), trainer.generator.generate(maps))
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a seg2vid stage-1 file"):
        load_spade_generator(tmp_path / "other.pt")


def test_a_crash_during_a_stage1_save_leaves_the_previous_files_intact(tmp_path, crashing_torch_save):
    trainer = small_trainer(tmp_path, steps=1, sample_every=0)
    trainer.train()
    path = trainer.checkpoint_path
    export = trainer.export_generator(tmp_path / "g.pt")
    before, export_before = path.read_bytes(), export.read_bytes()
    trainer.step = 2
    for save in (trainer.save_checkpoint, lambda: trainer.export_generator(export)):
        with crashing_torch_save(), pytest.raises(OSError, match="simulated crash"):
            save()
    assert path.read_bytes() == before and export.read_bytes() == export_before
    assert load_stage1_checkpoint(path)["step"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"], "a temporary file was left"


def test_cli_train_stage1(tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["train-stage1", "--size", "16", "--steps", "2", "--batch-size", "2", "--num-clips", "3",
            "--out", str(out), "--device", "cpu", "--sample-every", "0", "--export", str(tmp_path / "g.pt")]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "finished at step 2" in text and str(out / "checkpoints" / "last.pt") in text
    assert (tmp_path / "g.pt").is_file()
    assert main([*args, "--steps", "3"]) == 0  # a run in --out is resumed by default
    assert "resuming" in capsys.readouterr().out
    assert main([*args, "--no-resume"]) == 2
    assert "--no-resume" in capsys.readouterr().err


def test_cli_train_stage1_reads_a_stage1_run_config(tmp_path, capsys):
    from seg2vid.configs import load_run_config

    config = tmp_path / "stage1_small.toml"
    config.write_text('stage = 1\n[model]\npreset = "tiny"\nwidths = [32, 16, 8]\n'
                      '[train]\nheight = 16\nwidth = 16\nsteps = 2\nbatch_size = 2\nnum_clips = 3\n'
                      'sample_every = 0\nweight_adversarial = 0.5\n')
    run = load_run_config(config)
    assert run.stage == 1 and run.spade_config().widths == (32, 16, 8)
    out = tmp_path / "run"
    assert main(["train-stage1", "--config", str(config), "--lr", "1e-3", "--device", "cpu",
                 "--out", str(out)]) == 0, capsys.readouterr().err
    assert "a pool of 3 synthetic clips" in capsys.readouterr().out
    ckpt = load_stage1_checkpoint(out / "checkpoints" / "last.pt")
    tc = ckpt["train_config"]
    assert (tc["height"], tc["steps"], tc["weight_adversarial"]) == (16, 2, 0.5)
    assert tc["lr_generator"] == tc["lr_discriminator"] == 1e-3  # --lr on top of the file, both networks
    assert ckpt["model_config"]["widths"] == [32, 16, 8]
    # each command refuses the other stage's run configs, and a size in [data] is named
    assert main(["train", "--config", str(config), "--steps", "1"]) == 2
    assert "stage-1 run config: use seg2vid train-stage1" in capsys.readouterr().err
    assert main(["train-stage1", "--config", "synthetic_tiny_64", "--out", str(tmp_path / "x")]) == 2
    assert "stage-2 run config: use seg2vid train" in capsys.readouterr().err
    config.write_text('stage = 1\n[data]\nheight = 32\n')
    with pytest.raises(ValueError, match=r"in \[train\] \(stage 1\)"):
        load_run_config(config)
    config.write_text('stage = 1\n[model]\nframes = 4\n')
    with pytest.raises(ValueError, match="unknown SpadeConfig field.*frames"):
        load_run_config(config).spade_config()
    config.write_text('stage = 1\n[loss]\nkl = 1\n')
    with pytest.raises(ValueError, match="no \\[loss\\]"):
        load_run_config(config)


def test_cli_train_stage1_on_a_folder_dataset(tmp_path, capsys):
    """Stage 1 learns from a real dataset's first frames and label maps (here the folder layout)."""
    from PIL import Image

    from seg2vid.checkpoints import load_stage1_checkpoint
    from seg2vid.data.synthetic import SceneConfig, SyntheticStreets

    clips = SyntheticStreets(2, SceneConfig(height=16, width=16, frames=1), seed=3)
    for v in range(2):
        folder = tmp_path / "videos" / f"v{v}"
        for sub in ("frames", "labels"):
            (folder / sub).mkdir(parents=True)
        for t in range(2):
            rgb = (clips[v]["frames"][t].permute(1, 2, 0) * 255).round().byte().numpy()
            Image.fromarray(rgb).save(folder / "frames" / f"{t}.png")
            Image.fromarray(clips[v]["labels"][t].byte().numpy()).save(folder / "labels" / f"{t}.png")
    out = tmp_path / "run"
    args = ["train-stage1", "--size", "16", "--steps", "2", "--batch-size", "2", "--out", str(out),
            "--device", "cpu", "--sample-every", "0", "--data", "folder",
            "--data-root", str(tmp_path / "videos")]
    assert main(args) == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    # one video trains (one 1 + 1-frame clip), the other is held out for the samples (whole videos)
    assert "a pool of 1 of the 1 folder clips (train)" in text, text
    assert "the held-out" in text and "split: 1 folder clips" in text, text
    ckpt = load_stage1_checkpoint(out / "checkpoints" / "last.pt")
    assert ckpt["step"] == 2 and ckpt["data_config"]["kind"] == "folder"
    assert main([*args[:-1], str(tmp_path / "elsewhere")]) == 2  # other data: missing folder named


# ----------------------------------------------------------------------------- metrics and the shipped file


def test_psnr_and_class_colours():
    a = torch.zeros(2, 3, 4, 4)
    assert psnr(a + 0.1, a).tolist() == pytest.approx([20.0, 20.0])
    labels = torch.zeros(2, 4, 4, dtype=torch.long)
    labels[:, 0] = CITYSCAPES.id_of("sky")
    labels[0, 1, 1] = CITYSCAPES.ignore_id
    images = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    colours = class_mean_colors(images, labels)
    assert list(colours) == ["road", "sky"] and colours["road"][1] == 2 * 12 - 1
    torch.testing.assert_close(colours["sky"][0], images[:, :, 0].mean(dim=(0, 2)))


def test_shipped_generator_reproduces_its_committed_evaluation():
    assert SHIPPED.is_file(), f"{SHIPPED} is missing (see data/checkpoints/STAGE1.md)"
    assert SHIPPED.stat().st_size < 8e6
    ckpt = torch.load(SHIPPED, map_location="cpu", weights_only=True)
    assert ckpt["format"] == "seg2vid-stage1-generator"
    committed = json.loads(SHIPPED.with_suffix(".json").read_text())
    assert committed["settings"]["dataset_seed"] == FIRST_FRAME_SEED
    model = load_spade_generator(SHIPPED, "cpu")
    scores = evaluate_first_frames(model, 64, 64, committed["settings"]["num_images"], device="cpu")
    assert scores["l1"] == pytest.approx(committed["l1"], abs=1e-4)
    assert scores["psnr_db"] == pytest.approx(committed["psnr_db"], abs=1e-2)
    assert scores["mean_class_color_error"] == pytest.approx(committed["mean_class_color_error"], abs=0.05)
