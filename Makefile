# Every target is one CLI call; override variables on the command line:
#   make train-dsc DATA=sample STEPS=500 OUT=runs/my-dsc
PYTHON ?= python
CLI    ?= $(PYTHON) -m stl_denoise
DATA   ?= stl10
STEPS  ?= 10000
SEED   ?= 0
RUNS   ?= runs
ARGS   ?=

.PHONY: install test train-dsc train-plain stl10 demo bench train-modern

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

# Issue 5: the same DSC net trained the modern way (README, "Modern preset") on the colour
# BSD photos, keeping the fixed validation split out.  DATA=/folder and STEPS=n override.
MODERN_DATA ?= ../shared/data/CBSD432
train-modern:
	$(CLI) train --preset modern --data $(if $(filter command line,$(origin DATA)),$(DATA),$(MODERN_DATA)) $(if $(filter command line,$(origin STEPS)),--steps $(STEPS)) --seed $(SEED) --out $(or $(OUT),$(RUNS)/modern) $(ARGS)
