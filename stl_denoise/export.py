"""Export a denoiser for deployment: TensorFlow SavedModel, TFLite or ONNX.

Every export takes and returns float32 [B, H, W, 3] pixels on the 0-255 scale,
clipped to [0, 255] (not rounded), i.e. what ``stl_denoise.denoise`` returns for
a float image:

- ``saved_model`` (TF Serving) and ``onnx``: any H, W >= 16.  Inside the graph
  the batch is reflect-padded at the bottom/right to a multiple of 16 and
  cropped back, exactly as the CLI's ``denoise`` does.  One pass, no tiling:
  activation memory grows with the image (about 250 MB for 512x512).
- ``tflite``: a fixed [1, tile, tile, 3] input (default 512, a multiple of
  16); the app cuts larger images into tiles itself (``inference.tile_spans``
  is the recipe the CLI uses: 16-aligned tiles, 64 px margins dropped).

Before anything appears at the output path, the export is loaded back with its
own runtime and compared with the Keras model on a noisy crop of a real photo
(scikit-image's astronaut); a mismatch fails the export.  Outputs are written
under a temporary name beside the target and renamed, and an existing path is
never replaced.
"""

import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np

from stl_denoise.config import SIZE_MULTIPLE
from stl_denoise.errors import UserError
from stl_denoise.inference import DEFAULT_TILE, MIN_SIDE
from stl_denoise.io import atomic_new_path

FORMATS = ("saved_model", "tflite", "onnx")
ONNX_OPSET = 17  # ONNX Runtime 1.14+ and every current runtime read it
INPUT_NAME, OUTPUT_NAME = "images", "denoised"
# Measured max abs differences are ~1e-4 on 0-255 (float32 kernels summed in another
# order); a wrong graph (a lost padding, missing weights) is off by whole grey levels.
TOLERANCE = 0.01
_CHECK_SIZE = (201, 233)  # not multiples of 16: exercises the in-graph padding


def check_tile(tile):
    if tile < SIZE_MULTIPLE or tile % SIZE_MULTIPLE:
        raise UserError(f"--tile must be a positive multiple of {SIZE_MULTIPLE}, got {tile}")


def serving_function(model):
    """images [B, H, W, 3] -> {"denoised": same shape}, padded to the stride-16 grid inside the graph."""
    import tensorflow as tf

    def serve(images):
        height, width = tf.shape(images)[1], tf.shape(images)[2]
        check = tf.debugging.assert_greater_equal(
            tf.minimum(height, width), MIN_SIDE, message=f"images must be at least {MIN_SIDE}x{MIN_SIDE} pixels")
        with tf.control_dependencies([check]):
            # (m - h % m) % m rather than (-h) % m: tf2onnx turns integer floormod into C's truncating
            # remainder, and the negative pad then silently crops the image (seen with tf2onnx 1.17).
            pad_h = (SIZE_MULTIPLE - height % SIZE_MULTIPLE) % SIZE_MULTIPLE
            pad_w = (SIZE_MULTIPLE - width % SIZE_MULTIPLE) % SIZE_MULTIPLE
            # TF's REFLECT is numpy's "reflect" (edge not repeated), as in inference.denoise_rgb.
            padded = tf.pad(images, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]], mode="REFLECT")
        denoised = model(padded, training=False)[:, :height, :width]
        return {OUTPUT_NAME: tf.clip_by_value(denoised, 0.0, 255.0)}

    return serve


def _archive(model, shape):
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    # No archive.track(model): the endpoint captures the variables anyway, and tracking the Keras
    # wrappers as well stores every weight twice (keras-team/keras#23553, open in Keras 3.15).
    archive.add_endpoint("serve", serving_function(model),
                         input_signature=[tf.TensorSpec(shape, tf.float32, name=INPUT_NAME)])
    return archive


def write_saved_model(model, folder):
    _archive(model, [None, None, None, 3]).write_out(str(folder), verbose=False)


def tflite_bytes(model, tile):
    import tensorflow as tf

    from stl_denoise._quiet import silenced_stderr_fd

    # Through a SavedModel: converting the tf.function directly loses Keras 3's variables
    # (a 20 KB file that outputs NaN).
    with tempfile.TemporaryDirectory(prefix="stl-denoise-tflite-") as folder:
        _archive(model, [1, tile, tile, 3]).write_out(folder, verbose=False)
        with silenced_stderr_fd():  # the MLIR converter logs a dozen C++ lines per call
            return tf.lite.TFLiteConverter.from_saved_model(folder).convert()


def onnx_bytes(model):
    import tensorflow as tf
    import tf2onnx

    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    spec = [tf.TensorSpec([None, None, None, 3], tf.float32, name=INPUT_NAME)]
    function = tf.function(serving_function(model), input_signature=spec)
    proto, _ = tf2onnx.convert.from_function(function, input_signature=spec, opset=ONNX_OPSET)
    return proto.SerializeToString()


