# The training worker: TensorFlow's own GPU image (CUDA and cuDNN included;
# the host needs only the NVIDIA driver and the NVIDIA Container Toolkit),
# at the TensorFlow version pyproject.toml pins. Built by docker-compose.yml;
# the context is the repo root.
FROM tensorflow/tensorflow:2.21.0-gpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    KERAS_BACKEND=tensorflow \
    TF_FORCE_GPU_ALLOW_GROWTH=true

RUN useradd --create-home --uid 10001 seqlab
WORKDIR /app

COPY pyproject.toml README.md openapi.yaml ./
COPY seqlab seqlab
COPY service service
COPY worker worker
# The image's TensorFlow serves the worker extra's `tensorflow==2.21.0`: the
# constraint makes pip keep it (and fail rather than replace it).
RUN python3 -m pip list --format=freeze | grep -i '^tensorflow==' > /tmp/keep-tensorflow.txt \
    && python3 -m pip install --constraint /tmp/keep-tensorflow.txt -e ".[worker]" \
    && rm /tmp/keep-tensorflow.txt

USER seqlab
# One process per GPU; docker-compose.yml sets the queue and the node name.
CMD ["celery", "-A", "worker.celery_app", "worker", "--concurrency", "1", "--loglevel", "info"]
