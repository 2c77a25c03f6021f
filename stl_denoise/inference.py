"""Run a denoiser on a whole image of any size: reflect-pad, tile, crop back.

The network needs sides divisible by 16 (four stride-2 stages).  An image is
reflect-padded at its bottom and right edges up to the next multiple of 16,
denoised, and cropped back: never resized.  Images larger than one tile are
processed in overlapping tiles so that memory stays bounded (about 1 GB of
activations for a 1024 px tile, a quarter of that for the default 512) whatever the image size.

Tiles start at multiples of 16 on the padded canvas, so each tile sees the
same stride-2 grid as a single pass would, and only the centre of each tile,
``margin`` pixels from any cut edge, is kept.  The margin covers the
network's receptive field (tests check tiling against a single pass), so
tiled and single-pass outputs agree to float rounding.
"""

import numpy as np

from stl_denoise.config import SIZE_MULTIPLE, padded_size

DEFAULT_TILE = 512  # 24 MP within 2 GiB (docs/performance.md); 1024 is ~as fast but needs 3.6 GB
DEFAULT_MARGIN = 64
MIN_SIDE = SIZE_MULTIPLE  # smaller images cannot be reflect-padded meaningfully
AUTO = "auto"  # pixel_shuffle: chosen per image by noise_level.choose_pixel_shuffle


def tile_spans(length, tile, margin):
    """(start, keep_start, keep_end) of tiles covering [0, length).

    ``length`` and ``tile`` are multiples of 16.  Kept ranges are
    contiguous and each lies at least ``margin`` from its tile's cut edges
    (canvas edges need no margin: a single pass sees the same border there).
    """
    if length <= tile:
        return [(0, 0, length)]
    stride = tile - 2 * margin
    starts = list(range(0, length - tile, stride)) + [length - tile]
    spans, keep_start = [], 0
    for index, start in enumerate(starts):
        last = index == len(starts) - 1
        keep_end = length if last else start + tile - margin
        spans.append((start, keep_start, keep_end))
        keep_start = keep_end
    return spans


def check_tiling(tile, margin):
    # margin < 0 would pass "tile > 2 x margin" yet leave gaps between kept ranges.
    if tile % SIZE_MULTIPLE or margin % SIZE_MULTIPLE or margin < 0 or tile <= 2 * margin:
        raise ValueError(
            f"tile ({tile}) and margin ({margin}) must be multiples of {SIZE_MULTIPLE} with margin >= 0 and "
            "tile > 2 x margin"
        )


def dihedral(image, index):
    """The ``index``-th (0-7) of the 8 flips/rotations of an HxWxC image (a view)."""
    turned = np.rot90(image, index % 4)
    return turned[:, ::-1] if index >= 4 else turned


def undo_dihedral(image, index):
    """Inverse of ``dihedral(image, index)``."""
    if index >= 4:
        image = image[:, ::-1]
    return np.rot90(image, -(index % 4))


def denoise_rgb(model, image, tile=DEFAULT_TILE, margin=DEFAULT_MARGIN, scale=1.0, self_ensemble=False,
                progress=None, pixel_shuffle=1, refine=False):
    """Denoise an HxWx3 image on the 0-255 scale x ``scale``; returns float32 HxWx3 on 0-255 (unclipped).

    The image may be of any numeric type: it is converted to float only once,
    on the padded canvas, so no full-size float copy of the input is made.
    ``self_ensemble``: average the outputs for the 8 flips/rotations of the
    input, each mapped back (the "+" / x8 geometric ensemble of EDSR, Lim et
    al. 2017, §3.4): 8x the time, typically a few tenths of a dB better.
    ``progress(done, total)`` is called after each tile (all 8 passes counted).
    ``pixel_shuffle``: denoise the stride² pixel-shuffled sub-images instead
    of the image (``pixel_shuffle.py``; ``refine`` adds its refinement), for
    noise that is correlated between neighbouring pixels; "auto": the stride
    ``noise_level.choose_pixel_shuffle`` chooses for this image (1 or 2).
    """
    if pixel_shuffle == AUTO:
        image = np.asarray(image)
        pixel_shuffle = pixel_shuffle_for(image / scale, AUTO)  # on the 0-255 scale
    if pixel_shuffle > 1:
        from stl_denoise.pixel_shuffle import denoise_pixel_shuffled

        image = np.asarray(image)
        if min(image.shape[:2]) < MIN_SIDE * pixel_shuffle:
            raise ValueError(f"image is {image.shape[0]}x{image.shape[1]}: pixel-shuffle stride {pixel_shuffle} "
                             f"needs at least {MIN_SIDE * pixel_shuffle}x{MIN_SIDE * pixel_shuffle} pixels")
        return denoise_pixel_shuffled(
            lambda part: denoise_rgb(model, part, tile, margin, self_ensemble=self_ensemble),
            image.astype(np.float32) / np.float32(scale), pixel_shuffle, refine)
    if not self_ensemble:
        return _denoise_rgb_once(model, image, tile, margin, scale, progress)
    image = np.asarray(image)
    total = np.zeros(image.shape, np.float32)
    for index in range(8):
        def counted(done, tiles, index=index):  # the 8 passes as one count
            progress(index * tiles + done, 8 * tiles)

        passes = None if progress is None else counted
        total += undo_dihedral(_denoise_rgb_once(model, dihedral(image, index), tile, margin, scale, passes), index)
    total /= 8.0
    return total


