"""What each ``stl-denoise`` command does with its parsed flags.

``cli.py`` builds the parsers from light modules only, so that ``--help`` and
argument errors answer at once; it imports this module, and with it
TensorFlow and every module the commands use, once the command line parsed.
"""

import sys
from pathlib import Path

from stl_denoise import baselines, evaluate, rerun
from stl_denoise.checks import check_out_folder
from stl_denoise.config import TRUNCNORMAL, ClassifierConfig, TrainConfig, check_seed
from stl_denoise.console import say
from stl_denoise.demo import demo
from stl_denoise.denoise_files import denoise_files
from stl_denoise.errors import UserError
from stl_denoise.export import export
from stl_denoise.figures import FIGURES, discover_runs, draw_figures
from stl_denoise.folders import list_image_files
from stl_denoise.inference import DEFAULT_TILE, check_tiling
from stl_denoise.pretrained import load_denoiser, model_label, shipped_models
from stl_denoise.report import update_document
from stl_denoise.reproduce import Lengths, reproduce
from stl_denoise.runs import SUMMARY_TAIL, tail_key
from stl_denoise.splits import split_files
from stl_denoise.stl10 import stl10_builder
from stl_denoise.train import train
from stl_denoise.transfer import pretrain_classify, train_classifier


def cmd_train(args):
    rerun.check_recorded_kind(args.recorded, TrainConfig.KIND)
    config = rerun.train_config(vars(args))
    summary = train(config, args.out, rerun_of=args.recorded)
    print(f"saved {Path(args.out) / config.MODEL_FILE}; mean MSE of the last {SUMMARY_TAIL} steps "
          f"{summary[tail_key('final_mse_mean')]}, {summary['median_images_per_second']} images/s")


def cmd_demo(args):
    demo(rerun.train_config(vars(args)), args.out)


def cmd_download_stl10(args):
    print(f"STL-10 is prepared in {stl10_builder(args.data_dir).data_dir}")


def _accuracy_line(label, summary):
    return (f"{label}: evaluation accuracy {summary['final_eval_accuracy']:.3f} at step {summary['steps']}, "
            f"batch accuracy (mean of the last {SUMMARY_TAIL} steps) {summary[tail_key('batch_accuracy_mean')]:.3f}, "
            f"cross-entropy {summary['first_cross_entropy']:.3g} -> {summary[tail_key('cross_entropy_mean')]:.3g}")


def cmd_transfer(args):
    rerun.check_recorded_kind(args.recorded, ClassifierConfig.KIND)
    if args.init is None:
        raise UserError("transfer needs --init (truncnormal or a denoiser run directory), or --config RUN")
    config = rerun.classifier_config(vars(args), args.init, args.recorded)
    summary = train_classifier(config, args.out, rerun_of=args.recorded)
    print(f"saved {Path(args.out) / config.MODEL_FILE}")
    print(_accuracy_line(args.init, summary))


def cmd_pretrain_classify(args):
    summaries, plot_path = pretrain_classify(rerun.classifier_config(vars(args), TRUNCNORMAL), args.pretrained,
                                             args.out)
    for label, summary in summaries.items():
        print(_accuracy_line(label, summary))
    print(f"wrote {plot_path}")


def cmd_reproduce(args):
    lengths = Lengths(full=args.steps, perceptual=args.perceptual_steps, ablation=args.ablation_steps,
                      sweep=args.sweep_steps, classifier=args.classifier_steps)
    report = reproduce(args.out, data=args.data, data_dir=args.data_dir, lengths=lengths, groups=args.groups,
                       only=args.only)
    print(f"wrote {report}")


def cmd_report(args):
    stale = update_document(args.records, args.doc, check=args.check)
    if args.check and stale:
        raise UserError(f"{args.doc}: generated block(s) {', '.join(stale)} differ from {args.records}; "
                        f"run stl-denoise report {args.records} --doc {args.doc}")
    print(f"{args.doc}: {'checked' if args.check else 'updated'} from {args.records}")


def cmd_figures(args):
    if args.skip_first is not None and args.skip_first < 0:
        raise UserError(f"--skip-first must be >= 0, got {args.skip_first}")
    check_seed(args.seed)
    check_out_folder(args.out)
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


def _model_labels(names):
    labels = []
    for name in names:
        label = model_label(name)
        labels.append(label if label not in labels else f"{label}#{len(labels) + 1}")
    return labels


def _check_tiling(tile, margin):
    try:
        check_tiling(tile, margin)
    except ValueError as error:
        raise UserError(f"--tile/--margin: {error}") from None


def _check_pixel_shuffle(stride, refine):
    strides = stride if isinstance(stride, list) else [stride]
    if not all(s == "auto" or 1 <= s <= 8 for s in strides):
        raise UserError(f"--pixel-shuffle must be in [1, 8] or auto, got {' '.join(str(s) for s in strides)}")
    if refine and not any(s == "auto" or s > 1 for s in strides):
        raise UserError("--pd-refine refines a pixel-shuffled result: add --pixel-shuffle 2 (or more)")


