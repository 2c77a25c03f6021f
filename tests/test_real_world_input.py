"""Regressions for issue 16, "Hostile and real-world inputs": one test per case the issue lists.

Each runs the real CLI entry point in-process (or the function the CLI
calls) on tiny files, and checks the promised outcome: one line per problem
naming the file, exit 2 for a bad option or model before any work, 1 if a
file failed, no traceback, no file outside the outputs touched; photos come
out upright with their ICC profile, transparency and 16 bits kept.
"""

import contextlib
import io
import os
import signal
from pathlib import Path

import keras
import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms, ImageOps

from stl_denoise import data, figures, folders, splits
from stl_denoise.cli import main
from stl_denoise.denoise_files import denoise_files
from stl_denoise.errors import DataUnavailableError, UserError, printable
from stl_denoise.image_io import read_image, read_picture, written_by_us
from stl_denoise.inference import denoise_image

LONG = "g" * 300  # longer than any file system's 255-byte name limit
NOT_UTF8 = os.fsdecode(b"caf\xe9")  # Latin-1 bytes, as old cameras and archives name files
RNG = np.random.default_rng(16)


def photo(path, height=24, width=40, **save):
    pixels = RNG.integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, **save)
    return pixels


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err.splitlines()


@pytest.fixture(scope="module")
def identity(tmp_path_factory):
    """A model that returns its input: outputs must then equal the (upright) input exactly."""
    noisy = keras.Input((None, None, 3))
    model = keras.Model(noisy, keras.layers.Identity()(noisy))
    path = tmp_path_factory.mktemp("identity") / "identity.keras"
    model.save(path)
    return path


def two_images(folder):
    folder.mkdir(parents=True, exist_ok=True)
    photo(folder / "a.png")
    photo(folder / "b.png")
    return folder


# --- tracebacks ---------------------------------------------------------------------------

def test_an_over_long_input_name_costs_only_itself(tmp_path, capsys, identity):
    two_images(tmp_path / "in")
    code, _, err = run(["denoise", "--model", identity, tmp_path / "in" / "a.png", tmp_path / f"{LONG}.png",
                        tmp_path / "in" / "b.png", "--out", tmp_path / "out"], capsys)
    assert code == 1 and len(err) == 1 and "File name too long" in err[0] and LONG in err[0]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]


@pytest.mark.parametrize("argv", [
    ["denoise", "{a}", "--out", LONG],
    ["denoise", "{a}", "--model", LONG + ".keras", "--out", "{out}"],
    ["evaluate", "--images", LONG, "--baselines", "median", "--out", "{out}"],
    ["train", "--data", LONG, "--steps", "1", "--out", "{out}"],
    ["train", "--data", "sample", "--steps", "1", "--out", LONG],
], ids=["denoise --out", "--model", "evaluate --images", "train --data", "train --out"])
def test_over_long_option_names_are_one_line_exit_2(tmp_path, capsys, argv, monkeypatch):
    photo(tmp_path / "a.png")
    monkeypatch.chdir(tmp_path)  # relative names: LONG stays one over-long component
    argv = [a.format(a=tmp_path / "a.png", out=tmp_path / "out") for a in argv]
    code, _, err = run(argv, capsys)
    assert code == 2 and len(err) == 1 and LONG[:100] in err[0] and "too long" in err[0], err
    assert not (tmp_path / "out").exists()


def test_names_that_are_not_utf8(tmp_path, capsys, identity):
    folder = tmp_path / "in"
    folder.mkdir()
    photo(folder / f"{NOT_UTF8}.png")
    photo(folder / "ok.png")
    # evaluate: its noisy copy is seeded by the name's bytes; the report escapes the name
    code, out, err = run(["evaluate", "--model", identity, "--images", folder, "--baselines", "median", "--sigma",
                          "10", "--out", tmp_path / "report"], capsys)
    assert code == 0 and any("caf\\xe9.png" in line for line in err)
    assert "caf\\xe9.png" in (tmp_path / "report" / "per_image.csv").read_text(encoding="utf-8")
    # denoise: progress lines on a strict UTF-8 stdout
    strict = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    with contextlib.redirect_stdout(strict):
        code = main(["denoise", "--model", str(identity), str(folder), "--out", str(tmp_path / "out")])
    strict.flush()
    assert code == 0 and b"caf\\xe9.png ->" in strict.buffer.getvalue()
    assert (tmp_path / "out" / f"{NOT_UTF8}.png").exists()
    # train --data: the folder hash takes the bytes; TensorFlow cannot open the name, so it is refused by name
    files = folders.list_image_files(folder)
    assert len(folders.folder_hash(folder, files)) == 64
    with pytest.raises(DataUnavailableError, match=r"caf.\.png: its name is not UTF-8"):
        data._check_min_size(files, 16)