def compiled_forward(model):
    """``model(x, training=False)`` traced once as a graph for every tile shape.

    Called eagerly, Keras dispatches each layer's ops one by one for every
    tile; the traced graph ran a 512x512 tile ~20% faster on CPU
    (docs/performance.md).  Any batch and size share one trace (no retracing
    per image size); the graph is kept on the model, so the shipped model
    loaded once is traced once.
    """
    import keras

    if not isinstance(model, keras.Model):  # any other callable (a test double, a wrapper) runs as it is
        return lambda images: model(images, training=False)
    forward = getattr(model, "_stl_denoise_forward", None)
    if forward is None:
        from stl_denoise._quiet import import_tensorflow

        tf = import_tensorflow()
        forward = tf.function(lambda images: model(images, training=False), autograph=False,
                              input_signature=[tf.TensorSpec([None, None, None, None], tf.float32)])
        model._stl_denoise_forward = forward
    return forward


def _denoise_rgb_once(model, image, tile, margin, scale, progress=None):
    check_tiling(tile, margin)
    image = np.asarray(image)
    height, width = image.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise ValueError(f"image is {height}x{width}: the denoiser needs at least {MIN_SIDE}x{MIN_SIDE} pixels")
    canvas_h, canvas_w = padded_size(height), padded_size(width)
    canvas = np.pad(image, ((0, canvas_h - height), (0, canvas_w - width), (0, 0)), mode="reflect")
    canvas = canvas.astype(np.float32, copy=False)
    if scale != 1.0:
        canvas /= scale
    result = np.empty_like(canvas)
    rows, columns = tile_spans(canvas_h, tile, margin), tile_spans(canvas_w, tile, margin)
    done = 0
    for top, keep_top, keep_bottom in rows:
        for left, keep_left, keep_right in columns:
            window = canvas[top : top + tile, left : left + tile]
            denoised = np.asarray(compiled_forward(model)(window[None]))[0]
            result[keep_top:keep_bottom, keep_left:keep_right] = denoised[
                keep_top - top : keep_bottom - top, keep_left - left : keep_right - left
            ]
            done += 1
            if progress is not None:
                progress(done, len(rows) * len(columns))
    return result[:height, :width]


PROBE_SHAPE = (1, 48, 64, 3)  # 48: an odd multiple of 16, so a model that needs multiples of 32 is caught


def check_denoiser(model, name):
    """A ``UserError`` unless ``model`` maps any [1, H, W, 3] image (H, W multiples of 16) to one of that shape.

    Run once on a small probe when a model is loaded, so that a classifier,
    an upsampler, a one-channel or fixed-size model is refused before any
    file is read, instead of writing grey, cropped or black images.
    """
    from stl_denoise.errors import UserError, first_line

    inputs = getattr(model, "inputs", None) or []
    if len(inputs) > 1:
        raise UserError(f"{name}: not a denoiser: it takes {len(inputs)} inputs; a denoiser takes one RGB image")
    declared = tuple(inputs[0].shape) if inputs else ()
    if declared and (len(declared) != 4 or declared[-1] not in (None, 3)):
        raise UserError(f"{name}: not a denoiser: it takes inputs of shape {declared[1:]}; a denoiser takes "
                        "HxWx3 RGB images")
    if declared and any(side is not None for side in declared[1:3]):
        raise UserError(f"{name}: not a denoiser for any image size: it takes only {declared[1]}x{declared[2]} "
                        "inputs; images are denoised at their own size")
    probe = np.random.default_rng(0).uniform(0.0, 255.0, PROBE_SHAPE).astype(np.float32)
    try:
        with np.errstate(all="ignore"):
            output = model(probe, training=False)
    except Exception as error:  # noqa: BLE001  (Keras raises many types, with multi-line messages)
        raise UserError(f"{name}: not a denoiser: it fails on a {PROBE_SHAPE[1]}x{PROBE_SHAPE[2]} RGB image "
                        f"({first_line(error)})") from None
    if isinstance(output, (list, tuple, dict)):
        raise UserError(f"{name}: not a denoiser: it has {len(output)} outputs; a denoiser returns one image")
    output = np.asarray(output)
    if output.shape != PROBE_SHAPE:
        raise UserError(f"{name}: not a denoiser: a {PROBE_SHAPE[1]}x{PROBE_SHAPE[2]}x3 image gives an output of "
                        f"shape {output.shape[1:]}; a denoiser returns the image's own shape")
    if not np.issubdtype(output.dtype, np.floating) and not np.issubdtype(output.dtype, np.integer):
        raise UserError(f"{name}: not a denoiser: its output is {output.dtype}, not pixels")
    if not np.isfinite(output).all():
        raise UserError(f"{name}: not a denoiser: its output holds NaN or infinite values")


