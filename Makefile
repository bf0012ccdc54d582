# The two commands of the README, and the steps they are made of.
#   make demo   set everything up, boot the lab, audit it, roll the baseline out, audit again
#   make test   set everything up, run the quality gates and every test
VENV := .venv
BIN := $(VENV)/bin
# Tools that run other tools (ansible-lint runs ansible-playbook) find them in the venv.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup demo test lint unit integration benchmark clean

setup:
	bash scripts/setup.sh

demo: setup
	bash scripts/demo.sh

lint: setup
	$(BIN)/ruff check provision tests benchmarks
	$(BIN)/ruff format --check provision tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint

test: lint
	$(BIN)/pytest

unit: setup
	$(BIN)/pytest tests/unit

# Every benchmark, one after another (needs root for the lab; several minutes).
benchmark: setup
	for script in benchmarks/[a-z]*.py; do $(BIN)/python $$script || exit 1; done

clean:
	-$(BIN)/provision lab down
	rm -rf $(VENV) .provision .mypy_cache .ruff_cache .pytest_cache