class ClosedPipe(io.StringIO):
    """stdout of ``... | head -n 1``: the first line goes through, then the reader is gone."""

    def write(self, text):
        if self.getvalue().count("\n") >= 1:
            raise BrokenPipeError(32, "Broken pipe")
        return super().write(text)


def test_a_closed_stdout_pipe_stops_the_progress_not_the_work(tmp_path, capsys, identity):
    folder = two_images(tmp_path / "in")
    photo(folder / "c.png")
    pipe = ClosedPipe()
    with contextlib.redirect_stdout(pipe):
        code = main(["denoise", "--model", str(identity), *(str(folder / n) for n in ("a.png", "b.png", "c.png")),
                     "--out", str(tmp_path / "out")])
    assert code == 0 and capsys.readouterr().err == ""  # no false "cannot write", no traceback
    assert pipe.getvalue().count("\n") == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png", "c.png"]


def _bad_model(kind):
    x = keras.Input((None, None, 1 if kind == "1-channel input" else 3) if kind != "fixed 64x64" else (64, 64, 3))
    conv = keras.layers.Conv2D
    outputs = {
        "global pooling": lambda: keras.layers.GlobalAveragePooling2D()(x),
        "1-channel output": lambda: conv(1, 3, padding="same")(x),
        "2x upsampling": lambda: keras.layers.UpSampling2D(2)(x),
        "two outputs": lambda: [conv(3, 3, padding="same")(x), conv(3, 3, padding="same")(x)],
        "NaN output": lambda: conv(3, 1, kernel_initializer=keras.initializers.Constant(float("nan")))(x),
        "1-channel input": lambda: conv(1, 3, padding="same")(x),
        "fixed 64x64": lambda: conv(3, 3, padding="same")(x),
    }[kind]()
    return keras.Model(x, outputs)


BAD_MODELS = ["global pooling", "1-channel output", "2x upsampling", "two outputs", "NaN output", "1-channel input",
              "fixed 64x64"]


@pytest.mark.parametrize("kind", BAD_MODELS)
def test_a_model_that_is_not_a_denoiser_is_refused_before_any_work(tmp_path, capsys, kind):
    path = tmp_path / "model.keras"
    _bad_model(kind).save(path)
    photo(tmp_path / "a.png")
    code, _, err = run(["denoise", "--model", path, tmp_path / "a.png", "--out", tmp_path / "out"], capsys)
    assert code == 2 and len(err) == 1 and "not a denoiser" in err[0] and str(path) in err[0], err
    assert "\x1b" not in err[0]
    assert not (tmp_path / "out").exists()


def test_nan_for_one_image_fails_that_image():
    class NaNForBright:  # finite on the load-time probe, NaN on a bright image
        def __call__(self, batch, training=False):
            batch = np.asarray(batch)
            return batch * np.nan if batch.mean() > 250 else batch

    with pytest.raises(ValueError, match="NaN or infinite"):
        denoise_image(NaNForBright(), np.full((32, 32, 3), 255, np.uint8))


@pytest.mark.parametrize("kind", ["tif", "truncated png"])
def test_a_training_folder_file_tensorflow_cannot_decode_is_named_before_training(tmp_path, capsys, kind):
    folder = tmp_path / "data"
    folder.mkdir()
    photo(folder / "good.png", 40, 40)
    if kind == "tif":
        photo(folder / "bad.tif", 40, 40)
        bad = folder / "bad.tif"
    else:
        bad = folder / "bad.png"
        bad.write_bytes((folder / "good.png").read_bytes()[:80])  # the header (and size) survive
    assert folders.image_size(bad) == (40, 40)  # the old header check passed it
    code, _, err = run(["train", "--data", folder, "--steps", "2", "--crop-size", "32", "--batch-size", "2",
                        "--out", tmp_path / "run"], capsys)
    assert code == 2 and len(err) == 1 and str(bad) in err[0] and "TensorFlow" in err[0], err
    assert "function_node" not in err[0]


