"""One runner, configs as data, ``--config`` reruns and the typed run loader (issue 15)."""

import ast
import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import pytest

from stl_denoise import cli
from stl_denoise.config import ClassifierConfig, TrainConfig, field_choices
from stl_denoise.errors import UserError
from stl_denoise.runner import epoch_plan
from stl_denoise.runs import load_run, read_metrics
from stl_denoise.train import train
from stl_denoise.transfer import train_classifier

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(data="sample", steps=7, steps_per_epoch=3, batch_size=2, crop_size=32)


def stl_denoise(*args):
    """The CLI in a fresh process: --deterministic switches TF's op determinism on for the whole process."""
    result = subprocess.run([sys.executable, "-m", "stl_denoise", *map(str, args)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def metric_rows(run_dir):
    """metrics.csv without its wall-clock column."""
    return [{k: v for k, v in row.items() if k != "seconds"} for row in read_metrics(run_dir)]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    train(TrainConfig(**TINY), run_dir, verbose=False)
    return run_dir


def test_epochs_are_steps_per_epoch_long_even_when_steps_are_no_multiple(tiny_run):
    # Before: an epoch was gcd(7, 3) = 1 iteration, so every iteration was backed up.
    assert epoch_plan(4001, 100) == (100, 41)
    assert json.loads((tiny_run / "backup" / "training_metadata.json").read_text())["epoch"] == 3
    assert [int(row["step"]) for row in read_metrics(tiny_run)] == list(range(1, 8))


def test_config_json_records_its_kind_and_loads_typed(tiny_run):
    record = load_run(tiny_run)
    assert json.loads((tiny_run / "config.json").read_text())["kind"] == "denoiser"
    assert record.kind == "denoiser" and record.config == TrainConfig(**TINY)
    assert record.finished and record.figure_role == "dsc"
    assert record.summary["steps"] == 7


def test_records_written_before_kinds_and_new_settings_still_load(tmp_path, tiny_run):
    old = json.loads((tiny_run / "config.json").read_text())
    del old["kind"], old["config"]["noise_mix"]  # as an older version wrote it
    (tmp_path / "config.json").write_text(json.dumps(old))
    record = load_run(tmp_path)
    assert record.kind == "denoiser" and record.config.noise_mix == TrainConfig().noise_mix


def test_every_committed_run_record_loads():
    records = sorted(ROOT.glob("reports/**/config.json"))
    assert records, "reports/ holds the reproduction runs' records"
    kinds = {load_run(path).kind for path in records}
    assert kinds == {"denoiser", "classifier"}


@pytest.mark.parametrize("settings, named", [
    ({"stepz": 3}, "'stepz'"),
    ({"steps": "many"}, "'steps'"),
    ({"gate_factors": [0.1, "x", 0.3, 0.4]}, "'gate_factors'"),
])
def test_a_bad_recorded_setting_is_one_line_naming_file_and_setting(tmp_path, capsys, settings, named):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"kind": "denoiser", "config": settings}))
    assert cli.main(["train", "--config", str(path), "--out", str(tmp_path / "new")]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and str(path) in error and named in error
    assert not (tmp_path / "new").exists()


def test_config_refuses_a_preset_and_the_other_kind_of_run(tmp_path, capsys, tiny_run):
    assert cli.main(["train", "--config", str(tiny_run), "--preset", "modern", "--out", str(tmp_path / "a")]) == 2
    assert "--preset and --config" in capsys.readouterr().err
    assert cli.main(["transfer", "--config", str(tiny_run), "--out", str(tmp_path / "b")]) == 2
    assert "rerun it with `stl-denoise train --config`" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_denoiser_rerun_from_its_config_is_identical_and_overrides_are_recorded(tmp_path):
    first, again, changed = tmp_path / "first", tmp_path / "again", tmp_path / "changed"
    stl_denoise("train", "--data", "sample", "--steps", 6, "--steps-per-epoch", 4, "--batch-size", 2, "--crop-size", 32,
                "--seed", 3, "--deterministic", "--out", first)
    stl_denoise("train", "--config", first / "config.json", "--out", again)
    stl_denoise("train", "--config", first, "--learning-rate", "3e-6", "--out", changed)

    assert metric_rows(again) == metric_rows(first)
    assert load_run(again).config == load_run(first).config
    assert load_run(again).extra["rerun_of"] == {"config": str(first / "config.json"), "changed": {}}
    assert load_run(changed).config == dataclasses.replace(load_run(first).config, learning_rate=3e-6)
    assert load_run(changed).extra["rerun_of"]["changed"] == {"learning_rate": {"recorded": 1e-6, "now": 3e-6}}
    assert metric_rows(changed)[0] == metric_rows(first)[0]  # same start, other updates
    assert metric_rows(changed)[1:] != metric_rows(first)[1:]


def test_classifier_rerun_from_its_config_is_identical(tmp_path):
    first, again = tmp_path / "first", tmp_path / "again"
    stl_denoise("transfer", "--init", "truncnormal", "--data", "digits", "--steps", 6, "--batch-size", 4,
                "--image-size", 32, "--eval-every", 3, "--eval-images", 40, "--deterministic", "--out", first)
    stl_denoise("transfer", "--config", first, "--out", again)
    assert metric_rows(again) == metric_rows(first)
    assert load_run(again).config == load_run(first).config and load_run(first).kind == "classifier"


def test_rerun_refuses_an_init_from_file_that_changed(tmp_path, capsys, tiny_run):
    start = tmp_path / "start.keras"
    shutil.copy(tiny_run / "model.keras", start)
    tuned = tmp_path / "tuned"
    train(TrainConfig(**dict(TINY, steps=2, init_from=str(start))), tuned, verbose=False)
    shutil.copy(tuned / "model.keras", start)  # other weights under the recorded name
    assert cli.main(["train", "--config", str(tuned), "--out", str(tmp_path / "again")]) == 2
    assert "sha256 changed" in capsys.readouterr().err
    assert not (tmp_path / "again").exists()


def test_cli_choices_and_defaults_come_from_the_config_classes(tiny_run):
    parser = cli.build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for command, config_class in (("train", TrainConfig), ("transfer", ClassifierConfig)):
        actions = {action.dest: action for action in commands[command]._actions}
        defaults = config_class()
        for field in dataclasses.fields(config_class):
            if field.name == "init":
                continue
            assert field.name in actions, f"{command} has no flag for {field.name}"
            choices = field_choices(config_class, field.name)
            if choices and field.name != "preset":
                assert actions[field.name].choices is choices, (command, field.name)
            assert actions[field.name].default == getattr(defaults, field.name), (command, field.name)
    # --config makes the recorded run's settings the defaults.
    recorded = load_run(tiny_run)
    train_parser = cli.build_parser(recorded.config, ClassifierConfig(), recorded)
    args = train_parser.parse_args(["train", "--config", str(tiny_run), "--out", "x"])
    assert cli.config_from_args(args) == recorded.config


def test_transfer_takes_the_run_flags_train_has(tmp_path):
    args = cli.build_parser().parse_args(["transfer", "--init", "truncnormal", "--deterministic",
                                          "--jit-compile", "off", "--mixed-precision", "bfloat16",
                                          "--optimizer", "adam", "--out", "x"])
    config = cli.classifier_config_from_args(args, args.init)
    assert (config.deterministic, config.jit_compile, config.mixed_precision, config.optimizer) == \
        (True, "off", "bfloat16", "adam")
    summary = train_classifier(ClassifierConfig(data="digits", steps=2, batch_size=4, image_size=32, eval_images=20,
                                                mixed_precision="bfloat16"), tmp_path / "bf16", verbose=False)
    assert summary["steps"] == 2 and summary["first_cross_entropy"] > 0
    assert keras.config.dtype_policy().name == "float32"  # the run's policy did not leak


def test_one_runner_and_no_private_names_across_modules():
    package = ROOT / "stl_denoise"
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("stl_denoise."):
                private = [alias.name for alias in node.names if alias.name.startswith("_")]
                assert not private, f"{path.name} imports {private} from {node.module}"
    # Only the runner calls fit: both kinds of run go through it.
    fitting = [p.name for p in package.glob("*.py") if ".fit(" in p.read_text()]
    assert fitting == ["runner.py"]


def test_unknown_kind_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"kind": "gan", "config": {}}))
    with pytest.raises(UserError, match="unknown kind of run 'gan'"):
        load_run(tmp_path)


