"""The checkpoints shipped in data/checkpoints/: they load safely, and still score what their JSON says.

Each ``NAME.pt`` comes with ``NAME.json``, written by ``python scripts/evaluate_shipped.py --write``
(seeded held-out clips, prior samples and noise), ``NAME.log.csv`` (its training log, trimmed) and a
line in ``data/checkpoints/README.md`` (the command that trained it). A checkpoint retrained or
edited without re-running the evaluation fails here.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch

from seg2vid.checkpoints import find_checkpoint, load_checkpoint
from seg2vid.models.loading import export_model, load_model
from seg2vid.models.seg2vid import Seg2Vid, Seg2VidConfig
from seg2vid.training.objective import LossConfig
from seg2vid.training.stage2 import TrainConfig, Trainer

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = ROOT / "data" / "checkpoints"
#: The stage-2 checkpoints that ship with the course (stem of data/checkpoints/STEM.pt).
SHIPPED = ["seg2vid_tiny_64"]
#: How far a re-evaluation may drift from the recorded score (float rounding across CPUs and BLAS).
TOLERANCE = {"psnr": 0.02, "epe": 0.005, "occlusion_iou": 0.005, "kl_nats": 0.005, "diversity_l1": 0.0005}

pytestmark = pytest.mark.usefixtures("one_thread")


def _evaluate_shipped():
    """scripts/evaluate_shipped.py as a module (scripts/ is not a package)."""
    script = ROOT / "scripts" / "evaluate_shipped.py"
    spec = importlib.util.spec_from_file_location("evaluate_shipped", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tolerance(name: str) -> float:
    return next((tol for prefix, tol in TOLERANCE.items() if name.startswith(prefix)), 0.0)


@pytest.mark.parametrize("stem", SHIPPED)
def test_shipped_checkpoint_loads_with_weights_only(stem):
    path = CHECKPOINTS / f"{stem}.pt"
    ckpt = torch.load(path, map_location="cpu", weights_only=True)  # plain tensors and values only
    assert not {"optimizer", "scaler", "rng"} & set(ckpt), "ship the model-only export (export_model)"
    assert path.stat().st_size < 8 * 2**20, "a shipped checkpoint should stay a few MB"
    model = Seg2Vid(Seg2VidConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])  # strict: every weight present, none left over
    assert load_checkpoint(path)["step"] == ckpt["step"] > 0
    for companion in (path.with_suffix(".json"), path.with_suffix(".log.csv")):
        assert companion.is_file(), f"{companion.relative_to(ROOT)} is missing"
    readme = (CHECKPOINTS / "README.md").read_text()
    assert f"{stem}.pt" in readme, "document it in data/checkpoints/README.md"


@pytest.fixture(scope="module")
def recomputed():
    """The scores of every shipped checkpoint, recomputed from the file (once per test run)."""
    scores = {}
    for stem in SHIPPED:  # on the streets each was trained on (recorded in its JSON)
        style = json.loads((CHECKPOINTS / f"{stem}.json").read_text())["clips"]["style"]
        scores[stem] = _evaluate_shipped().evaluate(load_model(CHECKPOINTS / f"{stem}.pt", device="cpu"),
                                                    style=style)
    return scores


@pytest.mark.parametrize("stem", SHIPPED)
def test_shipped_checkpoint_reproduces_its_evaluation(stem, recomputed):
    path = CHECKPOINTS / f"{stem}.pt"
    report = json.loads(path.with_suffix(".json").read_text())
    assert report["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest(), (
        f"{path.name} changed since its evaluation: run `python scripts/evaluate_shipped.py --checkpoint "
        f"{path.relative_to(ROOT)} --write`"
    )
    scores = recomputed[stem]
    assert set(scores) == set(report["scores"])
    for name, expected in report["scores"].items():
        got = scores[name]
        if expected is None or got is None:
            assert got == expected, name
        else:
            assert math.isclose(got, expected, abs_tol=_tolerance(name) + 1e-4), (
                f"{name}: {got} now, {expected} recorded"
            )


def test_the_shipped_model_learned_something(recomputed):
    # what lesson 04 relies on, RECOMPUTED from the checkpoint (not read from its JSON): motion
    # better than "nothing moves", and a latent that is used
    scores = recomputed["seg2vid_tiny_64"]
    assert scores["psnr_posterior"] > scores["psnr_copy_first_frame"] + 0.5
    assert scores["epe_posterior_px"] < scores["epe_zero_flow_px"]
    assert scores["active_latents"] >= 2 and scores["diversity_l1"] > 0.005


def test_find_checkpoint_from_another_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # as papermill runs a lesson: in a temporary folder
    found = find_checkpoint("data/checkpoints/seg2vid_tiny_64.pt")
    assert found is not None and found.resolve() == (CHECKPOINTS / "seg2vid_tiny_64.pt").resolve()
    assert find_checkpoint("") is None and find_checkpoint(None) is None
    assert find_checkpoint("data/checkpoints/no_such_file.pt") is None
    (tmp_path / "mine.pt").write_bytes(b"")
    assert find_checkpoint("mine.pt") == Path("mine.pt"), "the current folder comes first"


def test_export_model_is_small_safe_and_not_resumable(tmp_path):
    small = dict(widths=(8, 8, 16, 16), motion_widths=(8, 8, 16, 16), refine_widths=(8, 8), latent_dim=4)
    config = Seg2VidConfig(height=32, width=32, frames=2, **small)
    train = TrainConfig(steps=1, batch_size=1, sample_every=0, num_clips=None, device="cpu")
    trainer = Trainer(config, train, LossConfig(perceptual=0), out_dir=tmp_path / "run")
    trainer.train()
    out = export_model(trainer.checkpoint_path, tmp_path / "shipped" / "model.pt")
    assert out.stat().st_size < trainer.checkpoint_path.stat().st_size
    assert not list(out.parent.glob("*.tmp")), "the temporary file was renamed"
    exported = torch.load(out, weights_only=True)
    assert exported["step"] == 1 and "optimizer" not in exported
    loaded = load_model(out).state_dict()
    for (name, a), b in zip(loaded.items(), trainer.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    with pytest.raises(ValueError, match="model-only export"):
        Trainer(config, train, LossConfig(perceptual=0), out_dir=tmp_path / "again").resume(out)


def test_fit_latent_prior_script_writes_a_fitted_loadable_checkpoint(tmp_path, capsys):
    """scripts/fit_latent_prior.py (how the shipped model's sampling prior was made): the written
    file loads with latent_prior="fitted", the same weights, and a prior fitted to its clips."""
    script = ROOT / "scripts" / "fit_latent_prior.py"
    spec = importlib.util.spec_from_file_location("fit_latent_prior", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    small = dict(widths=(8, 8, 16, 16), motion_widths=(8, 8, 16, 16), refine_widths=(8, 8), latent_dim=4)
    config = Seg2VidConfig(height=32, width=32, frames=2, **small)
    train = TrainConfig(steps=1, batch_size=1, sample_every=0, num_clips=None, device="cpu")
    trainer = Trainer(config, train, LossConfig(perceptual=0), out_dir=tmp_path / "run")
    trainer.train()
    exported = export_model(trainer.checkpoint_path, tmp_path / "model.pt")
    stats = module.fit(exported, tmp_path / "fitted.pt", clips=6, batch=4)
    assert "fitted the sampling prior to 6 training clips" in capsys.readouterr().out
    model = load_model(tmp_path / "fitted.pt")
    assert model.config.latent_prior == "fitted" and model.config.replace(latent_prior="standard") == config
    assert not torch.equal(model.fitted_scale, torch.eye(model.latent_size))
    torch.testing.assert_close(model.fitted_mean, torch.tensor(stats["mean"], dtype=torch.float32))
    for name, weight in trainer.model.state_dict().items():
        assert torch.equal(model.state_dict()[name], weight), name
