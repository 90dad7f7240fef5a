"""The lazy clip pool: only the clips a run asks for are loaded, in any order, with the same result."""

import pytest
import torch

from seg2vid.data.pool import ClipPool
from seg2vid.models import Seg2VidConfig
from seg2vid.models.spade import SpadeConfig
from seg2vid.training.objective import LossConfig
from seg2vid.training.stage1 import Stage1TrainConfig, Stage1Trainer
from seg2vid.training.stage2 import TrainConfig, Trainer

SMALL = dict(widths=(8, 8, 16, 16), motion_widths=(8, 8, 16, 16), refine_widths=(8, 8), latent_dim=4)
pytestmark = pytest.mark.usefixtures("one_thread")


def fake_clip(i):
    return torch.full((2, 3, 4, 4), i, dtype=torch.uint8), torch.full((4, 4), 100 + i, dtype=torch.uint8)


def test_pool_loads_each_clip_once_at_first_use():
    calls = []
    pool = ClipPool(10, lambda i: (calls.append(i), fake_clip(i))[1])
    frames, labels = pool.get([7, 2, 7])
    assert calls == [7, 2] and pool.num_loaded == 2 and len(pool) == 10
    assert frames[:, 0, 0, 0, 0].tolist() == [7, 2, 7] and labels[:, 0, 0].tolist() == [107, 102, 107]
    pool.get([2, 3])
    assert calls == [7, 2, 3]  # 2 was not loaded again
    with pytest.raises(IndexError, match="outside the pool"):
        pool.get([10])
    with pytest.raises(TypeError, match="uint8"):
        ClipPool(2, lambda i: (torch.zeros(3), torch.zeros(3, dtype=torch.uint8))).get([0])


def test_stage2_pool_renders_only_the_clips_a_run_uses_and_order_does_not_matter(tmp_path):
    model = Seg2VidConfig(height=32, width=32, frames=2, **SMALL)
    settings = dict(batch_size=2, sample_every=0, checkpoint_every=0, num_clips=1000, device="cpu")
    no_vgg = LossConfig(perceptual=0)
    trainer = Trainer(model, TrainConfig(steps=2, **settings), no_vgg, out_dir=tmp_path / "a")
    assert trainer._pool.num_loaded == 0  # nothing rendered when the trainer is built
    trainer.train()
    assert trainer._pool.num_loaded == 4  # 2 steps x 2 clips, not the pool of 1000
    # Another trainer that meets the clips in another order holds the same clips.
    other = Trainer(model, TrainConfig(steps=2, **settings), no_vgg, out_dir=tmp_path / "b")
    late = trainer.clip_indices(2)
    other._pool.get(late)
    for step in (1, 2):
        for a, b in zip(trainer.load_batch(step), other.load_batch(step), strict=True):
            assert torch.equal(a, b)
    # and each equals the clip rendered on its own
    frames, labels = trainer.load_batch(1)
    fresh = trainer._render(trainer.clip_indices(1), None)
    assert torch.equal(frames, fresh[0].float() / 255) and torch.equal(labels, fresh[1].long())


def test_stage1_pool_renders_only_the_clips_a_run_uses(tmp_path):
    config = SpadeConfig(widths=(16, 16, 8), spade_hidden=8, disc_widths=(8, 16), disc_scales=2)
    tc = Stage1TrainConfig(height=16, width=16, steps=1, batch_size=2, num_clips=500, sample_every=0,
                           checkpoint_every=0, device="cpu")
    trainer = Stage1Trainer(config, tc, tmp_path / "run")
    trainer.train()
    assert trainer._pool.num_loaded == 2
