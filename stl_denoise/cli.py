"""Command line: one subcommand per user task (``stl-denoise --help``)."""

import argparse
import dataclasses
import sys
from pathlib import Path

from stl_denoise.config import MODELS, PRESETS, TRUNCNORMAL, ClassifierConfig, TrainConfig, field_choices
from stl_denoise.errors import UserError

DEFAULTS = TrainConfig()


def _gate_factors(text):
    try:
        values = tuple(float(v) for v in text.replace(",", " ").split())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 4 numbers like 0.1,0.2,0.3,0.4, got {text!r}") from None
    return values


def _setting(defaults, name):
    """A flag's default (from ``defaults``: a preset or a recorded run) and its choices (from the config class)."""
    options = {"default": getattr(defaults, name)}
    choices = field_choices(type(defaults), name)
    if choices:
        options["choices"] = choices
    return options


def add_run_arguments(parser, defaults):
    """The run, optimiser and architecture sections shared by ``train`` and the classifier commands."""
    add = parser.add_argument
    add("--data-dir", **_setting(defaults, "data_dir"),
        help="TFDS data dir for stl10 (default: $TFDS_DATA_DIR or ~/tensorflow_datasets)")
    add("--batch-size", type=int, **_setting(defaults, "batch_size"),
        help="global batch (default %(default)s, paper §4.2; split across replicas)")
    add("--seed", type=int, **_setting(defaults, "seed"))
    add("--steps-per-epoch", type=int, **_setting(defaults, "steps_per_epoch"),
        help="iterations between backups, checkpoints and TensorBoard writes (default %(default)s)")
    add("--deterministic", action=argparse.BooleanOptionalAction, **_setting(defaults, "deterministic"),
        help="deterministic TF ops: same seed gives identical metrics.csv (slower)")
    add("--strategy", **_setting(defaults, "strategy"),
        help="tf.distribute over all GPUs (mirrored) or TF_CONFIG workers (multiworker)")
    add("--mixed-precision", **_setting(defaults, "mixed_precision"),
        help="compute in float16 (GPUs; loss scaling automatic) or bfloat16, weights and loss in float32 "
             "(default off: float32, as the paper)")
    add("--jit-compile", **_setting(defaults, "jit_compile"),
        help="XLA for the train step; auto = on with a GPU, off on CPU where it is slower (default)")
    add("--optimizer", **_setting(defaults, "optimizer"), help="default %(default)s")
    add("--learning-rate", type=float, **_setting(defaults, "learning_rate"),
        help="learning rate (default %(default)g)")
    add("--momentum", type=float, **_setting(defaults, "momentum"),
        help="SGD momentum (default %(default)g: plain SGD)")
    add("--clip-norm", type=float, **_setting(defaults, "clip_norm"), help="clip gradient norm (off by default)")
    add("--lr-schedule", **_setting(defaults, "lr_schedule"),
        help="cosine: decay the learning rate to 0 over --steps (default %(default)s)")
    add("--warmup-steps", type=int, **_setting(defaults, "warmup_steps"),
        help="ramp the learning rate linearly from 0 over the first N steps, e.g. when fine-tuning "
             "(default %(default)s)")
    add("--bottleneck-channels", type=int, **_setting(defaults, "bottleneck_channels"),
        help="conv5 width (default %(default)s; Table 1 prints 518; a classifier must match its denoiser)")
    add("--kernel-size", type=int, **_setting(defaults, "kernel_size"), help="default %(default)s (paper gives none)")
    add("--init-stddev", **_setting(defaults, "init_stddev"),
        help="truncated-normal std: 'he' = sqrt(2/fan_in) (default) or a number such as 0.1")


def add_config_argument(parser):
    parser.add_argument("--config", metavar="RUN", default=None,
                        help="rerun a recorded run: its folder or config.json gives every setting; flags given "
                             "beside it override them and are recorded")


def add_train_arguments(parser, defaults=DEFAULTS):
    add = parser.add_argument
    add("--model", **_setting(defaults, "model"),
        help="dsc: with the 4 gated connections; plain: the same net with them off")
    add("--data", **_setting(defaults, "data"),
        help="stl10 | sample | PATH to a folder of images (default %(default)s)")
    add("--steps", type=int, **_setting(defaults, "steps"), help="iterations (default %(default)s, paper §4.2)")
    add("--crop-size", type=int, **_setting(defaults, "crop_size"),
        help="training crop side, multiple of 16 (default %(default)s)")
    add("--resize-short-side", type=int, **_setting(defaults, "resize_short_side"), metavar="N",
        help="resize every training image so its shorter side is N px before cropping (default: as they are; "
             "96 mimics STL-10's 96x96 with photos, docs/reproduction.md)")
    add("--gate-factors", type=_gate_factors, **_setting(defaults, "gate_factors"),
        help="δ for conv1..conv4 (default 0.1,0.2,0.3,0.4, paper §4.2)")
    add("--gate-reading", **_setting(defaults, "gate_reading"),
        help="equations: δ forward, 1-δ across (§3.1, default); text: the reverse (§4.2 prose)")
    add("--sigma", type=float, **_setting(defaults, "sigma"),
        help="Gaussian noise std, 0-255 scale (default %(default)g)")
    add("--salt-pepper", type=float, **_setting(defaults, "salt_pepper"),
        help="fraction of pixels set to 0/255 (default %(default)g)")
    add("--loss", **_setting(defaults, "loss"),
        help="mse: pixel MSE (default, §3.2); perceptual: squared L2 between classifier features (§4.2)")
    add("--perceptual-classifier", **_setting(defaults, "perceptual_classifier"),
        help="classifier run directory whose 1024-d features define the perceptual loss")
    add_run_arguments(parser, defaults)
    add_modern_arguments(parser, defaults)


