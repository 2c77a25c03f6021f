"""Median wall-clock timing, shared by bench.py and the TensorFlow-free torch_reference.py.

Standard library only: the PyTorch yardstick imports it without pulling in TensorFlow.
"""

import statistics
import time


def median_seconds(fn, reps, warmup=2):
    """(median seconds of ``reps`` calls of ``fn`` after ``warmup`` untimed ones, all the times)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times