def test_figures_on_a_bad_config_or_metrics_file_is_one_line(tmp_path, capsys):
    (tmp_path / "r1").mkdir()
    (tmp_path / "r1" / "config.json").write_text("[1, 2, 3]")
    (tmp_path / "r1" / "metrics.csv").write_text("step,mse\n")
    (tmp_path / "r2").mkdir()
    (tmp_path / "r2" / "config.json").write_text('{"config": {"model": "dsc"}}')
    (tmp_path / "r2" / "metrics.csv").write_text("step,mse\n1,abc\n")
    notes = []
    assert figures.discover_runs([tmp_path / "r1", tmp_path / "r2"], report=notes.append) == {}
    assert "r1/config.json: not a run's config.json" in notes[0]
    assert "r2/metrics.csv: line 2: mse is 'abc', not a number" in notes[1]
    code, _, err = run(["figures", tmp_path / "r1", tmp_path / "r2", "--out", tmp_path / "figs"], capsys)
    assert code == 2 and len(err) == 1


# --- wrong exit codes, lost data, hang -------------------------------------------------------

def test_out_in_the_input_folder_is_refused_and_touches_nothing(tmp_path, capsys, identity):
    folder = tmp_path / "in"
    folder.mkdir()
    photo(folder / "b.jpg")
    photo(folder / "b.png")  # unrelated, must survive
    before = (folder / "b.png").read_bytes()
    code, _, err = run(["denoise", "--model", identity, folder / "b.jpg", "--out", folder], capsys)
    assert code == 1 and len(err) == 1 and "own folder" in err[0]
    assert (folder / "b.png").read_bytes() == before and sorted(p.name for p in folder.iterdir()) == ["b.jpg", "b.png"]


def test_an_existing_file_is_replaced_only_if_we_wrote_it(tmp_path, capsys, identity):
    two_images(tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"someone else's file")
    code, _, err = run(["denoise", "--model", identity, tmp_path / "in", "--out", out], capsys)
    assert code == 1 and len(err) == 1 and "a.png already exists and was not written by stl-denoise" in err[0]
    assert (out / "a.png").read_bytes() == b"someone else's file" and written_by_us(out / "b.png")
    code, _, err = run(["denoise", "--model", identity, tmp_path / "in" / "b.png", "--out", out], capsys)
    assert code == 0 and not err  # a rerun replaces its own output


def test_out_above_the_input_folder(tmp_path, capsys, identity, monkeypatch):
    two_images(tmp_path / "photos" / "sub")
    monkeypatch.chdir(tmp_path)
    code, _, err = run(["denoise", "--model", identity, "photos", "--out", "."], capsys)
    assert code == 0 and not err
    assert (tmp_path / "sub" / "a.png").is_file() and (tmp_path / "sub" / "b.png").is_file()


