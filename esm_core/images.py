"""Image files and arrays: loading with clear errors, atomic saving, channel layouts.

Engine images are uint8 arrays of shape (H, W, C), C = 1 (grey), 2 (grey + alpha), 3 (RGB) or
4 (RGBA). Files load as 1, 3 or 4 channels; the engine reduces grey RGB(A) to 1 or 2 (``to_grey``).
"""
from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from esm_contract.errors import ParamError
from esm_contract.images import RawImage

SUPPORTED_CHANNELS = (1, 2, 3, 4)


class ImageError(ParamError):
    """An image file or array cannot be used; the message says why."""


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Reads any Pillow-readable file as uint8 (H, W, C): grey stays 1 channel, palette and
    other modes become RGB or RGBA, 16-bit grey is scaled to 8 bits."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    try:
        with Image.open(path) as image:
            image.load()
            return pil_to_array(image)
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ImageError(f"{path}: not a readable image ({error})") from None


def pil_to_array(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        data = np.asarray(image, dtype=np.float64)
        scale = 255.0 / 65535.0 if data.max(initial=0) > 255 else 1.0
        return np.clip(np.round(data * scale), 0, 255).astype(np.uint8)[..., None]
    if image.mode == "L":
        return np.asarray(image, dtype=np.uint8)[..., None].copy()
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    converted = image.convert("RGBA" if has_alpha else "RGB")
    return np.asarray(converted, dtype=np.uint8).copy()


def check_image(array: np.ndarray, what: str = "image") -> np.ndarray:
    """Validates an engine image and returns it as contiguous uint8 (H, W, C)."""
    if not isinstance(array, np.ndarray):
        raise ImageError(f"{what} must be a numpy array")
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in SUPPORTED_CHANNELS:
        raise ImageError(f"{what} must be HxWxC with C in 1, 2, 3, 4; got shape {array.shape}")
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ImageError(f"{what} is empty ({array.shape[1]}x{array.shape[0]})")
    if array.dtype != np.uint8:
        raise ImageError(f"{what} must be uint8, got {array.dtype}")
    return np.ascontiguousarray(array)


def array_to_pil(array: np.ndarray) -> Image.Image:
    array = check_image(array)
    if array.shape[2] == 1:
        return Image.fromarray(array[..., 0], "L")
    return Image.fromarray(array, {2: "LA", 3: "RGB", 4: "RGBA"}[array.shape[2]])


def _file_mode(path: Path) -> int:
    """The permissions ``path`` should get: those of the file it replaces, else what a plain
    ``open()`` would give a new file (0666 less the umask)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)  # the only way to read it; set straight back
        os.umask(umask)
        return 0o666 & ~umask


def save_image(array: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Writes atomically: a temporary file in the same folder, renamed over the target,
    so a failure never leaves a half-written output behind. The result has the permissions
    of the file it replaces, or a new file's (the temporary file's own are owner-only)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise ImageError(f"{path.parent}: output folder does not exist")
    image = array_to_pil(array)
    suffix = path.suffix.lower() or ".png"
    fd, tmp = tempfile.mkstemp(prefix=".esm-", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        try:
            image.save(tmp, format=Image.registered_extensions().get(suffix, "PNG"))
        except (KeyError, ValueError, OSError) as error:
            raise ImageError(f"{path}: cannot write this format ({error})") from None
        os.chmod(tmp, _file_mode(path))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def split_alpha(array: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(colour, alpha or None): alpha never enters the loss."""
    if array.shape[2] in (2, 4):
        return array[..., :-1], array[..., -1:]
    return array, None


def is_grey(array: np.ndarray) -> bool:
    """True when every pixel's colour channels are equal (alpha aside)."""
    colour, _ = split_alpha(array)
    return bool((colour == colour[..., :1]).all())


def to_grey(array: np.ndarray) -> np.ndarray:
    """A grey RGB(A) image (``is_grey``) as grey (+ alpha): the same pixels in 1 (2) channels."""
    colour, alpha = split_alpha(array)
    return colour[..., :1].copy() if alpha is None else np.concatenate([colour[..., :1], alpha], axis=2)


def from_grey(array: np.ndarray) -> np.ndarray:
    """Grey (+ alpha) back to RGB(A): the grey channel in all three colour channels."""
    colour, alpha = split_alpha(array)
    rgb = np.repeat(colour, 3, axis=2)
    return rgb if alpha is None else np.concatenate([rgb, alpha], axis=2)


def to_array(image: RawImage) -> np.ndarray:
    """A read-only view of a wire image's bytes as (H, W, C) uint8."""
    return np.frombuffer(memoryview(image.data), dtype=np.uint8).reshape(image.height, image.width, image.channels)


def from_array(array: np.ndarray) -> RawImage:
    """Wraps a uint8 (H, W, C) or (H, W) array as a wire image that shares its memory."""
    if array.ndim == 2:
        array = array[..., None]
    array = np.ascontiguousarray(array, dtype=np.uint8)
    height, width, channels = array.shape
    return RawImage(width, height, channels, memoryview(array).cast("B"))
