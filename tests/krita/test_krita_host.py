"""Host-side checks of the Krita plug-in's parts that need no Krita: the pure-Python byte
layouts (pixels.py, loaded from its file: the package itself imports Krita's PyQt5) and the
installer's kritarc edit. The tests inside Krita are in test_krita_plugin.py."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from esm_cli.plugin_install.krita import enable_plugin

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "krita" / "esm_krita"


@pytest.fixture(scope="module")
def pixels():  # noqa: ANN201
    spec = importlib.util.spec_from_file_location("esm_krita_pixels", PLUGIN / "pixels.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (5, 7, 4), dtype=np.uint8)


def test_bgra_round_trip(pixels, image) -> None:  # noqa: ANN001
    bgra = bytes(pixels.swap_red_blue(image.tobytes()))
    assert np.array_equal(np.frombuffer(bgra, np.uint8).reshape(image.shape), image[..., [2, 1, 0, 3]])
    assert bytes(pixels.to_bgra(pixels.swap_red_blue(bgra), 4)) == bgra


@pytest.mark.parametrize("channels", [1, 3])
def test_wire_images_without_alpha_become_opaque_bgra(pixels, image, channels) -> None:  # noqa: ANN001
    wire = image[..., :channels]
    bgra = np.frombuffer(bytes(pixels.to_bgra(wire.tobytes(), channels)), np.uint8).reshape(5, 7, 4)
    rgb = np.repeat(wire, 3, axis=2) if channels == 1 else wire
    assert np.array_equal(bgra[..., :3], rgb[..., ::-1])
    assert (bgra[..., 3] == 255).all()


def test_rgba_to_rgb_and_opacity(pixels, image) -> None:  # noqa: ANN001
    assert bytes(pixels.rgba_to_rgb(image.tobytes())) == image[..., :3].tobytes()
    opaque = image.copy()
    opaque[..., 3] = 255
    assert pixels.is_opaque(opaque.tobytes())
    opaque[4, 6, 3] = 254
    assert not pixels.is_opaque(opaque.tobytes())


def test_repeat_lays_out_tiles(pixels, image) -> None:  # noqa: ANN001
    tiled = pixels.repeat(image.tobytes(), 7, 5, 4, 3, 2)
    assert np.array_equal(np.frombuffer(tiled, np.uint8).reshape(10, 21, 4), np.tile(image, (2, 3, 1)))


def test_enable_plugin_in_new_kritarc(tmp_path) -> None:  # noqa: ANN001
    kritarc = tmp_path / "config" / "kritarc"
    enable_plugin(kritarc)
    assert kritarc.read_text() == "[python]\nenable_esm_krita=true\n"


def test_enable_plugin_keeps_everything_else(tmp_path) -> None:  # noqa: ANN001
    """kritarc is KConfig: keys with odd characters, values with % and =; only our line changes."""
    kritarc = tmp_path / "kritarc"
    before = ("[MainWindow]\nState=AAAA/w==%20\nWindow[$e]=x=y\n\n[python]\nenable_scripter=true\n"
              "enable_esm_krita=false\n\n[theme]\nTheme=Krita dark\n")
    kritarc.write_text(before)
    enable_plugin(kritarc)
    assert kritarc.read_text() == before.replace("enable_esm_krita=false", "enable_esm_krita=true")
    kritarc.write_text(before.replace("enable_esm_krita=false\n", ""))
    enable_plugin(kritarc)
    assert kritarc.read_text() == before.replace("enable_esm_krita=false", "enable_esm_krita=true")
    kritarc.write_text("[General]\nx=1\n")
    enable_plugin(kritarc)
    assert kritarc.read_text() == "[General]\nx=1\n\n[python]\nenable_esm_krita=true\n"
