"""Label map in, videos out: stage 1 (first frame) and stage 2 (futures) behind one call.

    >>> from seg2vid.generation.pipeline import Pipeline, read_label_png
    >>> pipe = Pipeline.from_shipped()                      # the two shipped 64x64 checkpoints
    >>> labels = read_label_png("map.png")                  # int64 (H, W) train ids
    >>> videos = pipe.generate(labels, n_samples=3, generator=torch.Generator().manual_seed(0))
    >>> videos.shape                                        # (3, T+1, 3, 64, 64) in [0, 1]

:class:`Pipeline` validates the label map against the label table, centre-crops it to the
model's aspect ratio when it has another one, resizes it (nearest neighbour; notes on stderr)
to the model's size, makes the first frame with stage 1 (or
uses the image given as ``first_frame``, through :class:`~seg2vid.models.stage1.ImageFirstFrame`)
and samples ``n_samples`` futures from stage 2's prior, ``chunk_size`` (default
:data:`DEFAULT_CHUNK`) at a time so that memory does not grow with ``n_samples``, on the models' device.

:func:`read_label_png` reads a label map stored as a PNG in either encoding: train ids (a
single channel holding ids of the table, 255 = void; Cityscapes labelIds are converted) or the
Cityscapes colours (RGB or palette); :mod:`seg2vid.data.label_io` has the rules.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from seg2vid.checkpoints import find_checkpoint
from seg2vid.data.label_io import crop_to_aspect, decode_label_file
from seg2vid.data.labels import CITYSCAPES, LabelTable
from seg2vid.models.loading import load_model, load_spade_generator
from seg2vid.models.seg2vid import Seg2Vid
from seg2vid.models.stage1 import FirstFrameGenerator, ImageFirstFrame

__all__ = ["DEFAULT_CHUNK", "SHIPPED_STAGE1", "SHIPPED_STAGE2", "Pipeline", "read_label_png", "save_samples"]

#: Repository paths of the shipped checkpoints (found with :func:`seg2vid.checkpoints.find_checkpoint`).
SHIPPED_STAGE1 = "data/checkpoints/spade_tiny_64.pt"
SHIPPED_STAGE2 = "data/checkpoints/seg2vid_tiny_64.pt"
#: Futures per stage-2 batch in :meth:`Pipeline.generate` (memory is flat in the number asked for).
DEFAULT_CHUNK = 16


def read_label_png(path: str | Path, table: LabelTable = CITYSCAPES) -> np.ndarray:
    """Read a label-map file: int64 train ids (H, W).

    Grey images hold train ids (Cityscapes ``labelIds`` maps are recognised and converted),
    colour images the table's colours (every row of the Cityscapes table; void classes -> 255),
    palette PNGs and GIFs are decoded by their colours; see :mod:`seg2vid.data.label_io`.

    Raises:
        FileNotFoundError: the file does not exist.
        seg2vid.data.label_io.LabelMapError: (a ``ValueError``) empty, truncated or not an image,
            a JPEG, an id that is not a train id of ``table`` nor its void id, or a colour that
            belongs to no class; the message names the file and the cause.
    """
    return decode_label_file(path, table)


class Pipeline:
    """Stage 1 (label map -> first frame) followed by stage 2 (first frame + map -> futures).

    Args:
        stage1: any :class:`~seg2vid.models.stage1.FirstFrameGenerator` (None: every call must
            pass ``first_frame``).
        stage2: a trained :class:`~seg2vid.models.seg2vid.Seg2Vid` (its size is the pipeline's).
        table: the label set of both models.
    """

    def __init__(self, stage1: FirstFrameGenerator | None, stage2: Seg2Vid, table: LabelTable = CITYSCAPES):
        if stage1 is not None and not isinstance(stage1, FirstFrameGenerator):
            raise TypeError(
                f"stage1 must have a generate(labels_onehot, generator) method, got {type(stage1).__name__}"
            )
        self.stage1 = stage1
        self.stage2 = stage2.eval()
        self.table = table
        #: The checkpoint files the models came from (set by :meth:`from_shipped`; empty otherwise).
        self.sources: dict[str, Path] = {}

    @classmethod
    def from_shipped(
        cls, device: str | torch.device | None = None,
        stage1: str | Path | None = None, stage2: str | Path | None = None,
    ) -> Pipeline:
        """The pipeline of the two shipped 64x64 checkpoints (SPADE stage 1, tiny stage 2), or of the
        files ``stage1`` / ``stage2`` given instead (an explicit path always wins).

        The files used are in :attr:`sources` (``{"stage1": Path, "stage2": Path}``): the shipped
        ones are read from the installed package data (see
        :func:`seg2vid.checkpoints.shipped_checkpoint`), never from a copy in the current folder.

        Raises:
            FileNotFoundError: naming the checkpoint(s) that cannot be found.
            ValueError: a file that is empty, truncated, corrupt or of another format.
        """
        wanted = {"stage1": stage1 or SHIPPED_STAGE1, "stage2": stage2 or SHIPPED_STAGE2}
        found = {key: find_checkpoint(name) for key, name in wanted.items()}
        missing = [str(wanted[key]) for key, path in found.items() if path is None]
        if missing:
            raise FileNotFoundError(
                f"checkpoint(s) not found: {', '.join(missing)} (a data/checkpoints/ name is looked up in "
                "the installed package data seg2vid._shipped or the repository that holds the package)"
            )
        model2 = load_model(found["stage2"], device=device)
        model1 = load_spade_generator(found["stage1"], device=device)
        pipeline = cls(model1, model2)
        pipeline.sources = found
        return pipeline

    @property
    def device(self) -> torch.device:
        return next(self.stage2.parameters()).device

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the videos."""
        return self.stage2.config.height, self.stage2.config.width

    @property
    def frames(self) -> int:
        """T, the number of generated future frames (videos hold T + 1)."""
        return self.stage2.config.frames

    def prepare_labels(self, label_map: Tensor | np.ndarray) -> Tensor:
        """Validate an int (H, W) label map and fit it to the model size: int64 (H, W).

        A map of another aspect ratio is first centre-cropped to the model's (a note on stderr),
        then any map is resized (nearest neighbour) to the model's size.
        """
        labels = torch.as_tensor(np.ascontiguousarray(label_map) if isinstance(label_map, np.ndarray)
                                 else label_map)
        if labels.dim() != 2:
            raise ValueError(f"label_map must be (H, W) integer train ids, got shape {tuple(labels.shape)}")
        self.table.check(labels)
        labels = labels.long()
        size = self.size
        if labels.shape[0] * size[1] != labels.shape[1] * size[0]:
            # The model's frame size is fixed by its configuration: crop, never squash (a 128x256
            # map squashed to 64x64 turns cars into blobs). See seg2vid.data.label_io.fit_label_map.
            cropped = crop_to_aspect(labels, *size)
            print(f"seg2vid: centre-cropping the {labels.shape[0]}x{labels.shape[1]} label map to "
                  f"{cropped.shape[0]}x{cropped.shape[1]} (the model's {size[0]}:{size[1]} aspect ratio)",
                  file=sys.stderr)
            labels = cropped
        if tuple(labels.shape) != size:
            print(f"seg2vid: resizing the {labels.shape[0]}x{labels.shape[1]} label map to the model's "
                  f"{size[0]}x{size[1]} (nearest neighbour)", file=sys.stderr)
            labels = F.interpolate(labels[None, None].float(), size=size, mode="nearest")[0, 0].long()
        return labels

    @torch.no_grad()
    def generate(
        self,
        label_map: Tensor | np.ndarray,
        n_samples: int = 3,
        first_frame: Tensor | np.ndarray | None = None,
        generator: torch.Generator | None = None,
        chunk_size: int = DEFAULT_CHUNK,
        precision: str = "fp32",
    ) -> Tensor:
        """``n_samples`` videos for one label map, sampled ``chunk_size`` at a time.

        Args:
            label_map: int (H, W) train ids of the table (void allowed); resized to the model's size.
            n_samples: futures to sample.
            first_frame: optional image of the scene (float (3, H, W) in [0, 1] or uint8 (H, W, 3));
                resized to the model's size; stage 1 is skipped.
            generator: seeds stage 1's noise and stage 2's latents (a CPU generator is fine with
                models on a GPU: it seeds a generator there).
            chunk_size: futures per stage-2 batch: memory grows with the chunk, not with
                ``n_samples`` (one batch of 1000 took about 5 GB). Chunks draw their latents and
                noise from ``generator`` one after the other, so the first ``chunk_size`` videos
                are exactly those of ``generate(..., n_samples=chunk_size)`` and all of them are
                reproducible for a fixed seed and chunk size; with ``n_samples <= chunk_size``
                (one chunk) the result does not depend on it. Another chunk size gives other
                (equally distributed) samples for ``n_samples > chunk_size``.
            precision: stage 2's, ``"fp32"`` (default), ``"bf16"`` or ``"auto"``: see
                :meth:`seg2vid.models.seg2vid.Seg2Vid.sample` (stage 1 always runs in fp32).
        Returns:
            float (n_samples, T+1, 3, H, W) in [0, 1] on the CPU; frame 0 is the first frame.
        """
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        labels = self.prepare_labels(label_map)
        onehot = self.table.one_hot(labels)[None]  # (1, L, H, W)
        device = self.device
        stage1 = ImageFirstFrame(first_frame, resize=True) if first_frame is not None else self.stage1
        if stage1 is None:
            raise ValueError("this pipeline has no stage 1: pass first_frame")
        if generator is not None and generator.device != device:
            # a generator on another device (a CPU one with CUDA models) seeds one on the models' device
            seed = int(torch.randint(0, 2**62, (1,), generator=generator))
            generator = torch.Generator(device=device).manual_seed(seed)
        onehot = onehot.to(device)
        first = stage1.generate(onehot, generator=generator).to(device).clamp(0, 1)
        videos = []
        for start in range(0, n_samples, chunk_size):
            n = min(chunk_size, n_samples - start)
            out = self.stage2.sample(first, onehot, n_samples=n, generator=generator, precision=precision)
            videos.append(out.video.float().clamp(0, 1).cpu())  # only the chunk's videos stay
            del out
        return videos[0] if len(videos) == 1 else torch.cat(videos)


def save_samples(
    out: str | Path,
    videos: Tensor,
    label_map: Tensor | np.ndarray,
    prefix: str = "sample",
    fps: float = 4,
    scale: int = 2,
    table: LabelTable = CITYSCAPES,
) -> list[Path]:
    """Write each video as ``{prefix}_{i}.gif`` and ``.mp4`` and a contact sheet ``{prefix}s.png``.

    Args:
        out: folder (created if missing).
        videos: (N, T+1, 3, H, W) in [0, 1], as :meth:`Pipeline.generate` returns them.
        label_map: int (H', W') train ids; shown (centre-cropped to the videos' aspect ratio and resized
            to H, W, nearest, as :meth:`Pipeline.prepare_labels` does) in the sheet's first column.
        prefix: file-name stem.
        fps, scale: playback speed and integer pixel upscaling of every file.
    Returns:
        the paths written: GIF and MP4 of every sample, then the sheet (rows = samples; columns =
        the label map, then time).
    """
    from seg2vid.viz import grid_image, save_gif, save_mp4, save_png, upscale

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    videos = videos.detach().float().cpu()
    labels = torch.as_tensor(np.asarray(label_map)).long()
    size = tuple(videos.shape[-2:])
    labels = crop_to_aspect(labels, *size)  # as Pipeline.prepare_labels did
    if tuple(labels.shape) != size:
        labels = F.interpolate(labels[None, None].float(), size=size, mode="nearest")[0, 0].long()
    label_rgb = table.colorize(labels)
    written = []
    for i, video in enumerate(videos):
        written.append(save_gif(out / f"{prefix}_{i}.gif", video, fps=fps, scale=scale))
        written.append(save_mp4(out / f"{prefix}_{i}.mp4", video, fps=fps, scale=scale))
    frames_uint8 = (videos.permute(0, 1, 3, 4, 2).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    rows = [[upscale(label_rgb, scale), *[upscale(f, scale) for f in video]] for video in frames_uint8]
    written.append(save_png(out / f"{prefix}s.png", grid_image(rows)))
    return written