@pytest.mark.parametrize("kind", [["x"], {"a": 1}, 3])
def test_a_kind_that_is_no_name_is_one_line(tmp_path, kind):
    (tmp_path / "config.json").write_text(json.dumps({"kind": kind, "config": {}}))
    with pytest.raises(UserError, match="unknown kind of run"):
        load_run(tmp_path)


def test_numbers_for_init_stddev_survive_the_record():
    config = TrainConfig(init_stddev=0.02).validate()
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_classifier_batch_size_error_comes_before_the_unresolved_steps():
    with pytest.raises(UserError, match="--batch-size must be positive"):
        ClassifierConfig(data="digits", batch_size=0).validate()


def test_classifier_rerun_with_another_batch_makes_one_pass_again(tmp_path):
    recorded = ClassifierConfig(data="digits", batch_size=10).validate().resolved()  # one pass: 180 steps
    run_dir = tmp_path / "recorded"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps({"kind": "classifier", "config": recorded.to_dict()}))

    def rerun(*flags):
        argv = ["transfer", "--config", str(run_dir), *flags, "--out", "x"]
        args = cli.build_parser(*cli.defaults_from_argv(argv)).parse_args(argv)
        return cli.classifier_config_from_args(args, args.init).validate().resolved()

    assert rerun().steps == 180
    assert rerun("--batch-size", "20").steps == 90  # not 180 steps, two passes
    assert rerun("--batch-size", "20", "--steps", "50").steps == 50


