"""Read user images into arrays and write PNGs, with one-line errors.

Supported: 8-bit grey, grey+alpha, palette, RGB, RGBA (and CMYK/YCbCr,
converted to RGB), and 16 bits per channel in every layout (grey, grey+alpha,
RGB, RGBA) from PNG, TIFF and PPM/PGM, kept at 16 bits in the output PNG.
Pillow reads 16-bit colour at 8 bits, so those files are decoded by
TensorFlow's libpng (PNG), tifffile (TIFF) or here (binary PPM).

What a photograph carries beside its pixels is kept: the EXIF orientation is
applied to the pixels (and the tag reset to 1, so that viewers do not turn
the result again), the ICC colour profile and the other EXIF fields are
copied, and PNG tRNS transparency becomes an alpha channel (copied unchanged,
as any alpha is).  Every PNG written here carries a tEXt "Software:
stl-denoise" chunk, which is how ``denoise`` knows a file it may replace.
"""

import dataclasses
import errno
import os
import stat
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np

from stl_denoise._quiet import silenced_stderr_fd
from stl_denoise.errors import UserError, first_line
from stl_denoise.io import atomic_path

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SIXTEEN_BIT_GREY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
# Pillow modes that are not one of the layouts above, and the layout they become.
CONVERSIONS = {"1": "L", "CMYK": "RGB", "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB", "PA": "RGBA", "RGBX": "RGB",
               "RGBa": "RGBA", "La": "LA"}
ORIENTATION = 0x0112  # the EXIF/TIFF tag
SOFTWARE = ("Software", "stl-denoise")  # the tEXt chunk that marks our outputs


class ImageFileError(UserError):
    """One input image cannot be read or written; the others still can."""


@dataclasses.dataclass
class Picture:
    """An image as read from a file: upright pixels and what to carry to the output."""

    pixels: np.ndarray
    icc_profile: bytes = None
    exif: bytes = None


def _png_bit_depth_and_colour(head):
    """(bit depth, colour type) from a PNG's first 26 bytes, or None for other files."""
    if len(head) < 26 or not head.startswith(PNG_SIGNATURE):
        return None
    return struct.unpack(">BB", head[24:26])


