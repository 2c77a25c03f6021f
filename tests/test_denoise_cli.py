import hashlib
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from stl_denoise.cli import main
from stl_denoise.data import sample_images
from stl_denoise.image_io import read_image


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sixteen_bit_rgb_png(path, height=20, width=20):
    """Pillow cannot write 48-bit PNGs; write a minimal one by hand."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\0" + bytes(6 * width) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
                     + chunk(b"IEND", b""))


@pytest.fixture
def batch(tmp_path):
    photo = sample_images()["astronaut"]
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(photo[:90, :70]).save(folder / "good.png")
    Image.fromarray(photo[:45, :33, 1]).save(folder / "sub" / "grey.jpg")
    Image.fromarray(np.dstack([photo[:40, :40], np.full((40, 40), 77, np.uint8)])).save(folder / "rgba.png")
    Image.fromarray(photo[:30, :30, 0].astype(np.uint16) * 257).save(folder / "grey16.png")
    (folder / "corrupt.png").write_bytes((folder / "good.png").read_bytes()[:150])
    (folder / "text.png").write_text("this is not an image\n")
    (folder / "empty.png").write_bytes(b"")
    Image.fromarray(photo[:1, :1]).save(folder / "tiny.png")
    sixteen_bit_rgb_png(folder / "rgb16.png")
    return folder


def test_bad_inputs_are_reported_and_the_rest_done(batch, tmp_path, random_denoiser_path, capsys):
    before = {path: digest(path) for path in batch.rglob("*") if path.is_file()}
    out = tmp_path / "out"
    code = main(["denoise", "--model", str(random_denoiser_path), str(batch), str(tmp_path / "missing.png"),
                 "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 1
    errors = captured.err.splitlines()
    expected = {"corrupt.png": "not a readable image", "text.png": "not a readable image", "empty.png": "empty file",
                "tiny.png": "1x1", "missing.png": "no such file"}
    assert len(errors) == len(expected)
    for name, problem in expected.items():
        assert any(name in line and problem in line for line in errors), (name, errors)
    assert "Traceback" not in captured.err
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    # no partial or temporary files
    assert written == ["good.png", "grey16.png", "rgb16.png", "rgba.png", "sub", "sub/grey.png"]
    assert Image.open(out / "sub" / "grey.png").mode == "L"
    assert Image.open(out / "grey16.png").mode == "I;16"
    assert read_image(out / "rgb16.png").dtype == np.uint16  # 16-bit colour kept at 16 bits
    assert (np.asarray(Image.open(out / "rgba.png"))[..., 3] == 77).all()
    assert Image.open(out / "good.png").size == (70, 90)
    assert {path: digest(path) for path in batch.rglob("*") if path.is_file()} == before


def test_output_equal_to_input_is_refused(batch, random_denoiser_path, capsys):
    before = digest(batch / "good.png")
    code = main(["denoise", "--model", str(random_denoiser_path), str(batch / "good.png"), "--out", str(batch)])
    err = capsys.readouterr().err
    assert code == 1 and "would overwrite an input" in err and err.count("\n") == 1
    assert digest(batch / "good.png") == before
    assert not any(p.name.startswith(".") for p in batch.iterdir())


def test_all_good_exits_zero_and_tiles_match_one_pass(tmp_path, random_denoiser_path):
    photo = sample_images()["coffee"][:150, :230]
    Image.fromarray(photo).save(tmp_path / "photo.png")
    whole, tiled = tmp_path / "whole", tmp_path / "tiled"
    assert main(["denoise", "--model", str(random_denoiser_path), str(tmp_path / "photo.png"),
                 "--out", str(whole)]) == 0
    assert main(["denoise", "--model", str(random_denoiser_path), str(tmp_path / "photo.png"), "--out", str(tiled),
                 "--tile", "96", "--margin", "32"]) == 0
    a = np.asarray(Image.open(whole / "photo.png")).astype(int)
    b = np.asarray(Image.open(tiled / "photo.png")).astype(int)
    assert np.abs(a - b).max() <= 1  # float rounding can flip a pixel by one level


def test_bad_model_and_tiling_are_one_line_errors(tmp_path, capsys):
    Image.fromarray(sample_images()["coffee"][:32, :32]).save(tmp_path / "a.png")
    assert main(["denoise", "--model", str(tmp_path / "none.keras"), str(tmp_path / "a.png"),
                 "--out", str(tmp_path / "o")]) == 2
    assert "none.keras: no such model file" in capsys.readouterr().err
    (tmp_path / "bad.keras").write_text("nope")
    assert main(["denoise", "--model", str(tmp_path / "bad.keras"), str(tmp_path / "a.png"),
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "bad.keras: not a loadable Keras model" in err and err.count("\n") == 1
    assert main(["denoise", "--tile", "100", str(tmp_path / "a.png"), "--out", str(tmp_path / "o")]) == 2
    assert "multiples of 16" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert main(["denoise", str(tmp_path / "a.png"), "--out", str(tmp_path / "file")]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


class FakeTerminal:
    """A stderr stand-in that says whether it is a terminal and keeps what is written."""

    def __init__(self, terminal):
        self.terminal, self.text = terminal, ""

    def isatty(self):
        return self.terminal

    def write(self, text):
        self.text += text

    def flush(self):
        pass


def identity_model(images, training=False):
    return images


def test_tile_progress_waits_a_few_seconds_and_wipes_its_line():
    from stl_denoise.denoise_files import TileProgress

    now = [0.0]
    terminal = FakeTerminal(True)
    progress = TileProgress(terminal, after=3.0, clock=lambda: now[0])
    progress.start("big.png")
    progress(1, 4)  # a fast image: nothing
    now[0] = 3.5
    progress(2, 4)
    progress.finish()
    assert terminal.text == "\rbig.png: tile 2/4\033[K\r\033[K"
    progress.start("small.png")
    progress(1, 1)
    progress.finish()  # too fast to be shown: nothing to wipe either
    assert terminal.text == "\rbig.png: tile 2/4\033[K\r\033[K"


@pytest.mark.parametrize("self_ensemble, passes", [(False, 1), (True, 8)])
def test_denoise_counts_every_tile_on_a_terminal_only(tmp_path, monkeypatch, self_ensemble, passes):
    from stl_denoise import denoise_files as module
    from stl_denoise.inference import tile_spans

    Image.fromarray(sample_images()["astronaut"][:200, :300]).save(tmp_path / "big.png")
    monkeypatch.setattr(module, "PROGRESS_AFTER", 0.0)
    terminal, pipe = FakeTerminal(True), FakeTerminal(False)
    for index, stream in enumerate((terminal, pipe)):
        written, errors = module.denoise_files(
            identity_model, [tmp_path / "big.png"], tmp_path / f"out{index}", tile=128, margin=32,
            report=lambda line: None, self_ensemble=self_ensemble, progress_stream=stream)
        assert (written, errors) == (1, [])
    total = len(tile_spans(208, 128, 32)) * len(tile_spans(304, 128, 32)) * passes  # padded to 208x304
    name = str(tmp_path / "big.png")
    name = name if len(name) <= 60 else "..." + name[-57:]
    shown = [line for line in terminal.text.split("\r") if line]
    assert total > passes
    assert shown == [f"{name}: tile {done}/{total}\033[K" for done in range(1, total + 1)] + ["\033[K"]
    assert pipe.text == ""  # not a terminal: nothing, however long it takes
