# The training worker on CPUs (compose service `worker-cpu`, profile `cpu`):
# Keras on JAX, without TensorFlow, so that a host without a GPU neither pulls
# TensorFlow's GPU image nor builds TensorFlow. Built by docker-compose.yml;
# the context is the repo root. BASE_IMAGE and WHEELHOUSE as in
# api.Dockerfile.
ARG BASE_IMAGE=python:3.11-slim

# The dependencies, in a stage of their own: the wheelhouse copied here stays
# out of the image.
FROM ${BASE_IMAGE} AS deps
ARG WHEELHOUSE=docker/wheelhouse
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml docker/requirements.py docker/constraints.txt docker/install-deps.sh /tmp/build/
COPY ${WHEELHOUSE} /tmp/wheelhouse/
RUN sh /tmp/build/install-deps.sh worker --without tensorflow

FROM ${BASE_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/seqlab/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONPATH=/app \
    KERAS_BACKEND=jax

RUN useradd --create-home --uid 10001 seqlab
COPY --from=deps /opt/seqlab /opt/seqlab
WORKDIR /app
COPY openapi.yaml ./
COPY seqlab seqlab
COPY jobs jobs
COPY worker worker

USER seqlab
# docker-compose.yml sets the queue, the concurrency and the node name.
CMD ["celery", "-A", "worker.celery_app", "worker", "--concurrency", "1", "--loglevel", "info"]
