"""Run folders, read back: the one typed loader of ``config.json`` and ``metrics.csv``.

A run folder (written by ``runner.run``) holds ``config.json``::

    {"kind": "denoiser" | "classifier", "config": {...settings...}, "data": {...},
     "environment": {...}, "summary": {...} once finished, "rerun_of": {...} for --config reruns}

then ``metrics.csv`` (one row per iteration), ``backup/``, ``checkpoint.keras``
and, once finished, the model (``model.keras`` or ``classifier.keras``).
Figures, ``reproduce``, ``--config`` reruns and resuming all read runs here.
"""

import contextlib
import csv
import dataclasses
import json
import os
import statistics
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; one writer per folder is then the user's care
    fcntl = None

from stl_denoise.checks import check_name_given
from stl_denoise.config import CONFIG_KINDS, TRUNCNORMAL
from stl_denoise.errors import UserError

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.csv"
LOCK_FILE = "run.lock"
# Summaries average the last 100 iterations (Fig. 6's noise is ~2x batch to batch); the one place that says 100.
SUMMARY_TAIL = 100


@dataclasses.dataclass
class RunRecord:
    """What a run's ``config.json`` says, with its settings as a typed config."""

    path: Path  # the run folder
    kind: str  # denoiser | classifier
    config: object  # TrainConfig | ClassifierConfig
    data: dict
    environment: dict
    summary: dict | None  # None until the run has finished
    extra: dict  # other entries: init_from, rerun_of

    @property
    def model_path(self):
        return saved_model_path(self.path, self.kind)

    @property
    def data_source(self):
        """What the run's ``--data`` named: a folder as recorded resolved, so it is found from any working folder."""
        return self.data.get("path", self.config.data) if self.data.get("kind") == "folder" else self.config.data

    @property
    def finished(self):
        """The model is saved and the final summary recorded."""
        return self.summary is not None and self.model_path.is_file()

    @property
    def figure_role(self):
        """Which curve of the paper's figures this run draws: dsc, plain, perceptual, truncnormal or pretrained."""
        if self.kind == "classifier":
            return "truncnormal" if self.config.init == TRUNCNORMAL else "pretrained"
        return "perceptual" if self.config.loss == "perceptual" else self.config.model


def saved_model_path(run_dir, kind):
    """The model a finished run of ``kind`` saves: RUN/model.keras (denoiser) or RUN/classifier.keras."""
    return Path(run_dir) / CONFIG_KINDS[kind].MODEL_FILE


def config_path(path):
    """A run folder or its config.json -> the config.json path."""
    path = Path(path)
    return path / CONFIG_FILE if path.is_dir() else path


def load_run(path):
    """The ``RunRecord`` of a run folder (or of its config.json); a one-line UserError naming the file."""
    file = config_path(path)
    try:
        record = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{file}: no such file (not a run folder?)") from None
    except (OSError, ValueError) as error:  # ValueError: bad JSON or bad UTF-8
        raise UserError(f"{file}: unreadable ({type(error).__name__}: {str(error).splitlines()[0][:120]})") from None
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
        raise UserError(f"{file}: not a run's config.json (no \"config\" object)")
    settings = record["config"]
    # Records written before the kind was recorded: only classifier runs have "init".
    kind = record.get("kind", "classifier" if "init" in settings else "denoiser")
    if not isinstance(kind, str) or kind not in CONFIG_KINDS:
        raise UserError(f"{file}: unknown kind of run {str(kind)[:40]!r} (expected {' or '.join(CONFIG_KINDS)})")
    config = CONFIG_KINDS[kind].from_dict(settings, source=file)
    known = {"kind", "config", "data", "environment", "summary"}
    sections = {}
    for name in ("data", "environment", "summary"):
        value = record.get(name, {} if name != "summary" else None)
        if value is not None and not isinstance(value, dict):
            raise UserError(f"{file}: \"{name}\" is not an object")
        sections[name] = value
    return RunRecord(file.parent, kind, config, sections["data"], sections["environment"], sections["summary"],
                     {k: v for k, v in record.items() if k not in known})