def add_modern_arguments(parser, defaults):
    """The switches of ``--preset modern`` beside the optimiser's; each one also works on its own."""
    add = parser.add_argument
    add("--preset", choices=sorted(PRESETS), default=defaults.preset,
        help="faithful: the paper's recipe (default); modern: the defaults below switched to current practice "
             "(README, 'Modern preset')")
    add("--input-range", type=float, **_setting(defaults, "input_range"),
        help="the network sees pixels scaled to [0, N]; models always take/return 0-255 (default %(default)g)")
    add("--output-activation", **_setting(defaults, "output_activation"),
        help="activation of deconv5 (default %(default)s)")
    add("--residual", action=argparse.BooleanOptionalAction, **_setting(defaults, "residual"),
        help="global residual: add the input to the output (default %(default)s)")
    add("--zero-init-output", action=argparse.BooleanOptionalAction, **_setting(defaults, "zero_init_output"),
        help="start deconv5's kernel at zero: with --residual the model starts as the identity "
             "(default %(default)s)")
    add("--sigma-max", type=float, **_setting(defaults, "sigma_max"),
        help="blind training: sigma drawn per image from [--sigma, --sigma-max] (default: fixed --sigma)")
    add("--clip-noise", action=argparse.BooleanOptionalAction, **_setting(defaults, "clip_noise"),
        help="clip noisy pixels to [0, 255] (default %(default)s; the benchmark protocol does not clip)")
    add("--salt-pepper-max", type=float, **_setting(defaults, "salt_pepper_max"),
        help="blind impulse noise: the salt-and-pepper fraction drawn per image from [--salt-pepper, this] "
             "(default: fixed --salt-pepper)")
    add("--noise-mix", **_setting(defaults, "noise_mix"),
        help="both: every crop gets the Gaussian and the salt-and-pepper noise (paper §3.2); mixed: each crop "
             "gets the Gaussian only, the impulse only or both, a third each (default %(default)s)")
    add("--eight-bit-share", type=float, **_setting(defaults, "eight_bit_share"),
        help="share of noisy crops clipped to [0, 255] and rounded, as a saved 8-bit file is (default %(default)g)")
    add_camera_noise_arguments(parser, defaults)
    add("--data-split", **_setting(defaults, "data_split"),
        help="for a folder: all files, or the fixed ~90%% train / ~10%% validation split (default %(default)s)")
    add("--init-from", **_setting(defaults, "init_from"), metavar="MODEL",
        help="fine-tune: start from this denoiser's weights (a shipped name such as dsc-modern-blind, a .keras "
             "file or a run folder) instead of a fresh initialisation; the architecture flags must match it")


def add_camera_noise_arguments(parser, defaults):
    """The camera noise model's settings (``stl_denoise/noise.py``; README, "Real photographs")."""
    add = parser.add_argument
    add("--camera-share", type=float, **_setting(defaults, "camera_share"),
        help="share of crops given a camera's noise (shot + read noise on linear raw values, Bayer demosaic, "
             "white balance, sRGB curve) instead of the Gaussian/salt-and-pepper noise (default %(default)g)")
    add("--camera-white-balance", action=argparse.BooleanOptionalAction, **_setting(defaults, "camera_white_balance"),
        help="camera noise: per-channel levels through white-balance gains (default %(default)s)")
    add("--camera-bayer", action=argparse.BooleanOptionalAction, **_setting(defaults, "camera_bayer"),
        help="camera noise: drawn on a Bayer mosaic and spread to neighbours by a bilinear demosaic "
             "(default %(default)s)")
    add("--camera-tone-curve", action=argparse.BooleanOptionalAction, **_setting(defaults, "camera_tone_curve"),
        help="camera noise: added to linear intensities, then the sRGB tone curve (default %(default)s)")
    add("--jpeg-share", type=float, **_setting(defaults, "jpeg_share"),
        help="share of noisy crops (any noise) saved as a JPEG (default %(default)g)")
    add("--jpeg-quality-min", type=int, **_setting(defaults, "jpeg_quality_min"),
        help="JPEG quality drawn per crop from [min, max] (default %(default)s)")
    add("--jpeg-quality-max", type=int, **_setting(defaults, "jpeg_quality_max"),
        help="(default %(default)s)")


RERUNNABLE_COMMANDS = ("train", "transfer")


