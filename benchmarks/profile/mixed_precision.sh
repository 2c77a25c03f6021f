#!/bin/bash
# Faithful trainer, 300 steps on the sample photos, float32 vs bfloat16 mixed precision, alternating;
# prints the median step time of each run (metrics.csv, first 20 steps skipped).
#     bash benchmarks/profile/mixed_precision.sh
set -e
for i in 1 2 3; do for mp in off bfloat16; do
  out=/tmp/stl-denoise-profile/mp-$mp-$i
  rm -rf "$out"
  stl-denoise train --data sample --steps 300 --mixed-precision $mp --out "$out" > /dev/null
  python - "$out" $mp <<'P'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1] + "/metrics.csv")))
step = statistics.median(float(r["seconds"]) for r in rows[20:])
mse = statistics.mean(float(r["mse"]) for r in rows[-100:])
print(sys.argv[2], f"median step {step * 1e3:.1f} ms, {10 / step:.1f} images/s, mean MSE of the last 100 steps {mse:.1f}")
P
done; done