def pixel_shuffle_for(image, pixel_shuffle):
    """The stride ``denoise_image`` uses for ``image`` (any layout and type it takes): ``pixel_shuffle`` itself,
    or for "auto" the one ``noise_level.choose_pixel_shuffle`` chooses from its colour planes on the 0-255 scale."""
    if pixel_shuffle != AUTO:
        return pixel_shuffle
    from stl_denoise.noise_level import choose_pixel_shuffle

    image = np.asarray(image)
    planes = image[..., None] if image.ndim == 2 else image
    colour = planes[..., :3] if planes.shape[2] >= 3 else planes[..., :1]
    return choose_pixel_shuffle(colour / (257.0 if image.dtype == np.uint16 else 1.0))


def denoise_image(model, image, tile=DEFAULT_TILE, margin=DEFAULT_MARGIN, self_ensemble=False, progress=None,
                  pixel_shuffle=1, refine=False):
    """Denoise an image array as it comes from a file, keeping its layout and type.

    Accepts HxW or HxWx1 (grey: denoised as equal R, G, B, averaged back),
    HxWx2 (grey + alpha), HxWx3 (RGB) or HxWx4 (RGBA: alpha kept unchanged);
    uint8, uint16 (scaled to 0-255 and back) or float on the 0-255 scale.
    Integer images come back rounded to their type, float ones as float32;
    all are clipped to the valid range.  ``progress(done, total)``: after each tile.
    all are clipped to the valid range.  ``pixel_shuffle``, ``refine``: as
    ``denoise_rgb``'s.
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 2, 3, 4)):
        raise ValueError(f"expected an HxW, HxWx1, HxWx2, HxWx3 or HxWx4 image, got shape {image.shape}")
    if image.dtype == np.uint16:
        scale = 65535.0 / 255.0
    elif image.dtype == np.uint8 or np.issubdtype(image.dtype, np.floating):
        scale = 1.0
    else:
        raise ValueError(f"unsupported pixel type {image.dtype} (use uint8, uint16 or float on 0-255)")
    planes = image[..., None] if image.ndim == 2 else image
    colour = planes[..., :3] if planes.shape[2] >= 3 else planes[..., :1]
    alpha = planes[..., colour.shape[2] :]
    # In-place arithmetic below: a 24-megapixel float image is 288 MB, and every
    # temporary copy counts against the memory bound (docs/performance.md).
    rgb = np.broadcast_to(colour, colour.shape[:2] + (3,))  # a view: grey stays one plane in memory
    denoised = denoise_rgb(model, rgb, tile, margin, scale, self_ensemble, progress, pixel_shuffle=pixel_shuffle,
                           refine=refine)
    # Checked before any cast: NaN would become black pixels (and numpy warnings on stderr).
    if not np.isfinite(denoised).all():
        raise ValueError("the model produced NaN or infinite values for this image")
    if colour.shape[2] == 1:
        denoised = denoised.mean(axis=2, keepdims=True)
    np.clip(denoised, 0.0, 255.0, out=denoised)
    if scale != 1.0:
        denoised *= scale
    if np.issubdtype(image.dtype, np.integer):
        denoised = np.round(denoised, out=denoised).astype(image.dtype)
    else:
        denoised = denoised.astype(np.float32, copy=False)
    out = np.concatenate([denoised, alpha.astype(denoised.dtype)], axis=2) if alpha.shape[2] else denoised
    return out.reshape(image.shape)
