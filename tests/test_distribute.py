import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from stl_denoise.config import TrainConfig
from stl_denoise.errors import UserError
from stl_denoise.runs import load_run, read_metrics
from stl_denoise.train import DenoiserRecipe, train
from stl_denoise.transfer import ClassifierConfig, train_classifier

SCRIPT = Path(__file__).parent / "scripts" / "replicas.py"
WORKER = Path(__file__).parent / "scripts" / "worker.py"
ROOT = Path(__file__).parent.parent


def curves(tmp_path, kind):
    result = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path), kind], capture_output=True, text=True,
                            timeout=400, cwd=Path(__file__).parent.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    values = json.loads(result.stdout.strip().splitlines()[-1])
    return np.array(values["none"]), np.array(values["mirrored"])


def test_two_replicas_follow_the_single_device_curve(tmp_path):
    single, mirrored = curves(tmp_path, "denoiser")
    assert len(single) == len(mirrored) == 20
    # Same data, global batch and (sliced) noise: the first steps agree to
    # float precision; only the order of the all-reduce sums differs, and SGD
    # on the 0-255 scale amplifies that to ~0.7% by step 20 (measured).
    np.testing.assert_allclose(mirrored[:10], single[:10], rtol=1e-4)
    np.testing.assert_allclose(mirrored, single, rtol=0.02)


def test_transfer_on_two_replicas(tmp_path):
    single, mirrored = curves(tmp_path, "classifier")
    assert len(single) == len(mirrored) == 10
    # Run without dropout: its masks are drawn per replica (Keras' Dropout
    # is not replica-aware), which would part the curves from step 1.
    np.testing.assert_allclose(mirrored, single, rtol=1e-3)


def test_unknown_strategy_is_refused():
    with pytest.raises(UserError, match="--strategy"):
        TrainConfig(strategy="tpu").validate()
    with pytest.raises(UserError, match="--strategy"):
        ClassifierConfig(data="digits", strategy="tpu").validate()


# --- two worker processes on 127.0.0.1 (--strategy multiworker, TF_CONFIG) ----------------

def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for each in sockets:
        each.bind(("127.0.0.1", 0))
    ports = [each.getsockname()[1] for each in sockets]
    for each in sockets:
        each.close()
    return ports


def start_workers(argv, folder, probe=False):
    """Both workers of a fresh cluster, each running ``stl-denoise ARGV`` (logs in ``folder``)."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    workers = []
    for index in range(2):
        task = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(task), "TMPDIR": str(folder / "tmp"),
               "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        log = open(folder / f"worker{index}.{time.monotonic_ns()}.log", "w+")
        workers.append(subprocess.Popen(
            [sys.executable, str(WORKER), str(folder / f"crops{index}.npy") if probe else "-", *map(str, argv)],
            stdout=log, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT))
        workers[-1].log = log
    return workers


def finish(worker, timeout):
    code = worker.wait(timeout=timeout)
    worker.log.seek(0)
    return code, worker.log.read()


def rows(run_dir):
    path = run_dir / "metrics.csv"
    return max(path.read_text().count("\n") - 1, 0) if path.exists() else 0


def scratch_folders(folder):
    """The workers' scratch folders left in the TMPDIR the test gave them."""
    return [path for path in (folder / "tmp").iterdir() if path.name.startswith("stl-denoise-")]


def event_file_pids(run_dir):
    """The process ids in TensorBoard's event file names (events.out.tfevents.TIME.HOST.PID.N.v2)."""
    return {int(path.name.split(".")[-3]) for path in (run_dir / "tensorboard").rglob("events.out.tfevents.*")}


