"""Training data sources: STL-10 (tfds), scikit-image's photographs, a folder.

Every source yields float32 batches [B, crop, crop, 3] on the 0-255 scale of
*clean* images; noise is added later, inside the compiled step.  Crops are
random for training and central for evaluation (STL-10 is 96x96, the paper's
network takes 64x64, paper §4.1).
"""

import errno
import hashlib
import os
import socket
import stat
import threading
from pathlib import Path

from stl_denoise._quiet import import_tensorflow
from stl_denoise.errors import DataUnavailableError

tf = import_tensorflow()
AUTOTUNE = tf.data.AUTOTUNE

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
# Natural colour photographs that scikit-image ships inside its wheel.
SAMPLE_IMAGES = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle_left", "motorcycle_right")

def _stl10_host():
    """Where tfds downloads stl10_binary.tar.gz (overridable for tests)."""
    host, _, port = os.environ.get("STL_DENOISE_STL10_HOST", "ai.stanford.edu:80").rpartition(":")
    return host, int(port)


STL10_HOST = _stl10_host()
STL10_FIX = (
    "run `make stl10` (or `stl-denoise download-stl10`) on a connected machine and copy "
    "its TFDS data dir here, point TFDS_DATA_DIR at a prepared copy, or train offline "
    "with DATA=sample (bundled photographs) or DATA=/path/to/images"
)
# Decoded images are kept in memory when they fit this budget.
CACHE_BYTES = 2 * 1024**3


def sample_images():
    """The bundled photographs as {name: uint8 HxWx3 array}."""
    import skimage.data

    images = {}
    for name in SAMPLE_IMAGES:
        if name.startswith("motorcycle"):
            left, right, _ = skimage.data.stereo_motorcycle()
            images[name] = left if name.endswith("left") else right
        else:
            images[name] = getattr(skimage.data, name)()
    return images


def list_image_files(folder):
    """Image files under ``folder`` (recursive, sorted), validated for size.

    A subfolder that cannot be read is an error, not a silent gap in the data.
    """
    if not os.fspath(folder):  # Path("") would be the current folder
        raise DataUnavailableError("an empty name was given as the image folder")
    folder = Path(folder)
    try:
        if not folder.exists():
            raise DataUnavailableError(f"{folder}: no such file or directory")
        if folder.is_file():
            return [folder]
    except OSError as error:  # e.g. a name longer than the file system allows
        raise DataUnavailableError(f"{folder}: {error.strerror or error}") from None
    files, _, unreadable = scan_folder(folder)
    if unreadable:
        path, reason = unreadable[0]
        raise DataUnavailableError(f"{path}: {reason}; its images would be left out"
                                   + (f" (and {len(unreadable) - 1} more folders)" if len(unreadable) > 1 else ""))
    if not files:
        raise DataUnavailableError(f"{folder}: no images found (looked for {', '.join(IMAGE_SUFFIXES)})")
    return files


# Image formats that folders may hold but that are not read from them: listed as skipped, not ignored.
OTHER_IMAGE_SUFFIXES = (".gif", ".webp", ".ppm", ".pgm", ".pbm", ".pnm", ".pam", ".tga", ".ico", ".heic", ".heif",
                        ".avif", ".jxl", ".jp2", ".j2k", ".dng", ".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf",
                        ".rw2", ".psd", ".svg", ".pcx", ".dib", ".jfif", ".webm")