def _check_file(path):
    """One-line errors for what is not a non-empty regular file, before anything opens it.

    Opening a FIFO would block forever, and a device would be read without end.
    """
    try:
        info = path.stat()
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise ImageFileError(f"{path}: a symbolic link loop") from None
        if error.errno == errno.ENOENT and path.is_symlink():
            raise ImageFileError(
                f"{path}: a dangling symbolic link (its target {os.readlink(path)} is missing)") from None
        if error.errno == errno.ENOENT:
            raise ImageFileError(f"{path}: no such file") from None
        raise ImageFileError(f"{path}: cannot read ({error.strerror or error})") from None
    if stat.S_ISDIR(info.st_mode):
        raise ImageFileError(f"{path}: a folder, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise ImageFileError(f"{path}: not a regular file (a FIFO, socket or device)")
    if info.st_size == 0:
        raise ImageFileError(f"{path}: empty file")


def as_rgb(pixels):
    """An HxWx3 view of ``read_image`` pixels: grey (+ alpha) repeated over three channels, alpha dropped."""
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    pixels = pixels[..., :3] if pixels.shape[2] >= 3 else pixels[..., :1]
    return np.broadcast_to(pixels, pixels.shape[:2] + (3,))


def read_image(path):
    """The upright pixels of ``path`` as uint8 or uint16, HxW or HxWxC (C = 2, 3, 4)."""
    return read_picture(path).pixels


def read_picture(path):
    """``Picture`` of ``path``: upright uint8/uint16 pixels, ICC profile and EXIF (orientation reset)."""
    from PIL.Image import DecompressionBombError

    path = Path(path)
    _check_file(path)
    try:
        handle = open(path, "rb")
    except OSError as error:
        raise ImageFileError(f"{path}: cannot read ({error.strerror or error})") from None
    try:
        # Pillow warns (several lines on stderr) about odd but readable files, e.g. corrupt EXIF in a
        # TIFF or a large image, and libtiff/libjpeg print unnamed lines of their own straight to file
        # descriptor 2: the file either reads or fails below with one line naming it.
        with handle, silenced_stderr_fd(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _decode(handle, path)
    except ImageFileError:
        raise
    except DecompressionBombError as error:  # Pillow's guard: keep it, but name the file in one line
        raise ImageFileError(f"{path}: too large to read safely ({str(error).split(',')[0]})") from None
    except MemoryError:
        raise ImageFileError(f"{path}: too large to read into memory") from None
    except Exception as error:  # noqa: BLE001  (Pillow, tifffile and TensorFlow raise many types for bad files)
        raise ImageFileError(f"{path}: not a readable image ({first_line(error)})") from None


def _decode(handle, path):
    from PIL import Image

    header = _png_bit_depth_and_colour(handle.read(26))
    handle.seek(0)
    image = Image.open(handle)
    orientation, exif = _exif(image)
    icc_profile = image.info.get("icc_profile") or None
    pixels = None
    if image.format == "PNG" and header and header[0] == 16 and header[1] in (2, 4, 6):
        pixels = _png_16_bit_colour(handle, image)
    elif image.format == "TIFF":
        pixels = _tiff_beyond_pillow(handle, image, path)
    elif image.format == "PPM":
        pixels = _ppm_16_bit_colour(handle, image, path)
    if pixels is None:
        pixels = _pillow_pixels(image, path)
        if image.format == "TIFF":  # Pillow's TIFF loader turns the image upright itself
            orientation = 1
    return Picture(_upright(pixels, orientation), icc_profile, exif)


def _exif(image):
    """(orientation 1-8, EXIF bytes to carry with the tag reset, or None)."""
    try:
        exif = image.getexif()
        orientation = exif.get(ORIENTATION, 1)
        orientation = orientation if orientation in range(1, 9) else 1
    except Exception:  # noqa: BLE001  (a corrupt EXIF block must not cost the picture)
        return 1, None
    # TIFF "EXIF" is the file's own structure (strip offsets...): nothing to carry into a PNG.
    if "exif" not in image.info:
        return orientation, None
    if orientation == 1 and ORIENTATION not in exif:
        return orientation, image.info["exif"]
    try:
        exif[ORIENTATION] = 1
        return orientation, exif.tobytes()
    except Exception:  # noqa: BLE001  (unwritable EXIF: drop it rather than keep a wrong orientation)
        return orientation, None


def _upright(pixels, orientation):
    """Apply EXIF orientation 1-8 (as Pillow's ImageOps.exif_transpose does)."""
    if orientation in (5, 6, 7, 8):
        pixels = np.swapaxes(pixels, 0, 1)  # transpose, then a flip or a half turn
        orientation = {5: 1, 6: 2, 7: 3, 8: 4}[orientation]
    if orientation == 2:
        pixels = pixels[:, ::-1]
    elif orientation == 3:
        pixels = pixels[::-1, ::-1]
    elif orientation == 4:
        pixels = pixels[::-1]
    return np.ascontiguousarray(pixels)


def _png_16_bit_colour(handle, image):
    """16-bit grey+alpha, RGB or RGBA PNG at full depth (Pillow would read them at 8 bits)."""
    from stl_denoise._quiet import import_tensorflow

    tf = import_tensorflow()
    handle.seek(0)
    pixels = tf.io.decode_png(handle.read(), channels=0, dtype=tf.uint16).numpy()
    key = image.info.get("transparency")
    if isinstance(key, tuple) and pixels.shape[2] == 3:  # tRNS: one RGB colour is transparent
        alpha = np.where((pixels == np.asarray(key, np.uint16)).all(axis=2), 0, 65535).astype(np.uint16)
        pixels = np.dstack([pixels, alpha])
    return pixels


def _tiff_beyond_pillow(handle, image, path):
    """16-bit colour TIFF through tifffile; None where Pillow reads the file exactly."""
    tags = image.tag_v2
    bits = tuple(tags.get(258, (1,)))
    formats = tuple(tags.get(339, (1,)))
    if 2 in formats and max(bits) > 8:
        raise ImageFileError(f"{path}: signed {max(bits)}-bit integer pixels are not supported; save it as "
                             "unsigned 16-bit or 8-bit")
    if len(bits) < 2 or max(bits) <= 8:
        return None
    import tifffile

    handle.seek(0)
    with tifffile.TiffFile(handle) as tiff:
        page = tiff.pages[0]
        if page.dtype != np.uint16 or page.photometric not in (tifffile.PHOTOMETRIC.RGB,
                                                                tifffile.PHOTOMETRIC.MINISBLACK):
            raise ImageFileError(f"{path}: {page.photometric.name} TIFF with {page.dtype} samples is not "
                                 "supported; save it as 8- or 16-bit RGB")
        pixels = page.asarray()
        axes = page.axes
    if axes == "SYX":  # planar configuration: one plane per channel
        pixels, axes = np.moveaxis(pixels, 0, -1), "YXS"
    if axes != "YXS" or pixels.shape[2] not in (2, 3, 4):
        raise ImageFileError(f"{path}: a TIFF laid out as {axes} {pixels.shape} is not supported")
    return pixels


def _ppm_16_bit_colour(handle, image, path):
    """Binary PPM with more than 8 bits per channel, scaled to 16 bits; None for what Pillow reads exactly."""
    # A tile is (decoder, extents, offset, args); Pillow's own "ppm" decoder rescales to 8 bits.
    codec, _, offset, args = image.tile[0] if image.tile else (None, None, 0, None)
    if image.mode != "RGB" or not isinstance(args, tuple) or args[1] <= 255:
        return None
    maxval = args[1]
    if codec != "ppm":
        raise ImageFileError(f"{path}: plain-text (P3) PPM with more than 8 bits is not supported; save it as "
                             "binary PPM or PNG")
    width, height = image.size
    handle.seek(offset)
    count = width * height * 3
    data = handle.read(count * 2)
    if len(data) < count * 2:
        raise ImageFileError(f"{path}: not a readable image (truncated PPM data)")
    pixels = np.minimum(np.frombuffer(data, ">u2").astype(np.uint32), maxval)
    if maxval != 65535:
        pixels = (pixels * 65535 + maxval // 2) // maxval
    return pixels.astype(np.uint16).reshape(height, width, 3)


def _pillow_pixels(image, path):
    image.load()
    mode = image.mode
    transparency = image.info.get("transparency")
    if mode == "P":
        image = image.convert("RGBA" if transparency is not None else "RGB")
    elif mode in ("L", "RGB") and transparency is not None:  # tRNS: one value is transparent
        image = image.convert("RGBA" if mode == "RGB" else "LA")
    elif mode in CONVERSIONS:
        image = image.convert(CONVERSIONS[mode])
    pixels = np.asarray(image)
    if mode in SIXTEEN_BIT_GREY_MODES:
        if pixels.min() < 0 or pixels.max() > 65535:
            raise ImageFileError(f"{path}: pixel values outside 0-65535 (32-bit integer image) are not supported")
        pixels = pixels.astype(np.uint16)
        if isinstance(transparency, int):
            pixels = np.dstack([pixels, np.where(pixels == transparency, 0, 65535).astype(np.uint16)])
    elif pixels.dtype != np.uint8:
        raise ImageFileError(f"{path}: unsupported image mode {mode} ({pixels.dtype} pixels)")
    return pixels


# --- writing ------------------------------------------------------------------------------

def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _icc_fits(profile, channels):
    """Whether an ICC profile describes the output's colour space (a CMYK one cannot stay on RGB)."""
    space = profile[16:20] if len(profile) >= 20 else b""
    return space == (b"RGB " if channels >= 3 else b"GRAY")


def _readable_profile(profile, limit, path, note):
    """A profile PNG readers will open (Pillow refuses an iCCP chunk inflating past ``limit``), or None.

    A profile followed by padding is cut to the size its header declares;
    a profile genuinely that large is left out.
    """
    declared = int.from_bytes(profile[:4], "big")  # ICC header: the profile's size in bytes
    if 128 <= declared <= limit:
        note(f"its ICC colour profile was cut to the {declared:,} bytes its header declares "
             f"({len(profile) - declared:,} bytes of padding followed) in {path}: PNG readers such as Pillow "
             f"refuse profiles over {limit:,} bytes")
        return profile[:declared]
    note(f"its {len(profile):,}-byte ICC colour profile was left out of {path}: PNG readers such as Pillow refuse "
         f"profiles over {limit:,} bytes (the output is untagged, which viewers show as sRGB)")
    return None


def write_png(path, pixels, icc_profile=None, exif=None, note=None):
    """Write uint8 or uint16 grey, grey+alpha, RGB or RGBA pixels as a PNG, atomically.

    ``icc_profile`` is kept when it matches the colour space and common
    readers can open it; ``note`` is told when a profile is dropped for
    their sake.  ``exif`` is written as an eXIf chunk.
    """
    from PIL import Image, PngImagePlugin

    pixels = np.asarray(pixels)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if icc_profile and not _icc_fits(icc_profile, channels):
        icc_profile = None
    if icc_profile and len(icc_profile) > PngImagePlugin.MAX_TEXT_CHUNK:
        icc_profile = _readable_profile(icc_profile, PngImagePlugin.MAX_TEXT_CHUNK, path,
                                        note or (lambda line: None))
    with atomic_path(path) as temp:
        if pixels.dtype == np.uint16 and channels > 1:  # Pillow has no 16-bit colour modes
            Path(temp).write_bytes(_encode_16_bit_colour(pixels, icc_profile, exif))
            return
        info = PngImagePlugin.PngInfo()
        info.add_text(*SOFTWARE)
        extra = {"icc_profile": icc_profile} if icc_profile else {}
        if exif:
            extra["exif"] = exif
        Image.fromarray(pixels).save(temp, format="PNG", pnginfo=info, **extra)


def _encode_16_bit_colour(pixels, icc_profile, exif):
    from stl_denoise._quiet import import_tensorflow

    tf = import_tensorflow()
    data = tf.io.encode_png(pixels).numpy()
    chunks = _chunk(b"tEXt", f"{SOFTWARE[0]}\0{SOFTWARE[1]}".encode("latin-1"))
    if icc_profile:
        chunks += _chunk(b"iCCP", b"ICC profile\0\0" + zlib.compress(icc_profile))
    if exif:
        chunks += _chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\0\0") else exif)
    after_header = len(PNG_SIGNATURE) + 25  # IHDR: length, type, 13 bytes, CRC
    return data[:after_header] + chunks + data[after_header:]


def written_by_us(path):
    """True if ``path`` is a PNG carrying our tEXt marker (an output of an earlier run)."""
    marker = f"{SOFTWARE[0]}\0{SOFTWARE[1]}".encode("latin-1")
    try:
        with open(path, "rb") as handle:
            if handle.read(8) != PNG_SIGNATURE:
                return False
            while True:
                head = handle.read(8)
                if len(head) < 8:
                    return False
                length, kind = struct.unpack(">I4s", head)
                if kind in (b"IDAT", b"IEND"):
                    return False
                if kind == b"tEXt" and length == len(marker):
                    if handle.read(length) == marker:
                        return True
                    handle.seek(4, os.SEEK_CUR)
                else:
                    handle.seek(length + 4, os.SEEK_CUR)
    except OSError:
        return False
