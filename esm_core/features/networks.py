"""Random, untrained convolutional networks used as feature extractors.

The default architecture is the reference table of the Extreme Style Machines experiments
(docs/engine.md): 3x3 convolutions, 2x2 stride-2 convolutions for down-sampling, ELU, zero
biases, GlorotUniform weights from a seed. ``NetworkParams`` selects the blog's variants
(activation, down-sampling, unit and depth multipliers, initialisation).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from esm_contract.params import NetworkParams


@dataclass(frozen=True)
class LayerDef:
    name: str
    units: int
    kernel: int  # 3 = 3x3 stride 1 (padded); 2 = the down-sampling layer of a block
    source: str  # "image" or another layer's name


# conv2_1 reads conv1_1 and conv3_1 reads conv2_1: the reference skips conv1_2 and conv2_2 there.
REFERENCE_LAYERS: tuple[LayerDef, ...] = (
    LayerDef("1_1", 48, 3, "image"),
    LayerDef("1_2", 48, 3, "1_1"),
    LayerDef("2_1", 80, 2, "1_1"),
    LayerDef("2_2", 80, 3, "2_1"),
    LayerDef("3_1", 112, 2, "2_1"),
    LayerDef("3_2", 112, 3, "3_1"),
    LayerDef("3_3", 112, 3, "3_2"),
    LayerDef("4_1", 176, 2, "3_2"),
    LayerDef("4_2", 176, 3, "4_1"),
    LayerDef("4_3", 176, 3, "4_2"),
)
_BY_NAME = {layer.name: layer for layer in REFERENCE_LAYERS}
LRELU_SLOPE = 1.0 / 3.0  # the blog's "very leaky" rectifier


def layer_scale(name: str) -> int:
    """How many image pixels one feature position spans along each axis (1, 2, 4, 8)."""
    return 2 ** (int(name.split("_")[0]) - 1)


def min_image_side(layers: Iterable[str], patch: int = 1) -> int:
    """Smallest image side whose features at every layer still hold ``patch`` positions."""
    return max(layer_scale(name) * patch for name in layers)


def receptive_radius(name: str, params: NetworkParams) -> int:
    """How many image pixels beyond its own ``layer_scale`` cell a feature position of layer
    ``name`` reads, along each side (each padded 3x3 convolution adds one cell of its level)."""
    radius = 0
    layer = _BY_NAME[name]
    while True:
        if layer.kernel == 3:
            radius += params.depth * layer_scale(layer.name)
        elif params.downsample != "strided":  # pooling, then one 3x3 convolution
            radius += layer_scale(layer.name)
        if layer.source == "image":
            return radius
        layer = _BY_NAME[layer.source]


def _needed(layers: Iterable[str]) -> list[str]:
    """The requested layers and everything they read from, in table order."""
    need: set[str] = set()
    stack = list(layers)
    while stack:
        name = stack.pop()
        if name not in need:
            need.add(name)
            source = _BY_NAME[name].source
            if source != "image":
                stack.append(source)
    return [layer.name for layer in REFERENCE_LAYERS if layer.name in need]


class RandomNetwork(nn.Module):
    """Computes the activations of chosen layers. Weights depend only on ``params``
    (and ``in_channels``), never on the device: they are drawn on the CPU."""

    def __init__(self, params: NetworkParams, in_channels: int = 3) -> None:
        super().__init__()
        self.params = params
        generator = torch.Generator().manual_seed(params.seed)
        self.units = {layer.name: max(1, round(layer.units * params.units)) for layer in REFERENCE_LAYERS}
        self.blocks = nn.ModuleDict()
        for layer in REFERENCE_LAYERS:
            source_units = in_channels if layer.source == "image" else self.units[layer.source]
            convs: list[nn.Conv2d] = []
            if layer.kernel == 3:
                for i in range(params.depth):
                    convs.append(nn.Conv2d(source_units if i == 0 else self.units[layer.name], self.units[layer.name], 3,
                                           padding=1))
            elif params.downsample == "strided":
                convs.append(nn.Conv2d(source_units, self.units[layer.name], 2, stride=2))
            else:  # pooling, then a 3x3 convolution at the lower resolution
                convs.append(nn.Conv2d(source_units, self.units[layer.name], 3, padding=1))
            for conv in convs:
                self._initialise(conv, generator)
            self.blocks[layer.name] = nn.ModuleList(convs)
        self.requires_grad_(False)

    def _initialise(self, conv: nn.Conv2d, generator: torch.Generator) -> None:
        if self.params.init == "glorot":
            nn.init.xavier_uniform_(conv.weight, gain=1.0, generator=generator)
        else:
            nn.init.orthogonal_(conv.weight, gain=1.0, generator=generator)
        nn.init.zeros_(conv.bias)

    def channels(self, name: str) -> int:
        return self.units[name]

    def _activate(self, x: torch.Tensor) -> torch.Tensor:
        """In place: ``x`` is a convolution's output, which its backward pass does not need."""
        activation = self.params.activation
        if activation == "elu":
            return F.elu(x, inplace=True)
        if activation == "relu":
            return F.relu(x, inplace=True)
        return F.leaky_relu(x, LRELU_SLOPE, inplace=True)

    def _apply_layer(self, layer: LayerDef, x: torch.Tensor, circular: bool, memory_format: torch.memory_format,
                     ) -> torch.Tensor:
        if layer.kernel == 2 and self.params.downsample != "strided":
            x = F.avg_pool2d(x, 2) if self.params.downsample == "avg" else F.max_pool2d(x, 2)
        for conv in self.blocks[layer.name]:
            if conv.kernel_size[0] == 3 and circular:  # the 3x3 convolutions pad with zeros themselves
                padded = F.pad(x, (1, 1, 1, 1), mode="circular").contiguous(memory_format=memory_format)
                x = F.conv2d(padded, conv.weight, conv.bias)
            else:
                x = conv(x)
            x = self._activate(x)
        return x

    def forward(self, image: torch.Tensor, layers: Sequence[str], circular: bool = False) -> dict[str, torch.Tensor]:
        """``image``: (N, C, H, W) already normalised to [-1, 1]. With ``circular`` every
        padding wraps around, so features of a tileable image are tileable too."""
        # Channels-last convolutions: forward and backward 1.7x faster on the CPU at 512x512
        # (docs/performance.md); CUDA keeps the default layout (not measured there).
        memory_format = torch.channels_last if image.device.type == "cpu" else torch.contiguous_format
        image = image.contiguous(memory_format=memory_format)
        outputs: dict[str, torch.Tensor] = {}
        for name in _needed(layers):
            layer = _BY_NAME[name]
            source = image if layer.source == "image" else outputs[layer.source]
            outputs[name] = self._apply_layer(layer, source, circular, memory_format)
        return {name: outputs[name] for name in layers}


def normalise_pixels(pixels: torch.Tensor) -> torch.Tensor:
    """[0, 255] pixels -> the network's [-1, 1] input, grey replicated to three channels."""
    if pixels.shape[1] == 1:
        pixels = pixels.expand(-1, 3, -1, -1)
    return pixels / 127.5 - 1.0
