"""The README's commands, as a newcomer would type them on a fresh clone.

Every ```bash block is run by bash itself (loops, ``~`` and variables
expanded as for a user) with ``stl-denoise``, ``make``, ``python``,
``python3``, ``pip``, ``jupyter`` and ``scontrol`` replaced by recorders: no other command
may appear.  Each recorded call is then checked: ``stl-denoise`` lines parse
with the CLI's own parser, ``make`` lines pass ``make -n`` in this checkout,
``pip`` names extras that exist.  The cheap ones -- ``denoise``,
``evaluate``, ``models`` and ``export`` with a shipped model -- are run for
real in a temporary folder (``~`` is a temporary home) on tiny made-up
photos; those that need a trained run first are only parsed.
"""

import configparser
import importlib.util
import shlex
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stl_denoise.cli import build_parser, main
from stl_denoise.folders import IMAGE_SUFFIXES
from stl_denoise.pretrained import SHIPPED

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
RECORDED = ("stl-denoise", "make", "python", "python3", "pip", "jupyter", "scontrol")  # scontrol: the Slurm example
FIELD, CALL = "\x1f", "\x1e"
CHEAP = ("denoise", "evaluate", "models")


def bash_blocks(text):
    """[(line number, code)] of every ```bash block."""
    blocks, lines, start = [], text.splitlines(), None
    for number, line in enumerate(lines, 1):
        if start is None and line.strip() == "```bash":
            start = number
        elif start is not None and line.strip() == "```":
            blocks.append((start, "\n".join(lines[start:number - 1])))
            start = None
    return blocks


@pytest.fixture(scope="module")
def calls(tmp_path_factory):
    """[(block's line, program, args)] for every recorded command of every bash block, in order."""
    root = tmp_path_factory.mktemp("readme")
    fake_bin, home, work = root / "bin", root / "home", root / "work"
    for folder in (fake_bin, home, work / ".venv" / "bin"):
        folder.mkdir(parents=True)
    (work / ".venv" / "bin" / "activate").write_text("")
    for program in RECORDED:
        recorder = fake_bin / program
        recorder.write_text(f"#!/bin/sh\nprintf '%s{FIELD}' {program} \"$@\" >> \"$RECORD\"\n"
                            f"printf '{CALL}' >> \"$RECORD\"\n")
        recorder.chmod(0o755)
    found = []
    for line, code in bash_blocks(README.read_text(encoding="utf-8")):
        record = root / f"calls-{line}"
        record.write_text("")
        shell = subprocess.run(["/bin/bash", "-c", code], cwd=work, capture_output=True, text=True, timeout=60,
                               env={"PATH": str(fake_bin), "HOME": str(home), "RECORD": str(record)})
        assert shell.returncode == 0 and not shell.stderr, f"README.md:{line}: {shell.stderr.strip()}"
        for call in record.read_text().split(CALL)[:-1]:
            program, *args = call.split(FIELD)[:-1]
            found.append((line, program, args))
    return {"calls": found, "home": home, "work": work}


def cli_calls(calls):
    """(line, argv) of every stl-denoise call, ``python -m stl_denoise`` included."""
    for line, program, args in calls:
        if program == "stl-denoise":
            yield line, args
        elif program.startswith("python") and args[:2] == ["-m", "stl_denoise"]:
            yield line, args[2:]


def test_the_first_screen_says_what_to_do():
    first_screen = "\n".join(README.read_text(encoding="utf-8").splitlines()[:25])
    start, code = bash_blocks(first_screen + "\n```")[0]
    assert start <= 6, "the first command block should follow the one-sentence description"
    for command in ("make install", "stl-denoise denoise", "make demo"):
        assert command in code
    assert "docs/reproduction.md" in first_screen and "make test" in first_screen


def test_only_known_programs_are_called_and_the_main_ones_are(calls):
    programs = {program for _, program, _ in calls["calls"]}
    assert {"stl-denoise", "make", "python3", "pip"} <= programs


def test_every_stl_denoise_line_parses(calls):
    lines = list(cli_calls(calls["calls"]))
    assert len(lines) > 10
    for line, argv in lines:
        try:
            build_parser().parse_args(argv)
        except SystemExit as error:
            pytest.fail(f"README.md:{line}: `stl-denoise {shlex.join(argv)}` does not parse (exit {error.code})")


def make_dry_run(*args):
    return subprocess.run(["make", "-n", "--no-print-directory", "-C", str(REPO), *args], capture_output=True,
                          text=True, timeout=60)


def test_every_make_line_passes_a_dry_run(calls):
    lines = [(line, args) for line, program, args in calls["calls"] if program == "make"]
    assert {"install", "test", "demo", "notebook", "figures"} <= {args[0] for _, args in lines if args}
    for line, args in lines:
        dry = make_dry_run(*args)
        assert dry.returncode == 0, f"README.md:{line}: `make {shlex.join(args)}`: {dry.stderr.strip()}"


def test_pip_and_venv_lines_name_what_exists(calls):
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg", encoding="utf-8")
    extras = set(setup["options.extras_require"])
    for line, program, args in calls["calls"]:
        if program == "pip":
            assert args[:2] == ["install", "-e"] and args[2].startswith(".["), f"README.md:{line}: pip {args}"
            assert set(args[2][2:-1].split(",")) <= extras, f"README.md:{line}: unknown extra in {args[2]}"
        elif program == "python3" and args[:1] == ["-m"]:
            assert args[1] in ("venv", "stl_denoise"), f"README.md:{line}: python3 {args}"


