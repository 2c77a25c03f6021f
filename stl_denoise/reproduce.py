"""``stl-denoise reproduce``: every experiment of the paper at its length, then figures and tables.

The runs are data (``experiments``): each row names its run folder under OUT,
the claim it tests, its changes to the faithful settings, its length and its
group, and the table's order is the order they run in, the Fig. 6 pair first.
Each is an ordinary run folder, so rerunning the command resumes the
unfinished one and skips the finished.  A run whose loss goes NaN is a result,
not a crash: its folder gets ``diverged.json`` (the step) and is not retried.
Every finished denoiser run on a photo folder is then scored on the folder's
held-out photos (``heldout.py``).

Groups (``--groups``): ``paper`` (the paper's runs), ``seeds`` (seeds 1 and 2
of the three Fig. 6 nets), ``classifier`` (§4.3 on the held-out ``standard``
split, three seeds, from each denoiser), ``controls`` (what the perceptual
verdict needs) and ``ablation`` (the settings the paper leaves open).

With ``--data stl10`` this is the paper's experiment.  With a folder of photos
(offline) each photo is resized so its shorter side is 96 px, like STL-10's
96x96 images, and only the folder's train split is used; the classifier then
uses the offline labelled set (``digits``).  docs/reproduction.md says what
that changes.
"""

import dataclasses
import json
from pathlib import Path

from stl_denoise.config import TRUNCNORMAL, ClassifierConfig, TrainConfig
from stl_denoise.errors import TrainingDivergedError, UserError
from stl_denoise.io import write_json, write_text
from stl_denoise.runs import METRICS_FILE, SUMMARY_TAIL, load_run, read_metrics, run_is_finished, tail_mean

FULL_STEPS = 10_000  # paper §4.2: 100k images at batch 10
STL10_SIDE = 96  # STL-10 images are 96x96 (paper §4.1)
PERCEPTUAL_LEARNING_RATE = 1e-8  # README, "Perceptual loss": 1e-6 gives NaN at step 5
PAPER_MSE = {"dsc": 7_500, "plain": 15_000}  # §5, Fig. 6: "at 10000 iterations"
DIVERGED_FILE = "diverged.json"
GROUPS = ("paper", "seeds", "classifier", "controls", "ablation")
SEEDS = (0, 1, 2)
FIG6_NETS = {"dsc": (("model", "dsc"),), "plain": (("model", "plain"),),
             "dsc-text": (("model", "dsc"), ("gate_reading", "text"))}
# The settings the paper leaves open (§3-4), varied one or two at a time from the faithful run
# (He-scaled truncated normal, 1e-6, ReLU output, pixels on 0-255) and from the paper's likely
# initialisation (truncated normal stddev 0.1, the TensorFlow tutorials of 2016).
ABLATION = {
    "init0.1": (("init_stddev", 0.1),),
    "init0.01": (("init_stddev", 0.01),),
    "lr1e-5": (("learning_rate", 1e-5),),
    "linear": (("output_activation", "linear"),),
    "scale0-1": (("input_range", 1.0),),
    "init0.1-lr1e-5": (("init_stddev", 0.1), ("learning_rate", 1e-5)),
}
ABLATION_NETS = ("plain", "dsc")  # dsc: the equations' gates, the faithful default
ABLATION_SEEDS = (0, 1)
PERCEPTUAL_SWEEP = (1e-6, 3e-7, 1e-7, 3e-8)  # where the perceptual loss stays finite (controls)
LARGEST_FINITE = "largest finite rate of the perceptual sweep"  # a learning rate resolved from finished runs


@dataclasses.dataclass(frozen=True)
class Experiment:
    name: str  # run folder under OUT
    claim: str  # what of the paper it tests
    changes: tuple = ()  # (field, value) pairs applied to the faithful config; "@RUN" values name another run
    length: str = "full"  # which of reproduce's lengths it runs: full | perceptual | ablation | sweep | classifier
    group: str = "paper"
    kind: str = TrainConfig.KIND  # denoiser | classifier

    @property
    def needs(self):
        """The runs whose results this one reads (``@RUN`` values, the sweep a resolved rate reads)."""
        runs = tuple(value[1:] for _, value in self.changes if isinstance(value, str) and value.startswith("@"))
        if any(value == LARGEST_FINITE for _, value in self.changes):
            runs += tuple(sweep_run(rate) for rate in PERCEPTUAL_SWEEP)
        return runs


