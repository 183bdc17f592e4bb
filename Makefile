# One command each: `make demo` (set up + main job), `make test` (set up + test suite).
VENV ?= .venv
PY := $(VENV)/bin/python
FMNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

.PHONY: setup data demo test test-slow bench reproduce report clean lock

# Every install is pinned by constraints.txt (`make lock` re-resolves it to the newest releases).
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test]'
	touch $@

setup: $(VENV)/.installed

# Re-resolve the dependencies in a scratch venv and rewrite constraints.txt (then commit it).
lock:
	rm -rf .venv-lock && python3 -m venv .venv-lock
	.venv-lock/bin/python -m pip install -q --upgrade pip
	.venv-lock/bin/python -m pip install -q -e '.[test]'
	{ echo "# pip constraints for the README's two commands (make demo, make test): written by"; \
	  echo "# \`make lock\` from a fresh resolve of pyproject.toml's [test] extra. Do not edit by hand."; \
	  .venv-lock/bin/python -m pip freeze --all --exclude-editable | grep -v '^-e '; } > constraints.txt
	rm -rf .venv-lock

data:
	@test -f $(FMNIST) || { echo "Installing Debian's dataset-fashion-mnist (offline Fashion-MNIST)"; \
	  SUDO=$$( [ $$(id -u) -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q dataset-fashion-mnist; }

demo: setup data
	$(PY) -m launch.main --config=experiments/quickstart.py --workdir=runs/quickstart

test: setup data
	$(PY) -m pytest -q -n 2

test-slow: setup data
	$(PY) -m pytest -q -n 2 -m slow

bench: setup
	$(PY) bench/train_step.py

# make reproduce TABLE=disk_table1 [SCALE=cpu|full]; `make reproduce TABLE=all` runs every entry.
TABLE ?= all
SCALE ?= cpu
reproduce: setup data
	$(PY) -m launch.reproduce --table=$(TABLE) --scale=$(SCALE) --workdir=runs/repro

report: setup
	$(PY) -m launch.reproduce --write_report --workdir=runs/repro

clean:
	rm -rf runs
