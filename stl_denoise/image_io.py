"""Read user images into arrays and write PNGs, with one-line errors.

Supported: 8-bit grey, grey+alpha, palette, RGB, RGBA (and CMYK/YCbCr,
converted to RGB), and 16-bit grey.  16-bit colour PNGs are refused: Pillow
would silently read them at 8 bits.
"""

import struct
import warnings
from pathlib import Path

import numpy as np

from stl_denoise.errors import UserError
from stl_denoise.io import atomic_path

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SIXTEEN_BIT_GREY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


class ImageFileError(UserError):
    """One input image cannot be read or written; the others still can."""


def _png_bit_depth_and_colour(path):
    """(bit depth, colour type) from a PNG's IHDR, or None for other files."""
    with open(path, "rb") as handle:
        head = handle.read(26)
    if len(head) < 26 or not head.startswith(PNG_SIGNATURE):
        return None
    return struct.unpack(">BB", head[24:26])


def read_image(path):
    """The pixels of ``path`` as uint8 or uint16, HxW or HxWxC (C = 2, 3, 4)."""
    from PIL import Image, UnidentifiedImageError
    from PIL.Image import DecompressionBombError

    path = Path(path)
    if not path.exists():
        raise ImageFileError(f"{path}: no such file")
    if not path.is_file():
        raise ImageFileError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise ImageFileError(f"{path}: empty file")
    header = _png_bit_depth_and_colour(path)
    if header and header[0] == 16 and header[1] in (2, 6):
        raise ImageFileError(f"{path}: 16-bit colour PNG is not supported; convert it to 8-bit colour or 16-bit grey")
    try:
        # Pillow warns (several lines on stderr) about odd but readable files, e.g. corrupt EXIF in a
        # TIFF or a large image; the file either reads or fails below with one line naming it.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as image:
                image.load()
                mode = image.mode
                if mode == "1":
                    image = image.convert("L")
                elif mode == "P":
                    image = image.convert("RGBA" if "transparency" in image.info else "RGB")
                elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
                    image = image.convert("RGB")
                elif mode == "PA":
                    image = image.convert("RGBA")
                pixels = np.asarray(image)
    except DecompressionBombError as error:  # Pillow's guard: keep it, but name the file in one line
        raise ImageFileError(f"{path}: too large to read safely ({str(error).split(',')[0]})") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ImageFileError(f"{path}: not a readable image ({detail})") from None
    if mode in SIXTEEN_BIT_GREY_MODES:
        if pixels.min() < 0 or pixels.max() > 65535:
            raise ImageFileError(f"{path}: 32-bit integer pixels are not supported")
        pixels = pixels.astype(np.uint16)
    elif pixels.dtype != np.uint8:
        raise ImageFileError(f"{path}: unsupported image mode {mode} ({pixels.dtype} pixels)")
    return pixels


def write_png(path, pixels):
    """Write uint8 (grey, grey+alpha, RGB, RGBA) or uint16 grey pixels as a PNG, atomically."""
    from PIL import Image

    pixels = np.asarray(pixels)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    with atomic_path(path) as temp:
        Image.fromarray(pixels).save(temp, format="PNG")