@pytest.mark.slow
def test_two_workers_train_the_denoiser_as_one_process_and_resume_after_a_killed_worker(tmp_path):
    (tmp_path / "tmp").mkdir()
    run_dir = tmp_path / "run"
    settings = dict(data="sample", steps=24, steps_per_epoch=4, batch_size=4, crop_size=32, seed=1)
    argv = ["train", "--data", "sample", "--steps", "24", "--steps-per-epoch", "4", "--batch-size", "4",
            "--crop-size", "32", "--seed", "1", "--strategy", "multiworker", "--out", run_dir]
    chief, other = start_workers(argv, tmp_path, probe=True)
    deadline = time.monotonic() + 300
    while rows(run_dir) < 8 and time.monotonic() < deadline:
        assert chief.poll() is None and other.poll() is None, [finish(w, 60)[1][-3000:] for w in (chief, other)]
        time.sleep(0.05)
    assert rows(run_dir) < 24, "the run ended before a worker could be killed"
    other.send_signal(signal.SIGKILL)
    other.wait()
    # The chief notices the missing heartbeats and stops with one line (~15 s here).
    code, log = finish(chief, timeout=240)
    assert code == 2, log[-3000:]
    assert log.splitlines()[-1].startswith("stl-denoise: error: another worker of this multi-worker run stopped ("), log
    assert log.splitlines()[-1].endswith("start every worker again with the same command: the run resumes from "
                                         "its last backup")
    first_chief = chief.pid
    assert json.loads((run_dir / "backup" / "training_metadata.json").read_text())["epoch"] >= 1
    # The killed worker could not clean up: its scratch folder shows where it wrote (not the run folder).
    [scratch] = scratch_folders(tmp_path)
    assert scratch.name.startswith("stl-denoise-worker1-") and event_file_pids(scratch) == {other.pid}

    chief, other = start_workers(argv, tmp_path)  # the same two commands again
    for worker in (chief, other):
        code, log = finish(worker, timeout=400)
        assert code == 0, log[-3000:]
    two_workers = [float(row["mse"]) for row in read_metrics(run_dir)]
    assert [int(row["step"]) for row in read_metrics(run_dir)] == list(range(1, 25))  # every step once

    # (a) The loss curve of one process with the same global batch and seed.  Same data, noise and
    # start: the first steps agree to float precision, then the order of the all-reduce sums and the
    # resume (weights and noise state from the backup) part them by ~0.1% over 24 steps (measured).
    single = train(TrainConfig(**settings), tmp_path / "single", verbose=False)
    one_process = [float(row["mse"]) for row in read_metrics(tmp_path / "single")]
    np.testing.assert_allclose(two_workers[:4], one_process[:4], rtol=1e-4)
    np.testing.assert_allclose(two_workers, one_process, rtol=0.02)
    assert load_run(run_dir).summary["final_mse_mean_last_100"] == pytest.approx(
        single["final_mse_mean_last_100"], rel=0.02)

    # (b) Only the chief wrote the run folder; the other worker's scratch folders are gone.
    assert (run_dir / "model.keras").is_file()
    assert (run_dir / "run.lock").read_text().strip() == str(chief.pid)
    assert event_file_pids(run_dir) == {first_chief, chief.pid}
    assert scratch_folders(tmp_path) == []  # the rerun worker removed its own and the killed one's

    # (c) Each worker got its own half of every global batch: together, the one-process batch.
    keras.utils.set_random_seed(settings["seed"])  # the global seed takes part in the shuffle order
    reference = DenoiserRecipe(TrainConfig(**settings)).dataset(skip_batches=0)
    batches = np.stack([batch[0].numpy() for batch in reference.take(3)])
    mine, theirs = np.load(tmp_path / "crops0.npy"), np.load(tmp_path / "crops1.npy")
    assert mine.shape == theirs.shape == (3, 2, 32, 32, 3)
    np.testing.assert_array_equal(mine, batches[:, :2])
    np.testing.assert_array_equal(theirs, batches[:, 2:])
    assert not np.array_equal(mine, theirs)


@pytest.mark.slow
def test_two_workers_train_the_classifier_as_one_process(tmp_path):
    (tmp_path / "tmp").mkdir()
    settings = dict(data="digits", steps=10, steps_per_epoch=5, batch_size=4, image_size=32, seed=1, eval_every=5,
                    eval_images=20, dropout=0.0)  # dropout masks are drawn per replica
    argv = ["transfer", "--init", "truncnormal", "--data", "digits", "--steps", "10", "--steps-per-epoch", "5",
            "--batch-size", "4", "--image-size", "32", "--seed", "1", "--eval-every", "5", "--eval-images", "20",
            "--dropout", "0", "--strategy", "multiworker", "--out", tmp_path / "run"]
    workers = start_workers(argv, tmp_path)
    for worker in workers:
        code, log = finish(worker, timeout=400)
        assert code == 0, log[-3000:]
    train_classifier(ClassifierConfig(**settings), tmp_path / "single", verbose=False)
    rows_of = {name: read_metrics(tmp_path / name) for name in ("run", "single")}
    for column in ("cross_entropy", "accuracy"):
        np.testing.assert_allclose([float(r[column]) for r in rows_of["run"]],
                                   [float(r[column]) for r in rows_of["single"]], rtol=1e-3)
    assert [r["eval_accuracy"] for r in rows_of["run"]] == [r["eval_accuracy"] for r in rows_of["single"]]
    assert event_file_pids(tmp_path / "run") == {workers[0].pid}
    assert scratch_folders(tmp_path) == []
