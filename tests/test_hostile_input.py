"""Property tests (issues 7 and 16, "Hostile input"): ``denoise``, ``evaluate`` and training folders on whatever
a user may hand them.

Each example builds a few files on disk (random sizes, channel counts, pixel
types and formats, 16-bit colour included, then possibly truncated,
byte-corrupted, misnamed, chmod 000, symlinked, a FIFO or missing; named
plainly or with long, non-UTF-8 or control-character names) and runs the
real CLI entry point in-process, with ``--out`` anywhere (new, existing, the
input folder, above or inside it, empty, a file...), stdout sometimes a pipe
that closes after one line, and models that are not denoisers.
Whatever the input, the run must end either in a correct result or in one
error line per bad file that names it: no traceback, inputs byte-identical,
no partial or temporary file in the output folder, and a non-zero exit
exactly when something failed.

Derandomized, so CI runs the same examples every time.  How many examples
each property tried is written to ``fuzz-counts.json`` in the temp folder
(``STL_DENOISE_FUZZ_COUNTS`` overrides the path) for the issue's closing note.
"""

import collections
import contextlib
import csv
import hashlib
import io
import json
import os
import shutil
import stat
import struct
import tempfile
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms, PngImagePlugin

from stl_denoise import data
from stl_denoise._quiet import import_tensorflow
from stl_denoise.cli import main
from stl_denoise.errors import DataUnavailableError, printable
from stl_denoise.image_io import read_image
from stl_denoise.inference import MIN_SIDE

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
COUNTS_PATH = Path(os.environ.get("STL_DENOISE_FUZZ_COUNTS", Path(tempfile.gettempdir()) / "fuzz-counts.json"))
COUNTS = collections.Counter()
# Root reads and writes through chmod 000 (the suite runs as root in CI): then a
# permission fault cannot happen and the case must succeed instead.
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
# STL_DENOISE_FUZZ_SCALE=N: N times the examples, randomly drawn, for a longer hunt outside CI.
SCALE = int(os.environ.get("STL_DENOISE_FUZZ_SCALE", "0"))
FUZZ = settings(max_examples=300 * max(SCALE, 1), deadline=None, derandomize=not SCALE, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def record(*keys):
    for key in keys:
        COUNTS[key] += 1
    COUNTS_PATH.write_text(json.dumps(dict(sorted(COUNTS.items())), indent=1) + "\n")


# --- building hostile files -------------------------------------------------------------

# (channels, dtype, format, readable): what can be written, and whether read_image must accept it.
FORMATS = [
    (1, "uint8", "png", True), (1, "uint8", "jpg", True), (1, "uint8", "bmp", True), (1, "uint8", "tif", True),
    (2, "uint8", "png", True), (3, "uint8", "png", True), (3, "uint8", "jpg", True), (3, "uint8", "bmp", True),
    (3, "uint8", "tif", True), (4, "uint8", "png", True), (4, "uint8", "tif", True),
    (1, "uint16", "png", True), (1, "uint16", "tif", True),
    # 16-bit colour: kept at 16 bits in every format (issue 16), not read at 8 bits or refused
    (2, "uint16", "png", True), (3, "uint16", "png", True), (4, "uint16", "png", True), (3, "uint16", "tif", True),
    (4, "uint16", "tif", True),
    (1, "float32", "tif", False),  # float TIFF (mode F): not a supported pixel type
    (1, "int16", "tif", False),  # signed 16-bit TIFF: refused, named as such
]
MUTATIONS = ["none", "none", "truncate", "corrupt", "png-named-jpg", "text-named-png", "empty", "chmod-000",
             "symlink", "dangling-symlink", "missing", "bomb-header", "fifo", "huge-icc"]
# File names as users have them: long (up to the 255-byte limit), not UTF-8, with control characters.
NAMES = ["plain", "plain", "long", "not-utf8", "control"]


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(height, width):
    """A 100-byte PNG whose header claims height x width pixels (Pillow's decompression-bomb guard)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(100)))
            + chunk(b"IEND", b""))


def sixteen_bit_rgb_png(height, width, seed):
    """Pillow cannot write 48-bit PNGs; build a minimal one by hand."""
    pixels = np.random.default_rng(seed).integers(0, 65536, (height, width * 3), dtype=np.uint16).astype(">u2")
    rows = b"".join(b"\0" + row.tobytes() for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


def image_bytes(height, width, channels, dtype, fmt, seed):
    if dtype == "uint16" and channels == 3 and fmt == "png" and seed % 2:
        return sixteen_bit_rgb_png(height, width, seed)  # hand-made, as some cameras' tools write them
    rng = np.random.default_rng(seed)
    shape = (height, width) if channels == 1 else (height, width, channels)
    if dtype == "float32":
        pixels = rng.uniform(0, 255, shape).astype(np.float32)
    else:
        info = np.iinfo(dtype)
        pixels = rng.integers(info.min, info.max + 1, shape, dtype=dtype)
    if dtype == "int16" or (dtype == "uint16" and channels > 1):  # Pillow writes neither
        if fmt == "png":
            return import_tensorflow().io.encode_png(pixels).numpy()
        buffer = io.BytesIO()
        tifffile.imwrite(buffer, pixels, photometric="rgb" if channels > 2 else None)
        return buffer.getvalue()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format={"jpg": "JPEG", "tif": "TIFF"}.get(fmt, fmt.upper()))
    return buffer.getvalue()


@st.composite
def hostile_files(draw):
    """One input file spec: how to make it, and whether it must (True), must not (False) or may (None) work."""
    channels, dtype, fmt, readable = draw(st.sampled_from(FORMATS))
    name = draw(st.sampled_from(NAMES))
    # Half the sides at least MIN_SIDE, so that many cases must succeed rather than be refused.
    side = st.one_of(st.integers(1, 80), st.integers(MIN_SIDE, 80))
    height, width = draw(side), draw(side)
    mutation = draw(st.sampled_from(MUTATIONS))
    data = image_bytes(height, width, channels, dtype, fmt, draw(st.integers(0, 2**16)))
    suffix = "." + fmt
    if mutation == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif mutation == "corrupt":
        data = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        data = bytes(data)
    elif mutation == "png-named-jpg":
        data = image_bytes(height, width, 3, "uint8", "png", 0)
        channels, dtype, readable, suffix = 3, "uint8", True, ".jpg"
    elif mutation == "text-named-png":
        data, suffix = draw(st.text(min_size=1, max_size=200)).encode(), ".png"
    elif mutation == "empty":
        data = b""
    elif mutation == "huge-icc":  # an ICC profile past what Pillow reads back from a PNG
        fmt = draw(st.sampled_from(["jpg", "tif"]))
        profile = bytearray(SRGB + bytes(draw(st.sampled_from([1_048_577, 1_500_000]))))
        if draw(st.booleans()):  # its header declares it all (else: padding after a valid profile)
            profile[:4] = len(profile).to_bytes(4, "big")
        buffer = io.BytesIO()
        Image.fromarray(np.random.default_rng(height).integers(0, 256, (height, width, 3), dtype=np.uint8)).save(
            buffer, format={"jpg": "JPEG", "tif": "TIFF"}[fmt], icc_profile=bytes(profile))
        data, suffix, channels, dtype, readable = buffer.getvalue(), "." + fmt, 3, "uint8", True
    elif mutation == "bomb-header":  # above 2x Pillow's MAX_IMAGE_PIXELS: refused before decoding
        data, suffix = bomb_png(draw(st.integers(20_000, 65_535)), draw(st.integers(20_000, 65_535))), ".png"
    if mutation in ("truncate", "corrupt"):
        expect = None  # a decoder may or may not notice; either outcome must be clean
    elif mutation in ("text-named-png", "empty", "dangling-symlink", "missing", "bomb-header", "fifo"):
        expect = False
    elif mutation == "chmod-000" and not IS_ROOT:
        expect = False
    else:
        expect = readable and min(height, width) >= MIN_SIDE
    if mutation == "text-named-png" and data.startswith(b"BM"):
        expect = None  # hypothesis could spell a bitmap header; Pillow then decides
    return {"data": data, "suffix": suffix, "size": (height, width), "mutation": mutation, "expect": expect,
            "format": f"{channels} channel(s) {dtype} {fmt}", "name": name, "channels": channels, "dtype": dtype}


def file_name(spec, index):
    """The input's name: ``f<index>`` plain, padded to the 255-byte limit, or with odd bytes and characters."""
    stem = f"f{index}"
    if spec["name"] == "long":
        stem += "n" * (255 - len(stem) - len(spec["suffix"]))  # the output's name (.png) is as long
    elif spec["name"] == "not-utf8":
        stem += os.fsdecode(b"-caf\xe9\xff")
    elif spec["name"] == "control":
        stem += "\nnew\rline\x1b[31m\t"
    return stem + spec["suffix"]


def materialise(spec, folder, index):
    """Create the file (and any link) for ``spec``; returns the path to pass on the command line."""
    real = folder / file_name(spec, index)
    mutation = spec["mutation"]
    if mutation == "missing":
        return real
    if mutation == "fifo":
        os.mkfifo(real)
        return real
    if mutation == "dangling-symlink":
        real.symlink_to(folder / f"gone{index}{spec['suffix']}")
        return real
    if mutation == "symlink":
        target = folder.parent / "targets" / f"t{index}{spec['suffix']}"  # outside the --images folder
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(spec["data"])
        real.symlink_to(target)
        return real
    real.write_bytes(spec["data"])
    if mutation == "chmod-000":
        real.chmod(0)
    return real


def snapshot(folder, skip=None):
    """sha256 and mode of every regular file under ``folder`` but ``skip`` (links not followed: targets are listed)."""
    hashes = {}
    for path in sorted(folder.rglob("*")):
        if skip is not None and (path == skip or skip in path.parents):
            continue
        if path.is_file() and not path.is_symlink() or stat.S_ISFIFO(path.lstat().st_mode):
            if stat.S_ISFIFO(path.lstat().st_mode):
                hashes[str(path)] = ("fifo", path.lstat().st_mode)
                continue
            mode = path.stat().st_mode
            path.chmod(0o600)  # chmod 000 files must be hashed too, even without root
            hashes[str(path)] = (hashlib.sha256(path.read_bytes()).hexdigest(), mode)
            path.chmod(mode)
    return hashes


class ClosedPipe(io.StringIO):
    """stdout of ``... | head -n 1``: the first line goes through, then the reader is gone."""

    def write(self, text):
        if self.getvalue().count("\n") >= 1:
            raise BrokenPipeError(32, "Broken pipe")
        return super().write(text)


def run(argv, closed_pipe=False):
    err, out = io.StringIO(), ClosedPipe() if closed_pipe else io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out), \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(argv)
    # Outside pytest these would be multi-line stderr noise around the one-line errors.
    pillow = [f"{w.category.__name__}: {w.message}" for w in caught if "PIL" in w.filename]
    assert not pillow, pillow
    return code, err.getvalue()