def test_empty_names(tmp_path, capsys, identity, monkeypatch):
    monkeypatch.chdir(tmp_path)
    photo(tmp_path / "a.png")
    code, _, err = run(["denoise", "--model", identity, "", "--out", "o"], capsys)
    assert code == 1 and len(err) == 1 and "empty name" in err[0] and not (tmp_path / "o" / "a.png").exists()
    for argv in (["denoise", "a.png", "--out", ""], ["denoise", "--model", "", "a.png", "--out", "o"],
                 ["evaluate", "--images", "", "--out", "r"], ["evaluate", "--images", ".", "--out", ""]):
        code, _, err = run(argv, capsys)
        assert code == 2 and len(err) == 1 and "empty" in err[0], (argv, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_a_fifo_as_model_or_input_does_not_hang(tmp_path, capsys, identity):
    os.mkfifo(tmp_path / "model.keras")
    os.mkfifo(tmp_path / "pipe.png")
    photo(tmp_path / "a.png")
    signal.alarm(60)  # a regression would block forever in open()
    try:
        code, _, err = run(["denoise", "--model", tmp_path / "model.keras", tmp_path / "a.png", "--out",
                            tmp_path / "o"], capsys)
        assert code == 2 and len(err) == 1 and "not a regular file" in err[0]
        code, _, err = run(["denoise", "--model", identity, tmp_path / "pipe.png", "--out", tmp_path / "o"], capsys)
        assert code == 1 and len(err) == 1 and "not a regular file" in err[0]
    finally:
        signal.alarm(0)


def test_skipped_entries_and_unreadable_subfolders_are_listed(tmp_path, capsys, identity, monkeypatch):
    folder = two_images(tmp_path / "in")
    (folder / "dangling.png").symlink_to(tmp_path / "nowhere.png")
    (folder / "loop.png").symlink_to(folder / "loop.png")
    os.mkfifo(folder / "fifo.png")
    photo(folder / "anim.gif", format="GIF")
    (folder / "linked").symlink_to(tmp_path)
    (folder / "notes.txt").write_text("not an image, not worth a line\n")
    (folder / "locked").mkdir()
    real_scandir = os.scandir

    def scandir(path):  # chmod 000 does not stop root, who runs CI
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    code, _, err = run(["denoise", "--model", identity, folder, "--out", tmp_path / "out"], capsys)
    assert code == 1
    assert [line for line in err if "error" in line] == [
        f"stl-denoise: error: {folder / 'locked'}: cannot read this folder (Permission denied); its images were not "
        "denoised"]
    skipped = sorted(line.split(": ")[1] for line in err if line.startswith("stl-denoise: skipped "))
    assert [s.split("/")[-1] for s in skipped] == ["anim.gif", "dangling.png", "fifo.png", "linked", "loop.png"], err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]
    with pytest.raises(DataUnavailableError, match="locked: cannot read this folder"):
        folders.list_image_files(folder)


# --- unclear messages ------------------------------------------------------------------------

def test_library_chatter_on_file_descriptor_2_is_silenced(tmp_path, capfd, identity):
    photo(tmp_path / "a.tif", format="TIFF")
    data_bytes = bytearray((tmp_path / "a.tif").read_bytes())
    (tmp_path / "bad.tif").write_bytes(bytes(data_bytes[:8]) + b"\xff" * 64)  # libtiff complains, then fails
    photo(tmp_path / "c.jpg", format="JPEG")
    (tmp_path / "bad.jpg").write_bytes((tmp_path / "c.jpg").read_bytes()[:400])  # libjpeg warns: premature end
    code = main(["denoise", "--model", str(identity), str(tmp_path / "bad.tif"), str(tmp_path / "bad.jpg"),
                 "--out", str(tmp_path / "out")])
    err = capfd.readouterr().err.splitlines()
    assert code == 1 and err and all(line.startswith("stl-denoise: error: ") for line in err), err
    assert "bad.tif" in err[0]


