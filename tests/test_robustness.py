"""Regressions for issue 22, "One writer per run folder, clean stops on every signal, odd environments".

One test (or a few) per case the issue lists: two runs into one folder,
SIGTERM mid-run (training and ``denoise``), a terminal that cannot print a
name, a PNG whose colour profile Pillow refuses, a full disk, and degenerate
``evaluate`` settings.  Each runs the real CLI entry point, in-process where
it can and in a child process where a signal or a second process is the
point.
"""

import errno
import io
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from stl_denoise.cli import main
from stl_denoise.errors import os_error_line
from stl_denoise.io import atomic_path
from stl_denoise.metrics import psnr
from stl_denoise.runs import LOCK_FILE, load_run, read_metrics, run_folder_lock

ROOT = Path(__file__).parent.parent
TRAIN = ["train", "--data", "sample", "--batch-size", "4", "--crop-size", "32"]
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def start(argv, **options):
    """The CLI in a child process (this checkout first on the path), stdout and stderr captured."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen([sys.executable, "-m", "stl_denoise", *map(str, argv)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT, **options)


def wait_for(condition, process, timeout=240):
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"ended before the test could act: {process.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def rows(run_dir):
    path = Path(run_dir) / "metrics.csv"
    return max(path.read_text().count("\n") - 1, 0) if path.exists() else 0


def photo(path, height=40, width=48, seed=0, **save):
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, **save)
    return path


# --- 1. one writer per run folder ------------------------------------------------------

def test_a_second_run_into_a_folder_is_refused_and_the_first_ends_intact(tmp_path, capsys):
    run_dir = tmp_path / "run"
    argv = [*TRAIN, "--steps", "30", "--steps-per-epoch", "10", "--out", run_dir]
    first = start(argv)
    wait_for(lambda: rows(run_dir) >= 10, first)  # training, its lock held
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err.splitlines()
    assert code == 2
    assert err == [f"stl-denoise: error: {run_dir}: another run (process {first.pid}) is writing this run folder; "
                   "wait for it to end, or choose another --out"]
    assert first.wait(timeout=300) == 0, first.stderr.read()
    # The record is the first run's alone: every step once, the summary computed from those rows.
    metrics = read_metrics(run_dir)
    assert [int(r["step"]) for r in metrics] == list(range(1, 31))
    mse = [float(r["mse"]) for r in metrics]
    assert load_run(run_dir).summary["final_mse_mean_last_100"] == pytest.approx(np.mean(mse), abs=0.01)


@pytest.mark.parametrize("argv", [
    ["transfer", "--init", "truncnormal", "--data", "digits", "--steps", "2", "--batch-size", "4",
     "--image-size", "32"],
    ["pretrain-classify", "--data", "digits", "--steps", "2", "--batch-size", "4", "--image-size", "32",
     "--pretrained", "PRETRAINED"],
    ["demo", "--steps", "2", "--batch-size", "4", "--crop-size", "32"],
], ids=["transfer", "pretrain-classify", "demo"])
def test_every_training_command_refuses_a_folder_being_written(tmp_path, capsys, argv):
    """transfer, pretrain-classify and demo share the runner: its lock refuses them before any work."""
    if "PRETRAINED" in argv:  # a real denoiser run for the pretrained classifier
        pretrained = tmp_path / "dsc"
        assert main([*TRAIN, "--steps", "2", "--crop-size", "64", "--out", str(pretrained)]) == 0
        argv = [str(pretrained) if a == "PRETRAINED" else a for a in argv]
    out = tmp_path / "out"
    held = {"transfer": out, "pretrain-classify": out / "truncnormal", "demo": out / "dsc"}[argv[0]]
    capsys.readouterr()
    with run_folder_lock(held):  # another open of the file: flock refuses it even within this process
        code = main([*argv, "--out", str(out)])
    err = capsys.readouterr().err.splitlines()
    assert code == 2 and len(err) == 1, err
    assert f"{held}: another run (process {os.getpid()}) is writing this run folder" in err[0]
    assert sorted(p.name for p in held.iterdir()) == [LOCK_FILE]  # nothing written beside the lock


def test_a_lock_left_by_a_killed_process_does_not_block(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        f"handle = open({str(run_dir / LOCK_FILE)!r}, 'a+')\n"
        "fcntl.flock(handle, fcntl.LOCK_EX)\n"
        "handle.write(str(os.getpid())); handle.flush()\n"
        "print('locked', flush=True); time.sleep(300)\n")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "locked\n"
    argv = [*TRAIN, "--steps", "2", "--out", str(run_dir)]
    assert main(argv) == 2
    assert f"(process {holder.pid})" in capsys.readouterr().err
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert main(argv) == 0  # the kernel dropped the dead process's lock
    assert [int(r["step"]) for r in read_metrics(run_dir)] == [1, 2]


# --- 2. SIGTERM stops as Ctrl-C does -----------------------------------------------------

def test_sigterm_stops_training_cleanly_and_the_rerun_resumes(tmp_path):
    run_dir = tmp_path / "run"
    argv = [*TRAIN, "--steps", "30", "--steps-per-epoch", "5", "--out", run_dir]
    process = start(argv)
    wait_for(lambda: rows(run_dir) >= 10, process)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM
    assert err.splitlines() == ["stl-denoise: terminated (SIGTERM); run the same command again to resume"]
    backup = json.loads((run_dir / "backup" / "training_metadata.json").read_text())
    assert backup["epoch"] >= 1 and (run_dir / "backup" / backup["weights"]).is_file()
    assert not [p for p in run_dir.rglob(".*") if p.name != LOCK_FILE]  # no temporary left

    assert main([str(a) for a in argv]) == 0
    assert [int(r["step"]) for r in read_metrics(run_dir)] == list(range(1, 31))


def test_sigterm_mid_batch_leaves_no_temporary_file(tmp_path, random_denoiser_path):
    inputs = [photo(tmp_path / f"big{i}.png", 700, 900, seed=i) for i in range(5)]
    out = tmp_path / "out"
    process = start(["denoise", "--model", random_denoiser_path, *inputs, "--out", out])
    first_line = process.stdout.readline()  # big0 written: the next one is being denoised
    assert first_line.startswith(str(inputs[0])), process.communicate()[1][-2000:]
    assert process.poll() is None, "ended before the test could act"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM
    assert err.splitlines()[-1] == "stl-denoise: terminated (SIGTERM); run the same command again to resume"
    written = sorted(p.name for p in out.iterdir())
    assert not [name for name in written if name.startswith(".")], written  # no .big1.xxxx.png
    assert written and written == [f"big{i}.png" for i in range(len(written))]
    for name in written:
        with Image.open(out / name) as image:
            image.load()


# --- 3. printing never fails -------------------------------------------------------------

def test_a_terminal_that_cannot_print_a_name_gets_it_escaped(tmp_path, random_denoiser_path, monkeypatch):
    """PYTHONIOENCODING=ascii: a name with an é is escaped, not a UnicodeEncodeError after the work."""
    streams = {name: io.TextIOWrapper(io.BytesIO(), encoding="ascii") for name in ("stdout", "stderr")}
    for name, stream in streams.items():
        monkeypatch.setattr(sys, name, stream)
    source = photo(tmp_path / "a.png")
    code = main(["denoise", "--model", str(random_denoiser_path), str(source), str(tmp_path / "manquée.png"),
                 "--out", str(tmp_path / "sortie_é")])
    for stream in streams.values():
        stream.flush()
    out, err = (streams[name].buffer.getvalue().decode("ascii") for name in ("stdout", "stderr"))
    assert code == 1  # manquée.png does not exist
    assert f"-> {tmp_path}/sortie_\\xe9/a.png" in out and "sortie_\\xe9" in out.splitlines()[-1]
    assert err == f"stl-denoise: error: {tmp_path}/manqu\\xe9e.png: no such file or directory\n"
    assert (tmp_path / "sortie_é" / "a.png").is_file()


# --- 4. outputs open in the common readers -------------------------------------------------

def test_a_padded_3_mb_icc_profile_is_cut_to_its_declared_size(tmp_path, random_denoiser_path, capsys):
    source = photo(tmp_path / "a.jpg", icc_profile=SRGB + bytes(3_000_000), quality=95)
    code = main(["denoise", "--model", str(random_denoiser_path), str(source), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.splitlines()
    assert code == 0
    assert len(err) == 1 and err[0].startswith(f"stl-denoise: note: {source}: its ICC colour profile was cut to "
                                               f"the {len(SRGB):,} bytes its header declares"), err
    with Image.open(tmp_path / "out" / "a.png") as output:
        output.load()  # raised "Decompressed data too large" before
        assert output.info["icc_profile"] == SRGB


def test_a_genuinely_oversized_icc_profile_is_left_out_with_a_note(tmp_path, random_denoiser_path, capsys):
    big = bytearray(SRGB + bytes(1_200_000))
    big[:4] = len(big).to_bytes(4, "big")  # its header declares the whole size: nothing to cut
    source = photo(tmp_path / "b.tif", icc_profile=bytes(big))
    assert main(["denoise", "--model", str(random_denoiser_path), str(source), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and f"{len(big):,}-byte ICC colour profile was left out of" in err[0], err
    with Image.open(tmp_path / "out" / "b.png") as output:
        output.load()
        assert "icc_profile" not in output.info


# --- 5. a full disk names the file and the fix -----------------------------------------------

def test_a_full_disk_during_training_names_the_file_and_the_rerun_resumes(tmp_path, capsys, monkeypatch):
    run_dir = tmp_path / "run"
    argv = [*TRAIN, "--steps", "4", "--steps-per-epoch", "2", "--out", str(run_dir)]
    real_statvfs = os.statvfs

    def full(path):  # the file system run_dir is on has no free blocks left
        usage = real_statvfs(path)
        if Path(path).resolve().is_relative_to(run_dir.resolve()):
            return os.statvfs_result((*usage[:3], 0, 0, *usage[5:]))
        return usage

    monkeypatch.setattr(os, "statvfs", full)
    assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    backup = run_dir / "backup" / "epoch-1.weights.h5"
    assert err == [f"stl-denoise: error: {backup}: No space left on device; free space on that disk (or choose an "
                   "--out on another) and run the same command again: nothing half-written is left, and a training "
                   "run resumes from its last backup"]
    assert not list((run_dir / "backup").iterdir())  # no half-written backup
    monkeypatch.setattr(os, "statvfs", real_statvfs)
    assert main(argv) == 0
    assert [int(r["step"]) for r in read_metrics(run_dir)] == [1, 2, 3, 4]


def test_a_write_that_fails_for_space_names_its_file_in_one_line(tmp_path):
    target = tmp_path / "metrics.csv"
    with pytest.raises(OSError) as caught:
        with atomic_path(target), open("/dev/full", "wb") as full:  # Linux's always-full device
            full.write(b"x" * 100_000)
            full.flush()
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(target)
    assert list(tmp_path.iterdir()) == []
    # h5py's ENOSPC carries a page of detail in strerror: one line is shown.
    h5py_style = OSError(errno.ENOSPC, "Can't synchronously write data (file write failed: time = ...\n, "
                                       "errno = 28, error message = 'No space left on device')", "b.weights.h5")
    line = os_error_line(h5py_style)
    assert "\n" not in line and line.startswith("b.weights.h5: No space left on device; free space on that disk")


# --- 6. degenerate settings print nothing unasked ------------------------------------------

def test_a_vanishing_sigma_prints_no_library_warning_and_shows_inf(tmp_path, random_denoiser_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    pixels = np.random.default_rng(3).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    pixels[:8] = 0  # 0 + 1e-300 noise differs from 0, but its square underflows: MSE 0
    Image.fromarray(pixels).save(images / "a.png")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(["evaluate", "--model", str(random_denoiser_path), "--images", str(images), "--sigma", "1e-300",
                     "--baselines", "median", "--out", str(tmp_path / "report")])
    out, err = capsys.readouterr()
    assert code == 0
    assert not [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert "Warning" not in err
    assert "| 1e-300 | 0 | noisy input | inf | 1.0000 |" in out
    assert "PSNR inf: no error at all (mean squared error 0)" in out
    assert psnr(pixels, pixels + 1e-300) == float("inf")