def defaults_from_argv(argv):
    """(denoiser defaults, classifier defaults, recorded run or None) for this command line.

    ``--preset`` chooses the denoiser's defaults; ``--config RUN`` makes the
    recorded run's settings the defaults, so that any flag given beside it
    overrides them.
    """
    from stl_denoise.runs import load_run

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--preset", choices=sorted(PRESETS), default=None)
    pre.add_argument("--config", default=None)
    known, _ = pre.parse_known_args(argv)
    train_defaults, classifier_defaults = PRESETS[known.preset or "faithful"], ClassifierConfig()
    if known.config is None or not argv or argv[0] not in RERUNNABLE_COMMANDS:  # others refuse the flag
        return train_defaults, classifier_defaults, None
    if not known.config:  # Path("") is the current folder
        raise UserError("--config is empty; name a run folder or its config.json")
    if known.preset:
        raise UserError("--preset and --config: the recorded run names its preset; change single settings "
                        "with their flags instead")
    recorded = load_run(known.config)
    if recorded.kind == TrainConfig.KIND:
        return recorded.config, classifier_defaults, recorded
    return train_defaults, recorded.config, recorded


def check_recorded_kind(args, kind):
    """``train --config`` takes denoiser runs, ``transfer --config`` classifier runs."""
    if args.config and args.recorded.kind != kind:
        command = "train" if args.recorded.kind == TrainConfig.KIND else "transfer"
        raise UserError(f"{args.config}: a {args.recorded.kind} run; rerun it with `stl-denoise {command} --config`")


def rerun_of(args):
    """The recorded run that ``--config`` repeats, or None."""
    return args.recorded if args.config else None


def _settings_from_args(config_class, args):
    """The parsed flags that are settings of ``config_class``."""
    fields = {f.name for f in dataclasses.fields(config_class)}
    return {name: value for name, value in vars(args).items() if name in fields}


def config_from_args(args):
    return TrainConfig(**_settings_from_args(TrainConfig, args))


def cmd_train(args):
    from stl_denoise.runner import tail_key
    from stl_denoise.train import train

    check_recorded_kind(args, TrainConfig.KIND)
    config = config_from_args(args)
    summary = train(config, args.out, rerun_of=rerun_of(args))
    print(f"saved {Path(args.out) / config.MODEL_FILE}; mean MSE of the last 100 steps "
          f"{summary[tail_key('final_mse_mean')]}, {summary['median_images_per_second']} images/s")


