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
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torchvision
from torch import Tensor, nn

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "VGG19_LAYERS", "VGGPerceptual", "load_perceptual"]

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


def _check_layers(layers: Sequence[str]) -> None:
    unknown = [name for name in layers if name not in VGG19_LAYERS]
    if unknown or not layers:
        raise ValueError(f"unknown VGG-19 layer(s) {unknown}; choose from {list(VGG19_LAYERS)}")


class VGGPerceptual(nn.Module):
    """Frozen VGG-19 features and the L1 perceptual loss between two batches of images.

    Build it with :meth:`from_file`; the constructor takes an already loaded ``features``.

    Args:
        features: ``torchvision.models.vgg19().features`` cut after the last layer used.
        layers: names from :data:`VGG19_LAYERS` whose outputs are compared.
    Shapes:
        ``forward(pred, target)``: two (N, 3, H, W) RGB batches in [0, 1] -> 0-d loss tensor.
    """

    def __init__(self, features: nn.Sequential, layers: Sequence[str] = DEFAULT_LAYERS):
        super().__init__()
        _check_layers(layers)
        self.layers = tuple(layers)
        self._taps = {VGG19_LAYERS[name] for name in layers}
        self.features = features.requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @classmethod
    def from_file(
        cls, path: str | Path, layers: Sequence[str] = DEFAULT_LAYERS, device: torch.device | str = "cpu"
    ) -> VGGPerceptual:
        """Load VGG-19 weights from a LOCAL file (``torch.load(weights_only=True)``).

        Args:
            path: a state dict of ``torchvision.models.vgg19`` (keys ``features.N.*``; the
                classifier's keys are ignored) or of its ``features`` (keys ``N.*``).
            layers: the ReLU outputs to compare (default: relu1_1 .. relu4_4).
            device: where the network lives.
        Raises:
            FileNotFoundError: no file at ``path``.
            ValueError: the file is not a VGG-19 state dict (missing keys or wrong shapes named).
        """
        _check_layers(layers)
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
        return cls(features, layers).to(device)

    def train(self, mode: bool = True) -> VGGPerceptual:
        """The network stays in eval mode whatever the caller asks (it is frozen)."""
        return super().train(False)

    def extract(self, images: Tensor) -> list[Tensor]:
        """Features of ``images`` (N, 3, H, W) in [0, 1] at :attr:`layers`, in network order."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (N, 3, H, W) RGB in [0, 1], got {tuple(images.shape)}")
        x = (images - self.mean) / self.std
        out = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self._taps:
                out.append(x)
        return out

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Sum over layers of ``mean |phi_l(pred) - phi_l(target)|`` (0-d; gradient to ``pred`` only)."""
        if pred.shape != target.shape:
            raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
        with torch.no_grad():
            target_features = self.extract(target)
        pred_features = self.extract(pred)
        return sum((p - t).abs().mean() for p, t in zip(pred_features, target_features, strict=True))


def load_perceptual(
    path: str | Path | None, layers: Sequence[str] = DEFAULT_LAYERS, device: torch.device | str = "cpu"
) -> VGGPerceptual | None:
    """:meth:`VGGPerceptual.from_file`, or ``None`` (perceptual term off) when ``path`` is None."""
    return None if path is None else VGGPerceptual.from_file(path, layers, device)