# --- loading an export back with its own runtime ---------------------------------------

def load_saved_model(path):
    """The serving signature of a SavedModel export: images -> denoised."""
    import tensorflow as tf

    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    return lambda images: signature(**{INPUT_NAME: tf.constant(images, tf.float32)})[OUTPUT_NAME].numpy()


def tflite_interpreter(path):
    """LiteRT's interpreter if installed, else TensorFlow's (deprecated since TF 2.20, still in 2.21)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the deprecation notice
        return Interpreter(model_path=str(path))


def load_tflite(path):
    from stl_denoise._quiet import silenced_stderr_fd

    with silenced_stderr_fd():  # "INFO: Created TensorFlow Lite XNNPACK delegate", from C++
        interpreter = tflite_interpreter(path)
        interpreter.allocate_tensors()
        runner = interpreter.get_signature_runner("serving_default")
    return lambda images: runner(**{INPUT_NAME: np.asarray(images, np.float32)})[OUTPUT_NAME]


def load_onnx(path):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda images: session.run([OUTPUT_NAME], {INPUT_NAME: np.asarray(images, np.float32)})[0]


LOADERS = {"saved_model": load_saved_model, "tflite": load_tflite, "onnx": load_onnx}


def check_photo(height, width, seed=0):
    """A real photo with σ 25 Gaussian noise, float32 0-255, [1, height, width, 3]."""
    from skimage.data import astronaut

    photo = astronaut().astype(np.float32)
    reps = (-(-height // photo.shape[0]), -(-width // photo.shape[1]), 1)
    photo = np.tile(photo, reps)[:height, :width]  # tile sizes above 512 repeat the photo
    noise = np.random.default_rng(seed).normal(0.0, 25.0, photo.shape).astype(np.float32)
    return (photo + noise)[None]


def keras_reference(model, images):
    """What every export should return: ``stl_denoise.denoise`` on each float image."""
    from stl_denoise.inference import denoise_image

    return np.stack([denoise_image(model, image) for image in images])


def max_difference(model, path, fmt, tile=None):
    """Max abs difference (0-255) between the export at ``path`` and the Keras model on a real photo."""
    images = check_photo(tile, tile) if fmt == "tflite" else check_photo(*_CHECK_SIZE)
    exported = LOADERS[fmt](path)(images)
    if exported.shape != images.shape:
        raise UserError(f"the {fmt} export returns shape {list(exported.shape)} for an input of "
                        f"{list(images.shape)}: the conversion is wrong; nothing written")
    return float(np.abs(exported - keras_reference(model, images)).max())


def export(model_name, fmt, out, tile=None):
    """Export a shipped name, ``.keras`` file or run folder to ``out``; returns the checked max abs difference."""
    from stl_denoise.pretrained import load_denoiser, model_path

    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if tile is not None and fmt != "tflite":
        raise UserError(f"--tile applies to --format tflite only ({fmt} takes any image size)")
    tile = DEFAULT_TILE if tile is None and fmt == "tflite" else tile
    if fmt == "tflite":
        check_tile(tile)
    if fmt == "onnx":
        try:
            import onnxruntime  # noqa: F401  (runs the check below)
            import tf2onnx  # noqa: F401
        except ImportError as error:
            raise UserError(f"--format onnx needs tf2onnx and onnxruntime ({error}): "
                            "pip install 'stl-denoise[onnx]'") from None
    out = Path(out)
    if out.exists() or out.is_symlink():
        raise UserError(f"--out {out}: already exists; refusing to overwrite it (remove it or pick another path)")
    blocking = next((parent for parent in out.parents if parent.exists()), None)
    if blocking is not None and not blocking.is_dir():  # checked before the model is converted
        raise UserError(f"--out {out}: {blocking} is not a folder")
    source = model_path(model_name)
    model = load_denoiser(model_name)  # refuses what is no denoiser for any image size (inference.check_denoiser)
    if fmt == "onnx":
        data = onnx_bytes(model)
    elif fmt == "tflite":
        data = tflite_bytes(model, tile)
    try:
        with atomic_new_path(out, folder=fmt == "saved_model") as temp:
            if fmt == "saved_model":
                write_saved_model(model, temp)
            else:
                Path(temp).write_bytes(data)
            difference = max_difference(model, temp, fmt, tile)
            if not difference <= TOLERANCE:  # also catches NaN
                raise UserError(f"{source}: the {fmt} export does not reproduce the Keras model (max abs "
                                f"difference {difference:.3g} > {TOLERANCE} on 0-255); nothing written")
    except OSError as error:
        if isinstance(error, FileExistsError) and (out.exists() or out.is_symlink()):
            raise UserError(f"--out {out}: appeared while exporting; refusing to overwrite it") from None
        raise UserError(f"--out {out}: cannot write ({error.strerror or error})") from None
    return difference
