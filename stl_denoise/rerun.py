"""``--config RUN``: a recorded run's settings become the defaults of a new run (BasicSR/KAIR's options file).

The command line's flags override them (the CLI parses the flags with these
defaults); the new run records what changed (``runner.rerun_entry``).  A
classifier whose recorded length was the default, one pass over its images,
makes one pass again when a setting that decides that length changes.
"""

import dataclasses

from stl_denoise.checks import check_name_given
from stl_denoise.config import PRESETS, ClassifierConfig, TrainConfig
from stl_denoise.errors import UserError
from stl_denoise.runs import load_run

RERUNNABLE_COMMANDS = ("train", "transfer")  # the commands that take --config
COMMAND_OF_KIND = {TrainConfig.KIND: "train", ClassifierConfig.KIND: "transfer"}
# A classifier's default length, one pass over its training images, depends on these.
ONE_PASS_SETTINGS = ("batch_size", "data", "labelled_split")


def command_defaults(command, preset=None, config=None):
    """(denoiser defaults, classifier defaults, recorded run or None) for ``command`` with ``--preset``/``--config``.

    ``preset`` chooses the denoiser's defaults; ``config`` (a run folder or its
    config.json) makes the recorded run's settings the defaults instead.
    """
    train_defaults, classifier_defaults = PRESETS[preset or "faithful"], ClassifierConfig()
    if config is None or command not in RERUNNABLE_COMMANDS:  # the others refuse the flag
        return train_defaults, classifier_defaults, None
    check_name_given(config, "--config", "a run folder or its config.json")
    if preset:
        raise UserError("--preset and --config: the recorded run names its preset; change single settings "
                        "with their flags instead")
    recorded = load_run(config)
    if recorded.kind == TrainConfig.KIND:
        return recorded.config, classifier_defaults, recorded
    return train_defaults, recorded.config, recorded


def check_recorded_kind(recorded, kind):
    """``train --config`` takes denoiser runs, ``transfer --config`` classifier runs."""
    if recorded is not None and recorded.kind != kind:
        raise UserError(f"{recorded.path / 'config.json'}: a {recorded.kind} run; rerun it with "
                        f"`stl-denoise {COMMAND_OF_KIND[recorded.kind]} --config`")


def settings_of(config_class, values):
    """The entries of ``values`` (e.g. parsed flags) that are settings of ``config_class``."""
    fields = {f.name for f in dataclasses.fields(config_class)}
    return {name: value for name, value in values.items() if name in fields}


def train_config(values):
    return TrainConfig(**settings_of(TrainConfig, values))


def classifier_config(values, init, recorded=None):
    """The classifier config of ``values`` (``init`` given apart), its one-pass length resolved anew when due."""
    config = ClassifierConfig(**{**settings_of(ClassifierConfig, values), "init": init})
    if (recorded is not None and recorded.kind == config.KIND and config.steps == recorded.config.steps
            and recorded.config.steps == recorded.config.one_pass_steps()
            and any(getattr(config, name) != getattr(recorded.config, name) for name in ONE_PASS_SETTINGS)):
        # The recorded steps were "one pass" resolved for the recorded batch and data: resolve them anew.
        config.steps = None
    return config