def scan_folder(folder, skip=None):
    """(image files, skipped entries, unreadable folders) under ``folder``, recursively.

    Files are sorted as ``sorted(folder.rglob(...))`` sorts them; skipped
    entries and unreadable folders are (path, reason) pairs, so that callers
    can say what was left out: dangling links, link loops, FIFOs and devices,
    links to folders (not followed, as ``rglob`` does not follow them), and
    files of an image type that is not read from folders.  ``skip``: a
    resolved folder left out silently (``denoise``'s own output folder).
    """
    files, skipped, unreadable = [], [], []
    pending = [Path(folder)]
    while pending:
        directory = pending.pop()
        try:
            with os.scandir(directory) as listing:
                entries = list(listing)
        except OSError as error:
            unreadable.append((directory, f"cannot read this folder ({error.strerror or error})"))
            continue
        for entry in entries:
            path = directory / entry.name
            try:
                if entry.is_symlink():
                    try:
                        target = path.stat()
                    except OSError as error:
                        skipped.append((path, "a symbolic link loop" if error.errno == errno.ELOOP
                                        else "a dangling symbolic link" if error.errno == errno.ENOENT
                                        else f"a symbolic link that cannot be followed ({error.strerror})"))
                        continue
                    if stat.S_ISDIR(target.st_mode):
                        skipped.append((path, "a symbolic link to a folder (not followed; name it to include it)"))
                        continue
                    mode = target.st_mode
                else:
                    mode = entry.stat(follow_symlinks=False).st_mode
            except OSError as error:
                skipped.append((path, f"cannot be examined ({error.strerror or error})"))
                continue
            if stat.S_ISDIR(mode):
                if skip is None or path.resolve() != skip:
                    pending.append(path)
            elif not stat.S_ISREG(mode):
                skipped.append((path, "not a regular file (a FIFO, socket or device)"))
            elif path.suffix.lower() in IMAGE_SUFFIXES:
                files.append(path)
            elif path.suffix.lower() in OTHER_IMAGE_SUFFIXES:
                skipped.append((path, f"{path.suffix} files are not read from folders (convert it to PNG)"))
    return sorted(files), sorted(skipped), sorted(unreadable)


# Hash-based, so the split of a file never depends on which other files exist.
VALIDATION_BUCKETS = 10  # 1 in 10 files (about 43 of CBSD432's 432) is held out
DATA_SPLITS = ("all", "train", "validation")  # --data-split / evaluate --split


def is_validation_file(path):
    """True for the fixed ~10% of files held out from training (``--data-split``)."""
    # os.fsencode: the bytes of .encode() for UTF-8 names (the split stays as it was), no crash on other names.
    digest = hashlib.sha256(os.fsencode(Path(path).name)).hexdigest()
    return int(digest, 16) % VALIDATION_BUCKETS == 0


def split_files(files, split):
    """``all`` files, only the ``train`` ones, or only the ``validation`` ones."""
    if split == "all":
        return list(files)
    chosen = [f for f in files if is_validation_file(f) == (split == "validation")]
    if not chosen:
        raise DataUnavailableError(f"no files in the {split} split of {len(files)} image(s)")
    return chosen


