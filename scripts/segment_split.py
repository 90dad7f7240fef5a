#!/usr/bin/env python
"""Segment every frame of a Cityscapes ``leftImg8bit_sequence`` split with YOUR model and save the
label maps (8-bit train-id PNGs, 255 = void) that :class:`seg2vid.data.CityscapesSequences` reads.

The model is never downloaded: give either

* a TorchScript file (``torch.jit.save`` of your network), loaded with ``torch.jit.load``,
* an exported program (``torch.export.save``, file name ending in ``.pt2``), loaded with
  ``torch.export.load`` (TorchScript is deprecated in recent PyTorch releases), or
* a Python import path ``module:function``; ``function()`` is called once, with no arguments,
  and must return the callable (it can build your network and load your local weights).

The callable receives (1, 3, H, W) float RGB in [0, 1] (add ``--imagenet-norm`` if a TorchScript
model expects ImageNet-normalised input) and returns (1, H', W') integer train ids or
(1, C, H', W') logits; ids are resized back (nearest) to the frame size. Existing maps are kept
(the run resumes) unless ``--overwrite``; files are written atomically.

    python scripts/segment_split.py ~/data/cityscapes --split train --model deeplab.pt --device cuda
    python scripts/segment_split.py ~/data/cityscapes --split val --model mymodels.seg:build \\
        --input-size 512 1024
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # works from a fresh checkout, before `pip install -e .`

import torch  # noqa: E402

from seg2vid.data.cityscapes import LABEL_SUFFIX, cache_label_maps  # noqa: E402
from seg2vid.data.labels import label_ids_to_train_ids  # noqa: E402

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_model(spec: str, device: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """A TorchScript file, an exported program (``.pt2``), or ``module:function`` returning the callable."""
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".pt2":
        program = torch.export.load(str(path))
        if device != "cpu":  # an exported program moves through a pass, not .to()
            from torch.export.passes import move_to_device_pass

            program = move_to_device_pass(program, device)
        return program.module()
    if path.is_file():
        model = torch.jit.load(str(path), map_location=device)
        model.eval()
        return model
    module_name, sep, function = spec.partition(":")
    if not sep or not module_name or not function:
        raise SystemExit(
            f"--model {spec!r} is neither an existing model file (TorchScript, .pt2) nor an import path "
            "'module:function'"
        )
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # a module next to where you run the script
    try:
        factory = getattr(importlib.import_module(module_name), function)
    except (ImportError, AttributeError) as err:
        raise SystemExit(f"--model {spec!r}: cannot import it ({err})") from None
    model = factory()
    if isinstance(model, torch.nn.Module):
        model.eval()
    return model


def wrap(model, imagenet_norm: bool, label_ids: bool):
    """Apply the input normalisation and the output id mapping around ``model``."""

    def segment(x: torch.Tensor) -> torch.Tensor:
        if imagenet_norm:
            mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
            std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
            x = (x - mean) / std
        out = model(x)
        if isinstance(out, dict):  # torchvision segmentation models return {"out": logits, ...}
            out = out["out"]
        if label_ids:
            ids = out.argmax(1) if out.ndim == 4 else out
            return torch.from_numpy(label_ids_to_train_ids(ids.cpu().numpy()))
        return out

    return segment


def main(argv: Sequence[str] | None = None) -> dict[str, int]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", help="folder holding leftImg8bit_sequence/")
    parser.add_argument("--split", default="train", choices=("train", "val", "test"))
    parser.add_argument("--model", required=True,
                        help="TorchScript file, .pt2 exported program, or module:function")
    parser.add_argument("--label-dir", default=None,
                        help="write into LABEL_DIR/{split}/{city}/ (default: next to the frames)")
    parser.add_argument("--suffix", default=LABEL_SUFFIX, help=f"label-map suffix (default {LABEL_SUFFIX})")
    parser.add_argument("--overwrite", action="store_true", help="segment again frames that have a map")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps ...")
    parser.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="resize frames to H W before the model (default: full 1024x2048)")
    parser.add_argument("--imagenet-norm", action="store_true", help="normalise input with ImageNet mean/std")
    parser.add_argument("--label-ids", action="store_true",
                        help="the model outputs Cityscapes label ids (0..33), not train ids: map them")
    args = parser.parse_args(argv)
    model = wrap(load_model(args.model, args.device), args.imagenet_norm, args.label_ids)
    counts = cache_label_maps(
        args.root, args.split, model, label_dir=args.label_dir, label_suffix=args.suffix,
        overwrite=args.overwrite, input_size=tuple(args.input_size) if args.input_size else None,
        device=args.device,
    )  # fmt: skip
    print(f"{args.split}: wrote {counts['written']} label maps, kept {counts['skipped']} existing ones")
    return counts


if __name__ == "__main__":
    main()