def test_an_unreadable_input_is_not_called_unwritable(tmp_path, capsys, identity, monkeypatch):
    from stl_denoise import image_io

    photo(tmp_path / "b.png")

    def refuse(path, mode="r", *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(image_io, "open", refuse, raising=False)
    code, _, err = run(["denoise", "--model", identity, tmp_path / "b.png", "--out", tmp_path / "out"], capsys)
    assert code == 1 and err == [f"stl-denoise: error: {tmp_path / 'b.png'}: cannot read (Permission denied)"]


@pytest.mark.parametrize("content, problem", [
    (b"", "empty file"), (b"just text\n", "not a zip archive, as .keras files are: another kind of file"),
    ("truncated", "not a zip archive, as .keras files are: truncated"),
])
def test_broken_keras_files_say_what_is_wrong(tmp_path, capsys, random_denoiser_path, content, problem):
    if content == "truncated":
        content = random_denoiser_path.read_bytes()[:1000]
    (tmp_path / "m.keras").write_bytes(content)
    photo(tmp_path / "a.png")
    code, _, err = run(["denoise", "--model", tmp_path / "m.keras", tmp_path / "a.png", "--out", tmp_path / "o"],
                       capsys)
    assert code == 2 and err == [f"stl-denoise: error: {tmp_path / 'm.keras'}: not a loadable Keras model ({problem})"]


def test_signed_16_bit_tiff_is_named_as_such(tmp_path):
    tifffile.imwrite(tmp_path / "s.tif", np.full((20, 20), -5, np.int16))
    with pytest.raises(UserError, match="signed 16-bit integer pixels are not supported"):
        read_image(tmp_path / "s.tif")


def test_control_characters_in_names_are_escaped(tmp_path, capsys, identity):
    name = "new\nline\rback\x1b[31mred.png"
    photo(tmp_path / name)
    (tmp_path / "x\ny.png").write_text("not an image")
    code, out, err = run(["denoise", "--model", identity, tmp_path / name, tmp_path / "x\ny.png", "--out",
                          tmp_path / "out"], capsys)
    assert code == 1 and len(err) == 1 and "x\\ny.png: not a readable image" in err[0]
    assert "new\\nline\\rback\\x1b[31mred.png ->" in out and "\x1b" not in out and "\r" not in out
    assert (tmp_path / "out" / "new\nline\rback\x1b[31mred.png").is_file()


@pytest.mark.parametrize("length", [245, 251])
def test_names_up_to_the_limit_can_be_written(tmp_path, capsys, identity, length):
    name = "h" * length + ".png"
    photo(tmp_path / name)
    code, _, err = run(["denoise", "--model", identity, tmp_path / name, "--out", tmp_path / "out"], capsys)
    assert code == 0 and not err and (tmp_path / "out" / name).is_file()
    assert [p.name for p in (tmp_path / "out").iterdir()] == [name]


# --- real photographs ------------------------------------------------------------------------

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF"])
def test_photos_come_out_upright_with_their_profile(tmp_path, identity, orientation, fmt):
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Camera maker"
    source = tmp_path / f"p.{fmt.lower()}"
    pixels = RNG.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(source, format=fmt, exif=exif.tobytes(), icc_profile=SRGB,
                                 **({"quality": 100, "subsampling": 0} if fmt == "JPEG" else {}))
    with Image.open(source) as image:
        upright = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    assert denoise_files(keras.saving.load_model(identity), [source], tmp_path / "out",
                         report=lambda line: None) == (1, [])
    with Image.open(tmp_path / "out" / "p.png") as output:
        assert np.array_equal(np.asarray(output), upright)
        assert output.info.get("icc_profile") == SRGB
        if fmt != "TIFF":  # a TIFF's tags are its file structure: nothing to carry into a PNG
            assert output.getexif().get(0x0112) == 1 and output.getexif().get(0x010F) == "Camera maker"


def test_png_trns_transparency_is_kept(tmp_path, identity):
    pixels = RNG.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    pixels[:5] = (1, 2, 3)
    Image.fromarray(pixels).save(tmp_path / "rgb.png", transparency=(1, 2, 3))
    grey = pixels[..., 0].copy()
    Image.fromarray(grey).save(tmp_path / "grey.png", transparency=1)
    grey16 = grey.astype(np.uint16) * 257
    Image.fromarray(grey16).save(tmp_path / "grey16.png", transparency=257)
    model = keras.saving.load_model(identity)
    assert denoise_files(model, [tmp_path / n for n in ("rgb.png", "grey.png", "grey16.png")], tmp_path / "out",
                         report=lambda line: None)[0] == 3
    rgba = read_image(tmp_path / "out" / "rgb.png")
    assert rgba.shape == (20, 24, 4) and (rgba[:5, :, 3] == 0).all() and (rgba[5:, :, 3] == 255).all()
    la = read_image(tmp_path / "out" / "grey.png")
    assert la.shape == (20, 24, 2) and (la[..., 1] == np.where(grey == 1, 0, 255)).all()
    la16 = read_image(tmp_path / "out" / "grey16.png")
    assert la16.dtype == np.uint16 and (la16[..., 1] == np.where(grey16 == 257, 0, 65535)).all()


def sixteen_bit_files(folder, pixels):
    """The same 16-bit pixels as PNG (RGB, RGBA, grey+alpha), TIFF (RGB, RGBA, planar, LZW) and PPM."""
    from stl_denoise._quiet import import_tensorflow

    tf = import_tensorflow()
    files = {}
    for channels, name in ((3, "png_rgb.png"), (4, "png_rgba.png"), (2, "png_la.png")):
        (folder / name).write_bytes(tf.io.encode_png(pixels[..., :channels]).numpy())
        files[name] = pixels[..., :channels]
    tifffile.imwrite(folder / "tif_rgb.tif", pixels[..., :3], photometric="rgb")
    tifffile.imwrite(folder / "tif_rgba.tif", pixels, photometric="rgb", extrasamples=[2])
    tifffile.imwrite(folder / "tif_planar.tif", np.moveaxis(pixels[..., :3], 2, 0), photometric="rgb",
                     planarconfig="separate")
    tifffile.imwrite(folder / "tif_lzw.tif", pixels[..., :3], photometric="rgb", compression="lzw")
    height, width = pixels.shape[:2]
    (folder / "ppm_rgb.ppm").write_bytes(f"P6\n{width} {height}\n65535\n".encode()
                                         + pixels[..., :3].astype(">u2").tobytes())
    files.update({n: pixels[..., :4 if n == "tif_rgba.tif" else 3]
                  for n in ("tif_rgb.tif", "tif_rgba.tif", "tif_planar.tif", "tif_lzw.tif", "ppm_rgb.ppm")})
    return files


def test_sixteen_bit_colour_is_kept_in_every_format(tmp_path, identity):
    pixels = RNG.integers(0, 65536, (20, 24, 4), dtype=np.uint16)
    files = sixteen_bit_files(tmp_path, pixels)
    for name, expected in files.items():
        assert np.array_equal(read_image(tmp_path / name), expected), name
    model = keras.saving.load_model(identity)
    out = tmp_path / "out"
    written, errors = denoise_files(model, [tmp_path / n for n in files], out, report=lambda line: None)
    assert errors == [] and written == len(files)
    for name, expected in files.items():
        output = read_image(out / (Path(name).stem + ".png"))
        assert output.dtype == np.uint16 and np.array_equal(output, expected), name


def test_ppm_with_12_bits_is_scaled_to_16(tmp_path):
    pixels = RNG.integers(0, 4096, (6, 5, 3), dtype=np.uint16)
    (tmp_path / "p.ppm").write_bytes(b"P6\n5 6\n4095\n" + pixels.astype(">u2").tobytes())
    assert np.array_equal(read_image(tmp_path / "p.ppm"), np.round(pixels * (65535 / 4095)).astype(np.uint16))


def test_read_picture_keeps_no_profile_for_the_wrong_colour_space(tmp_path, identity):
    """A CMYK JPEG becomes RGB: its CMYK profile would misdescribe the output, so it is dropped."""
    cmyk = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    cmyk = cmyk[:16] + b"CMYK" + cmyk[20:]
    Image.frombytes("CMYK", (24, 20), RNG.integers(0, 256, 20 * 24 * 4, dtype=np.uint8).tobytes()).save(
        tmp_path / "c.jpg", icc_profile=cmyk)
    assert read_picture(tmp_path / "c.jpg").pixels.shape == (20, 24, 3)
    denoise_files(keras.saving.load_model(identity), [tmp_path / "c.jpg"], tmp_path / "out", report=lambda line: None)
    with Image.open(tmp_path / "out" / "c.png") as output:
        assert output.mode == "RGB" and "icc_profile" not in output.info


def test_printable_escapes_what_would_forge_lines():
    assert printable("a\nb\r\x1b[1m" + NOT_UTF8) == "a\\nb\\r\\x1b[1mcaf\\xe9"
    assert printable("ordinary name é.png") == "ordinary name é.png"


def test_split_of_a_name_that_is_not_utf8_is_decided_not_a_crash():
    name = Path(os.fsdecode(b"photo-\xff\xfe.png"))
    assert splits.is_validation_file(name) in (True, False)
    # UTF-8 names keep the split they had before (the same bytes are hashed).
    assert [splits.is_validation_file(Path(f"{i}.jpg")) for i in range(40)].count(True) > 0


def test_train_into_an_empty_out_name_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--data", "sample", "--steps", "1", "--out", ""]) == 2
    err = capsys.readouterr().err
    assert "empty name" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_figures_with_no_usable_run_says_why(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("[1, 2, 3]")
    (run / "metrics.csv").write_text("step,mse,seconds\n1,5,0.1\n")
    assert main(["figures", str(run), "--out", str(tmp_path / "figs")]) == 2
    err = capsys.readouterr().err
    assert "no usable run directory" in err and "config.json" in err.split("nothing to draw")[1]
    assert err.count("\n") == 1