def test_examples_write_outside_the_clone_or_into_ignored_folders(calls):
    ignored = {line.strip().strip("/") for line in (REPO / ".gitignore").read_text().splitlines()
               if line.strip().endswith("/")}
    committed_results = {"reports"}  # rewriting the committed reports is what those commands are for
    outputs = [(line, argv[argv.index("--out") + 1]) for line, argv in cli_calls(calls["calls"]) if "--out" in argv]
    outputs += [(line, arg.split("=", 1)[1]) for line, program, args in calls["calls"] if program == "make"
                for arg in args if arg.startswith("OUT=")]
    assert outputs
    for line, out in outputs:
        path = Path(out)
        inside = not path.is_absolute()
        assert not inside or path.parts[0] in ignored | committed_results, f"README.md:{line}: --out {out}"


def tiny_photo(path, seed=0):
    """A small noisy crop of a real photo, in the format its name asks for."""
    from stl_denoise.data import sample_images

    clean = sample_images()["astronaut"][100:148, 180:244].astype(np.float32)
    noisy = np.clip(clean + np.random.default_rng(seed).normal(0, 25, clean.shape), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(noisy).save(path)


def made_up_inputs(argv, cwd):
    """Create the photos and folders a denoise/evaluate example names (a user's own files)."""
    options = build_parser().parse_args(argv)
    names = options.inputs if options.command == "denoise" else [options.images]
    for name in names:
        path = cwd / name
        if path.suffix.lower() in IMAGE_SUFFIXES:
            tiny_photo(path)
        else:
            tiny_photo(path / "one.png")


def test_the_cheap_examples_run_as_written(calls, monkeypatch, capsys):
    work = calls["work"]
    monkeypatch.chdir(work)
    ran = []
    for line, argv in cli_calls(calls["calls"]):
        options = build_parser().parse_args(argv)
        models = getattr(options, "model", None)
        models = [models] if isinstance(models, str) else models or []
        if not all(model in SHIPPED for model in models):
            continue  # needs a trained run first; the README says which
        if options.command not in CHEAP + ("export",):
            continue
        if getattr(options, "pairs", None):
            continue  # needs real noisy/clean pairs (the README names them); tests/test_evaluate.py makes its own
        if options.command in ("denoise", "evaluate"):
            made_up_inputs(argv, work)
        code = main(argv)
        out = capsys.readouterr()
        assert code == 0, f"README.md:{line}: `stl-denoise {shlex.join(argv)}` exited {code}: {out.err}"
        if options.command == "denoise":
            assert list(Path(options.out).rglob("*.png")), f"README.md:{line}: nothing written to {options.out}"
        elif options.command == "evaluate":
            summary = (Path(options.out) / "summary.md").read_text()
            assert "median" in summary or options.baselines == []
        elif options.command == "export":
            assert Path(options.out).exists() and "matches the Keras model" in out.out
        ran.append(options.command)
    assert {"denoise", "evaluate", "models", "export"} <= set(ran), ran


def load_tool():
    spec = importlib.util.spec_from_file_location("installed", REPO / "tools" / "installed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_install_leaves_out_the_test_tools():
    tool = load_tool()
    user = {requirement.name for requirement in tool.requirements(["notebook"])}
    tests = {requirement.name for requirement in tool.requirements(["test"])}
    assert {"pytest", "hypothesis", "bm3d", "tf2onnx", "onnxruntime"} <= tests
    assert not user & {"pytest", "hypothesis", "bm3d", "tf2onnx", "onnxruntime"}
    assert {"notebook", "nbconvert", "tensorflow"} <= user
    assert make_dry_run("install", "PYTHON=python").stdout.strip() == "python -m pip install -e '.[notebook]'"
    assert "pip install -e '.[test]'" in make_dry_run("test").stdout
    ci = (REPO / ".ci" / "run").read_text()
    assert "make install\nmake test" in ci  # CI runs the README's two commands


def test_installed_tells_what_is_missing(capsys):
    tool = load_tool()
    Requirement = type(tool.requirements()[0])
    assert tool.missing(Requirement("pytest>=1")) is None
    assert tool.missing(Requirement("pytest>=9999")).startswith("pytest ")
    assert tool.missing(Requirement("no-such-package-stl-denoise-test")) == \
        "no-such-package-stl-denoise-test (not installed)"
    assert tool.missing(Requirement("no-such-package-stl-denoise-test; python_version < '3'")) is None
    assert tool.main(["test"]) == (0 if importlib.util.find_spec("stl_denoise") else 1)
    with pytest.raises(SystemExit, match="no extra 'nonsense'"):
        tool.requirements(["nonsense"])
    capsys.readouterr()


def test_make_uses_the_check_so_reruns_need_no_network(tmp_path):
    fake_python = tmp_path / "python"
    log = tmp_path / "log"
    # A Python whose every call is logged and whose check says "all there": pip must not run.
    fake_python.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\nexit 0\n")
    fake_python.chmod(0o755)
    subprocess.run(["make", "-s", "--no-print-directory", "-C", str(REPO), "test", f"PYTHON={fake_python}"], check=True,
                   capture_output=True, timeout=60)
    lint = "-m ruff check stl_denoise tests benchmarks"  # the linter runs before the suite
    assert log.read_text().splitlines() == ["tools/installed.py test", lint, "-m pytest -q"]
    # and when the check fails, pip installs the extra before the suite runs
    log.unlink()
    fake_python.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\n[ \"$1\" != tools/installed.py ]\n")
    subprocess.run(["make", "-s", "--no-print-directory", "-C", str(REPO), "test", f"PYTHON={fake_python}"], check=True,
                   capture_output=True, timeout=60)
    assert log.read_text().splitlines() == ["tools/installed.py test", "-m pip install -e .[test]", lint,
                                            "-m pytest -q"]