def image_size(path):
    """(height, width) from the file header, with a one-line error if unreadable."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise DataUnavailableError(f"{path}: not a readable image ({type(error).__name__})") from None
    return height, width


def _check_min_size(files, crop_size):
    _check_trainable(files)
    too_small = [f"{path} ({h}x{w})" for path in files for h, w in [image_size(path)] if min(h, w) < crop_size]
    if too_small:
        raise DataUnavailableError(
            f"{too_small[0]}: smaller than the {crop_size}x{crop_size} crop"
            + (f" (and {len(too_small) - 1} more)" if len(too_small) > 1 else "")
        )


def _check_trainable(files):
    """Decode every file exactly as training will (``decode_image_file``), naming the ones that fail.

    Otherwise a TIFF (TensorFlow's decoder does not read TIFF) or a PNG
    truncated after its header passes the header checks and stops training
    mid-run with a stack trace.
    """
    from stl_denoise._quiet import silenced_stderr_fd
    from stl_denoise.errors import first_line

    bad = []
    for path in files:
        try:
            os.fsencode(path).decode("utf-8")
        except UnicodeDecodeError:
            bad.append((path, "its name is not UTF-8, which TensorFlow needs; rename it"))
            continue
        try:
            with silenced_stderr_fd():  # libjpeg/libpng print unnamed warnings of their own
                tf.io.decode_image(tf.io.read_file(str(path)), channels=3, dtype=tf.uint8, expand_animations=False)
        except (tf.errors.OpError, ValueError) as error:
            bad.append((path, f"not a readable image for training: TensorFlow's decoder, which training uses, "
                              f"fails on it ({first_line(error)}); convert it to PNG or remove it"))
    if bad:
        path, reason = bad[0]
        more = f" (and {len(bad) - 1} more: {', '.join(str(p) for p, _ in bad[1:4])}{', ...' if len(bad) > 4 else ''})"
        raise DataUnavailableError(f"{path}: {reason}" + (more if len(bad) > 1 else ""))


def _reachable(host_port, timeout=3.0):
    """True if a TCP connection opens within ``timeout`` (DNS included)."""
    result = []

    def connect():
        try:
            socket.create_connection(host_port, timeout=timeout).close()
            result.append(True)
        except OSError:
            pass

    # DNS lookups ignore socket timeouts; a daemon thread bounds them too.
    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result)


def stl10_builder(data_dir=None, download=True):
    """The tfds ``stl10`` builder, prepared; fails fast when it cannot be.

    tfds itself retries an offline download for minutes; we check for a
    prepared copy, then for the download host, and stop within seconds.
    """
    import tensorflow_datasets as tfds

    data_dir = data_dir or os.environ.get("TFDS_DATA_DIR")
    builder = tfds.builder("stl10", data_dir=data_dir)
    if builder.is_prepared():
        return builder
    where = builder.data_dir_root
    if not download:
        raise DataUnavailableError(f"STL-10 is not prepared in {where}: {STL10_FIX}")
    if not _reachable(STL10_HOST):
        raise DataUnavailableError(
            f"STL-10 is not prepared in {where} and {STL10_HOST[0]} cannot be reached: {STL10_FIX}"
        )
    builder.download_and_prepare()
    return builder


def _stl10_images(split, data_dir):
    builder = stl10_builder(data_dir)
    return builder.as_dataset(split=split, shuffle_files=False).map(
        lambda example: example["image"], num_parallel_calls=AUTOTUNE
    )


def decode_image_file(path):
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, dtype=tf.uint8, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


# The hostile-input suite's derandomised examples are drawn from its source, which names this.
_decode_file = decode_image_file


def resize_short_side(image, side):
    """uint8 image resized (area-averaged) so that its shorter side is ``side`` pixels."""
    height_width = tf.cast(tf.shape(image)[:2], tf.float32)
    size = tf.cast(tf.round(height_width * (side / tf.reduce_min(height_width))), tf.int32)
    resized = tf.image.resize(image, tf.maximum(size, side), method="area", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


def _folder_images(folder, crop_size, split="all"):
    files = split_files(list_image_files(folder), split)
    _check_min_size(files, crop_size)
    images = tf.data.Dataset.from_tensor_slices([str(p) for p in files])
    images = images.map(decode_image_file, num_parallel_calls=AUTOTUNE)
    total_bytes = sum(h * w * 3 for h, w in map(image_size, files))
    return images.cache() if total_bytes <= CACHE_BYTES else images, len(files)


def _sample_dataset():
    arrays = list(sample_images().values())
    return tf.data.Dataset.from_generator(
        lambda: iter(arrays), output_signature=tf.TensorSpec([None, None, 3], tf.uint8)
    ).cache()


def source_images(source, crop_size=64, data_dir=None, split="unlabelled", folder_split="all", short_side=None):
    """Dataset of uint8 images of any size, and the number of images (or None).

    ``short_side``: resize every image so its shorter side has this many pixels.
    """
    if source == "sample":
        images, count = _sample_dataset(), len(SAMPLE_IMAGES)
    elif source == "stl10":
        images, count = _stl10_images(split, data_dir), None
    else:
        images, count = _folder_images(source, crop_size, folder_split)
    if short_side:
        # Resized once, before the cache of the decoded images, not on every pass.
        images = images.map(lambda image: resize_short_side(image, short_side), num_parallel_calls=AUTOTUNE)
        images = images.cache() if count else images
    return images, count


def random_or_centre_crop(image, crop_size, seed, random):
    """A crop_size x crop_size x 3 crop: stateless-random under ``seed`` if ``random``, else the centre one."""
    if random:
        return tf.image.stateless_random_crop(image, [crop_size, crop_size, 3], seed=seed)
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    top, left = (height - crop_size) // 2, (width - crop_size) // 2
    return image[top : top + crop_size, left : left + crop_size, :]


def training_dataset(source, batch_size, crop_size=64, seed=0, data_dir=None, skip_batches=0, split="all",
                     short_side=None):
    """Endless batches of random clean crops, reproducible under ``seed``.

    Element k of the stream is cropped with the stateless seed (seed, k), so
    skipping ``skip_batches`` batches (for a resumed run) gives exactly the
    batches an uninterrupted run would have seen next.  ``split`` selects
    the train/validation part of a folder (``split_files``); ``short_side``
    resizes every image first (``resize_short_side``).
    """
    images, count = source_images(source, crop_size, data_dir, folder_split=split, short_side=short_side)

    def crop(crop_seed, image):
        return tf.cast(random_or_centre_crop(image, crop_size, crop_seed, True), tf.float32)

    return seeded_crop_batches(images, count, seed, batch_size, skip_batches, crop)


def seeded_crop_batches(elements, count, seed, batch_size, skip_batches, crop, buffer_cap=10_000):
    """Shuffle once per seed, repeat, and crop element k with the stateless seed (seed, k).

    One fixed order per seed: with reshuffling, every extra iterator that
    Keras or tf.distribute opens would silently change the data order.
    Crops still differ between passes (their seed is the element index), and
    skipping ``skip_batches`` batches resumes the stream exactly.
    ``crop(crop_seed, element)`` returns the training element.
    """
    stream = elements.shuffle(min(count or buffer_cap, buffer_cap), seed=seed, reshuffle_each_iteration=False).repeat()
    stream = stream.enumerate().skip(skip_batches * batch_size)

    def seeded(index, element):
        return crop(tf.stack([tf.cast(seed, tf.int64), index]), element)

    return stream.map(seeded, num_parallel_calls=AUTOTUNE).batch(batch_size, drop_remainder=True).prefetch(AUTOTUNE)


def evaluation_dataset(source, batch_size, crop_size=64, data_dir=None, limit=None):
    """Central crops, in a fixed order, for evaluation and figures."""
    split = "test" if source == "stl10" else "unlabelled"
    images, _ = source_images(source, crop_size, data_dir, split=split)
    if limit:
        images = images.take(limit)
    images = images.map(lambda image: tf.cast(random_or_centre_crop(image, crop_size, None, False), tf.float32))
    return images.batch(batch_size).prefetch(AUTOTUNE)


def describe_source(source, data_dir=None, split="all"):
    """What ``config.json`` records about the data."""
    if source == "sample":
        import skimage

        return {"kind": "sample", "images": list(SAMPLE_IMAGES), "scikit_image": skimage.__version__}
    if source == "stl10":
        import tensorflow_datasets as tfds

        return {"kind": "stl10", "split": "unlabelled", "tfds": tfds.__version__,
                "data_dir": data_dir or os.environ.get("TFDS_DATA_DIR")}
    files = split_files(list_image_files(source), split)
    info = {"kind": "folder", "path": str(Path(source).resolve()), "files": len(files),
            "sha256": folder_hash(source, files)}
    if split != "all":
        info["split"] = split
    return info


def folder_hash(folder, files):
    """SHA-256 over relative paths and bytes: names the exact training data."""
    import hashlib

    digest = hashlib.sha256()
    root = Path(folder)
    for path in files:
        # os.fsencode: a name that is not UTF-8 hashes as its bytes instead of failing.
        digest.update(os.fsencode(path.relative_to(root) if root.is_dir() else path.name) + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()

