# Every target is one CLI call (demo, test and notebook first install what they need);
# override variables on the command line:
#   make train-dsc DATA=sample STEPS=500 OUT=runs/my-dsc
PYTHON ?= python
CLI    ?= $(PYTHON) -m stl_denoise
DATA   ?= stl10
STEPS  ?= 10000
SEED   ?= 0
RUNS   ?= runs
ARGS   ?=

.PHONY: install lint test notebook notebook-run train-dsc train-plain stl10 demo bench gpu-check
.PHONY: pretrain-classify train-perceptual figures train-modern reproduce train-blind-mixed train-real-mixed

# pip install -e '.[EXTRA]' unless this Python already has the package and the extra (setup.cfg's
# lists, versions included): the first `make test` installs the test tools, later ones run offline.
ensure_installed = $(PYTHON) tools/installed.py $(1) || $(PYTHON) -m pip install -e '.$(if $(1),[$(1)])'

# What a user needs: denoise, evaluate, train, figures and the notebook.  The test tools (pytest,
# hypothesis, the non-commercial bm3d, tf2onnx...) come with `make test` only.
install:
	$(PYTHON) -m pip install -e '.[notebook]'

# The linter first (pyproject.toml's [tool.ruff]: pyflakes, pycodestyle errors, import order, bugbear),
# then the suite; CI's `make test` thus fails on a lint error before any test runs.
lint:
	$(call ensure_installed,test)
	$(PYTHON) -m ruff check stl_denoise tests benchmarks

test: lint
	$(PYTHON) -m pytest -q

# The walkthrough of the paper's §5 in Jupyter, reading the runs under RUNS (README, "Figures").
# Without RUNS=... the notebook opens on the committed full-length records (reports/reproduction).
NOTEBOOK_RUNS = $(if $(filter command line,$(origin RUNS)),STL_DENOISE_RUNS=$(abspath $(RUNS)))
notebook:
	$(call ensure_installed,notebook)
	$(NOTEBOOK_RUNS) $(PYTHON) -m jupyter notebook notebooks/walkthrough.ipynb $(ARGS)

# The same notebook run headless into $(RUNS)/notebook/walkthrough.ipynb (the committed copy stays clean).
notebook-run:
	$(call ensure_installed,notebook)
	$(NOTEBOOK_RUNS) $(PYTHON) -m jupyter nbconvert --to notebook --execute notebooks/walkthrough.ipynb --output-dir $(RUNS)/notebook $(ARGS)

# Paper §4.2: 100,000 STL-10 images, batch 10, 10,000 SGD iterations.
train-dsc:
	$(CLI) train --model dsc --data $(DATA) --steps $(STEPS) --seed $(SEED) --out $(or $(OUT),$(RUNS)/dsc) $(ARGS)

train-plain:
	$(CLI) train --model plain --data $(DATA) --steps $(STEPS) --seed $(SEED) --out $(or $(OUT),$(RUNS)/plain) $(ARGS)

stl10:
	$(CLI) download-stl10 $(ARGS)

# Offline: DSC and plain on the bundled photographs, then a Fig. 6-style plot.
demo:
	$(call ensure_installed,)
	$(CLI) demo --steps $(or $(DEMO_STEPS),300) --seed $(SEED) --out $(RUNS)/demo $(ARGS)

# Speed, memory and distance from the hardware; writes benchmarks/results.json.
bench:
	$(PYTHON) benchmarks/bench.py $(ARGS)

# On a GPU machine (pip install -e '.[gpu]'): tests marked gpu, 500 faithful steps with XLA on/off
# and float16, throughput at batch 10/64/256, 512/4096 px inference; writes runs/gpu-check.json.
# Under 8 minutes; on a machine without a GPU it says "no GPU" and exits 0.
gpu-check:
	$(PYTHON) benchmarks/gpu_check.py $(ARGS)

# Paper §4.3 / Figs. 4, 10, 11: the Table 2 classifier from truncated normal and from the
# DSC denoiser's conv1..conv5, same seed, data and SGD schedule, plus a comparison plot.
# Offline: make pretrain-classify DATA=digits (scikit-learn's bundled handwritten digits).
pretrain-classify:
	$(CLI) pretrain-classify --data $(DATA) --pretrained $(or $(PRETRAINED),$(RUNS)/dsc) --seed $(SEED) $(if $(CLASSIFY_STEPS),--steps $(CLASSIFY_STEPS)) --out $(or $(OUT),$(RUNS)/classify) $(ARGS)

