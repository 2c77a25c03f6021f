"""Command line: one subcommand per user task (``stl-denoise --help``).

The parsers are built from the config classes' fields (``flags.py``) and from
light modules only: ``--help`` and argument errors answer without loading
TensorFlow.  What a command does is in ``commands.py``, imported once the
command line parsed (``main``).
"""

import argparse
import dataclasses
import importlib
import sys

from stl_denoise import rerun
from stl_denoise.baselines import BASELINES
from stl_denoise.config import BASELINE_SIGMAS, DATA_SPLITS, PRESET_NAMES, ClassifierConfig, TrainConfig
from stl_denoise.console import discard, say
from stl_denoise.errors import Terminated, UserError, os_error_line, printing_never_fails, sigterm_stops_like_ctrl_c
from stl_denoise.export import FORMATS
from stl_denoise.flags import add_setting_flags
from stl_denoise.inference import DEFAULT_MARGIN, DEFAULT_TILE
from stl_denoise.pretrained import DEFAULT_MODEL
from stl_denoise.reproduce import GROUPS, Lengths

DEFAULTS = TrainConfig()


def defaults_from_argv(argv):
    """(denoiser defaults, classifier defaults, recorded run or None) for this command line (``rerun.py``)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--preset", choices=PRESET_NAMES, default=None)
    pre.add_argument("--config", default=None)
    known, _ = pre.parse_known_args(argv)
    return rerun.command_defaults(argv[0] if argv else None, known.preset, known.config)


def config_from_args(args):
    return rerun.train_config(vars(args))


def classifier_config_from_args(args, init):
    return rerun.classifier_config(vars(args), init, getattr(args, "recorded", None))


def _add_config_argument(parser):
    parser.add_argument("--config", metavar="RUN", default=None,
                        help="rerun a recorded run: its folder or config.json gives every setting; flags given "
                             "beside it override them and are recorded")


def _add_training_commands(sub, train_defaults, classifier_defaults, recorded):
    train = sub.add_parser("train", help="train a DSC or plain denoiser (paper §4.2, or --preset modern)")
    add_setting_flags(train, train_defaults)
    _add_config_argument(train)
    train.add_argument("--out", required=True, help="run directory (created; rerun to resume)")
    train.set_defaults(recorded=recorded)

    demo = sub.add_parser("demo", help="offline: train DSC and plain briefly, plot MSE vs iteration (Fig. 6 style)")
    add_setting_flags(demo, dataclasses.replace(train_defaults, data="sample", steps=300, data_split="all"))
    demo.add_argument("--out", default="runs/demo")

    download = sub.add_parser("download-stl10", help="download and prepare STL-10 with tensorflow-datasets")
    download.add_argument("--data-dir", default=None)

    transfer = sub.add_parser("transfer", help="train the Table 2 classifier from truncated-normal or denoiser "
                                               "weights (§4.3)")
    init = {field.name: field for field in dataclasses.fields(ClassifierConfig)}["init"]
    # Required unless --config names a recorded classifier run, which then gives it.
    transfer.add_argument("--init", default=recorded.config.init if recorded and recorded.kind == ClassifierConfig.KIND
                          else None, help=init.metadata["help"])
    add_setting_flags(transfer, classifier_defaults, skip=("init",))
    _add_config_argument(transfer)
    transfer.add_argument("--out", required=True, help="run directory (created; rerun to resume)")
    transfer.set_defaults(recorded=recorded)

    both = sub.add_parser("pretrain-classify",
                          help="classifier from truncated normal and from a denoiser, same schedule; comparison plot")
    both.add_argument("--pretrained", default="runs/dsc", help="denoiser run directory (default %(default)s)")
    add_setting_flags(both, ClassifierConfig(), skip=("init",))
    both.add_argument("--out", default="runs/classify", help="writes OUT/truncnormal, OUT/pretrained and a plot")


def _names(text):
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _add_paper_commands(sub):
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

    report = sub.add_parser("report", help="rewrite a document's generated tables from run records "
                                           "(reproduce's output or reports/reproduction)")
    report.add_argument("records", help="a reproduce output folder or its committed copy")
    report.add_argument("--doc", default="docs/reproduction.md", help="markdown with <!-- generated:NAME --> blocks")
    report.add_argument("--check", action="store_true", help="change nothing; exit 2 when a block is out of date")

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


def _stride_or_auto(text):
    """A --pixel-shuffle value: a stride (checked by the command) or "auto"."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a stride (an integer) or auto, got {text!r}") from None


def _add_inference_arguments(parser, many):
    """Tiling, the x8 self-ensemble and pixel-shuffle down-sampling.

    ``denoise`` applies them, ``evaluate`` scores them.
    """
    parser.add_argument("--tile", type=int, default=DEFAULT_TILE,
                        help="tile side in pixels for large images, multiple of 16 (default %(default)s; "
                             "bounds memory)")
    parser.add_argument("--margin", type=int, default=DEFAULT_MARGIN,
                        help="overlap kept out of each tile's cut edges, multiple of 16 (default %(default)s)")
    parser.add_argument("--self-ensemble", action="store_true",
                        help="also score each model averaged over the 8 flips/rotations of the input (rows "
                             "'<model> x8'; 8x the time)" if many else "average the outputs for the 8 "
                             "flips/rotations of each image (8x the time, a little better)")
    parser.add_argument("--pixel-shuffle", type=_stride_or_auto, metavar="S", nargs="+" if many else None,
                        default=[] if many else 1,
                        help="pixel-shuffle down-sampling (Zhou et al. 2020) for real camera noise, which is "
                             "correlated between neighbours: denoise the S*S sub-images of every S-th pixel; "
                             "'auto': 2 where the noise measures as correlated, else 1 "
                             "(noise_level.choose_pixel_shuffle) "
                             + ("(adds a row '<model> PD<S>' per model)" if many else "(default 1: off; 2 or auto "
                                                                                      "for real photos, README)"))
    parser.add_argument("--pd-refine", action="store_true",
                        help="with --pixel-shuffle: Zhou et al.'s refinement (each sub-image's noisy pixels put back "
                             "and the whole image denoised again; S*S+1 passes)")


