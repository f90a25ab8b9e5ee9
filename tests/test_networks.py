"""Random networks: shapes for every architecture variant, seeding, initialisation, wrap-around."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from esm_contract.params import ACTIVATIONS, DOWNSAMPLES, NetworkParams
from esm_core.features.networks import REFERENCE_LAYERS, LRELU_SLOPE, RandomNetwork, layer_scale

ALL_LAYERS = [layer.name for layer in REFERENCE_LAYERS]


@pytest.mark.parametrize("activation,downsample", list(itertools.product(ACTIVATIONS, DOWNSAMPLES)))
@pytest.mark.parametrize("units,depth", [(1.0, 1), (0.25, 1), (0.5, 2), (0.5, 3)])
def test_every_variant_gives_the_reference_shapes(activation: str, downsample: str, units: float, depth: int) -> None:
    params = NetworkParams(activation=activation, downsample=downsample, units=units, depth=depth)
    net = RandomNetwork(params)
    features = net(torch.rand(1, 3, 48, 40) * 2 - 1, ALL_LAYERS)
    for layer in REFERENCE_LAYERS:
        scale = layer_scale(layer.name)
        assert features[layer.name].shape == (1, max(1, round(layer.units * units)), 48 // scale, 40 // scale)
    convs_per_3x3 = [len(net.blocks[layer.name]) for layer in REFERENCE_LAYERS if layer.kernel == 3]
    assert set(convs_per_3x3) == {depth}


def test_only_needed_layers_are_computed_and_returned() -> None:
    net = RandomNetwork(NetworkParams())
    assert list(net(torch.zeros(1, 3, 32, 32), ["4_1", "3_1"])) == ["4_1", "3_1"]


def test_same_seed_same_weights_other_seed_other_weights() -> None:
    a = RandomNetwork(NetworkParams(seed=7)).state_dict()
    b = RandomNetwork(NetworkParams(seed=7)).state_dict()
    c = RandomNetwork(NetworkParams(seed=8)).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["blocks.3_1.0.weight"], c["blocks.3_1.0.weight"])


def test_glorot_uniform_bounds_and_zero_biases() -> None:
    net = RandomNetwork(NetworkParams())
    conv = net.blocks["3_1"][0]
    fan_in = conv.in_channels * 4
    fan_out = conv.out_channels * 4
    limit = math.sqrt(6 / (fan_in + fan_out))
    weight = conv.weight.abs()
    assert weight.max() <= limit and weight.max() > 0.95 * limit
    assert all(float(c.bias.abs().max()) == 0.0 for block in net.blocks.values() for c in block)


def test_orthogonal_initialisation_has_orthonormal_rows() -> None:
    net = RandomNetwork(NetworkParams(init="orthogonal"))
    weight = net.blocks["3_1"][0].weight.reshape(112, -1)  # 112 x (80*4): rows orthonormal
    assert torch.allclose(weight @ weight.T, torch.eye(112), atol=1e-4)


@pytest.mark.parametrize("activation,lowest", [("elu", -1.0), ("relu", 0.0), ("lrelu", None)])
def test_activations(activation: str, lowest: float | None) -> None:
    out = RandomNetwork(NetworkParams(activation=activation))(torch.rand(1, 3, 16, 16) * 2 - 1, ["1_1"])["1_1"]
    if lowest is not None:
        assert float(out.min()) >= lowest
    else:  # very leaky: negative values exist and are a third of the pre-activation
        assert float(out.min()) < 0
        assert LRELU_SLOPE == pytest.approx(1 / 3)


def test_circular_features_of_a_tiling_are_the_tiling_of_features() -> None:
    net = RandomNetwork(NetworkParams())
    period = torch.rand(1, 3, 32, 24) * 2 - 1
    tiled = period.repeat(1, 1, 2, 2)
    one = net(period, ["3_1", "4_1"], circular=True)
    two = net(tiled, ["3_1", "4_1"], circular=True)
    for name in one:
        assert torch.allclose(one[name].repeat(1, 1, 2, 2), two[name], atol=1e-5)
    zero_padded = net(period, ["4_1"], circular=False)["4_1"]
    assert not torch.allclose(zero_padded.repeat(1, 1, 2, 2), two["4_1"], atol=1e-3)


@pytest.mark.parametrize("bad", [dict(activation="tanh"), dict(downsample="stride"), dict(units=0.0),
                                 dict(depth=4), dict(init="he"), dict(seed=-1)])
def test_bad_network_params_are_refused(bad: dict) -> None:
    from esm_contract.params import ParamError

    with pytest.raises(ParamError):
        NetworkParams(**bad).validate()