def run_is_finished(run_dir):
    """True for a run folder whose model is saved and whose config.json holds the final summary."""
    try:
        return load_run(run_dir).finished
    except UserError:
        return False


def check_run_dir(run_dir, config):
    """A run folder holds one run: resuming it must use the same kind of run and the same settings."""
    check_name_given(run_dir, "--out", "a run folder")
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"{run_dir}: exists and is not a directory")
    if not (run_dir / CONFIG_FILE).exists():
        return
    previous = load_run(run_dir)  # a setting added since the run was recorded takes its default
    if previous.kind != config.KIND:
        raise UserError(f"{run_dir}: holds a {previous.kind} run; choose a new --out or delete it")
    differing = sorted(changed_settings(previous.config, config))
    if differing:
        raise UserError(
            f"{run_dir}: holds a run with different settings ({', '.join(differing)}); "
            "choose a new --out or delete it"
        )


@contextlib.contextmanager
def run_folder_lock(run_dir):
    """Hold ``run_dir`` for one writer: a second run into it is refused with the holder's process id.

    The lock is ``flock`` on ``run.lock`` inside the folder, held while the
    block runs; the kernel releases it when its process ends however it ends
    (``kill -9`` included), so a crashed run never blocks the next one.  The
    file itself stays: removing it would let a waiter lock a file no one else
    can see any more.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    handle = open(run_dir / LOCK_FILE, "a+", encoding="ascii")
    try:
        _lock(handle, run_dir)
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        handle.close()


def refuse_if_locked(run_dir):
    """``run_folder_lock``'s refusal, early: before minutes of loading and building (writes nothing)."""
    try:
        with open(Path(run_dir) / LOCK_FILE, encoding="ascii") as handle:
            _lock(handle, run_dir)  # released when the file closes
    except FileNotFoundError:
        pass


def _lock(handle, run_dir):
    if fcntl is None:
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise UserError(f"{run_dir}: another run (process {_lock_holder(handle)}) is writing this run folder; "
                        "wait for it to end, or choose another --out") from None


def _lock_holder(handle, wait=1.0):
    """The process id the holder wrote into the lock file (it writes it just after locking)."""
    deadline = time.monotonic() + wait
    while True:
        handle.seek(0)
        text = handle.read().strip()
        if text.isdigit() or time.monotonic() > deadline:
            return text if text.isdigit() else "unknown"
        time.sleep(0.02)


def changed_settings(before, after):
    """{setting: (value in ``before``, value in ``after``)} for each setting two configs of one kind set differently.

    Compared as config.json holds them (tuples as lists).
    """
    old, new = (json.loads(json.dumps(config.to_dict())) for config in (before, after))
    return {name: (old[name], new[name]) for name in new if old[name] != new[name]}


def read_metrics(path):
    """The rows of a ``metrics.csv`` (a run folder or the file) as dicts of strings."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def check_metrics(run_dir):
    """A one-line UserError naming metrics.csv and its first bad row, if a curve could not be read from it."""
    path = Path(run_dir) / METRICS_FILE
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or "step" not in reader.fieldnames:
                raise UserError(f"{path}: no 'step' column (not a run's metrics.csv)")
            for line, row in enumerate(reader, start=2):
                for column, value in row.items():
                    if value in (None, ""):
                        continue
                    try:
                        int(value) if column == "step" else float(value)
                    except (TypeError, ValueError):
                        raise UserError(f"{path}: line {line}: {column} is {str(value)[:40]!r}, not a number") from None
    except (OSError, ValueError, csv.Error) as error:
        raise UserError(f"{path}: unreadable ({type(error).__name__})") from None


def tail_mean(values, tail=SUMMARY_TAIL):
    return statistics.fmean(values[-tail:])


def tail_key(what, tail=SUMMARY_TAIL):
    """Summary keys say how many iterations they average: ``tail_key("final_mse_mean")`` -> ``..._last_100``."""
    return f"{what}_last_{tail}"
