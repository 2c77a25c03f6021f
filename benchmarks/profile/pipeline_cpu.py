"""CPU time per batch of the real input pipeline alone (sample photos, batch 10, 64x64 crops).

    python benchmarks/profile/pipeline_cpu.py
"""
import resource
import time

from stl_denoise import data
from stl_denoise._quiet import import_tensorflow

tf = import_tensorflow()
for src in ["sample"]:
    ds = data.training_dataset(src, 10, 64, 0)
    it = iter(ds)
    for _ in range(20):
        next(it)
    for _rep in range(3):
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        for _ in range(300):
            next(it)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        t1 = time.perf_counter()
        cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
        print(src, "wall ms/batch", round((t1-t0)/300*1e3, 2), "cpu ms/batch", round(cpu/300*1e3, 2))