def cmd_demo(args):
    from stl_denoise.plots import plot_mse_comparison
    from stl_denoise.runner import tail_key
    from stl_denoise.train import train

    runs = {}
    for model in MODELS:
        config = dataclasses.replace(config_from_args(args), model=model)
        run_dir = f"{args.out}/{model}"
        print(f"== training {model} on {config.data} for {config.steps} steps -> {run_dir}")
        runs[model] = (run_dir, train(config, run_dir))
    from stl_denoise.distribute import writes_shared_files

    if not writes_shared_files(args.strategy):  # a multi-worker run's other workers: the chief draws
        return
    plot_path = f"{args.out}/mse_dsc_vs_plain.png"
    # Like Fig. 6, leave out the first tenth: the opening swings (~4e5) flatten the rest.
    plot_mse_comparison(runs["dsc"][0], runs["plain"][0], plot_path, skip_first=args.steps // 10)
    for model, (_, summary) in runs.items():
        print(f"{model}: mean MSE of the last 100 steps {summary[tail_key('final_mse_mean')]} "
              f"(first step {summary['first_mse']}), {summary['median_images_per_second']} images/s")
    print(f"wrote {plot_path}")
    from stl_denoise.figures import FIGURES, draw_figures

    results = draw_figures([runs["dsc"][0], runs["plain"][0]], f"{args.out}/figures")
    print(f"wrote {', '.join(f for f in FIGURES if 'skipped' not in results[f])} to {args.out}/figures "
          f"({args.out}/figures/figures.md says what each shows)")


def cmd_download_stl10(args):
    from stl_denoise.stl10 import stl10_builder

    builder = stl10_builder(args.data_dir)
    print(f"STL-10 is prepared in {builder.data_dir}")


# --- classifier and transfer (paper §4.2-§4.3, Table 2) -------------------------------

def add_classifier_arguments(parser, defaults):
    add = parser.add_argument
    add("--data", **_setting(defaults, "data"),
        help="stl10: STL-10's labelled splits (default); digits: scikit-learn's bundled digits, offline")
    add("--labelled-split", **_setting(defaults, "labelled_split"),
        help="paper: train on train+test (13k), report on test, as published (default); "
             "standard: train on train (5k), report on the held-out test (8k)")
    add("--steps", type=int, **_setting(defaults, "steps"),
        help="iterations (default: one pass over the training images)")
    add("--image-size", type=int, **_setting(defaults, "image_size"),
        help="input side, multiple of 16 (default %(default)s)")
    add("--dropout", type=float, **_setting(defaults, "dropout"),
        help="dropout after the 1024-unit layer (default %(default)g)")
    add("--eval-every", type=int, **_setting(defaults, "eval_every"),
        help="iterations between held-out accuracy checks")
    add("--eval-images", type=int, **_setting(defaults, "eval_images"),
        help="cap on evaluation images (default %(default)s)")
    add_run_arguments(parser, defaults)


def classifier_config_from_args(args, init):
    config = ClassifierConfig(**{**_settings_from_args(ClassifierConfig, args), "init": init})
    recorded = rerun_of(args) if hasattr(args, "config") else None
    if (recorded is not None and recorded.kind == config.KIND and config.steps == recorded.config.steps
            and recorded.config.steps == recorded.config.one_pass_steps()
            and any(getattr(config, name) != getattr(recorded.config, name) for name in ONE_PASS_SETTINGS)):
        # The recorded steps were "one pass" resolved for the recorded batch and data: resolve them anew.
        config.steps = None
    return config


# A classifier's default length, one pass over its training images, depends on these.
ONE_PASS_SETTINGS = ("batch_size", "data", "labelled_split")


def _accuracy_line(label, summary):
    from stl_denoise.runner import tail_key

    return (f"{label}: evaluation accuracy {summary['final_eval_accuracy']:.3f} at step {summary['steps']}, "
            f"batch accuracy (mean of the last 100 steps) {summary[tail_key('batch_accuracy_mean')]:.3f}, "
            f"cross-entropy {summary['first_cross_entropy']:.3g} -> {summary[tail_key('cross_entropy_mean')]:.3g}")


def cmd_transfer(args):
    from stl_denoise.transfer import train_classifier

    check_recorded_kind(args, ClassifierConfig.KIND)
    if args.init is None:
        raise UserError("transfer needs --init (truncnormal or a denoiser run directory), or --config RUN")
    config = classifier_config_from_args(args, args.init)
    summary = train_classifier(config, args.out, rerun_of=rerun_of(args))
    print(f"saved {Path(args.out) / config.MODEL_FILE}")
    print(_accuracy_line(args.init, summary))


def cmd_pretrain_classify(args):
    from stl_denoise.transfer import pretrain_classify

    summaries, plot_path = pretrain_classify(classifier_config_from_args(args, TRUNCNORMAL), args.pretrained, args.out)
    for label, summary in summaries.items():
        print(_accuracy_line(label, summary))
    print(f"wrote {plot_path}")


def add_classifier_commands(sub, defaults=None, recorded=None):
    defaults = defaults or ClassifierConfig()
    transfer = sub.add_parser("transfer", help="train the Table 2 classifier from truncated-normal or denoiser weights (§4.3)")
    # Required unless --config names a recorded classifier run, which then gives it.
    transfer.add_argument("--init", default=recorded.config.init if recorded and recorded.kind == defaults.KIND else None,
                          help="truncnormal, or a denoiser run directory whose conv1..conv5 initialise the classifier")
    add_classifier_arguments(transfer, defaults)
    add_config_argument(transfer)
    transfer.add_argument("--out", required=True, help="run directory (created; rerun to resume)")
    transfer.set_defaults(func=cmd_transfer, recorded=recorded)

    both = sub.add_parser("pretrain-classify",
                          help="classifier from truncated normal and from a denoiser, same schedule; comparison plot")
    both.add_argument("--pretrained", default="runs/dsc", help="denoiser run directory (default %(default)s)")
    add_classifier_arguments(both, ClassifierConfig())
    both.add_argument("--out", default="runs/classify", help="writes OUT/truncnormal, OUT/pretrained and a plot")
    both.set_defaults(func=cmd_pretrain_classify)


# --- the whole paper at full length (docs/reproduction.md) ---------------------------------

def cmd_reproduce(args):
    from stl_denoise.reproduce import Lengths, reproduce

    lengths = Lengths(full=args.steps, perceptual=args.perceptual_steps, ablation=args.ablation_steps,
                      sweep=args.sweep_steps, classifier=args.classifier_steps)
    report = reproduce(args.out, data=args.data, data_dir=args.data_dir, lengths=lengths, groups=args.groups,
                       only=args.only)
    print(f"wrote {report}")


def add_reproduce_command(sub):
    from stl_denoise.reproduce import GROUPS, Lengths

    lengths = Lengths()
    command = sub.add_parser("reproduce", help="every experiment of the paper at its length, then Figs. 4-11 and "
                                               "a report (resumable: rerun to continue)")
    add = command.add_argument
    add("--data", default="stl10", help="stl10 (the paper's), sample, or a folder of photos (resized to a 96 px "
                                        "shorter side, train split only; the classifier then uses digits)")
    add("--data-dir", default=None, help="TFDS data dir for stl10")
    add("--steps", type=int, default=lengths.full, help="iterations of the DSC, plain and gate-reading runs and "
                                                        "their seeds (default %(default)s, paper §4.2)")
    add("--perceptual-steps", type=int, default=lengths.perceptual,
        help="iterations of the perceptual-loss run and its controls (default %(default)s; the paper ran 10,000)")
    add("--ablation-steps", type=int, default=lengths.ablation, help="iterations of each ablation run "
                                                                     "(default %(default)s)")
    add("--sweep-steps", type=int, default=lengths.sweep, help="iterations of each perceptual learning-rate sweep "
                                                               "run (default %(default)s)")
    add("--classifier-steps", type=int, default=None, help="classifier iterations (default: one pass over its data)")
    add("--groups", type=_names, default=None, metavar="GROUP,...",
        help=f"run only these groups of the experiments table ({','.join(GROUPS)}; default all)")
    add("--only", type=_names, default=None, metavar="RUN,...",
        help="run only these runs (and the runs they need), in the table's order; the report covers all finished runs")
    add("--out", default="runs/reproduction", help="one run folder per experiment, figures/, report.md")
    command.set_defaults(func=cmd_reproduce)


def cmd_report(args):
    from stl_denoise.report import update_document

    stale = update_document(args.records, args.doc, check=args.check)
    if args.check and stale:
        raise UserError(f"{args.doc}: generated block(s) {', '.join(stale)} differ from {args.records}; "
                        f"run stl-denoise report {args.records} --doc {args.doc}")
    print(f"{args.doc}: {'checked' if args.check else 'updated'} from {args.records}")


def add_report_command(sub):
    command = sub.add_parser("report", help="rewrite a document's generated tables from run records "
                                            "(reproduce's output or reports/reproduction)")
    command.add_argument("records", help="a reproduce output folder or its committed copy")
    command.add_argument("--doc", default="docs/reproduction.md", help="markdown with <!-- generated:NAME --> blocks")
    command.add_argument("--check", action="store_true", help="change nothing; exit 2 when a block is out of date")
    command.set_defaults(func=cmd_report)


# --- figures (paper §5, Figs. 4-11) ----------------------------------------------------

def _names(text):
    return tuple(name.strip() for name in text.split(",") if name.strip())


def cmd_figures(args):
    from stl_denoise.figures import FIGURES, discover_runs, draw_figures

    if args.skip_first is not None and args.skip_first < 0:
        raise UserError(f"--skip-first must be >= 0, got {args.skip_first}")
    _check_seed(args.seed)
    _check_out_folder(args.out)
    # Missing runs are skipped (README) as long as one is usable; with none there is nothing to draw,
    # so say so instead of writing a figures.md that lists only skips.
    reasons = []
    if not discover_runs(args.runs, report=reasons.append):
        raise UserError(f"no usable run directory among {' '.join(args.runs)} (each needs config.json and "
                        f"metrics.csv); nothing to draw ({reasons[0] if reasons else 'no runs given'})")
    results = draw_figures(args.runs, args.out, skip_first=args.skip_first, images=args.images, seed=args.seed)
    drawn = [f for f in FIGURES if "skipped" not in results[f]]
    print(f"wrote {len(drawn)} of {len(FIGURES)} figures to {args.out}: {', '.join(drawn) or 'none'} "
          f"(see {args.out}/figures.md)")


def add_figures_command(sub):
    figures = sub.add_parser("figures", help="draw paper Figs. 4-11 from run directories (never trains)")
    figures.add_argument("runs", nargs="+", metavar="RUN_DIR",
                         help="denoiser and classifier run directories, or folders of them (runs/classify)")
    figures.add_argument("--out", required=True, help="folder for fig04.png..fig11.png and figures.md")
    figures.add_argument("--skip-first", type=int, default=None,
                         help="Fig. 6: omit the first N iterations (default: 1000 as the paper for runs of "
                              ">= 10000, else the first 10%%)")
    figures.add_argument("--images", type=_names, default=None,
                         help="Figs. 7, 8, 9: STL-10 class names (default ship,ship,bird), bundled sample names "
                              "(default rocket,astronaut,chelsea) or file names in a folder source")
    figures.add_argument("--seed", type=int, default=0, help="seed of the noise drawn on Figs. 7-9")
    figures.set_defaults(func=cmd_figures)


def _model_labels(names):
    from stl_denoise.pretrained import model_label

    labels = []
    for name in names:
        label = model_label(name)
        labels.append(label if label not in labels else f"{label}#{len(labels) + 1}")
    return labels


def _check_tiling(tile, margin):
    from stl_denoise.inference import check_tiling

    try:
        check_tiling(tile, margin)
    except ValueError as error:
        raise UserError(f"--tile/--margin: {error}") from None


def _check_seed(seed):
    if not 0 <= seed < 2**32:  # the range numpy's generators accept
        raise UserError(f"--seed must be in [0, 2**32), got {seed}")


def _check_out_folder(path):
    if not path:  # Path("") is the current folder
        raise UserError("--out is empty; name an output folder")
    path = Path(path)
    # Checked up front: otherwise every file fails alone with a cryptic "File exists"/"Not a directory".
    try:
        if path.is_symlink() and not path.exists():
            raise UserError(f"--out {path}: is a broken symbolic link, not a folder")
        if path.exists() and not path.is_dir():
            raise UserError(f"--out {path}: exists and is not a folder")
        existing = next((parent for parent in path.parents if parent.exists()), None)
    except OSError as error:  # e.g. a name longer than the file system allows
        raise UserError(f"--out {path}: {error.strerror or error}") from None
    if existing is not None and not existing.is_dir():
        raise UserError(f"--out {path}: {existing} exists and is not a folder")


def _say(line, stream=None):
    """Print one line, escaped (names may hold newlines, escapes or non-UTF-8 bytes); survive a closed pipe.

    ``denoise ... | head -n 1``: once the reader is gone, the rest of the
    output goes nowhere, but the work goes on and the exit status still
    tells whether every file was done.
    """
    from stl_denoise.errors import printable

    stream = stream or sys.stdout
    try:
        print(printable(line), file=stream, flush=True)
    except BrokenPipeError:
        _discard(stream)


def _discard(stream):
    """Point ``stream``'s descriptor at /dev/null (what was buffered for the closed pipe goes too)."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no descriptor (e.g. a StringIO in tests)
        pass


def cmd_evaluate(args):
    from stl_denoise import baselines, evaluate
    from stl_denoise.folders import list_image_files
    from stl_denoise.pretrained import load_denoiser
    from stl_denoise.splits import split_files

    _check_pixel_shuffle(args.pixel_shuffle, args.pd_refine)
    if (args.images is None) == (args.pairs is None):
        raise UserError("give either --images (clean images, synthetic noise) or --pairs (real noisy/clean pairs)")
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be positive, got {args.limit}")
    if args.pairs is not None:
        if args.eight_bit or args.jpeg_quality is not None:
            raise UserError("--eight-bit and --jpeg-quality make synthetic noisy images; --pairs photos are scored "
                            "as they come")
        return cmd_evaluate_pairs(args)
    if not args.images:  # Path("") is the current folder
        raise UserError("--images is empty; name a folder or file of clean images")
    if args.jpeg_quality is not None and not 1 <= args.jpeg_quality <= 100:
        raise UserError(f"--jpeg-quality must be in [1, 100], got {args.jpeg_quality}")
    # "not 0 <= x <= 255" also rejects NaN, which would otherwise fail deep in the noise seeding.
    if not all(0 <= sigma <= 255 for sigma in args.sigma) or not all(0 <= p <= 1 for p in args.salt_pepper):
        raise UserError(f"--sigma must be in [0, 255] and --salt-pepper in [0, 1], got --sigma "
                        f"{' '.join(f'{s:g}' for s in args.sigma)} --salt-pepper "
                        f"{' '.join(f'{p:g}' for p in args.salt_pepper)}")
    _check_seed(args.seed)
    _check_tiling(args.tile, args.margin)
    _check_out_folder(args.out)
    baselines.check_available(args.baselines)
    files = split_files(list_image_files(args.images), args.split)[: args.limit]
    models = {label: load_denoiser(name) for label, name in zip(_model_labels(args.model), args.model)}
    settings = [(sigma, salt_pepper) for salt_pepper in args.salt_pepper for sigma in args.sigma]
    rows = evaluate.evaluate(files, settings, models, args.baselines, args.seed, args.tile, args.margin,
                             progress=lambda line: _say(line, sys.stderr), self_ensemble=args.self_ensemble,
                             eight_bit=args.eight_bit, jpeg_quality=args.jpeg_quality,
                             pixel_shuffle=args.pixel_shuffle, pd_refine=args.pd_refine)
    if args.jpeg_quality is not None:
        given = f"saved as a JPEG of quality {args.jpeg_quality} (Pillow) and read back"
    else:
        given = "saved as 8-bit (clipped, rounded)" if args.eight_bit else "in float (Gaussian unclipped)"
    header = [f"stl-denoise evaluate: {len(files)} image(s) from {args.images} (split {args.split}), "
              f"noise seed {args.seed}, noisy input {given}",
              "models: " + ", ".join(f"{label} = {name}" for label, name in zip(models, args.model))]
    table = evaluate.write_report(args.out, rows, evaluate.summarize(rows), header)
    for line in table.splitlines():
        _say(line)
    _say(f"wrote {args.out}/summary.md, summary.csv, per_image.csv")


def cmd_evaluate_pairs(args):
    """``evaluate --pairs DIR``: real noisy photos against their clean references (evaluate.py)."""
    from stl_denoise import baselines, evaluate
    from stl_denoise.pretrained import load_denoiser

    if not args.pairs:  # Path("") is the current folder
        raise UserError("--pairs is empty; name a folder of noisy/clean pairs")
    _check_tiling(args.tile, args.margin)
    _check_out_folder(args.out)
    baselines.check_available(args.baselines)
    pairs = evaluate.find_pairs(args.pairs)[: args.limit]
    models = {label: load_denoiser(name) for label, name in zip(_model_labels(args.model), args.model)}
    rows = evaluate.evaluate_pairs(pairs, models, args.baselines, args.tile, args.margin,
                                   progress=lambda line: _say(line, sys.stderr), self_ensemble=args.self_ensemble,
                                   pixel_shuffle=args.pixel_shuffle, pd_refine=args.pd_refine,
                                   baseline_sigma=args.baseline_sigma)
    scores, levels = evaluate.summarize_pairs(rows)
    told = ("the noise level estimated from the noisy photo (noise_level.estimate_sigma)"
            if args.baseline_sigma == "estimated" else "the true noise level (std of noisy - clean: an oracle)")
    header = [f"stl-denoise evaluate --pairs: {len(pairs)} real noisy/clean pair(s) from {args.pairs}, 8-bit as "
              f"they come; baselines told {told}",
              "models: " + ", ".join(f"{label} = {name}" for label, name in zip(models, args.model))]
    table = evaluate.write_pairs_report(args.out, rows, scores, levels, header)
    for line in table.splitlines():
        _say(line)
    _say(f"wrote {args.out}/summary.md, summary.csv, noise_level.csv, per_image.csv")


def _check_pixel_shuffle(stride, refine):
    strides = stride if isinstance(stride, list) else [stride]
    if not all(1 <= s <= 8 for s in strides):
        raise UserError(f"--pixel-shuffle must be in [1, 8], got {' '.join(str(s) for s in strides)}")
    if refine and not any(s > 1 for s in strides):
        raise UserError("--pd-refine refines a pixel-shuffled result: add --pixel-shuffle 2 (or more)")


def _add_pixel_shuffle_arguments(parser, many):
    parser.add_argument("--pixel-shuffle", type=int, metavar="S", nargs="+" if many else None,
                        default=[] if many else 1,
                        help="pixel-shuffle down-sampling (Zhou et al. 2020) for real camera noise, which is "
                             "correlated between neighbours: denoise the S*S sub-images of every S-th pixel "
                             + ("(adds a row '<model> PD<S>' per model)" if many else "(default 1: off; 2 for "
                                                                                      "real photos, README)"))
    parser.add_argument("--pd-refine", action="store_true",
                        help="with --pixel-shuffle: Zhou et al.'s refinement (each sub-image's noisy pixels put back "
                             "and the whole image denoised again; S*S+1 passes)")


def cmd_denoise(args):
    from stl_denoise.denoise_files import denoise_files
    from stl_denoise.pretrained import load_denoiser

    _check_tiling(args.tile, args.margin)
    _check_pixel_shuffle(args.pixel_shuffle, args.pd_refine)
    _check_out_folder(args.out)
    model = load_denoiser(args.model)
    written, errors = denoise_files(
        model, args.inputs, args.out, args.tile, args.margin, report=_say,
        warn=lambda line: _say(f"stl-denoise: error: {line}", sys.stderr),
        note=lambda line: _say(f"stl-denoise: skipped {line}", sys.stderr), self_ensemble=args.self_ensemble,
        progress_stream=sys.stderr,
        remark=lambda line: _say(f"stl-denoise: note: {line}", sys.stderr),
        pixel_shuffle=args.pixel_shuffle, refine=args.pd_refine,
    )
    _say(f"denoised {written} image(s) into {args.out}" + (f"; {len(errors)} failed" if errors else ""))
    return 1 if errors else 0


def cmd_models(args):
    from stl_denoise.pretrained import shipped_models

    shipped = shipped_models()
    if not shipped:
        print("no shipped models in this install")
    for name, path, description in shipped:
        print(f"{name}\t{path.stat().st_size / 1e6:.1f} MB\t{description}\n\tmodel card: {path.with_suffix('.md')}")


def _add_tiling_arguments(parser):
    from stl_denoise.inference import DEFAULT_MARGIN, DEFAULT_TILE

    parser.add_argument("--tile", type=int, default=DEFAULT_TILE,
                        help="tile side in pixels for large images, multiple of 16 (default %(default)s; "
                             "bounds memory)")
    parser.add_argument("--margin", type=int, default=DEFAULT_MARGIN,
                        help="overlap kept out of each tile's cut edges, multiple of 16 (default %(default)s)")


def add_use_subcommands(sub):
    from stl_denoise.baselines import BASELINES
    from stl_denoise.pretrained import DEFAULT_MODEL
    from stl_denoise.splits import DATA_SPLITS

    evaluate = sub.add_parser("evaluate", help="PSNR/SSIM and s/image of models vs classical baselines")
    evaluate.add_argument("--model", nargs="+", default=[DEFAULT_MODEL],
                          help="one or more .keras files, run folders or shipped names (default %(default)s)")
    evaluate.add_argument("--images", default=None, help="folder (or file) of clean images (synthetic noise)")
    evaluate.add_argument("--pairs", default=None, metavar="DIR",
                          help="instead of --images: real noisy photos beside their clean references, NAME_real.EXT "
                               "(or _noisy) and NAME_mean.EXT (or _clean, _gt), as the PolyU benchmark names them; "
                               "scores per camera (the name up to its first underscore)")
    evaluate.add_argument("--baseline-sigma", choices=("estimated", "true"), default="estimated",
                          help="--pairs: tell the baselines the noise level estimated from the noisy photo "
                               "(default) or the true one, std(noisy - clean), as an oracle")
    evaluate.add_argument("--split", choices=DATA_SPLITS, default="all",
                          help="evaluate on all images or on the fixed train/validation split (default %(default)s)")
    evaluate.add_argument("--limit", type=int, default=None, help="only the first N images (sorted by path)")
    evaluate.add_argument("--sigma", type=float, nargs="+", default=[15.0, 25.0, 50.0],
                          help="Gaussian noise levels, 0-255 scale (default 15 25 50)")
    evaluate.add_argument("--salt-pepper", type=float, nargs="+", default=[0.0],
                          help="fractions of pixels set to 0/255, each combined with every --sigma (default 0)")
    evaluate.add_argument("--eight-bit", action="store_true",
                          help="give every method the noisy image as a saved 8-bit file holds it: clipped to "
                               "[0, 255] and rounded (default: float, Gaussian noise unclipped)")
    evaluate.add_argument("--jpeg-quality", type=int, default=None, metavar="Q",
                          help="give every method the noisy image saved as a JPEG of quality Q and read back")
    evaluate.add_argument("--baselines", nargs="*", default=list(BASELINES), metavar="NAME",
                          help=f"classical methods among {', '.join(BASELINES)} (default: all; bm3d needs the "
                               "optional non-commercial bm3d package)")
    evaluate.add_argument("--seed", type=int, default=0, help="noise seed (default %(default)s)")
    _add_tiling_arguments(evaluate)
    evaluate.add_argument("--self-ensemble", action="store_true",
                          help="also score each model averaged over the 8 flips/rotations of the input "
                               "(rows '<model> x8'; 8x the time)")
    _add_pixel_shuffle_arguments(evaluate, many=True)
    evaluate.add_argument("--out", required=True, help="report folder: summary.md, summary.csv, per_image.csv")
    evaluate.set_defaults(func=cmd_evaluate)

    denoise = sub.add_parser("denoise", help="denoise image files or folders into PNGs")
    denoise.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders (recursive)")
    denoise.add_argument("--model", default=DEFAULT_MODEL,
                         help=".keras file, run folder or shipped name (default: the shipped %(default)s)")
    _add_tiling_arguments(denoise)
    denoise.add_argument("--self-ensemble", action="store_true",
                         help="average the outputs for the 8 flips/rotations of each image (8x the time, "
                              "a little better)")
    _add_pixel_shuffle_arguments(denoise, many=False)
    denoise.add_argument("--out", required=True, help="output folder (PNG, same names; never an input)")
    denoise.set_defaults(func=cmd_denoise)

    models = sub.add_parser("models", help="list the shipped pretrained denoisers")
    models.set_defaults(func=cmd_models)


# --- export for deployment (issue 14) -----------------------------------------------------

def cmd_export(args):
    from stl_denoise.export import export
    from stl_denoise.inference import DEFAULT_TILE

    difference = export(args.model, args.format, args.out, args.tile)
    tile = args.tile or DEFAULT_TILE
    size = f"input [1, {tile}, {tile}, 3]" if args.format == "tflite" else "any size >= 16x16"
    print(f"wrote {args.out} ({args.format}, {size}); matches the Keras model to {difference:.2g} (max abs "
          "difference, 0-255) on a noisy photo")


def add_export_command(sub):
    from stl_denoise.export import FORMATS

    export = sub.add_parser("export", help="write a denoiser as a TensorFlow SavedModel, TFLite or ONNX file")
    export.add_argument("model", metavar="MODEL", help="shipped name (e.g. dsc-modern-blind), .keras file or run folder")
    export.add_argument("--format", required=True, choices=FORMATS,
                        help="saved_model: a folder for TF Serving, any image size; tflite: fixed --tile; "
                             "onnx: any image size (needs the [onnx] extra)")
    export.add_argument("--tile", type=int, default=None,
                        help="tflite only: the input is [1, TILE, TILE, 3], a multiple of 16 (default 512)")
    export.add_argument("--out", required=True, help="path to create (refused if it exists)")
    export.set_defaults(func=cmd_export)


def build_parser(train_defaults=DEFAULTS, classifier_defaults=None, recorded=None):
    """The parser; its defaults come from a preset or, for ``--config``, from the recorded run."""
    parser = argparse.ArgumentParser(prog="stl-denoise", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser("train", help="train a DSC or plain denoiser (paper §4.2, or --preset modern)")
    add_train_arguments(train, train_defaults)
    add_config_argument(train)
    train.add_argument("--out", required=True, help="run directory (created; rerun to resume)")
    train.set_defaults(func=cmd_train, recorded=recorded)

    demo = sub.add_parser("demo", help="offline: train DSC and plain briefly, plot MSE vs iteration (Fig. 6 style)")
    add_train_arguments(demo, dataclasses.replace(train_defaults, data="sample", steps=300, data_split="all"))
    demo.add_argument("--out", default="runs/demo")
    demo.set_defaults(func=cmd_demo)

    download = sub.add_parser("download-stl10", help="download and prepare STL-10 with tensorflow-datasets")
    download.add_argument("--data-dir", default=None)
    download.set_defaults(func=cmd_download_stl10)
    add_classifier_commands(sub, classifier_defaults, recorded)
    add_figures_command(sub)
    add_reproduce_command(sub)
    add_report_command(sub)

    add_use_subcommands(sub)
    add_export_command(sub)
    return parser


def main(argv=None):
    from stl_denoise.errors import Terminated, os_error_line, printing_never_fails, sigterm_stops_like_ctrl_c

    argv = sys.argv[1:] if argv is None else argv
    printing_never_fails(sys.stdout, sys.stderr)
    try:
        parser = build_parser(*defaults_from_argv(argv))
    except UserError as error:
        _say(f"stl-denoise: error: {error}", sys.stderr)
        return error.exit_code
    args = parser.parse_args(argv)
    try:
        with sigterm_stops_like_ctrl_c():
            code = args.func(args)
    except UserError as error:
        _say(f"stl-denoise: error: {error}", sys.stderr)
        return error.exit_code
    except BrokenPipeError:  # the reader of stdout went away (| head): nothing more to say to it
        _discard(sys.stdout)
        return 1
    except OSError as error:  # a file system refusal no check foresaw: still one line naming the file
        _say(f"stl-denoise: error: {os_error_line(error)}", sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        stopped = "terminated (SIGTERM)" if isinstance(interrupt, Terminated) else "interrupted"
        _say(f"stl-denoise: {stopped}; run the same command again to resume", sys.stderr)
        return getattr(interrupt, "exit_code", 130)
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