def check_clean_stderr(err):
    """The error lines; every other line must be evaluate's "[i/n] file" progress, a "skipped" or other note."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines()
             if not line.startswith(("[", "stl-denoise: skipped ", "stl-denoise: note: "))]
    assert all(line.startswith("stl-denoise: error: ") for line in lines), err
    assert all(line.isprintable() for line in err.splitlines()), err  # names escaped: no forged lines
    return lines


def named(path, line):
    """Whether ``line`` names ``path`` (as the CLI shows names: escaped)."""
    return printable(str(path)) in line


@pytest.fixture(scope="module")
def workspace():
    folder = Path(tempfile.mkdtemp(prefix="stl-fuzz-"))
    yield folder
    for path in folder.rglob("*"):  # restore modes so the folder can be removed
        if not path.is_symlink():
            path.chmod(0o700)
    shutil.rmtree(folder)


def fresh(workspace):
    case = Path(tempfile.mkdtemp(dir=workspace))
    (case / "in").mkdir()
    return case


# --- denoise -----------------------------------------------------------------------------

OUT_KINDS = ["new", "new", "new", "existing", "is-a-file", "unwritable", "dangling-symlink", "under-a-file",
             "input-folder", "above-input", "inside-input", "empty"]


@FUZZ
@given(specs=st.lists(hostile_files(), min_size=1, max_size=3), out_kind=st.sampled_from(OUT_KINDS),
       closed_pipe=st.booleans())
def test_denoise_property(specs, out_kind, closed_pipe, workspace, random_denoiser_path):
    case = fresh(workspace)
    inputs = [materialise(spec, case / "in", index) for index, spec in enumerate(specs)]
    out = case / "out"
    if out_kind == "existing":
        out.mkdir()
    elif out_kind == "is-a-file":
        out.write_text("not a folder\n")
    elif out_kind == "dangling-symlink":
        out.symlink_to(case / "nowhere")
    elif out_kind == "under-a-file":
        (case / "file").write_text("not a folder\n")
        out = case / "file" / "out"
    elif out_kind == "unwritable":
        out.mkdir()
        out.chmod(0o555)
    elif out_kind == "input-folder":
        out = case / "in"
    elif out_kind == "above-input":
        out = case
    elif out_kind == "inside-input":
        out = case / "in" / "out"
    # Everything that existed must survive byte for byte: the whole case folder when --out is (above) it.
    skip = None if out_kind in ("input-folder", "above-input", "empty") else out
    before, listing = snapshot(case, skip=skip), sorted(case.rglob("*"))

    argv = ["denoise", "--model", str(random_denoiser_path), *map(str, inputs), "--out",
            "" if out_kind == "empty" else str(out)]
    code, err = run(argv, closed_pipe)
    lines = check_clean_stderr(err)
    record("denoise cases", *(f"denoise input: {s['mutation']}" for s in specs), f"denoise out: {out_kind}",
           *(f"denoise format: {s['format']}" for s in specs), *(f"denoise name: {s['name']}" for s in specs),
           f"denoise stdout closed after one line: {closed_pipe}")

    after = snapshot(case, skip=skip)
    assert {k: v for k, v in after.items() if k in before} == before  # no input (or link target) modified
    if out_kind in ("is-a-file", "dangling-symlink", "under-a-file", "empty"):
        assert code == 2 and len(lines) == 1, lines
        if out_kind != "empty":
            assert named(out, lines[0]) and "not a folder" in lines[0], lines
        assert sorted(case.rglob("*")) == listing and not out.is_dir() or out_kind == "empty"  # nothing created
        assert after == before
        if out_kind not in ("dangling-symlink", "empty"):
            assert out.parent.read_text() if out_kind == "under-a-file" else out.read_text() == "not a folder\n"
        return
    write_denied = out_kind == "unwritable" and not IS_ROOT
    written = set()
    for source, spec in zip(inputs, specs):
        target = out / f"{source.stem}.png"
        mine = [line for line in lines if named(source, line)]
        if target.exists() and target not in listing:
            assert not mine, mine
            assert spec["expect"] is not False and not write_denied, (spec["mutation"], spec["size"])
            with Image.open(target) as image:
                image.load()  # opens in Pillow: a profile it would refuse was cut or left out
                size = (image.height, image.width)
                if spec["mutation"] == "huge-icc":
                    assert len(image.info.get("icc_profile", b"")) <= PngImagePlugin.MAX_TEXT_CHUNK
                    assert any(named(source, line) and "ICC colour profile" in line for line in err.splitlines())
            if spec["mutation"] in ("truncate", "corrupt"):
                # A flipped header byte can change the declared size (a 1-row TIFF read as 257 rows):
                # the output must match the input as it decodes, not as it was first written.
                with Image.open(source) as decoded:
                    assert size == (decoded.height, decoded.width)
            else:
                assert size == spec["size"]
                if spec["dtype"] == "uint16" and spec["mutation"] in ("none", "symlink", "chmod-000"):
                    assert read_image(target).dtype == np.uint16  # 16 bits kept, colour too
            written.add(target.name)
            record("denoise files written")
        else:
            assert len(mine) == 1, (source, lines)  # one line, naming the file
            assert spec["expect"] is not True or write_denied or out_kind == "input-folder", (
                spec["mutation"], spec["size"], mine)
            record("denoise files refused")
    assert len(lines) == len(specs) - len(written)  # every error line belongs to one input
    assert code == (1 if lines else 0)
    if out_kind == "input-folder":
        assert not written  # never into an input's own folder
    new = {p.name for p in out.iterdir() if p not in listing} if out.exists() else set()
    if out_kind == "above-input":
        new -= {"in", "targets", "fuzz"}
    assert new == written  # no partial or temporary (.f0.*.png) files
    if out_kind == "unwritable":
        out.chmod(0o755)


# --- evaluate ----------------------------------------------------------------------------

@settings(FUZZ, max_examples=60 * max(SCALE, 1))
@given(specs=st.lists(hostile_files(), min_size=1, max_size=2))
def test_evaluate_property(specs, workspace, random_denoiser_path):
    case = fresh(workspace)
    inputs = [materialise(spec, case / "in", index) for index, spec in enumerate(specs)]
    out = case / "report"
    before = snapshot(case, skip=out)
    # A folder as --images, as users pass it: missing and dangling entries are simply not listed.
    code, err = run(["evaluate", "--model", str(random_denoiser_path), "--images", str(case / "in"),
                     "--baselines", "median", "--sigma", "10", "--tile", "64", "--margin", "16", "--out", str(out)])
    lines = check_clean_stderr(err)
    record("evaluate cases", *(f"evaluate input: {s['mutation']}" for s in specs))

    assert snapshot(case, skip=out) == before
    listed = [(p, s) for p, s in zip(inputs, specs) if s["mutation"] not in ("missing", "dangling-symlink", "fifo")]
    if code == 0:
        assert not lines and listed
        assert all(s["expect"] is not False for _, s in listed), [s["mutation"] for _, s in listed]
        assert sorted(p.name for p in out.iterdir()) == ["per_image.csv", "summary.csv", "summary.md"]
        with open(out / "per_image.csv", newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))  # names with newlines are quoted fields, not extra rows
        assert len(rows) == 1 + 3 * len(listed)  # header + (noisy input, the model, median) per image
        record("evaluate runs scored")
    else:
        # evaluate scores a whole set, so one bad file stops it: one line naming that file (or the empty folder).
        assert code == 2 and len(lines) == 1, lines
        culprits = [s for p, s in listed if named(p, lines[0])]
        assert culprits or (not listed and named(case / "in", lines[0])), lines
        assert all(s["expect"] is not True for s in culprits), (lines, culprits)
        assert not out.exists()  # nothing written before the failure
        record("evaluate runs refused")


# --- models that are not denoisers --------------------------------------------------------

def not_denoisers(folder):
    """{kind: .keras path} of models that load but do not map an RGB image to one of its own shape."""
    import keras

    conv = keras.layers.Conv2D
    builders = {
        "global pooling": (3, lambda x: keras.layers.GlobalAveragePooling2D()(x)),
        "1-channel output": (3, lambda x: conv(1, 3, padding="same")(x)),
        "2x upsampling": (3, lambda x: keras.layers.UpSampling2D(2)(x)),
        "cropping": (3, lambda x: keras.layers.Cropping2D(4)(x)),
        "two outputs": (3, lambda x: [conv(3, 1)(x), conv(3, 1)(x)]),
        "NaN output": (3, lambda x: conv(3, 1, kernel_initializer=keras.initializers.Constant(float("nan")))(x)),
        "1-channel input": (1, lambda x: conv(1, 3, padding="same")(x)),
        "fixed 64x64 input": ((64, 64, 3), lambda x: conv(3, 3, padding="same")(x)),
        "stride 32": (3, lambda x: keras.layers.UpSampling2D(32)(conv(3, 1, strides=32)(x))),
    }
    paths = {}
    for kind, (shape, build) in builders.items():
        inputs = keras.Input(shape if isinstance(shape, tuple) else (None, None, shape))
        paths[kind] = folder / f"{kind.replace(' ', '-')}.keras"
        keras.Model(inputs, build(inputs)).save(paths[kind])
    return paths


@pytest.fixture(scope="module")
def bad_models(workspace):
    folder = workspace / "models"
    folder.mkdir()
    return not_denoisers(folder)


@settings(FUZZ, max_examples=30 * max(SCALE, 1))
@given(kind=st.sampled_from(["global pooling", "1-channel output", "2x upsampling", "cropping", "two outputs",
                             "NaN output", "1-channel input", "fixed 64x64 input", "stride 32"]),
       specs=st.lists(hostile_files(), min_size=1, max_size=2), command=st.sampled_from(["denoise", "evaluate"]))
def test_a_model_that_is_not_a_denoiser_is_refused_before_any_work(kind, specs, command, workspace, bad_models):
    case = fresh(workspace)
    inputs = [materialise(spec, case / "in", index) for index, spec in enumerate(specs)]
    before = snapshot(case)
    argv = (["denoise", "--model", str(bad_models[kind]), *map(str, inputs), "--out", str(case / "out")]
            if command == "denoise" else
            ["evaluate", "--model", str(bad_models[kind]), "--images", str(case / "in"), "--baselines", "median",
             "--sigma", "10", "--out", str(case / "out")])
    code, err = run(argv)
    lines = check_clean_stderr(err)
    record(f"not-a-denoiser model: {kind}")
    # evaluate lists the folder first: an empty one is refused by name before the model is even loaded
    assert code == 2 and len(lines) == 1, lines
    assert named(bad_models[kind], lines[0]) and "not a denoiser" in lines[0] or "no images found" in lines[0], lines
    assert snapshot(case) == before and not (case / "out").exists()


# --- training folders ----------------------------------------------------------------------

@settings(FUZZ, max_examples=60 * max(SCALE, 1))
@given(specs=st.lists(hostile_files(), min_size=1, max_size=3))
def test_training_folder_property(specs, workspace):
    """``train --data FOLDER`` checks every file with the decoder training uses, before training starts.

    Either the check names one bad file (or the folder) on one line, or every
    listed file decodes with ``data._decode_file`` into an image at least as
    large as the crop: a file that cannot train never reaches the training loop.
    """
    case = fresh(workspace)
    inputs = [materialise(spec, case / "in", index) for index, spec in enumerate(specs)]
    crop = MIN_SIDE
    try:
        files = data.list_image_files(case / "in")
        data.describe_source(str(case / "in"))  # the folder hash, names that are not UTF-8 included
        data._check_min_size(files, crop)
    except DataUnavailableError as error:
        message = str(error)
        assert "\n" not in message.strip() or any(s["name"] == "control" for s in specs), message
        assert any(named(p, printable(message)) for p in inputs) or named(case / "in", printable(message)), message
        record("training folders refused")
        return
    for path in files:
        image = data._decode_file(str(path)).numpy()
        assert image.ndim == 3 and image.shape[2] == 3 and min(image.shape[:2]) >= crop, path
    assert all(s["mutation"] not in ("text-named-png", "empty", "bomb-header") for s in specs)
    record("training folders accepted")


# --- regressions for what the properties found ------------------------------------------

def test_evaluate_names_an_image_too_small_for_the_model(tmp_path, random_denoiser_path, capsys):
    """Was a ValueError traceback from the warm-up call (and SSIM needs 7x7 anyway)."""
    Image.fromarray(np.zeros((9, 40, 3), np.uint8)).save(tmp_path / "small.png")
    code = main(["evaluate", "--model", str(random_denoiser_path), "--images", str(tmp_path), "--baselines",
                 "median", "--sigma", "10", "--out", str(tmp_path / "report")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.splitlines() == [f"stl-denoise: error: {tmp_path / 'small.png'}: image is 9x40: evaluation needs at "
                                "least 16x16 pixels"]
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize("kind", ["dangling-symlink", "under-a-file"])
def test_denoise_out_that_cannot_be_a_folder_is_refused_up_front(tmp_path, random_denoiser_path, capsys, kind):
    """Was one cryptic "File exists" / "Not a directory" line per input and exit 1."""
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "a.png")
    if kind == "dangling-symlink":
        out = tmp_path / "out"
        out.symlink_to(tmp_path / "nowhere")
    else:
        (tmp_path / "file").write_text("")
        out = tmp_path / "file" / "out"
    code = main(["denoise", "--model", str(random_denoiser_path), str(tmp_path / "a.png"), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and f"--out {out}: " in err and "not a folder" in err
    assert not (tmp_path / "nowhere").exists()


def test_fuzz_counts_recorded():
    """Runs after the properties (file order): the counts the closing note reports."""
    counts = json.loads(COUNTS_PATH.read_text())
    assert counts["denoise cases"] >= 300 and counts["evaluate cases"] >= 60
    assert counts["denoise files written"] > 0 and counts["denoise files refused"] > 0
    assert counts["training folders refused"] > 0 and counts["training folders accepted"] > 0
    assert sum(v for k, v in counts.items() if k.startswith("not-a-denoiser model")) >= 30
