# The two README commands: `make run` and `make test`. Everything they need is
# installed here, with plain pip (it finds the torch wheels on local disks).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
RECIPE ?= recipes/ijepa_tiny.yaml
export OMP_NUM_THREADS ?= 2

.PHONY: venv run test lint clean data data-video example-plugin

venv: $(BIN)/jepakit

$(BIN)/jepakit: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(BIN)/jepakit

run: venv
	$(BIN)/jepakit run $(RECIPE)

test: venv example-plugin
	$(BIN)/python -m pytest -q

# The third-party plugin example, installed like any user's plugin package; its test
# (tests/examples/) then trains a recipe through its entry point and the jepakit command.
example-plugin: $(VENV)/.example-plugin

$(VENV)/.example-plugin: examples/jepakit-plugin-example/pyproject.toml | venv
	$(BIN)/python -m pip install --quiet --no-deps -e examples/jepakit-plugin-example
	touch $@

# Fashion-MNIST as WebDataset shards (the real-data default, recipes/ijepa_fmnist.yaml).
# The four IDX files come from Debian's dataset-fashion-mnist when they are missing
# and this is root on Debian; elsewhere, put them in FMNIST_SRC yourself.
FMNIST_SRC ?= /usr/share/datasets/fashion-mnist
FMNIST_OUT ?= data/fashion-mnist
FMNIST_FILES := train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte

data: $(FMNIST_OUT)/train/index.json $(FMNIST_OUT)/test/index.json

# The shell lines that make sure the IDX files are in FMNIST_SRC (used by data and data-video).
define ensure_fmnist
missing=""; for f in $(FMNIST_FILES); do \
	  [ -f "$(FMNIST_SRC)/$$f.gz" ] || [ -f "$(FMNIST_SRC)/$$f" ] || missing="$$missing $$f.gz"; done; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && [ -f /etc/debian_version ] && command -v apt-get >/dev/null \
	   && [ "$(FMNIST_SRC)" = /usr/share/datasets/fashion-mnist ]; then \
	  echo "make data: installing Debian's dataset-fashion-mnist"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null; \
	elif [ -n "$$missing" ]; then \
	  echo "make data: Fashion-MNIST is missing from $(FMNIST_SRC):$$missing"; \
	  echo "  Put the four IDX .gz files there (https://github.com/zalandoresearch/fashion-mnist,"; \
	  echo "  directory data/fashion), or run: make data FMNIST_SRC=/path/to/them"; \
	  echo "  (as root on Debian, make data installs the dataset-fashion-mnist package itself)"; \
	  exit 1; \
	fi
endef

$(FMNIST_OUT)/%/index.json: | venv
	@$(ensure_fmnist)
	$(BIN)/jepakit shards make $(FMNIST_SRC) $(FMNIST_OUT)/$* --format fashion-mnist --split $* \
	  --shard-size 5000 --prefix fmnist-$* --overwrite

# Moving Fashion-MNIST as video shards (recipes/vjepa/vjepa_moving_fmnist.yaml): clips of
# VIDEO_FRAMES frames in which one or two Fashion-MNIST items move over 64x64 frames, H.264
# in mp4, train clips from the training split, test clips from the test split.
VIDEO_OUT ?= data/moving-fashion-mnist
VIDEO_TRAIN ?= 5000
VIDEO_TEST ?= 1000
VIDEO_FRAMES ?= 16

data-video: $(VIDEO_OUT)/train/index.json $(VIDEO_OUT)/test/index.json

$(VIDEO_OUT)/train/index.json: VIDEO_COUNT = $(VIDEO_TRAIN)
$(VIDEO_OUT)/test/index.json: VIDEO_COUNT = $(VIDEO_TEST)
$(VIDEO_OUT)/%/index.json: | venv
	@$(ensure_fmnist)
	$(BIN)/jepakit shards make $(FMNIST_SRC) $(VIDEO_OUT)/$* --format moving-fashion-mnist \
	  --split $* --count $(VIDEO_COUNT) --frames $(VIDEO_FRAMES) --shard-size 500 \
	  --prefix mfmnist-$* --overwrite

lint: venv
	$(BIN)/ruff check jepakit plugins tests benchmarks
	$(BIN)/mypy jepakit

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .hypothesis
