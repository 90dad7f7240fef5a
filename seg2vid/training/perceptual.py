"""A VGG-19 perceptual loss whose weights come ONLY from a local file.

The method's perceptual term compares VGG-19 features (ImageNet-trained) of the warped and the true
frames. Nothing is ever downloaded here: build the network with :func:`load_perceptual` (or
:meth:`VGGPerceptual.from_file`) from a file you have, e.g. torchvision's ``vgg19-dcbb9e9d.pth``
(keys ``features.0.weight`` ...) or a features-only state dict (keys ``0.weight`` ...). Without
a path the term is simply off (:func:`seg2vid.training.objective.seg2vid_loss` says so once).

Unlike the authors' code, the VGG is NOT a submodule of the model: it never enters a checkpoint
(their checkpoints carried all of VGG-19's 548 MB), and it is frozen (no gradient reaches its
weights; gradients still flow through it to the input image).

Layers: the default is the authors' choice, all twelve ReLU outputs ``relu1_1 .. relu4_4``; the
network is cut after the last layer asked for. Their code replaced VGG's max pooling by average
pooling; this module keeps the max pooling the weights were trained with. The loss is the SUM over
layers of the mean absolute feature difference (their formula), so deeper layers, with smaller
maps, count as much as shallow ones.

Speed switches (issue 15; the defaults keep the fp32 numbers of before): ``precision="bf16"``
runs the frozen network under bfloat16 autocast (about 2x the fp32 convolution throughput on CPUs
with AVX-512 BF16 or AMX, and on CUDA since Ampere; :func:`bf16_supported` says whether this
machine has it, ``precision="auto"`` uses it where it does); ``channels_last=True`` runs it in
NHWC (oneDNN's native layout: no reorders around every convolution); ``downsample=k`` compares
features of the images average-pooled k x k (a documented LOWER-RESOLUTION perceptual term: k^2
times cheaper, but another loss: its features see k times coarser detail). The target branch is
never differentiated, and it runs through the network in lockstep with the prediction, so each
target feature map is freed as soon as its layer's difference is taken (the peak memory holds
one target map, not twelve).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from seg2vid.utils import PRECISIONS, bf16_supported  # re-exported: the perceptual switches use them

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "PRECISIONS", "VGG19_LAYERS", "VGGPerceptual", "bf16_supported",
           "load_perceptual"]

#: ImageNet channel statistics of torchvision's VGG weights (RGB, images in [0, 1]).
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

#: Index of each ReLU in ``torchvision.models.vgg19().features`` (conv, relu, ..., pool).
VGG19_LAYERS: dict[str, int] = {
    "relu1_1": 1, "relu1_2": 3,
    "relu2_1": 6, "relu2_2": 8,
    "relu3_1": 11, "relu3_2": 13, "relu3_3": 15, "relu3_4": 17,
    "relu4_1": 20, "relu4_2": 22, "relu4_3": 24, "relu4_4": 26,
    "relu5_1": 29, "relu5_2": 31, "relu5_3": 33, "relu5_4": 35,
}

#: The authors' layers: every ReLU from relu1_1 to relu4_4.
DEFAULT_LAYERS: tuple[str, ...] = tuple(name for name in VGG19_LAYERS if not name.startswith("relu5"))


def _check_options(precision: str, downsample: int) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if not isinstance(downsample, int) or downsample < 1:
        raise ValueError(f"downsample must be an integer >= 1 (1 = full resolution), got {downsample!r}")


def _check_layers(layers: Sequence[str]) -> None:
    unknown = [name for name in layers if name not in VGG19_LAYERS]
    if unknown or not layers:
        raise ValueError(f"unknown VGG-19 layer(s) {unknown}; choose from {list(VGG19_LAYERS)}")


class _MeanAbsDiff(torch.autograd.Function):
    """``mean |x - y|`` in fp32 with a gradient to ``x`` only, saving 1 byte per element.

    Autograd's ``(x - y).abs().mean()`` keeps the whole difference map (fp32: 4 bytes per element)
    for the backward pass, as many maps as the network's activations at the twelve layers; the
    gradient only needs the SIGN, kept here as int8. Same value, bit-identical gradient
    (``sign * g / N``: a product by -1, 0 or 1 is exact).
    """

    @staticmethod
    def forward(ctx, x: Tensor, y: Tensor) -> Tensor:
        diff = x - y
        ctx.save_for_backward(torch.sign(diff).to(torch.int8))
        ctx.dtype, ctx.count = x.dtype, diff.numel()
        return diff.abs().mean(dtype=torch.float32)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        (sign,) = ctx.saved_tensors
        # the same product as autograd's: abs' backward (g/N) * sign, in the features' dtype
        return sign.to(ctx.dtype) * (grad / ctx.count).to(ctx.dtype), None


class VGGPerceptual(nn.Module):
    """Frozen VGG-19 features and the L1 perceptual loss between two batches of images.

    Build it with :meth:`from_file`; the constructor takes an already loaded ``features``.

    Args:
        features: ``torchvision.models.vgg19().features`` cut after the last layer used.
        layers: names from :data:`VGG19_LAYERS` whose outputs are compared.
        precision: ``"fp32"`` (default), ``"bf16"`` (bfloat16 autocast around the network; the
            per-layer differences are averaged in fp32) or ``"auto"`` (bf16 where
            :func:`bf16_supported`). The module's weights stay fp32 either way.
        channels_last: run the network on NHWC tensors (same numbers up to float rounding).
        downsample: compare the images average-pooled ``downsample`` x ``downsample`` (1 = the
            authors' full-resolution term); H and W must be divisible by it.
    Shapes:
        ``forward(pred, target)``: two (N, 3, H, W) RGB batches in [0, 1] -> 0-d loss tensor.
    """

    def __init__(self, features: nn.Sequential, layers: Sequence[str] = DEFAULT_LAYERS,
                 precision: str = "fp32", channels_last: bool = False, downsample: int = 1):
        super().__init__()
        _check_layers(layers)
        _check_options(precision, downsample)
        self.layers = tuple(layers)
        self.precision = precision
        self.channels_last = channels_last
        self.downsample = downsample
        self._taps = {VGG19_LAYERS[name] for name in layers}
        self.features = features.requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @classmethod
    def from_file(
        cls, path: str | Path, layers: Sequence[str] = DEFAULT_LAYERS, device: torch.device | str = "cpu",
        **options,
    ) -> VGGPerceptual:
        """Load VGG-19 weights from a LOCAL file (``torch.load(weights_only=True)``).

        Args:
            path: a state dict of ``torchvision.models.vgg19`` (keys ``features.N.*``; the
                classifier's keys are ignored) or of its ``features`` (keys ``N.*``).
            layers: the ReLU outputs to compare (default: relu1_1 .. relu4_4).
            device: where the network lives.
            options: ``precision``, ``channels_last``, ``downsample`` (see the class).
        Raises:
            FileNotFoundError: no file at ``path``.
            ValueError: the file is not a VGG-19 state dict (missing keys or wrong shapes named).
        """
        _check_layers(layers)
        _check_options(options.get("precision", "fp32"), options.get("downsample", 1))
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no VGG-19 weights file at {path}")
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise ValueError(f"{path} does not hold a state dict (got {type(state).__name__})")
        if any(k.startswith("features.") for k in state):
            state = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        last = max(VGG19_LAYERS[name] for name in layers)
        # The architecture comes from torchvision, built on the meta device: no memory and no time
        # spent on a random initialisation that the file's weights replace at once.
        with torch.device("meta"):
            features = torchvision.models.vgg19(weights=None).features[: last + 1]
        needed = set(features.state_dict())
        missing = sorted(needed - set(state))
        if missing:
            raise ValueError(f"{path} is not a VGG-19 state dict: missing {missing[:6]}")
        state = {k: state[k] for k in needed}
        try:
            features.load_state_dict(state, strict=True, assign=True)
        except RuntimeError as err:
            raise ValueError(f"{path} does not match VGG-19: {err}") from None
        return cls(features, layers, **options).to(device)

    def train(self, mode: bool = True) -> VGGPerceptual:
        """The network stays in eval mode whatever the caller asks (it is frozen)."""
        return super().train(False)

    def uses_bf16(self, precision: str | None = None) -> bool:
        """Whether the network runs under bfloat16 autocast for ``precision`` (default: the module's),
        resolved for the module's device (``"auto"``: :func:`bf16_supported`)."""
        precision = precision or self.precision
        if precision == "auto":
            return bf16_supported(self.mean.device)
        return precision == "bf16"

    def _prepare(self, images: Tensor, channels_last: bool, downsample: int) -> Tensor:
        """Checked, (down-sampled,) normalised network input, in the memory format asked for."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (N, 3, H, W) RGB in [0, 1], got {tuple(images.shape)}")
        if downsample > 1:
            if images.shape[-2] % downsample or images.shape[-1] % downsample:
                raise ValueError(f"image size {tuple(images.shape[-2:])} is not divisible by "
                                 f"downsample={downsample}")
            images = F.avg_pool2d(images, downsample)
        x = (images - self.mean) / self.std
        # the weights follow the input's layout (a no-op when they already have it): oneDNN then
        # keeps one layout throughout instead of reordering around every convolution
        layout = torch.channels_last if channels_last else torch.contiguous_format
        self.features.to(memory_format=layout)
        return x.contiguous(memory_format=layout)

    def _options(self, precision: str | None, channels_last: bool | None,
                 downsample: int | None) -> tuple[bool, bool, int]:
        precision = self.precision if precision is None else precision
        downsample = self.downsample if downsample is None else downsample
        _check_options(precision, downsample)
        return (self.uses_bf16(precision), self.channels_last if channels_last is None else channels_last,
                downsample)

    def _autocast(self, bf16: bool) -> torch.autocast:
        return torch.autocast(self.mean.device.type, dtype=torch.bfloat16, enabled=bf16)

    def extract(self, images: Tensor, **options) -> list[Tensor]:
        """Features of ``images`` (N, 3, H, W) in [0, 1] at :attr:`layers`, in network order
        (bfloat16 under bf16 precision; down-sampled first when asked). ``options``: as :meth:`forward`."""
        bf16, channels_last, downsample = self._options(**{"precision": None, "channels_last": None,
                                                           "downsample": None, **options})
        x = self._prepare(images, channels_last, downsample)
        out = []
        with self._autocast(bf16):
            for index, layer in enumerate(self.features):
                x = layer(x)
                if index in self._taps:
                    out.append(x)
        return out

    def forward(self, pred: Tensor, target: Tensor, *, precision: str | None = None,
                channels_last: bool | None = None, downsample: int | None = None) -> Tensor:
        """Sum over layers of ``mean |phi_l(pred) - phi_l(target)|`` (0-d fp32; gradient to ``pred`` only).

        ``precision``, ``channels_last``, ``downsample``: override the module's options for this
        call (None: the module's). The target runs through the network beside the prediction,
        layer by layer, without autograd: each target map is dropped once its difference is
        taken (the same numbers as extracting both feature lists first, less peak memory)."""
        if pred.shape != target.shape:
            raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
        bf16, channels_last, downsample = self._options(precision, channels_last, downsample)
        x = self._prepare(pred, channels_last, downsample)
        with torch.no_grad():
            y = self._prepare(target, channels_last, downsample)
        total = None
        with self._autocast(bf16):
            for index, layer in enumerate(self.features):
                x = layer(x)
                with torch.no_grad():
                    y = layer(y)
                if index in self._taps:
                    # averaged in fp32 whatever the network's precision; the backward keeps
                    # only the difference's sign (see _MeanAbsDiff)
                    term = _MeanAbsDiff.apply(x, y)
                    total = term if total is None else total + term
        return total


def load_perceptual(
    path: str | Path | None, layers: Sequence[str] = DEFAULT_LAYERS, device: torch.device | str = "cpu",
    **options,
) -> VGGPerceptual | None:
    """:meth:`VGGPerceptual.from_file` (``options``: ``precision``, ``channels_last``, ``downsample``),
    or ``None`` (perceptual term off) when ``path`` is None."""
    return None if path is None else VGGPerceptual.from_file(path, layers, device, **options)
