# The API image: Flask under gunicorn, with no TensorFlow, JAX or Keras
# (the API counts parameters with the pure-Python engine and only queues
# training jobs). Built by docker-compose.yml; the context is the repo root.
#
# BASE_IMAGE: any Debian-like image with Python 3.11 and its venv module:
# python:3.11-slim from a registry, or seqlab-base:bookworm, made from
# Debian's packages by `python -m devtools.compose base` (README,
# "Air-gapped"). WHEELHOUSE: a directory of the context holding wheels to
# install from instead of PyPI (docker/install-deps.sh).
ARG BASE_IMAGE=python:3.11-slim

# The dependencies, in a stage of their own: the wheelhouse copied here stays
# out of the image.
FROM ${BASE_IMAGE} AS deps
ARG WHEELHOUSE=docker/wheelhouse
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml docker/requirements.py docker/constraints.txt docker/install-deps.sh /tmp/build/
COPY ${WHEELHOUSE} /tmp/wheelhouse/
# The `api` extra adds Celery and redis: the API queues jobs.
RUN sh /tmp/build/install-deps.sh api

FROM ${BASE_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/seqlab/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONPATH=/app

RUN useradd --create-home --uid 10001 seqlab
COPY --from=deps /opt/seqlab /opt/seqlab
# The code runs from /app (on PYTHONPATH), where GET /openapi.yaml finds its
# file; a change of code rebuilds only these layers.
WORKDIR /app
COPY openapi.yaml ./
COPY seqlab seqlab
COPY modelspec modelspec
COPY jobs jobs
COPY service service

USER seqlab
EXPOSE 8000
# Gunicorn takes its number of worker processes from WEB_CONCURRENCY; each
# runs WEB_THREADS threads (gthread), so that a client following a job's
# events (GET /jobs/<id>/events) holds a thread, not a whole process. A
# shell expands WEB_THREADS; exec leaves gunicorn as PID 1, to get SIGTERM.
CMD ["sh", "-c", "exec gunicorn --bind 0.0.0.0:8000 --worker-class gthread --threads \"${WEB_THREADS:-16}\" --access-logfile - 'service:create_app()'"]
