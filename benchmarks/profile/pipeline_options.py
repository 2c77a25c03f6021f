"""The real trainer (300 steps, sample) with tf.data variants; prints median/mean step ms from metrics.csv.

    python benchmarks/profile/pipeline_options.py MODE   # real | seq-pf2 | noauto | seq-pf2-noauto-pool1 | pool1-intra1
"""
import csv
import shutil
import statistics
import sys

from stl_denoise import data
from stl_denoise import train as T
from stl_denoise._quiet import import_tensorflow
from stl_denoise.config import TrainConfig

tf = import_tensorflow()
mode = sys.argv[1]


def patched(elements, count, seed, batch_size, skip_batches, crop, buffer_cap=10_000):
    stream = elements.shuffle(min(count or buffer_cap, buffer_cap), seed=seed, reshuffle_each_iteration=False).repeat()
    stream = stream.enumerate().skip(skip_batches * batch_size)
    def seeded(index, element):
        return crop(tf.stack([tf.cast(seed, tf.int64), index]), element)
    par = None if "seq" in mode else tf.data.AUTOTUNE
    ds = stream.map(seeded, num_parallel_calls=par).batch(batch_size, drop_remainder=True)
    ds = ds.prefetch(2 if "pf2" in mode else tf.data.AUTOTUNE)
    o = tf.data.Options()
    if "noauto" in mode:
        o.autotune.enabled = False
    if "pool1" in mode:
        o.threading.private_threadpool_size = 1
    if "intra1" in mode:
        o.threading.max_intra_op_parallelism = 1
    return ds.with_options(o)


if mode != "real":
    data.seeded_crop_batches = patched
shutil.rmtree("/tmp/stl-denoise-profile/run"+mode, ignore_errors=True)
s = T.train(TrainConfig(data="sample", steps=300), "/tmp/stl-denoise-profile/run"+mode, verbose=False)
secs = [float(r["seconds"]) for r in csv.DictReader(open("/tmp/stl-denoise-profile/run"+mode+"/metrics.csv"))]
print(mode, "median step ms", round(statistics.median(secs[20:])*1e3, 1), "mean",
      round(statistics.mean(secs[20:])*1e3, 1), "train s", s["train_seconds_this_session"])
