# The GPU training worker: TensorFlow's own GPU image (CUDA and cuDNN
# included; the host needs only the NVIDIA driver and the NVIDIA Container
# Toolkit), at the TensorFlow version pyproject.toml pins. Built by
# docker-compose.yml; the context is the repo root. (worker-cpu.Dockerfile is
# the CPU worker, on JAX.)
#
# BASE_IMAGE: TensorFlow's image by default; an air-gapped host names its copy
# (`docker load`ed, or in a registry of its own). WHEELHOUSE: a directory of
# the context holding wheels to install from instead of PyPI, as in
# api.Dockerfile (here the wheels stay in a layer: one stage, because pip
# upgrades packages of TensorFlow's image in place).
ARG BASE_IMAGE=tensorflow/tensorflow:2.21.0-gpu
FROM ${BASE_IMAGE}
ARG WHEELHOUSE=docker/wheelhouse

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    KERAS_BACKEND=tensorflow \
    TF_FORCE_GPU_ALLOW_GROWTH=true

RUN useradd --create-home --uid 10001 seqlab
WORKDIR /app

COPY ${WHEELHOUSE} /tmp/wheelhouse/
COPY pyproject.toml README.md openapi.yaml ./
COPY seqlab seqlab
COPY jobs jobs
COPY worker worker
# The image's TensorFlow serves the worker extra's `tensorflow==2.21.0`: the
# constraint makes pip keep it (and fail rather than replace it). With wheels
# in the wheelhouse, pip reads nothing else (the build reaches no network).
RUN python3 -m pip list --format=freeze | grep -i '^tensorflow==' > /tmp/keep-tensorflow.txt \
    && if ls /tmp/wheelhouse/*.whl > /dev/null 2>&1; then \
           set -- --no-index --find-links /tmp/wheelhouse; fi \
    && python3 -m pip install "$@" --constraint /tmp/keep-tensorflow.txt -e ".[worker]" \
    && rm -rf /tmp/keep-tensorflow.txt /tmp/wheelhouse

USER seqlab
# One process per GPU; docker-compose.yml sets the queue and the node name.
CMD ["celery", "-A", "worker.celery_app", "worker", "--concurrency", "1", "--loglevel", "info"]