def sweep_run(rate):
    return f"controls/perceptual-sweep/lr{rate:g}"


def _seed_name(net, seed):
    return net if seed == 0 else f"{net}-seed{seed}"


def experiments():
    """Every run of ``reproduce``, in the order they run (a run's ``needs`` come before it)."""
    paper = [
        Experiment("dsc", "§4.2 / Fig. 6: DSC, gates 0.1-0.4, equations' reading", FIG6_NETS["dsc"]),
        Experiment("plain", "§4.2 / Fig. 6: the same net, connections off", FIG6_NETS["plain"]),
        Experiment("classify/truncnormal", "§4.3 / Fig. 4: classifier from truncated normal (paper split)",
                   (("init", TRUNCNORMAL),), "classifier", kind=ClassifierConfig.KIND),
        Experiment("classify/pretrained", "§4.3 / Figs. 10-11: classifier from the DSC run (paper split)",
                   (("init", "@dsc"),), "classifier", kind=ClassifierConfig.KIND),
        Experiment("dsc-text", "§3.1 vs §4.2: the prose's gate reading", FIG6_NETS["dsc-text"]),
        Experiment("perceptual", "§4.2 / Fig. 5: plain net, perceptual loss",
                   (("model", "plain"), ("loss", "perceptual"), ("learning_rate", PERCEPTUAL_LEARNING_RATE),
                    ("perceptual_classifier", "@classify/truncnormal")), "perceptual"),
    ]
    seeds = [Experiment(_seed_name(net, seed), f"seed spread: {net}, seed {seed}", changes + (("seed", seed),),
                         group="seeds")
             for seed in SEEDS[1:] for net, changes in FIG6_NETS.items()]
    classifier = [
        Experiment(f"classify-standard/seed{seed}/{label}",
                   f"§4.3 on held-out images (standard split), seed {seed}, {label}",
                   (("labelled_split", "standard"), ("seed", seed),
                    ("init", TRUNCNORMAL if label == TRUNCNORMAL else "@" + _seed_name(label[len("from-"):], seed))),
                   "classifier", group="classifier", kind=ClassifierConfig.KIND)
        for seed in SEEDS for label in (TRUNCNORMAL, *(f"from-{net}" for net in FIG6_NETS))]
    controls = [
        Experiment("controls/plain-mse-lr1e-8", "control: the plain net with the MSE loss at the perceptual run's rate",
                   (("model", "plain"), ("learning_rate", PERCEPTUAL_LEARNING_RATE)), "perceptual", group="controls"),
        *(Experiment(sweep_run(rate), f"control: perceptual loss at {rate:g}, short",
                     (("model", "plain"), ("loss", "perceptual"), ("learning_rate", rate),
                      ("perceptual_classifier", "@classify/truncnormal")), "sweep", group="controls")
          for rate in PERCEPTUAL_SWEEP),
        Experiment("controls/perceptual-largest-lr", "control: the perceptual run at the largest finite rate",
                   (("model", "plain"), ("loss", "perceptual"), ("learning_rate", LARGEST_FINITE),
                    ("perceptual_classifier", "@classify/truncnormal")), "perceptual", group="controls"),
    ]
    ablation = [Experiment(f"ablation/{net}-{tag}-seed{seed}", f"ablation: {net}, {tag}, seed {seed}",
                           FIG6_NETS[net] + changes + (("seed", seed),), "ablation", group="ablation")
                for seed in ABLATION_SEEDS for tag, changes in ABLATION.items() for net in ABLATION_NETS]
    return tuple(paper + seeds + classifier + controls + ablation)


def data_settings(data):
    """(denoiser data fields, classifier data name) for ``--data``."""
    if data == "stl10":
        return {"data": "stl10"}, "stl10"
    # Photos: shorter side 96 like STL-10, and the held-out validation split kept out.
    split = "all" if data == "sample" else "train"
    return {"data": data, "resize_short_side": STL10_SIDE, "data_split": split}, "digits"


@dataclasses.dataclass
class Lengths:
    """Iterations per ``Experiment.length``; ``classifier`` None = one pass over its training images."""

    full: int = FULL_STEPS
    perceptual: int = 3_000
    ablation: int = 2_000
    sweep: int = 300
    classifier: int | None = None

    def check(self):
        bad = {name: value for name, value in dataclasses.asdict(self).items() if value is not None and value <= 0}
        if bad:
            raise UserError(f"every step count must be positive, got {bad}")


