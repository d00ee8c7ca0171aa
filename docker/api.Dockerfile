# The API image: Flask under gunicorn, with no TensorFlow, JAX or Keras
# (the API counts parameters with the pure-Python engine and only queues
# training jobs). Built by docker-compose.yml; the context is the repo root.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 seqlab
WORKDIR /app

COPY pyproject.toml README.md openapi.yaml ./
COPY seqlab seqlab
COPY service service
COPY worker worker
# Editable, so that the code runs from /app, where GET /openapi.yaml finds
# its file. The `api` extra adds Celery and redis: the API queues jobs.
RUN pip install -e ".[api]"

USER seqlab
EXPOSE 8000
# Gunicorn takes its number of worker processes from WEB_CONCURRENCY; each
# runs WEB_THREADS threads (gthread), so that a client following a job's
# events (GET /jobs/<id>/events) holds a thread, not a whole process. A
# shell expands WEB_THREADS; exec leaves gunicorn as PID 1, to get SIGTERM.
CMD ["sh", "-c", "exec gunicorn --bind 0.0.0.0:8000 --worker-class gthread --threads \"${WEB_THREADS:-16}\" --access-logfile - 'service:create_app()'"]
