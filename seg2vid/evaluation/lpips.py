"""LPIPS (Zhang et al. 2018), the learned perceptual distance between two frames, from LOCAL
weight files (a torchvision AlexNet / VGG-16 backbone and the LPIPS project's linear layers;
nothing is downloaded): :class:`LPIPS`, :func:`load_lpips`, :func:`lpips_distance`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from seg2vid.evaluation.features import (
    FeatureWeightsMissing,
    _check_file,
    _device_of,
    _key_error,
    _load_state_dict,
)

__all__ = [
    "LPIPS",
    "LPIPS_BACKBONES",
    "LPIPS_PROTOCOL",
    "LPIPS_SCALE",
    "LPIPS_SHIFT",
    "load_lpips",
    "load_lpips_backbone",
    "load_lpips_linear",
    "lpips_distance",
]

# ----------------------------------------------------------------------------- LPIPS

#: Backbones: the cut points in ``torchvision.models.<net>().features`` after each tapped ReLU
#: (alex: relu1..relu5; vgg16: relu1_2, relu2_2, relu3_3, relu4_3, relu5_3), and their channels.
LPIPS_BACKBONES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "alex": ((2, 5, 8, 10, 12), (64, 192, 384, 256, 256)),
    "vgg16": ((4, 9, 16, 23, 30), (64, 128, 256, 512, 512)),
}

#: LPIPS v0.1 input layer: images in [-1, 1] become ``(x - shift) / scale``. (shift = 2 mean - 1 and
#: scale = 2 std of ImageNet, so on [0, 1] images this is the usual ImageNet normalisation.)
LPIPS_SHIFT: tuple[float, float, float] = (-0.030, -0.088, -0.188)
LPIPS_SCALE: tuple[float, float, float] = (0.458, 0.448, 0.450)

#: LPIPS; ``{backbone}`` is filled in by :attr:`LPIPS.protocol`.
LPIPS_PROTOCOL = (
    "LPIPS v0.1 (Zhang et al. 2018), one distance per frame: inputs in [0, 1] mapped to [-1, 1], "
    "then the LPIPS scaling layer (shift (-0.030, -0.088, -0.188), scale (0.458, 0.448, 0.450)); "
    "backbone {backbone}; each tapped layer's features divided by their channel-wise L2 norm "
    "(+1e-10), squared difference, weighted by the non-negative learned 1x1 linear layers (the "
    "LPIPS project's lin0.. weights from a local file), averaged over space, summed over layers. "
    "Frames compared at their own resolution (no resize); 0 for identical frames, lower = more "
    "similar."
)

_NORM_EPS = 1e-10


class LPIPS(nn.Module):
    """The LPIPS distance between two images, frame by frame.

    Args:
        features: a backbone as a sequence of layers (e.g. ``torchvision.models.alexnet().features``
            with its weights), cut after the last tap.
        cuts: the tap positions: layer ``k`` is read after ``features[:cuts[k]]``.
        linear: one non-negative weight per tap, (1, C_k, 1, 1) with C_k the tap's channels.
        backbone: a description for :attr:`protocol` (e.g. "torchvision alexnet ...").
    Shapes:
        ``forward(x, y)``: (B, T, 3, H, W) videos -> (B, T), or (B, 3, H, W) images -> (B,);
        float in [0, 1]. Differentiable w.r.t. both inputs; the weights are frozen.
    """

    def __init__(
        self, features: nn.Sequential, cuts: Sequence[int], linear: Sequence[Tensor], backbone: str = "custom"
    ):
        super().__init__()
        cuts = tuple(int(c) for c in cuts)
        if not cuts or len(cuts) != len(linear):
            raise ValueError(f"need one linear weight per tap: {len(cuts)} cuts, {len(linear)} weights")
        if any(b <= a for a, b in zip((0, *cuts), cuts, strict=False)) or cuts[-1] > len(features):
            raise ValueError(f"cuts {cuts} must increase from >= 1 to at most len(features) {len(features)}")
        for k, weight in enumerate(linear):
            if weight.dim() != 4 or weight.shape[0] != 1 or weight.shape[2:] != (1, 1):
                raise ValueError(f"linear weight {k} must be (1, C, 1, 1), got {tuple(weight.shape)}")
            if (weight < 0).any():
                raise ValueError(f"linear weight {k} has negative entries: LPIPS weights are non-negative")
        self.features = features[: cuts[-1]].requires_grad_(False).eval()
        self.cuts = cuts
        self.backbone = backbone
        for k, weight in enumerate(linear):
            self.register_buffer(f"lin{k}", weight.detach().float().clone())
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1), persistent=False)

    @property
    def protocol(self) -> str:
        return LPIPS_PROTOCOL.format(backbone=self.backbone)

    def train(self, mode: bool = True) -> LPIPS:
        """The network stays in eval mode whatever the caller asks (it is frozen)."""
        return super().train(False)

    def _taps(self, images: Tensor) -> list[Tensor]:
        x = (2 * images - 1 - self.shift) / self.scale
        taps, start = [], 0
        for cut in self.cuts:
            x = self.features[start:cut](x)
            taps.append(x)
            start = cut
        return taps

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        if x.shape != y.shape or x.dim() not in (4, 5) or x.shape[-3] != 3:
            raise ValueError(
                f"x {tuple(x.shape)} and y {tuple(y.shape)} must both be (B, T, 3, H, W) or (B, 3, H, W)"
            )
        lead = x.shape[:-3]
        taps_x = self._taps(x.reshape(-1, *x.shape[-3:]))
        taps_y = self._taps(y.reshape(-1, *y.shape[-3:]))
        total = 0
        for k, (a, b) in enumerate(zip(taps_x, taps_y, strict=True)):
            weight = getattr(self, f"lin{k}")
            if a.shape[1] != weight.shape[1]:
                raise ValueError(
                    f"tap {k} has {a.shape[1]} channels but linear weight {k} expects {weight.shape[1]}"
                )
            a = a / (a.square().sum(dim=1, keepdim=True).sqrt() + _NORM_EPS)
            b = b / (b.square().sum(dim=1, keepdim=True).sqrt() + _NORM_EPS)
            total = total + F.conv2d((a - b).square(), weight).mean(dim=(1, 2, 3))
        return total.reshape(lead)


def load_lpips_linear(path: str | Path, channels: Sequence[int] | None = None) -> list[Tensor]:
    """The learned LPIPS layer weights from a LOCAL file in the LPIPS project's format.

    Args:
        path: a state dict with keys ``lin{k}.model.1.weight`` of shape (1, C_k, 1, 1), k = 0, 1, ...
            (the project's ``weights/v0.1/alex.pth`` / ``vgg.pth``; ``model.1`` because its layers
            are Dropout then Conv2d; ``lin{k}.model.0.weight``, saved without the dropout, is
            accepted too). Backbone keys (``net.*``) and the scaling layer's are ignored.
        channels: the expected C_k per layer (e.g. ``LPIPS_BACKBONES["alex"][1]``); None = as found.
    Returns:
        The weights as a list of (1, C_k, 1, 1) float tensors, in layer order.
    Raises:
        FileNotFoundError: no file at ``path``. ValueError: missing / unexpected keys (listed) or
        wrong shapes.
    """
    path = _check_file(path, "LPIPS linear-layer weights")
    state = _load_state_dict(path, "LPIPS linear-layer")
    lin_keys = {k: v for k, v in state.items() if not k.startswith(("net.", "scaling_layer."))}
    count = len(channels) if channels is not None else sum(1 for k in lin_keys if k.startswith("lin"))
    weights, expected = [], set()
    for k in range(count):
        names = (f"lin{k}.model.1.weight", f"lin{k}.model.0.weight")
        key = next((name for name in names if name in lin_keys), None)
        expected.add(key if key is not None else f"lin{k}.model.1.weight")
        if key is not None:
            weights.append(lin_keys[key])
    missing = [k for k in expected if k not in lin_keys]
    unexpected = [k for k in lin_keys if k not in expected]
    if missing or unexpected or not weights:
        raise _key_error(path, "LPIPS linear-layer", missing, unexpected)
    for k, weight in enumerate(weights):
        want = (1, channels[k], 1, 1) if channels is not None else (1, weight.shape[1], 1, 1)
        if tuple(weight.shape) != want:
            raise ValueError(f"{path}: lin{k} has shape {tuple(weight.shape)}, expected {want}")
    return [w.float() for w in weights]


def load_lpips_backbone(path: str | Path, net: str = "alex") -> nn.Sequential:
    """An LPIPS backbone's ``features`` from a LOCAL torchvision state-dict file.

    Args:
        path: a state dict of ``torchvision.models.alexnet`` / ``vgg16`` (keys ``features.N.*``,
            e.g. ``alexnet-owt-7be5be79.pth`` / ``vgg16-397923af.pth``; the classifier is ignored) or
            of its ``features`` (keys ``N.*``).
        net: ``"alex"`` or ``"vgg16"`` (:data:`LPIPS_BACKBONES`).
    Returns:
        The ``features`` layers, cut after the last tap, with the file's weights.
    """
    if net not in LPIPS_BACKBONES:
        raise ValueError(f"unknown LPIPS backbone {net!r}; choose from {list(LPIPS_BACKBONES)}")
    path = _check_file(path, f"{net} backbone weights")
    state = _load_state_dict(path, f"torchvision {net}")
    if any(k.startswith("features.") for k in state):
        state = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
    last = LPIPS_BACKBONES[net][0][-1]
    build = torchvision.models.alexnet if net == "alex" else torchvision.models.vgg16
    # Built on the meta device: the file's weights replace the random ones at once.
    with torch.device("meta"):
        features = build(weights=None).features[:last]
    expected = set(features.state_dict())
    missing = sorted(expected - set(state))
    # Layers past the last tap are ignored (in both networks only a weightless max pooling is cut).
    def layer(key: str) -> int:
        head = key.split(".")[0]
        return int(head) if head.isdigit() else -1

    unexpected = sorted(k for k in set(state) - expected if layer(k) < last)
    if missing or unexpected:
        raise _key_error(path, f"torchvision {net} features", missing, unexpected)
    try:
        features.load_state_dict({k: state[k] for k in expected}, strict=True, assign=True)
    except RuntimeError as err:
        raise ValueError(f"{path} does not match torchvision's {net}: {err}") from None
    return features


def load_lpips(
    backbone_path: str | Path | None,
    linear_path: str | Path | None,
    net: str = "alex",
    device: torch.device | str = "cpu",
) -> LPIPS:
    """LPIPS from two LOCAL files: torchvision backbone weights and the LPIPS linear layers.

    Args:
        backbone_path: see :func:`load_lpips_backbone`.
        linear_path: the LPIPS project's v0.1 weights for the same backbone (``alex.pth`` /
            ``vgg.pth``), see :func:`load_lpips_linear`.
        net: ``"alex"`` (the LPIPS authors' recommended metric) or ``"vgg16"``.
        device: where the network runs.
    Raises:
        FeatureWeightsMissing: a path is None. FileNotFoundError / ValueError: see the loaders.
    """
    if backbone_path is None or linear_path is None:
        given = {"backbone_path": backbone_path, "linear_path": linear_path}
        which = " and ".join(name for name, value in given.items() if value is None)
        raise FeatureWeightsMissing(
            f"LPIPS is unavailable: pass {which} to load_lpips (backbone_path: torchvision {net} ImageNet "
            f"weights; linear_path: the LPIPS project's v0.1 {'alex' if net == 'alex' else 'vgg'}.pth); "
            "nothing is downloaded"
        )
    if net not in LPIPS_BACKBONES:
        raise ValueError(f"unknown LPIPS backbone {net!r}; choose from {list(LPIPS_BACKBONES)}")
    cuts, channels = LPIPS_BACKBONES[net]
    features = load_lpips_backbone(backbone_path, net)
    linear = load_lpips_linear(linear_path, channels)
    files = f"weights {Path(backbone_path).name}, linear layers {Path(linear_path).name}"
    backbone = f"torchvision {net} ({files})"
    return LPIPS(features, cuts, linear, backbone).to(device)


def lpips_distance(pred: Tensor, true: Tensor, model: LPIPS, batch_size: int = 32) -> dict:
    """Per-frame LPIPS of generated videos against the true ones, batched and without gradients.

    Args:
        pred, true: (B, T, 3, H, W) videos or (B, 3, H, W) images, float in [0, 1].
        model: an :class:`LPIPS` (e.g. from :func:`load_lpips`).
        batch_size: frames per network call.
    Returns:
        ``{"score": (B, T) or (B,) float tensor on the CPU, "protocol": str}``; lower = more similar.
    """
    if pred.shape != true.shape or pred.dim() not in (4, 5):
        raise ValueError(
            f"pred {tuple(pred.shape)} and true {tuple(true.shape)} must both be (B, T, 3, H, W) or "
            "(B, 3, H, W)"
        )
    lead = pred.shape[:-3]
    x, y = pred.reshape(-1, *pred.shape[-3:]), true.reshape(-1, *true.shape[-3:])
    device = _device_of(model)
    scores = []
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            stop = start + batch_size
            a = x[start:stop].to(device, torch.float32)
            b = y[start:stop].to(device, torch.float32)
            scores.append(model(a, b).cpu())
    return {"score": torch.cat(scores).reshape(lead), "protocol": model.protocol}