def _add_use_commands(sub):
    evaluate = sub.add_parser("evaluate", help="PSNR/SSIM and s/image of models vs classical baselines")
    add = evaluate.add_argument
    add("--model", nargs="+", default=[DEFAULT_MODEL],
        help="one or more .keras files, run folders or shipped names (default %(default)s)")
    add("--images", default=None, help="folder (or file) of clean images (synthetic noise)")
    add("--pairs", default=None, metavar="DIR",
        help="instead of --images: real noisy photos beside their clean references, NAME_real.EXT (or _noisy) and "
             "NAME_mean.EXT (or _clean, _gt), as the PolyU benchmark names them; scores per camera (the name up to "
             "its first underscore)")
    add("--baseline-sigma", choices=BASELINE_SIGMAS, default="estimated",
        help="--pairs: tell the baselines the noise level estimated from the noisy photo (default) or the true one, "
             "std(noisy - clean), as an oracle")
    add("--split", choices=DATA_SPLITS, default="all",
        help="evaluate on all images or on the fixed train/validation split (default %(default)s)")
    add("--limit", type=int, default=None, help="only the first N images (sorted by path)")
    add("--sigma", type=float, nargs="+", default=[15.0, 25.0, 50.0],
        help="Gaussian noise levels, 0-255 scale (default 15 25 50)")
    add("--salt-pepper", type=float, nargs="+", default=[0.0],
        help="fractions of pixels set to 0/255, each combined with every --sigma (default 0)")
    add("--eight-bit", action="store_true",
        help="give every method the noisy image as a saved 8-bit file holds it: clipped to [0, 255] and rounded "
             "(default: float, Gaussian noise unclipped)")
    add("--jpeg-quality", type=int, default=None, metavar="Q",
        help="give every method the noisy image saved as a JPEG of quality Q and read back")
    add("--baselines", nargs="*", default=list(BASELINES), metavar="NAME",
        help=f"classical methods among {', '.join(BASELINES)} (default: all; bm3d needs the optional "
             "non-commercial bm3d package)")
    add("--seed", type=int, default=0, help="noise seed (default %(default)s)")
    _add_inference_arguments(evaluate, many=True)
    add("--out", required=True, help="report folder: summary.md, summary.csv, per_image.csv")

    denoise = sub.add_parser("denoise", help="denoise image files or folders into PNGs")
    denoise.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders (recursive)")
    denoise.add_argument("--model", default=DEFAULT_MODEL,
                         help=".keras file, run folder or shipped name (default: the shipped %(default)s)")
    _add_inference_arguments(denoise, many=False)
    denoise.add_argument("--out", required=True, help="output folder (PNG, same names; never an input)")

    sub.add_parser("models", help="list the shipped pretrained denoisers")

    export = sub.add_parser("export", help="write a denoiser as a TensorFlow SavedModel, TFLite or ONNX file")
    export.add_argument("model", metavar="MODEL",
                        help="shipped name (e.g. dsc-modern-blind), .keras file or run folder")
    export.add_argument("--format", required=True, choices=FORMATS,
                        help="saved_model: a folder for TF Serving, any image size; tflite: fixed --tile; "
                             "onnx: any image size (needs the [onnx] extra)")
    export.add_argument("--tile", type=int, default=None,
                        help="tflite only: the input is [1, TILE, TILE, 3], a multiple of 16 (default 512)")
    export.add_argument("--out", required=True, help="path to create (refused if it exists)")


def build_parser(train_defaults=DEFAULTS, classifier_defaults=None, recorded=None):
    """The parser; its defaults come from a preset or, for ``--config``, from the recorded run."""
    parser = argparse.ArgumentParser(prog="stl-denoise", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_training_commands(sub, train_defaults, classifier_defaults or ClassifierConfig(), recorded)
    _add_paper_commands(sub)
    _add_use_commands(sub)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    printing_never_fails(sys.stdout, sys.stderr)
    try:
        parser = build_parser(*defaults_from_argv(argv))
    except UserError as error:
        say(f"stl-denoise: error: {error}", sys.stderr)
        return error.exit_code
    args = parser.parse_args(argv)
    try:
        with sigterm_stops_like_ctrl_c():
            # The one place the commands, and with them TensorFlow, are imported.
            commands = importlib.import_module("stl_denoise.commands")
            code = getattr(commands, "cmd_" + args.command.replace("-", "_"))(args)
    except UserError as error:
        say(f"stl-denoise: error: {error}", sys.stderr)
        return error.exit_code
    except BrokenPipeError:  # the reader of stdout went away (| head): nothing more to say to it
        discard(sys.stdout)
        return 1
    except OSError as error:  # a file system refusal no check foresaw: still one line naming the file
        say(f"stl-denoise: error: {os_error_line(error)}", sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        stopped = "terminated (SIGTERM)" if isinstance(interrupt, Terminated) else "interrupted"
        say(f"stl-denoise: {stopped}; run the same command again to resume", sys.stderr)
        return getattr(interrupt, "exit_code", 130)
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
