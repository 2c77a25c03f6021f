"""cProfile of a 300-step faithful run on the sample photos: how much time is Python vs the compiled step.

    python benchmarks/profile/cprofile_train.py
"""
import cProfile
import pstats
import shutil
import time

from stl_denoise.config import TrainConfig
from stl_denoise.train import train

shutil.rmtree("/tmp/stl-denoise-profile/run", ignore_errors=True)
cfg = TrainConfig(data="sample", steps=300)
pr = cProfile.Profile()
t0 = time.perf_counter()
pr.enable()
s = train(cfg, "/tmp/stl-denoise-profile/run", verbose=False)
pr.disable()
print("wall", time.perf_counter() - t0, s)
st = pstats.Stats(pr)
st.sort_stats("tottime").print_stats(25)