def _models_header(models, names):
    return "models: " + ", ".join(f"{label} = {name}" for label, name in zip(models, names))


def cmd_evaluate(args):
    _check_pixel_shuffle(args.pixel_shuffle, args.pd_refine)
    evaluate.check_request(args.images, args.pairs, args.limit, args.sigma, args.salt_pepper, args.eight_bit,
                           args.jpeg_quality)
    if args.pairs is None:
        check_seed(args.seed)
    _check_tiling(args.tile, args.margin)
    check_out_folder(args.out)
    baselines.check_available(args.baselines)
    return (_evaluate_pairs if args.pairs is not None else _evaluate_images)(args)


def _evaluate_images(args):
    files = split_files(list_image_files(args.images), args.split)[: args.limit]
    models = {label: load_denoiser(name) for label, name in zip(_model_labels(args.model), args.model)}
    settings = [(sigma, salt_pepper) for salt_pepper in args.salt_pepper for sigma in args.sigma]
    rows = evaluate.evaluate(files, settings, models, args.baselines, args.seed, args.tile, args.margin,
                             progress=lambda line: say(line, sys.stderr), self_ensemble=args.self_ensemble,
                             eight_bit=args.eight_bit, jpeg_quality=args.jpeg_quality,
                             pixel_shuffle=args.pixel_shuffle, pd_refine=args.pd_refine)
    if args.jpeg_quality is not None:
        given = f"saved as a JPEG of quality {args.jpeg_quality} (Pillow) and read back"
    else:
        given = "saved as 8-bit (clipped, rounded)" if args.eight_bit else "in float (Gaussian unclipped)"
    header = [f"stl-denoise evaluate: {len(files)} image(s) from {args.images} (split {args.split}), "
              f"noise seed {args.seed}, noisy input {given}", _models_header(models, args.model)]
    table = evaluate.write_report(args.out, rows, evaluate.summarize(rows), header)
    for line in table.splitlines():
        say(line)
    say(f"wrote {args.out}/summary.md, summary.csv, per_image.csv")


def _evaluate_pairs(args):
    """``evaluate --pairs DIR``: real noisy photos against their clean references (evaluate.py)."""
    pairs = evaluate.find_pairs(args.pairs)[: args.limit]
    models = {label: load_denoiser(name) for label, name in zip(_model_labels(args.model), args.model)}
    rows = evaluate.evaluate_pairs(pairs, models, args.baselines, args.tile, args.margin,
                                   progress=lambda line: say(line, sys.stderr), self_ensemble=args.self_ensemble,
                                   pixel_shuffle=args.pixel_shuffle, pd_refine=args.pd_refine,
                                   baseline_sigma=args.baseline_sigma)
    scores, levels = evaluate.summarize_pairs(rows)
    told = ("the noise level estimated from the noisy photo (noise_level.estimate_sigma)"
            if args.baseline_sigma == "estimated" else "the true noise level (std of noisy - clean: an oracle)")
    header = [f"stl-denoise evaluate --pairs: {len(pairs)} real noisy/clean pair(s) from {args.pairs}, 8-bit as "
              f"they come; baselines told {told}", _models_header(models, args.model)]
    table = evaluate.write_pairs_report(args.out, rows, scores, levels, header)
    for line in table.splitlines():
        say(line)
    say(f"wrote {args.out}/summary.md, summary.csv, noise_level.csv, per_image.csv")


def cmd_denoise(args):
    _check_tiling(args.tile, args.margin)
    _check_pixel_shuffle(args.pixel_shuffle, args.pd_refine)
    check_out_folder(args.out)
    model = load_denoiser(args.model)
    written, errors = denoise_files(
        model, args.inputs, args.out, args.tile, args.margin, report=say,
        warn=lambda line: say(f"stl-denoise: error: {line}", sys.stderr),
        note=lambda line: say(f"stl-denoise: skipped {line}", sys.stderr), self_ensemble=args.self_ensemble,
        progress_stream=sys.stderr,
        remark=lambda line: say(f"stl-denoise: note: {line}", sys.stderr),
        pixel_shuffle=args.pixel_shuffle, refine=args.pd_refine,
    )
    say(f"denoised {written} image(s) into {args.out}" + (f"; {len(errors)} failed" if errors else ""))
    return 1 if errors else 0


def cmd_models(args):
    shipped = shipped_models()
    if not shipped:
        print("no shipped models in this install")
    for name, path, description in shipped:
        print(f"{name}\t{path.stat().st_size / 1e6:.1f} MB\t{description}\n\tmodel card: {path.with_suffix('.md')}")


def cmd_export(args):
    difference = export(args.model, args.format, args.out, args.tile)
    tile = args.tile or DEFAULT_TILE
    size = f"input [1, {tile}, {tile}, 3]" if args.format == "tflite" else "any size >= 16x16"
    print(f"wrote {args.out} ({args.format}, {size}); matches the Keras model to {difference:.2g} (max abs "
          "difference, 0-255) on a noisy photo")