def test_config_flag_empty_or_on_other_commands(tmp_path, capsys):
    assert cli.main(["train", "--config", "", "--out", str(tmp_path / "a")]) == 2
    assert "--config is empty" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: evaluate has no --config
        cli.main(["evaluate", "--config", "nowhere", "--images", "x", "--out", str(tmp_path / "b")])
    assert "unrecognized arguments: --config" in capsys.readouterr().err


def test_backups_of_older_versions_with_other_epochs_are_refused(tmp_path, tiny_run):
    old = tmp_path / "old"
    shutil.copytree(tiny_run, old)
    metadata = old / "backup" / "training_metadata.json"
    values = json.loads(metadata.read_text())
    assert values["steps_per_epoch"] == 3
    del values["steps_per_epoch"]  # as versions with gcd(7, 3) = 1 iteration epochs wrote it
    metadata.write_text(json.dumps(values))
    record = (old / "config.json").read_bytes()
    with pytest.raises(UserError, match="counts epochs of 1 iterations"):
        train(TrainConfig(**TINY), old, verbose=False)
    assert (old / "config.json").read_bytes() == record  # refused before anything was written


def test_rerun_refuses_a_data_folder_whose_files_changed(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(folder / name)
    train(TrainConfig(**dict(TINY, data=str(folder), steps=2)), tmp_path / "first", verbose=False)
    Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(folder / "b.png")
    assert cli.main(["train", "--config", str(tmp_path / "first"), "--out", str(tmp_path / "again")]) == 2
    error = capsys.readouterr().err
    assert "sha256 changed" in error and str(folder) in error and "--data" in error
    assert not (tmp_path / "again").exists()


def test_a_classifier_with_warmup_loads_in_a_fresh_process(tmp_path):
    train_classifier(ClassifierConfig(data="digits", steps=2, batch_size=4, image_size=32, eval_images=20,
                                      warmup_steps=1), tmp_path / "warm", verbose=False)
    code = f"import keras, stl_denoise; keras.saving.load_model({str(tmp_path / 'warm' / 'classifier.keras')!r})"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-1500:]


def test_the_readme_code_map_names_every_module():
    readme = (ROOT / "README.md").read_text()
    code_map = readme[readme.index("## Code map"):]
    code_map = code_map[:code_map.index("\n## ", 1)]
    missing = [path.name for path in sorted((ROOT / "stl_denoise").glob("*.py"))
               if path.name not in ("__init__.py", "__main__.py") and f"`{path.name}`" not in code_map]
    assert not missing, f"README code map lacks {missing}"


def test_every_committed_run_record_still_loads_and_reruns_with_config():
    records = sorted((ROOT / "reports").rglob("config.json"))
    assert records, "no committed run records under reports/"
    for path in records:
        recorded = load_run(path)
        command = "train" if recorded.kind == TrainConfig.KIND else "transfer"
        argv = [command, "--config", str(path), "--out", "x"]
        args = cli.build_parser(*cli.defaults_from_argv(argv)).parse_args(argv)
        again = cli.config_from_args(args) if command == "train" else cli.classifier_config_from_args(args, args.init)
        assert again == recorded.config, path