# Paper §4.2 / Fig. 5: the plain 10-layer net trained with the perceptual loss of the
# truncated-normal classifier; pixel MSE is still logged every step.  Learning rate 1e-8:
# the perceptual loss is ~1e5 times the pixel MSE and 1e-6 diverges (README).
train-perceptual:
	$(CLI) train --model plain --loss perceptual --perceptual-classifier $(or $(CLASSIFIER),$(RUNS)/classify/truncnormal) --learning-rate $(or $(PERCEPTUAL_LR),1e-8) --data $(DATA) --steps $(STEPS) --seed $(SEED) --out $(or $(OUT),$(RUNS)/perceptual) $(ARGS)

# Paper §5: Figs. 4-11 from the run directories the targets above write (figures.md says
# which run and data made each; a figure whose runs are missing is skipped with a reason).
figures:
	$(CLI) figures $(RUNS)/dsc $(RUNS)/plain $(RUNS)/classify $(RUNS)/perceptual --out $(or $(OUT),$(RUNS)/figures) $(ARGS)
# The same DSC net trained the modern way (README, "Modern preset") on the colour
# BSD photos, keeping the fixed validation split out.  DATA=/folder and STEPS=n override.
MODERN_DATA ?= ../shared/data/CBSD432
train-modern:
	$(CLI) train --preset modern --data $(if $(filter command line,$(origin DATA)),$(DATA),$(MODERN_DATA)) $(if $(filter command line,$(origin STEPS)),--steps $(STEPS)) --seed $(SEED) --out $(or $(OUT),$(RUNS)/modern) $(ARGS)

# The paper at full length (docs/reproduction.md): DSC and plain 10,000 iterations, the classifier from
# both inits, the text's gate reading, three seeds, controls, an ablation and the perceptual loss, then Figs. 4-11 and a
# report.  Resumable: rerun to continue.  Offline: make reproduce DATA=../shared/data/CBSD432
reproduce:
	$(CLI) reproduce --data $(DATA) --out $(or $(OUT),$(RUNS)/reproduction) $(ARGS)

# The shipped dsc-blind-mixed: the modern dsc-modern-blind fine-tuned on the paper's own
# noise kinds (--preset blind-mixed: Gaussian 0-50, salt-and-pepper 0-10%, or both; half as 8-bit
# files), CBSD432 minus its validation split.  Model card: stl_denoise/weights/dsc-blind-mixed.md
train-blind-mixed:
	$(CLI) train --preset blind-mixed --init-from dsc-modern-blind --learning-rate 5e-4 --warmup-steps 500 --data $(if $(filter command line,$(origin DATA)),$(DATA),$(MODERN_DATA)) --steps $(or $(if $(filter command line,$(origin STEPS)),$(STEPS)),5000) --seed $(SEED) --out $(or $(OUT),$(RUNS)/blind-mixed) $(ARGS)

# Real photographs: dsc-blind-mixed fine-tuned with --preset real-mixed (half the crops get the camera
# noise model of stl_denoise/noise.py, half the blind-mixed noise; half of all crops saved as a JPEG of
# quality 60-100), CBSD432 minus its validation split.  Resumable: rerun to continue.  Stage 1 of the
# shipped default dsc-real-mixed; stage 2 (model card: stl_denoise/weights/dsc-real-mixed.md):
#   make train-real-mixed SEED=1 OUT=runs/real-mixed-2 STEPS=5000 \
#       ARGS="--init-from runs/real-mixed --learning-rate 1.5e-4 --warmup-steps 100"
train-real-mixed:
	$(CLI) train --preset real-mixed --init-from dsc-blind-mixed --learning-rate 3e-4 --warmup-steps 300 --data $(if $(filter command line,$(origin DATA)),$(DATA),$(MODERN_DATA)) --steps $(or $(if $(filter command line,$(origin STEPS)),$(STEPS)),6000) --seed $(SEED) --out $(or $(OUT),$(RUNS)/real-mixed) $(ARGS)