def planned_config(experiment, out_dir, data, data_dir, lengths):
    """The config an experiment runs with; ``@RUN`` values become OUT/RUN (needs resolved at run time)."""
    denoiser_data, classifier_data = data_settings(data)
    changes = {field: (str(out_dir / value[1:]) if isinstance(value, str) and value.startswith("@") else value)
               for field, value in experiment.changes}
    if experiment.kind == ClassifierConfig.KIND:
        config = ClassifierConfig(data=classifier_data, data_dir=data_dir, steps=lengths.classifier, **changes)
        if experiment.group == "classifier":  # ten or more held-out evaluations per run
            config = config.resolved()
            config = dataclasses.replace(config, eval_every=max(1, config.steps // 10))
        return config
    if changes.get("learning_rate") == LARGEST_FINITE:
        changes["learning_rate"] = largest_finite_rate(out_dir)
    return TrainConfig(data_dir=data_dir, steps=getattr(lengths, experiment.length), **denoiser_data, **changes)


def largest_finite_rate(out_dir):
    """The largest learning rate of the perceptual sweep whose run finished without NaN (None before the sweep)."""
    finite = [rate for rate in PERCEPTUAL_SWEEP if run_is_finished(out_dir / sweep_run(rate))]
    swept = all(is_done(out_dir / sweep_run(rate)) for rate in PERCEPTUAL_SWEEP)
    return max(finite) if swept and finite else None


def _ready(run_dir):
    """A needed run is ready when finished; a sweep run also when it stopped at NaN (the sweep reads both)."""
    return is_done(run_dir) if "perceptual-sweep" in Path(run_dir).parts else run_is_finished(run_dir)


def is_done(run_dir):
    """Finished, or stopped for good at a NaN (``diverged.json``)."""
    return run_is_finished(run_dir) or (Path(run_dir) / DIVERGED_FILE).is_file()


def choose(groups=None, only=None):
    """The experiments ``--groups``/``--only`` select, with every run they need, in table order."""
    table = experiments()
    names = {e.name for e in table}
    unknown = set(only or ()) - names
    if unknown:
        raise UserError(f"--only: unknown run(s) {', '.join(sorted(unknown))}; choose from {', '.join(sorted(names))}")
    unknown = set(groups or ()) - set(GROUPS)
    if unknown:
        raise UserError(f"--groups: unknown group(s) {', '.join(sorted(unknown))}; choose from {', '.join(GROUPS)}")
    wanted = {e.name for e in table if (only and e.name in only) or (not only and e.group in (groups or GROUPS))}
    by_name = {e.name: e for e in table}
    pending = list(wanted)
    while pending:  # a chosen run's needs run too
        for need in by_name[pending.pop()].needs:
            if need not in wanted:
                wanted.add(need)
                pending.append(need)
    return [e for e in table if e.name in wanted]


def reproduce(out_dir, data="stl10", data_dir=None, lengths=None, groups=None, only=None, verbose=True):
    """Run (or resume) the chosen experiments in table order, score them, then draw Figs. 4-11 and OUT/report.md."""
    from stl_denoise.train import train
    from stl_denoise.transfer import train_classifier

    out_dir = Path(out_dir)
    lengths = lengths or Lengths()
    lengths.check()
    chosen = choose(groups, only)
    for experiment in chosen:  # every setting checked before the first run starts
        config = planned_config(experiment, out_dir, data, data_dir, lengths)
        if experiment.kind == TrainConfig.KIND and config.learning_rate is None:
            continue  # resolved once the sweep it reads has run
        # A classifier's denoiser may not exist yet: its folder is checked when the classifier trains.
        config.validate()

    for experiment in chosen:
        run_dir = out_dir / experiment.name
        if is_done(run_dir):
            if verbose:
                print(f"== {experiment.name}: finished earlier ({run_dir})")
            _score(run_dir, verbose)
            continue
        config = planned_config(experiment, out_dir, data, data_dir, lengths)
        missing = [need for need in experiment.needs if not _ready(out_dir / need)]
        if missing or getattr(config, "learning_rate", 0) is None:
            print(f"== {experiment.name}: skipped, it needs {', '.join(missing) or 'a finite perceptual sweep run'}")
            continue
        if verbose:
            print(f"== {experiment.name} ({experiment.claim}): {config.steps} steps on {config.data} -> {run_dir}")
        try:
            if experiment.kind == ClassifierConfig.KIND:
                train_classifier(config, run_dir, verbose=verbose)
            else:
                train(config, run_dir, verbose=verbose)
        except TrainingDivergedError as error:
            step = len(read_metrics(run_dir / METRICS_FILE)) if (run_dir / METRICS_FILE).exists() else 0
            write_json(run_dir / DIVERGED_FILE, {"stopped_after_step": step, "message": str(error)})
            print(f"== {experiment.name}: diverged after step {step} (a result, recorded in {DIVERGED_FILE})")
            continue
        _score(run_dir, verbose)
    return write_report(out_dir)


def _score(run_dir, verbose):
    """Held-out scores of a finished denoiser run on a photo folder, once."""
    from stl_denoise.heldout import HELDOUT_JSON, score_run

    record = load_run(run_dir)
    if record.kind != TrainConfig.KIND or not record.finished or record.data.get("kind") != "folder" \
            or record.config.data_split != "train" or (Path(run_dir) / HELDOUT_JSON).is_file():
        return
    summary = score_run(run_dir)
    if verbose:
        print(f"   held-out: PSNR {summary['mean_psnr']:.2f} dB on {summary['photos']} photos, "
              f"dead channels {summary['dead_channels'] or 'none'}")


def mse_tail(run_dir, tail=SUMMARY_TAIL, steps=None):
    """(mean MSE of the last ``tail`` iterations, iterations, training seconds) of metrics.csv.

    ``steps``: of its first ``steps`` rows only.
    """
    rows = read_metrics(run_dir)[:steps]
    mse = [float(r["mse"]) for r in rows]
    return tail_mean(mse, tail), len(rows), sum(float(r["seconds"]) for r in rows)


def diverged_at(run_dir):
    """The step after which a run stopped at NaN, or None."""
    path = Path(run_dir) / DIVERGED_FILE
    return json.loads(path.read_text())["stopped_after_step"] if path.is_file() else None


def _compare_denoisers(out_dir, names, out_path):
    """The first figure image, noised once, through each finished full-length denoiser."""
    if not names:
        return
    from stl_denoise.figures import chosen_images, plot_denoised_comparison
    from stl_denoise.pretrained import load_keras_file

    record = load_run(out_dir / names[0])
    config = record.config
    caption, clean = chosen_images(record.data_source, config.data_dir)[0]
    labels = {"dsc": "DSC (equations' gates), seed 0", "plain": "plain, seed 0",
              "dsc-text": "DSC (prose's gates), seed 0"}
    models = [(labels.get(name, name), load_keras_file(load_run(out_dir / name).model_path, "not a readable denoiser"))
              for name in names]
    plot_denoised_comparison(models, clean, config.sigma, config.salt_pepper, out_path,
                             f"{caption}: the same noisy input through each denoiser")


def write_report(out_dir):
    """Figures from the finished runs, then OUT/report.md: every table of ``report.tables``."""
    from stl_denoise.figures import draw_figures
    from stl_denoise.plots import plot_reproduction_curves
    from stl_denoise.report import report_markdown

    out_dir = Path(out_dir)
    finished = [e.name for e in experiments() if e.group in ("paper", "seeds") and e.kind == TrainConfig.KIND
                and (out_dir / e.name / METRICS_FILE).exists()]
    figures_dir = out_dir / "figures"
    lines = [report_markdown(out_dir)]
    if any(name in finished for name in ("dsc", "plain")):
        runs = [out_dir / name for name in ("dsc", "plain", "perceptual") if name in finished]
        runs.append(out_dir / "classify")
        draw_figures(runs, figures_dir, report=lambda message: None)
        curves = [(name, out_dir / name) for name in finished if name != "perceptual"]
        plot_reproduction_curves(curves, figures_dir / "mse_all_runs.png")
        _compare_denoisers(out_dir, [name for name in ("dsc", "plain", "dsc-text") if run_is_finished(out_dir / name)],
                           figures_dir / "denoised_by_each_run.png")
        lines += ["", "Figures: `figures/fig04.png` .. `fig11.png` (see `figures/figures.md`), "
                  f"`figures/mse_all_runs.png` (every MSE run, {SUMMARY_TAIL}-iteration running mean) and "
                  "`figures/denoised_by_each_run.png` (one noisy image through each 10,000-step denoiser)."]
    write_text(out_dir / "report.md", "\n".join(lines) + "\n")
    return out_dir / "report.md"
