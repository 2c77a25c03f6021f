# Every target is one CLI call; override variables on the command line:
#   make train-dsc DATA=sample STEPS=500 OUT=runs/my-dsc
PYTHON ?= python
CLI    ?= $(PYTHON) -m stl_denoise
DATA   ?= stl10
STEPS  ?= 10000
SEED   ?= 0
RUNS   ?= runs
ARGS   ?=

.PHONY: install test train-dsc train-plain stl10 demo bench

install:
	$(PYTHON) -m pip install -e '.[test]'

test:
	$(PYTHON) -m pytest -q

# Paper §4.2: 100,000 STL-10 images, batch 10, 10,000 SGD iterations.
train-dsc:
	$(CLI) train --model dsc --data $(DATA) --steps $(STEPS) --seed $(SEED) --out $(or $(OUT),$(RUNS)/dsc) $(ARGS)

train-plain:
	$(CLI) train --model plain --data $(DATA) --steps $(STEPS) --seed $(SEED) --out $(or $(OUT),$(RUNS)/plain) $(ARGS)

stl10:
	$(CLI) download-stl10 $(ARGS)

# Offline: DSC and plain on the bundled photographs, then a Fig. 6-style plot.
demo:
	$(CLI) demo --steps $(or $(DEMO_STEPS),300) --seed $(SEED) --out $(RUNS)/demo $(ARGS)

# Speed, memory and distance from the hardware; writes benchmarks/results.json.
bench:
	$(PYTHON) benchmarks/bench.py $(ARGS)
